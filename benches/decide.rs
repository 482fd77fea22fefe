//! Benchmarks of the decision hot path, all in one run so ratios are meaningful.
//!
//! - `decide/*`: `engine::decide` end to end (enrich, Cedar input, evaluation,
//!   resolution, decision id) on a pre-parsed request.
//! - `bare_cedar/*`: `Authorizer::is_authorized` alone, on a pre-built Cedar
//!   request and entities with the same policies: the floor.
//! - `enrich/shipped`, `cedar_input/build`, `parse/request`: the parts.
//!
//! `shipped` is the `policies/` directory of the repository; `200` is the
//! shipped `baseline.cedar` plus 199 generated measures; `1000_guarded` is 1,000
//! jurisdiction-guarded measures (`portcullis synth`). Every set is loaded with
//! the shipped designations *and* the full 2021 OFAC SDN list (8,976
//! designations, imported from `tests/fixtures/screening/`), so every name of
//! the request is screened against the real list.
//!
//! The binary uses mimalloc; so do these benchmarks, to measure what ships.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cedar_policy::Authorizer;
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::cedar_input::{self, CedarNames};
use portcullis_core::decision::Outcome;
use portcullis_core::engine::{Slicing, decide, decide_with};
use portcullis_core::enrich::enrich;
use portcullis_core::request::{DecideRequest, parse_decide};
use portcullis_core::snapshot::{DESIGNATIONS_DIR, Snapshot, Sources};
use portcullis_import::{Options, ofac};

/// A representative request: an organization with nationality, address and
/// payment country, one beneficial owner, one IPv4 and one IPv6 source address
/// and a GPU resource. Nobody in it is designated and none of its countries is
/// a designated jurisdiction, so every policy is evaluated and the answer is an
/// allow (with the IP-mismatch obligation when the IPs geolocate elsewhere).
const REQUEST: &str = r#"{
  "request_id": "bench-0001",
  "action": "provision",
  "customer": {
    "id": "cust-42",
    "kind": "organization",
    "name": "Acme Research GmbH",
    "nationalities": ["DE"],
    "address": {"country": "DE", "region": "BE", "city": "Berlin", "line": "Unter den Linden 1", "postal_code": "10117"},
    "email": "ops@acme-research.example",
    "payment": {"country": "DE", "method": "card"},
    "beneficial_owners": [
      {"name": "Anna Schmidt", "nationalities": ["DE", "AT"], "country": "DE", "ownership_percent": 60.0}
    ]
  },
  "source_ips": ["8.8.8.8", "2001:4860:4860::8888"],
  "resource": {"kind": "gpu_cluster", "region": "eu-central-1", "gpu_count": 64}
}"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn default_geo() -> PathBuf {
    root().join("geo-data/geo-whois-asn-country.mmdb")
}

fn snapshot(policies: &Path) -> Snapshot {
    Snapshot::build(Sources::new(policies.to_owned(), vec![default_geo()]))
        .unwrap_or_else(|e| panic!("snapshot of {}: {:#?}", policies.display(), e.diagnostics))
}

/// Real ISO codes the generated jurisdiction measures cycle over; none of them
/// is a country of [`REQUEST`] (nor of where its IPs geolocate).
const JURISDICTIONS: [&str; 48] = [
    "KP", "IR", "SY", "CU", "RU", "BY", "VE", "MM", "AF", "IQ", "LY", "SD", "SS", "SO", "YE", "ER",
    "ZW", "NI", "CF", "CD", "ML", "LB", "HT", "BI", "GN", "GW", "TD", "NE", "BF", "TM", "TJ", "KG",
    "UZ", "KZ", "AZ", "AM", "GE", "MD", "RS", "BA", "ME", "MK", "AL", "XK", "PS", "ET", "UG", "MZ",
];

/// Countries for `containsAny` sets on jurisdictions and owners.
const GROUPS: [&str; 8] = [
    r#"["IR", "RU"]"#,
    r#"["CN", "HK", "MO"]"#,
    r#"["KP", "SY", "CU"]"#,
    r#"["BY", "RU", "KZ"]"#,
    r#"["VE", "NI", "CU"]"#,
    r#"["MM", "LA", "KH"]"#,
    r#"["AF", "PK", "IR"]"#,
    r#"["SD", "SS", "ER", "ET"]"#,
];

