//! Importers: public sanctions lists to the designations format (JSON Lines).
//!
//! `ofac` reads the OFAC SDN list in its legacy CSV layout (`sdn.csv`, with
//! `alt.csv` and `add.csv`), `un` the UN Security Council consolidated list
//! (XML). Both produce [`Designation`] records through one [`Builder`], which
//! deduplicates names and codes and never emits a value the designation loader
//! would refuse: country names map to ISO codes through `country_names` (an
//! unknown name is skipped and counted), dates are checked against the
//! calendar. [`write_jsonl`] checks the whole output with the designation
//! loader before it writes anything.

pub mod country_names;
pub mod ofac;
pub mod un;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_core::designation::{DesignatedIdentifier, Designation};
use portcullis_core::request::PartialDate;

/// A record's `kind` for a natural person.
pub const INDIVIDUAL: &str = "individual";
/// A record's `kind` for everything else: entities, and OFAC's vessels and aircraft.
pub const ORGANIZATION: &str = "organization";

/// Ranges of birth years wider than this give only their two ends.
pub const MAX_YEAR_SPAN: u16 = 10;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}`: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("`{path}` line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("`{path}`: invalid UN consolidated list: {source}")]
    Xml {
        path: PathBuf,
        #[source]
        source: quick_xml::DeError,
    },
    #[error("record id `{0}` is given twice")]
    DuplicateId(String),
    #[error("the imported designations do not load: {0}")]
    Invalid(String),
    #[error("cannot serialize designation `{id}`: {source}")]
    Serialize {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Choices that apply to every imported record.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The special measure to set on every record (`measure`); none by default.
    pub measure: Option<String>,
    /// Also keep weak aliases (OFAC's `a.k.a.` in remarks, UN `Low` quality).
    pub weak_aliases: bool,
}

/// What an import produced and what it had to leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: usize,
    pub individuals: usize,
    /// Names beyond each record's first (aliases and original-script names).
    pub aliases: usize,
    /// Weak aliases left out (see [`Options::weak_aliases`]).
    pub weak_aliases_skipped: usize,
    /// Records with at least one date of birth, and all dates of birth.
    pub records_with_dob: usize,
    pub dates_of_birth: usize,
    /// Birth dates that could not be read (Hijri dates, ages, impossible days).
    pub skipped_dates: usize,
    pub records_with_nationality: usize,
    pub nationalities: usize,
    /// Identifiers by kind (`passport`, `national_id`, `tax_id`, `other`).
    pub identifiers: BTreeMap<String, usize>,
    pub emails: usize,
    pub domains: usize,
    /// Countries of address.
    pub countries: usize,
    /// Country names with no ISO code in the table, and how often each was met.
    pub skipped_countries: BTreeMap<String, usize>,
    /// Aliases and addresses whose record is not in the main file.
    pub orphans: usize,
}

impl Stats {
    /// Every skipped country name, counted each time it was met.
    pub fn skipped_country_names(&self) -> usize {
        self.skipped_countries.values().sum()
    }

    pub fn identifiers_of(&self, kind: &str) -> usize {
        self.identifiers.get(kind).copied().unwrap_or(0)
    }

    /// A few lines for a person, as the CLI prints them.
    pub fn summary(&self, source: &str) -> String {
        let mut out = format!(
            "{source}: {} records ({} individuals), {} aliases ({} weak aliases left out)\n",
            self.records, self.individuals, self.aliases, self.weak_aliases_skipped
        );
        out += &format!(
            "  dates of birth: {} on {} records ({} unreadable, skipped); nationalities: {} on {} records\n",
            self.dates_of_birth,
            self.records_with_dob,
            self.skipped_dates,
            self.nationalities,
            self.records_with_nationality
        );
        let ids: Vec<String> = self
            .identifiers
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        out += &format!(
            "  identifiers: {}; emails: {}; domains: {}; address countries: {}\n",
            if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            },
            self.emails,
            self.domains,
            self.countries
        );
        let mut skipped: Vec<(&String, &usize)> = self.skipped_countries.iter().collect();
        skipped.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = skipped
            .iter()
            .take(8)
            .map(|(name, n)| format!("`{name}` ({n})"))
            .collect();
        out += &format!(
            "  skipped country names: {} ({} distinct){}{}\n",
            self.skipped_country_names(),
            self.skipped_countries.len(),
            if shown.is_empty() { "" } else { ": " },
            shown.join(", ")
        );
        if self.orphans > 0 {
            out += &format!(
                "  aliases or addresses of unknown records, ignored: {}\n",
                self.orphans
            );
        }
        out
    }
}

/// Builds one record: names, dates and codes are deduplicated as they come, and
/// nothing invalid gets in.
pub struct Builder<'a> {
    record: Designation,
    name_keys: HashSet<String>,
    stats: &'a mut Stats,
}

impl<'a> Builder<'a> {
    pub fn new(
        stats: &'a mut Stats,
        source: &str,
        prefix: &str,
        source_id: &str,
        kind: &str,
    ) -> Self {
        Self {
            record: Designation {
                id: format!("{prefix}-{source_id}"),
                kind: Some(kind.to_owned()),
                source: Some(source.to_owned()),
                source_id: Some(source_id.to_owned()),
                ..Designation::default()
            },
            name_keys: HashSet::new(),
            stats,
        }
    }

    pub fn stats(&mut self) -> &mut Stats {
        self.stats
    }

    /// Adds a name (the first one is the primary name); whitespace is collapsed,
    /// and a name already there (ignoring case) is not added again.
    pub fn name(&mut self, name: &str) {
        let name = collapse_whitespace(name);
        if name.is_empty() || !self.name_keys.insert(name.to_lowercase()) {
            return;
        }
        if !self.record.names.is_empty() {
            self.stats.aliases += 1;
        }
        self.record.names.push(name);
    }

    /// A date of birth as `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, checked.
    pub fn date_of_birth(&mut self, date: BirthDate) {
        let text = date.to_string();
        if PartialDate::parse(&text).is_none() {
            self.stats.skipped_dates += 1;
            return;
        }
        if self.record.date_of_birth.as_deref() == Some(text.as_str())
            || self.record.other_dates_of_birth.contains(&text)
        {
            return;
        }
        if self.record.date_of_birth.is_none() {
            self.record.date_of_birth = Some(text);
        } else {
            self.record.other_dates_of_birth.push(text);
        }
    }

    /// A nationality or citizenship, by country name.
    pub fn nationality(&mut self, name: &str) {
        if let Some(code) = self.country_code(name) {
            push_unique(&mut self.record.nationalities, code);
        }
    }

    /// A country of address, by name.
    pub fn country(&mut self, name: &str) {
        if let Some(code) = self.country_code(name) {
            push_unique(&mut self.record.countries, code);
        }
    }

    /// An identifier; `country` is a country name (skipped, and counted, when unknown).
    pub fn identifier(&mut self, kind: &str, value: &str, country: Option<&str>) {
        let value = collapse_whitespace(value);
        if !value.chars().any(|c| c.is_ascii_alphanumeric()) {
            return;
        }
        let country = country.and_then(|c| self.country_code(c));
        let id = DesignatedIdentifier {
            kind: Some(kind.to_owned()),
            value,
            country,
        };
        if !self.record.identifiers.contains(&id) {
            self.record.identifiers.push(id);
        }
    }

    pub fn email(&mut self, email: &str) {
        push_unique(&mut self.record.emails, email.to_lowercase());
    }

    pub fn domain(&mut self, domain: &str) {
        push_unique(&mut self.record.domains, domain.to_lowercase());
    }

    pub fn program(&mut self, program: &str) {
        let program = collapse_whitespace(program);
        if !program.is_empty() {
            push_unique(&mut self.record.programs, program);
        }
    }

    fn country_code(&mut self, name: &str) -> Option<String> {
        let name = collapse_whitespace(name);
        if name.is_empty() {
            return None;
        }
        match crate::country_names::lookup(&name) {
            Some(code) => Some(code.to_string()),
            None => {
                *self.stats.skipped_countries.entry(name).or_default() += 1;
                None
            }
        }
    }

    /// The finished record, counted; `None` (and not counted) if it has no name.
    pub fn finish(self, options: &Options) -> Option<Designation> {
        let mut record = self.record;
        if record.names.is_empty() {
            return None;
        }
        record.measure.clone_from(&options.measure);
        let stats = self.stats;
        stats.records += 1;
        if record.kind.as_deref() == Some(INDIVIDUAL) {
            stats.individuals += 1;
        }
        let dates = usize::from(record.date_of_birth.is_some()) + record.other_dates_of_birth.len();
        stats.dates_of_birth += dates;
        stats.records_with_dob += usize::from(dates > 0);
        stats.nationalities += record.nationalities.len();
        stats.records_with_nationality += usize::from(!record.nationalities.is_empty());
        for id in &record.identifiers {
            let kind = id.kind.clone().unwrap_or_default();
            *stats.identifiers.entry(kind).or_default() += 1;
        }
        stats.emails += record.emails.len();
        stats.domains += record.domains.len();
        stats.countries += record.countries.len();
        Some(record)
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// Trims and turns every run of whitespace (newlines included) into one space.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A date of birth as precise as the list gives it; days are checked against
/// the month (leap years included) when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthDate {
    Year(u16),
    Month(u16, u8),
    Day(u16, u8, u8),
}

