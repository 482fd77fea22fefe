//! Hostile input, generated: the router, policy files and names are fuzzed with
//! a seeded generator, so that every run is the same and a failure names the
//! seed, the case and the body that caused it.
//!
//! Properties:
//! - router: never a 5xx or a panic; every 4xx is the error envelope with a
//!   known code; every 200 is a decision (a batch answers as many as it was
//!   sent); a valid request is decided, and decided the same way twice.
//! - policy files: building a snapshot (what `portcullis check` and every
//!   reload run) returns, on a thread with the default stack, either a
//!   snapshot or diagnostics that name the file and, in a policy or
//!   designation file, a line.
//! - names: any Unicode, long names, many aliases and owners are decided or
//!   refused with the envelope, and the same way twice.
//!
//! Case counts are set by environment variables (defaults in [`FuzzConfig`]);
//! `PORTCULLIS_FUZZ_SEED` changes the seed. A nightly run sets larger counts.

use std::collections::HashSet;
use std::fmt::Write as _;

use axum::Router;
use axum::http::StatusCode;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use crate::support::{call_raw, default_geo, shipped_policies, shipped_router};

/// Every error code the service may put on the wire.
const KNOWN_CODES: &[&str] = &[
    "malformed_json",
    "missing_field",
    "unknown_field",
    "duplicate_field",
    "invalid_type",
    "invalid_value",
    "invalid_country",
    "invalid_ip",
    "payload_too_large",
    "batch_too_large",
    "request_timeout",
    "records_unavailable",
    "not_found",
    "method_not_allowed",
    "unauthorized",
    "admin_disabled",
    "bad_body",
];

/// Limits the service applies by default: names per party (name and aliases)
/// and parties per request (the customer and beneficial owners).
const MAX_NAMES: usize = 50;
const MAX_PARTIES: usize = 100;

/// The exit code of `portcullis check` for invalid input.
const INVALID_EXIT: i32 = 3;

/// The body size limit of `Limits::default()`.
const MAX_BODY: usize = 1024 * 1024;

struct FuzzConfig;

impl FuzzConfig {
    /// Seed of every generator (`PORTCULLIS_FUZZ_SEED`).
    fn seed() -> u64 {
        env_number("PORTCULLIS_FUZZ_SEED", 0x5eed_0fc0_ffee)
    }

    /// Bodies sent to the router (`PORTCULLIS_FUZZ_CASES`, default 100,000).
    fn router_cases() -> u64 {
        env_number("PORTCULLIS_FUZZ_CASES", 100_000)
    }

    /// Bodies checked against the contract's shape
    /// (`PORTCULLIS_FUZZ_SHAPE_CASES`, default 20,000).
    fn shape_cases() -> u64 {
        env_number("PORTCULLIS_FUZZ_SHAPE_CASES", 20_000)
    }

    /// Mutated policy directories built (`PORTCULLIS_FUZZ_POLICY_CASES`, default 1,500).
    fn policy_cases() -> u64 {
        env_number("PORTCULLIS_FUZZ_POLICY_CASES", 1_500)
    }

    /// Generated names sent (`PORTCULLIS_FUZZ_NAME_CASES`, default 3,000).
    fn name_cases() -> u64 {
        env_number("PORTCULLIS_FUZZ_NAME_CASES", 3_000)
    }
}

