//! Detached signatures over a bundle digest, with the project's Ed25519 keys
//! (`portcullis-keys`). A signature signs `portcullis.bundle.v1\n` followed
//! by the digest (`sha256:<hex>`), so it can never be taken for a signature
//! over anything else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use portcullis_keys::{KeyError, PublicKey, SigningKey, public_path};

use crate::manifest::Digest;

/// The signature file's `format`.
pub const SIGNATURE_FORMAT: &str = "portcullis.signature.v1";

/// What is signed: this, then the digest.
const CONTEXT: &str = "portcullis.bundle.v1\n";

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

/// Signing a bundle digest.
pub trait SignBundle {
    fn sign(&self, digest: &Digest) -> Signature;
}

impl SignBundle for SigningKey {
    fn sign(&self, digest: &Digest) -> Signature {
        Signature {
            format: SIGNATURE_FORMAT.to_owned(),
            bundle_digest: digest.to_string(),
            key_id: self.public().id(),
            signature: self.sign_message(CONTEXT, digest.to_string().as_bytes()),
        }
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
            return Err(KeyError::SignedOther {
                signed: self.bundle_digest.clone(),
                actual: digest.to_string(),
            });
        }
        let key = portcullis_keys::trusted(trusted, &self.key_id)?;
        key.verify_message(CONTEXT, digest.to_string().as_bytes(), &self.signature)?;
        Ok(self.key_id.clone())
    }
}

/// The signature file beside a bundle: `FILE.sig`.
pub fn signature_path(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
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
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
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
            Err(KeyError::SignedOther { .. })
        ));
        let mut forged = signature.clone();
        forged.signature = key.sign(&Digest::of(b"another")).signature;
        assert!(matches!(
            forged.verify(&digest, &[public]),
            Err(KeyError::Invalid(_))
        ));
    }
}
