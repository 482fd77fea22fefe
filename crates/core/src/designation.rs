//! Designated persons: the `policies/designations/*.jsonl` file format and its loader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::country::Country;
use crate::diagnostic::Diagnostic;
use crate::request::PartialDate;

/// One designated person or organization, as written in a designations file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Designation {
    /// `id`: required, not blank, unique across all designation files.
    pub id: String,
    /// `kind`: `individual` or `organization` (tunes name matching); other text counts as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `names`: primary name first; at least one must not be blank.
    pub names: Vec<String>,
    /// `date_of_birth`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// `nationalities`: ISO 3166-1 alpha-2 codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<String>,
    /// `identifiers`: passports, tax ids and the like; matched exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<DesignatedIdentifier>,
    /// `emails`: e-mail addresses; matched exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// `domains`: e-mail domains; matched exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// `cidrs`: IPv4 or IPv6 networks that source IPs are screened against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// `measure`: the special measure it falls under, reported with its matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Further dates of birth, when the list gives several (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_dates_of_birth: Vec<String>,
    /// Countries of address or residence (ISO codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// The list it was imported from (`OFAC-SDN`, `UN`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The id of the record in that list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Sanctions programmes of that list (`CUBA`, `SDGT`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<String>,
}

/// One entry of a designation's `identifiers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesignatedIdentifier {
    /// `kind`: the kind of document, e.g. `passport` (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `value`: the identifier itself, required.
    pub value: String,
    /// `country`: the issuing country, ISO alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A designation after validation: parsed networks, dates and countries.
#[derive(Debug, Clone)]
pub struct Designated {
    /// The record as written.
    pub record: Designation,
    /// Every date of birth the record gives.
    pub dates_of_birth: Vec<PartialDate>,
    /// Its nationalities, validated.
    pub nationalities: Vec<Country>,
    /// Countries of address or residence.
    pub(crate) countries: Vec<Country>,
    /// Its networks.
    pub(crate) cidrs: Vec<IpNetwork>,
    /// Where it was read from, for diagnostics.
    pub(crate) origin: Origin,
}

/// A file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The designations file.
    pub file: PathBuf,
    /// 1-based line in it.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Parses designation files given as `(file, text)` pairs and checks that ids
