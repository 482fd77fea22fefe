//! The UN Security Council consolidated sanctions list (XML): `INDIVIDUALS`
//! and `ENTITIES`, one record each.
//!
//! Names: an individual's `FIRST_NAME` … `FOURTH_NAME` joined, an entity's
//! `FIRST_NAME`; then `NAME_ORIGINAL_SCRIPT`; then the aliases. A field may
//! hold several names (`Jin Tiesan (金铁三)`, `Abdul Rehman; Abd Ur-Rehman`,
//! `حسن غول (Hassan Ghul; Hasan Gul)`): each is a name of its own (see
//! [`listed_names`]). `Low` quality
//! aliases (the list's weak aliases) are left out unless asked for. Dates of
//! birth: `DATE` as is, `YEAR` (exact or approximate) as a year, `BETWEEN`
//! `FROM_YEAR`/`TO_YEAR` as each year (see [`super::year_range`]), a lone
//! `NOTE` (`Nov. 1973`) when it names a month and year or a year; an alias's
//! own `DATE_OF_BIRTH` is added too. Documents are `identifiers`; their
//! `NUMBER` is often prose (`Libyan passport No. 513519`), from which the
//! number is taken.

use std::path::Path;

use serde::Deserialize;

use super::{
    BirthDate, Builder, INDIVIDUAL, ImportError, ORGANIZATION, Options, Stats, month_number,
    year_range,
};
use portcullis_core::designation::Designation;
use portcullis_core::scripts::Script;