/// 199 realistic, varied measures, each with a unique `@id`.
fn generated_policies() -> String {
    let mut out = String::new();
    for n in 1..=199_usize {
        let code = JURISDICTIONS[n % JURISDICTIONS.len()];
        let group = GROUPS[n % GROUPS.len()];
        let listed = group.replace('"', "");
        let id = format!("sm-gen-{n}");
        let measure = format!("SM-GEN-{n:03}");
        let text = match n % 8 {
            // About half: prohibitions on a designated jurisdiction.
            0..=3 => format!(
                "@id(\"{id}\")\n@measure(\"{measure}\")\n\
                 @message(\"accounts tied to {code} are prohibited\")\n\
                 forbid(principal, action, resource)\n\
                 when {{ context.jurisdictions.contains(\"{code}\") }};\n"
            ),
            // Conditions on large GPU provisioning for listed jurisdictions.
            4 => {
                let gpus = 8 << (n % 6);
                format!(
                    "@id(\"{id}\")\n@measure(\"{measure}\")\n\
                     @condition(\"end_use_attestation_{n}\")\n\
                     @message(\"{gpus}+ GPUs for customers tied to {listed} need an attestation\")\n\
                     forbid(principal, action == Action::\"provision\", resource)\n\
                     when {{ resource.gpu_count >= {gpus} && context.jurisdictions.containsAny({group}) }};\n"
                )
            }
            // Obligations on IP-country mismatch, some narrowed to IP countries.
            5 => {
                let narrow = if n % 2 == 0 {
                    String::new()
                } else {
                    format!(" && context.ip_countries.containsAny({group})")
                };
                format!(
                    "@id(\"{id}\")\n@measure(\"{measure}\")\n\
                     @obligation(\"enhanced_monitoring_{n}\")\n\
                     @message(\"access from an undeclared country: monitor\")\n\
                     permit(principal, action, resource)\n\
                     when {{ context.ip_country_mismatch{narrow} }};\n"
                )
            }
            // Prohibitions on ownership by persons tied to listed countries.
            6 => format!(
                "@id(\"{id}\")\n@measure(\"{measure}\")\n\
                 @message(\"beneficial ownership tied to {listed} is prohibited\")\n\
                 forbid(principal, action, resource)\n\
                 when {{ principal.owner_countries.containsAny({group}) }};\n"
            ),
            // Conditions on anonymous sign-up or residence in a listed country.
            _ => format!(
                "@id(\"{id}\")\n@measure(\"{measure}\")\n\
                 @condition(\"documentary_verification_{n}\")\n\
                 @message(\"sign-up needs documentary verification\")\n\
                 forbid(principal, action == Action::\"open_account\", resource)\n\
                 when {{ context.anonymous_ip || principal.country == \"{code}\" || \
                 principal.payment_country == \"{code}\" }};\n"
            ),
        };
        writeln!(out, "{text}").unwrap();
    }
    out
}

/// A tempdir with the shipped baseline, 199 generated policies, the shipped
/// designations and the SDN list.
fn policies_200(sdn: &tempfile::TempDir) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = root().join("policies");
    std::fs::copy(
        shipped.join("baseline.cedar"),
        dir.path().join("baseline.cedar"),
    )
    .unwrap();
    std::fs::write(dir.path().join("generated.cedar"), generated_policies()).unwrap();
    copy_designations(dir.path(), sdn);
    dir
}

fn bench_set(c: &mut Criterion, label: &str, snapshot: &Snapshot, req: &DecideRequest) {
    let names = CedarNames::new().unwrap();
    let facts = enrich(
        req,
        &snapshot.geo,
        &snapshot.designations,
        snapshot.sources.settings,
    );
    assert!(facts.errors.is_empty(), "{:?}", facts.errors);
    assert!(!facts.ip_countries.is_empty(), "the IPs should geolocate");
    let (cedar_req, entities) = cedar_input::build(&names, req, &facts, true).unwrap();
    let cedar_req = cedar_policy::Request::from(cedar_req);
    let entities = cedar_policy::Entities::from(entities);
    let authorizer = Authorizer::new();
    let policies = &snapshot.policies.source;

    let decision = decide(snapshot, req);
    assert_eq!(decision.decision, Outcome::Allow, "{decision:#?}");
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);

    c.bench_function(&format!("decide/{label}"), |b| {
        b.iter(|| decide(black_box(snapshot), black_box(req)));
    });
    c.bench_function(&format!("decide_unsliced/{label}"), |b| {
        b.iter(|| decide_with(black_box(snapshot), black_box(req), Slicing::Full));
    });
    c.bench_function(&format!("bare_cedar/{label}"), |b| {
        b.iter(|| {
            authorizer.is_authorized(
                black_box(&cedar_req),
                black_box(policies),
                black_box(&entities),
            )
        });
    });
}

