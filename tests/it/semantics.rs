//! Decision semantics of contract §1, each rule on a policy set written by the test.

use serde_json::{Value, json};

use crate::support::{BASELINE, decide, ids, maxmind, policy_dir, snapshot, state};

fn router_for(
    files: &[(&str, &str)],
    geo: &[std::path::PathBuf],
) -> (tempfile::TempDir, axum::Router) {
    let dir = policy_dir(files);
    let router = portcullis::server::http::router(state(snapshot(dir.path(), geo)));
    (dir, router)
}

fn req(extra: Value) -> Value {
    let mut r = json!({
        "action": "open_account",
        "customer": {"id": "cust-1", "name": "Ann Lee", "address": {"country": "FR"}}
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

const MEASURES: &str = r#"
@id("sm-kp") @measure("SM-1") @message("KP is prohibited")
forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };

@id("sm-docs") @measure("SM-2") @condition("documentary_verification") @message("verify documents")
forbid(principal, action == Action::"open_account", resource) when { principal.nationalities.contains("IR") };

@id("sm-gpu") @measure("SM-3") @condition("end_use_attestation")
forbid(principal, action == Action::"provision", resource) when { resource.gpu_count >= 256 };

@id("obl-watch") @measure("SM-4") @obligation("enhanced_monitoring") @message("monitor")
permit(principal, action, resource) when { principal.payment_country == "AE" };
"#;

fn measures() -> (tempfile::TempDir, axum::Router) {
    router_for(
        &[("base.cedar", BASELINE), ("measures.cedar", MEASURES)],
        &[],
    )
}

#[tokio::test]
async fn ordinary_customer_is_allowed_without_reasons() {
    let (_d, r) = measures();
    let (status, d) = decide(&r, &req(json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["reasons"], json!([]));
    assert_eq!(d["conditions"], json!([]));
    assert_eq!(d["obligations"], json!([]));
    assert_eq!(d["errors"], json!([]));
}

#[tokio::test]
async fn forbid_denies_with_policy_measure_and_message() {
    let (_d, r) = measures();
    let body = req(json!({"reseller": {"id": "r", "country": "kp"}}));
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(
        d["reasons"],
        json!([{"policy": "sm-kp", "measure": "SM-1", "message": "KP is prohibited"}])
    );
}

#[tokio::test]
async fn condition_makes_conditional_until_satisfied() {
    let (_d, r) = measures();
    let iranian = json!({"id": "c", "name": "N", "nationalities": ["IR"]});
    let (_, d) = decide(&r, &req(json!({"customer": iranian}))).await;
    assert_eq!(d["decision"], "conditional");
    assert_eq!(
        d["conditions"],
        json!([{"id": "documentary_verification", "policy": "sm-docs", "measure": "SM-2", "message": "verify documents"}])
    );
    let (_, d) = decide(
        &r,
        &req(json!({"customer": iranian, "satisfied_conditions": ["documentary_verification"]})),
    )
    .await;
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["conditions"], json!([]));
    // Another condition's id does not lift it.
    let (_, d) = decide(
        &r,
        &req(json!({"customer": iranian, "satisfied_conditions": ["end_use_attestation"]})),
    )
    .await;
    assert_eq!(d["decision"], "conditional");
}

#[tokio::test]
async fn hard_forbid_beats_condition() {
    let (_d, r) = measures();
    let body = req(json!({
        "customer": {"id": "c", "name": "N", "nationalities": ["IR", "KP"]},
        "satisfied_conditions": ["documentary_verification"]
    }));
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(ids(&d, "reasons", "policy"), ["sm-kp"]);
    let body = req(json!({"customer": {"id": "c", "name": "N", "nationalities": ["IR", "KP"]}}));
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "deny");
}

#[tokio::test]
async fn resource_attributes_reach_policies() {
    let (_d, r) = measures();
    let big = req(
        json!({"action": "provision", "resource": {"kind": "gpu_cluster", "region": "us-east-1", "gpu_count": 512}}),
    );
    let (_, d) = decide(&r, &big).await;
    assert_eq!(d["decision"], "conditional");
    assert_eq!(ids(&d, "conditions", "id"), ["end_use_attestation"]);
    let small =
        req(json!({"action": "provision", "resource": {"kind": "gpu_cluster", "gpu_count": 8}}));
    assert_eq!(decide(&r, &small).await.1["decision"], "allow");
}

#[tokio::test]
async fn obligations_come_from_determining_permits() {
    let (_d, r) = measures();
    let body = req(
        json!({"customer": {"id": "c", "name": "N", "payment": {"country": "ae", "method": "card"}}}),
    );
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "allow");
    assert_eq!(
        d["obligations"],
        json!([{"id": "enhanced_monitoring", "policy": "obl-watch", "measure": "SM-4", "message": "monitor"}])
    );
}

