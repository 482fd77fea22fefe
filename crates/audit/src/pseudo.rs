//! Pseudonymisation of identity fields: keyed hashes (HMAC-SHA-256), so that the
//! records of one customer can be joined and looked up without names in clear.
//!
//! Each value is normalised for its kind (names folded as screening folds them,
//! emails trimmed and lower-cased, identifiers reduced to letters and digits…)
//! and hashed with a domain-separation prefix per kind, so the same text as a
//! name and as an email gives unrelated hashes. The output is 64 hex digits.
//!
//! Customer ids and names come back on every request of a customer, so what
//! they hash to is kept per thread (see [`Pseudonymiser::hash`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use portcullis_core::keys::{email_key, identifier_key, name_key};

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// What is stored for a group of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldMode {
    /// A keyed hash (HMAC-SHA-256) of the normalised value.
    Hash,
    /// The value as received.
    Clear,
    /// Nothing.
    Drop,
}

/// The mode of each field group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FieldModes {
    /// Customer id, names and aliases, beneficial owners' names and aliases, dates of birth.
    pub identity: FieldMode,
    /// Email, phone and address lines (street, city, region, postal code).
    pub contact: FieldMode,
    /// Identifier values (passport, tax id…); their kind and country stay in clear.
    pub identifiers: FieldMode,
}

impl Default for FieldModes {
    fn default() -> Self {
        Self {
            identity: FieldMode::Hash,
            contact: FieldMode::Hash,
            identifiers: FieldMode::Hash,
        }
    }
}

impl FieldModes {
    pub fn any_hashed(&self) -> bool {
        [self.identity, self.contact, self.identifiers].contains(&FieldMode::Hash)
    }
}

/// The kind of a value, which decides its normalisation and hash domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind<'a> {
    CustomerId,
    Name,
    DateOfBirth,
    Email,
    Phone,
    Address,
    /// An identifier value of this kind (`passport`, `tax_id`…).
    Identifier(&'a str),
}

impl FieldKind<'_> {
    fn domain(&self) -> &'static str {
        match self {
            Self::CustomerId => "customer_id",
            Self::Name => "name",
            Self::DateOfBirth => "date_of_birth",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Address => "address",
            Self::Identifier(_) => "identifier",
        }
    }

    fn normalise(&self, value: &str) -> String {
        match self {
            Self::CustomerId | Self::DateOfBirth => value.trim().to_owned(),
            Self::Name => {
                let key = name_key(value);
                if key.is_empty() {
                    value.trim().to_lowercase()
                } else {
                    key
                }
            }
            Self::Email => email_key(value),
            Self::Phone => value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
            Self::Address => value
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
            Self::Identifier(kind) => {
                format!("{}:{}", kind.trim().to_lowercase(), identifier_key(value))
            }
        }
    }
}

/// The pseudonymisation key (kept as a keyed HMAC state). Its `Debug` does not show it.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(id {})", self.id())
    }
}

/// Why a key could not be had.
///
/// The operating system's error is part of each message and deliberately not a
/// `source`: a chained report (`{:#}`) would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the records key file `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "permissions {mode:04o} for the records key file `{path}` are too open; the key file must be readable by its owner only (chmod 600)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the records key file `{path}` must hold at least {MIN_KEY_BYTES} bytes as hex digits")]
    Invalid { path: PathBuf },
    #[error(
        "the records key file `{path}` holds a key of zero bytes only; write a random key (at least {MIN_KEY_BYTES} bytes as hex digits)"
    )]
    Zero { path: PathBuf },
    #[error("cannot create the records key file `{path}`: {cause}")]
    Create {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot draw a random records key: {0}")]
    Random(getrandom::Error),
}

