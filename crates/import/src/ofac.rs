//! The OFAC SDN list in its legacy CSV layout: `sdn.csv` (one primary record a
//! line), `alt.csv` (aliases) and `add.csv` (addresses), joined on `ent_num`.
//!
//! The files have no header; fields are quoted when they need it and `-0-`
//! means empty. Dates of birth, nationalities, citizenships, identity
//! documents, emails and websites are only in the free-text remarks of
//! `sdn.csv` (`DOB 10 Nov 1950; alt. DOB 1951; nationality Iraq; Passport
//! A123456 (Iraq); …`), which [`parse_remarks`] reads.
//!
//! Decisions: names are kept as written (`LAST, First`; matching folds word
//! order). Vessels and aircraft are `organization` records (the record's
//! `source_id` leads back to the list). Weak aliases (`a.k.a.` in the remarks,
//! which OFAC keeps apart from `alt.csv` because they are too broad to screen
//! on) are left out unless asked for. A birth-date range gives each year it
//! spans (see [`super::year_range`]); `circa 1960` gives `1960`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{
    BirthDate, Builder, INDIVIDUAL, ImportError, ORGANIZATION, Options, Stats, month_number,
    year_range,
};
use portcullis_core::designation::{Designated, Designation, Origin};

/// The `source` of every OFAC record.
pub const SOURCE: &str = "OFAC-SDN";
/// Record ids are `OFAC-<ent_num>`.
pub const ID_PREFIX: &str = "OFAC";

/// The legacy files cut remarks at this many characters; the last item of a
/// remark that long may be truncated, so it is not read.
const REMARKS_LIMIT: usize = 1000;

/// The three files; only `sdn` is required.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub sdn: &'a Path,
    pub alt: Option<&'a Path>,
    pub add: Option<&'a Path>,
}

impl Files<'_> {
    /// `sdn.csv`, `alt.csv` and `add.csv` of one directory, as OFAC publishes them.
    pub fn in_dir(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join("sdn.csv"),
            dir.join("alt.csv"),
            dir.join("add.csv"),
        )
    }
}

/// Imports the SDN list from a directory holding `sdn.csv`, `alt.csv` and
/// `add.csv`, validated as the designations loader would.
pub fn import_dir(dir: &Path, options: &Options) -> Result<Vec<Designated>, ImportError> {
    let (sdn, alt, add) = Files::in_dir(dir);
    let files = Files {
        sdn: &sdn,
        alt: Some(&alt),
        add: Some(&add),
    };
    let (records, _) = import(files, options)?;
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let origin = Origin {
                file: sdn.clone(),
                line: i + 1,
            };
            portcullis_core::designation::validate(record, origin)
                .map_err(|message| ImportError::Invalid(format!("{}: {message}", sdn.display())))
        })
        .collect()
}

/// Reads the files and returns one record per line of `sdn.csv`.
pub fn import(
    files: Files<'_>,
    options: &Options,
) -> Result<(Vec<Designation>, Stats), ImportError> {
    let mut stats = Stats::default();
    // ent_num, alt_num, alt_type, alt_name, remarks
    let aliases = read_by_entity(files.alt, 4, 3)?;
    // ent_num, add_num, address, city/state/postal, country, remarks
    let addresses = read_by_entity(files.add, 5, 4)?;

    let mut records = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, row) in read_rows(files.sdn, 12)? {
        let ent_num = field(&row, 0);
        if ent_num.is_empty() {
            return Err(ImportError::Malformed {
                path: files.sdn.to_owned(),
                line,
                message: "no `ent_num`".into(),
            });
        }
        seen.insert(ent_num.to_owned());
        let joined = Joined {
            aliases: aliases.get(ent_num),
            countries: addresses.get(ent_num),
        };
        records.extend(sdn_record(&row, joined, &mut stats, options));
    }
    stats.orphans = aliases
        .iter()
        .chain(&addresses)
        .filter(|(ent, _)| !seen.contains(*ent))
        .map(|(_, v)| v.len())
        .sum();
    Ok((records, stats))
}

