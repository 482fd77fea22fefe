//! The lists the evaluation is drawn from, read from the repository's fixtures.

use anyhow::Context as _;
use portcullis_core::designation::{Designated, Origin, validate};
use portcullis_core::names::NameKind;
use portcullis_import::{Options, ofac, un};

use crate::fixtures;
use crate::variants::PersonName;

/// The 2021 SDN list, as the importer reads it.
pub fn sdn() -> anyhow::Result<Vec<Designated>> {
    ofac::import_dir(&fixtures().join("screening"), &Options::default())
        .context("reading the SDN fixtures")
}

/// The designated individuals of `entries` whose primary name is written
/// `FAMILY, Given` with tokens of at least two letters.
pub fn individuals(entries: &[Designated]) -> Vec<PersonName> {
    entries
        .iter()
        .filter(|d| d.record.kind.as_deref() == Some("individual"))
        .filter_map(|d| PersonName::parse(&d.record.id, d.record.names.first()?))
        .filter(|p| {
            p.family
                .iter()
                .chain(&p.given)
                .all(|t| t.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        })
        .collect()
}

/// Whether a name is written in the Latin script (with or without diacritics).
pub fn is_latin(name: &str) -> bool {
    name.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(&c))
}

/// A name in its own script and the designation it belongs to.
#[derive(Debug, Clone)]
pub struct OriginalScript {
    /// The designation id.
    pub id: String,
    /// The designation's kind, as a customer would declare it.
    pub kind: NameKind,
    /// The name in its original script.
    pub name: String,
}

/// The UN consolidated list with every non-Latin name removed, and the
/// removed names (the ones in their original script) to screen against it.
pub fn un_original_script() -> anyhow::Result<(Vec<Designated>, Vec<OriginalScript>)> {
    let path = fixtures().join("screening/UN_consolidated_2026-02-27.xml");
    let (records, _) = un::import(&path, &Options::default()).context("reading the UN fixture")?;
    let mut entries = Vec::with_capacity(records.len());
    let mut queries = Vec::new();
    for (line, mut record) in records.into_iter().enumerate() {
        let kind = NameKind::of_designation(record.kind.as_deref());
        let (latin, other): (Vec<String>, Vec<String>) =
            record.names.into_iter().partition(|n| is_latin(n));
        queries.extend(other.into_iter().map(|name| OriginalScript {
            id: record.id.clone(),
            kind,
            name,
        }));
        record.names = latin;
        let origin = Origin {
            file: path.clone(),
            line: line + 1,
        };
        entries.push(
            validate(record, origin).map_err(|e| anyhow::anyhow!("UN record {}: {e}", line + 1))?,
        );
    }
    Ok((entries, queries))
}

/// One labelled pair of `name_bench_cases.csv`.
#[derive(Debug, Clone)]
pub struct LabelledPair {
    /// Person, organisation or either.
    pub kind: NameKind,
    /// The first name.
    pub a: String,
    /// The second name.
    pub b: String,
    /// Whether they name the same person.
    pub is_match: bool,
}

/// The 826 labelled pairs of name_bench.
pub fn name_bench() -> anyhow::Result<Vec<LabelledPair>> {
    let path = fixtures().join("labeled/name_bench_cases.csv");
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for record in reader.records() {
        let r = record.context("name_bench row")?;
        let field = |i: usize| r.get(i).unwrap_or_default().to_owned();
        let kind = match field(1).as_str() {
            "Person" => NameKind::Person,
            "Company" | "Organization" | "LegalEntity" => NameKind::Organization,
            _ => NameKind::Unknown,
        };
        out.push(LabelledPair {
            kind,
            a: field(2),
            b: field(3),
            is_match: field(4) == "true",
        });
    }
    Ok(out)
}

/// The SDN list grown `factor` times: the list itself, and as many more
/// designated individuals again `factor - 1` times over, each named by
/// recombining the real family and given names of the list's individuals
/// (`FAMILY, Given [Middle]`, and the same name in natural order as an
/// alias), drawn with `seed`. A consolidated list (OFAC, UN, EU, UK) is
/// about twenty times the 2021 SDN file.
pub fn scaled_sdn(factor: usize, seed: u64) -> anyhow::Result<Vec<Designated>> {
    let sdn = sdn()?;
    let people = individuals(&sdn);
    let template = sdn
        .iter()
        .find(|d| d.record.kind.as_deref() == Some("individual"))
        .context("the SDN list has individuals")?
        .record
        .clone();
    let family: Vec<&String> = people.iter().flat_map(|p| &p.family).collect();
    let given: Vec<&String> = people.iter().flat_map(|p| &p.given).collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let extra = sdn.len() * factor.saturating_sub(1);
    let mut out = sdn;
    out.reserve(extra);
    for n in 0..extra {
        let pick = |rng: &mut fastrand::Rng, from: &[&String]| {
            from.get(rng.usize(..from.len().max(1)))
                .map(|s| s.as_str())
                .unwrap_or("X")
                .to_owned()
        };
        let surname = pick(&mut rng, &family);
        let mut first = vec![pick(&mut rng, &given)];
        if rng.bool() {
            first.push(pick(&mut rng, &given));
        }
        let first = first.join(" ");
        let mut record = template.clone();
        record.id = format!("SYN-{n}");
        record.names = vec![format!("{surname}, {first}"), format!("{first} {surname}")];
        record.identifiers.clear();
        let origin = Origin {
            file: "scaled.jsonl".into(),
            line: n + 1,
        };
        out.push(validate(record, origin).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(out)
}