fn env_number(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}=`{v}` is not a whole number")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------
// The generator

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    /// The generator of case `case` under `seed`: each case can be replayed alone.
    fn for_case(seed: u64, stream: u64, case: u64) -> Self {
        let mut r = Self(seed ^ stream.wrapping_mul(0xa076_1d64_78bd_642f));
        r.0 ^= r
            .next()
            .wrapping_add(case.wrapping_mul(0xe703_7ed1_a0b4_28db));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

const COUNTRIES: &[&str] = &[
    "US", "us", "Fr", "RU", "ru", "CN", "IR", "ir", "KP", "kp", "AE", "DE", "GB", "JP", "BR", "IN",
    "SY", "CU", "VE", "BY", "ZA", "NG", "AU", "CA", "MX", "TR", "UA", "KZ",
];

const IPS: &[&str] = &[
    "203.0.113.7",
    "2001:db8::1",
    "198.51.100.23",
    "8.8.8.8",
    "1.1.1.1",
    "5.255.255.5",
    "77.88.8.8",
    "175.45.176.1",
    "2.144.0.1",
    "::ffff:198.51.100.9",
    "::1",
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "fe80::1",
    " 10.0.0.1 ",
    "2a02:6b8::feed:0ff",
];

const NAMES: &[&str] = &[
    "Ivan Petrov",
    "Boris Exampleovich Fictiv",
    "Борис Фиктив",
    "Placeholder Dynamics LLC",
    "OOO Placeholder Dynamics",
    "Li Wei",
    "李伟",
    "محمد رضا",
    "José Ñúñez-O'Brien",
    "Acme Cloud GmbH",
    "Ким Чен",
    "x",
    "A. B. C. D. E. F. G.",
    "Dr. Jane Q. Public III",
    "שלום עליכם",
    "Nguyễn Văn An",
    "🦀 Crab Corp",
    "e\u{301}e\u{301}e\u{301}",
    "Zero\u{200b}Width\u{200d}Joiner",
    "\u{202e}desrever",
];

const WORDS: &[&str] = &[
    "",
    "a",
    "gpu_cluster",
    "us-east-1",
    "card",
    "wire",
    "crypto",
    "passport",
    "tax_id",
    "documentary_verification",
    "end_use_attestation",
    "enhanced_monitoring",
    "Moscow",
    "1 Tverskaya",
    "ivan@example.ru",
    "+7 495 000 0000",
    "boris@fictiv.example",
    "EX0000001",
    "\u{0}",
    "\t\r\n",
    "\u{7f}\u{1b}[31m",
    "\u{feff}",
    "\u{10ffff}",
    "\u{fffd}",
    "\"quoted\" \\ back",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%s%n%x",
    "../../etc/passwd",
];

fn word(rng: &mut Rng) -> Value {
    let w = rng.pick(WORDS);
    if rng.chance(10) {
        Value::String(w.repeat(rng.range(2, 40)))
    } else {
        Value::String(w.to_owned())
    }
}

/// A name the contract accepts: any Unicode, but not blank (a name of only
/// white space is `invalid_value`, as it must be).
fn name(rng: &mut Rng) -> Value {
    if rng.chance(20) {
        let text = unicode_text(rng, 1, 40);
        if !text.trim().is_empty() {
            return Value::String(text);
        }
    }
    Value::String(rng.pick(NAMES).to_owned())
}

fn country(rng: &mut Rng) -> Value {
    Value::String(rng.pick(COUNTRIES).to_owned())
}

fn countries(rng: &mut Rng) -> Value {
    Value::Array((0..rng.below(4)).map(|_| country(rng)).collect())
}

fn date(rng: &mut Rng) -> Value {
    let year = rng.range(1800, 2200);
    Value::String(match rng.below(3) {
        0 => format!("{year}"),
        1 => format!("{year}-{:02}", rng.range(1, 12)),
        _ => format!("{year}-{:02}-{:02}", rng.range(1, 12), rng.range(1, 31)),
    })
}

/// Inserts `key` with probability `percent`.
fn maybe(m: &mut Map<String, Value>, rng: &mut Rng, percent: u64, key: &str, v: Value) {
    if rng.chance(percent) {
        m.insert(key.to_owned(), if rng.chance(5) { Value::Null } else { v });
    }
}

fn list(rng: &mut Rng, max: usize, mut item: impl FnMut(&mut Rng) -> Value) -> Value {
    Value::Array((0..rng.below(max + 1)).map(|_| item(rng)).collect())
}

/// A valid request: every field of contract §2 appears in some cases.
fn valid_request(rng: &mut Rng) -> Value {
    let mut customer = Map::new();
    customer.insert("id".into(), json!(format!("cust-{}", rng.next() % 10_000)));
    customer.insert("name".into(), name(rng));
    let kind = json!(*rng.pick(&["individual", "organization"]));
    maybe(&mut customer, rng, 50, "kind", kind);
    let aliases = list(rng, 4, name);
    maybe(&mut customer, rng, 40, "aliases", aliases);
    let dob = date(rng);
    maybe(&mut customer, rng, 40, "date_of_birth", dob);
    let nats = countries(rng);
    maybe(&mut customer, rng, 60, "nationalities", nats);
    let mut address = Map::new();
    let c = country(rng);
    maybe(&mut address, rng, 80, "country", c);
    for key in ["region", "city", "line", "postal_code"] {
        let w = word(rng);
        maybe(&mut address, rng, 40, key, w);
    }
    maybe(&mut customer, rng, 60, "address", Value::Object(address));
    let email = word(rng);
    maybe(&mut customer, rng, 30, "email", email);
    let phone = word(rng);
    maybe(&mut customer, rng, 30, "phone", phone);
    let mut payment = Map::new();
    let c = country(rng);
    maybe(&mut payment, rng, 80, "country", c);
    let w = word(rng);
    maybe(&mut payment, rng, 50, "method", w);
    maybe(&mut customer, rng, 50, "payment", Value::Object(payment));
    let owners = list(rng, 3, |rng| {
        let mut o = Map::new();
        o.insert("name".into(), name(rng));
        let a = list(rng, 2, name);
        maybe(&mut o, rng, 30, "aliases", a);
        let n = countries(rng);
        maybe(&mut o, rng, 60, "nationalities", n);
        let c = country(rng);
        maybe(&mut o, rng, 60, "country", c);
        let d = date(rng);
        maybe(&mut o, rng, 30, "date_of_birth", d);
        let p = json!((rng.below(10_001) as f64) / 100.0);
        maybe(&mut o, rng, 30, "ownership_percent", p);
        Value::Object(o)
    });
    maybe(&mut customer, rng, 40, "beneficial_owners", owners);
    let ids = list(rng, 2, |rng| {
        let mut i = Map::new();
        // Free text, but not blank (`invalid_value`).
        let kind = match word(rng) {
            Value::String(w) if !w.trim().is_empty() => Value::String(w),
            _ => json!("passport"),
        };
        i.insert("kind".into(), kind);
        i.insert(
            "value".into(),
            json!(*rng.pick(&["EX0000001", "123456789", "AB 12 34"])),
        );
        let c = country(rng);
        maybe(&mut i, rng, 50, "country", c);
        Value::Object(i)
    });
    maybe(&mut customer, rng, 30, "identifiers", ids);

    let mut request = Map::new();
    request.insert(
        "action".into(),
        json!(*rng.pick(&["open_account", "maintain_account", "provision"])),
    );
    request.insert("customer".into(), Value::Object(customer));
    let id = word(rng);
    maybe(&mut request, rng, 50, "request_id", id);
    let mut reseller = Map::new();
    reseller.insert("country".into(), country(rng));
    let w = word(rng);
    maybe(&mut reseller, rng, 50, "id", w);
    maybe(&mut request, rng, 30, "reseller", Value::Object(reseller));
    let ips = list(rng, 3, |rng| json!(*rng.pick(IPS)));
    maybe(&mut request, rng, 60, "source_ips", ips);
    let mut resource = Map::new();
    resource.insert(
        "kind".into(),
        json!(*rng.pick(&["gpu_cluster", "vm", "account", "bucket"])),
    );
    let region = word(rng);
    maybe(&mut resource, rng, 50, "region", region);
    let gpus = json!([0u64, 1, 255, 256, 512, 4096, u64::from(u32::MAX)][rng.below(7)]);
    maybe(&mut resource, rng, 60, "gpu_count", gpus);
    maybe(&mut request, rng, 60, "resource", Value::Object(resource));
    let sat = list(rng, 2, |rng| {
        json!(*rng.pick(&[
            "documentary_verification",
            "end_use_attestation",
            "other",
            ""
        ]))
    });
    maybe(&mut request, rng, 30, "satisfied_conditions", sat);
    Value::Object(request)
}

/// Text of any Unicode: every plane, combining marks, RTL, emoji, zero-width.
fn unicode_text(rng: &mut Rng, min: usize, max: usize) -> String {
    const RANGES: &[(u32, u32)] = &[
        (0x20, 0x7e),          // ASCII
        (0x0, 0x1f),           // C0 controls
        (0x80, 0x24f),         // Latin-1, Latin Extended
        (0x300, 0x36f),        // combining diacritical marks
        (0x400, 0x4ff),        // Cyrillic
        (0x590, 0x6ff),        // Hebrew, Arabic
        (0x200b, 0x200f),      // zero-width, LRM, RLM
        (0x202a, 0x202e),      // bidi embedding and override
        (0x2066, 0x2069),      // bidi isolates
        (0x3000, 0x30ff),      // CJK punctuation, kana
        (0x4e00, 0x9fff),      // CJK
        (0xac00, 0xd7a3),      // Hangul
        (0xfe00, 0xfe0f),      // variation selectors
        (0xfeff, 0xfeff),      // BOM as text
        (0xfff0, 0xffff),      // specials, noncharacters
        (0x1_f300, 0x1_faff),  // emoji
        (0x1_d400, 0x1_d7ff),  // mathematical alphanumerics
        (0x2_0000, 0x2_a6df),  // CJK extension B
        (0xe_0000, 0xe_007f),  // tags
        (0xf_0000, 0x10_ffff), // private use planes
    ];
    let len = rng.range(min, max);
    let mut s = String::with_capacity(len * 3);
    for _ in 0..len {
        if rng.chance(3) {
            s.push_str("\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}");
            continue;
        }
        let (lo, hi) = RANGES[rng.below(RANGES.len())];
        let c = lo + (rng.next() % u64::from(hi - lo + 1)) as u32;
        s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
    }
    s
}

// ---------------------------------------------------------------------------
// Mutation

/// Bodies that are not JSON numbers Rust can hold, or not JSON at all.
const ODD_VALUES: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "-1",
    "1.5",
    "0.0000000000000000000000001",
    "123456789012345678901234567890123456789012345678901234567890",
    "NaN",
    "Infinity",
    "true",
    "false",
    "null",
    "\"\"",
    "\"   \"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\uDBFF\\uDFFF\"",
    "\"\\x41\"",
    "[]",
    "{}",
    "[null]",
    "[[]]",
    "{\"\":null}",
    "\"KP\"",
    "\"kp \"",
    "\"open_account\"",
    "\"2001:db8::1\"",
    "\"999.1.1.1\"",
    "\"0000-00-00\"",
];

