//! Writes a records directory of many decision records, as a fleet replica
//! would after weeks of traffic: real records (taken from a directory the
//! service wrote) with a new customer pseudonym each, sealed into one chain
//! with a signed checkpoint every 10,000 records, in 64 MiB files, each
//! compressed once closed. One customer in 100,000 is the same one, for
//! timing `records export --customer-id` against it.
//!
//! ```sh
//! cargo run --release --example records_volume -- TEMPLATE_DIR OUT_DIR 10000000 signing.key
//! ```
//! Prints the pseudonym of the repeated customer.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use portcullis_audit::chain::{self, FileName, GENESIS, Hash, ReplicaId};
use portcullis_audit::{checkpoint, compress, merkle};
use sha2::{Digest, Sha256};

const EVERY: u64 = 10_000;
const FILE_BYTES: usize = 64 * 1024 * 1024;
const REPEATED_EVERY: u64 = 100_000;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "TEMPLATE_DIR OUT_DIR N SIGNING_KEY";
    let template = PathBuf::from(args.next().context(usage)?);
    let out = PathBuf::from(args.next().context(usage)?);
    let n: u64 = args.next().context(usage)?.parse()?;
    let key = portcullis_keys::SigningKey::read(Path::new(&args.next().context(usage)?))?;

    // Decision records' bodies (between `prev`/`replica` and `hash`), with
    // the customer pseudonym each holds.
    let mut bodies: Vec<(String, String)> = Vec::new();
    for f in chain::list(&template)? {
        let text = String::from_utf8(chain::read_file(&template.join(&f.name))?)?;
        for line in text.lines() {
            let rec = chain::open(line.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(id) = rec
                .body
                .get("customer")
                .and_then(|c| c.get("id"))
                .and_then(|i| i.as_str())
            else {
                continue;
            };
            if rec.kind() != "decision" {
                continue;
            }
            let start = line.find(",\"kind\"").context("a record without kind")?;
            let end = line.rfind(",\"hash\"").context("a record without hash")?;
            let inner = line.get(start + 1..end).context("a record")?;
            bodies.push((format!("{{{inner}}}"), id.to_owned()));
        }
    }
    anyhow::ensure!(
        !bodies.is_empty(),
        "no decision records with a customer in {}",
        template.display()
    );
    std::fs::create_dir_all(&out)?;
    let replica: ReplicaId = "r1".parse()?;
    let repeated = hex::encode(Sha256::digest(b"the repeated customer"));
    let mut prev: Hash = GENESIS;
    let mut since: Hash = GENESIS;
    let mut frontier = merkle::Frontier::new();
    let mut buf: Vec<u8> = Vec::with_capacity(FILE_BYTES + (1 << 20));
    let mut seq = 1u64;
    let stamp = chain::stamp(std::time::SystemTime::now());
    let mut compressing: Vec<std::thread::JoinHandle<std::io::Result<PathBuf>>> = Vec::new();
    let started = std::time::Instant::now();
    let mut bytes_plain = 0u64;
    for i in 0..n {
        let (body, id) = bodies
            .get(usize::try_from(i)? % bodies.len())
            .context("a template")?;
        let customer = if i % REPEATED_EVERY == 7 {
            repeated.clone()
        } else {
            hex::encode(Sha256::digest(i.to_le_bytes()))
        };
        let body = body.replacen(id.as_str(), &customer, 1);
        prev = chain::seal_as(&prev, Some(&replica), body.as_bytes(), &mut buf)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        frontier.push(&prev);
        let last = i + 1 == n;
        if (i + 1) % EVERY == 0 || last || buf.len() >= FILE_BYTES {
            // A checkpoint, signed as the writer signs it.
            let time = chain::record_time(std::time::SystemTime::now());
            let interval = checkpoint::Interval {
                since,
                root: frontier.root(),
            };
            let text = checkpoint::statement(
                Some(&replica),
                &prev,
                frontier.len(),
                &time,
                Some(&interval),
            );
            let record = serde_json::to_vec(&serde_json::json!({
                "kind": "checkpoint",
                "time": time,
                "records": frontier.len(),
                "since": chain::to_hex(&interval.since),
                "root": chain::to_hex(&interval.root),
                "key_id": key.public().id(),
                "signature": key.sign_message(checkpoint::CONTEXT, text.as_bytes()),
            }))?;
            prev = chain::seal_as(&prev, Some(&replica), &record, &mut buf)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            since = prev;
            frontier = merkle::Frontier::new();
        }
        if buf.len() >= FILE_BYTES || last {
            let name = FileName::of(Some(&replica), &stamp, seq);
            let path = out.join(&name.name);
            std::fs::File::create(&path)?.write_all(&buf)?;
            bytes_plain += buf.len() as u64;
            buf.clear();
            seq += 1;
            if compressing.len() >= 2 {
                compressing
                    .remove(0)
                    .join()
                    .map_err(|_| anyhow::anyhow!("a compression thread failed"))??;
            }
            compressing.push(std::thread::spawn(move || compress::compress(&path)));
        }
    }
    for t in compressing {
        t.join()
            .map_err(|_| anyhow::anyhow!("a compression thread failed"))??;
    }
    let on_disk: u64 = std::fs::read_dir(&out)?
        .map(|e| e.and_then(|e| e.metadata()).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()?;
    println!(
        "{n} records from {} templates in {} files: {bytes_plain} bytes of lines, {on_disk} on disk ({:.1}x), {:.1} s; repeated customer {repeated}",
        bodies.len(),
        seq - 1,
        bytes_plain as f64 / on_disk.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
