//! Runs the evaluation sets through a screening index and tabulates them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use portcullis_core::names::{NameKind, score};
use portcullis_core::screening::ScreeningIndex;

use crate::sets::{LabelledPair, OriginalScript};
use crate::variants::{Kind, PersonName, variant};
use crate::{innocents, screen};

/// Found / tried, with the misses kept for reading.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// How many were found (or, for innocents, matched).
    pub hits: usize,
    /// How many were tried.
    pub total: usize,
    /// Examples of the other outcome: (screened name, what it stood for, score).
    pub examples: Vec<(String, String, u8)>,
}

impl Tally {
    fn add(&mut self, hit: bool, example: impl FnOnce() -> (String, String, u8), keep_when: bool) {
        self.total += 1;
        if hit {
            self.hits += 1;
        }
        if hit == keep_when && self.examples.len() < 200 {
            self.examples.push(example());
        }
    }

    /// hits / total.
    pub fn rate(&self) -> f64 {
        self.hits as f64 / self.total.max(1) as f64
    }
}

/// Spelling variants of SDN individuals, by kind, with innocent names screened
/// alongside for precision.
#[derive(Debug, Clone, Default)]
pub struct VariantReport {
    /// Variants found at the threshold, by kind (misses as examples).
    pub by_kind: BTreeMap<Kind, Tally>,
    /// Innocent names matched at the threshold (matches as examples).
    pub innocents: Tally,
}

impl VariantReport {
    /// Every variant found / tried.
    pub fn recall(&self) -> f64 {
        let (hits, total) = self
            .by_kind
            .values()
            .fold((0, 0), |(h, t), k| (h + k.hits, t + k.total));
        hits as f64 / total.max(1) as f64
    }

    /// Variants found over everything matched, innocents weighed as many as
    /// the variants.
    pub fn precision(&self) -> f64 {
        let (tp, total) = self
            .by_kind
            .values()
            .fold((0, 0), |(h, t), k| (h + k.hits, t + k.total));
        let fp = self.innocents.rate() * total as f64;
        tp as f64 / (tp as f64 + fp).max(1.0)
    }
}

/// Screens `per_kind` variants of each kind, drawn from `people` with `seed`,
/// and as many innocent names.
pub fn variants(
    index: &ScreeningIndex,
    people: &[PersonName],
    per_kind: usize,
    seed: u64,
    threshold: u8,
) -> VariantReport {
    let mut report = VariantReport::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    for kind in Kind::ALL {
        let tally = report.by_kind.entry(kind).or_default();
        let mut tries = 0;
        while tally.total < per_kind && tries < per_kind * 20 {
            tries += 1;
            let Some(person) = people.get(rng.usize(..people.len().max(1))) else {
                break;
            };
            let Some(name) = variant(person, kind, &mut rng) else {
                continue;
            };
            let outcome = screen(index, &name, NameKind::Person, Some(&person.id), threshold);
            let original = || {
                let (family, given) = (person.family.join(" "), person.given.join(" "));
                format!("{family}, {given} ({})", person.id)
            };
            tally.add(
                outcome.expected >= threshold,
                || (name, original(), outcome.expected),
                false,
            );
        }
    }
    let total: usize = report.by_kind.values().map(|t| t.total).sum();
    let per_locale = total.div_ceil(innocents::LOCALES.len());
    for (locale, name) in innocents::generate(per_locale, seed ^ 0x5eed) {
        let outcome = screen(index, &name, NameKind::Person, None, threshold);
        report.innocents.add(
            outcome.best >= threshold,
            || (name, locale.to_owned(), outcome.best),
            true,
        );
    }
    report
}

/// Innocent names matched at the threshold, by locale.
pub fn innocents(
    index: &ScreeningIndex,
    per_locale: usize,
    seed: u64,
    threshold: u8,
) -> BTreeMap<&'static str, Tally> {
    let mut out: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for (locale, name) in innocents::generate(per_locale, seed) {
        let outcome = screen(index, &name, NameKind::Person, None, threshold);
        let tally = out.entry(locale).or_default();
        tally.add(
            outcome.best >= threshold,
            || (name, String::new(), outcome.best),
            true,
        );
    }
    out
}