impl Key {
    /// A key of at least [`MIN_KEY_BYTES`] bytes, not all of them zero.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < MIN_KEY_BYTES || bytes.iter().all(|b| *b == 0) {
            return None;
        }
        let mac = <HmacSha256 as KeyInit>::new_from_slice(bytes).ok()?;
        Some(Self { mac })
    }

    /// Reads a key file: hex digits (whitespace around them ignored). The file
    /// must be readable by its owner only (as ssh requires of private keys),
    /// and the key must not be all zeros.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let read = |cause| KeyError::Read {
            path: path.to_owned(),
            cause,
        };
        let mut file = std::fs::File::open(path).map_err(read)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let meta = file.metadata().map_err(read)?;
            let mode = meta.permissions().mode() & 0o7777;
            // A directory is refused by the read below, with the system's words.
            if meta.is_file() && mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(read)?;
        let invalid = || KeyError::Invalid {
            path: path.to_owned(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| invalid())?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(invalid());
        }
        if bytes.iter().all(|b| *b == 0) {
            return Err(KeyError::Zero {
                path: path.to_owned(),
            });
        }
        Self::from_bytes(&bytes).ok_or_else(invalid)
    }

    /// Reads `path` if it exists, or writes a new random key there (mode 0600,
    /// never overwriting). Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
        let key = Self::from_bytes(&bytes).ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
        })?;
        let create = |cause| KeyError::Create {
            path: path.to_owned(),
            cause,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(create)?;
        file.write_all(format!("{}\n", hex::encode(&bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(create)?;
        Ok((key, true))
    }

    /// A short public fingerprint, recorded so that a reader knows which key hashed.
    pub fn id(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"portcullis.records.v1.key_id");
        hex::encode(mac.finalize().into_bytes().get(..8).unwrap_or_default())
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }
}

/// Where the generated key lives when no key file is given: beside the records
/// directory, named after it (`./records` → `./records.key`).
pub fn default_key_path(records_dir: &Path) -> PathBuf {
    let name = records_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "records".into());
    records_dir.with_file_name(format!("{name}.key"))
}

/// Applies the field modes with one key.
#[derive(Debug, Clone)]
pub struct Pseudonymiser {
    key: Option<Key>,
    /// The key's fingerprint, computed once (every record carries it).
    key_id: Option<String>,
    /// Distinct for every `new` (clones share the key, hence the id): a thread's
    /// cache holds the hashes of one pseudonymiser only.
    cache_id: u64,
    pub modes: FieldModes,
}

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// Most values a thread keeps hashes for, per kind; emptied when full.
const CACHE_CAPACITY: usize = 2048;

type Map = HashMap<Box<str>, String, foldhash::fast::RandomState>;

