//! Prints the screening quality tables of `docs/screening.md`.
//!
//! `cargo run --profile bench -p portcullis-eval -- [--per-kind N]
//! [--innocents-per-locale N] [--threshold T] [--examples] [--misses]
//! [--probe NAME] [--pair "A|B"] [--scale N [--write FILE]]`

use anyhow::Context as _;
use portcullis_core::screening::ScreeningIndex;
use portcullis_eval::{report, sets};

struct Args {
    per_kind: usize,
    innocents_per_locale: usize,
    threshold: u8,
    examples: bool,
    misses: bool,
    seed: u64,
    probe: Vec<String>,
    pairs: Vec<String>,
    scale: Option<usize>,
    write: Option<std::path::PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        per_kind: 200,
        innocents_per_locale: 10_000,
        threshold: portcullis_core::enrich::EnrichSettings::default().screening_threshold,
        examples: false,
        misses: false,
        seed: 2026,
        probe: Vec::new(),
        pairs: Vec::new(),
        scale: None,
        write: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--per-kind" => a.per_kind = value()?.parse()?,
            "--innocents-per-locale" => a.innocents_per_locale = value()?.parse()?,
            "--threshold" => a.threshold = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--examples" => a.examples = true,
            "--misses" => a.misses = true,
            "--probe" => a.probe.push(value()?),
            "--pair" => a.pairs.push(value()?),
            "--scale" => a.scale = Some(value()?.parse()?),
            "--write" => a.write = Some(value()?.into()),
            other => anyhow::bail!("unknown argument `{other}`"),
        }
    }
    Ok(a)
}

/// This process's resident memory, in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `--scale N`: the SDN list grown N times (real names recombined): index
/// size, build time, and the cost and quality of screening against it, beside
/// the list itself in the same run.
#[allow(clippy::print_stdout)]
fn scale(factor: usize, a: &Args) -> anyhow::Result<()> {
    println!(
        "| list | designations | names | build | index memory | per name | index tables per name | innocent name, uncached | innocents matched | variant recall |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for f in [1, factor] {
        let entries = sets::scaled_sdn(f, a.seed)?;
        let people = sets::individuals(&entries);
        let designations = entries.len();
        let names: usize = entries.iter().map(|d| d.record.names.len()).sum();
        let before = rss_kib();
        let started = std::time::Instant::now();
        let index = ScreeningIndex::build(entries);
        let build = started.elapsed();
        let tables = index.heap_bytes();
        // The records were read before `before`: only the index is counted.
        let memory = rss_kib().saturating_sub(before);
        let started = std::time::Instant::now();
        let by_locale = report::innocents(&index, a.innocents_per_locale, 2027, a.threshold);
        let (hits, total) = by_locale
            .values()
            .fold((0, 0), |(h, t), x| (h + x.hits, t + x.total));
        let per_name = started.elapsed() / u32::try_from(total.max(1)).unwrap_or(u32::MAX);
        let v = report::variants(&index, &people, a.per_kind, a.seed, a.threshold);
        println!(
            "| SDN ×{f} | {designations} | {names} | {build:.2?} | {:.1} MiB | {} B | {} B | {per_name:.1?} | {:.2} % | {:.3} |",
            memory as f64 / 1024.0,
            memory * 1024 / u64::try_from(names.max(1)).unwrap_or(1),
            tables / names.max(1),
            100.0 * hits as f64 / total.max(1) as f64,
            v.recall(),
        );
    }
    Ok(())
}

/// `--misses`: each UN original-script name scored below the threshold
/// against every Latin name of its own designation, the best one explained.
#[allow(clippy::print_stdout)]
fn un_misses(
    un: &[portcullis_core::designation::Designated],
    queries: &[sets::OriginalScript],
    threshold: u8,
) {
    use portcullis_core::names::{NormalName, explain};
    for q in queries {
        let Some(d) = un.iter().find(|d| d.record.id == q.id) else {
            continue;
        };
        let nq = NormalName::new(&q.name);
        let best = d
            .record
            .names
            .iter()
            .map(|n| (explain(&nq, &NormalName::new(n), q.kind), n))
            .max_by_key(|(e, _)| e.name_score);
        if let Some((e, n)) = best.filter(|(e, _)| e.name_score < threshold) {
            let pairs: Vec<String> = e
                .pairs
                .iter()
                .map(|p| format!("{}~{}:{}", p.screened, p.designated, p.similarity))
                .collect();
            println!(
                "MISS {:3} {} | {} | {} | q-left {:?} d-left {:?}",
                e.name_score,
                q.name,
                n,
                pairs.join(" "),
                e.screened_left_out,
                e.designated_left_out
            );
        }
    }
}