impl BirthDate {
    /// A full date, if the day exists in that month.
    pub fn day(year: u16, month: u8, day: u8) -> Option<Self> {
        (day >= 1 && day <= days_in_month(year, month)?).then_some(Self::Day(year, month, day))
    }

    pub fn month(year: u16, month: u8) -> Option<Self> {
        (1..=12)
            .contains(&month)
            .then_some(Self::Month(year, month))
    }

    pub fn year(&self) -> u16 {
        match *self {
            Self::Year(y) | Self::Month(y, _) | Self::Day(y, _, _) => y,
        }
    }

    /// Parses `YYYY-MM-DD` (the UN's `DATE`), checking the day.
    pub fn parse_iso(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Self::day(year, month, day)
    }
}

impl std::fmt::Display for BirthDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Year(y) => write!(f, "{y:04}"),
            Self::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Self::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
        }
    }
}

fn days_in_month(year: u16, month: u8) -> Option<u8> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

/// The years a range of birth dates spans: each of them, or only the two ends
/// when the range is wider than [`MAX_YEAR_SPAN`] years.
pub fn year_range(from: u16, to: u16) -> Vec<BirthDate> {
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    if to - from > MAX_YEAR_SPAN {
        vec![BirthDate::Year(from), BirthDate::Year(to)]
    } else {
        (from..=to).map(BirthDate::Year).collect()
    }
}

