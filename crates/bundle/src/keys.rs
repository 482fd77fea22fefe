//! Ed25519 keys and detached signatures over a bundle digest.
//!
//! Keys are stored as PEM, as OpenSSL writes them (`PRIVATE KEY`, PKCS #8;
//! `PUBLIC KEY`, SubjectPublicKeyInfo), so they can be made, read and
//! inspected with standard tools too. A signature signs
//! `portcullis.bundle.v1\n` followed by the digest (`sha256:<hex>`), so it
//! can never be taken for a signature over anything else.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use crate::manifest::{Digest, hex};

/// The signature file's `format`.
pub const SIGNATURE_FORMAT: &str = "portcullis.signature.v1";

/// What is signed: this, then the digest.
const CONTEXT: &str = "portcullis.bundle.v1\n";

/// Why a key or a signature cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not an Ed25519 {1} key in PEM: {2}")]
    Parse(PathBuf, &'static str, String),
    #[error("{0} exists: a key is never overwritten (move it away first)")]
    Exists(PathBuf),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("not a signature: {0}")]
    Signature(String),
    #[error("the signature is over {signed}, not over this bundle ({actual})")]
    OtherBundle { signed: String, actual: Digest },
    #[error("signed by key {0}, which is not trusted")]
    Untrusted(String),
    #[error("the signature by key {0} does not verify")]
    Invalid(String),
}

/// A private signing key.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// A public key, trusted to sign bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

/// A detached signature (the `.sig` file, and the signature artifact's layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `portcullis.signature.v1`.
    pub format: String,
    /// The bundle digest signed (`sha256:<hex>`).
    pub bundle_digest: String,
    /// The signing key's id ([`PublicKey::id`]).
    pub key_id: String,
    /// The Ed25519 signature, base64.
    pub signature: String,
}

impl SigningKey {
    /// A new key from the system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Writes the key to `path` (mode 0600, never over an existing file) and
    /// its public key to `path.pub`; returns the public key's path.
    pub fn write(&self, path: &Path) -> Result<PathBuf, KeyError> {
        let public = public_path(path);
        for p in [path, public.as_path()] {
            if p.exists() {
                return Err(KeyError::Exists(p.to_owned()));
            }
        }
        let pem = self
            .0
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Parse(path.to_owned(), "private", e.to_string()))?;
        write_new(path, pem.as_bytes(), 0o600)?;
        let public_pem = self
            .0
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Parse(public.clone(), "public", e.to_string()))?;
        write_new(&public, public_pem.as_bytes(), 0o644)?;
        Ok(public)
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path)?;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&text)
            .map(Self)
            .map_err(|e| KeyError::Parse(path.to_owned(), "private", e.to_string()))
    }

    /// Signs `digest`.
    pub fn sign(&self, digest: &Digest) -> Signature {
        let signature = self.0.sign(&message(digest));
        Signature {
            format: SIGNATURE_FORMAT.to_owned(),
            bundle_digest: digest.to_string(),
            key_id: self.public().id(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        }
    }
}

impl PublicKey {
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path)?;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&text)
            .map(Self)
            .map_err(|e| KeyError::Parse(path.to_owned(), "public", e.to_string()))
    }

    /// A short, stable id: the first 16 hex digits of the SHA-256 of the key.
    pub fn id(&self) -> String {
        let h = hex(&Digest::of(self.0.as_bytes()).0);
        h.get(..16).unwrap_or(&h).to_owned()
    }
}

impl Signature {
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let s: Self =
            serde_json::from_slice(bytes).map_err(|e| KeyError::Signature(e.to_string()))?;
        if s.format != SIGNATURE_FORMAT {
            return Err(KeyError::Signature(format!(
                "unknown format `{}`",
                s.format
            )));
        }
        Ok(s)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Checks that this signs `digest` and was made by one of `trusted`;
    /// the id of the key that made it.
    pub fn verify(&self, digest: &Digest, trusted: &[PublicKey]) -> Result<String, KeyError> {
        if self.bundle_digest != digest.to_string() {
            return Err(KeyError::OtherBundle {
                signed: self.bundle_digest.clone(),
                actual: *digest,
            });
        }
        let key = trusted
            .iter()
            .find(|k| k.id() == self.key_id)
            .ok_or_else(|| KeyError::Untrusted(self.key_id.clone()))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|e| KeyError::Signature(e.to_string()))?;
        let signature = ed25519_dalek::Signature::from_slice(&raw)
            .map_err(|e| KeyError::Signature(e.to_string()))?;
        key.0
            .verify(&message(digest), &signature)
            .map_err(|_| KeyError::Invalid(self.key_id.clone()))?;
        Ok(self.key_id.clone())
    }
}

fn message(digest: &Digest) -> Vec<u8> {
    format!("{CONTEXT}{digest}").into_bytes()
}

/// `KEY.pub` beside `KEY`.
pub fn public_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// The signature file beside a bundle: `FILE.sig`.
pub fn signature_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_bundle_and_a_trusted_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let path = dir.path().join("release.key");
        let public_path = key.write(&path).unwrap();
        assert!(matches!(key.write(&path), Err(KeyError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let key = SigningKey::read(&path).unwrap();
        let public = PublicKey::read(&public_path).unwrap();
        let other = SigningKey::generate().unwrap().public();

        let digest = Digest::of(b"manifest");
        let signature = Signature::parse(&key.sign(&digest).to_bytes()).unwrap();
        assert_eq!(
            signature
                .verify(&digest, &[other.clone(), public.clone()])
                .unwrap(),
            public.id()
        );
        assert!(matches!(
            signature.verify(&digest, &[other]),
            Err(KeyError::Untrusted(_))
        ));
        assert!(matches!(
            signature.verify(&Digest::of(b"another"), std::slice::from_ref(&public)),
            Err(KeyError::OtherBundle { .. })
        ));
        let mut forged = signature.clone();
        forged.signature = key.sign(&Digest::of(b"another")).signature;
        assert!(matches!(
            forged.verify(&digest, &[public]),
            Err(KeyError::Invalid(_))
        ));
    }
}