/// Innocent names of the locales written in Latin letters, written instead in
/// Cyrillic and in Arabic script as a clerk would by ear (the renderings of
/// the variant set): what the cross-script readings cost in precision.
pub fn innocents_in_other_scripts(
    index: &ScreeningIndex,
    per_locale: usize,
    seed: u64,
    threshold: u8,
) -> BTreeMap<&'static str, Tally> {
    let mut out: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let latin = innocents::generate(per_locale, seed)
        .into_iter()
        .filter(|(_, name)| script(name) == "Latin");
    for (_, name) in latin {
        let tokens: Vec<String> = name.split_whitespace().map(str::to_owned).collect();
        let cyrillic: Vec<String> = tokens
            .iter()
            .map(|t| crate::render::cyrillic(t, &mut rng))
            .collect();
        let arabic = crate::render::arabic_name(&tokens, &mut rng);
        for (label, written) in [
            ("Cyrillic", cyrillic.join(" ")),
            ("Arabic", arabic.join(" ")),
        ] {
            let outcome = screen(index, &written, NameKind::Person, None, threshold);
            out.entry(label).or_default().add(
                outcome.best >= threshold,
                || (written, name.clone(), outcome.best),
                true,
            );
        }
    }
    out
}

/// The script a name is mostly written in.
pub fn script(name: &str) -> &'static str {
    let mut counts = [0usize; 4];
    for c in name.chars().filter(|c| c.is_alphabetic()) {
        let slot = match c {
            '\u{0600}'..='\u{06FF}'
            | '\u{0750}'..='\u{077F}'
            | '\u{FB50}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}' => 0,
            '\u{0400}'..='\u{04FF}' => 1,
            c if c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(&c) => 3,
            _ => 2,
        };
        if let Some(n) = counts.get_mut(slot) {
            *n += 1;
        }
    }
    let best = (0..4)
        .max_by_key(|&i| counts.get(i).copied().unwrap_or(0))
        .unwrap_or(3);
    ["Arabic", "Cyrillic", "other", "Latin"]
        .get(best)
        .copied()
        .unwrap_or("other")
}

/// Original-script names of the UN list found against its Latin names, by script.
pub fn original_script(
    index: &ScreeningIndex,
    queries: &[OriginalScript],
    threshold: u8,
) -> BTreeMap<&'static str, Tally> {
    let mut out: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for q in queries {
        let outcome = screen(index, &q.name, q.kind, Some(&q.id), threshold);
        let tally = out.entry(script(&q.name)).or_default();
        tally.add(
            outcome.expected >= threshold,
            || (q.name.clone(), q.id.clone(), outcome.expected),
            false,
        );
    }
    out
}

/// Precision, recall and F1 of the labelled pairs at a threshold.
#[derive(Debug, Clone, Copy, Default)]
pub struct PairScores {
    /// True positives, false positives, true negatives, false negatives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// True negatives.
    pub tn: usize,
    /// False negatives.
    pub fn_: usize,
}

impl PairScores {
    /// TP / (TP + FP).
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    /// TP / (TP + FN).
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Scores every labelled pair at `threshold`.
pub fn pairs(pairs: &[LabelledPair], threshold: u8) -> PairScores {
    let mut s = PairScores::default();
    for p in pairs {
        match (score(&p.a, &p.b, p.kind) >= threshold, p.is_match) {
            (true, true) => s.tp += 1,
            (true, false) => s.fp += 1,
            (false, false) => s.tn += 1,
            (false, true) => s.fn_ += 1,
        }
    }
    s
}

/// A Markdown table row.
pub fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// The variant table: recall by kind, then the innocents.
pub fn variant_table(r: &VariantReport) -> String {
    let mut out = String::from("| variant | found | recall |\n| --- | ---: | ---: |\n");
    for (kind, t) in &r.by_kind {
        out.push_str(&row(&[
            kind.label().to_owned(),
            format!("{}/{}", t.hits, t.total),
            format!("{:.3}", t.rate()),
        ]));
    }
    let _ = writeln!(
        out,
        "\nAll variants: recall **{:.3}** at precision **{:.3}** ({} innocent names of {} matched).",
        r.recall(),
        r.precision(),
        r.innocents.hits,
        r.innocents.total
    );
    out
}

/// A table of tallies by a label (script, locale).
pub fn tally_table(label: &str, what: &str, tallies: &BTreeMap<&'static str, Tally>) -> String {
    let mut out = format!("| {label} | {what} | rate |\n| --- | ---: | ---: |\n");
    let (mut hits, mut total) = (0, 0);
    for (k, t) in tallies {
        hits += t.hits;
        total += t.total;
        out.push_str(&row(&[
            (*k).to_owned(),
            format!("{}/{}", t.hits, t.total),
            format!("{:.4}", t.rate()),
        ]));
    }
    out.push_str(&row(&[
        "all".to_owned(),
        format!("{hits}/{total}"),
        format!("{:.4}", hits as f64 / total.max(1) as f64),
    ]));
    out
}
