//! The manifest: what a bundle holds, each file with its size and SHA-256.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The manifest's `format`.
pub const FORMAT: &str = "portcullis.bundle.v1";

/// The manifest's name in the archive (its first entry).
pub const MANIFEST_PATH: &str = "manifest.json";

/// Where the policy directory's files are in the archive.
pub const POLICIES_DIR: &str = "policies";

/// Where the geo databases are in the archive.
pub const GEO_DIR: &str = "geo";

/// A bundle's manifest (`manifest.json`, the archive's first entry). Its
/// SHA-256 is the bundle digest, which signatures sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `portcullis.bundle.v1`.
    pub format: String,
    /// The content's revision: a hash over every file's path and digest,
    /// equal for equal files whichever version built the bundle.
    pub revision: String,
    /// The version of the tool that built it.
    pub tool_version: String,
    /// Every file, in archive order: the policy directory's under
    /// `policies/`, then the geo databases under `geo/`.
    pub files: Vec<FileEntry>,
    /// The geo databases' paths, in the order they are consulted.
    pub geo: Vec<String>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path in the archive (`policies/…` or `geo/…`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

impl Manifest {
    /// The manifest of `files` (in archive order) and `geo` (paths among them).
    pub fn new(files: Vec<FileEntry>, geo: Vec<String>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            revision: content_revision(&files),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            files,
            geo,
        }
    }

    /// All files' sizes together; `None` if they do not fit in 64 bits.
    pub fn total_size(&self) -> Option<u64> {
        self.files
            .iter()
            .try_fold(0u64, |total, f| total.checked_add(f.size))
    }

    /// The manifest's bytes as stored (pretty JSON, one trailing newline):
    /// the same manifest always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Checks what a reader relies on: the format, safe and unique paths, geo
    /// databases among the files.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "unknown bundle format `{}` (this version reads `{FORMAT}`)",
                self.format
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.files {
            check_path(&f.path)?;
            if !seen.insert(f.path.as_str()) {
                return Err(format!("`{}` is listed twice", f.path));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("`{}` has no valid SHA-256", f.path));
            }
        }
        if self.total_size().is_none() {
            return Err("the files' sizes overflow".to_owned());
        }
        let revision = content_revision(&self.files);
        if self.revision != revision {
            return Err(format!(
                "revision `{}` is not the files' revision `{revision}`",
                self.revision
            ));
        }
        for g in &self.geo {
            if !seen.contains(g.as_str()) || !g.starts_with(&format!("{GEO_DIR}/")) {
                return Err(format!("geo database `{g}` is not a file of the bundle"));
            }
        }
        Ok(())
    }

    /// The entry for `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// The content's revision: the first 16 hex digits of a SHA-256 over every
/// file's path and digest, in order.
fn content_revision(files: &[FileEntry]) -> String {
    let mut content = Sha256::new();
    for f in files {
        content.update(f.path.as_bytes());
        content.update([0]);
        content.update(f.sha256.as_bytes());
        content.update([b'\n']);
    }
    let revision = hex(&content.finalize());
    revision.get(..16).unwrap_or(&revision).to_owned()
}

/// A relative path of normal components under `policies/` or `geo/`.
fn check_path(path: &str) -> Result<(), String> {
    let under = path
        .split_once('/')
        .is_some_and(|(top, rest)| (top == POLICIES_DIR || top == GEO_DIR) && !rest.is_empty());
    let normal = path
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\') && !c.contains('\0'));
    if under && normal && path.len() <= 4096 {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not a safe path under `{POLICIES_DIR}/` or `{GEO_DIR}/`"
        ))
    }
}

/// A SHA-256 digest, written `sha256:<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The lower-case hex, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let mut out = [0u8; 32];
        if hex.len() != 64 {
            return Err(format!("`{s}` is not a SHA-256 digest"));
        }
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex
                .get(i * 2..i * 2 + 2)
                .ok_or_else(|| format!("`{s}` is not a SHA-256 digest"))?;
            *byte = u8::from_str_radix(pair, 16)
                .map_err(|_| format!("`{s}` is not a SHA-256 digest"))?;
        }
        Ok(Self(out))
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_two_directories_are_refused() {
        for bad in [
            "../etc/passwd",
            "policies/../../x",
            "/policies/a",
            "policies/",
            "other/a",
            "policies//a",
            "policies/./a",
            "manifest.json",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in [
            "policies/a.cedar",
            "policies/designations/x.jsonl",
            "geo/00-a.mmdb",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_revision_or_sizes_that_do_not_hold_are_refused() {
        let file = |path: &str, size| FileEntry {
            path: path.to_owned(),
            size,
            sha256: "ab".repeat(32),
        };
        let good = Manifest::new(vec![file("policies/a.cedar", 1)], Vec::new());
        assert!(good.check().is_ok());
        let mut forged = good.clone();
        forged.revision = "0000000000000000".to_owned();
        assert!(forged.check().unwrap_err().contains("revision"));
        let huge = Manifest::new(
            vec![
                file("policies/a.cedar", 1 << 63),
                file("policies/b.cedar", 1 << 63),
            ],
            Vec::new(),
        );
        assert!(huge.check().unwrap_err().contains("overflow"));
    }

    #[test]
    fn a_digest_round_trips_and_refuses_what_is_not_one() {
        let d = Digest::of(b"x");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert!("sha256:zz".parse::<Digest>().is_err());
        assert!(
            format!("sha256:{}", "é".repeat(32))
                .parse::<Digest>()
                .is_err()
        );
    }
}
