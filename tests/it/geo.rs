//! Geo databases against MaxMind's official test data: every network in each
//! source JSON answers exactly what the JSON says (country, anonymizer flags,
//! ASN), layouts are detected from content rather than file names, and corrupt,
//! truncated or missing files are refused when opened.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnetwork::IpNetwork;
use portcullis_core::geo::{Anonymizer, GeoDb, GeoError, GeoSet, IpFacts, Layout};
use portcullis_core::request::canonical_ip;
use serde_json::Value;

use crate::support::{default_geo, maxmind};

const COUNTRY_DBS: [&str; 4] = [
    "GeoIP2-Country-Test",
    "GeoIP2-City-Test",
    "GeoLite2-Country-Test",
    "GeoLite2-City-Test",
];

const COUNTRY_ONLY: Layout = Layout {
    country: true,
    anonymizer: false,
    asn: false,
};
const ANONYMIZER_ONLY: Layout = Layout {
    country: false,
    anonymizer: true,
    asn: false,
};
const ASN_ONLY: Layout = Layout {
    country: false,
    anonymizer: false,
    asn: true,
};

fn test_db(name: &str) -> PathBuf {
    maxmind(&format!("test-data/{name}.mmdb"))
}

fn open(path: &Path) -> GeoDb {
    GeoDb::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn set(names: &[&str]) -> GeoSet {
    let paths: Vec<PathBuf> = names.iter().map(|n| test_db(n)).collect();
    GeoSet::open(&paths).unwrap_or_else(|e| panic!("{names:?}: {e}"))
}

fn lookup(geo: &GeoSet, ip: &str) -> IpFacts {
    let ip: IpAddr = ip.parse().unwrap();
    geo.lookup(canonical_ip(ip))
        .unwrap_or_else(|e| panic!("lookup {ip}: {e}"))
}

fn country(geo: &GeoSet, ip: &str) -> Option<String> {
    lookup(geo, ip).country.map(|c| c.to_string())
}

/// One `{"<network>": record}` entry of a source JSON.
struct Entry {
    key: String,
    net: IpNetwork,
    record: Value,
}

/// The source JSON a test database was built from, in file order.
fn source(name: &str) -> Vec<Entry> {
    let path = maxmind(&format!("source-data/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let list: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).unwrap();
    let entries: Vec<Entry> = list
        .into_iter()
        .map(|object| {
            assert_eq!(
                object.len(),
                1,
                "{name}: not a single-key object: {object:?}"
            );
            let (key, record) = object.into_iter().next().unwrap();
            let net = IpNetwork::from_str(&key).unwrap_or_else(|e| panic!("{name}: `{key}`: {e}"));
            Entry { key, net, record }
        })
        .collect();
    assert!(entries.len() > 5, "{name}: only {} networks", entries.len());
    entries
}

/// An address as a 128-bit IPv6 value, IPv4 placed in `::/96` as the IPv6
/// test databases store it.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The entry that answers for `ip`: the last network in file order that
/// holds it. MaxMind's writer inserts the entries in order and a later insert
/// replaces whatever it covers, even more specific networks inserted earlier
/// (IP-Risk lists `2001:480:1::/64` before `2001:480::/32`, and the /32 wins).
fn expected_entry(entries: &[Entry], ip: IpAddr) -> Option<&Entry> {
    let ip = bits(ip);
    entries.iter().rev().find(|e| {
        let prefix = match e.net {
            IpNetwork::V4(n) => u32::from(n.prefix()) + 96,
            IpNetwork::V6(n) => u32::from(n.prefix()),
        };
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits(e.net.network()) & mask == ip & mask
    })
}

/// The addresses probed for a network: its first address and, for IPv4 space
/// (plain or written `::a.b.c.d/n`), the plain IPv4 address and the
/// IPv4-mapped IPv6 form after `canonical_ip`.
fn probes(net: IpNetwork) -> Vec<IpAddr> {
    let first = net.network();
    let v4 = match (net, first) {
        (IpNetwork::V4(_), IpAddr::V4(v4)) => Some(v4),
        (IpNetwork::V6(n), IpAddr::V6(v6)) if n.prefix() >= 96 && u128::from(v6) >> 32 == 0 => {
            Some(Ipv4Addr::from(u32::try_from(u128::from(v6)).unwrap()))
        }
        _ => None,
    };
    let mut out = vec![first];
    if let Some(v4) = v4 {
        let mapped = canonical_ip(IpAddr::V6(v4.to_ipv6_mapped()));
        assert_eq!(mapped, IpAddr::V4(v4), "canonical_ip(::ffff:{v4})");
        out.push(IpAddr::V4(v4));
        out.push(mapped);
    }
    out
}

fn iso(record: &Value, field: &str) -> Option<String> {
    record[field]["iso_code"].as_str().map(str::to_owned)
}

fn flag(record: &Value, field: &str) -> bool {
    match &record[field] {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => panic!("`{field}` is not a boolean: {other}"),
    }
}

fn expected_flags(record: &Value) -> Anonymizer {
    Anonymizer {
        anonymous: flag(record, "is_anonymous"),
        vpn: flag(record, "is_anonymous_vpn"),
        public_proxy: flag(record, "is_public_proxy"),
        tor_exit: flag(record, "is_tor_exit_node"),
        hosting: flag(record, "is_hosting_provider"),
        residential_proxy: flag(record, "is_residential_proxy"),
    }
}

/// Looks every probe of every network of `name` up in its database alone and
/// compares the answer with `expect(record)`; returns the number of probes.
fn check_every_network<T: PartialEq + std::fmt::Debug>(
    name: &str,
    expect: impl Fn(&Value) -> T,
    actual: impl Fn(&IpFacts) -> T,
) -> usize {
    let entries = source(name);
    let geo = set(&[name]);
    let mut mismatches = Vec::new();
    let mut probed = 0;
    for entry in &entries {
        for ip in probes(entry.net) {
            probed += 1;
            let Some(answering) = expected_entry(&entries, ip) else {
                mismatches.push(format!(
                    "`{}` probe {ip}: not inside any network",
                    entry.key
                ));
                continue;
            };
            let want = expect(&answering.record);
            match geo.lookup(ip) {
                Ok(facts) if actual(&facts) == want => {}
                Ok(facts) => mismatches.push(format!(
                    "`{}` probe {ip}: expected {want:?}, got {:?}",
                    entry.key,
                    actual(&facts)
                )),
                Err(e) => {
                    mismatches.push(format!("`{}` probe {ip}: lookup failed: {e}", entry.key))
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{name}: {} of {probed} probes disagree with the source JSON:\n  {}",
        mismatches.len(),
        mismatches.join("\n  ")
    );
    probed
}

fn check_countries(name: &str) {
    let expect = |r: &Value| iso(r, "country").or_else(|| iso(r, "registered_country"));
    let probed = check_every_network(name, expect, |f| f.country.map(|c| c.to_string()));
    assert!(probed >= 240, "{name}: only {probed} probes");
}

// 1. Every network of the country and city databases.

#[test]
fn geoip2_country_every_network() {
    check_countries("GeoIP2-Country-Test");
}

#[test]
fn geoip2_city_every_network() {
    check_countries("GeoIP2-City-Test");
}

#[test]
fn geolite2_country_every_network() {
    check_countries("GeoLite2-Country-Test");
}

#[test]
fn geolite2_city_every_network() {
    check_countries("GeoLite2-City-Test");
}

#[test]
fn country_db_answers_nothing_else_and_nothing_outside() {
    for name in COUNTRY_DBS {
        let geo = set(&[name]);
        let facts = lookup(&geo, "81.2.69.160");
        assert_eq!(
            facts.country.map(|c| c.to_string()).as_deref(),
            Some("GB"),
            "{name}"
        );
        assert!(!facts.anonymizer.any(), "{name}: {facts:?}");
        assert_eq!(facts.asn, None, "{name}");
        // Documentation space is in none of the test databases.
        for ip in ["192.0.2.1", "2001:db8::1"] {
            assert_eq!(lookup(&geo, ip), IpFacts::default(), "{name}: {ip}");
        }
    }
}

// 2. Known points.

#[test]
fn geoip2_country_known_points() {
    let geo = set(&["GeoIP2-Country-Test"]);
    for (ip, want) in [
        ("81.2.69.160", "GB"),
        ("216.160.83.56", "US"),
        ("89.160.20.112", "SE"),
        ("175.16.199.1", "CN"),
        ("67.43.156.1", "BT"),
        ("2a02:d2c0::1", "IR"),
        ("2a02:d0c0::1", "RU"),
        ("2a02:d240::1", "BY"),
        ("2001:218::1", "JP"),
        ("::ffff:81.2.69.160", "GB"),
    ] {
        assert_eq!(country(&geo, ip).as_deref(), Some(want), "{ip}");
    }
}

#[test]
fn country_is_country_not_registered_country() {
    // 67.43.156.0/24: country BT, registered in RO; 2.125.160.216/29: GB, registered in FR.
    let geo = set(&["GeoLite2-Country-Test"]);
    assert_eq!(country(&geo, "67.43.156.1").as_deref(), Some("BT"));
    assert_eq!(country(&geo, "2.125.160.217").as_deref(), Some("GB"));
}

// 3. Anonymous-IP.

#[test]
fn anonymous_ip_known_points() {
    let geo = set(&["GeoIP2-Anonymous-IP-Test"]);

    let a = lookup(&geo, "81.2.69.1").anonymizer;
    assert!(a.vpn && a.tor_exit && a.hosting && a.public_proxy, "{a:?}");
    assert!(a.anonymous && a.residential_proxy, "{a:?}");

    let a = lookup(&geo, "1.2.0.1").anonymizer;
    assert!(
        a.vpn && !a.tor_exit && !a.hosting && !a.public_proxy,
        "{a:?}"
    );

    let a = lookup(&geo, "71.160.223.1").anonymizer;
    assert!(
        a.hosting && !a.vpn && !a.tor_exit && !a.public_proxy,
        "{a:?}"
    );

    let a = lookup(&geo, "65.0.0.1").anonymizer;
    assert!(
        a.tor_exit && !a.vpn && !a.hosting && !a.public_proxy,
        "{a:?}"
    );

    let a = lookup(&geo, "::ffff:81.2.69.1").anonymizer;
    assert!(a.vpn && a.tor_exit, "mapped form: {a:?}");

    for ip in ["8.8.8.8", "81.2.70.1", "2001:db8::1"] {
        let facts = lookup(&geo, ip);
        assert!(!facts.anonymizer.any(), "{ip}: {facts:?}");
        assert_eq!(facts, IpFacts::default(), "{ip}");
    }
}

#[test]
fn anonymous_ip_every_network() {
    let probed = check_every_network("GeoIP2-Anonymous-IP-Test", expected_flags, |f| f.anonymizer);
    assert!(probed >= 12);
    // Every network in the JSON is flagged, so the check above compared flags,
    // not just a string of `false`s.
    for entry in source("GeoIP2-Anonymous-IP-Test") {
        assert!(expected_flags(&entry.record).any(), "`{}`", entry.key);
    }
}

#[test]
fn ip_risk_every_network() {
    check_every_network("GeoIP2-IP-Risk-Test", expected_flags, |f| f.anonymizer);
    // The /64s listed before the /32 that covers them were overwritten by it.
    let geo = set(&["GeoIP2-IP-Risk-Test"]);
    let a = lookup(&geo, "2001:480:1::1").anonymizer;
    assert!(a.hosting && !a.vpn, "{a:?}");
}

// 4. ASN.

#[test]
fn asn_every_network() {
    let path = test_db("GeoLite2-ASN-Test");
    assert_eq!(open(&path).layout(), ASN_ONLY);

    let geo = set(&["GeoLite2-ASN-Test"]);
    let facts = lookup(&geo, "1.0.0.1");
    assert_eq!(facts.asn, Some(15169));
    assert_eq!(facts.country, None);
    assert!(!facts.anonymizer.any());

    let expect = |r: &Value| {
        r["autonomous_system_number"]
            .as_u64()
            .map(|n| u32::try_from(n).unwrap())
    };
    let probed = check_every_network("GeoLite2-ASN-Test", expect, |f| f.asn);
    assert!(probed >= 720, "only {probed} probes");
}

// 5. Layout detection.

#[test]
fn layouts_are_detected() {
    for name in COUNTRY_DBS {
        let db = open(&test_db(name));
        assert_eq!(db.layout(), COUNTRY_ONLY, "{name} ({})", db.database_type());
        assert_eq!(db.layout().to_string(), "country");
    }
    for (name, want) in [
        ("GeoIP2-Anonymous-IP-Test", ANONYMIZER_ONLY),
        ("GeoIP2-IP-Risk-Test", ANONYMIZER_ONLY),
        ("GeoLite2-ASN-Test", ASN_ONLY),
    ] {
        let db = open(&test_db(name));
        assert_eq!(db.layout(), want, "{name} ({})", db.database_type());
    }
    let db = open(&default_geo());
    assert_eq!(
        db.layout(),
        COUNTRY_ONLY,
        "default db ({})",
        db.database_type()
    );
}

#[test]
fn combined_set_gives_country_and_flags() {
    // 81.2.69.160 is in GeoIP2-Country-Test (GB) and in ::81.2.69.0/120 of
    // GeoIP2-Anonymous-IP-Test (every flag set).
    let ip: IpAddr = "81.2.69.160".parse().unwrap();
    let country_entries = source("GeoIP2-Country-Test");
    let anon_entries = source("GeoIP2-Anonymous-IP-Test");
    let country_record = &expected_entry(&country_entries, ip).unwrap().record;
    let anon_record = &expected_entry(&anon_entries, ip).unwrap().record;
    assert_eq!(iso(country_record, "country").as_deref(), Some("GB"));
    let all = Anonymizer {
        anonymous: true,
        vpn: true,
        public_proxy: true,
        tor_exit: true,
        hosting: true,
        residential_proxy: true,
    };
    assert_eq!(expected_flags(anon_record), all);

    let orders = [
        ["GeoIP2-Country-Test", "GeoIP2-Anonymous-IP-Test"],
        ["GeoIP2-Anonymous-IP-Test", "GeoIP2-Country-Test"],
    ];
    for names in orders {
        let geo = set(&names);
        for ip in ["81.2.69.160", "::ffff:81.2.69.160"] {
            let facts = lookup(&geo, ip);
            assert_eq!(
                facts.country.map(|c| c.to_string()).as_deref(),
                Some("GB"),
                "{names:?} {ip}"
            );
            assert_eq!(facts.anonymizer, all, "{names:?} {ip}");
            assert_eq!(facts.asn, None);
        }
        // Only in the country db / only in the anonymizer db.
        let facts = lookup(&geo, "216.160.83.56");
        assert_eq!(facts.country.map(|c| c.to_string()).as_deref(), Some("US"));
        assert!(!facts.anonymizer.any(), "{names:?}: {facts:?}");
        let facts = lookup(&geo, "1.2.0.1");
        assert_eq!(facts.country, None, "{names:?}");
        assert!(
            facts.anonymizer.vpn && !facts.anonymizer.tor_exit,
            "{names:?}"
        );
    }

    let geo = set(&[
        "GeoIP2-Country-Test",
        "GeoIP2-Anonymous-IP-Test",
        "GeoLite2-ASN-Test",
    ]);
    let facts = lookup(&geo, "1.0.0.1");
    assert_eq!(facts.asn, Some(15169));
}

// 6. Layout does not come from the file name.

#[test]
fn layout_ignores_file_name() {
    let dir = tempfile::tempdir().unwrap();

    let disguised = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::copy(test_db("GeoIP2-Anonymous-IP-Test"), &disguised).unwrap();
    let db = open(&disguised);
    assert_eq!(db.layout(), ANONYMIZER_ONLY);
    assert!(!db.layout().country);

    let disguised = dir.path().join("GeoIP2-Anonymous-IP-ASN.mmdb");
    std::fs::copy(test_db("GeoIP2-Country-Test"), &disguised).unwrap();
    assert_eq!(open(&disguised).layout(), COUNTRY_ONLY);

    let plain = dir.path().join("data.bin");
    std::fs::copy(test_db("GeoLite2-ASN-Test"), &plain).unwrap();
    assert_eq!(open(&plain).layout(), ASN_ONLY);
}

// 7. The default flat (`country_code`) database.

#[test]
fn default_db_flat_country_code() {
    let geo = GeoSet::open(&[default_geo()]).unwrap();
    assert_eq!(country(&geo, "8.8.8.8").as_deref(), Some("US"));
    assert!(country(&geo, "1.1.1.1").is_some());
    assert_eq!(lookup(&geo, "::ffff:8.8.8.8"), lookup(&geo, "8.8.8.8"));
    assert_eq!(lookup(&geo, "::ffff:1.1.1.1"), lookup(&geo, "1.1.1.1"));
    let facts = lookup(&geo, "8.8.8.8");
    assert!(!facts.anonymizer.any());
    assert_eq!(facts.asn, None);
    // Private space has no country.
    assert_eq!(country(&geo, "10.1.2.3"), None);
}

// 8. Corrupt and missing files.

fn assert_refused(path: &Path) -> String {
    let err = match catch_unwind(AssertUnwindSafe(|| GeoDb::open(path))) {
        Err(_) => panic!("{}: GeoDb::open panicked", path.display()),
        Ok(Ok(db)) => panic!("{}: accepted as {:?}", path.display(), db.layout()),
        Ok(Err(e)) => e.to_string(),
    };
    assert!(
        err.contains(&path.display().to_string()),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn bad_data_is_refused() {
    let dir = maxmind("bad-data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 21, "bad-data files: {files:?}");

    let mut accepted = Vec::new();
    let mut panicked = Vec::new();
    let mut unnamed = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match catch_unwind(AssertUnwindSafe(|| GeoDb::open(path))) {
            Err(_) => panicked.push(name),
            Ok(Ok(db)) => accepted.push(format!("{name} ({:?})", db.layout())),
            Ok(Err(e)) => {
                let msg = e.to_string();
                if !msg.contains(&path.display().to_string()) {
                    unnamed.push(format!("{name}: {msg}"));
                }
            }
        }
    }
    assert!(panicked.is_empty(), "GeoDb::open panicked on {panicked:?}");
    assert!(
        accepted.is_empty(),
        "corrupt databases accepted: {accepted:?}"
    );
    assert!(
        unnamed.is_empty(),
        "errors not naming the file: {unnamed:?}"
    );

    // A set with one corrupt file among good ones is refused as a whole.
    let paths = [test_db("GeoIP2-Country-Test"), files[0].clone()];
    assert!(GeoSet::open(&paths).is_err());
}

#[test]
fn truncated_empty_and_text_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(test_db("GeoIP2-Country-Test")).unwrap();

    let half = dir.path().join("half.mmdb");
    std::fs::write(&half, &good[..good.len() / 2]).unwrap();
    assert_refused(&half);

    let empty = dir.path().join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    assert_refused(&empty);

    let text = dir.path().join("text.mmdb");
    std::fs::write(&text, "country_code,network\nUS,8.8.8.0/24\n".repeat(100)).unwrap();
    assert_refused(&text);

    // Metadata intact, search tree and data section overwritten: only the
    // full walk done at open can notice.
    let marker = b"\xab\xcd\xefMaxMind.com";
    let meta = good
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    let mut scrambled = good.clone();
    scrambled[..meta].fill(0xff);
    let scrambled_path = dir.path().join("scrambled.mmdb");
    std::fs::write(&scrambled_path, scrambled).unwrap();
    assert_refused(&scrambled_path);
}

#[test]
fn corrupt_record_beyond_the_layout_sample_is_refused() {
    // `MWEB-10474` is the organisation of 2c0f:ff40::/26 only, a network far
    // past the first records (all of IPv4 comes first), so just the full
    // walk at open reaches it. Its string marker is replaced by an extended
    // type that does not exist.
    let mut bytes = std::fs::read(test_db("GeoLite2-ASN-Test")).unwrap();
    let needle = b"MWEB-10474";
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter_map(|(i, w)| (w == needle).then_some(i))
        .collect();
    let [at] = hits[..] else {
        panic!("expected `MWEB-10474` once, found at {hits:?}");
    };
    assert_eq!(bytes[at - 1], 0x40 | 10, "utf8 string of length 10");
    bytes[at - 1] = 0x00;
    bytes[at] = 0xff;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoLite2-ASN.mmdb");
    std::fs::write(&path, bytes).unwrap();
    let err = assert_refused(&path);
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-database.mmdb");
    let err = GeoDb::open(&missing).unwrap_err();
    assert!(matches!(err, GeoError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert_refused(&missing);

    let err = GeoSet::open(&[test_db("GeoIP2-Country-Test"), missing.clone()]).unwrap_err();
    assert!(err.to_string().contains("no-such-database.mmdb"), "{err}");
}

#[test]
fn probes_cover_ipv4_forms() {
    // `::a.b.c.d/n` is probed as written, as plain IPv4 and as canonicalised
    // `::ffff:a.b.c.d`; a genuine IPv6 network only at its first address.
    let net = IpNetwork::from_str("::81.2.69.0/120").unwrap();
    let v4 = IpAddr::V4(Ipv4Addr::new(81, 2, 69, 0));
    let written: IpAddr = "::81.2.69.0".parse().unwrap();
    assert_eq!(probes(net), [written, v4, v4]);
    let net = IpNetwork::from_str("2001:218::/32").unwrap();
    let first = IpAddr::V6(Ipv6Addr::new(0x2001, 0x218, 0, 0, 0, 0, 0, 0));
    assert_eq!(probes(net), [first]);
}

/// 6to4, NAT64 and Teredo forms of a KP address are geolocated through the
/// IPv4 address they carry, and the shipped KP measure denies them as it
/// denies the IPv4 address itself.
#[tokio::test]
async fn ipv4_inside_ipv6_transition_forms_is_geolocated_and_denied() {
    use serde_json::json;
    let router = crate::support::shared_router();
    for ip in [
        "175.45.176.1",
        "2002:af2d:b001::1",
        "64:ff9b::175.45.176.1",
        "2001:0:4136:e378:8000:63bf:50d2:4ffe",
    ] {
        let body = json!({"action": "open_account", "customer": {"id": "c", "name": "N", "nationalities": ["US"]},
            "source_ips": [ip]});
        let (status, d) = crate::support::decide(&router, &body).await;
        assert_eq!(status, 200, "{ip}: {d}");
        let countries = d["facts"]["ip_countries"].as_array().unwrap();
        assert!(countries.contains(&json!("KP")), "{ip}: {d}");
        assert_eq!(d["decision"], "deny", "{ip}: {d}");
        assert!(
            d["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["policy"].as_str().is_some_and(|p| p.contains("kp"))),
            "{ip}: {d}"
        );
    }
    // A transition address whose embedded IPv4 address is not public is not
    // looked up through it.
    let body = json!({"action": "open_account", "customer": {"id": "c", "name": "N"},
        "source_ips": ["2002:c0a8:0101::1", "64:ff9b::10.0.0.1"]});
    let (status, d) = crate::support::decide(&router, &body).await;
    assert_eq!(status, 200, "{d}");
    let ips = d["facts"]["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 2, "{d}");
    assert!(ips.iter().all(|f| f.get("embedded_in").is_none()), "{d}");

    let body = json!({"action": "open_account", "customer": {"id": "c", "name": "N"},
        "source_ips": ["2002:af2d:b001::1"]});
    let (_, d) = crate::support::decide(&router, &body).await;
    assert!(
        d["facts"]["ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["ip"] == "175.45.176.1" && f["embedded_in"] == "2002:af2d:b001::1"),
        "{d}"
    );
}

#[test]
fn an_embedded_ipv4_designation_cidr_is_screened() {
    let dir = crate::support::policy_dir(&[
        ("base.cedar", crate::support::BASELINE),
        (
            "designations/list.jsonl",
            "{\"id\":\"SMP-NET\",\"names\":[\"Some Net\"],\"cidrs\":[\"175.45.176.0/24\"]}\n",
        ),
    ]);
    let snap = crate::support::snapshot(dir.path(), &[]);
    for ip in ["2002:af2d:b001::1", "64:ff9b::175.45.176.1"] {
        let req = portcullis_core::request::parse_decide(
            format!(r#"{{"action":"open_account","customer":{{"id":"c","name":"N"}},"source_ips":["{ip}"]}}"#)
                .as_bytes(),
        )
        .unwrap();
        let d = portcullis_core::engine::decide(&snap, &req);
        assert_eq!(d.facts.screening_matches, ["SMP-NET"], "{ip}");
    }
}
