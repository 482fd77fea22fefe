//! The work of one request is bounded: names per party, parties per request,
//! name length and listed matches; a time budget that really ends the work;
//! structures are JSON objects only.

use std::time::Duration;

use axum::http::StatusCode;
use portcullis::server::state::Limits;
use serde_json::{Value, json};

use crate::support::{BASELINE, call, default_geo, policy_dir, snapshot, state_with};

/// Designated persons that a name like "Mohammed Ali 7" retrieves by the dozen.
fn designations() -> String {
    const SURNAMES: [&str; 12] = [
        "Hassan", "Hussein", "Rahman", "Karim", "Salem", "Nasser", "Aziz", "Farouk", "Haddad",
        "Mansour", "Qasim", "Yousef",
    ];
    let mut out =
        String::from("{\"id\":\"SMP-0\",\"kind\":\"individual\",\"names\":[\"Mohammed Ali\"]}\n");
    for (i, s) in SURNAMES.iter().enumerate() {
        out.push_str(&format!(
            "{{\"id\":\"SMP-{}\",\"kind\":\"individual\",\"names\":[\"Mohammed Ali {s}\",\"Muhammad Ali {s}\"]}}\n",
            i + 1
        ));
    }
    out
}

const SCREENED: &str = "@id(\"screened\")\n@measure(\"SM-T\")\n\
    forbid(principal, action, resource) when { context.screening_score >= 90 };\n";

fn router(limits: Limits) -> (axum::Router, tempfile::TempDir) {
    let designations = designations();
    let dir = policy_dir(&[
        ("baseline.cedar", BASELINE),
        ("screened.cedar", SCREENED),
        ("designations/list.jsonl", designations.as_str()),
    ]);
    let snap = snapshot(dir.path(), &[default_geo()]);
    (
        portcullis::server::http::router(state_with(snap, limits, None)),
        dir,
    )
}

fn aliases(n: usize, from: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("Mohammed Ali {i}"))
        .collect()
}

/// A request whose parties have `names` names each, `owners` beneficial owners.
fn request(names: usize, owners: usize) -> Value {
    let owner = |o: usize| {
        json!({"name": format!("Mohammed Ali Hassan {o}"),
               "aliases": aliases(names - 1, 10_000 * (o + 1))})
    };
    json!({
        "action": "open_account",
        "customer": {
            "id": "c1", "name": "Mohammed Ali",
            "aliases": aliases(names - 1, 0),
            "beneficial_owners": (0..owners).map(owner).collect::<Vec<_>>(),
        }
    })
}

async fn post(router: &axum::Router, uri: &str, body: &Value) -> (StatusCode, Value) {
    call(router, "POST", uri, body.to_string()).await
}

fn assert_refused(answer: &(StatusCode, Value), field: &str, flag: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_value", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(flag), "{message}");
}