#[tokio::test]
async fn no_permit_is_a_deny_with_reason_no_permit() {
    let (_d, r) = router_for(
        &[(
            "p.cedar",
            "@id(\"only-us\") permit(principal, action, resource) when { principal.country == \"US\" };",
        )],
        &[],
    );
    let (_, d) = decide(&r, &req(json!({}))).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(ids(&d, "reasons", "policy"), ["no_permit"]);
}

const OVERFLOW_FORBID: &str = r#"
@id("sm-overflow") @measure("SM-9")
forbid(principal, action, resource) when { resource.gpu_count * 9223372036854775807 > 0 };
"#;

#[tokio::test]
async fn erroring_forbid_fails_closed() {
    let (_d, r) = router_for(
        &[("base.cedar", BASELINE), ("f.cedar", OVERFLOW_FORBID)],
        &[],
    );
    let body = req(json!({"action": "provision", "resource": {"kind": "vm", "gpu_count": 2}}));
    let (status, d) = decide(&r, &body).await;
    assert_eq!(status, 200);
    // Cedar alone would skip the erroring forbid and let the baseline permit win.
    assert_eq!(d["decision"], "deny", "{d}");
    assert_eq!(ids(&d, "reasons", "policy"), ["sm-overflow"]);
    assert_eq!(d["errors"][0]["policy"], "sm-overflow");
    assert!(
        d["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("overflow"),
        "{d}"
    );
    // Without the overflow the forbid evaluates to false and the customer is allowed.
    let body = req(json!({"action": "provision", "resource": {"kind": "vm", "gpu_count": 0}}));
    assert_eq!(decide(&r, &body).await.1["decision"], "allow");
}

#[tokio::test]
async fn erroring_liftable_forbid_is_lifted_by_its_condition_only() {
    let policy = r#"@id("sm-c") @condition("attest")
forbid(principal, action, resource) when { resource.gpu_count * 9223372036854775807 > 0 };"#;
    let (_d, r) = router_for(&[("base.cedar", BASELINE), ("c.cedar", policy)], &[]);
    let body = req(json!({"action": "provision", "resource": {"kind": "vm", "gpu_count": 2}}));
    assert_eq!(decide(&r, &body).await.1["decision"], "deny");
    let body = req(
        json!({"action": "provision", "resource": {"kind": "vm", "gpu_count": 2}, "satisfied_conditions": ["attest"]}),
    );
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "allow", "{d}");
}

#[tokio::test]
async fn erroring_permit_never_allows() {
    let permit = r#"@id("p-overflow")
permit(principal, action, resource) when { resource.gpu_count * 9223372036854775807 > 0 };"#;
    let (_d, r) = router_for(&[("p.cedar", permit)], &[]);
    let body = req(json!({"action": "provision", "resource": {"kind": "vm", "gpu_count": 2}}));
    let (_, d) = decide(&r, &body).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(ids(&d, "reasons", "policy"), ["no_permit"]);
    assert_eq!(d["errors"][0]["policy"], "p-overflow");
}

