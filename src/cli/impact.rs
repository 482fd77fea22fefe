//! `portcullis impact --base DIR --candidate DIR --requests FILE|-`: decides
//! every request on the policy directory in force and on a candidate, and
//! says whose answers change: a summary by transition, measure and
//! jurisdiction on standard output, each change as a JSON line in `--out`.
//!
//! Exit codes: 0 done; 1 a `--fail-on` transition occurred (or an I/O error);
//! 2 bad usage; 3 a policy directory is invalid (or its test cases fail);
//! 7 `--strict` and a line was not a valid request; 130 interrupted (the
//! summary so far is printed).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use portcullis_core::impact::{NO_JURISDICTION, Tally, Transition};
use portcullis_core::lifecycle::Instant;
use portcullis_core::snapshot::{Snapshot, Sources};

use super::args::{EnrichArgs, Format, Geo, geo_files};
use super::{diagnostics, exit};
use crate::impact::{Options, Pair, RejectedLine, Rejections, Report};
use crate::server::state::Limits;

/// `portcullis impact`.
#[derive(Debug, Args)]
pub struct ImpactArgs {
    /// The policy directory in force (policies, designations, test cases).
    #[arg(long, value_name = "DIR")]
    base: PathBuf,
    /// The policy directory to compare with it.
    #[arg(long, value_name = "DIR")]
    candidate: PathBuf,
    /// Requests, one `/v1/decide` body per line (JSON Lines, plain or
    /// zstd-compressed); `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    requests: PathBuf,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in
    /// `./geo-data`. Both snapshots use the same.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Accept a policy directory with no policy at all (every request is then denied).
    #[arg(long)]
    allow_empty: bool,
    /// Write each request whose answer changes as one JSON line.
    #[arg(long, value_name = "FLIPS.jsonl")]
    out: Option<PathBuf>,
    /// Summary for people (`text`) or one JSON object (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit 1 if any request goes through one of these transitions
    /// (`deny->allow`, `conditional->allow`, …; comma-separated).
    #[arg(long, value_name = "FROM->TO", value_delimiter = ',')]
    fail_on: Vec<Transition>,
    /// Stop at the first line that is not a valid request (exit 7).
    #[arg(long)]
    strict: bool,
    /// Decide the requests that carry no `at` as of this instant (a date, or
    /// RFC 3339), on both directories; default: now, read once for the run.
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    at: Option<Instant>,
    /// Worker threads (1 to 1024); default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Longest line taken, in bytes (as `serve --max-body`).
    #[arg(long, default_value_t = Limits::default().max_body)]
    max_body: usize,
}

/// The `--format json` summary.
#[derive(Serialize)]
struct Summary<'a> {
    base: Side<'a>,
    candidate: Side<'a>,
    as_of: Instant,
    read: u64,
    rejected: &'a Rejections,
    #[serde(flatten)]
    tally: &'a Tally,
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_error: Option<&'a str>,
    fail_on: Vec<String>,
    failed: Vec<String>,
    threads: usize,
    elapsed_ms: u128,
    requests_per_second: u64,
}

#[derive(Serialize)]
struct Side<'a> {
    dir: String,
    revision: &'a str,
    policies: usize,
    designations: usize,
}

impl<'a> Side<'a> {
    fn of(dir: &std::path::Path, s: &'a Snapshot) -> Self {
        Self {
            dir: dir.display().to_string(),
            revision: &s.revision,
            policies: s.policies.len(),
            designations: s.designations.len(),
        }
    }
}