/// Column `column` of the rows of an optional file, by `ent_num` (the first
/// column); rows need at least `min_fields` fields.
fn read_by_entity(
    path: Option<&Path>,
    min_fields: usize,
    column: usize,
) -> Result<HashMap<String, Vec<String>>, ImportError> {
    let mut by_entity: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(path) = path {
        for (_, row) in read_rows(path, min_fields)? {
            if let (Some(ent), Some(value)) = (row.first(), row.get(column)) {
                by_entity
                    .entry(ent.clone())
                    .or_default()
                    .push(value.clone());
            }
        }
    }
    Ok(by_entity)
}

/// A field of a row, empty if the row is shorter.
fn field(row: &[String], i: usize) -> &str {
    row.get(i).map(String::as_str).unwrap_or_default()
}

/// What `alt.csv` and `add.csv` give one entity.
#[derive(Clone, Copy)]
struct Joined<'a> {
    aliases: Option<&'a Vec<String>>,
    /// The countries of its addresses.
    countries: Option<&'a Vec<String>>,
}

/// The record of one row of `sdn.csv` (its `ent_num` not empty), with what
/// the other files give it.
fn sdn_record(
    row: &[String],
    joined: Joined<'_>,
    stats: &mut Stats,
    options: &Options,
) -> Option<Designation> {
    let ent_num = field(row, 0);
    let kind = if field(row, 2) == "individual" {
        INDIVIDUAL
    } else {
        ORGANIZATION
    };
    let remarks = parse_remarks(field(row, 11));
    let mut b = Builder::new(stats, SOURCE, ID_PREFIX, ent_num, kind);
    b.name(field(row, 1));
    for alias in joined.aliases.into_iter().flatten() {
        b.name(alias);
    }
    if options.weak_aliases {
        for alias in &remarks.weak_aliases {
            b.name(alias);
        }
    } else {
        b.stats().weak_aliases_skipped += remarks.weak_aliases.len();
    }
    for program in programs(field(row, 3)) {
        b.program(program);
    }
    add_remarks(&mut b, remarks);
    for country in joined.countries.into_iter().flatten() {
        b.country(country);
    }
    b.finish(options)
}

/// Adds what the remarks say besides weak aliases (added with the names):
/// dates of birth, nationalities, identifiers, emails and website domains.
fn add_remarks(b: &mut Builder<'_>, remarks: Remarks) {
    for date in remarks.dates_of_birth {
        b.date_of_birth(date);
    }
    b.stats().skipped_dates += remarks.unreadable_dates.len();
    for name in &remarks.nationalities {
        b.nationality(name);
    }
    for id in &remarks.identifiers {
        b.identifier(id.kind, &id.value, id.country.as_deref());
    }
    for email in &remarks.emails {
        b.email(email);
    }
    for domain in &remarks.domains {
        b.domain(domain);
    }
}

/// The rows of one file with their line numbers, fields trimmed and `-0-` made
/// empty. Blank rows (the files end with an end-of-file character) are skipped.
fn read_rows(path: &Path, min_fields: usize) -> Result<Vec<(u64, Vec<String>)>, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| ImportError::Csv {
            path: path.to_owned(),
            source,
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let fields: Vec<String> = record
            .iter()
            .map(|f| {
                let f = f.trim_matches(|c: char| c.is_whitespace() || c.is_control());
                if f == "-0-" {
                    String::new()
                } else {
                    f.to_owned()
                }
            })
            .collect();
        if fields.iter().all(String::is_empty) {
            continue;
        }
        if fields.len() < min_fields {
            return Err(ImportError::Malformed {
                path: path.to_owned(),
                line,
                message: format!("{} fields, expected at least {min_fields}", fields.len()),
            });
        }
        rows.push((line, fields));
    }
    Ok(rows)
}

/// `SDGT] [SYRIA` (the legacy layout's way of listing several) → `SDGT`, `SYRIA`.
fn programs(field: &str) -> impl Iterator<Item = &str> {
    field
        .split("] [")
        .map(|p| p.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace()))
        .filter(|p| !p.is_empty())
}

