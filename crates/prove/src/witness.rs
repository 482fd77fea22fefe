//! A counterexample, in Portcullis's terms: the facts the solver found, the
//! answer each policy set gives them, and a `/v1/decide` request that produces
//! them when one can be found.
//!
//! The solver's counterexample is a Cedar request (customer and resource
//! attributes, context). Those are the facts. A request is then built to
//! produce them — countries as nationalities, address, payment, owners and
//! reseller; a designated person's name, date of birth and nationalities for a
//! screening match; source IPs from the snapshot's geo databases for IP
//! countries and anonymizers — and decided on the real engine. It is reported
//! only if the engine gives it the answers the model gave the facts; otherwise
//! the facts are reported alone.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};

use cedar_policy::{Authorizer, Decision as CedarDecision, Entities, PolicySet, Request};
use portcullis_core::country::Country;
use portcullis_core::decision::Outcome;
use portcullis_core::engine;
use portcullis_core::geo::Samples;
use portcullis_core::lifecycle::Instant;
use portcullis_core::request::parse_decide;
use portcullis_core::snapshot::Snapshot;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::Model;

/// Portcullis's answer, as the model tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Allow,
    Conditional,
    Deny,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Conditional => "conditional",
            Self::Deny => "deny",
        }
    }

    fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Allow => Self::Allow,
            Outcome::Conditional => Self::Conditional,
            Outcome::Deny => Self::Deny,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of a counterexample: what the policies see.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    pub action: String,
    pub customer: CustomerFacts,
    pub resource: ResourceFacts,
    pub jurisdictions: Vec<String>,
    pub declared_countries: Vec<String>,
    pub ip_countries: Vec<String>,
    pub source_ips: Vec<String>,
    pub ip_country_mismatch: bool,
    pub anonymous_ip: bool,
    pub screening_score: i64,
    pub screening_matches: Vec<String>,
    pub satisfied_conditions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerFacts {
    pub kind: String,
    pub name: String,
    pub nationalities: Vec<String>,
    pub country: String,
    pub payment_country: String,
    pub owner_countries: Vec<String>,
    pub reseller_country: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResourceFacts {
    pub kind: String,
    pub region: String,
    pub gpu_count: i64,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    // An extension value (`ipaddr`): its argument.
                    other => other
                        .pointer("/__extn/arg")
                        .and_then(Value::as_str)
                        .map_or_else(|| other.to_string(), str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

fn string(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn long(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or_default()
}

fn boolean(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or_default()
}

impl Facts {
    /// Reads the facts of a counterexample.
    pub fn of(request: &Request, entities: &Entities) -> Self {
        let context = request
            .context()
            .and_then(|c| c.to_json_value().ok())
            .unwrap_or(Value::Null);
        let attrs = |uid: Option<&cedar_policy::EntityUid>| -> Value {
            uid.and_then(|u| entities.get(u))
                .and_then(|e| e.to_json_value().ok())
                .and_then(|j| j.get("attrs").cloned())
                .unwrap_or(Value::Null)
        };
        let p = attrs(request.principal());
        let r = attrs(request.resource());
        let c = |k: &str| context.get(k);
        Self {
            action: request
                .action()
                .map(|a| a.id().unescaped().to_owned())
                .unwrap_or_default(),
            customer: CustomerFacts {
                kind: string(p.get("kind")),
                name: string(p.get("name")),
                nationalities: strings(p.get("nationalities")),
                country: string(p.get("country")),
                payment_country: string(p.get("payment_country")),
                owner_countries: strings(p.get("owner_countries")),
                reseller_country: string(p.get("reseller_country")),
            },
            resource: ResourceFacts {
                kind: string(r.get("kind")),
                region: string(r.get("region")),
                gpu_count: long(r.get("gpu_count")),
            },
            jurisdictions: strings(c("jurisdictions")),
            declared_countries: strings(c("declared_countries")),
            ip_countries: strings(c("ip_countries")),
            source_ips: strings(c("source_ips")),
            ip_country_mismatch: boolean(c("ip_country_mismatch")),
            anonymous_ip: boolean(c("anonymous_ip")),
            screening_score: long(c("screening_score")),
            screening_matches: strings(c("screening_matches")),
            satisfied_conditions: strings(c("satisfied_conditions")),
        }
    }
}

/// What a model answers a counterexample.
pub fn answer(model: &Model, request: &Request, entities: &Entities) -> Answer {
    let allows = |set: &PolicySet| {
        Authorizer::new()
            .is_authorized(request, set, entities)
            .decision()
            == CedarDecision::Allow
    };
    if allows(&model.allow) {
        Answer::Allow
    } else if allows(&model.allow_or_conditional) {
        Answer::Conditional
    } else {
        Answer::Deny
    }
}

/// A counterexample: the facts, the answer under each set, and a request that
/// produces them, when one was found.
#[derive(Debug, Clone, Serialize)]
pub struct Witness {
    pub facts: Facts,
    /// The answer under each set compared (one set: one answer).
    pub answers: Vec<Answer>,
    /// For an obligation compared: whether each answer carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_obligation: Option<Vec<bool>>,
    /// A `/v1/decide` body whose decisions on the real engine are `answers`
    /// (and carry the obligation as `with_obligation` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
}

/// What a witness is about, beyond the answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Focus<'a> {
    /// The instant the policies were taken at, when not the one asked: the
    /// request then carries it as `at`.
    pub at: Option<Instant>,
    /// An obligation whose presence is compared.
    pub obligation: Option<&'a str>,
    /// A policy that errs on the counterexample: the request must make the
    /// engine report that error (its answers are then the engine's).
    pub errs: Option<&'a str>,
}

impl Witness {
    /// The witness of a counterexample, judged by `models` (one per set), a
    /// request built from it tried on `snapshots` (the same sets, built as
    /// `serve` builds them).
    pub fn new(
        request: &Request,
        entities: &Entities,
        models: &[&Model],
        snapshots: &[&Snapshot],
        focus: Focus<'_>,
    ) -> Self {
        let facts = Facts::of(request, entities);
        let answers: Vec<Answer> = models
            .iter()
            .map(|m| answer(m, request, entities))
            .collect();
        let with_obligation: Option<Vec<bool>> = focus.obligation.map(|o| {
            models
                .iter()
                .map(|m| {
                    m.obligations.get(o).is_some_and(|set| {
                        Authorizer::new()
                            .is_authorized(request, set, entities)
                            .decision()
                            == CedarDecision::Allow
                    })
                })
                .collect()
        });
        let expected: Vec<(Answer, bool)> = answers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let carries = with_obligation
                    .as_ref()
                    .and_then(|w| w.get(i).copied())
                    .unwrap_or(false);
                (*a, carries)
            })
            .collect();
        // The plainest request first: only conditions some policy names, no
        // resource for an account action; then one as close to the facts as
        // the request can be.
        let known: BTreeSet<&str> = models
            .iter()
            .flat_map(|m| m.conditions.iter().map(String::as_str))
            .collect();
        let facts_for_request = with_real_countries(&facts);
        let mut engine_answers = None;
        let request = snapshots.first().and_then(|s| {
            [Some(&known), None].into_iter().find_map(|plain| {
                let mut body = realise(&facts_for_request, s, plain)?;
                if let (Some(at), Some(map)) = (focus.at, body.as_object_mut()) {
                    map.insert("at".into(), json!(at.to_string()));
                }
                if let Some(policy) = focus.errs {
                    let got = erring(&body, snapshots, policy)?;
                    engine_answers = Some(got);
                    return Some(body);
                }
                let got = decisions(&body, snapshots, focus.obligation)?;
                (got == expected).then_some(body)
            })
        });
        Self {
            facts,
            answers: engine_answers.unwrap_or(answers),
            with_obligation,
            request,
        }
    }
}

/// The engine's answers on a request body, if `policy` errs on it (on the
/// first snapshot).
fn erring(body: &Value, snapshots: &[&Snapshot], policy: &str) -> Option<Vec<Answer>> {
    let bytes = serde_json::to_vec(body).ok()?;
    let req = parse_decide(&bytes).ok()?;
    let decided: Vec<_> = snapshots.iter().map(|s| engine::decide(s, &req)).collect();
    let errs = decided
        .first()?
        .errors
        .iter()
        .any(|e| e.policy.as_deref() == Some(policy));
    errs.then(|| decided.iter().map(|d| Answer::of(d.decision)).collect())
}

/// Countries a request can carry: each code the solver made up (`"A"`,
/// `"AA"`) replaced, the same way everywhere, by a real one the facts do not
/// use. The engine's answer on the request is checked afterwards anyway.
fn with_real_countries(facts: &Facts) -> Facts {
    const SPARE: [&str; 12] = [
        "FR", "DE", "JP", "BR", "CA", "AU", "IN", "ZA", "MX", "SE", "NZ", "CL",
    ];
    let mut out = facts.clone();
    let mut made_up: Vec<String> = Vec::new();
    {
        let c = &facts.customer;
        let lists = [
            &facts.jurisdictions,
            &facts.declared_countries,
            &facts.ip_countries,
            &c.nationalities,
            &c.owner_countries,
        ];
        let singles = [&c.country, &c.payment_country, &c.reseller_country];
        for code in lists.into_iter().flatten().chain(singles) {
            if !code.is_empty() && country(code).is_none() && !made_up.contains(code) {
                made_up.push(code.clone());
            }
        }
    }
    let used: BTreeSet<&String> = facts.jurisdictions.iter().collect();
    let mut spare = SPARE
        .iter()
        .filter(|c| !used.iter().any(|u| u.as_str() == **c));
    let map: HashMap<String, String> = made_up
        .into_iter()
        .filter_map(|m| spare.next().map(|s| (m, (*s).to_owned())))
        .collect();
    let fix = |v: &mut Vec<String>| {
        for code in v.iter_mut() {
            if let Some(real) = map.get(code) {
                real.clone_into(code);
            }
        }
    };
    fix(&mut out.jurisdictions);
    fix(&mut out.declared_countries);
    fix(&mut out.ip_countries);
    fix(&mut out.customer.nationalities);
    fix(&mut out.customer.owner_countries);
    for code in [
        &mut out.customer.country,
        &mut out.customer.payment_country,
        &mut out.customer.reseller_country,
    ] {
        if let Some(real) = map.get(code.as_str()) {
            real.clone_into(code);
        }
    }
    out
}

/// The decisions of the real engine on a request body, and whether each
/// carries `obligation`.
fn decisions(
    body: &Value,
    snapshots: &[&Snapshot],
    obligation: Option<&str>,
) -> Option<Vec<(Answer, bool)>> {
    let bytes = serde_json::to_vec(body).ok()?;
    let req = parse_decide(&bytes).ok()?;
    Some(
        snapshots
            .iter()
            .map(|s| {
                let d = engine::decide(s, &req);
                let carries =
                    obligation.is_some_and(|o| d.obligations.iter().any(|r| r.id.as_ref() == o));
                (Answer::of(d.decision), carries)
            })
            .collect(),
    )
}

/// An example address ([`portcullis_core::geo::GeoSet::samples`]); the
/// samples are taken once per set of database files (one walk of each).
fn sample_ip(snapshot: &Snapshot, country: Option<Country>, anonymous: bool) -> Option<IpAddr> {
    type Key = Vec<std::path::PathBuf>;
    static SAMPLES: LazyLock<Mutex<HashMap<Key, Arc<Samples>>>> = LazyLock::new(Default::default);
    let files: Key = snapshot
        .geo
        .databases()
        .iter()
        .map(|db| db.path().to_owned())
        .collect();
    let known = SAMPLES.lock().ok().and_then(|m| m.get(&files).cloned());
    let samples = known.unwrap_or_else(|| {
        let taken = Arc::new(snapshot.geo.samples());
        if let Ok(mut m) = SAMPLES.lock() {
            m.insert(files, taken.clone());
        }
        taken
    });
    samples.get(country, anonymous)
}

/// A valid country code for `code`, if it is one.
fn country(code: &str) -> Option<String> {
    Country::parse(code).map(|c| c.to_string())
}

/// A `/v1/decide` body meant to produce `facts` on `snapshot`; `plain`: only
/// the satisfied conditions among these, and no resource for an account action.
fn realise(facts: &Facts, snapshot: &Snapshot, plain: Option<&BTreeSet<&str>>) -> Option<Value> {
    let valid =
        |v: &[String]| -> BTreeSet<String> { v.iter().filter_map(|c| country(c)).collect() };
    let mut nationalities = valid(&facts.customer.nationalities);
    let owners = valid(&facts.customer.owner_countries);
    let ip_countries = valid(&facts.ip_countries);
    let reseller = country(&facts.customer.reseller_country);
    let address = country(&facts.customer.country);
    let payment = country(&facts.customer.payment_country);
    // Declared countries the customer's own fields do not account for are
    // nationalities; so are jurisdictions nothing else accounts for.
    let mut accounted: BTreeSet<String> = nationalities.clone();
    accounted.extend(address.clone());
    accounted.extend(payment.clone());
    for c in valid(&facts.declared_countries) {
        if !accounted.contains(&c) {
            nationalities.insert(c);
        }
    }
    accounted.extend(nationalities.iter().cloned());
    accounted.extend(owners.iter().cloned());
    accounted.extend(ip_countries.iter().cloned());
    accounted.extend(reseller.clone());
    for c in valid(&facts.jurisdictions) {
        if !accounted.contains(&c) {
            nationalities.insert(c);
        }
    }

    let mut customer = Map::new();
    customer.insert("id".into(), json!("counterexample"));
    customer.insert("name".into(), json!("Quillon Marrowbeck"));
    customer.insert("nationalities".into(), json!(nationalities));
    if let Some(kind) = ["individual", "organization"]
        .into_iter()
        .find(|k| *k == facts.customer.kind)
    {
        customer.insert("kind".into(), json!(kind));
    }
    if let Some(d) = facts.screening_matches.first().and_then(|id| {
        snapshot
            .designations
            .entries()
            .iter()
            .find(|d| &d.record.id == id)
    }) {
        let r = &d.record;
        customer.insert(
            "name".into(),
            json!(r.names.first().cloned().unwrap_or_default()),
        );
        if let Some(kind) = &r.kind {
            customer.insert("kind".into(), json!(kind));
        }
        if let Some(dob) = &r.date_of_birth {
            customer.insert("date_of_birth".into(), json!(dob));
        }
    }
    if let Some(a) = &address {
        customer.insert("address".into(), json!({ "country": a }));
    }
    if let Some(p) = &payment {
        customer.insert("payment".into(), json!({ "country": p }));
    }
    if !owners.is_empty() {
        customer.insert(
            "beneficial_owners".into(),
            json!([{ "name": "Owner Vantreese", "nationalities": owners }]),
        );
    }

    // One address per IP country; an anonymizer one of them if the databases
    // have such an address there, else one more address that is (its own
    // country then counts too). An address the databases cannot give is left
    // out: the engine then judges whether the request still shows it.
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut anonymous = !facts.anonymous_ip;
    for c in &ip_countries {
        let code = Country::parse(c)?;
        let flagged = (!anonymous)
            .then(|| sample_ip(snapshot, Some(code), true))
            .flatten();
        anonymous |= flagged.is_some();
        ips.extend(flagged.or_else(|| sample_ip(snapshot, Some(code), false)));
    }
    if !anonymous {
        ips.extend(sample_ip(snapshot, None, true));
    }

    let mut body = Map::new();
    body.insert("request_id".into(), json!("counterexample"));
    body.insert("action".into(), json!(facts.action));
    body.insert("customer".into(), Value::Object(customer));
    body.insert(
        "source_ips".into(),
        json!(ips.iter().map(ToString::to_string).collect::<Vec<_>>()),
    );
    let conditions: Vec<&String> = facts
        .satisfied_conditions
        .iter()
        .filter(|c| plain.is_none_or(|known| known.contains(c.as_str())))
        .collect();
    if !conditions.is_empty() {
        body.insert("satisfied_conditions".into(), json!(conditions));
    }
    if let Some(r) = &reseller {
        body.insert(
            "reseller".into(),
            json!({ "id": "reseller-counterexample", "country": r }),
        );
    }
    if facts.action == "provision" || (plain.is_none() && facts.resource.gpu_count > 0) {
        let kind = match facts.resource.kind.as_str() {
            "" => "gpu_cluster",
            k => k,
        };
        let mut resource = Map::new();
        resource.insert("kind".into(), json!(kind));
        resource.insert("gpu_count".into(), json!(facts.resource.gpu_count.max(0)));
        if !facts.resource.region.is_empty() {
            resource.insert("region".into(), json!(facts.resource.region));
        }
        body.insert("resource".into(), Value::Object(resource));
    }
    Some(Value::Object(body))
}