#[tokio::test]
async fn every_tie_reaches_jurisdictions() {
    let deny_ru = "@id(\"sm-ru\") forbid(principal, action, resource) when { context.jurisdictions.contains(\"RU\") };";
    let geo = [maxmind("test-data/GeoIP2-Country-Test.mmdb")];
    let (_d, r) = router_for(&[("base.cedar", BASELINE), ("ru.cedar", deny_ru)], &geo);
    let ties = [
        json!({"customer": {"id": "c", "name": "N", "nationalities": ["RU"]}}),
        json!({"customer": {"id": "c", "name": "N", "address": {"country": "RU"}}}),
        json!({"customer": {"id": "c", "name": "N", "payment": {"country": "RU"}}}),
        json!({"customer": {"id": "c", "name": "N", "beneficial_owners": [{"name": "O", "nationalities": ["RU"]}]}}),
        json!({"customer": {"id": "c", "name": "N", "beneficial_owners": [{"name": "O", "country": "RU"}]}}),
        json!({"reseller": {"id": "r", "country": "RU"}}),
        json!({"source_ips": ["2a02:d0c0::1"]}),
    ];
    for tie in ties {
        let (_, d) = decide(&r, &req(tie.clone())).await;
        assert_eq!(d["decision"], "deny", "tie {tie} gave {d}");
        assert!(
            d["facts"]["jurisdictions"]
                .as_array()
                .unwrap()
                .contains(&json!("RU"))
        );
    }
    let (_, d) = decide(&r, &req(json!({"source_ips": ["81.2.69.160"]}))).await;
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["facts"]["ip_countries"], json!(["GB"]));
    assert_eq!(d["facts"]["jurisdictions"], json!(["FR", "GB"]));
}

#[tokio::test]
async fn ipv4_mapped_ipv6_gives_the_ipv4_answer() {
    let deny_gb = "@id(\"sm-gb\") forbid(principal, action, resource) when { context.ip_countries.contains(\"GB\") && context.source_ips.contains(ip(\"81.2.69.160\")) };";
    let geo = [maxmind("test-data/GeoIP2-Country-Test.mmdb")];
    let (_d, r) = router_for(&[("base.cedar", BASELINE), ("gb.cedar", deny_gb)], &geo);
    for ip in ["81.2.69.160", "::ffff:81.2.69.160"] {
        let (_, d) = decide(&r, &req(json!({"source_ips": [ip]}))).await;
        assert_eq!(d["decision"], "deny", "{ip}: {d}");
    }
}