fn benches(c: &mut Criterion) {
    let body = REQUEST.as_bytes();
    let req = parse_decide(body).unwrap();

    let sdn = sdn_jsonl();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cedar") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    copy_designations(dir.path(), &sdn);
    let shipped = snapshot(dir.path());
    assert!(shipped.designations.len() > 8_976, "the SDN list is loaded");
    bench_set(c, "shipped", &shipped, &req);

    // Every iteration screens names this thread has not seen (the name cache
    // holds 4,096): the cost of a new customer.
    let fresh = fresh_name_requests();
    let mut next = 0;
    c.bench_function("decide_new_names/shipped", |b| {
        b.iter(|| {
            next = (next + 1) % fresh.len();
            decide(black_box(&shipped), black_box(&fresh[next]))
        });
    });

    let names = CedarNames::new().unwrap();
    c.bench_function("enrich/shipped", |b| {
        b.iter(|| {
            enrich(
                black_box(&req),
                &shipped.geo,
                &shipped.designations,
                shipped.sources.settings,
            )
        });
    });
    let facts = enrich(
        &req,
        &shipped.geo,
        &shipped.designations,
        shipped.sources.settings,
    );
    c.bench_function("cedar_input/build", |b| {
        b.iter(|| cedar_input::build(&names, black_box(&req), black_box(&facts), true).unwrap());
    });
    c.bench_function("parse/request", |b| {
        b.iter(|| parse_decide(black_box(body)).unwrap());
    });

    let dir = policies_200(&sdn);
    let big = snapshot(dir.path());
    assert_eq!(big.policies.len(), 200);
    assert_eq!(big.designations.len(), shipped.designations.len());
    bench_set(c, "200", &big, &req);

    // 1,000 jurisdiction-guarded measures (`portcullis synth`), with the
    // designations of the shipped set.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("generated.cedar"),
        portcullis::synth::policies(1000),
    )
    .unwrap();
    copy_designations(dir.path(), &sdn);
    let guarded = snapshot(dir.path());
    assert_eq!(guarded.policies.len(), 1000);
    let sliced = decide(&guarded, &req);
    let full = decide_with(&guarded, &req, Slicing::Full);
    assert_eq!(sliced.decision, full.decision);
    assert_eq!(sliced.obligations, full.obligations);
    bench_set(c, "1000_guarded", &guarded, &req);
}

/// 10,000 copies of [`REQUEST`] whose customer and owner names are all different.
fn fresh_name_requests() -> Vec<DecideRequest> {
    const FIRST: [&str; 20] = [
        "Anna", "Lukas", "Maria", "Jonas", "Sofia", "Elias", "Emma", "Noah", "Mia", "Paul", "Lena",
        "Felix", "Clara", "Jakob", "Marie", "David", "Hanna", "Leon", "Julia", "Moritz",
    ];
    const LAST: [&str; 25] = [
        "Schmidt",
        "Weber",
        "Wagner",
        "Becker",
        "Hoffmann",
        "Koch",
        "Richter",
        "Klein",
        "Wolf",
        "Neumann",
        "Schwarz",
        "Zimmermann",
        "Braun",
        "Hofmann",
        "Hartmann",
        "Lange",
        "Krause",
        "Lehmann",
        "Kaiser",
        "Fuchs",
        "Peters",
        "Scholz",
        "Vogel",
        "Jung",
        "Keller",
    ];
    const FIRM: [&str; 20] = [
        "Nordwind",
        "Bergblick",
        "Lindenhof",
        "Sonnenfeld",
        "Rheinufer",
        "Waldrand",
        "Seeblick",
        "Talweg",
        "Hochland",
        "Mittelpunkt",
        "Eichenhain",
        "Morgenrot",
        "Kiefernweg",
        "Auenland",
        "Steinbach",
        "Birkenallee",
        "Feldmark",
        "Quellgrund",
        "Wiesental",
        "Uferweg",
    ];
    const KIND: [&str; 5] = ["Research", "Analytics", "Systems", "Labs", "Computing"];
    let mut out = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let firm = FIRM[(i / 500) % FIRM.len()];
        let kind = KIND[i % KIND.len()];
        let body = REQUEST
            .replace("Acme Research GmbH", &format!("{firm} {kind} {last} GmbH"))
            .replace("Anna Schmidt", &format!("{first} {last}-{firm}"));
        out.push(parse_decide(body.as_bytes()).unwrap());
    }
    out
}

/// The 2021 SDN list as a designations file (JSON Lines).
fn sdn_jsonl() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let list = ofac::import_dir(
        &root().join("tests/fixtures/screening"),
        &Options::default(),
    )
    .unwrap();
    let records: Vec<_> = list.into_iter().map(|d| d.record).collect();
    assert!(records.len() >= 8_976);
    portcullis_import::write_jsonl(&dir.path().join("sdn-2021.jsonl"), &records).unwrap();
    dir
}

/// The shipped designations and the SDN list, into `to/designations/`.
fn copy_designations(to: &Path, sdn: &tempfile::TempDir) {
    let into = to.join(DESIGNATIONS_DIR);
    std::fs::create_dir_all(&into).unwrap();
    let shipped = root().join("policies").join(DESIGNATIONS_DIR);
    for from in [shipped.as_path(), sdn.path()] {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
        }
    }
}

criterion_group! {
    name = decide_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(decide_benches);