/// An English month name or abbreviation (`Jan`, `Sep.`, `Sept`, `August`).
pub fn month_number(word: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let word = word.trim().trim_end_matches('.').to_ascii_lowercase();
    if word.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&word))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// Checks that ids are unique, serializes one record a line, ends with the
/// trailer (count and SHA-256 of the lines before it, see
/// `designation::Trailer`), and checks the text with the designation loader,
/// so that what is returned always loads.
pub fn to_jsonl(records: &[Designation]) -> Result<String, ImportError> {
    let mut seen = HashSet::new();
    let mut text = String::new();
    for record in records {
        if !seen.insert(record.id.as_str()) {
            return Err(ImportError::DuplicateId(record.id.clone()));
        }
        let line = serde_json::to_string(record).map_err(|source| ImportError::Serialize {
            id: record.id.clone(),
            source,
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    let trailer = portcullis_core::designation::Trailer::of(&text);
    let trailer = serde_json::to_string(&trailer).map_err(|source| ImportError::Serialize {
        id: "trailer".into(),
        source,
    })?;
    text.push_str(&trailer);
    text.push('\n');
    let sources = [(PathBuf::from("imported.jsonl"), text)];
    if let Err(problems) = portcullis_core::designation::load_sources(&sources) {
        let first: Vec<String> = problems.iter().take(5).map(|d| d.to_string()).collect();
        return Err(ImportError::Invalid(first.join("; ")));
    }
    let [(_, text)] = sources;
    Ok(text)
}

/// Writes the records to `path` as JSON Lines, through a temporary file renamed
/// into place, so that a watching service never reads half a file.
pub fn write_jsonl(path: &Path, records: &[Designation]) -> Result<(), ImportError> {
    let text = to_jsonl(records)?;
    let write_error = |source| ImportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = std::fs::File::create(&partial).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&partial, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_are_checked_against_the_calendar() {
        assert_eq!(
            BirthDate::day(1960, 2, 29).map(|d| d.to_string()),
            Some("1960-02-29".into())
        );
        assert_eq!(BirthDate::day(1961, 2, 29), None);
        assert_eq!(BirthDate::day(1961, 4, 31), None);
        assert_eq!(BirthDate::day(1961, 13, 1), None);
        assert_eq!(BirthDate::month(1961, 0), None);
        assert_eq!(
            BirthDate::parse_iso("1979-03-03").map(|d| d.to_string()),
            Some("1979-03-03".into())
        );
        assert_eq!(BirthDate::Year(1951).to_string(), "1951");
        assert_eq!(BirthDate::Month(1973, 11).to_string(), "1973-11");
    }

    #[test]
    fn ranges_give_each_year_up_to_a_span() {
        let years = |v: Vec<BirthDate>| v.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        assert_eq!(years(year_range(1960, 1962)), ["1960", "1961", "1962"]);
        assert_eq!(years(year_range(1962, 1960)), ["1960", "1961", "1962"]);
        assert_eq!(years(year_range(1940, 1980)), ["1940", "1980"]);
    }

    #[test]
    fn month_names_and_abbreviations() {
        assert_eq!(month_number("Jan"), Some(1));
        assert_eq!(month_number("Sep."), Some(9));
        assert_eq!(month_number("Sept"), Some(9));
        assert_eq!(month_number("August"), Some(8));
        assert_eq!(month_number("Ma"), None);
        assert_eq!(month_number("Foo"), None);
    }

    #[test]
    fn builder_deduplicates_and_skips_unknown_countries() {
        let mut stats = Stats::default();
        let mut b = Builder::new(&mut stats, "TEST", "T", "1", INDIVIDUAL);
        b.name(" Ivan  Petrov ");
        b.name("IVAN PETROV");
        b.name("Иван Петров");
        b.nationality("Russia");
        b.nationality("Russian Federation");
        b.nationality("Kosovo");
        b.country("Atlantis");
        b.date_of_birth(BirthDate::Year(1970));
        b.date_of_birth(BirthDate::Year(1970));
        b.date_of_birth(BirthDate::Year(1500));
        b.date_of_birth(BirthDate::Year(1971));
        b.identifier("passport", "AB 123", Some("Russia"));
        b.identifier("passport", "AB 123", Some("Russia"));
        b.identifier("other", "--", None);
        let options = Options {
            measure: Some("SM-1".into()),
            weak_aliases: false,
        };
        let d = b.finish(&options).unwrap();
        assert_eq!(d.id, "T-1");
        assert_eq!(d.names, ["Ivan Petrov", "Иван Петров"]);
        assert_eq!(d.nationalities, ["RU"]);
        assert!(d.countries.is_empty());
        assert_eq!(d.date_of_birth.as_deref(), Some("1970"));
        assert_eq!(d.other_dates_of_birth, ["1971"]);
        assert_eq!(d.identifiers.len(), 1);
        assert_eq!(d.identifiers[0].country.as_deref(), Some("RU"));
        assert_eq!(d.measure.as_deref(), Some("SM-1"));
        assert_eq!(stats.aliases, 1);
        assert_eq!(stats.skipped_dates, 1);
        assert_eq!(stats.skipped_country_names(), 2);
        assert_eq!(stats.records, 1);
    }

    #[test]
    fn output_is_checked_by_the_loader() {
        let good = Designation {
            id: "X-1".into(),
            names: vec!["A".into()],
            ..Designation::default()
        };
        let text = to_jsonl(std::slice::from_ref(&good)).unwrap();
        let line = "{\"id\":\"X-1\",\"names\":[\"A\"]}\n";
        let trailer = portcullis_core::designation::Trailer::of(line);
        assert_eq!(
            text,
            format!("{line}{{\"count\":1,\"sha256\":\"{}\"}}\n", trailer.sha256)
        );
        assert!(matches!(
            to_jsonl(&[good.clone(), good.clone()]),
            Err(ImportError::DuplicateId(id)) if id == "X-1"
        ));
        let bad = Designation {
            nationalities: vec!["Iran".into()],
            ..good
        };
        assert!(matches!(to_jsonl(&[bad]), Err(ImportError::Invalid(_))));
    }

    #[test]
    fn writes_whole_files_and_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let record = Designation {
            id: "X-1".into(),
            names: vec!["A".into()],
            ..Designation::default()
        };
        let out = dir.path().join("d.jsonl");
        write_jsonl(&out, std::slice::from_ref(&record)).unwrap();
        // The record and the trailer.
        assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);

        let missing = dir.path().join("absent/d.jsonl");
        assert!(matches!(
            write_jsonl(&missing, &[record]),
            Err(ImportError::Write { .. })
        ));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["d.jsonl"]);
    }
}
