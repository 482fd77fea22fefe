//! `portcullis explain [--policies DIR] [--geo FILE]… REQUEST.json|-`: the
//! decision on one request and how it was reached — the facts derived, each
//! policy of the action's slice with what happened to it, and the part each
//! satisfied one played. The snapshot is loaded as `serve` loads it (its test
//! cases are not run: a failing case is one thing `explain` helps with).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use portcullis_core::explain::{Explanation, PolicyResult, Role, explain};
use portcullis_core::request::parse_decide;
use portcullis_core::snapshot::Sources;

use super::args::{EnrichArgs, Format, Geo, geo_files, load_for_reading};
use super::check::print_json;
use super::exit;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A `/v1/decide` request body (JSON); `-` reads standard input. It may set
    /// `at` to decide as of another instant.
    #[arg(value_name = "REQUEST.json|-")]
    request: PathBuf,
    /// Policy directory: `*.cedar`, `designations/*.jsonl`.
    #[arg(long, default_value = "policies", env = "PORTCULLIS_POLICIES")]
    policies: PathBuf,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in `./geo-data`.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// `text` (for people) or `json` (the body `POST /v1/explain` answers).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<u8> {
    let body = if args.request.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .context("cannot read the request from standard input")?;
        body
    } else {
        std::fs::read(&args.request)
            .with_context(|| format!("cannot read `{}`", args.request.display()))?
    };
    let request = parse_decide(&body).map_err(|e| {
        let field = e.field.map(|f| format!(" at `{f}`")).unwrap_or_default();
        anyhow::anyhow!(
            "{}: invalid request ({}){field}: {}",
            args.request.display(),
            e.code,
            e.message
        )
    })?;
    let mut sources = Sources::new(&args.policies, geo_files(&args.geo, Geo::Optional)?);
    sources.settings = args.enrich.settings();
    let snapshot = match load_for_reading(sources) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let explanation = explain(&snapshot, &request);
    match args.format {
        Format::Json => print_json(&explanation)?,
        Format::Human => print!("{}", render(&explanation)),
    }
    Ok(exit::OK)
}

/// The explanation for people.
pub fn render(e: &Explanation) -> String {
    use std::fmt::Write as _;
    let d = &e.decision;
    let mut out = String::new();
    let _ = writeln!(out, "{}", e.summary);
    let _ = writeln!(
        out,
        "action {}, as of {}, revision {}",
        e.action.as_str(),
        d.decided_at,
        d.policy_revision
    );
    let _ = writeln!(out, "\nfacts");
    if e.countries.is_empty() {
        let _ = writeln!(out, "  no country is tied to the request");
    }
    for c in &e.countries {
        let _ = writeln!(out, "  {}  {}", c.country, c.sources.join("; "));
    }
    let f = &d.facts;
    let _ = writeln!(
        out,
        "  ip_country_mismatch {}, anonymous_ip {}",
        f.ip_country_mismatch, f.anonymous_ip
    );
    let _ = writeln!(
        out,
        "  screening score {}, matches [{}]",
        f.screening.score,
        f.screening_matches.join(", ")
    );
    for m in f.screening.matches.iter().take(5) {
        let _ = writeln!(out, "    {:>3}  {}  {}", m.score, m.designation, m.name);
    }
    let _ = writeln!(out, "\npolicies for {}", e.action.as_str());
    for p in &e.policies {
        let what = match &p.result {
            PolicyResult::OutOfWindow {
                state,
                effective,
                expires,
            } => {
                let mut s = format!("skipped: out of its window ({}", state.as_str());
                if let Some(t) = effective {
                    s.push_str(&format!(", effective {t}"));
                }
                if let Some(t) = expires {
                    s.push_str(&format!(", expires {t}"));
                }
                s.push(')');
                s
            }
            PolicyResult::GuardFalse { guard } => format!("skipped: `{guard}` is false"),
            PolicyResult::DecidedByGuards => "satisfied (by its guards)".to_owned(),
            PolicyResult::Satisfied => "satisfied (evaluated by Cedar)".to_owned(),
            PolicyResult::NotSatisfied => "not satisfied (evaluated by Cedar)".to_owned(),
            PolicyResult::Error { error } => format!("error: {error}"),
            PolicyResult::NotReached => "not reached (evaluation stopped)".to_owned(),
        };
        let role = match &p.role {
            None => String::new(),
            Some(Role::Denies) => " -> denies".to_owned(),
            Some(Role::DeniesFailClosed) => " -> denies (fail closed)".to_owned(),
            Some(Role::ConditionalOn { condition }) => format!(" -> conditional on `{condition}`"),
            Some(Role::Lifted { condition }) => {
                format!(" -> lifted: `{condition}` is satisfied")
            }
            Some(Role::Permits { obligation: None }) => " -> permits".to_owned(),
            Some(Role::Permits {
                obligation: Some(o),
            }) => format!(" -> permits, with obligation `{o}`"),
            Some(Role::DoesNotApply) => " -> does not apply (a permit that errs)".to_owned(),
        };
        let measure = p
            .measure
            .as_deref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<6} {}{measure}  ({}:{})\n         {what}{role}",
            p.effect,
            p.policy,
            p.file.display(),
            p.line
        );
    }
    if !e.other_actions.is_empty() {
        let _ = writeln!(
            out,
            "  (not for this action: {})",
            e.other_actions
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for err in &d.errors {
        let _ = writeln!(out, "\nerror: {}", err.message);
    }
    out
}
