//! IP geolocation from MaxMind-format (MMDB) databases.
//!
//! Any number of databases may be loaded. Each one's layout is detected from its
//! metadata and from a sample of its records (never from the file name):
//! GeoIP2/GeoLite2 Country and City (`country.iso_code`, falling back to
//! `registered_country.iso_code`), the flat `country_code` layout, Anonymous-IP
//! (and IP-Risk) anonymizer flags, and ASN. A database is fully verified when it
//! is opened, so a corrupt file is refused before it can serve.
//!
//! Databases are read into memory, never memory-mapped: a file written in place
//! while it is served cannot change (or fault) the database in use; the change
//! is an ordinary reload, validated like any other.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{MaxMindDbError, Reader, WithinOptions};
use serde::{Deserialize, Serialize};

use crate::country::Country;

/// Why a geo database could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    // The cause is part of each message and deliberately not a `source`, so
    // that a chained report (`{:#}`) does not print it twice.
    /// The file could not be read.
    #[error("cannot read geo database `{path}`: {cause}")]
    Read {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The content could not be opened as a MaxMind DB.
    #[error("cannot open geo database `{path}`: {cause}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the reader found wrong.
        cause: MaxMindDbError,
    },
    /// Its format version is unsupported, or its search tree or a record does not decode.
    #[error("geo database `{path}` is corrupt: {cause}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the verification found wrong.
        cause: MaxMindDbError,
    },
    /// Neither its metadata nor its records show a country, anonymizer or ASN layout.
    #[error(
        "geo database `{path}` (type `{database_type}`) has no recognised layout: \
         expected country, anonymous-IP or ASN records"
    )]
    UnknownLayout {
        /// The database file.
        path: PathBuf,
        /// The `database_type` its metadata names.
        database_type: String,
    },
}

/// What a database can tell about an address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Country codes (GeoIP2/GeoLite2 Country and City, or flat `country_code`).
    pub country: bool,
    /// Anonymizer flags (Anonymous-IP, IP-Risk).
    pub anonymizer: bool,
    /// Autonomous system numbers.
    pub asn: bool,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.country, "country"),
            (self.anonymizer, "anonymous-ip"),
            (self.asn, "asn"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&parts.join("+"))
    }
}

/// The union of every field Portcullis reads from any supported layout.
/// Unknown fields are skipped by the decoder without being expanded.
#[derive(Debug, Default, Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
    #[serde(default)]
    is_residential_proxy: Option<bool>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl Record<'_> {
    fn layout(&self) -> Layout {
        Layout {
            country: self.country.is_some()
                || self.registered_country.is_some()
                || self.country_code.is_some(),
            anonymizer: self.is_anonymous.is_some()
                || self.is_anonymous_vpn.is_some()
                || self.is_public_proxy.is_some()
                || self.is_tor_exit_node.is_some()
                || self.is_hosting_provider.is_some()
                || self.is_residential_proxy.is_some(),
            asn: self.autonomous_system_number.is_some(),
        }
    }

    fn country(&self) -> Option<Country> {
        fn nested<'a>(c: &Option<IsoCode<'a>>) -> Option<&'a str> {
            c.as_ref().and_then(|c| c.iso_code)
        }
        nested(&self.country)
            .or(self.country_code)
            .or_else(|| nested(&self.registered_country))
            .and_then(Country::from_geo)
    }
}

/// Anonymizer flags of one address, as the Anonymous-IP layout reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Anonymizer {
    /// `anonymous`: flagged anonymous (`is_anonymous`).
    pub anonymous: bool,
    /// `vpn`: an anonymizing VPN (`is_anonymous_vpn`).
    pub vpn: bool,
    /// `public_proxy`: a public proxy (`is_public_proxy`).
    pub public_proxy: bool,
    /// `tor_exit`: a Tor exit node (`is_tor_exit_node`).
    pub tor_exit: bool,
    /// `hosting`: a hosting provider (`is_hosting_provider`).
    pub hosting: bool,
    /// `residential_proxy`: a residential proxy (`is_residential_proxy`).
    pub residential_proxy: bool,
}

