//! Screening cost per name, and index build time, against a large list.
//!
//! Lists: the full 2021 OFAC SDN list (imported from `tests/fixtures/screening/`
//! with its aliases), and 20,000 synthetic designated persons (`portcullis
//! synth`, a harsh case: few distinct names, many sharing each token). Names
//! screened: a designated person's spelling variant (a match), an innocent
//! name, and a very common name, each as a name never seen before (the name
//! cache bypassed), and a repeated name (answered from the cache).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::designation::{Designated, parse_file};
use portcullis_core::request::parse_decide;
use portcullis_core::screening::ScreeningIndex;
use portcullis_import::{Options, ofac};

fn sdn() -> Vec<Designated> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screening");
    ofac::import_dir(&dir, &Options::default()).unwrap()
}

fn parse(text: &str) -> Vec<Designated> {
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    parse_file(Path::new("list.jsonl"), text, &mut out, &mut errors);
    assert!(errors.is_empty(), "{:?}", errors.first());
    out
}

fn bench(c: &mut Criterion) {
    bench_list(c, "sdn2021", sdn());
    bench_list(
        c,
        "synthetic20k",
        parse(&portcullis::synth::designations(20_000)),
    );
}

fn bench_list(c: &mut Criterion, label: &str, entries: Vec<Designated>) {
    let names: usize = entries.iter().map(|d| d.record.names.len()).sum();
    eprintln!("{label}: {} designations, {names} names", entries.len());
    let first = entries[entries.len() / 3].record.names[0].clone();
    // A spelling variant: swapped order, one letter changed.
    let mut variant: Vec<String> = first.split_whitespace().rev().map(str::to_owned).collect();
    if let Some(last) = variant.last_mut()
        && last.len() > 4
    {
        last.pop();
        last.push('e');
    }
    let variant = variant.join(" ");
    let request = |name: &str| {
        let body =
            serde_json::json!({"action": "open_account", "customer": {"id": "c", "name": name}});
        parse_decide(body.to_string().as_bytes()).unwrap()
    };
    let hit = request(&variant);
    let miss = request("Margaret Eleanor Whitfield");
    let mohammed = request("Mohammed Ali Hassan");

    let mut group = c.benchmark_group(format!("screening/{label}"));
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(20);
    group.bench_function("build_index", |b| {
        b.iter(|| ScreeningIndex::build(black_box(entries.clone())))
    });
    let index = ScreeningIndex::build(entries.clone());
    let found = index.screen(&hit, 90);
    eprintln!("variant `{variant}` of `{first}`: best {}", found.score);
    group.sample_size(100);
    group.bench_function("variant_name", |b| {
        b.iter(|| index.screen_uncached(black_box(&hit), 90))
    });
    group.bench_function("innocent_name", |b| {
        b.iter(|| index.screen_uncached(black_box(&miss), 90))
    });
    group.bench_function("common_name", |b| {
        b.iter(|| index.screen_uncached(black_box(&mohammed), 90))
    });
    group.bench_function("common_name_repeated", |b| {
        b.iter(|| index.screen(black_box(&mohammed), 90))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
