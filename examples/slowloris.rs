//! Opens many connections that send part of a request head and stall, then
//! measures `GET /healthz` on fresh connections while they are open. Loopback
//! only; stops by itself.
//!
//! ```sh
//! cargo run --release --example slowloris -- 127.0.0.1:8700 20000 20
//! ```
//! Arguments: address (default `127.0.0.1:8700`), connections (20,000), probes (20).
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let address: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8700").parse()?;
    anyhow::ensure!(address.ip().is_loopback(), "loopback addresses only");
    let wanted: usize = args.next().as_deref().unwrap_or("20000").parse()?;
    let probes: usize = args.next().as_deref().unwrap_or("20").parse()?;

    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let most = usize::try_from(limit.saturating_sub(64)).unwrap_or(usize::MAX);
    let target = wanted.min(most);
    println!("open files limit {limit}: opening {target} stalled connections");

    let started = Instant::now();
    let mut flood = Vec::with_capacity(target);
    let mut failed = 0usize;
    for _ in 0..target {
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address)).await {
            Ok(Ok(mut s)) => {
                if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
                    .await
                    .is_ok()
                {
                    flood.push(s);
                } else {
                    failed += 1;
                }
            }
            _ => failed += 1,
        }
    }
    println!(
        "opened {} ({failed} failed) in {:.1?}",
        flood.len(),
        started.elapsed()
    );

    let mut latencies = Vec::with_capacity(probes);
    let mut errors = 0usize;
    for _ in 0..probes {
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(10), healthz(address)).await {
            Ok(Ok(true)) => latencies.push(t.elapsed()),
            _ => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    println!(
        "/healthz: {} answered 200, {errors} failed; p50 {:.2?}, p90 {:.2?}, max {:.2?}",
        latencies.len(),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    );

    // How many of the stalled connections the server still holds open.
    let mut open = 0usize;
    for s in &mut flood {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            Err(_) => open += 1,
            Ok(Ok(n)) if n > 0 => open += 1,
            Ok(_) => {}
        }
    }
    println!(
        "still open: {open} of {} stalled connections after {:.1?}",
        flood.len(),
        started.elapsed()
    );
    Ok(())
}

/// One `GET /healthz` on a fresh connection; true on a 200.
async fn healthz(address: SocketAddr) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(address).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}
