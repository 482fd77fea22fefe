//! Designated persons: the `policies/designations/*.jsonl` file format and its loader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::country::Country;
use crate::diagnostic::Diagnostic;
use crate::request::PartialDate;

/// One designated person or organization, as written in a designations file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Designation {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<DesignatedIdentifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesignatedIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A designation after validation: parsed networks, dates and countries.
#[derive(Debug, Clone)]
pub struct Designated {
    pub record: Designation,
    /// Every date of birth the record gives.
    pub dates_of_birth: Vec<PartialDate>,
    pub nationalities: Vec<Country>,
    /// Countries of address or residence.
    pub countries: Vec<Country>,
    pub cidrs: Vec<IpNetwork>,
    /// Where it was read from, for diagnostics.
    pub origin: Origin,
}

/// A file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
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

/// Parses one JSON Lines text; blank lines are skipped.
pub fn parse_file(
    file: &Path,
    text: &str,
    out: &mut Vec<Designated>,
    errors: &mut Vec<Diagnostic>,
) {
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            file: file.to_owned(),
            line: index + 1,
        };
        match parse_line(line, origin.clone()) {
            Ok(d) => out.push(d),
            Err(message) => errors.push(Diagnostic::new(file, origin.line, 0, message)),
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
    fn parses_contract_format() {
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
}
