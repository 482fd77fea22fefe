//! Screening quality on labelled name pairs: precision, recall and F1 at the
//! default threshold, with floors that fail the suite if matching regresses.

use portcullis::names::{NameKind, score};

use crate::support::root;

#[derive(Debug, Default, Clone, Copy)]
struct Confusion {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
}

impl Confusion {
    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

struct Pair {
    kind: NameKind,
    a: String,
    b: String,
    is_match: bool,
}

fn bench_pairs() -> Vec<Pair> {
    let path = root().join("tests/fixtures/labeled/name_bench_cases.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let kind = match &r[1] {
                "Person" => NameKind::Person,
                "Company" | "Organization" | "LegalEntity" => NameKind::Organization,
                _ => NameKind::Unknown,
            };
            Pair {
                kind,
                a: r[2].to_owned(),
                b: r[3].to_owned(),
                is_match: &r[4] == "true",
            }
        })
        .collect()
}

fn confusion(pairs: &[Pair], threshold: u8) -> Confusion {
    let mut c = Confusion::default();
    for p in pairs {
        let hit = score(&p.a, &p.b, p.kind) >= threshold;
        match (hit, p.is_match) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

#[test]
fn name_bench_quality_at_the_default_threshold() {
    let pairs = bench_pairs();
    assert_eq!(pairs.len(), 826);
    let threshold = portcullis::enrich::EnrichSettings::default().screening_threshold;
    let c = confusion(&pairs, threshold);
    eprintln!(
        "name_bench at {threshold}: TP {} FP {} TN {} FN {}; P {:.3} R {:.3} F1 {:.3}",
        c.tp,
        c.fp,
        c.tn,
        c.fn_,
        c.precision(),
        c.recall(),
        c.f1()
    );
    if std::env::var_os("PORTCULLIS_SWEEP").is_some() {
        for t in (60..=98).step_by(2) {
            let c = confusion(&pairs, t);
            eprintln!(
                "  {t}: P {:.3} R {:.3} F1 {:.3} (FP {} FN {})",
                c.precision(),
                c.recall(),
                c.f1(),
                c.fp,
                c.fn_
            );
        }
        for p in &pairs {
            let s = score(&p.a, &p.b, p.kind);
            if (s >= threshold) != p.is_match {
                eprintln!(
                    "  {} {s:3} {} | {}",
                    if p.is_match { "FN" } else { "FP" },
                    p.a,
                    p.b
                );
            }
        }
    }
    // OpenSanctions' logic-v2 on the same pairs: P 0.76 R 0.82 F1 0.80.
    assert!(
        c.f1() >= FLOOR_F1,
        "F1 {:.3} below the floor {FLOOR_F1}",
        c.f1()
    );
    assert!(
        c.precision() >= FLOOR_PRECISION,
        "precision {:.3}",
        c.precision()
    );
}

const FLOOR_F1: f64 = 0.85;
const FLOOR_PRECISION: f64 = 0.87;

#[test]
fn cross_script_pairs_match() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/labeled/cross_script_pairs.csv"))
            .unwrap();
    let threshold = portcullis::enrich::EnrichSettings::default().screening_threshold;
    let (mut hits, mut total) = (0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split(',');
        let (Some(query), Some(expected)) = (cols.next(), cols.next()) else {
            continue;
        };
        total += 1;
        let s = score(query, expected, NameKind::Person);
        if s >= threshold {
            hits += 1;
        } else {
            eprintln!("  cross-script miss {s:3} {query} | {expected}");
        }
    }
    eprintln!("cross_script: {hits}/{total} matched at {threshold}");
    assert!(total >= 20);
    assert!(hits >= CROSS_SCRIPT_FLOOR, "{hits}/{total}");
}

const CROSS_SCRIPT_FLOOR: usize = 14;