pub fn run(args: ImpactArgs) -> anyhow::Result<u8> {
    let geo = geo_files(&args.geo, Geo::Required)?;
    let sources = |dir: &PathBuf| Sources {
        policies: dir.clone(),
        geo: geo.clone(),
        settings: args.enrich.settings(),
        allow_empty: args.allow_empty,
        settle: std::time::Duration::ZERO,
        label: None,
    };
    let Some(base) = build("base", Snapshot::build(sources(&args.base))) else {
        return Ok(exit::INVALID);
    };
    // Whatever the candidate shares with the base (geo databases, an unchanged
    // list) is reused, not loaded twice.
    let Some(candidate) = build(
        "candidate",
        Snapshot::rebuild(sources(&args.candidate), Some(&base)),
    ) else {
        return Ok(exit::INVALID);
    };
    let limits = Limits {
        allow_as_of: true,
        ..Limits::default()
    };
    let pair = Pair {
        base,
        candidate,
        bounds: limits.bounds(),
        max_line: args.max_body,
        as_of: args.at.unwrap_or_else(Instant::now),
    };
    let input = crate::impact::open_input(&args.requests)
        .with_context(|| format!("cannot read `{}`", args.requests.display()))?;
    if let Some(out) = &args.out {
        if out.as_os_str() == "-" {
            anyhow::bail!(
                "--out -: the summary goes to standard output; give a file for the changes"
            );
        }
        if same_file(out, &args.requests) {
            anyhow::bail!(
                "--out `{}` is the requests file: writing the changes would destroy it",
                out.display()
            );
        }
    }
    let mut out_file = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write `{}`", path.display()))?,
        )),
        None => None,
    };
    let stop = interrupt_flag()?;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let options = Options {
        threads,
        strict: args.strict,
        stop: &stop,
    };
    eprintln!(
        "deciding the requests of `{}` on both directories ({threads} threads; Ctrl-C stops and reports)",
        args.requests.display()
    );
    let mut stderr = std::io::stderr().lock();
    let report = crate::impact::run(
        &pair,
        input,
        out_file
            .as_mut()
            .map(|f| f as &mut (dyn std::io::Write + Send)),
        |r| {
            let _ = writeln!(stderr, "{}", rejected_line(r));
        },
        &options,
    )
    .with_context(|| match &args.out {
        Some(path) => format!("impact stopped (changes in `{}`)", path.display()),
        None => "impact stopped".to_owned(),
    })?;
    let failed: Vec<Transition> = args
        .fail_on
        .iter()
        .copied()
        .filter(|t| report.tally.count(*t) > 0)
        .collect();
    match args.format {
        Format::Json => {
            let summary = Summary {
                base: Side::of(&args.base, &pair.base),
                candidate: Side::of(&args.candidate, &pair.candidate),
                as_of: pair.as_of,
                read: report.read,
                rejected: &report.rejected,
                tally: &report.tally,
                interrupted: report.interrupted,
                stopped_at_line: report.stopped_at,
                input_error: report.input_error.as_deref(),
                fail_on: args.fail_on.iter().map(ToString::to_string).collect(),
                failed: failed.iter().map(ToString::to_string).collect(),
                threads: report.threads,
                elapsed_ms: report.elapsed.as_millis(),
                requests_per_second: rate(&report),
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Format::Human => print!("{}", text(&args, &pair, &report, &failed)),
    }
    if let Some(e) = &report.input_error {
        eprintln!("error: cannot read `{}` {e}", args.requests.display());
    }
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if report.input_error.is_some() {
        exit::ERROR
    } else if report.stopped_at.is_some() {
        exit::REQUEST_REJECTED
    } else if !failed.is_empty() {
        exit::TRANSITION_FOUND
    } else {
        exit::OK
    })
}

/// The snapshot, or its problems reported and `None`.
pub(super) fn build(
    which: &str,
    built: Result<Snapshot, portcullis_core::snapshot::BuildError>,
) -> Option<Snapshot> {
    match built {
        Ok(s) => Some(s),
        Err(e) => {
            diagnostics::report(&e.diagnostics);
            eprintln!("refused: the {which} policy directory is invalid");
            None
        }
    }
}

/// Whether two paths name one existing file (the same inode, however reached).
pub(super) fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt as _;
            x.dev() == y.dev() && x.ino() == y.ino()
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok(),
        _ => false,
    }
}

