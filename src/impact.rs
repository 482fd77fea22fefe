//! `portcullis impact`'s engine: requests read as JSON Lines (plain or
//! zstd-compressed), each decided on two snapshots by a pool of threads, the
//! answers compared (`portcullis_core::impact`), tallied, and every change
//! written in input order.
//!
//! Memory does not grow with the input: a reader thread cuts the input into
//! chunks of lines (at most [`CHUNK_LINES`] lines or about [`CHUNK_BYTES`]
//! bytes), workers decide whole chunks, and the caller's thread puts
//! their results back in order. At most [`WINDOW`] chunks are between the
//! reader and the output at any time (the reader waits for a token the output
//! gives back per chunk written), so a slow chunk holds up the reader rather
//! than letting results pile up behind it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as Clock};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;

use portcullis_core::decision::Decision;
use portcullis_core::engine::decide;
use portcullis_core::impact::{Change, Tally, compare};
use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::limits::DECISION_STACK;
use portcullis_core::request::{Bounds, DecideRequest, RequestError, parse_decide};
use portcullis_core::snapshot::Snapshot;

/// Lines a worker takes at once, at most.
pub const CHUNK_LINES: usize = 512;
/// Bytes of lines a chunk holds before it is sent (one more line may cross
/// it): long lines make short chunks, so memory stays bounded by
/// [`WINDOW`] × (this + the longest line), not by the lines' length.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Chunks read and not yet written, at most.
pub const WINDOW: usize = 64;
/// Rejected lines kept for the summary (all are counted and reported as they come).
pub const REJECTIONS_KEPT: usize = 100;
/// The zstd frame's magic number: such input is decompressed as it is read.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The two snapshots and how requests are held to the API's limits.
pub struct Pair {
    /// The snapshot in force.
    pub base: Snapshot,
    /// The snapshot to compare.
    pub candidate: Snapshot,
    /// Each request's bounds, as `serve` holds them (`at` allowed).
    pub bounds: Bounds,
    /// The longest line taken, in bytes (the API's body limit).
    pub max_line: usize,
    /// The instant a request without `at` is decided as of, on both.
    pub as_of: Instant,
}

/// What became of one line.
#[derive(Debug)]
pub enum Judged {
    /// Empty or only white space: not a request.
    Blank,
    /// Not a valid request: the API's error code, message and field.
    Rejected(RequestError),
    /// Decided on both snapshots.
    Compared {
        /// The request's `request_id`.
        request_id: Option<String>,
        /// The request's own `at`, if it set one.
        at: Option<Instant>,
        /// How the answers differ; `None` when they agree.
        change: Option<Box<Change>>,
    },
}

impl Pair {
    /// Decodes, checks and decides one line on both snapshots.
    pub fn judge(&self, line: &[u8]) -> Judged {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Judged::Blank;
        }
        if line.len() > self.max_line {
            return Judged::Rejected(too_long(self.max_line));
        }
        let request = match parse_decide(line).and_then(|r| {
            r.check_bounds(&self.bounds)?;
            Ok(r)
        }) {
            Ok(r) => r,
            Err(e) => return Judged::Rejected(e),
        };
        let at = request.at;
        let request_id = request.request_id.clone();
        let (before, after) = self.decide_both(request);
        Judged::Compared {
            request_id,
            at,
            change: compare(before, after).map(Box::new),
        }
    }

    /// Decides one request on both snapshots as of one instant: its `at`, else
    /// the run's.
    pub fn decide_both(&self, mut request: DecideRequest) -> (Decision, Decision) {
        request.at = Some(request.at.unwrap_or(self.as_of));
        (
            decide(&self.base, &request),
            decide(&self.candidate, &request),
        )
    }
}

fn too_long(max: usize) -> RequestError {
    RequestError {
        code: "payload_too_large",
        message: format!("the line is over the body limit of {max} bytes"),
        field: None,
    }
}

/// A line that was not a request.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// The API's error code (`invalid_country`, `malformed_json`, …).
    pub code: &'static str,
    /// The field, as the API names it (`customer.address.country`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Rejected lines: counted by code, the first few kept.
