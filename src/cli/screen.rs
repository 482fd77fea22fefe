//! `portcullis screen NAME`: the designated names one name comes closest to,
//! with how each was scored — token by token, and what the declared kind,
//! date of birth and nationalities added or took away. For compliance
//! analysts reviewing a near match, and for tuning. The designations are the
//! policy directory's, indexed exactly as `serve` indexes them; the answer is
//! the `facts.screening` of a decision request that asked `"explain": true`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::json;

use portcullis_core::request::parse_decide;
use portcullis_core::screening::{Basis, Match, Screening};
use portcullis_core::snapshot::Sources;

use super::args::{EnrichArgs, Format, load_for_reading};
use super::exit;

/// What the screened name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A person.
    Individual,
    /// A company or other organisation.
    Organization,
}

#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// The name to screen, in any script.
    pub name: String,
    /// What the name is: a person's name scores lower against an
    /// organisation's, and the other way round.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Date of birth (`1970-03-01`, `1970-03` or `1970`): agreement raises a
    /// score, a clear difference lowers it.
    #[arg(long)]
    pub dob: Option<String>,
    /// A country of nationality (ISO 3166-1 alpha-2); repeat for several.
    #[arg(long = "nationality", value_name = "COUNTRY")]
    pub nationalities: Vec<String>,
    /// Policy directory whose `designations/*.jsonl` are screened against.
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
    #[command(flatten)]
    pub enrich: EnrichArgs,
    /// `human` (a table with each token pairing) or `json` (the
    /// `facts.screening` of a decision, explanations included).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: ScreenArgs) -> anyhow::Result<u8> {
    let mut customer = serde_json::Map::new();
    customer.insert("id".into(), json!("screen"));
    customer.insert("name".into(), json!(args.name));
    if let Some(kind) = args.kind {
        let kind = match kind {
            Kind::Individual => "individual",
            Kind::Organization => "organization",
        };
        customer.insert("kind".into(), json!(kind));
    }
    if let Some(dob) = &args.dob {
        customer.insert("date_of_birth".into(), json!(dob));
    }
    if !args.nationalities.is_empty() {
        customer.insert("nationalities".into(), json!(args.nationalities));
    }
    let body = json!({"action": "open_account", "customer": customer, "explain": true});
    let request = parse_decide(body.to_string().as_bytes()).map_err(|e| {
        let field = e.field.as_deref().unwrap_or("request");
        let flag = match field {
            "customer.name" => "NAME".to_owned(),
            "customer.date_of_birth" => "--dob".to_owned(),
            f if f.starts_with("customer.nationalities") => "--nationality".to_owned(),
            f => f.to_owned(),
        };
        anyhow::anyhow!("{flag}: {} ({})", e.message, e.code)
    })?;

    let mut sources = Sources::new(&args.policies, Vec::new());
    sources.settings = args.enrich.settings();
    let snapshot = match load_for_reading(sources) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let threshold = args.enrich.screening_threshold;
    let screening = snapshot.designations.screen_uncached(&request, threshold);
    match args.format {
        Format::Json => {
            let out = json!({
                "name": args.name,
                "threshold": threshold,
                "designations": snapshot.designations.len(),
                "screening": screening,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Human => print_human(
            &args.name,
            threshold,
            snapshot.designations.len(),
            &screening,
        ),
    }
    Ok(exit::OK)
}

fn print_human(name: &str, threshold: u8, designations: usize, screening: &Screening) {
    let names: Vec<&Match> = screening
        .matches
        .iter()
        .filter(|m| m.basis == Basis::Name)
        .collect();
    let matched = names.iter().filter(|m| m.score >= threshold).count();
    let near = names.len() - matched;
    if threshold > 70 {
        println!(
            "{name}: {matched} designated name(s) at or above {threshold}, {near} near miss(es) (70–{}), of {designations} designations",
            threshold - 1,
        );
    } else {
        println!(
            "{name}: {matched} designated name(s) at or above {threshold}, of {designations} designations"
        );
    }
    for m in names {
        let verdict = if m.score >= threshold {
            "match"
        } else {
            "near miss"
        };
        let measure = m
            .measure
            .as_deref()
            .map(|x| format!("  measure {x}"))
            .unwrap_or_default();
        println!();
        println!(
            "{:>3}  {verdict:<9}  {}  {}{measure}",
            m.score, m.designation, m.name
        );
        let Some(e) = &m.explanation else { continue };
        let pairs: Vec<String> = e
            .name
            .pairs
            .iter()
            .map(|p| format!("{} ~ {} {}", p.screened, p.designated, p.similarity))
            .collect();
        println!(
            "     name score {}: {}",
            e.name.name_score,
            pairs.join(", ")
        );
        if !e.name.designated_left_out.is_empty() {
            println!(
                "     left out of the designated name: {}",
                e.name.designated_left_out.join(", ")
            );
        }
        if !e.name.screened_left_out.is_empty() {
            println!(
                "     left out of the screened name: {}",
                e.name.screened_left_out.join(", ")
            );
        }
        for a in &e.adjustments {
            println!("     {} {:+}", a.reason.replace('_', " "), a.points);
        }
    }
}