/// What the remarks of one record say, before country names become codes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remarks {
    pub dates_of_birth: Vec<BirthDate>,
    /// `DOB` items that could not be read.
    pub unreadable_dates: Vec<String>,
    /// Country names from `nationality` and `citizen` items (and their `alt.`).
    pub nationalities: Vec<String>,
    pub identifiers: Vec<RemarkIdentifier>,
    pub emails: Vec<String>,
    /// From `Website` items: the host, without `www.`.
    pub domains: Vec<String>,
    /// Names of `a.k.a.`, `f.k.a.` and `n.k.a.` items.
    pub weak_aliases: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RemarkIdentifier {
    /// `passport`, `national_id`, `tax_id` or `other`.
    pub kind: &'static str,
    pub value: String,
    /// The country name in parentheses after the value, if any.
    pub country: Option<String>,
}

/// Identifier labels of the remarks and the kind each is imported as. The
/// longest label that starts an item wins.
const ID_LABELS: &[(&str, &str)] = &[
    ("Passport", "passport"),
    ("Diplomatic Passport", "passport"),
    ("British National Overseas Passport", "passport"),
    ("Stateless Person Passport", "passport"),
    ("Travel Document Number", "passport"),
    ("National ID No.", "national_id"),
    ("National ID Number", "national_id"),
    ("National Foreign ID Number", "national_id"),
    ("Identification Number", "national_id"),
    ("Personal ID Card", "national_id"),
    ("Cedula No.", "national_id"),
    ("C.U.R.P.", "national_id"),
    ("CURP", "national_id"),
    ("D.N.I.", "national_id"),
    ("SSN", "national_id"),
    ("Turkish Identification Number", "national_id"),
    ("Citizen's Card Number", "national_id"),
    ("Kenyan ID No.", "national_id"),
    ("Tazkira National ID Card", "national_id"),
    ("Moroccan Personal ID No.", "national_id"),
    ("Bosnian Personal ID No.", "national_id"),
    ("CNP (Personal Numerical Code)", "national_id"),
    ("Stateless Person ID Card", "national_id"),
    ("Refugee ID Card", "national_id"),
    ("Residency Number", "national_id"),
    ("Tax ID No.", "tax_id"),
    ("NIT #", "tax_id"),
    ("RUC #", "tax_id"),
    ("RIF #", "tax_id"),
    ("R.F.C.", "tax_id"),
    ("RFC", "tax_id"),
    ("CUIT", "tax_id"),
    ("V.A.T. Number", "tax_id"),
    ("Italian Fiscal Code", "tax_id"),
    ("Fiscal Code", "tax_id"),
    ("Romanian Tax Registration", "tax_id"),
    ("Numero Unico de Identificacao Tributaria (NUIT)", "tax_id"),
    ("Paraguayan tax identification number", "tax_id"),
    ("Registration ID", "other"),
    ("Registration Number", "other"),
    ("Company Number", "other"),
    ("UK Company Number", "other"),
    ("Commercial Registry Number", "other"),
    ("Matricula Mercantil No", "other"),
    ("Folio Mercantil No.", "other"),
    ("Business Registration Document #", "other"),
    ("Business Registration Number", "other"),
    ("Business Number", "other"),
    ("Trade License No.", "other"),
    ("C.R. No.", "other"),
    ("Government Gazette Number", "other"),
    ("D-U-N-S Number", "other"),
    ("Chamber of Commerce Number", "other"),
    ("Dubai Chamber of Commerce Membership No.", "other"),
    ("Istanbul Chamber of Comm. No.", "other"),
    ("Public Registration Number", "other"),
    ("Legal Entity Number", "other"),
    ("Enterprise Number", "other"),
    ("Branch Unit Number", "other"),
    ("Certificate of Incorporation Number", "other"),
    ("Unified Social Credit Code (USCC)", "other"),
    ("United Social Credit Code Certificate (USCCC)", "other"),
    ("Registered Charity No.", "other"),
    ("LE Number", "other"),
    ("File Number", "other"),
    ("VisaNumberID", "other"),
    ("Driver's License No.", "other"),
    ("Pilot License Number", "other"),
    ("Birth Certificate Number", "other"),
    ("Electoral Registry No.", "other"),
    ("Immigration No.", "other"),
    ("SRE Permit No.", "other"),
    ("Afghan Money Service Provider License Number", "other"),
    ("Vessel Registration Identification", "other"),
    ("MMSI", "other"),
    ("Aircraft Manufacturer's Serial Number (MSN)", "other"),
    ("Aircraft Serial Identification", "other"),
    (
        "Aircraft Construction Number (also called L/N or S/N or F/N)",
        "other",
    ),
    ("Aircraft Tail Number", "other"),
    ("Previous Aircraft Tail Number", "other"),
    ("Aircraft Mode S Transponder Code", "other"),
    ("SWIFT/BIC", "other"),
    ("Digital Currency Address -", "other"),
];