/// A JSON text nested `depth` levels deep.
fn deep(rng: &mut Rng, depth: usize) -> String {
    let (open, close) = match rng.below(3) {
        0 => ("[", "]"),
        1 => ("{\"a\":", "}"),
        _ => ("[{\"customer\":", "}]"),
    };
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + 4);
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push('1');
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

fn odd_value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => {
            let depth = [129, 200, 1_000, 10_000][rng.below(4)];
            deep(rng, depth)
        }
        1 => format!("\"{}\"", "A".repeat(rng.range(1_000, 100_000))),
        2 => serde_json::to_string(&unicode_text(rng, 1, 64)).unwrap(),
        _ => rng.pick(ODD_VALUES).to_owned(),
    }
}

/// How a structured mutation changes the node it targets.
enum Edit {
    /// Replace the node's text.
    Raw(String),
    /// Write an object's first key twice.
    DuplicateKey(String),
    /// Write an object as the array of its values.
    ArrayForObject,
    /// Write an object as an array holding it.
    Wrapped,
    /// Add a key no contract field has.
    UnknownKey,
    /// Drop an object's first key.
    DropKey,
}

/// Writes `v` as JSON, applying `edit` to node number `target` (pre-order).
struct Writer {
    target: usize,
    seen: usize,
    edit: Option<Edit>,
    out: String,
}

impl Writer {
    fn write(&mut self, v: &Value) {
        let here = self.seen;
        self.seen += 1;
        if here == self.target {
            match self.edit.take() {
                Some(Edit::Raw(text)) => {
                    self.out.push_str(&text);
                    return;
                }
                Some(Edit::ArrayForObject) if v.is_object() => {
                    let values: Vec<Value> = v.as_object().unwrap().values().cloned().collect();
                    self.write(&Value::Array(values));
                    return;
                }
                Some(Edit::Wrapped) => {
                    self.out.push('[');
                    self.write(v);
                    self.out.push(']');
                    return;
                }
                Some(edit) => self.edit = Some(edit),
                None => {}
            }
        }
        match v {
            Value::Object(m) => {
                let edit = if here == self.target {
                    self.edit.take()
                } else {
                    None
                };
                self.out.push('{');
                let mut first = true;
                let mut comma = |out: &mut String| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                };
                for (i, (k, val)) in m.iter().enumerate() {
                    if i == 0 && matches!(edit, Some(Edit::DropKey)) {
                        continue;
                    }
                    comma(&mut self.out);
                    self.out.push_str(&serde_json::to_string(k).unwrap());
                    self.out.push(':');
                    self.write(val);
                    if i == 0
                        && let Some(Edit::DuplicateKey(other)) = &edit
                    {
                        comma(&mut self.out);
                        self.out.push_str(&serde_json::to_string(k).unwrap());
                        self.out.push(':');
                        self.out.push_str(other);
                    }
                }
                if matches!(edit, Some(Edit::UnknownKey)) {
                    comma(&mut self.out);
                    self.out.push_str("\"nationality\":\"RU\"");
                }
                self.out.push('}');
            }
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.write(item);
                }
                self.out.push(']');
            }
            scalar => self.out.push_str(&scalar.to_string()),
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(count_nodes).sum(),
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// One structured mutation of a valid body: the JSON stays well-formed
/// except where the edit writes raw text.
fn structured_mutation(rng: &mut Rng, v: &Value) -> Vec<u8> {
    let target = rng.below(count_nodes(v));
    let edit = match rng.below(8) {
        0 | 1 => Edit::Raw(odd_value(rng)),
        2 => Edit::DuplicateKey(odd_value(rng)),
        3 => Edit::ArrayForObject,
        4 => Edit::Wrapped,
        5 => Edit::UnknownKey,
        6 => Edit::DropKey,
        _ => Edit::Raw(serde_json::to_string(&word(rng)).unwrap()),
    };
    let mut w = Writer {
        target,
        seen: 0,
        edit: Some(edit),
        out: String::new(),
    };
    w.write(v);
    w.out.into_bytes()
}

/// Byte-level damage: flips, cuts, splices, invalid UTF-8, BOMs, NULs, controls.
fn byte_mutation(rng: &mut Rng, body: &mut Vec<u8>) {
    const INSERTS: &[&[u8]] = &[
        b"\xef\xbb\xbf",
        b"\0",
        b"\x01",
        b"\x1b",
        b"\x7f",
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        b"\\",
        b"\"",
        b",",
        b":",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\\u0000",
        b"\\ud800",
        b"\n",
        b"\r",
        b"\t",
        b"\xe2\x80\xae",
        b"\xe2\x80\x8b",
        b"//",
        b"/*",
    ];
    for _ in 0..rng.range(1, 4) {
        let at = rng.below(body.len() + 1);
        match rng.below(7) {
            0 if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] ^= 1 << rng.below(8);
            }
            1 => body.truncate(at),
            2 => {
                insert(body, at, INSERTS[rng.below(INSERTS.len())]);
            }
            3 => {
                let end = (at + rng.range(1, 32)).min(body.len());
                body.drain(at..end);
            }
            4 => {
                let end = (at + rng.range(1, 64)).min(body.len());
                let slice = body[at..end].to_vec();
                insert(body, at, &slice);
            }
            5 => insert(body, 0, b"\xef\xbb\xbf"),
            _ if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] = rng.next() as u8;
            }
            _ => body.push(rng.next() as u8),
        }
    }
}

