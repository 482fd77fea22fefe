//! Arguments and value parsers that several commands share, and the one place
//! the default geo databases are found.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use portcullis_core::enrich::EnrichSettings;
use portcullis_core::snapshot::{Sources, list_files};

/// Where geo databases are looked for when no `--geo` is given.
pub const DEFAULT_GEO_DIR: &str = "geo-data";

/// Enrichment settings (they change decisions, so they are part of the revision).
#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// Minimum screening score (0-100) for a designated person to count as matched.
    #[arg(long, default_value_t = EnrichSettings::default().screening_threshold,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub screening_threshold: u8,
}

impl EnrichArgs {
    /// The settings these arguments give.
    pub fn settings(&self) -> EnrichSettings {
        EnrichSettings {
            screening_threshold: self.screening_threshold,
        }
    }
}

/// A policy directory as `check` and `test` read it.
#[derive(Debug, Args)]
pub struct PolicyDirArgs {
    /// Policy directory: `*.cedar`, `designations/*.jsonl`, `tests/*.json`.
    pub dir: PathBuf,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in
    /// `./geo-data`; without any, the policies are checked without geolocation.
    #[arg(long = "geo", value_name = "FILE")]
    pub geo: Vec<PathBuf>,
    #[command(flatten)]
    pub enrich: EnrichArgs,
    /// Accept a policy directory with no policy at all (every request is then denied).
    #[arg(long)]
    pub allow_empty: bool,
    /// How problems are printed: `human` (with the source line) or `json` (for CI).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

impl PolicyDirArgs {
    /// The inputs of a snapshot (read at once: no settle window).
    pub fn sources(&self) -> anyhow::Result<Sources> {
        Ok(Sources {
            policies: self.dir.clone(),
            geo: geo_files(&self.geo, Geo::Optional)?,
            settings: self.enrich.settings(),
            allow_empty: self.allow_empty,
            settle: Duration::ZERO,
            label: None,
        })
    }
}

/// Loads the snapshot a read-only command works on (`explain`, `screen`):
/// an empty policy directory allowed, test cases not run; on failure the
/// problems are reported and the exit code is returned.
pub fn load_for_reading(sources: Sources) -> Result<portcullis_core::snapshot::Snapshot, u8> {
    let sources = Sources {
        allow_empty: true,
        ..sources
    };
    portcullis_core::snapshot::Snapshot::load(sources).map_err(|e| {
        super::diagnostics::report(&e.diagnostics);
        super::exit::INVALID
    })
}

/// Output format of `check` and `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: diagnostics with the source line and a caret.
    #[value(alias = "text")]
    Human,
    /// One JSON document on stdout, for pipelines.
    Json,
}

/// Whether a command can do without geo databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geo {
    /// `serve`: a service without geolocation would decide on less than it
    /// should; no database is an error.
    Required,
    /// `check`, `test`: policies can be checked without one (said on stderr).
    Optional,
}

/// The geo databases to load: those given, else every `*.mmdb` in
/// `./geo-data`. A `./geo-data` that cannot be read is an error either way.
pub fn geo_files(given: &[PathBuf], need: Geo) -> anyhow::Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let dir = Path::new(DEFAULT_GEO_DIR);
    let files = if dir.exists() {
        list_files(dir, "mmdb").map_err(|d| {
            anyhow::anyhow!(
                "no geo database given and cannot read `{}`: {d}",
                dir.display()
            )
        })?
    } else {
        Vec::new()
    };
    if files.is_empty() {
        match need {
            Geo::Required => anyhow::bail!(
                "no geo database given and none in `{}`: pass --geo FILE",
                dir.display()
            ),
            Geo::Optional => eprintln!(
                "note: no geo database given and none in `{}`: checking without geolocation",
                dir.display()
            ),
        }
    }
    Ok(files)
}

/// A duration written as `10s`, `500ms`, `1h` (humantime), shown the same way.
pub type HumanDuration = humantime::Duration;

/// Turns a default `Duration` into what an argument shows and parses.
pub fn human(d: Duration) -> HumanDuration {
    d.into()
}

/// `10%`, `10` or `2.5%`: a share from 0 to 100 percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(f64);

impl Percent {
    /// A share from 0.0 to 1.0, as a percentage.
    pub fn from_share(share: f64) -> Self {
        Self(share * 100.0)
    }

    /// The share, from 0.0 to 1.0.
    pub fn share(self) -> f64 {
        self.0 / 100.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = s.trim().trim_end_matches('%').trim();
        match number.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Self(p)),
            _ => Err(format!("`{s}`: expected a percentage from 0% to 100%")),
        }
    }
}

/// A count of at least one (a limit of zero would refuse everything).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// An RFC 3339 time such as `2026-01-31T00:00:00Z`.
pub fn rfc3339(s: &str) -> Result<std::time::SystemTime, String> {
    // With its offset (`+02:00`, `-05:00`, `Z`), to the nanosecond; a date
    // alone is its midnight UTC.
    portcullis_core::lifecycle::Instant::parse(s)
        .and_then(|i| {
            let nanos = i.0.as_nanosecond();
            let abs = nanos.unsigned_abs();
            let out_of_range = || format!("`{s}` is out of range");
            let secs = u64::try_from(abs / 1_000_000_000).map_err(|_| out_of_range())?;
            let sub = u32::try_from(abs % 1_000_000_000).map_err(|_| out_of_range())?;
            let span = std::time::Duration::new(secs, sub);
            let epoch = std::time::SystemTime::UNIX_EPOCH;
            if nanos >= 0 {
                epoch.checked_add(span)
            } else {
                epoch.checked_sub(span)
            }
            .ok_or_else(out_of_range)
        })
        .map_err(|e| format!("{e}; expected RFC 3339 such as 2026-01-31T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_defaults_show_as_written_and_parse_back() {
        let p = Percent::from_share(0.10);
        assert_eq!(p.to_string(), "10%");
        assert_eq!(p.to_string().parse::<Percent>(), Ok(p));
        assert_eq!("2.5".parse::<Percent>().map(Percent::share), Ok(0.025));
        assert!("101%".parse::<Percent>().is_err());
        assert!("-1".parse::<Percent>().is_err());
    }

    #[test]
    fn durations_show_as_they_parse() {
        assert_eq!(human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(human(Duration::from_secs(3600)).to_string(), "1h");
    }
}