/// are unique across them. All problems are collected, not just the first.
pub fn load_sources(sources: &[(PathBuf, String)]) -> Result<Vec<Designated>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in sources {
        parse_file(file, text, &mut out, &mut errors);
    }
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    for d in &out {
        if let Some(first) = seen.insert(&d.record.id, &d.origin) {
            errors.push(Diagnostic::new(
                &d.origin.file,
                d.origin.line,
                0,
                format!(
                    "duplicate designation id `{}` (first defined at {first})",
                    d.record.id
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The last line of a designations file that `designations import` writes:
/// how many records precede it and the SHA-256 (hex) of every byte before it.
/// A file cut short or still being written lacks it or does not match it; the
/// loader checks it when present (hand-written files need none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// `count`: how many records (non-blank lines) precede it.
    pub count: usize,
    /// `sha256`: SHA-256, in hex, of every byte before it.
    pub sha256: String,
}

impl Trailer {
    /// The trailer for `text`, the records' lines.
    pub fn of(text: &str) -> Self {
        Self {
            count: text.lines().filter(|l| !l.trim().is_empty()).count(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        }
    }

    /// Whether a line is meant as a trailer (it has `count` and no `id`).
    fn is_trailer(line: &str) -> bool {
        line.contains("\"count\"") && !line.contains("\"id\"")
    }
}

/// Parses one JSON Lines text; blank lines are skipped. A final trailer line
/// (see [`Trailer`]) is checked against what precedes it.
pub fn parse_file(
    file: &Path,
    text: &str,
    out: &mut Vec<Designated>,
    errors: &mut Vec<Diagnostic>,
) {
    let mut offset = 0;
    let mut trailer: Option<(usize, usize, Trailer)> = None;
    let mut records = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            file: file.to_owned(),
            line: index + 1,
        };
        if let Some((at, _, _)) = &trailer {
            errors.push(Diagnostic::new(
                file,
                *at,
                0,
                "the trailer (`{\"count\": …, \"sha256\": …}`) must be the last line",
            ));
            trailer = None;
        }
        if Trailer::is_trailer(line) {
            match serde_json::from_str::<Trailer>(line) {
                Ok(t) => trailer = Some((origin.line, start, t)),
                Err(e) => errors.push(Diagnostic::new(
                    file,
                    origin.line,
                    0,
                    format!("invalid trailer: {e}"),
                )),
            }
            continue;
        }
        records += 1;
        match parse_line(line, origin.clone()) {
            Ok(d) => out.push(d),
            Err(message) => errors.push(Diagnostic::new(file, origin.line, 0, message)),
        }
    }
    if let Some((line, start, t)) = trailer {
        let body = text.get(..start).unwrap_or_default();
        let actual = Trailer::of(body);
        if t.count != records {
            errors.push(Diagnostic::new(
                file,
                line,
                0,
                format!(
                    "the trailer says {} designations, the file holds {records}: the file is incomplete or was edited",
                    t.count
                ),
            ));
        } else if !t.sha256.eq_ignore_ascii_case(&actual.sha256) {
            errors.push(Diagnostic::new(
                file,
                line,
                0,
                "the trailer's sha256 does not match the lines before it: the file is incomplete or was edited",
            ));
        }
    }
}

fn parse_line(line: &str, origin: Origin) -> Result<Designated, String> {
    let record: Designation =
        serde_json::from_str(line).map_err(|e| format!("invalid designation: {e}"))?;
    validate(record, origin)
}

/// Checks one record (ids, names, dates, countries, networks) and parses its fields.
pub fn validate(record: Designation, origin: Origin) -> Result<Designated, String> {
    if record.id.trim().is_empty() {
        return Err("designation `id` must not be empty".into());
    }
    if !record.names.iter().any(|n| !n.trim().is_empty()) {
        return Err(format!("designation `{}` has no names", record.id));
    }
    let dates_of_birth = record
        .date_of_birth
        .iter()
        .chain(&record.other_dates_of_birth)
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            PartialDate::parse(s)
                .ok_or_else(|| format!("designation `{}`: invalid date of birth `{s}`", record.id))
        })
        .collect::<Result<_, _>>()?;
    let countries_of = |codes: &[String]| {
        codes
            .iter()
            .map(|c| {
                Country::parse(c).ok_or_else(|| {
                    format!("designation `{}`: invalid country code `{c}`", record.id)
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let nationalities = countries_of(&record.nationalities)?;
    let countries = countries_of(&record.countries)?;
    let cidrs = record
        .cidrs
        .iter()
        .map(|c| {
            c.parse::<IpNetwork>()
                .map_err(|e| format!("designation `{}`: invalid CIDR `{c}`: {e}", record.id))
        })
        .collect::<Result<_, _>>()?;
    Ok(Designated {
        record,
        dates_of_birth,
        nationalities,
        countries,
        cidrs,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Designated>, Vec<Diagnostic>) {
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        parse_file(Path::new("d.jsonl"), text, &mut out, &mut errors);
        (out, errors)
    }

    #[test]
    fn parses_the_documented_format() {
        let (out, errors) = parse(
            r#"{"id":"SMP-0001","kind":"individual","names":["Ivan Petrov","Иван Петров"],"date_of_birth":"1970-03-01","nationalities":["ru"],"identifiers":[{"kind":"passport","value":"AB123"}],"emails":["x@y.ru"],"domains":["y.ru"],"cidrs":["203.0.113.0/24"],"measure":"SM-1"}

{"id":"SMP-0002","names":["Acme LLC"]}"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].cidrs.len(), 1);
        assert_eq!(out[1].origin.line, 3);
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_, errors) = parse(
            "{\"id\":\"a\",\"names\":[\"x\"]}\n{\"id\":\"b\",\"names\":[\"y\"],\"cidrs\":[\"1.2.3.0/99\"]}\nnot json",
        );
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("d.jsonl:2: "), "{}", text[0]);
        assert!(text[1].starts_with("d.jsonl:3: "), "{}", text[1]);
    }

    #[test]
    fn a_trailer_is_checked_against_the_lines_before_it() {
        let body = "{\"id\":\"a\",\"names\":[\"x\"]}\n{\"id\":\"b\",\"names\":[\"y\"]}\n";
        let trailer = serde_json::to_string(&Trailer::of(body)).unwrap();
        let whole = format!("{body}{trailer}\n");
        let (out, errors) = parse(&whole);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 2);

        // Cut after the first line, trailer kept: the count no longer matches.
        let cut = format!("{}\n{trailer}\n", body.lines().next().unwrap());
        let (_, errors) = parse(&cut);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("d.jsonl:2: the trailer says 2 designations, the file holds 1"),
            "{}",
            errors[0]
        );

        // Same count, one record edited: the hash no longer matches.
        let edited = whole.replacen("\"x\"", "\"z\"", 1);
        let (_, errors) = parse(&edited);
        assert!(
            errors[0].message.contains("sha256 does not match"),
            "{errors:?}"
        );

        // A trailer that is not last is an error; so is a malformed one.
        let (_, errors) = parse(&format!("{trailer}\n{body}"));
        assert!(
            errors[0].message.contains("must be the last line"),
            "{errors:?}"
        );
        let (_, errors) = parse(&format!("{body}{{\"count\": \"two\"}}\n"));
        assert!(
            errors[0].message.starts_with("invalid trailer"),
            "{errors:?}"
        );
    }
}
