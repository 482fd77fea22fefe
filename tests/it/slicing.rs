//! Slicing by guards gives exactly the answers of evaluating every policy, on
//! generated policy sets (guards, comparisons, unguarded tests, tests that err,
//! `||`, `unless`, scope constraints, conditions and obligations) and generated
//! requests. Policies made only of guards are decided without Cedar when sliced,
//! so this also checks that deciding by guards is what Cedar decides.

use portcullis_core::engine::{Slicing, decide_with};
use portcullis_core::request::parse_decide;
use proptest::prelude::*;
use serde_json::json;

use crate::support::{maxmind, policy_dir, snapshot};

const CODES: [&str; 6] = ["KP", "IR", "RU", "CN", "FR", "US"];

fn leaf() -> impl Strategy<Value = String> {
    let code = prop::sample::select(CODES.to_vec());
    prop_oneof![
        code.clone()
            .prop_map(|c| format!("context.jurisdictions.contains(\"{c}\")")),
        code.clone()
            .prop_map(|c| format!("context.ip_countries.contains(\"{c}\")")),
        code.clone()
            .prop_map(|c| format!("principal.nationalities.contains(\"{c}\")")),
        (code.clone(), code.clone()).prop_map(|(a, b)| format!(
            "principal.owner_countries.containsAny([\"{a}\", \"{b}\"])"
        )),
        (code.clone(), code).prop_map(|(a, b)| format!(
            "context.declared_countries.containsAny([\"{a}\", \"{b}\"])"
        )),
        Just("!context.screening_matches.isEmpty()".to_owned()),
        Just("context.satisfied_conditions.contains(\"kyc\")".to_owned()),
        Just("context.anonymous_ip".to_owned()),
        Just("context.ip_country_mismatch".to_owned()),
        (
            prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            prop::sample::select(vec![0i64, 1, 8, 255, 256, 257, 599])
        )
            .prop_map(|(op, n)| format!("resource.gpu_count {op} {n}")),
        (
            prop::sample::select(vec![">=", ">", "<", "=="]),
            prop::sample::select(vec![0i64, 50, 85, 100])
        )
            .prop_map(|(op, n)| format!("context.screening_score {op} {n}")),
        (
            prop::sample::select(vec!["country", "payment_country", "reseller_country"]),
            prop::sample::select(vec!["==", "!="]),
            prop::sample::select(vec!["", "IR", "FR"]),
        )
            .prop_map(|(attr, op, c)| format!("principal.{attr} {op} \"{c}\"")),
        (
            prop::sample::select(vec!["kind", "region"]),
            prop::sample::select(vec!["==", "!="]),
            prop::sample::select(vec!["", "vm", "account", "gpu_cluster", "us-east-1"]),
        )
            .prop_map(|(attr, op, v)| format!("resource.{attr} {op} \"{v}\"")),
        Just("principal.kind != \"individual\"".to_owned()),
        Just("principal.kind == \"\"".to_owned()),
        Just("resource.gpu_count > -1".to_owned()),
        Just("256 <= resource.gpu_count".to_owned()),
        Just("resource.gpu_count == context.screening_score".to_owned()),
        Just("principal.country == principal.payment_country".to_owned()),
        Just("true".to_owned()),
        Just("resource.gpu_count * 9223372036854775807 > 1".to_owned()),
        Just("principal.kind == \"organization\"".to_owned()),
        Just("(context.anonymous_ip || context.jurisdictions.contains(\"KP\"))".to_owned()),
    ]
}

fn policy(i: usize) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::sample::select(vec![
            "principal, action",
            "principal, action == Action::\"provision\"",
            "principal, action in [Action::\"open_account\", Action::\"maintain_account\"]",
            "principal is Customer, action",
            "principal == Customer::\"c\", action",
        ]),
        prop::sample::select(vec![
            "resource",
            "resource == Resource::\"vm\"",
            "resource is Resource",
        ]),
        prop::collection::vec(leaf(), 0..4),
        prop::option::of(leaf()),
        0u8..3,
    )
        .prop_map(move |(forbid, scope, resource, when, unless, annotation)| {
            let effect = if forbid { "forbid" } else { "permit" };
            let note = match (forbid, annotation) {
                (true, 1) => "@condition(\"kyc\") ",
                (true, 2) => "@condition(\"attest\") ",
                (false, 1) => "@obligation(\"monitor\") ",
                _ => "",
            };
            let mut text =
                format!("@id(\"p{i}\") @measure(\"M{i}\") {note}{effect}({scope}, {resource})");
            if !when.is_empty() {
                text.push_str(&format!(" when {{ {} }}", when.join(" && ")));
            }
            if let Some(u) = unless {
                text.push_str(&format!(" unless {{ {u} }}"));
            }
            text.push(';');
            text
        })
}