/// Sum of `portcullis_decisions_total` over its outcomes.
async fn decisions_counted(router: &axum::Router) -> f64 {
    let (status, text) = crate::support::call_raw(router, "GET", "/metrics", "", None).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(text)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("portcullis_decisions_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn too_many_names_or_parties_are_refused_naming_the_first_beyond() {
    let (r, _dir) = router(Limits::default());
    // The issue's requests: 1,000 and 4,000 aliases.
    for n in [1_000, 4_000] {
        let mut body = request(1, 0);
        body["customer"]["aliases"] = json!(aliases(n, 0));
        let answer = post(&r, "/v1/decide", &body).await;
        // The name and 49 aliases are the 50 names a party may have.
        assert_refused(&answer, "customer.aliases[49]", "--max-names");
    }
    let answer = post(&r, "/v1/decide", &request(1, 100)).await;
    assert_refused(&answer, "customer.beneficial_owners[99]", "--max-parties");

    let mut body = request(2, 3);
    body["customer"]["beneficial_owners"][2]["aliases"][0] = json!("x".repeat(1_001));
    let answer = post(&r, "/v1/decide", &body).await;
    assert_refused(
        &answer,
        "customer.beneficial_owners[2].aliases[0]",
        "--max-name-length",
    );

    // In a batch, the field is that of the item.
    let mut over = request(1, 0);
    over["customer"]["aliases"] = json!(aliases(50, 0));
    let batch = json!({"requests": [request(2, 0), over]});
    let answer = post(&r, "/v1/decide/batch", &batch).await;
    assert_refused(&answer, "requests[1].customer.aliases[49]", "--max-names");
    assert_eq!(decisions_counted(&r).await, 0.0);

    // Limits are the service's to set.
    let (small, _dir) = router(Limits {
        max_names: 3,
        max_parties: 2,
        ..Limits::default()
    });
    let answer = post(&small, "/v1/decide", &request(4, 0)).await;
    assert_refused(&answer, "customer.aliases[2]", "--max-names");
    let answer = post(&small, "/v1/decide", &request(3, 2)).await;
    assert_refused(&answer, "customer.beneficial_owners[1]", "--max-parties");
}

#[tokio::test]
async fn a_request_at_the_limits_is_decided_with_its_matches() {
    let limits = Limits {
        max_names: 20,
        max_parties: 10,
        ..Limits::default()
    };
    let (r, _dir) = router(limits);
    // 200 names: decided on the blocking pool.
    let (status, d) = post(&r, "/v1/decide", &request(20, 9)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["decision"], "deny", "{d}");
    let screening = &d["facts"]["screening"];
    assert_eq!(screening["score"], 100);
    let matches = screening["matches"].as_array().unwrap();
    assert!(!matches.is_empty());
    assert!(matches.len() <= 100, "{}", matches.len());
    assert_eq!(decisions_counted(&r).await, 1.0);
    // The default limits take the most a party may have.
    let (r, _dir) = router(Limits::default());
    let (status, d) = post(&r, "/v1/decide", &request(50, 2)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
}

#[tokio::test]
async fn max_matches_cuts_the_list_not_the_decision() {
    let (full, _a) = router(Limits {
        max_matches: 100_000,
        ..Limits::default()
    });
    let (cut, _b) = router(Limits {
        max_matches: 3,
        ..Limits::default()
    });
    let body = request(10, 1);
    let (_, whole) = post(&full, "/v1/decide", &body).await;
    let (status, part) = post(&cut, "/v1/decide", &body).await;
    assert_eq!(status, StatusCode::OK, "{part}");
    let all = whole["facts"]["screening"]["matches"].as_array().unwrap();
    assert!(all.len() > 3, "{}", all.len());
    assert!(
        whole["facts"]["screening"]
            .get("matches_truncated")
            .is_none()
    );
    let listed = &part["facts"]["screening"];
    assert_eq!(listed["matches"].as_array().unwrap()[..], all[..3]);
    assert_eq!(listed["matches_truncated"], true);
    assert_eq!(listed["score"], whole["facts"]["screening"]["score"]);
    assert_eq!(
        part["facts"]["screening_matches"],
        whole["facts"]["screening_matches"]
    );
    assert_eq!(part["decision"], whole["decision"]);
    assert_eq!(part["reasons"], whole["reasons"]);

    // Each item of a batch is cut alike.
    let (_, batch) = post(&cut, "/v1/decide/batch", &json!({"requests": [body]})).await;
    assert_eq!(batch["decisions"][0]["facts"]["screening"], *listed);
}

#[tokio::test]
async fn past_the_time_limit_the_work_stops_with_408_and_is_not_counted() {
    let (r, _dir) = router(Limits {
        request_timeout: Duration::from_millis(1),
        ..Limits::default()
    });
    // 40 requests of 100 distinct names each: decided on the blocking pool,
    // far longer than a millisecond.
    let items: Vec<Value> = (0..40)
        .map(|i| {
            let mut item = request(50, 1);
            item["customer"]["aliases"] = json!(aliases(49, 100 * i));
            item
        })
        .collect();
    let (status, e) = post(&r, "/v1/decide/batch", &json!({ "requests": items })).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{e}");
    assert_eq!(e["error"]["code"], "request_timeout");
    assert_eq!(decisions_counted(&r).await, 0.0);

    // A request decided inline stops too: its budget is spent from the start.
    let (r, _dir) = router(Limits {
        request_timeout: Duration::ZERO,
        ..Limits::default()
    });
    let (status, e) = post(&r, "/v1/decide", &request(2, 0)).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{e}");
    assert_eq!(e["error"]["code"], "request_timeout");
    let (status, e) = post(
        &r,
        "/v1/decide/batch",
        &json!({"requests": [request(2, 0)]}),
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{e}");
    assert_eq!(decisions_counted(&r).await, 0.0);
}

#[tokio::test]
async fn every_structure_is_an_object() {
    let (r, _dir) = router(Limits::default());
    let (status, e) = call(
        &r,
        "POST",
        "/v1/decide",
        r#"[null,"open_account",["c1",null,"Ann Lee"]]"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_type");

    let batch =
        json!({"requests": [request(1, 0), [null, "open_account", ["c1", null, "Ann Lee"]]]});
    let (status, e) = post(&r, "/v1/decide/batch", &batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_type");
    assert_eq!(e["error"]["field"], "requests[1]");

    let (status, e) = call(&r, "POST", "/v1/decide/batch", r#"[[]]"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_type");

    let dup = r#"{"requests":[],"requests":[]}"#;
    let (status, e) = call(&r, "POST", "/v1/decide/batch", dup).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "duplicate_field");
    assert_eq!(e["error"]["field"], "requests");
}