/// The `source` of every UN record.
pub const SOURCE: &str = "UN";
/// Record ids are `UN-<REFERENCE_NUMBER>` (`UN-<DATAID>` if it has none).
pub const ID_PREFIX: &str = "UN";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConsolidatedList {
    #[serde(rename = "INDIVIDUALS")]
    individuals: Individuals,
    #[serde(rename = "ENTITIES")]
    entities: Entities,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Individuals {
    #[serde(rename = "INDIVIDUAL")]
    items: Vec<Individual>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entities {
    #[serde(rename = "ENTITY")]
    items: Vec<Entity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct Individual {
    #[serde(rename = "DATAID")]
    data_id: String,
    reference_number: String,
    un_list_type: String,
    first_name: String,
    second_name: String,
    third_name: String,
    fourth_name: String,
    name_original_script: String,
    nationality: Vec<Values>,
    #[serde(rename = "INDIVIDUAL_ALIAS")]
    aliases: Vec<Alias>,
    #[serde(rename = "INDIVIDUAL_ADDRESS")]
    addresses: Vec<Address>,
    #[serde(rename = "INDIVIDUAL_DATE_OF_BIRTH")]
    dates_of_birth: Vec<DateOfBirth>,
    #[serde(rename = "INDIVIDUAL_DOCUMENT")]
    documents: Vec<Document>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct Entity {
    #[serde(rename = "DATAID")]
    data_id: String,
    reference_number: String,
    un_list_type: String,
    first_name: String,
    name_original_script: String,
    #[serde(rename = "ENTITY_ALIAS")]
    aliases: Vec<Alias>,
    #[serde(rename = "ENTITY_ADDRESS")]
    addresses: Vec<Address>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Values {
    #[serde(rename = "VALUE")]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct Alias {
    quality: String,
    alias_name: String,
    date_of_birth: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct Address {
    country: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct DateOfBirth {
    type_of_date: String,
    date: String,
    year: String,
    from_year: String,
    to_year: String,
    note: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
struct Document {
    type_of_document: String,
    type_of_document2: String,
    number: String,
    issuing_country: String,
    country_of_issue: String,
    note: String,
}

/// Reads the file and returns one record per `INDIVIDUAL` and `ENTITY`.
pub fn import(path: &Path, options: &Options) -> Result<(Vec<Designation>, Stats), ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    import_str(&text, options).map_err(|source| ImportError::Xml {
        path: path.to_owned(),
        source,
    })
}

/// [`import`] on the text of the file.
pub fn import_str(
    xml: &str,
    options: &Options,
) -> Result<(Vec<Designation>, Stats), quick_xml::DeError> {
    let list: ConsolidatedList = quick_xml::de::from_str(xml)?;
    let mut stats = Stats::default();
    let mut records = Vec::new();
    for person in &list.individuals.items {
        records.extend(individual(person, &mut stats, options));
    }
    for entity in &list.entities.items {
        records.extend(entity_record(entity, &mut stats, options));
    }
    Ok((records, stats))
}

/// The record of an `INDIVIDUAL`.
fn individual(person: &Individual, stats: &mut Stats, options: &Options) -> Option<Designation> {
    let mut b = builder(stats, &person.reference_number, &person.data_id, INDIVIDUAL);
    let full_name = [
        &person.first_name,
        &person.second_name,
        &person.third_name,
        &person.fourth_name,
    ]
    .iter()
    .map(|n| n.trim())
    .filter(|n| !n.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    names(&mut b, &full_name);
    names(&mut b, &person.name_original_script);
    aliases(&mut b, &person.aliases, options);
    b.program(&person.un_list_type);
    individual_dates_of_birth(&mut b, person);
    for name in person.nationality.iter().flat_map(|v| &v.values) {
        if !name.trim().is_empty() {
            b.nationality(name);
        }
    }
    for document in &person.documents {
        if let Some((kind, number)) = document_identifier(document) {
            let country = [&document.issuing_country, &document.country_of_issue]
                .into_iter()
                .map(|c| c.trim())
                .find(|c| !c.is_empty());
            b.identifier(kind, &number, country);
        }
    }
    for address in &person.addresses {
        b.country(&address.country);
    }
    b.finish(options)
}

/// An individual's dates of birth, then those its aliases give; what cannot
/// be read is counted as skipped.
fn individual_dates_of_birth(b: &mut Builder<'_>, person: &Individual) {
    for dob in &person.dates_of_birth {
        let dates = dates_of_birth(dob);
        if dates.is_empty() && !is_blank(dob) {
            b.stats().skipped_dates += 1;
        }
        for date in dates {
            b.date_of_birth(date);
        }
    }
    for alias in &person.aliases {
        if !alias.date_of_birth.trim().is_empty() {
            match BirthDate::parse_iso(&alias.date_of_birth) {
                Some(date) => b.date_of_birth(date),
                None => b.stats().skipped_dates += 1,
            }
        }
    }
}

/// The record of an `ENTITY`.
fn entity_record(entity: &Entity, stats: &mut Stats, options: &Options) -> Option<Designation> {
    let mut b = builder(
        stats,
        &entity.reference_number,
        &entity.data_id,
        ORGANIZATION,
    );
    names(&mut b, &entity.first_name);
    names(&mut b, &entity.name_original_script);
    aliases(&mut b, &entity.aliases, options);
    b.program(&entity.un_list_type);
    for address in &entity.addresses {
        b.country(&address.country);
    }
    b.finish(options)
}

/// Each name a field holds, added.
fn names(b: &mut Builder<'_>, field: &str) {
    for name in listed_names(field) {
        b.name(&name);
    }
}

/// The names one field of the list holds. The list writes a name's other
/// forms beside it: in parentheses (`Jin Tiesan (金铁三)`, `حسن غول (Hassan
/// Ghul; Hassan Gul)`), after semicolons (`Abdul Rehman; Abd Ur-Rehman`), or
/// one script after the other (`Agha Jan Alizai اغا جان عالیزی`); each is a
/// name of its own, and the list's notes (`original script`, `- sub-unit
/// name`) are none. Parentheses in the name's own script without a
/// semicolon are part of it (`Ansar al Charia in Libya (ASL)`,
/// `華信船務(香港)有限公司`).
pub(crate) fn listed_names(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    split_listed(field, &mut out);
    out
}

fn split_listed(text: &str, out: &mut Vec<String>) {
    let outside_script = script_of(&top_level(text).0);
    let (outside, groups) = top_level_keeping(text, |group| {
        !group.contains(';')
            && !is_note(group)
            && outside_script.is_some_and(|s| script_of(group) == Some(s))
    });
    for part in outside.split(';') {
        let part = part.trim();
        let part = part
            .strip_suffix("- sub-unit name")
            .unwrap_or(part)
            .trim_end_matches([',', ';', ' ', '-'])
            .trim();
        if is_note(part) || !part.chars().any(char::is_alphabetic) {
            continue;
        }
        out.extend(script_runs(part));
    }
    for group in groups {
        if !is_note(&group) {
            split_listed(&group, out);
        }
    }
}

/// The text outside top-level parentheses, and the text inside each.
fn top_level(text: &str) -> (String, Vec<String>) {
    top_level_keeping(text, |_| false)
}

/// [`top_level`], keeping in the outside text (parentheses and all) the
/// groups `keep` accepts. An unclosed group runs to the end.
fn top_level_keeping(text: &str, keep: impl Fn(&str) -> bool) -> (String, Vec<String>) {
    let (mut outside, mut groups, mut current, mut depth) =
        (String::new(), Vec::new(), String::new(), 0usize);
    let close = |group: String, outside: &mut String, groups: &mut Vec<String>| {
        if keep(&group) {
            outside.push('(');
            outside.push_str(&group);
            outside.push(')');
        } else {
            groups.push(group);
        }
    };
    for c in text.chars() {
        match c {
            '(' => {
                if depth > 0 {
                    current.push(c);
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    close(std::mem::take(&mut current), &mut outside, &mut groups);
                } else {
                    current.push(c);
                }
            }
            _ if depth > 0 => current.push(c),
            _ => outside.push(c),
        }
    }
    if depth > 0 {
        close(current, &mut outside, &mut groups);
    }
    (outside, groups)
}

/// The list's notes on a name, not names.
fn is_note(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    t == "original script" || t == "sub-unit name"
}

/// The script of a text's letters, if it has any.
fn script_of(text: &str) -> Option<Script> {
    text.chars()
        .any(char::is_alphabetic)
        .then(|| Script::of(text))
}

/// A name written in Latin letters and then in another script (or the other
/// way round), as two names; any other name whole.
fn script_runs(name: &str) -> Vec<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    let scripts: Vec<Option<Script>> = words.iter().map(|w| script_of(w)).collect();
    let change = scripts
        .windows(2)
        .position(|w| matches!(w, [Some(a), Some(b)] if a != b));
    let Some(at) = change else {
        return vec![name.to_owned()];
    };
    let (first, second) = words.split_at(at + 1);
    let run_script = |run: &[&str]| script_of(&run.join(" "));
    let uniform = |run: &[&str], script: Option<Script>| {
        run.iter()
            .all(|w| script_of(w).is_none() || script_of(w) == script)
    };
    let (a, b) = (run_script(first), run_script(second));
    if a == b
        || !uniform(first, a)
        || !uniform(second, b)
        || !(a == Some(Script::Latin) || b == Some(Script::Latin))
    {
        return vec![name.to_owned()];
    }
    vec![first.join(" "), second.join(" ")]
}

fn builder<'a>(stats: &'a mut Stats, reference: &str, data_id: &str, kind: &str) -> Builder<'a> {
    let id = match reference.trim() {
        "" => data_id.trim(),
        reference => reference,
    };
    Builder::new(stats, SOURCE, ID_PREFIX, id, kind)
}

fn aliases(b: &mut Builder<'_>, aliases: &[Alias], options: &Options) {
    for alias in aliases {
        if alias.alias_name.trim().is_empty() {
            continue;
        }
        if alias.quality.trim().eq_ignore_ascii_case("low") && !options.weak_aliases {
            b.stats().weak_aliases_skipped += 1;
        } else {
            names(b, &alias.alias_name);
        }
    }
}

fn is_blank(dob: &DateOfBirth) -> bool {
    [
        &dob.date,
        &dob.year,
        &dob.from_year,
        &dob.to_year,
        &dob.note,
    ]
    .iter()
    .all(|s| s.trim().is_empty())
}

fn dates_of_birth(dob: &DateOfBirth) -> Vec<BirthDate> {
    if !dob.date.trim().is_empty() {
        return BirthDate::parse_iso(&dob.date).into_iter().collect();
    }
    if let Some(year) = year(&dob.year) {
        return vec![BirthDate::Year(year)];
    }
    if dob.type_of_date.trim().eq_ignore_ascii_case("between")
        && let (Some(from), Some(to)) = (year(&dob.from_year), year(&dob.to_year))
    {
        return year_range(from, to);
    }
    note_date(&dob.note).into_iter().collect()
}

/// A date in a free-text note: `Nov. 1973` or `August 1961` (month and year
/// alone), otherwise the one four-digit year it holds (`Between Aug. and Sep.
/// 1977`). Notes in another calendar (`24/06/1402 (Hijri Calendar)`) give none.
fn note_date(note: &str) -> Option<BirthDate> {
    if note.to_ascii_lowercase().contains("hijri") {
        return None;
    }
    let words: Vec<&str> = note.split_whitespace().collect();
    if let [m, y] = words.as_slice()
        && let (Some(m), Some(y)) = (month_number(m), year(y))
    {
        return BirthDate::month(y, m);
    }
    let mut years = note.split(|c: char| !c.is_ascii_digit()).filter_map(year);
    match (years.next(), years.next()) {
        (Some(y), None) => Some(BirthDate::Year(y)),
        _ => None,
    }
}

fn year(text: &str) -> Option<u16> {
    let text = text.trim();
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// The kind and number of a document, when it has a number.
fn document_identifier(d: &Document) -> Option<(&'static str, String)> {
    let (prose, number) = if d.number.trim().is_empty() {
        // Some documents carry their number only in the note, among other words.
        let (prose, number) = split_number(&d.note)?;
        let acronym = !prose.is_empty() && prose.chars().all(|c| c.is_ascii_uppercase());
        let leading = d
            .note
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit());
        if !(leading || acronym || document_kind(&prose).is_some()) {
            return None;
        }
        (prose, number)
    } else {
        split_number(&d.number)?
    };
    let kind = [d.type_of_document2.as_str(), prose.as_str()]
        .into_iter()
        .find_map(document_kind)
        .or_else(|| document_kind(&d.type_of_document))
        .unwrap_or("other");
    Some((kind, number))
}

/// Words that introduce the number inside prose (`passport No. 513519`).
const NUMBER_MARKERS: [&str; 6] = ["number", "no.", "no", "n°", "nº", "#"];

/// Splits `Libyan passport No. 513519 (expired)` into the prose before the
/// number (`Libyan passport`) and the number (`513519`). The number is what
/// follows the last marker word or colon, up to a parenthesis, a comma or an
/// `issued` / `expires` clause; it must hold a digit.
pub fn split_number(text: &str) -> Option<(String, String)> {
    let text = super::collapse_whitespace(text);
    // ASCII lower case keeps byte offsets the same in `lower` and `text`.
    let lower = text.to_ascii_lowercase();
    let mut start = 0;
    let mut prose_end = 0;
    // The last marker: a colon, or a marker word followed by a space.
    for (i, _) in lower.char_indices() {
        let rest = lower.get(i..).unwrap_or_default();
        let at_word = i == 0 || lower.get(..i).is_some_and(|b| b.ends_with(' '));
        if rest.starts_with(':') {
            (prose_end, start) = (i, i + 1);
        } else if at_word {
            for marker in NUMBER_MARKERS {
                if rest
                    .strip_prefix(marker)
                    .is_some_and(|r| r.starts_with([' ', ':']) || (marker == "n°" && !r.is_empty()))
                {
                    (prose_end, start) = (i, i + marker.len());
                }
            }
        }
    }
    let rest = text.get(start..)?.trim_start_matches([' ', ':', '.']);
    let end = [
        " (", "(", ",", " issued", " expires", " expired", " valid", " under", ";",
    ]
    .iter()
    .filter_map(|stop| rest.find(stop))
    .min()
    .unwrap_or(rest.len());
    let mut number = rest.get(..end)?.trim();
    if start == 0 {
        // No marker: drop leading words without digits (`SSN 156-92-9858`),
        // but keep a short letter prefix (`OB 0243318`, `A 0139243`).
        let words: Vec<&str> = number.split(' ').collect();
        let first_digit = words
            .iter()
            .position(|w| w.bytes().any(|b| b.is_ascii_digit()))?;
        let keep_from = match first_digit.checked_sub(1).and_then(|i| words.get(i)) {
            Some(w) if is_letter_prefix(w) => first_digit - 1,
            _ => first_digit,
        };
        let skipped: usize = words.iter().take(keep_from).map(|w| w.len() + 1).sum();
        number = number.get(skipped..)?;
        prose_end = skipped;
    }
    let prose = text.get(..prose_end).unwrap_or_default().trim().to_owned();
    (number.bytes().any(|b| b.is_ascii_digit()) && number.len() <= 48)
        .then(|| (prose, number.to_owned()))
}

/// `OB`, `A`, `DE-`: up to two capital letters that start a document number.
fn is_letter_prefix(word: &str) -> bool {
    let letters = word.chars().filter(char::is_ascii_alphabetic).count();
    (1..=2).contains(&letters) && word.chars().all(|c| c.is_ascii_uppercase() || c == '-')
}

/// The kind a document description names, if it names one.
fn document_kind(description: &str) -> Option<&'static str> {
    let d = description.to_lowercase();
    if d.trim().is_empty() {
        return None;
    }
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    if has(&[
        "passport",
        "passeport",
        "pasaporte",
        "travel document",
        "laissez-passer",
    ]) {
        Some("passport")
    } else if has(&["tax", "fiscal"]) {
        Some("tax_id")
    } else if has(&[
        "birth certificate",
        "ration card",
        "driv",
        "voter",
        "student",
        "military",
        "serviceman",
        "fardc",
        "residen",
        "certificate of",
        "other id",
    ]) {
        Some("other")
    } else if has(&[
        "identi",
        "national",
        "social security",
        "civil",
        "personal",
        "tazkira",
    ]) {
        Some("national_id")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_holding_several_names_gives_each() {
        let cases: &[(&str, &[&str])] = &[
            ("Jin Tiesan (金铁三)", &["Jin Tiesan", "金铁三"]),
            (
                "حسن غول (Hassan Ghul; Hassan Gul; Hasan Gul)",
                &["حسن غول", "Hassan Ghul", "Hassan Gul", "Hasan Gul"],
            ),
            (
                "Abdul Rehman; Abd Ur-Rehman; Abdur Rahman",
                &["Abdul Rehman", "Abd Ur-Rehman", "Abdur Rahman"],
            ),
            (
                "Akhter Mohmad son of Noor Mohmad (اختر محمد ولد نور محمد ),",
                &["Akhter Mohmad son of Noor Mohmad", "اختر محمد ولد نور محمد"],
            ),
            (
                "Agha Jan Alizai اغا جان عالیزی",
                &["Agha Jan Alizai", "اغا جان عالیزی"],
            ),
            (
                "Hay’at Tahrir al-Sham (HTS) (هيئة تحرير الشام (original script); Hayat Tahrir al-Sham)",
                &[
                    "Hay’at Tahrir al-Sham (HTS)",
                    "هيئة تحرير الشام",
                    "Hayat Tahrir al-Sham",
                ],
            ),
            (
                "شبكة أنصار المجاهدين (Ansar al-Mujahideen Network - sub-unit name)",
                &["شبكة أنصار المجاهدين", "Ansar al-Mujahideen Network"],
            ),
            // Parentheses in the name's own script are part of it.
            (
                "Ansar al Charia in Libya (ASL)",
                &["Ansar al Charia in Libya (ASL)"],
            ),
            ("華信船務(香港)有限公司", &["華信船務(香港)有限公司"]),
            ("SADDAM HUSSEIN AL-TIKRITI", &["SADDAM HUSSEIN AL-TIKRITI"]),
            ("", &[]),
            ("(unclosed", &["unclosed"]),
        ];
        for (field, names) in cases {
            assert_eq!(listed_names(field), *names, "{field}");
        }
    }

    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CONSOLIDATED_LIST dateGenerated="2026-02-27T00:00:09.554Z">
  <INDIVIDUALS>
    <INDIVIDUAL>
      <DATAID>6908555</DATAID>
      <FIRST_NAME>ABDUL</FIRST_NAME>
      <SECOND_NAME>RAHMAN</SECOND_NAME>
      <THIRD_NAME/>
      <UN_LIST_TYPE>Al-Qaida</UN_LIST_TYPE>
      <REFERENCE_NUMBER>QDi.001</REFERENCE_NUMBER>
      <NAME_ORIGINAL_SCRIPT>عبد الرحمن</NAME_ORIGINAL_SCRIPT>
      <NATIONALITY><VALUE>Iran (Islamic Republic of)</VALUE><VALUE>Democratic Republic
 of the Congo</VALUE><VALUE>former Soviet Union</VALUE></NATIONALITY>
      <INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY><ALIAS_NAME>Abd Al-Rahman</ALIAS_NAME><DATE_OF_BIRTH>1958-02-22</DATE_OF_BIRTH></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ALIAS><QUALITY>Low</QUALITY><ALIAS_NAME>Abu Hafs</ALIAS_NAME></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ALIAS><QUALITY/><ALIAS_NAME/></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ADDRESS><COUNTRY>Syrian Arab Republic</COUNTRY></INDIVIDUAL_ADDRESS>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><DATE>1960-05-01</DATE></INDIVIDUAL_DATE_OF_BIRTH>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>APPROXIMATELY</TYPE_OF_DATE><YEAR>1961</YEAR></INDIVIDUAL_DATE_OF_BIRTH>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>BETWEEN</TYPE_OF_DATE><FROM_YEAR>1962</FROM_YEAR><TO_YEAR>1963</TO_YEAR></INDIVIDUAL_DATE_OF_BIRTH>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><NOTE>Nov. 1973 </NOTE></INDIVIDUAL_DATE_OF_BIRTH>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><NOTE>24/06/1402 (Hijri Calendar)</NOTE></INDIVIDUAL_DATE_OF_BIRTH>
      <INDIVIDUAL_DOCUMENT><TYPE_OF_DOCUMENT>Passport</TYPE_OF_DOCUMENT><NUMBER>Libyan passport No. 513519</NUMBER><ISSUING_COUNTRY>Libya</ISSUING_COUNTRY></INDIVIDUAL_DOCUMENT>
      <INDIVIDUAL_DOCUMENT><TYPE_OF_DOCUMENT>National Identification Number</TYPE_OF_DOCUMENT><TYPE_OF_DOCUMENT2>Ration card no.</TYPE_OF_DOCUMENT2><NUMBER>0075258</NUMBER></INDIVIDUAL_DOCUMENT>
      <INDIVIDUAL_DOCUMENT><TYPE_OF_DOCUMENT>National Identification Number</TYPE_OF_DOCUMENT><NOTE>Italian Fiscal Code: DAOMMD74T11Z352Z</NOTE></INDIVIDUAL_DOCUMENT>
      <INDIVIDUAL_DOCUMENT/>
    </INDIVIDUAL>
  </INDIVIDUALS>
  <ENTITIES>
    <ENTITY>
      <DATAID>110404</DATAID>
      <FIRST_NAME>AL-HARAMAIN FOUNDATION</FIRST_NAME>
      <UN_LIST_TYPE>Al-Qaida</UN_LIST_TYPE>
      <REFERENCE_NUMBER>QDe.105</REFERENCE_NUMBER>
      <ENTITY_ALIAS><QUALITY>a.k.a.</QUALITY><ALIAS_NAME>Al Haramain</ALIAS_NAME></ENTITY_ALIAS>
      <ENTITY_ALIAS><QUALITY>f.k.a.</QUALITY><ALIAS_NAME>Old Haramain</ALIAS_NAME></ENTITY_ALIAS>
      <ENTITY_ADDRESS><STREET>1 Road</STREET><COUNTRY>Bosnia and Herzegovina</COUNTRY></ENTITY_ADDRESS>
      <ENTITY_ADDRESS/>
    </ENTITY>
  </ENTITIES>
</CONSOLIDATED_LIST>"#;

    #[test]
    fn individuals_and_entities_become_records() {
        let (records, stats) = import_str(LIST, &Options::default()).unwrap();
        assert_eq!(records.len(), 2);
        let p = &records[0];
        assert_eq!(p.id, "UN-QDi.001");
        assert_eq!(p.source.as_deref(), Some("UN"));
        assert_eq!(p.source_id.as_deref(), Some("QDi.001"));
        assert_eq!(p.kind.as_deref(), Some("individual"));
        assert_eq!(p.names, ["ABDUL RAHMAN", "عبد الرحمن", "Abd Al-Rahman"]);
        assert_eq!(p.programs, ["Al-Qaida"]);
        assert_eq!(p.nationalities, ["IR", "CD"]);
        assert_eq!(p.countries, ["SY"]);
        assert_eq!(p.date_of_birth.as_deref(), Some("1960-05-01"));
        assert_eq!(
            p.other_dates_of_birth,
            ["1961", "1962", "1963", "1973-11", "1958-02-22"]
        );
        let ids: Vec<(&str, &str, Option<&str>)> = p
            .identifiers
            .iter()
            .map(|i| {
                (
                    i.kind.as_deref().unwrap(),
                    i.value.as_str(),
                    i.country.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                ("passport", "513519", Some("LY")),
                ("other", "0075258", None),
                ("tax_id", "DAOMMD74T11Z352Z", None),
            ]
        );
        let e = &records[1];
        assert_eq!(e.id, "UN-QDe.105");
        assert_eq!(e.kind.as_deref(), Some("organization"));
        assert_eq!(
            e.names,
            ["AL-HARAMAIN FOUNDATION", "Al Haramain", "Old Haramain"]
        );
        assert_eq!(e.countries, ["BA"]);
        assert_eq!(stats.weak_aliases_skipped, 1);
        assert_eq!(stats.skipped_dates, 1);
        assert_eq!(stats.skipped_countries.get("former Soviet Union"), Some(&1));
        assert_eq!(stats.aliases, 4);
    }

    #[test]
    fn weak_aliases_when_asked() {
        let options = Options {
            weak_aliases: true,
            ..Options::default()
        };
        let (records, stats) = import_str(LIST, &options).unwrap();
        assert!(records[0].names.contains(&"Abu Hafs".to_owned()));
        assert_eq!(stats.weak_aliases_skipped, 0);
    }

    #[test]
    fn numbers_are_taken_out_of_prose() {
        let cases = [
            ("Libyan passport No. 513519", "Libyan passport", "513519"),
            (
                "CAR diplomatic passport no. D00000898",
                "CAR diplomatic passport",
                "D00000898",
            ),
            (
                "Central African Republic number O00065772",
                "Central African Republic",
                "O00065772",
            ),
            (
                "Diplomatic Passport: Z30321794",
                "Diplomatic Passport",
                "Z30321794",
            ),
            ("381110042 (Expired 25 Jan. 2016)", "", "381110042"),
            ("OB 0243318", "", "OB 0243318"),
            ("DE- 473900", "", "DE- 473900"),
            (
                "SSN 156-92-9858 (United States of America)",
                "SSN",
                "156-92-9858",
            ),
            (
                "Tunisian passport number L 191609 issued on 28 Feb. 1996",
                "Tunisian passport",
                "L 191609",
            ),
            (
                "Laissez-passer no. N°235/MISPAT",
                "Laissez-passer no.",
                "235/MISPAT",
            ),
            ("96 03 464086", "", "96 03 464086"),
            (
                "İstanbul ŞUBE passport no. X123",
                "İstanbul ŞUBE passport",
                "X123",
            ),
        ];
        for (text, prose, number) in cases {
            assert_eq!(
                split_number(text),
                Some((prose.to_owned(), number.to_owned())),
                "{text}"
            );
        }
        assert_eq!(split_number("no number here"), None);
    }

    #[test]
    fn numbers_in_notes_need_a_document_word() {
        let note = |type_of_document: &str, note: &str| {
            document_identifier(&Document {
                type_of_document: type_of_document.into(),
                note: note.into(),
                ..Document::default()
            })
        };
        assert_eq!(
            note(
                "Passport",
                "Tunisian passport number L 191609 issued on 28 Feb. 1996"
            ),
            Some(("passport", "L 191609".into()))
        );
        assert_eq!(
            note(
                "National Identification Number",
                "04643632 issued on 18 Jun. 1999"
            ),
            Some(("national_id", "04643632".into()))
        );
        assert_eq!(
            note(
                "National Identification Number",
                "SSN 156-92-9858 (United States of America)"
            ),
            Some(("national_id", "156-92-9858".into()))
        );
        assert_eq!(note("Passport", "issued in 1993, under name X"), None);
        assert_eq!(
            note("Passport", "made out to X, born on 22 Aug. 1973"),
            None
        );
    }

    #[test]
    fn document_kinds() {
        assert_eq!(document_kind("Passport"), Some("passport"));
        assert_eq!(document_kind("Número de pasaporte"), Some("passport"));
        assert_eq!(
            document_kind("National Identification Number"),
            Some("national_id")
        );
        assert_eq!(document_kind("Italian Fiscal Code:"), Some("tax_id"));
        assert_eq!(document_kind("Birth certificate"), Some("other"));
        assert_eq!(document_kind("Driver's Permit"), Some("other"));
        assert_eq!(document_kind(""), None);
    }

    #[test]
    fn note_dates() {
        let d = |s: &str| note_date(s).map(|d| d.to_string());
        assert_eq!(d("Nov. 1973 ").as_deref(), Some("1973-11"));
        assert_eq!(d("August 1961").as_deref(), Some("1961-08"));
        assert_eq!(d("Between Aug. and Sep. 1977").as_deref(), Some("1977"));
        assert_eq!(d("30-35 years old"), None);
        assert_eq!(d("24/06/1402 (Hijri Calendar)"), None);
    }
}