fn insert(body: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let tail = body.split_off(at);
    body.extend_from_slice(bytes);
    body.extend(tail);
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"\"action\"",
        b"\"customer\"",
        b"\"requests\"",
        b"\"name\"",
        b"\"id\"",
        b"\"open_account\"",
        b"null",
        b"1",
        b"-0",
        b"\"x\"",
        b" ",
    ];
    let len = rng.below(512);
    if rng.chance(50) {
        (0..len).map(|_| rng.next() as u8).collect()
    } else {
        let mut out = Vec::new();
        while out.len() < len {
            out.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Checking answers

/// A generated body and what it is known to be.
struct Case {
    uri: &'static str,
    body: Vec<u8>,
    /// Generated valid, unmutated: must be decided, the same way twice.
    valid: bool,
}

fn shown(body: &[u8]) -> String {
    const MAX: usize = 2_000;
    let escaped: String = body
        .iter()
        .take(MAX)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if body.len() > MAX {
        format!("b\"{escaped}\"… ({} bytes in all)", body.len())
    } else {
        format!("b\"{escaped}\"")
    }
}

/// Checks one answer; returns the decisions of a 200 without their ids.
fn check_answer(case: &Case, status: StatusCode, answer: &[u8]) -> Result<Option<Value>, String> {
    let text = String::from_utf8_lossy(answer);
    let parsed: Value = serde_json::from_slice(answer)
        .map_err(|e| format!("{status}: answer is not JSON ({e}): {text}"))?;
    if status == StatusCode::OK {
        let decisions = if case.uri == "/v1/decide" {
            check_decision(&parsed)?;
            vec![parsed]
        } else {
            let decisions = parsed["decisions"]
                .as_array()
                .ok_or_else(|| format!("batch answer without `decisions`: {text}"))?;
            let sent: Value = serde_json::from_slice(&case.body)
                .map_err(|e| format!("a body that is not JSON ({e}) was decided: {text}"))?;
            let sent = sent["requests"].as_array().map_or(usize::MAX, Vec::len);
            if decisions.len() != sent {
                return Err(format!(
                    "{sent} requests sent, {} decisions answered",
                    decisions.len()
                ));
            }
            for d in decisions {
                check_decision(d)?;
            }
            decisions.clone()
        };
        return Ok(Some(Value::Array(
            decisions.into_iter().map(without_ids).collect(),
        )));
    }
    if case.valid {
        return Err(format!("a valid request was not decided: {status} {text}"));
    }
    if !status.is_client_error() {
        return Err(format!("status {status} (expected 200 or 4xx): {text}"));
    }
    check_envelope(&parsed).map_err(|e| format!("{status}: {e}: {text}"))?;
    Ok(None)
}

fn check_envelope(v: &Value) -> Result<(), String> {
    let error = v["error"]
        .as_object()
        .ok_or("no `error` object in a 4xx answer")?;
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .ok_or("no `error.code`")?;
    if !KNOWN_CODES.contains(&code) {
        return Err(format!("unknown error code `{code}`"));
    }
    if error
        .get("message")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("no `error.message`".into());
    }
    if !error
        .get("field")
        .is_some_and(|f| f.is_null() || f.is_string())
    {
        return Err("`error.field` is neither null nor a string".into());
    }
    Ok(())
}

fn check_decision(d: &Value) -> Result<(), String> {
    let kind = d["decision"].as_str().unwrap_or_default();
    if !["allow", "deny", "conditional"].contains(&kind) {
        return Err(format!("`decision` is `{kind}`: {d}"));
    }
    for key in ["decision_id", "policy_revision"] {
        if d[key].as_str().is_none_or(str::is_empty) {
            return Err(format!("no `{key}`: {d}"));
        }
    }
    let facts = &d["facts"];
    if !facts.is_object()
        || !facts["jurisdictions"].is_array()
        || !facts["screening"]["score"].is_u64()
    {
        return Err(format!("no `facts`: {d}"));
    }
    for key in ["reasons", "conditions", "obligations", "errors"] {
        if !d[key].is_array() {
            return Err(format!("`{key}` is not a list: {d}"));
        }
    }
    Ok(())
}

/// A decision without what differs between two decisions of one request.
fn without_ids(mut d: Value) -> Value {
    if let Some(m) = d.as_object_mut() {
        m.remove("decision_id");
        m.remove("decided_at");
    }
    d
}

fn generate(rng: &mut Rng) -> Case {
    let batch = rng.chance(20);
    let uri = if batch {
        "/v1/decide/batch"
    } else {
        "/v1/decide"
    };
    let value = if batch {
        json!({"requests": (0..rng.range(1, 4)).map(|_| valid_request(rng)).collect::<Vec<_>>()})
    } else {
        valid_request(rng)
    };
    let (body, valid) = match rng.below(100) {
        0..30 => (value.to_string().into_bytes(), true),
        30..60 => (structured_mutation(rng, &value), false),
        60..85 => {
            let mut b = value.to_string().into_bytes();
            byte_mutation(rng, &mut b);
            (b, false)
        }
        85..90 => {
            let mut b = structured_mutation(rng, &value);
            byte_mutation(rng, &mut b);
            (b, false)
        }
        _ => (random_bytes(rng), false),
    };
    Case { uri, body, valid }
}

async fn send(router: &Router, case: &Case) -> (StatusCode, Vec<u8>) {
    call_raw(router, "POST", case.uri, case.body.clone(), None).await
}

/// Runs cases `first..end` of the router fuzz; returns how many were valid.
async fn router_fuzz_range(router: Router, seed: u64, first: u64, end: u64) -> u64 {
    let mut valid = 0;
    for i in first..end {
        let mut rng = Rng::for_case(seed, 1, i);
        let case = generate(&mut rng);
        let (status, answer) = send(&router, &case).await;
        let first_answer = check_answer(&case, status, &answer);
        let decided = match first_answer {
            Ok(d) => d,
            Err(e) => fail(seed, i, &case, &e),
        };
        if case.valid {
            valid += 1;
            let (status, answer) = send(&router, &case).await;
            let again =
                check_answer(&case, status, &answer).unwrap_or_else(|e| fail(seed, i, &case, &e));
            if again != decided {
                fail(
                    seed,
                    i,
                    &case,
                    &format!(
                        "decided differently the second time:\n{}\n{}",
                        decided.unwrap_or_default(),
                        again.unwrap_or_default()
                    ),
                );
            }
        }
    }
    valid
}

fn fail(seed: u64, case_no: u64, case: &Case, problem: &str) -> ! {
    panic!(
        "fuzz case {case_no} (PORTCULLIS_FUZZ_SEED={seed}) POST {}: {problem}\nbody: {}",
        case.uri,
        shown(&case.body)
    )
}

/// ≥ 100,000 generated, mutated and random bodies against `/v1/decide` and
/// `/v1/decide/batch`, records off: no 5xx at all, every 4xx the envelope with
/// a known code, every 200 a decision, valid requests decided the same twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_fuzz_never_5xx_and_always_answers_the_contract() {
    let router = shipped_router();
    let (seed, cases) = (FuzzConfig::seed(), FuzzConfig::router_cases());
    let workers = 2;
    let per = cases.div_ceil(workers);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let router = router.clone();
            tokio::spawn(router_fuzz_range(
                router,
                seed,
                w * per,
                ((w + 1) * per).min(cases),
            ))
        })
        .collect();
    let mut valid = 0;
    for t in tasks {
        valid += t
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    assert!(
        cases < 100 || valid * 5 > cases,
        "only {valid} of {cases} bodies were valid: the generator is off"
    );
}

// ---------------------------------------------------------------------------
// The contract's shape: what may be decided at all