#[derive(Debug, Default, Serialize)]
pub struct Rejections {
    /// `count`: every rejected line.
    pub count: u64,
    /// `by_code`: rejected lines by error code.
    pub by_code: BTreeMap<&'static str, u64>,
    /// `lines`: the first [`REJECTIONS_KEPT`].
    pub lines: Vec<RejectedLine>,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests read (blank lines left out), rejected ones included.
    pub read: u64,
    /// Lines that were not requests.
    pub rejected: Rejections,
    /// The comparison of the requests decided.
    pub tally: Tally,
    /// Stopped by an interrupt: the counts are those of the lines read so far.
    pub interrupted: bool,
    /// `--strict`: the line the run stopped at.
    pub stopped_at: Option<u64>,
    /// The input could not be read to its end (after what is counted).
    pub input_error: Option<String>,
    /// How long deciding took.
    pub elapsed: Duration,
    /// Worker threads.
    pub threads: usize,
}

/// How a run goes.
pub struct Options<'a> {
    /// Worker threads.
    pub threads: usize,
    /// Stop at the first rejected line.
    pub strict: bool,
    /// Set by an interrupt: stop reading, report what was read.
    pub stop: &'a AtomicBool,
}

/// One line of `--out`: a request whose answer changes.
#[derive(Serialize)]
struct ChangeLine<'a> {
    request_id: RequestRef<'a>,
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<Instant>,
    #[serde(flatten)]
    change: &'a Change,
}

/// The request's id, or its line number when it has none.
#[derive(Serialize)]
#[serde(untagged)]
enum RequestRef<'a> {
    Id(&'a str),
    Line(u64),
}

/// Lines read together; `ends[i]` is where line `first + i` ends in `text`.
struct Chunk {
    seq: u64,
    first: u64,
    text: Vec<u8>,
    lines: Vec<LineSpan>,
}

enum LineSpan {
    Text(std::ops::Range<usize>),
    TooLong,
}

/// A chunk decided.
struct Done {
    seq: u64,
    read: u64,
    tally: Tally,
    rejected: Vec<RejectedLine>,
    /// The chunk's `--out` lines, serialised.
    changes: Vec<u8>,
    /// `--strict`: the first rejected line; the rest of the chunk was not decided.
    stopped_at: Option<u64>,
    /// Deciding the chunk failed (a defect: the engine does not panic); its lines.
    failed: Option<String>,
}

