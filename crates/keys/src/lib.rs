//! Ed25519 signing keys and detached signatures, shared by bundles and
//! decision records.
//!
//! Keys are stored as PEM, as OpenSSL writes them (`PRIVATE KEY`, PKCS #8;
//! `PUBLIC KEY`, SubjectPublicKeyInfo), so they can be made, read and
//! inspected with standard tools too. A signature signs a context line (what
//! is signed, e.g. `portcullis.bundle.v1\n`) followed by the message, so it
//! can never be taken for a signature over anything else.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest as _, Sha256};

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
    #[error("the signature is over {signed}, not over this ({actual})")]
    SignedOther { signed: String, actual: String },
    #[error("signed by key {0}, which is not trusted")]
    Untrusted(String),
    #[error("the signature by key {0} does not verify")]
    Invalid(String),
}

/// A private signing key.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// A public key, trusted to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

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
        // PKCS #8 v1 (the private key alone), as OpenSSL writes and reads it.
        let mut bytes = ed25519_dalek::pkcs8::KeypairBytes::from(&self.0);
        bytes.public_key = None;
        let pem = bytes
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

    /// The signature (base64) of `context` followed by `message`.
    pub fn sign_message(&self, context: &str, message: &[u8]) -> String {
        let signature = self.0.sign(&signed(context, message));
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    }
}

impl PublicKey {
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path)?;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&text)
            .map(Self)
            .map_err(|e| KeyError::Parse(path.to_owned(), "public", e.to_string()))
    }

    /// The key as PEM (`PUBLIC KEY`, SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Parse(PathBuf::from("(public key)"), "public", e.to_string()))
    }

    /// A key from PEM text; `origin` names where it came from in errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(text)
            .map(Self)
            .map_err(|e| KeyError::Parse(PathBuf::from(origin), "public", e.to_string()))
    }

    /// A short, stable id: the first 16 hex digits of the SHA-256 of the key.
    pub fn id(&self) -> String {
        let h = hex::encode(Sha256::digest(self.0.as_bytes()));
        h.get(..16).unwrap_or(&h).to_owned()
    }

    /// Checks `signature` (base64) over `context` followed by `message`.
    pub fn verify_message(
        &self,
        context: &str,
        message: &[u8],
        signature: &str,
    ) -> Result<(), KeyError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|e| KeyError::Signature(e.to_string()))?;
        let signature = ed25519_dalek::Signature::from_slice(&raw)
            .map_err(|e| KeyError::Signature(e.to_string()))?;
        self.0
            .verify(&signed(context, message), &signature)
            .map_err(|_| KeyError::Invalid(self.id()))
    }
}

/// The key of `id` among `trusted`.
pub fn trusted<'a>(trusted: &'a [PublicKey], id: &str) -> Result<&'a PublicKey, KeyError> {
    trusted
        .iter()
        .find(|k| k.id() == id)
        .ok_or_else(|| KeyError::Untrusted(id.to_owned()))
}

fn signed(context: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(context.len() + message.len());
    out.extend_from_slice(context.as_bytes());
    out.extend_from_slice(message);
    out
}

/// `KEY.pub` beside `KEY`.
pub fn public_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_os_string();
    name.push(".pub");
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
    fn a_signature_verifies_only_for_its_context_message_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let path = dir.path().join("k");
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
        let sig = key.sign_message("a\n", b"m");
        assert!(public.verify_message("a\n", b"m", &sig).is_ok());
        assert!(public.verify_message("b\n", b"m", &sig).is_err());
        assert!(public.verify_message("a\n", b"n", &sig).is_err());
        let other = SigningKey::generate().unwrap().public();
        assert!(other.verify_message("a\n", b"m", &sig).is_err());
        assert!(trusted(std::slice::from_ref(&other), &public.id()).is_err());
        assert_eq!(
            trusted(&[other, public.clone()], &public.id()).unwrap(),
            &public
        );
    }
}