/// A JSON value parsed without losing duplicate keys: `Err` names the first.
#[derive(Debug)]
enum Strict {
    Null,
    Bool,
    Number(serde_json::Number),
    String,
    Array(Vec<Strict>),
    Object(Vec<(String, Strict)>),
}

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
                Ok(Strict::Bool)
            }
            fn visit_u64<E>(self, n: u64) -> Result<Strict, E> {
                Ok(Strict::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Strict, E> {
                Ok(Strict::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Strict, E> {
                serde_json::Number::from_f64(n)
                    .map(Strict::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
                Ok(Strict::String)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Strict::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
                let mut entries: Vec<(String, Strict)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Strict>()? {
                    if entries.iter().any(|(seen, _)| *seen == k) {
                        return Err(de::Error::custom(format!("duplicate key `{k}`")));
                    }
                    entries.push((k, v));
                }
                Ok(Strict::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The type of each field of contract §2, as far as a decided body must have it.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    /// A non-negative whole number.
    Count,
    Num,
    Obj(&'static [(&'static str, Shape, bool)]),
    List(&'static Shape),
}

const ADDRESS: Shape = Shape::Obj(&[
    ("country", Shape::Str, false),
    ("region", Shape::Str, false),
    ("city", Shape::Str, false),
    ("line", Shape::Str, false),
    ("postal_code", Shape::Str, false),
]);
const PAYMENT: Shape = Shape::Obj(&[
    ("country", Shape::Str, false),
    ("method", Shape::Str, false),
]);
const OWNER: Shape = Shape::Obj(&[
    ("name", Shape::Str, true),
    ("aliases", Shape::List(&Shape::Str), false),
    ("nationalities", Shape::List(&Shape::Str), false),
    ("country", Shape::Str, false),
    ("date_of_birth", Shape::Str, false),
    ("ownership_percent", Shape::Num, false),
]);
const IDENTIFIER: Shape = Shape::Obj(&[
    ("kind", Shape::Str, true),
    ("value", Shape::Str, true),
    ("country", Shape::Str, false),
]);
const CUSTOMER: Shape = Shape::Obj(&[
    ("id", Shape::Str, true),
    ("kind", Shape::Str, false),
    ("name", Shape::Str, true),
    ("aliases", Shape::List(&Shape::Str), false),
    ("date_of_birth", Shape::Str, false),
    ("nationalities", Shape::List(&Shape::Str), false),
    ("address", ADDRESS, false),
    ("email", Shape::Str, false),
    ("phone", Shape::Str, false),
    ("payment", PAYMENT, false),
    ("beneficial_owners", Shape::List(&OWNER), false),
    ("identifiers", Shape::List(&IDENTIFIER), false),
]);
const REQUEST: Shape = Shape::Obj(&[
    ("request_id", Shape::Str, false),
    ("action", Shape::Str, true),
    ("customer", CUSTOMER, true),
    (
        "reseller",
        Shape::Obj(&[("id", Shape::Str, false), ("country", Shape::Str, true)]),
        false,
    ),
    ("source_ips", Shape::List(&Shape::Str), false),
    (
        "resource",
        Shape::Obj(&[
            ("kind", Shape::Str, true),
            ("region", Shape::Str, false),
            ("gpu_count", Shape::Count, false),
        ]),
        false,
    ),
    ("satisfied_conditions", Shape::List(&Shape::Str), false),
]);
const BATCH: Shape = Shape::Obj(&[("requests", Shape::List(&REQUEST), true)]);

/// Whether `v` has `shape`: objects where the contract has objects, no unknown
/// or repeated keys, required fields present; optional fields may be null.
fn conforms(v: &Strict, shape: Shape, at: &str) -> Result<(), String> {
    match (shape, v) {
        (Shape::Str, Strict::String) | (Shape::Num, Strict::Number(_)) => Ok(()),
        (Shape::Count, Strict::Number(n)) if n.is_u64() => Ok(()),
        (Shape::List(item), Strict::Array(items)) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| conforms(x, *item, &format!("{at}[{i}]"))),
        (Shape::Obj(fields), Strict::Object(entries)) => {
            for (k, x) in entries {
                let Some((_, shape, required)) = fields.iter().find(|(name, ..)| name == k) else {
                    return Err(format!("unknown field `{at}.{k}`"));
                };
                if matches!(x, Strict::Null) && !required {
                    continue;
                }
                conforms(x, *shape, &format!("{at}.{k}"))?;
            }
            match fields
                .iter()
                .find(|(name, _, required)| *required && !entries.iter().any(|(k, _)| k == name))
            {
                Some((name, ..)) => Err(format!("missing `{at}.{name}`")),
                None => Ok(()),
            }
        }
        _ => Err(format!("`{at}` is not of the contract's type: {v:?}")),
    }
}

fn get<'a>(v: &'a Strict, key: &str) -> Option<&'a Strict> {
    match v {
        Strict::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn len(v: Option<&Strict>) -> usize {
    match v {
        Some(Strict::Array(a)) => a.len(),
        _ => 0,
    }
}

/// Whether a conforming request is within the default limits on names and parties.
fn within_limits(request: &Strict) -> Result<(), String> {
    let Some(customer) = get(request, "customer") else {
        return Ok(());
    };
    let owners = match get(customer, "beneficial_owners") {
        Some(Strict::Array(owners)) => owners.as_slice(),
        _ => &[],
    };
    if 1 + owners.len() > MAX_PARTIES {
        return Err(format!("{} parties", 1 + owners.len()));
    }
    for party in std::iter::once(customer).chain(owners) {
        let names = 1 + len(get(party, "aliases"));
        if names > MAX_NAMES {
            return Err(format!("a party with {names} names"));
        }
    }
    Ok(())
}

/// What a body must be for the service to decide it: JSON with objects where
/// the contract has objects (not arrays), no repeated keys, within the limits.
fn decidable(uri: &str, body: &[u8]) -> Result<(), String> {
    let v: Strict = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if uri == "/v1/decide" {
        conforms(&v, REQUEST, "")?;
        within_limits(&v)
    } else {
        conforms(&v, BATCH, "")?;
        match get(&v, "requests") {
            Some(Strict::Array(requests)) => requests.iter().try_for_each(within_limits),
            _ => Ok(()),
        }
    }
}

/// Generated and mutated bodies: only a body of the contract's shape is
/// decided. Arrays in place of objects, repeated keys and bodies beyond the
/// limits are refused.
#[tokio::test]
async fn router_fuzz_decides_only_contract_shapes() {
    let router = shipped_router();
    let (seed, cases) = (FuzzConfig::seed(), FuzzConfig::shape_cases());
    for i in 0..cases {
        let mut rng = Rng::for_case(seed, 2, i);
        let mut case = generate(&mut rng);
        // Structured mutations keep the JSON well-formed: the ones this checks.
        if rng.chance(70) && !case.valid {
            let value = if case.uri == "/v1/decide" {
                valid_request(&mut rng)
            } else {
                json!({"requests": [valid_request(&mut rng)]})
            };
            case.body = structured_mutation(&mut rng, &value);
        }
        let (status, answer) = send(&router, &case).await;
        if status == StatusCode::OK
            && let Err(why) = decidable(case.uri, &case.body)
        {
            fail(seed, i, &case, &format!("decided, but {why}"));
        }
        if let Err(e) = check_answer(&case, status, &answer) {
            fail(seed, i, &case, &e);
        }
    }
}

// ---------------------------------------------------------------------------
// Names

fn party_names(rng: &mut Rng, aliases: usize) -> (Value, Value) {
    let main = Value::String(unicode_text(rng, 1, 64));
    let aliases = (0..aliases)
        .map(|_| Value::String(unicode_text(rng, 1, 24)))
        .collect();
    (main, Value::Array(aliases))
}

fn named_request(rng: &mut Rng, aliases: usize, owners: usize, owner_aliases: usize) -> Value {
    let (name, alias_list) = party_names(rng, aliases);
    let owners: Vec<Value> = (0..owners)
        .map(|_| {
            let (n, a) = party_names(rng, owner_aliases);
            json!({"name": n, "aliases": a, "nationalities": [country(rng)]})
        })
        .collect();
    json!({
        "action": "open_account",
        "customer": {"id": "c-names", "name": name, "aliases": alias_list, "beneficial_owners": owners}
    })
}

/// Sends a body twice: answers 200 or 4xx with the envelope, the same both times.
async fn decided_or_refused_alike(router: &Router, seed: u64, i: u64, body: Vec<u8>) -> StatusCode {
    let case = Case {
        uri: "/v1/decide",
        body,
        valid: false,
    };
    let (status, answer) = send(router, &case).await;
    let first = check_answer(&case, status, &answer).unwrap_or_else(|e| fail(seed, i, &case, &e));
    let (status_again, answer) = send(router, &case).await;
    let again =
        check_answer(&case, status_again, &answer).unwrap_or_else(|e| fail(seed, i, &case, &e));
    if status != status_again || first != again {
        fail(
            seed,
            i,
            &case,
            &format!("answered {status} then {status_again}, or differently"),
        );
    }
    status
}

/// Any Unicode in names (every plane, combining marks, RTL, emoji, zero-width),
/// up to the limits on names and parties: decided or refused with the envelope,
/// the same way twice.
#[tokio::test]
async fn name_fuzz_any_unicode_within_limits() {
    let router = shipped_router();
    let (seed, cases) = (FuzzConfig::seed(), FuzzConfig::name_cases());
    for i in 0..cases {
        let mut rng = Rng::for_case(seed, 3, i);
        let (aliases, owners, owner_aliases) = match rng.below(10) {
            0 => (MAX_NAMES - 1, 0, 0),
            1 => (rng.below(4), MAX_PARTIES - 1, rng.below(3)),
            2 if i % 50 == 2 => (MAX_NAMES - 1, MAX_PARTIES - 1, MAX_NAMES - 1),
            _ => (rng.below(6), rng.below(4), rng.below(4)),
        };
        let body = named_request(&mut rng, aliases, owners, owner_aliases).to_string();
        let status = decided_or_refused_alike(&router, seed, i, body.into_bytes()).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "case {i}: {status}"
        );
    }
}

/// Long names, up to and just beyond the body limit: decided, or refused with
/// `payload_too_large` once the body is over it.
#[tokio::test]
async fn name_fuzz_long_names_up_to_the_body_limit() {
    let router = shipped_router();
    let seed = FuzzConfig::seed();
    let envelope = |name: &str| {
        json!({"action": "open_account", "customer": {"id": "c", "name": name}}).to_string()
    };
    let overhead = envelope("").len();
    for (i, size) in [
        1_000usize,
        10_000,
        100_000,
        500_000,
        MAX_BODY - overhead,
        MAX_BODY - overhead + 1,
    ]
    .into_iter()
    .enumerate()
    {
        let mut rng = Rng::for_case(seed, 4, i as u64);
        // Words of mixed scripts, so that the name has many tokens to screen.
        let mut name = String::with_capacity(size);
        while name.len() < size {
            let w = match rng.below(3) {
                0 => unicode_text(&mut rng, 1, 8),
                1 => rng.pick(NAMES).to_owned(),
                _ => "Fictiv".to_owned(),
            };
            if name.len() + w.len() + 1 > size {
                break;
            }
            name.push_str(&w);
            name.push(' ');
        }
        while name.len() < size {
            name.push('x');
        }
        let body = envelope(&name).into_bytes();
        let status = decided_or_refused_alike(&router, seed, i as u64, body.clone()).await;
        if body.len() > MAX_BODY {
            assert_eq!(
                status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{} bytes",
                body.len()
            );
        } else {
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{} bytes: {status}",
                body.len()
            );
        }
    }
}

/// Just beyond the limits on names per party and parties per request: refused
/// with 400 `invalid_value` naming the field, before any screening.
#[tokio::test]
async fn name_fuzz_beyond_limits_refused() {
    let router = shipped_router();
    let seed = FuzzConfig::seed();
    for i in 0..40u64 {
        let mut rng = Rng::for_case(seed, 5, i);
        let over = rng.range(1, 5);
        let (aliases, owners, owner_aliases) = match i % 3 {
            0 => (MAX_NAMES - 1 + over, 0, 0),
            1 => (0, MAX_PARTIES - 1 + over, 0),
            _ => (0, rng.range(1, 3), MAX_NAMES - 1 + over),
        };
        let body = named_request(&mut rng, aliases, owners, owner_aliases).to_string();
        let case = Case {
            uri: "/v1/decide",
            body: body.into_bytes(),
            valid: false,
        };
        let (status, answer) = send(&router, &case).await;
        let e: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if status != StatusCode::BAD_REQUEST
            || e["error"]["code"] != "invalid_value"
            || !e["error"]["field"]
                .as_str()
                .is_some_and(|f| f.starts_with("customer"))
        {
            fail(
                seed,
                i,
                &case,
                &format!(
                    "{aliases} aliases, {owners} owners with {owner_aliases} aliases each: {status} {e}"
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Policy files

/// Policies over the built-in schema, to mutate.
const SNIPPETS: &[&str] = &[
    "@id(\"s1\")\nforbid(principal, action, resource)\nwhen { context.jurisdictions.containsAny([\"IR\", \"KP\"]) };\n",
    "@id(\"s2\")\n@condition(\"documentary_verification\")\nforbid(principal, action == Action::\"open_account\", resource)\nwhen { context.anonymous_ip && !context.satisfied_conditions.contains(\"x\") };\n",
    "@id(\"s3\")\n@obligation(\"enhanced_monitoring\")\npermit(principal, action, resource)\nwhen { context.ip_country_mismatch || context.screening_score > 80 };\n",
    "@id(\"s4\")\nforbid(principal, action in [Action::\"provision\", Action::\"open_account\"], resource)\nwhen { resource.gpu_count + 1 >= 256 && principal.owner_countries.contains(\"RU\") }\nunless { principal.kind == \"organization\" };\n",
    "@id(\"s5\")\nforbid(principal, action, resource)\nwhen { if principal.country == \"CN\" then context.ip_countries.isEmpty() else principal.reseller_country like \"A*\" };\n",
    "@id(\"s6\")\nforbid(principal == Customer::\"c\", action, resource is Resource)\nwhen { context.source_ips.contains(ip(\"198.51.100.1\")) || ip(\"10.0.0.1\").isInRange(ip(\"10.0.0.0/8\")) };\n",
    "@id(\"s7\")\n@measure(\"SM-7\")\n@message(\"résumé ✓ \\u{1F980} \\n tab\\t\")\nforbid(principal, action, resource)\nwhen { principal has payment_country && principal.payment_country == \"IR\" && decimal(\"1.5\").lessThan(decimal(\"2.0\")) };\n",
    "@id(\"s8\")\npermit(principal, action, resource)\nwhen { {a: 1, b: [1, 2, {c: \"d\"}]}.b.contains(1) && context.screening_matches.containsAll([\"SMP-1\"]) };\n",
    "// comment only\n/* not a cedar comment */\n",
    "@id(\"s9\") forbid(principal, action, resource) when { -9223372036854775808 < resource.gpu_count * 2 };",
];

/// Operators, keywords and literals inserted by mutations.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    ".",
    "::",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "+",
    "-",
    "*",
    "in",
    "has",
    "like",
    "is",
    "if",
    "then",
    "else",
    "when",
    "unless",
    "permit",
    "forbid",
    "principal",
    "action",
    "resource",
    "context",
    "true",
    "false",
    "@id",
    "@id(\"dup\")",
    "@condition(\"\")",
    "@obligation(\"o\")",
    "@measure(\"\u{202e}x\")",
    "@message(\"\\0\\u{10FFFF}\")",
    "@id(\"a\nb\")",
    "@",
    "\"",
    "\"\\u{D800}\"",
    "\"\\x\"",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999999999",
    "0x10",
    "1e5",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "Ñ",
    "名前",
    "🦀",
    "_",
    "Customer::\"\"",
    "Action::\"nope\"",
    "ip(\"::\")",
    "decimal(\"1.23456\")",
    "context.nope",
    "principal.name",
    "?principal",
    "template",
    "/*",
    "//",
    "\n",
    "*/",
];

const OPERATORS: &[&str] = &[
    "==", "!=", "<", "<=", ">", ">=", "&&", "||", "+", "-", "*", "in", "has", "like", "is",
];

/// Splits Cedar text into tokens: words, strings, and single punctuation marks
/// (whitespace kept, so that joining the tokens gives the text back).
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mut t = String::from(c);
        if c == '"' {
            while let Some(n) = chars.next() {
                t.push(n);
                if n == '\\' {
                    if let Some(e) = chars.next() {
                        t.push(e);
                    }
                } else if n == '"' {
                    break;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            while let Some(&n) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                t.push(n);
                chars.next();
            }
        } else if matches!(c, '=' | '!' | '<' | '>' | '&' | '|' | ':')
            && chars
                .peek()
                .is_some_and(|n| matches!(n, '=' | '&' | '|' | ':'))
        {
            t.push(chars.next().unwrap());
        }
        tokens.push(t);
    }
    tokens
}

fn cedar_token(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => format!("\"{}\"", "x".repeat(rng.range(1_000, 200_000))),
        1 => format!("\"{}\"", unicode_text(rng, 1, 20).replace(['"', '\\'], "")),
        2 => unicode_text(rng, 1, 4),
        _ => rng.pick(TOKENS).to_owned(),
    }
}

fn mutate_cedar(rng: &mut Rng, text: &str) -> String {
    let mut tokens = tokenize(text);
    for _ in 0..rng.range(1, 6) {
        let at = rng.below(tokens.len() + 1);
        match rng.below(7) {
            0 if at < tokens.len() => {
                tokens.remove(at);
            }
            1 if at < tokens.len() => {
                let t = tokens[at].clone();
                tokens.insert(at, t);
            }
            2 if at < tokens.len() && OPERATORS.contains(&tokens[at].as_str()) => {
                tokens[at] = rng.pick(OPERATORS).to_owned();
            }
            3 => {
                let bracket = rng.pick(&["(", ")", "[", "]", "{", "}", "\"", "/*"]);
                tokens.insert(at, bracket.to_owned());
            }
            4 => {
                // A short chain (long ones are in `policy_fuzz_deep_structures_*`).
                let op = rng.pick(&[" || ", " && ", " + "]);
                let term = if op == " + " { "1" } else { "true" };
                let chain = vec![term; rng.range(2, 40)].join(op);
                tokens.insert(at, format!("({chain})"));
            }
            5 if at < tokens.len() => {
                let j = rng.below(tokens.len());
                tokens.swap(at, j);
            }
            _ => tokens.insert(at, cedar_token(rng)),
        }
    }
    tokens.concat()
}

/// Designation lines to mutate: the shipped example and odd ones.
fn designation_lines() -> Vec<String> {
    let shipped =
        std::fs::read_to_string(shipped_policies().join("designations/example.jsonl")).unwrap();
    let mut lines: Vec<String> = shipped.lines().map(str::to_owned).collect();
    lines.push(
        json!({"id": "SMP-X", "kind": "organization", "names": ["Ñame 🦀", "\u{202e}x"], "cidrs": ["::/0", "0.0.0.0/0"], "measure": "SM-X"})
            .to_string(),
    );
    lines
}

fn mutate_designation_line(rng: &mut Rng, line: &str) -> String {
    let value: Value = serde_json::from_str(line).unwrap();
    match rng.below(4) {
        0 => String::from_utf8_lossy(&structured_mutation(rng, &value)).into_owned(),
        1 => {
            let mut bytes = line.as_bytes().to_vec();
            byte_mutation(rng, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        2 => {
            let mut v = value;
            let odd = match rng.below(8) {
                0 => json!(["198.51.100.0/33", "1.2.3.4/-1", "::/129", "nonsense"]),
                1 => json!([""]),
                2 => json!([unicode_text(rng, 1, 200)]),
                3 => json!(vec!["Boris Fictiv"; rng.range(100, 2_000)]),
                4 => json!("x".repeat(rng.range(1_000, 100_000))),
                5 => json!(["zz", "KP", "kp", "XX"]),
                6 => json!(u64::MAX),
                _ => json!({"nested": [1, {"a": null}]}),
            };
            let key = rng.pick(&[
                "id",
                "kind",
                "names",
                "date_of_birth",
                "nationalities",
                "identifiers",
                "emails",
                "domains",
                "cidrs",
                "measure",
            ]);
            v[key] = odd;
            v.to_string()
        }
        _ => line.to_owned(),
    }
}

/// Builds a snapshot from `files` as `check` does, on a thread with the
/// default stack (what the service's reload runs on); panics name the files.
fn build_policy_dir(files: &[(String, String)], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root = dir.path().to_owned();
    let handle = std::thread::Builder::new()
        .name("policy-fuzz".into())
        .spawn(move || {
            portcullis_core::snapshot::Snapshot::build(portcullis_core::snapshot::Sources::new(
                root,
                Vec::new(),
            ))
            .map(drop)
        })
        .unwrap();
    let show = || {
        let mut s = String::new();
        for (name, text) in files {
            let _ = writeln!(s, "--- {name}\n{}", shown(text.as_bytes()));
        }
        s
    };
    let result = handle
        .join()
        .unwrap_or_else(|_| panic!("{what}: building the snapshot panicked\n{}", show()));
    if let Err(e) = result {
        for d in &e.diagnostics {
            let in_dir = d.file.starts_with(dir.path()) && d.file != dir.path();
            let located_file = d
                .file
                .extension()
                .is_some_and(|x| x == "cedar" || x == "jsonl");
            if !in_dir || (located_file && d.line == 0) {
                panic!(
                    "{what}: a diagnostic without file or line: {d:?}\n{}",
                    show()
                );
            }
        }
        assert!(
            !e.diagnostics.is_empty(),
            "{what}: an error without diagnostics"
        );
    }
}

fn shipped_cedar() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(shipped_policies())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect()
}

/// Mutated Cedar (tokens deleted, inserted, duplicated and swapped, operators
/// swapped, brackets unbalanced, short chains, huge literals, odd Unicode,
/// annotations with odd values) and mutated designation lines: `check` returns
/// a snapshot or located diagnostics, never a panic.
#[test]
fn policy_fuzz_mutated_files_report_never_crash() {
    let (seed, cases) = (FuzzConfig::seed(), FuzzConfig::policy_cases());
    let shipped = shipped_cedar();
    let lines = designation_lines();
    for i in 0..cases {
        let mut rng = Rng::for_case(seed, 6, i);
        let mut files = shipped.clone();
        let k = rng.below(files.len() + 1);
        if k < files.len() && rng.chance(60) {
            files[k].1 = mutate_cedar(&mut rng, &files[k].1);
        } else {
            let snippet = rng.pick(SNIPPETS);
            let text = if rng.chance(85) {
                mutate_cedar(&mut rng, snippet)
            } else {
                snippet.to_owned()
            };
            files.push(("snippet.cedar".into(), text));
        }
        if rng.chance(40) {
            let mut text = String::new();
            for _ in 0..rng.range(1, 4) {
                let line = &lines[rng.below(lines.len())];
                text.push_str(&mutate_designation_line(&mut rng, line));
                text.push('\n');
            }
            files.push(("designations/fuzz.jsonl".into(), text));
        }
        build_policy_dir(
            &files,
            &format!("policy fuzz case {i} (PORTCULLIS_FUZZ_SEED={seed})"),
        );
    }
}

/// Nesting `depth` levels of one structure around `core`.
fn nested(kind: usize, depth: usize) -> String {
    let (open, close, core) = match kind {
        0 => ("(", ")", "true"),
        1 => ("[", "]", "1"),
        2 => ("{a: ", "}", "1"),
        3 => ("if true then ", " else false", "true"),
        4 => ("!", "", "true"),
        _ => ("-", "", "1"),
    };
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(core);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

fn deep_policy(condition: &str) -> String {
    format!("@id(\"deep\")\nforbid(principal, action, resource)\nwhen {{ {condition} }};\n")
}

/// Deep nesting of parentheses, sets, records, `if-then-else`, negations:
/// `check` reports (or accepts) on a thread with the default stack. Before
/// policy size and nesting were limited, these overflowed the stack and
/// aborted the process.
#[test]
fn policy_fuzz_deep_structures_nesting() {
    let seed = FuzzConfig::seed();
    let mut rng = Rng::for_case(seed, 7, 0);
    for kind in 0..6 {
        for depth in [10, 50, 150, 500, 2_000, 10_000] {
            let depth = depth + rng.below(5);
            let inner = nested(kind, depth);
            // Sets and records are not Booleans: wrap them in a comparison.
            let condition = match kind {
                1 | 2 | 5 => format!("{inner} == {inner}"),
                _ => inner,
            };
            let files = vec![
                ("base.cedar".to_owned(), crate::support::BASELINE.to_owned()),
                ("deep.cedar".to_owned(), deep_policy(&condition)),
            ];
            build_policy_dir(&files, &format!("nesting kind {kind}, depth {depth}"));
        }
    }
}

/// Long `||`, `&&` and `+` chains of 100–3,000 terms: `check` reports (or
/// accepts) on a thread with the default stack. Before policy size and nesting
/// were limited, 2,000-term chains overflowed the stack.
#[test]
fn policy_fuzz_deep_structures_chains() {
    let seed = FuzzConfig::seed();
    let mut rng = Rng::for_case(seed, 8, 0);
    for (op, term) in [
        (" || ", "context.anonymous_ip"),
        (" && ", "true"),
        (" + ", "1"),
    ] {
        for terms in [100, 500, 1_000, 2_000, 3_000] {
            let terms = terms + rng.below(10);
            let chain = vec![term; terms].join(op);
            let condition = if op == " + " {
                format!("resource.gpu_count < {chain}")
            } else {
                chain
            };
            let files = vec![
                ("base.cedar".to_owned(), crate::support::BASELINE.to_owned()),
                ("chain.cedar".to_owned(), deep_policy(&condition)),
            ];
            build_policy_dir(&files, &format!("`{}` chain of {terms}", op.trim()));
        }
    }
}

/// The `check` command itself on a few mutated directories: exit 0 or the
/// invalid-input exit code with `file:line` diagnostics, never a crash.
#[test]
fn policy_fuzz_check_command_reports() {
    let seed = FuzzConfig::seed();
    let shipped = shipped_cedar();
    for i in 0..4u64 {
        let mut rng = Rng::for_case(seed, 9, i);
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in &shipped {
            std::fs::write(dir.path().join(name), mutate_cedar(&mut rng, text)).unwrap();
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("check")
            .arg(dir.path())
            .args(["--geo", default_geo().to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code == Some(0) || (code == Some(INVALID_EXIT) && stderr.contains(".cedar:")),
            "check case {i}: exit {:?}\n{stderr}",
            out.status
        );
        assert!(
            !stderr.contains("panicked"),
            "check case {i} panicked:\n{stderr}"
        );
    }
}

#[test]
fn tokenizer_gives_the_text_back() {
    for text in SNIPPETS {
        assert_eq!(tokenize(text).concat(), *text);
    }
    let seen: HashSet<String> = tokenize(SNIPPETS[0]).into_iter().collect();
    assert!(
        seen.contains("forbid") && seen.contains("\"IR\""),
        "{seen:?}"
    );
}