impl Anonymizer {
    /// VPN, Tor exit, public proxy, hosting provider, residential proxy or flagged anonymous.
    pub fn any(&self) -> bool {
        self.anonymous
            || self.vpn
            || self.public_proxy
            || self.tor_exit
            || self.hosting
            || self.residential_proxy
    }

    fn merge(&mut self, r: &Record<'_>) {
        let f = |v: Option<bool>| v.unwrap_or(false);
        self.anonymous |= f(r.is_anonymous);
        self.vpn |= f(r.is_anonymous_vpn);
        self.public_proxy |= f(r.is_public_proxy);
        self.tor_exit |= f(r.is_tor_exit_node);
        self.hosting |= f(r.is_hosting_provider);
        self.residential_proxy |= f(r.is_residential_proxy);
    }
}

/// Everything the loaded databases say about one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpFacts {
    /// The first country a database gives; `None` when none does.
    pub country: Option<Country>,
    /// Anonymizer flags combined from every database.
    pub anonymizer: Anonymizer,
    /// The first autonomous system number a database gives.
    pub asn: Option<u32>,
}

/// One opened, verified database.
pub struct GeoDb {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
    layout: Layout,
    /// Content hash of the file when it was opened, if the caller computed one.
    pub(crate) content_hash: Option<blake3::Hash>,
    /// The file's identity when it was opened, if the caller took it.
    pub(crate) identity: Option<FileIdentity>,
}

/// Device, inode, size and modification time: a file replaced by rename or
/// written in place gets a different identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileIdentity {
    /// The identity of the file at `path` now (links followed).
    pub(crate) fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Ok(Self {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("database_type", &self.database_type())
            .field("layout", &self.layout)
            .finish()
    }
}

/// How many records are sampled to detect a layout the metadata does not name.
const LAYOUT_SAMPLE: usize = 256;