/// Decides every request of `input` on both snapshots, writing each change to
/// `out` and reporting each rejected line to `on_rejected`, in input order.
pub fn run(
    pair: &Pair,
    input: impl BufRead + Send,
    mut out: Option<&mut (dyn Write + Send)>,
    mut on_rejected: impl FnMut(&RejectedLine),
    options: &Options<'_>,
) -> io::Result<Report> {
    let started = Clock::now();
    let threads = options.threads.max(1);
    let (chunks_tx, chunks_rx) = bounded::<Chunk>(threads * 2);
    let (done_tx, done_rx) = bounded::<Done>(WINDOW);
    let (tokens_tx, tokens_rx) = bounded::<()>(WINDOW);
    for _ in 0..WINDOW {
        let _ = tokens_tx.send(());
    }
    let mut report = Report {
        threads,
        ..Report::default()
    };
    let mut write_error = None;
    let mut failed = None;
    std::thread::scope(|scope| -> io::Result<()> {
        // Owned by this closure: whatever way it returns, the reader's tokens
        // and the workers' queue go with it, so no thread is left waiting.
        let tokens_tx = tokens_tx;
        let chunks_rx = chunks_rx;
        let started = |e: io::Error| {
            options.stop.store(true, Ordering::Relaxed);
            io::Error::new(e.kind(), format!("cannot start a thread: {e}"))
        };
        let reader = std::thread::Builder::new()
            .name("impact-read".into())
            .spawn_scoped(scope, move || {
                read_chunks(input, pair.max_line, chunks_tx, tokens_rx, options.stop)
            })
            .map_err(started)?;
        for i in 0..threads {
            let chunks = chunks_rx.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("impact-{i}"))
                .stack_size(DECISION_STACK)
                .spawn_scoped(scope, move || work(pair, options.strict, &chunks, &done))
                .map_err(started)?;
        }
        drop(done_tx);
        drop(chunks_rx);
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for done in done_rx.iter() {
            pending.insert(done.seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                let _ = tokens_tx.send(());
                if report.stopped_at.is_some() || write_error.is_some() || failed.is_some() {
                    continue;
                }
                if let Some(lines) = &done.failed {
                    failed = Some(format!("deciding lines {lines} failed"));
                    options.stop.store(true, Ordering::Relaxed);
                    continue;
                }
                report.read += done.read;
                report.tally.merge(done.tally);
                for r in done.rejected {
                    on_rejected(&r);
                    report.rejected.count += 1;
                    *report.rejected.by_code.entry(r.code).or_default() += 1;
                    if report.rejected.lines.len() < REJECTIONS_KEPT {
                        report.rejected.lines.push(r);
                    }
                }
                if let Some(out) = out.as_deref_mut()
                    && let Err(e) = out.write_all(&done.changes)
                {
                    write_error = Some(e);
                    options.stop.store(true, Ordering::Relaxed);
                }
                if done.stopped_at.is_some() {
                    report.stopped_at = done.stopped_at;
                    options.stop.store(true, Ordering::Relaxed);
                }
            }
        }
        match reader.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.input_error = Some(e.to_string()),
            Err(_) => report.input_error = Some("the reader thread failed".into()),
        }
        Ok(())
    })?;
    if let Some(e) = write_error {
        return Err(io::Error::new(
            e.kind(),
            format!("cannot write the changes: {e}"),
        ));
    }
    if let Some(e) = failed {
        return Err(io::Error::other(e));
    }
    if let Some(out) = out {
        out.flush()?;
    }
    report.interrupted = options.stop.load(Ordering::Relaxed)
        && report.stopped_at.is_none()
        && report.input_error.is_none();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Cuts the input into chunks of lines until its end, an error or `stop`.
fn read_chunks(
    mut input: impl BufRead,
    max_line: usize,
    chunks: Sender<Chunk>,
    tokens: Receiver<()>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut line_no = 0u64;
    for seq in 0.. {
        if tokens.recv().is_err() || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut chunk = Chunk {
            seq,
            first: line_no + 1,
            text: Vec::with_capacity(CHUNK_LINES * 512),
            lines: Vec::with_capacity(CHUNK_LINES),
        };
        let mut eof = false;
        while chunk.lines.len() < CHUNK_LINES && chunk.text.len() < CHUNK_BYTES {
            if stop.load(Ordering::Relaxed) {
                eof = true;
                break;
            }
            let start = chunk.text.len();
            match read_line(&mut input, &mut chunk.text, max_line) {
                Ok(LineRead::Eof) => {
                    eof = true;
                    break;
                }
                Ok(LineRead::Line) => chunk.lines.push(LineSpan::Text(start..chunk.text.len())),
                Ok(LineRead::TooLong) => {
                    chunk.text.truncate(start);
                    chunk.lines.push(LineSpan::TooLong);
                }
                Err(e) => {
                    // What was read before the error is still decided.
                    if !chunk.lines.is_empty() {
                        let _ = chunks.send(chunk);
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("after line {line_no}: {e}"),
                    ));
                }
            }
            line_no += 1;
        }
        if !chunk.lines.is_empty() && chunks.send(chunk).is_err() {
            return Ok(());
        }
        if eof {
            return Ok(());
        }
    }
    Ok(())
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Appends one line (without its end) to `buf`; a line longer than `max`
/// bytes is skipped to its end and only said to be too long.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    let start = buf.len();
    let mut any = false;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let used = newline.map_or(available.len(), |i| i + 1);
        let piece = available.get(..newline.unwrap_or(used)).unwrap_or_default();
        // `\r\n` and trailing blanks are trimmed by the worker: allow for them.
        if !too_long && buf.len() - start + piece.len() <= max.saturating_add(2) {
            buf.extend_from_slice(piece);
        } else {
            too_long = true;
            buf.truncate(start);
        }
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => LineRead::Eof,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