#[tokio::test]
async fn ip_mismatch_and_anonymizer_facts() {
    let policy = r#"
@id("sm-anon") @condition("step_up") forbid(principal, action, resource) when { context.anonymous_ip };
@id("obl-mismatch") @obligation("monitor") permit(principal, action, resource) when { context.ip_country_mismatch };
"#;
    let geo = [
        maxmind("test-data/GeoIP2-Country-Test.mmdb"),
        maxmind("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
    ];
    let (_d, r) = router_for(&[("base.cedar", BASELINE), ("p.cedar", policy)], &geo);
    // 216.160.83.56 is in the US (declared FR): a mismatch, not anonymous.
    let (_, d) = decide(&r, &req(json!({"source_ips": ["216.160.83.56"]}))).await;
    assert_eq!(d["decision"], "allow");
    assert_eq!(ids(&d, "obligations", "id"), ["monitor"]);
    assert_eq!(d["facts"]["anonymous_ip"], false);
    // 81.2.69.1 is a VPN / Tor exit in the anonymous-IP test database.
    // Private and documentation addresses are not geolocated.
    let (_, d) = decide(
        &r,
        &req(json!({"source_ips": ["10.1.2.3", "192.0.2.1", "2001:db8::1"]})),
    )
    .await;
    assert_eq!(d["facts"]["ip_countries"], json!([]));
    assert_eq!(d["decision"], "allow");
    let (_, d) = decide(&r, &req(json!({"source_ips": ["81.2.69.1"]}))).await;
    assert_eq!(d["decision"], "conditional", "{d}");
    assert_eq!(d["facts"]["anonymous_ip"], true);
}

#[tokio::test]
async fn designated_persons_match_by_name_alias_and_network() {
    let policy = r#"@id("sm-person") @measure("SM-P")
forbid(principal, action, resource) when { context.screening_matches.contains("SMP-0001") && context.screening_score >= 90 };"#;
    let list = r#"{"id":"SMP-0001","kind":"individual","names":["Ivan Petrov","Иван Петров"],"cidrs":["203.0.113.0/24"],"measure":"SM-P"}"#;
    let (_d, r) = router_for(
        &[
            ("base.cedar", BASELINE),
            ("p.cedar", policy),
            ("designations/list.jsonl", list),
        ],
        &[],
    );
    for body in [
        json!({"customer": {"id": "c", "name": "PETROV, Ivan"}}),
        json!({"customer": {"id": "c", "name": "Someone", "aliases": ["Иван Петров"]}}),
        json!({"customer": {"id": "c", "name": "Acme", "beneficial_owners": [{"name": "ivan petrov"}]}}),
        json!({"source_ips": ["203.0.113.50"]}),
    ] {
        let (_, d) = decide(&r, &req(body.clone())).await;
        assert_eq!(d["decision"], "deny", "{body}: {d}");
        assert_eq!(d["facts"]["screening"]["score"], 100);
        assert_eq!(
            d["facts"]["screening"]["matches"][0]["designation"],
            "SMP-0001"
        );
    }
    let (_, d) = decide(
        &r,
        &req(json!({"customer": {"id": "c", "name": "Ivan Petrovsky"}})),
    )
    .await;
    // A different surname built on the designated one is a near miss, reported
    // below the threshold, not a match.
    assert_eq!(d["decision"], "allow");
    assert!(
        d["facts"]["screening"]["score"].as_u64().unwrap() < 90,
        "{d}"
    );
    assert_eq!(d["facts"]["screening_matches"], json!([]));
}

#[tokio::test]
async fn principal_defaults_are_empty_strings() {
    let policy = r#"@id("p") permit(principal, action, resource) when {
  principal.reseller_country == "" && principal.payment_country == "" && principal.kind == "" &&
  resource.kind == "account" && resource.gpu_count == 0 && resource == Resource::"account" &&
  principal == Customer::"cust-1"
};"#;
    let (_d, r) = router_for(&[("p.cedar", policy)], &[]);
    let body = json!({"action": "maintain_account", "customer": {"id": "cust-1", "name": "N"}});
    assert_eq!(decide(&r, &body).await.1["decision"], "allow");
}

mod properties {
    use std::sync::OnceLock;

    use portcullis_core::engine::decide;
    use portcullis_core::request::{DecideRequest, parse_decide};
    use portcullis_core::snapshot::Snapshot;
    use proptest::prelude::*;
    use serde_json::json;

    use crate::support::{BASELINE, policy_dir, snapshot};

    const CODES: [&str; 8] = ["US", "FR", "RU", "CN", "IR", "KP", "AE", "DE"];

    const EXTRA_FORBID: &str = r#"@id("extra") @measure("SM-X")
forbid(principal, action, resource) when { context.jurisdictions.contains("DE") || resource.gpu_count > 100 };"#;