impl GeoDb {
    /// Reads a database file into memory, then verifies it and detects its layout.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = std::fs::read(path).map_err(|cause| GeoError::Read {
            path: path.to_owned(),
            cause,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Verifies and classifies the content of a database file read by the
    /// caller; `path` names it in errors and in `/v1/status`.
    pub(crate) fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, GeoError> {
        let reader = Reader::from_source(bytes).map_err(|cause| GeoError::Open {
            path: path.to_owned(),
            cause,
        })?;
        verify(&reader).map_err(|cause| GeoError::Corrupt {
            path: path.to_owned(),
            cause,
        })?;
        let layout = detect_layout(&reader).map_err(|cause| GeoError::Corrupt {
            path: path.to_owned(),
            cause,
        })?;
        if layout == Layout::default() {
            return Err(GeoError::UnknownLayout {
                path: path.to_owned(),
                database_type: reader.metadata().database_type.clone(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            reader,
            layout,
            content_hash: None,
            identity: None,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `database_type` its metadata names (`GeoLite2-Country`, …).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When it was built, in seconds since the Unix epoch (from its metadata).
    pub(crate) fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// What it can tell about an address, as detected when it was opened.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Looks one address up and merges what this database knows into `facts`.
    pub(crate) fn lookup_into(
        &self,
        ip: IpAddr,
        facts: &mut IpFacts,
    ) -> Result<(), MaxMindDbError> {
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(());
        }
        let found = self.reader.lookup(ip)?;
        let Some(record) = found.decode::<Record<'_>>()? else {
            return Ok(());
        };
        if facts.country.is_none() {
            facts.country = record.country();
        }
        facts.anonymizer.merge(&record);
        if facts.asn.is_none() {
            facts.asn = record.autonomous_system_number;
        }
        Ok(())
    }
}

/// Walks the whole search tree and decodes every distinct record, so that a
/// corrupt tree or data section is found at load time, not by a request.
///
/// `Reader::verify` is stricter about metadata than real databases are (the
/// free country databases have an empty `description`), so the walk is ours.
fn verify(reader: &Reader<Vec<u8>>) -> Result<(), MaxMindDbError> {
    let meta = reader.metadata();
    if meta.binary_format_major_version != 2 {
        return Err(MaxMindDbError::invalid_database(format!(
            "unsupported binary format version {}",
            meta.binary_format_major_version
        )));
    }
    // A tree of N nodes has at most N + 1 leaves; more means a cycle.
    let limit = usize::try_from(meta.node_count)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .saturating_add(2);
    let mut seen = std::collections::HashSet::new();
    let options = WithinOptions::default().include_networks_without_data();
    for (visited, found) in reader.networks(options)?.enumerate() {
        if visited > limit {
            return Err(MaxMindDbError::invalid_database(
                "search tree has a cycle or more leaves than nodes",
            ));
        }
        let found = found?;
        if let Some(offset) = found.offset()
            && seen.insert(offset)
        {
            found.decode::<serde::de::IgnoredAny>()?;
        }
    }
    Ok(())
}

/// The layout is what the metadata names, widened by what sampled records carry.
fn detect_layout(reader: &Reader<Vec<u8>>) -> Result<Layout, MaxMindDbError> {
    let ty = reader.metadata().database_type.to_ascii_lowercase();
    let mut layout = Layout {
        country: ty.contains("country") || ty.contains("city") || ty.contains("enterprise"),
        anonymizer: ty.contains("anonymous") || ty.contains("ip-risk"),
        asn: ty.contains("asn"),
    };
    let options = WithinOptions::default().skip_empty_values();
    for found in reader.networks(options)?.take(LAYOUT_SAMPLE) {
        if let Some(record) = found?.decode::<Record<'_>>()? {
            let seen = record.layout();
            layout.country |= seen.country;
            layout.anonymizer |= seen.anonymizer;
            layout.asn |= seen.asn;
        }
    }
    Ok(layout)
}

/// Whether an address can be geolocated: public unicast. Private, loopback,
/// link-local, shared (CGNAT), documentation, benchmarking, multicast and other
/// special-purpose addresses never come from a customer's own network, and some
/// free databases still assign them a country; they are not looked up.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && c == 0))
        }
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && second == 0x0db8)
                || first == 0x0100)
        }
    }
}

/// The IPv4 address an IPv6 transition address carries, which is where the
/// traffic really comes from:
/// - 6to4, `2002::/16`: the IPv4 address is bits 16..48;
/// - NAT64 well-known prefix, `64:ff9b::/96`: the last 32 bits;
/// - Teredo, `2001::/32` (`2001:0000::`): the client's IPv4 address is the last
///   32 bits, inverted.
///
/// The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215) is not read: where
/// the IPv4 address sits in it depends on the prefix length its network chose
/// (RFC 6052), which an address does not tell.
pub(crate) fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let bits = u128::from(v6);
    let low = |shift: u32| Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32);
    match v6.segments() {
        [0x2002, ..] => Some(low(80)),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low(0)),
        [0x2001, 0x0000, ..] => Some(Ipv4Addr::from(!u32::from(low(0)))),
        _ => None,
    }
}

/// The databases in force, consulted in order: the first country found wins,
/// anonymizer flags are combined from all of them.
/// Databases are shared between snapshots: a reload reuses an unchanged one.
#[derive(Debug, Default)]
pub struct GeoSet {
    dbs: Vec<Arc<GeoDb>>,
}

impl GeoSet {
    /// Opens and verifies each database ([`GeoDb::open`]); the first that fails is the error.
    pub fn open(paths: &[PathBuf]) -> Result<Self, GeoError> {
        let dbs = paths
            .iter()
            .map(|p| GeoDb::open(p).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self { dbs })
    }