impl Done {
    /// Nothing decided yet.
    fn empty(seq: u64) -> Self {
        Self {
            seq,
            read: 0,
            tally: Tally::default(),
            rejected: Vec::new(),
            changes: Vec::new(),
            stopped_at: None,
            failed: None,
        }
    }
}

/// Decides chunks until there are no more.
fn work(pair: &Pair, strict: bool, chunks: &Receiver<Chunk>, done: &Sender<Done>) {
    for chunk in chunks.iter() {
        // A chunk whose decision panicked is reported, not lost: the output
        // waits for every chunk in order.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decide_chunk(pair, strict, &chunk)
        }))
        .unwrap_or_else(|_| {
            let last = chunk.first + chunk.lines.len() as u64 - 1;
            Done {
                failed: Some(format!("{}–{last}", chunk.first)),
                ..Done::empty(chunk.seq)
            }
        });
        if done.send(result).is_err() {
            return;
        }
    }
}

fn decide_chunk(pair: &Pair, strict: bool, chunk: &Chunk) -> Done {
    let mut result = Done::empty(chunk.seq);
    for (line, span) in (chunk.first..).zip(&chunk.lines) {
        let judged = match span {
            LineSpan::Text(range) => pair.judge(chunk.text.get(range.clone()).unwrap_or_default()),
            LineSpan::TooLong => Judged::Rejected(too_long(pair.max_line)),
        };
        match judged {
            Judged::Blank => {}
            Judged::Rejected(e) => {
                result.read += 1;
                result.rejected.push(RejectedLine {
                    line,
                    code: e.code,
                    field: e.field,
                    message: e.message,
                });
                if strict {
                    result.stopped_at = Some(line);
                    return result;
                }
            }
            Judged::Compared {
                request_id,
                at,
                change,
            } => {
                result.read += 1;
                result.tally.add(change.as_deref());
                if let Some(change) = change {
                    let id = match request_id.as_deref() {
                        Some(id) if !id.is_empty() => RequestRef::Id(id),
                        _ => RequestRef::Line(line),
                    };
                    let entry = ChangeLine {
                        request_id: id,
                        line,
                        at,
                        change: &change,
                    };
                    // A change serialises (its maps have string keys); were it
                    // not to, the line would be missing rather than torn.
                    let mut text = serde_json::to_vec(&entry).unwrap_or_default();
                    if !text.is_empty() {
                        text.push(b'\n');
                        result.changes.extend_from_slice(&text);
                    }
                }
            }
        }
    }
    result
}

/// Opens the requests: a file, or standard input for `-`; zstd-compressed
/// input (by its magic number, whatever the name) is decompressed as read.
pub fn open_input(path: &std::path::Path) -> io::Result<Box<dyn BufRead + Send>> {
    const BUFFER: usize = 256 * 1024;
    let mut raw: Box<dyn io::Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    // The first bytes, however the reads come (a pipe may give one at a time).
    let mut head = [0u8; ZSTD_MAGIC.len()];
    let mut got = 0;
    while let Some(rest) = head.get_mut(got..).filter(|r| !r.is_empty()) {
        match raw.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compressed = head == ZSTD_MAGIC;
    let head = head.get(..got).unwrap_or_default().to_vec();
    let whole: Box<dyn io::Read + Send> = Box::new(io::Cursor::new(head).chain(raw));
    let reader = io::BufReader::with_capacity(BUFFER, whole);
    if compressed {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
        Ok(Box::new(io::BufReader::with_capacity(BUFFER, decoder)))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_whole_or_said_too_long_and_skipped() {
        let text = b"short\r\nthis one is far too long\n\nlast";
        let mut input = io::BufReader::with_capacity(4, &text[..]);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        loop {
            let start = buf.len();
            match read_line(&mut input, &mut buf, 8).unwrap() {
                LineRead::Eof => break,
                LineRead::Line => seen.push(String::from_utf8(buf[start..].to_vec()).unwrap()),
                LineRead::TooLong => seen.push("<too long>".into()),
            }
        }
        assert_eq!(seen, ["short\r", "<too long>", "", "last"]);
    }
}