/// Set by the first Ctrl-C (the run stops reading and reports what it read);
/// a second one ends the process at once.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    {
        use signal_hook::consts::SIGINT;
        let code = i32::from(exit::INTERRUPTED);
        signal_hook::flag::register_conditional_shutdown(SIGINT, code, flag.clone())
            .context("cannot handle Ctrl-C")?;
        signal_hook::flag::register(SIGINT, flag.clone()).context("cannot handle Ctrl-C")?;
    }
    Ok(flag)
}

/// `line 12: invalid_country at customer.address.country: …`
fn rejected_line(r: &RejectedLine) -> String {
    match &r.field {
        Some(field) => format!("line {}: {} at {field}: {}", r.line, r.code, r.message),
        None => format!("line {}: {}: {}", r.line, r.code, r.message),
    }
}

fn rate(report: &Report) -> u64 {
    let secs = report.elapsed.as_secs_f64();
    if secs > 0.0 {
        (report.tally.compared as f64 / secs) as u64
    } else {
        0
    }
}

/// The summary for people.
fn text(args: &ImpactArgs, pair: &Pair, report: &Report, failed: &[Transition]) -> String {
    let t = &report.tally;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "base       {} ({}, {} policies, {} designations)\ncandidate  {} ({}, {} policies, {} designations)\nas of      {}\n",
        pair.base.revision,
        args.base.display(),
        pair.base.policies.len(),
        pair.base.designations.len(),
        pair.candidate.revision,
        args.candidate.display(),
        pair.candidate.policies.len(),
        pair.candidate.designations.len(),
        pair.as_of,
    );
    let rows = [
        ("requests read", report.read),
        ("rejected", report.rejected.count),
        ("decided on both", t.compared),
        ("unchanged", t.unchanged),
        ("changed", t.changed),
        ("  decision flips", t.flips),
    ];
    for (label, n) in rows {
        let _ = writeln!(out, "{label:<20} {:>12}", thousands(n));
    }
    if !report.rejected.by_code.is_empty() {
        let codes: Vec<String> = report
            .rejected
            .by_code
            .iter()
            .map(|(code, n)| format!("{code} {}", thousands(*n)))
            .collect();
        let _ = writeln!(out, "rejected by code     {}", codes.join(", "));
    }
    if !t.transitions.is_empty() {
        let _ = writeln!(out, "\n{:<24} {:>12}", "transition", "requests");
        for tr in Transition::all() {
            let n = t.count(tr);
            if n > 0 {
                let note = if tr.is_flip() {
                    ""
                } else {
                    "  (same decision; reasons, conditions, obligations or matches changed)"
                };
                let _ = writeln!(out, "{:<24} {:>12}{note}", tr.to_string(), thousands(n));
            }
        }
    }
    if !t.by_measure.is_empty() {
        let _ = writeln!(out, "\n{:<24} {:>12} {:>12}", "measure", "gained", "lost");
        for (m, n) in &t.by_measure {
            let _ = writeln!(
                out,
                "{:<24} {:>12} {:>12}",
                m.as_ref(),
                thousands(n.gained),
                thousands(n.lost)
            );
        }
    }
    if !t.by_jurisdiction.is_empty() {
        let _ = writeln!(out, "\n{:<24} {:>12}", "jurisdiction", "requests");
        for (j, n) in &t.by_jurisdiction {
            let label = if j == NO_JURISDICTION { "(none)" } else { j };
            let _ = writeln!(out, "{label:<24} {:>12}", thousands(*n));
        }
    }
    let _ = writeln!(
        out,
        "\n{} requests decided twice in {:.2} s on {} threads ({} requests/s)",
        thousands(t.compared),
        report.elapsed.as_secs_f64(),
        report.threads,
        thousands(rate(report))
    );
    if report.interrupted {
        let _ = writeln!(
            out,
            "interrupted: the counts are those of the requests read so far"
        );
    }
    if let Some(line) = report.stopped_at {
        let _ = writeln!(
            out,
            "stopped at line {line}: it is not a valid request (--strict)"
        );
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "failed: {} occurred (--fail-on)", names.join(", "));
    }
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