pub(crate) fn policy_set() -> impl Strategy<Value = String> {
    (1usize..16).prop_flat_map(|n| {
        (0..n)
            .map(policy)
            .collect::<Vec<_>>()
            .prop_map(|ps| ps.join("\n"))
    })
}

pub(crate) fn request() -> impl Strategy<Value = serde_json::Value> {
    let code = prop::sample::select(CODES.to_vec());
    (
        prop::sample::select(vec!["open_account", "maintain_account", "provision"]),
        prop::collection::vec(code.clone(), 0..2),
        prop::option::of(code.clone()),
        prop::option::of(code),
        prop::option::of(prop::sample::select(vec![0u32, 1, 8, 255, 256, 257, 599])),
        prop::sample::select(vec!["Ivan Petrov", "Ivan Petrovv", "Ann Lee"]),
        prop::option::of(any::<bool>()),
        prop::collection::vec(prop::sample::select(vec!["kyc", "attest"]), 0..2),
        (
            prop::option::of((
                prop::sample::select(vec!["vm", "gpu_cluster"]),
                prop::option::of(Just("us-east-1")),
            )),
            prop::option::of(prop::sample::select(vec!["IR", "FR"])),
            prop::option::of(prop::sample::select(vec!["IR", "FR"])),
            prop::sample::select(vec!["c", "d"]),
            // In the test databases: US (216.160.83.56), GB and anonymous
            // (81.2.69.1), nowhere (10.1.2.3).
            prop::collection::vec(
                prop::sample::select(vec!["216.160.83.56", "81.2.69.1", "10.1.2.3"]),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                action,
                nats,
                owner,
                address,
                gpus,
                designated,
                org,
                satisfied,
                (resource, payment, reseller, id, ips),
            )| {
                let mut r = json!({
                    "action": action,
                    "customer": {"id": id, "name": designated, "nationalities": nats},
                    "satisfied_conditions": satisfied,
                    "source_ips": ips,
                });
                if let Some(org) = org {
                    r["customer"]["kind"] = json!(if org { "organization" } else { "individual" });
                }
                if let Some((kind, region)) = resource {
                    r["resource"] = json!({"kind": kind});
                    if let Some(gpus) = gpus {
                        r["resource"]["gpu_count"] = json!(gpus);
                    }
                    if let Some(region) = region {
                        r["resource"]["region"] = json!(region);
                    }
                }
                if let Some(p) = payment {
                    r["customer"]["payment"] = json!({"country": p});
                }
                if let Some(c) = reseller {
                    r["reseller"] = json!({"country": c});
                }
                if let Some(o) = owner {
                    r["customer"]["beneficial_owners"] = json!([{"name": "O", "country": o}]);
                }
                if let Some(a) = address {
                    r["customer"]["address"] = json!({"country": a});
                }
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sliced_and_full_evaluation_agree(policies in policy_set(), requests in prop::collection::vec(request(), 1..8)) {
        let dir = policy_dir(&[
            ("p.cedar", policies.as_str()),
            ("designations/d.jsonl", "{\"id\":\"SMP-1\",\"names\":[\"Ivan Petrov\"]}"),
        ]);
        let snap = snapshot(dir.path(), &[
            maxmind("test-data/GeoIP2-Country-Test.mmdb"),
            maxmind("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
        ]);
        for body in requests {
            let req = parse_decide(body.to_string().as_bytes()).unwrap();
            let sliced = decide_with(&snap, &req, Slicing::Guards);
            let full = decide_with(&snap, &req, Slicing::Full);
            prop_assert_eq!(sliced.decision, full.decision, "{}\n{}", policies, body);
            prop_assert_eq!(&sliced.reasons, &full.reasons);
            prop_assert_eq!(&sliced.conditions, &full.conditions);
            prop_assert_eq!(&sliced.obligations, &full.obligations);
            prop_assert_eq!(&sliced.errors, &full.errors);
        }
    }
}
