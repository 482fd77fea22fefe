//! The connection layer of the real binary: header-read and idle timeouts, the
//! connection cap under a slowloris flood, shutdown with slow connections open,
//! and 413s that reach clients which write their whole body before reading.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{Server, agent, signal, start, wait_exit, wait_log};
use crate::support::root;

const DEADLINE: Duration = Duration::from_secs(30);

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(address(server)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Blocks until the server closes the connection (end of stream or reset);
/// panics if it is still open at the deadline.
fn wait_closed(stream: &mut TcpStream) {
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(Instant::now() < end, "the connection is still open");
    }
}

/// Reads one answer: status line and headers, and the body (`Content-Length`).
fn read_answer(stream: &mut TcpStream) -> (String, Value) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed in the middle of the answer");
        data.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or(Value::Null);
    (head, body)
}

#[test]
fn partial_headers_are_closed_after_the_header_read_timeout() {
    let server = start(&["--header-read-timeout", "1s", "--no-watch"], root(), &[]);
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    wait_closed(&mut stream);
    // A request that completes its head in time is answered as before.
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_answer(&mut stream);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body["status"], "ok");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(
        &[
            "--idle-timeout",
            "1s",
            "--header-read-timeout",
            "60s",
            "--no-watch",
        ],
        root(),
        &[],
    );
    let mut stream = connect(&server);
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_answer(&mut stream);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("connection: close"), "kept alive: {head}");
    }
    wait_closed(&mut stream);
}

#[test]
fn at_the_connection_cap_healthz_is_still_answered_under_a_slowloris_flood() {
    let server = start(
        &[
            "--max-connections",
            "50",
            "--header-read-timeout",
            "60s",
            "--no-watch",
        ],
        root(),
        &[],
    );
    // 200 connections that never finish their headers.
    let mut flood: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"POST /v1/decide HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    let answered = loop {
        match agent().get(format!("{}/healthz", server.base)).call() {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let body: Value = res.body_mut().read_json().unwrap_or(Value::Null);
                break (status, body);
            }
            Err(e) => assert!(Instant::now() < end, "/healthz never answered: {e}"),
        }
    };
    assert_eq!(answered.0, 200, "{}", answered.1);
    // The cap holds: the oldest stalled connections were closed to make room.
    for s in &mut flood {
        s.set_nonblocking(true).unwrap();
    }
    loop {
        let closed = flood
            .iter()
            .filter(|s| {
                let mut s: &TcpStream = s;
                match s.read(&mut [0u8; 64]) {
                    Ok(0) => true,
                    Err(e) => e.kind() == ErrorKind::ConnectionReset,
                    Ok(_) => false,
                }
            })
            .count();
        if closed >= 150 {
            break;
        }
        assert!(Instant::now() < end, "only {closed} of 200 closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_log(&server.logs, "connection limit reached");
}

#[test]
fn sigterm_with_slow_connections_open_stops_within_the_drain_timeout() {
    let mut server = start(
        &[
            "--drain-timeout",
            "2s",
            "--header-read-timeout",
            "60s",
            "--request-timeout",
            "60s",
            "--no-watch",
        ],
        root(),
        &[],
    );
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    // One request in progress whose body never comes: only the drain timeout ends it.
    let mut busy = connect(&server);
    busy.write_all(
        b"POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"action\":",
    )
    .unwrap();
    // Every connection is accepted before the signal.
    let (status, _) = crate::binary::get(&server.base, "/healthz");
    assert_eq!(status, 200);
    signal(&server.child, "TERM");
    let exit = wait_exit(&mut server.child);
    assert!(exit.success(), "{exit:?}");
    wait_log(&server.logs, "stopped");
    wait_closed(&mut busy);
    for s in &mut slow {
        wait_closed(s);
    }
}

fn over_the_limit(head: &str, body: &Value) {
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert_eq!(body["error"]["field"], Value::Null);
}

#[test]
fn a_client_that_writes_its_whole_body_before_reading_gets_the_413() {
    let server = start(&["--no-watch"], root(), &[]);
    let body = vec![b' '; 5 * 1024 * 1024];

    // Declared length, as Python's http.client sends it.
    let mut stream = connect(&server);
    stream
        .write_all(
            format!(
                "POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(&body).unwrap();
    let (head, answer) = read_answer(&mut stream);
    over_the_limit(&head, &answer);
    wait_closed(&mut stream);

    // Chunked: no length declared, refused at the limit.
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /v1/decide/batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .unwrap();
    for chunk in body.chunks(64 * 1024) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        stream.write_all(chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let (head, answer) = read_answer(&mut stream);
    over_the_limit(&head, &answer);
}

#[test]
fn a_declared_length_over_the_limit_is_413_before_any_body() {
    let server = start(&["--no-watch"], root(), &[]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n",
        )
        .unwrap();
    let (head, answer) = read_answer(&mut stream);
    over_the_limit(&head, &answer);
}

#[test]
fn a_body_just_under_the_limit_still_decides() {
    let server = start(&["--no-watch"], root(), &[]);
    let request = br#"{"action":"open_account","customer":{"id":"c","name":"Ann"}}"#;
    let mut body = request.to_vec();
    body.resize(1024 * 1024 - 1, b' ');
    let mut stream = connect(&server);
    stream
        .write_all(
            format!(
                "POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(&body).unwrap();
    let (head, answer) = read_answer(&mut stream);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(answer["decision"], "allow", "{answer}");
    // Two bytes more (one over the limit) is over.
    body.resize(1024 * 1024 + 1, b' ');
    let mut stream = connect(&server);
    stream
        .write_all(
            format!(
                "POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(&body).unwrap();
    let (head, answer) = read_answer(&mut stream);
    over_the_limit(&head, &answer);
}