/// Labels whose values need not contain a digit.
const LETTERS_ONLY_LABELS: &[&str] = &["SWIFT/BIC"];
/// Labels followed by a word to skip before the value (the currency: `XBT 1Kuf…`).
const WORD_BEFORE_VALUE: &[&str] = &["Digital Currency Address -"];
/// Longer "values" are prose, not identifiers.
const MAX_ID_LEN: usize = 48;

/// Reads the remarks of one `sdn.csv` line. Items are separated by `;`; an
/// item may start with `alt.`; items this does not know are ignored.
pub fn parse_remarks(text: &str) -> Remarks {
    let mut out = Remarks::default();
    let text = text.trim();
    let mut items: Vec<&str> = text.split(';').collect();
    if text.len() >= REMARKS_LIMIT && !text.ends_with('.') {
        items.pop();
    }
    for item in items {
        let item = item.trim();
        let item = item.strip_suffix('.').unwrap_or(item).trim();
        let body = item.strip_prefix("alt. ").unwrap_or(item).trim();
        if let Some(expr) = body.strip_prefix("DOB ") {
            match parse_dob(expr) {
                Some(dates) => out.dates_of_birth.extend(dates),
                None => out.unreadable_dates.push(expr.to_owned()),
            }
        } else if let Some(name) = body
            .strip_prefix("nationality ")
            .or_else(|| body.strip_prefix("citizen "))
        {
            out.nationalities.push(name.trim().to_owned());
        } else if let Some(name) = ["a.k.a. ", "f.k.a. ", "n.k.a. "]
            .iter()
            .find_map(|p| body.strip_prefix(p))
        {
            let name = name.trim().trim_matches('\'').trim();
            if !name.is_empty() {
                out.weak_aliases.push(name.to_owned());
            }
        } else if let Some(rest) = body.strip_prefix("Email Address ") {
            if let Some(email) = first_word(rest).and_then(email) {
                out.emails.push(email);
            }
        } else if let Some(rest) = body.strip_prefix("Website ") {
            if let Some(domain) = first_word(rest).and_then(website_domain) {
                out.domains.push(domain);
            }
        } else if let Some(id) = identifier(body) {
            out.identifiers.push(id);
        }
    }
    out
}

fn first_word(text: &str) -> Option<&str> {
    text.split_whitespace().next()
}

/// `DOB` forms: `10 Nov 1950`, `Nov 1950`, `1950`, `circa 1950`, and ranges
/// `1960 to 1962`, `01 Jan 1961 to 31 Dec 1963`, `1944-1946`.
pub fn parse_dob(expr: &str) -> Option<Vec<BirthDate>> {
    let expr = expr.trim().trim_end_matches('.').trim();
    let expr = expr.strip_prefix("circa ").unwrap_or(expr).trim();
    if let Some((from, to)) = expr.split_once(" to ") {
        let (from, to) = (single_date(from)?, single_date(to)?);
        return Some(if from == to {
            vec![from]
        } else {
            year_range(from.year(), to.year())
        });
    }
    if let Some((from, to)) = expr.split_once('-') {
        return Some(year_range(year(from)?, year(to)?));
    }
    single_date(expr).map(|d| vec![d])
}

fn single_date(text: &str) -> Option<BirthDate> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [y] => Some(BirthDate::Year(year(y)?)),
        [m, y] => BirthDate::month(year(y)?, month_number(m)?),
        [d, m, y] => BirthDate::day(year(y)?, month_number(m)?, d.parse().ok()?),
        _ => None,
    }
}