    fn snapshots() -> &'static (Snapshot, Snapshot) {
        static S: OnceLock<(Snapshot, Snapshot)> = OnceLock::new();
        S.get_or_init(|| {
            let base = [("base.cedar", BASELINE), ("m.cedar", super::MEASURES)];
            let without = policy_dir(&base);
            let with = policy_dir(&[base[0], base[1], ("x.cedar", EXTRA_FORBID)]);
            (snapshot(without.path(), &[]), snapshot(with.path(), &[]))
        })
    }

    fn request() -> impl Strategy<Value = DecideRequest> {
        (
            prop::sample::select(vec!["open_account", "maintain_account", "provision"]),
            prop::collection::vec(prop::sample::select(CODES.to_vec()), 0..3),
            prop::option::of(prop::sample::select(CODES.to_vec())),
            prop::option::of(prop::sample::select(CODES.to_vec())),
            0u32..600,
            prop::collection::vec(
                prop::sample::select(vec![
                    "documentary_verification",
                    "end_use_attestation",
                    "other",
                ]),
                0..3,
            ),
        )
            .prop_map(|(action, nats, owner, reseller, gpus, satisfied)| {
                let mut r = json!({
                    "action": action,
                    "customer": {"id": "c", "name": "N", "nationalities": nats,
                                 "payment": {"country": "AE"}},
                    "resource": {"kind": "gpu_cluster", "gpu_count": gpus},
                    "satisfied_conditions": satisfied,
                });
                if let Some(o) = owner {
                    r["customer"]["beneficial_owners"] = json!([{"name": "O", "country": o}]);
                }
                if let Some(c) = reseller {
                    r["reseller"] = json!({"country": c});
                }
                parse_decide(r.to_string().as_bytes()).unwrap()
            })
    }

    proptest! {
        /// Adding a forbid never turns a deny into an allow or a conditional.
        #[test]
        fn adding_a_forbid_never_loosens(req in request()) {
            let (without, with) = snapshots();
            let before = decide(without, &req).decision;
            let after = decide(with, &req).decision;
            use portcullis_core::decision::Outcome::*;
            let rank = |o| match o { Allow => 0, Conditional => 1, Deny => 2 };
            prop_assert!(rank(after) >= rank(before), "{before:?} -> {after:?}");
        }

        /// Satisfying conditions never turns an allow into anything stricter, and
        /// a conditional's conditions, once all satisfied, give an allow.
        #[test]
        fn satisfying_the_listed_conditions_allows(req in request()) {
            let (without, _) = snapshots();
            let d = decide(without, &req);
            if d.decision == portcullis_core::decision::Outcome::Conditional {
                let mut again = req.clone();
                again.satisfied_conditions.extend(d.conditions.iter().map(|c| c.id.to_string()));
                prop_assert_eq!(decide(without, &again).decision, portcullis_core::decision::Outcome::Allow);
            }
        }
    }
}

mod screening_properties {
    use portcullis_core::designation::parse_file;
    use portcullis_core::request::parse_decide;
    use portcullis_core::screening::ScreeningIndex;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// A designated person's exact name always matches, whatever the case,
        /// word order and punctuation it is written with.
        #[test]
        fn exact_name_always_matches(
            words in prop::collection::vec("[A-Za-zÀ-ÿ]{2,10}", 1..4),
            upper in any::<bool>(),
            rotate in 0usize..4,
            comma in any::<bool>(),
        ) {
            let name = words.join(" ");
            let line = json!({"id": "SMP-1", "names": [name]}).to_string();
            let (mut out, mut errors) = (Vec::new(), Vec::new());
            parse_file(std::path::Path::new("t.jsonl"), &line, &mut out, &mut errors);
            prop_assert!(errors.is_empty());
            let index = ScreeningIndex::build(out);
            let mut shuffled = words.clone();
            let len = shuffled.len();
            shuffled.rotate_left(rotate % len);
            let sep = if comma { ", " } else { "  " };
            let mut screened = shuffled.join(sep);
            if upper {
                screened = screened.to_uppercase();
            }
            let req = json!({"action": "open_account", "customer": {"id": "c", "name": screened}});
            let s = index.screen(&parse_decide(req.to_string().as_bytes()).unwrap(), 90);
            prop_assert_eq!(s.score, 100, "{} vs {}", name, screened);
        }
    }
}