#[allow(clippy::print_stdout)]
fn main() -> anyhow::Result<()> {
    let a = args()?;
    if let (Some(factor), Some(path)) = (a.scale, &a.write) {
        // `--scale N --write FILE`: the grown list as a designations file,
        // for the service itself (start, decide, reload).
        let records: Vec<_> = sets::scaled_sdn(factor, a.seed)?
            .into_iter()
            .map(|d| d.record)
            .collect();
        portcullis_import::write_jsonl(path, &records)?;
        println!("wrote {} designations to {}", records.len(), path.display());
        return Ok(());
    }
    if let Some(factor) = a.scale {
        return scale(factor, &a);
    }
    let sdn = sets::sdn()?;
    let people = sets::individuals(&sdn);
    let started = std::time::Instant::now();
    let index = ScreeningIndex::build(sdn);
    println!(
        "SDN index: {} designations, built in {:?}\n",
        index.len(),
        started.elapsed()
    );

    for pair in &a.pairs {
        // `--pair "SCREENED|DESIGNATED"`: how two names compare, token by token.
        let (q, c) = pair
            .split_once('|')
            .context("--pair takes `SCREENED|DESIGNATED`")?;
        let (q, c) = (
            portcullis_core::names::NormalName::new(q),
            portcullis_core::names::NormalName::new(c),
        );
        let e = portcullis_core::names::explain(&q, &c, portcullis_core::names::NameKind::Person);
        println!("{pair}: {}", serde_json::to_string(&e)?);
    }
    if !a.pairs.is_empty() {
        return Ok(());
    }
    if !a.probe.is_empty() {
        let (un, _) = sets::un_original_script()?;
        let un_index = ScreeningIndex::build(un);
        for name in &a.probe {
            let started = std::time::Instant::now();
            for _ in 0..2_000 {
                std::hint::black_box(portcullis_core::names::NormalName::new(name));
            }
            let prepare = started.elapsed() / 2_000;
            let n = portcullis_core::names::NormalName::new(name);
            println!("{name}: prepared in {prepare:?}");
            println!(
                "{name}: tokens {:?} keys {:?} joined {}",
                n.tokens, n.keys, n.joined_key
            );
            for (label, index) in [("SDN", &index), ("UN", &un_index)] {
                let customer = portcullis_eval::Customer {
                    name,
                    kind: portcullis_core::names::NameKind::Person,
                    countries: Vec::new(),
                };
                let s = index.screen_uncached(&customer, 100);
                for m in s.matches.iter().take(5) {
                    println!("  {label} {:3} {} {}", m.score, m.designation, m.name);
                }
                // What the name costs, never seen before (the cache bypassed).
                let started = std::time::Instant::now();
                let rounds: u32 = std::env::var("PROBE_ROUNDS")
                    .ok()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(2_000);
                for _ in 0..rounds {
                    std::hint::black_box(index.screen_uncached(&customer, 100));
                }
                println!("  {label} {:?} a screening", started.elapsed() / rounds);
            }
        }
        return Ok(());
    }
    let v = report::variants(&index, &people, a.per_kind, a.seed, a.threshold);
    println!(
        "## Spelling variants of SDN individuals (threshold {})\n\n{}",
        a.threshold,
        report::variant_table(&v)
    );
    if a.examples {
        for (kind, t) in &v.by_kind {
            for (name, original, s) in t.examples.iter().take(if a.misses { 200 } else { 12 }) {
                println!("  miss [{}] {s:3} {name} <- {original}", kind.label());
                if a.misses {
                    // How the variant compares with the name it came from.
                    use portcullis_core::names::{NameKind, NormalName, explain};
                    let designated = original
                        .rsplit_once(" (")
                        .map_or(original.as_str(), |(n, _)| n);
                    let e = explain(
                        &NormalName::new(name),
                        &NormalName::new(designated),
                        NameKind::Person,
                    );
                    println!("      {}", serde_json::to_string(&e)?);
                }
            }
        }
        for (name, locale, s) in v
            .innocents
            .examples
            .iter()
            .take(if a.misses { 200 } else { 30 })
        {
            println!("  innocent matched [{locale}] {s:3} {name}");
        }
    }

    let (un, queries) = sets::un_original_script()?;
    if a.misses {
        un_misses(&un, &queries, a.threshold);
    }
    let un_index = ScreeningIndex::build(un);
    let by_script = report::original_script(&un_index, &queries, a.threshold);
    println!(
        "\n## UN original-script names against Latin-only designations\n\n{}",
        report::tally_table("script", "found", &by_script)
    );
    if a.examples {
        for (script, t) in &by_script {
            for (name, id, s) in t.examples.iter().take(25) {
                println!("  miss [{script}] {s:3} {name} ({id})");
            }
        }
    }

    let bench = sets::name_bench()?;
    let at = report::pairs(&bench, a.threshold);
    println!(
        "\n## name_bench ({} pairs)\n\nAt {}: P {:.3} R {:.3} F1 **{:.3}** (TP {} FP {} TN {} FN {})\n",
        bench.len(),
        a.threshold,
        at.precision(),
        at.recall(),
        at.f1(),
        at.tp,
        at.fp,
        at.tn,
        at.fn_
    );
    if a.examples {
        for p in &bench {
            let s = portcullis_core::names::score(&p.a, &p.b, p.kind);
            if (s >= a.threshold) != p.is_match {
                let label = if p.is_match { "missed" } else { "false match" };
                println!("  name_bench {label} {s:3} {} | {}", p.a, p.b);
            }
        }
    }
    println!("| threshold | precision | recall | F1 |\n| ---: | ---: | ---: | ---: |");
    for t in (70..=98).step_by(4) {
        let s = report::pairs(&bench, t);
        print!(
            "{}",
            report::row(&[
                t.to_string(),
                format!("{:.3}", s.precision()),
                format!("{:.3}", s.recall()),
                format!("{:.3}", s.f1())
            ])
        );
    }

    let started = std::time::Instant::now();
    let innocent = report::innocents(&index, a.innocents_per_locale, a.seed ^ 1, a.threshold);
    println!(
        "\n## Innocent names against the SDN list ({} per locale, {:?})\n\n{}",
        a.innocents_per_locale,
        started.elapsed(),
        report::tally_table("locale", "matched", &innocent)
    );
    let rendered = report::innocents_in_other_scripts(
        &index,
        a.innocents_per_locale / 4,
        a.seed ^ 3,
        a.threshold,
    );
    println!(
        "\n## Innocent names of the Latin-letter locales written in another script ({} per locale)\n\n{}",
        a.innocents_per_locale / 4,
        report::tally_table("script", "matched", &rendered)
    );
    if a.examples {
        for (script, t) in &rendered {
            for (name, original, s) in t.examples.iter().take(if a.misses { 200 } else { 8 }) {
                println!("  innocent matched [{script}] {s:3} {name} ({original})");
            }
        }
    }
    if a.examples {
        for (locale, t) in &innocent {
            for (name, _, s) in t.examples.iter().take(if a.misses { 200 } else { 8 }) {
                println!("  innocent matched [{locale}] {s:3} {name}");
                if a.misses {
                    // What it matched, explained.
                    let customer = portcullis_eval::Customer {
                        name,
                        kind: portcullis_core::names::NameKind::Person,
                        countries: Vec::new(),
                    };
                    let found = index.screen_uncached(&customer, a.threshold);
                    if let Some(m) = found.matches.first() {
                        let e = portcullis_core::names::explain(
                            &portcullis_core::names::NormalName::new(name),
                            &portcullis_core::names::NormalName::new(&m.name),
                            portcullis_core::names::NameKind::Person,
                        );
                        println!(
                            "      -> {} {} {}",
                            m.score,
                            m.name,
                            serde_json::to_string(&e)?
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