fn year(text: &str) -> Option<u16> {
    let text = text.trim();
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// A lower-cased address with one `@`, a local part and a dotted domain.
fn email(word: &str) -> Option<String> {
    let word = word.trim_end_matches(['.', ',']);
    let (local, domain) = word.split_once('@')?;
    (!local.is_empty() && valid_domain(domain)).then(|| word.to_lowercase())
}

/// `www.example.com`, `https://example.com/x` → `example.com`.
fn website_domain(word: &str) -> Option<String> {
    let word = word.trim_end_matches(['.', ',']).to_lowercase();
    let host = word
        .strip_prefix("https://")
        .or_else(|| word.strip_prefix("http://"))
        .unwrap_or(&word);
    let host = host.split(['/', '?', '#']).next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    valid_domain(host).then(|| host.to_owned())
}

fn valid_domain(host: &str) -> bool {
    host.contains('.')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// `Passport A123456 (Iraq) issued 01 Jan 2000`, `NIT # 800146749-7 (Colombia)`,
/// `Registration ID 14063277`: the label's kind, the value, the country.
fn identifier(body: &str) -> Option<RemarkIdentifier> {
    let (label, kind) = ID_LABELS
        .iter()
        .filter(|(label, _)| {
            body.strip_prefix(label)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':', '#']))
        })
        .max_by_key(|(label, _)| label.len())?;
    let mut rest = body.get(label.len()..)?.trim_start_matches([' ', ':', '#']);
    for prefix in ["No. ", "No.", "No ", "Number ", "#"] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r.trim_start();
            break;
        }
    }
    if WORD_BEFORE_VALUE.contains(label) {
        rest = rest.split_once(' ').map_or("", |(_, r)| r.trim_start());
    }
    let end = [" (", " issued", " expires", " expired", ", "]
        .iter()
        .filter_map(|stop| rest.find(stop))
        .min()
        .unwrap_or(rest.len());
    let value = rest.get(..end)?.trim();
    let needs_digit = !LETTERS_ONLY_LABELS.contains(label);
    if value.is_empty()
        || value.len() > MAX_ID_LEN
        || (needs_digit && !value.bytes().any(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let country = rest
        .get(end..)
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split_once(')'))
        .map(|(c, _)| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    Some(RemarkIdentifier {
        kind,
        value: value.to_owned(),
        country,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(remarks: &str) -> Vec<String> {
        parse_remarks(remarks)
            .dates_of_birth
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn id(kind: &'static str, value: &str, country: Option<&str>) -> RemarkIdentifier {
        RemarkIdentifier {
            kind,
            value: value.into(),
            country: country.map(Into::into),
        }
    }

    #[test]
    fn dob_forms() {
        assert_eq!(dates("DOB 10 Nov 1950."), ["1950-11-10"]);
        assert_eq!(dates("DOB Nov 1950"), ["1950-11"]);
        assert_eq!(dates("DOB 1950"), ["1950"]);
        assert_eq!(dates("DOB circa 1960"), ["1960"]);
        assert_eq!(dates("DOB circa 07 Jul 1966"), ["1966-07-07"]);
    }

    #[test]
    fn alt_dob_adds_dates_in_order() {
        assert_eq!(
            dates("DOB 10 Nov 1950; alt. DOB 1951; alt. DOB circa 1952; POB Baghdad, Iraq"),
            ["1950-11-10", "1951", "1952"]
        );
    }

    #[test]
    fn dob_ranges_give_each_year() {
        assert_eq!(dates("DOB 1960 to 1962"), ["1960", "1961", "1962"]);
        assert_eq!(
            dates("DOB 01 Jan 1961 to 31 Dec 1963"),
            ["1961", "1962", "1963"]
        );
        assert_eq!(dates("DOB 01 Jan 1973 to 31 Dec 1973"), ["1973"]);
        assert_eq!(dates("DOB Mar 1962 to Feb 1963"), ["1962", "1963"]);
        assert_eq!(dates("DOB circa 1944-1946"), ["1944", "1945", "1946"]);
    }

    #[test]
    fn impossible_or_unknown_dob_is_unreadable_not_guessed() {
        let r = parse_remarks("DOB 31 Feb 1960; DOB sometime in the sixties");
        assert!(r.dates_of_birth.is_empty());
        assert_eq!(
            r.unreadable_dates,
            ["31 Feb 1960", "sometime in the sixties"]
        );
    }

    #[test]
    fn nationality_and_citizenship() {
        let r = parse_remarks(
            "nationality Iraq; alt. nationality Korea, North; citizen Iran; alt. citizen Kenya; Nationality of Registration Korea, North",
        );
        assert_eq!(r.nationalities, ["Iraq", "Korea, North", "Iran", "Kenya"]);
    }

    #[test]
    fn passports_with_and_without_country() {
        let r = parse_remarks(
            "Passport A123456 (Iraq); alt. Passport 284158 (Iraq) expires 21 Aug 2005; Passport K754050 issued 26 May 1999 expires 25 May 2004; Diplomatic Passport 008827 (Iran) issued 1999; Passport issued in Sarajevo, Bosnia-Herzegovina",
        );
        assert_eq!(
            r.identifiers,
            [
                id("passport", "A123456", Some("Iraq")),
                id("passport", "284158", Some("Iraq")),
                id("passport", "K754050", None),
                id("passport", "008827", Some("Iran")),
            ]
        );
    }

    #[test]
    fn national_ids_tax_ids_and_registrations() {
        let r = parse_remarks(
            "National ID No. 660000 73767 (Belgium); Cedula No. 16247821 (Colombia); NIT # 800146749-7 (Colombia); Tax ID No. AABA 670850 Y; Registration ID 14063277; C.U.R.P. # HESU430525HBCRMR13 (Mexico); Unified Social Credit Code (USCC) 91222401MA0Y31E659 (China); SWIFT/BIC HAVIGB2L; Digital Currency Address - XBT 12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h",
        );
        assert_eq!(
            r.identifiers,
            [
                id("national_id", "660000 73767", Some("Belgium")),
                id("national_id", "16247821", Some("Colombia")),
                id("tax_id", "800146749-7", Some("Colombia")),
                id("tax_id", "AABA 670850 Y", None),
                id("other", "14063277", None),
                id("national_id", "HESU430525HBCRMR13", Some("Mexico")),
                id("other", "91222401MA0Y31E659", Some("China")),
                id("other", "HAVIGB2L", None),
                id("other", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h", None),
            ]
        );
    }

    #[test]
    fn email_and_website() {
        let r = parse_remarks(
            "Email Address dam.d.free@net.sy; alt. Email Address INFO@Example.COM.; Website www.havanaintbank.co.uk; Website https://swaidexchange.com/about; Website not a site",
        );
        assert_eq!(r.emails, ["dam.d.free@net.sy", "info@example.com"]);
        assert_eq!(r.domains, ["havanaintbank.co.uk", "swaidexchange.com"]);
    }

    #[test]
    fn weak_aliases_and_ignored_items() {
        let r = parse_remarks(
            "a.k.a. 'BNC'; f.k.a. 'OLD NAME'; Gender Male; Linked To: HIZBALLAH; Additional Sanctions Information - Subject to Secondary Sanctions.",
        );
        assert_eq!(r.weak_aliases, ["BNC", "OLD NAME"]);
        assert!(r.identifiers.is_empty() && r.nationalities.is_empty());
    }

    #[test]
    fn a_remark_cut_at_the_limit_loses_its_last_item() {
        let long = format!("DOB 1950; {}; Passport 12345", "x".repeat(REMARKS_LIMIT));
        let r = parse_remarks(&long);
        assert_eq!(r.dates_of_birth, [BirthDate::Year(1950)]);
        assert!(r.identifiers.is_empty());
    }

    #[test]
    fn programs_are_split() {
        assert_eq!(
            programs("SDGT] [SYRIA").collect::<Vec<_>>(),
            ["SDGT", "SYRIA"]
        );
        assert_eq!(programs("CUBA").collect::<Vec<_>>(), ["CUBA"]);
        assert_eq!(programs("").count(), 0);
    }
}