    /// The databases given, consulted in that order.
    pub(crate) fn from_databases(dbs: Vec<Arc<GeoDb>>) -> Self {
        Self { dbs }
    }

    /// The databases, in the order they are consulted.
    pub fn databases(&self) -> &[Arc<GeoDb>] {
        &self.dbs
    }

    /// What the databases say about `ip`; nothing for non-public addresses.
    pub fn lookup(&self, ip: IpAddr) -> Result<IpFacts, MaxMindDbError> {
        let mut facts = IpFacts::default();
        if !is_public(ip) {
            return Ok(facts);
        }
        for db in &self.dbs {
            db.lookup_into(ip, &mut facts)?;
        }
        Ok(facts)
    }

    /// Example addresses: for each country the databases name, the first
    /// public address they place there, and the first they also flag as an
    /// anonymizer; walking each database's networks once, in order. For
    /// building example requests (`portcullis prove`), not for deciding.
    pub fn samples(&self) -> Samples {
        let mut samples = Samples::default();
        for db in &self.dbs {
            let Ok(networks) = db.reader.networks(WithinOptions::default()) else {
                continue;
            };
            for item in networks.flatten() {
                let Ok(network) = item.network() else {
                    continue;
                };
                let ip = network.ip();
                if !is_public(ip) {
                    continue;
                }
                let Ok(facts) = self.lookup(ip) else {
                    continue;
                };
                let anonymous = facts.anonymizer.any();
                if anonymous {
                    samples.anonymous.get_or_insert(ip);
                }
                if let Some(c) = facts.country {
                    samples.in_country.entry(c).or_insert(ip);
                    if anonymous {
                        samples.anonymous_in.entry(c).or_insert(ip);
                    }
                }
            }
        }
        samples
    }
}

/// Example addresses of a [`GeoSet`] ([`GeoSet::samples`]).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    in_country: std::collections::HashMap<Country, IpAddr>,
    anonymous_in: std::collections::HashMap<Country, IpAddr>,
    anonymous: Option<IpAddr>,
}

impl Samples {
    /// An address placed in `country` (any, if `None`) and, if `anonymous`,
    /// flagged as an anonymizer.
    pub fn get(&self, country: Option<Country>, anonymous: bool) -> Option<IpAddr> {
        match (country, anonymous) {
            (Some(c), false) => self.in_country.get(&c).copied(),
            (Some(c), true) => self.anonymous_in.get(&c).copied(),
            (None, true) => self.anonymous,
            (None, false) => self.in_country.values().min().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Option<Ipv4Addr> {
        embedded_ipv4(text.parse().unwrap())
    }

    #[test]
    fn transition_addresses_give_the_ipv4_address_they_carry() {
        let kp = Some(Ipv4Addr::new(175, 45, 176, 1));
        assert_eq!(v4("2002:af2d:b001::1"), kp, "6to4");
        assert_eq!(v4("2002:af2d:b001:ffff:1:2:3:4"), kp, "6to4, any interface");
        assert_eq!(v4("64:ff9b::175.45.176.1"), kp, "NAT64 well-known prefix");
        assert_eq!(v4("64:ff9b::af2d:b001"), kp, "NAT64, hex form");
        // Teredo: server 65.54.227.120, client 175.45.176.1 (inverted).
        assert_eq!(v4("2001:0:4136:e378:8000:63bf:50d2:4ffe"), kp, "Teredo");
    }

    #[test]
    fn other_addresses_carry_none() {
        for ip in [
            "175.45.176.1",
            "2003:af2d:b001::1",
            "2001:db8::af2d:b001",
            "2001:1::af2d:b001",
            "64:ff9b:1::af2d:b001",
            "64:ff9b:0:0:1::af2d:b001",
            "65:ff9b::af2d:b001",
            "::ffff:175.45.176.1",
            "::1",
            "fe80::1",
        ] {
            assert_eq!(v4(ip), None, "{ip}");
        }
    }
}