/// The hashes of customer ids and names this thread computed with one pseudonymiser.
#[derive(Default)]
struct Cache {
    owner: u64,
    ids: Map,
    names: Map,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

impl Pseudonymiser {
    /// `key` is needed when any group is hashed; without one, hashed groups are dropped.
    pub fn new(key: Option<Key>, modes: FieldModes) -> Self {
        let key_id = key.as_ref().map(Key::id);
        Self {
            key,
            key_id,
            cache_id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            modes,
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The keyed hash of `value` as a field of `kind` (64 hex digits).
    ///
    /// Customer ids and names are looked up in this thread's cache first: the
    /// hash depends only on the key, the kind and the value, and a thread's
    /// cache is emptied when it is used with another pseudonymiser.
    pub fn hash(&self, kind: FieldKind<'_>, value: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        if !matches!(kind, FieldKind::CustomerId | FieldKind::Name) {
            return Some(Self::compute(key, kind, value));
        }
        let hit = CACHE.with_borrow_mut(|cache| {
            if cache.owner != self.cache_id {
                cache.owner = self.cache_id;
                cache.ids.clear();
                cache.names.clear();
            }
            let map = if kind == FieldKind::CustomerId {
                &mut cache.ids
            } else {
                &mut cache.names
            };
            if let Some(hash) = map.get(value) {
                return hash.clone();
            }
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            let hash = Self::compute(key, kind, value);
            map.insert(value.into(), hash.clone());
            hash
        });
        Some(hit)
    }

    /// [`hash`](Self::hash) without the cache.
    fn compute(key: &Key, kind: FieldKind<'_>, value: &str) -> String {
        let mut mac = key.mac();
        mac.update(b"portcullis.records.v1.");
        mac.update(kind.domain().as_bytes());
        mac.update(b"\0");
        mac.update(kind.normalise(value).as_bytes());
        super::hex_string(&mac.finalize().into_bytes())
    }

    /// The stored form of `value` under `mode`: hashed, as is, or nothing.
    pub fn apply(&self, mode: FieldMode, kind: FieldKind<'_>, value: &str) -> Option<String> {
        match mode {
            FieldMode::Hash => self.hash(kind, value),
            FieldMode::Clear => Some(value.to_owned()),
            FieldMode::Drop => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(byte: u8) -> Pseudonymiser {
        Pseudonymiser::new(Key::from_bytes(&[byte; 32]), FieldModes::default())
    }

    #[test]
    fn hashes_are_keyed_deterministic_and_hex() {
        let a = p(1).hash(FieldKind::CustomerId, "cust-1").unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(p(1).hash(FieldKind::CustomerId, "cust-1").unwrap(), a);
        assert_ne!(p(2).hash(FieldKind::CustomerId, "cust-1").unwrap(), a);
        assert_ne!(p(1).hash(FieldKind::CustomerId, "cust-2").unwrap(), a);
    }

    #[test]
    fn cached_hashes_are_the_computed_ones_and_never_another_keys() {
        let (one, two) = (p(1), p(2));
        let key = |b: u8| Key::from_bytes(&[b; 32]).unwrap();
        for round in 0..3 {
            for (kind, value) in [
                (FieldKind::CustomerId, "cust-1"),
                (FieldKind::Name, "Ann Lee"),
            ] {
                let a = one.hash(kind, value).unwrap();
                let b = two.hash(kind, value).unwrap();
                assert_eq!(
                    a,
                    Pseudonymiser::compute(&key(1), kind, value),
                    "round {round}"
                );
                assert_eq!(
                    b,
                    Pseudonymiser::compute(&key(2), kind, value),
                    "round {round}"
                );
                assert_ne!(a, b);
            }
        }
        // Past the capacity the cache is emptied, and answers stay right.
        for i in 0..CACHE_CAPACITY + 10 {
            let v = format!("cust-{i}");
            assert_eq!(
                one.hash(FieldKind::CustomerId, &v).unwrap(),
                Pseudonymiser::compute(&key(1), FieldKind::CustomerId, &v)
            );
        }
        // A name and an id with the same text are cached apart.
        assert_ne!(
            one.hash(FieldKind::Name, "x1").unwrap(),
            one.hash(FieldKind::CustomerId, "x1").unwrap()
        );
    }

    #[test]
    fn each_kind_has_its_own_domain() {
        let p = p(1);
        let v = "ann@example.com";
        assert_ne!(p.hash(FieldKind::Email, v), p.hash(FieldKind::Name, v));
        assert_ne!(
            p.hash(FieldKind::Email, v),
            p.hash(FieldKind::CustomerId, v)
        );
        assert_ne!(
            p.hash(FieldKind::Identifier("passport"), "X1"),
            p.hash(FieldKind::Identifier("tax_id"), "X1")
        );
    }

    #[test]
    fn values_are_normalised_before_hashing() {
        let p = p(1);
        let same = |k: FieldKind<'_>, a: &str, b: &str| {
            assert_eq!(p.hash(k, a), p.hash(k, b), "{a} / {b}")
        };
        same(FieldKind::Email, " Ann@Example.COM ", "ann@example.com");
        same(FieldKind::Name, "Petrov, Ivan", "IVAN PETROV");
        same(FieldKind::Name, "Иван Петров", "ivan petrov");
        same(FieldKind::Phone, "+1 (555) 010-0000", "+15550100000");
        same(FieldKind::Identifier("Passport"), "ab-123 456", "AB123456");
        same(FieldKind::CustomerId, " c-1 ", "c-1");
        assert_ne!(
            p.hash(FieldKind::CustomerId, "C-1"),
            p.hash(FieldKind::CustomerId, "c-1")
        );
    }

    #[test]
    fn modes_hash_keep_or_drop() {
        let p = p(1);
        assert_eq!(
            p.apply(FieldMode::Clear, FieldKind::Name, "Ann"),
            Some("Ann".into())
        );
        assert_eq!(p.apply(FieldMode::Drop, FieldKind::Name, "Ann"), None);
        assert_eq!(
            p.apply(FieldMode::Hash, FieldKind::Name, "Ann"),
            p.hash(FieldKind::Name, "Ann")
        );
    }

    #[test]
    fn key_files_are_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_key_path(&dir.path().join("records"));
        assert_eq!(path, dir.path().join("records.key"));
        let (key, created) = Key::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = Key::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(key.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(Key::load(&path), Err(KeyError::Invalid { .. })));
        std::fs::write(&path, "abcd").unwrap();
        assert!(matches!(Key::load(&path), Err(KeyError::Invalid { .. })));
        std::fs::write(&path, "00".repeat(32)).unwrap();
        let err = Key::load(&path).unwrap_err();
        assert!(matches!(err, KeyError::Zero { .. }), "{err:?}");
        assert!(err.to_string().contains("zero bytes only"), "{err}");
        assert!(Key::from_bytes(&[0; 64]).is_none());
        assert!(matches!(
            Key::load(&dir.path().join("missing")),
            Err(KeyError::Read { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn key_files_open_to_group_or_others_are_refused_as_ssh_does() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Key::load(&path).unwrap_err();
            assert!(matches!(err, KeyError::TooOpen { .. }), "{mode:o}: {err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "permissions {mode:04o} for the records key file `{}` are too open; the key file must be readable by its owner only (chmod 600)",
                    path.display()
                )
            );
            assert!(Key::load_or_create(&path).is_err(), "{mode:o}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(Key::load(&path).is_ok(), "{mode:o}");
        }
    }

    #[test]
    fn a_read_error_names_the_os_error_once_even_chained() {
        let dir = tempfile::tempdir().unwrap();
        let err = Key::load(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
        let chained = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chained.matches("os error").count(), 1, "{chained}");
    }
}
