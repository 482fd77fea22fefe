//! Bundles in OCI registries, with `oci-client`.
//!
//! A bundle is an OCI artifact: one manifest whose config is the bundle's
//! `manifest.json` and whose one layer is the bundle file, each with this
//! project's media types. Its signature is a second artifact, tagged
//! `sha256-<hex>.sig` after the bundle artifact's manifest digest (the Cosign
//! convention), whose one layer is the signature file.
//!
//! References are written `oci://HOST[:PORT]/REPOSITORY:TAG` (or `@sha256:…`).
//! Loopback registries are spoken to in plain HTTP, all others in HTTPS.
//! Credentials: `--registry-username`/`--registry-password` or
//! `--registry-token` where a command takes them, else the Docker
//! configuration (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`,
//! `auths.<host>.auth`), else anonymous.

use std::path::{Path, PathBuf};
use std::sync::Once;

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::archive::{self, Bundle, BundleError};
use crate::keys::{KeyError, PublicKey, Signature};
use crate::manifest::Digest;

/// The bundle artifact's config (`manifest.json`).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.portcullis.bundle.manifest.v1+json";
/// The bundle artifact's layer (the bundle file).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.portcullis.bundle.v1.tar+zstd";
/// The signature artifact's layer.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.portcullis.bundle.signature.v1+json";
/// The signature artifact's config (empty, per the OCI guidance for artifacts).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Connecting to a registry takes at most this.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A registry that sends nothing for this long is given up on.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a registry operation failed, by reason (the `reason` label of
/// `portcullis_bundle_pull_failures_total`).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("`{0}` is not a bundle reference (oci://HOST[:PORT]/REPOSITORY:TAG): {1}")]
    Reference(String, String),
    #[error("the registry: {0}")]
    Registry(String),
    #[error("{0} is not signed (no {1} artifact)")]
    Unsigned(String, String),
    #[error("the signature of {reference}: {source}")]
    Signature {
        reference: String,
        #[source]
        source: KeyError,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl RegistryError {
    /// A stable, short reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Reference(..) => "reference",
            Self::Registry(_) => "registry",
            Self::Unsigned(..) => "unsigned",
            Self::Signature {
                source: KeyError::Untrusted(_),
                ..
            } => "untrusted_key",
            Self::Signature { .. } => "bad_signature",
            Self::Bundle(BundleError::Mismatch { .. }) => "digest_mismatch",
            Self::Bundle(_) => "bad_bundle",
            Self::Io(..) => "io",
        }
    }
}

/// A parsed `oci://` reference.
#[derive(Debug, Clone)]
pub struct BundleRef {
    pub reference: Reference,
    text: String,
}

impl std::fmt::Display for BundleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for BundleRef {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let bad = |why: &str| RegistryError::Reference(s.to_owned(), why.to_owned());
        let rest = s
            .strip_prefix("oci://")
            .ok_or_else(|| bad("it must start with oci://"))?;
        if !rest.contains('/') {
            return Err(bad("no repository"));
        }
        let reference: Reference = rest.parse().map_err(|e| bad(&format!("{e}")))?;
        Ok(Self {
            reference,
            text: s.to_owned(),
        })
    }
}

impl BundleRef {
    fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The same repository at `digest`.
    fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.registry().to_owned(),
            self.reference.repository().to_owned(),
            digest.to_owned(),
        )
    }

    /// The signature artifact's reference for the artifact at `digest`.
    fn signature_tag(&self, digest: &str) -> Reference {
        Reference::with_tag(
            self.registry().to_owned(),
            self.reference.repository().to_owned(),
            signature_tag(digest),
        )
    }
}

/// `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Credentials given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

/// A client for one registry.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
}

impl Registry {
    pub fn new(reference: &BundleRef, credentials: &Credentials) -> Self {
        install_crypto();
        let host = reference.registry().to_owned();
        let protocol = if is_loopback(&host) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        // A registry that accepts connections and never answers must not
        // hold a start or the poll: every request is bounded.
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        });
        let auth = auth_for(&host, credentials, docker_config_path().as_deref());
        Self { client, auth }
    }

    /// The digest of the artifact `reference` names now (one HEAD request).
    pub async fn digest(&self, reference: &BundleRef) -> Result<String, RegistryError> {
        self.client
            .fetch_manifest_digest(&reference.reference, &self.auth)
            .await
            .map_err(|e| RegistryError::Registry(e.to_string()))
    }

    /// Pushes the bundle at `bundle` (and its signature, if given) to
    /// `reference`; the artifact's manifest digest.
    pub async fn push(
        &self,
        bundle: &Path,
        signature: Option<&Signature>,
        reference: &BundleRef,
    ) -> Result<String, RegistryError> {
        let checked = archive::verify(bundle)?;
        if let Some(s) = signature {
            s.verify_digest(&checked)
                .map_err(|source| RegistryError::Signature {
                    reference: reference.to_string(),
                    source,
                })?;
        }
        let (_, _, manifest_bytes) = archive::read_manifest(bundle)?;
        let data = std::fs::read(bundle).map_err(|e| RegistryError::Io(bundle.to_owned(), e))?;
        let layers = [ImageLayer::new(data, BUNDLE_MEDIA_TYPE.to_owned(), None)];
        let config = Config::new(manifest_bytes, CONFIG_MEDIA_TYPE.to_owned(), None);
        self.client
            .push(&reference.reference, &layers, config, &self.auth, None)
            .await
            .map_err(|e| RegistryError::Registry(e.to_string()))?;
        let digest = self.digest(reference).await?;
        if let Some(s) = signature {
            let layers = [ImageLayer::new(
                s.to_bytes(),
                SIGNATURE_MEDIA_TYPE.to_owned(),
                None,
            )];
            let config = Config::new(b"{}".to_vec(), EMPTY_MEDIA_TYPE.to_owned(), None);
            self.client
                .push(
                    &reference.signature_tag(&digest),
                    &layers,
                    config,
                    &self.auth,
                    None,
                )
                .await
                .map_err(|e| RegistryError::Registry(e.to_string()))?;
        }
        Ok(digest)
    }

    /// Pulls the artifact at `digest` of `reference`'s repository into
    /// `out`, and checks it: the signature (by one of `trusted`) against the
    /// artifact's config, which is the bundle's `manifest.json`, before the
    /// bundle itself is downloaded; then the bundle, no larger than its
    /// descriptor says (and than [`archive::MAX_UNPACKED`]), streamed to disk;
    /// then that its manifest is the one signed and every file matches it.
    /// Nothing is left at `out` unless all of it holds.
    pub async fn pull(
        &self,
        reference: &BundleRef,
        digest: &str,
        trusted: &[PublicKey],
        out: &Path,
    ) -> Result<Pulled, RegistryError> {
        let signature = self.signature(reference, digest).await?;
        let at = reference.at_digest(digest);
        let not_bundle = |why: String| {
            RegistryError::Bundle(BundleError::Format(
                PathBuf::from(format!("{reference}@{digest}")),
                why,
            ))
        };
        let (manifest, _) = self
            .client
            .pull_image_manifest(&at, &self.auth)
            .await
            .map_err(|e| RegistryError::Registry(e.to_string()))?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(not_bundle(format!(
                "its config is `{}`, not a bundle manifest",
                manifest.config.media_type
            )));
        }
        let config_size =
            declared(manifest.config.size, archive::MAX_MANIFEST).ok_or_else(|| {
                not_bundle("its manifest is larger than a bundle manifest can be".into())
            })?;
        let mut config = Capped::new(Vec::new(), config_size);
        self.client
            .pull_blob(&at, &manifest.config, &mut config)
            .await
            .map_err(|e| RegistryError::Registry(e.to_string()))?;
        let bundle_digest = Digest::of(&config.inner);
        let key_id = signature
            .verify(&bundle_digest, trusted)
            .map_err(|source| RegistryError::Signature {
                reference: reference.to_string(),
                source,
            })?;

        let [layer] = manifest.layers.as_slice() else {
            return Err(not_bundle(format!(
                "the artifact has {} layers, a bundle has one",
                manifest.layers.len()
            )));
        };
        if layer.media_type != BUNDLE_MEDIA_TYPE {
            return Err(not_bundle(format!(
                "its layer is `{}`, not a bundle",
                layer.media_type
            )));
        }
        let size = declared(layer.size, archive::MAX_UNPACKED)
            .ok_or_else(|| not_bundle(format!("its layer declares {} bytes", layer.size)))?;
        let tmp = {
            let mut name = out.as_os_str().to_os_string();
            name.push(".part");
            PathBuf::from(name)
        };
        let io = |e| RegistryError::Io(tmp.clone(), e);
        let file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut capped = Capped::new(tokio::io::BufWriter::new(file), size);
        let pulled = self.client.pull_blob(&at, layer, &mut capped).await;
        let flushed = tokio::io::AsyncWriteExt::flush(&mut capped.inner).await;
        if let Err(e) = pulled {
            let _ = std::fs::remove_file(&tmp);
            return Err(RegistryError::Registry(e.to_string()));
        }
        flushed.map_err(io)?;
        drop(capped);
        let checked_path = tmp.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let (_, in_layer, _) = archive::read_manifest(&checked_path)?;
            if in_layer != bundle_digest {
                return Err(BundleError::Mismatch {
                    path: checked_path.clone(),
                    file: crate::manifest::MANIFEST_PATH.to_owned(),
                    why: format!(
                        "{in_layer}, but the artifact's signed manifest is {bundle_digest}"
                    ),
                });
            }
            archive::verify(&checked_path)
        })
        .await
        .unwrap_or_else(|e| Err(BundleError::Input(format!("the check failed: {e}"))));
        let bundle = match checked {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        std::fs::rename(&tmp, out).map_err(|e| RegistryError::Io(out.to_owned(), e))?;
        Ok(Pulled {
            bundle,
            signature,
            key_id,
            artifact_digest: digest.to_owned(),
        })
    }

    /// The digest of the signature artifact of the artifact at `digest`;
    /// `None` when there is none.
    pub async fn signature_digest(
        &self,
        reference: &BundleRef,
        digest: &str,
    ) -> Result<Option<String>, RegistryError> {
        match self
            .client
            .fetch_manifest_digest(&reference.signature_tag(digest), &self.auth)
            .await
        {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::Registry(e.to_string())),
        }
    }

    async fn signature(
        &self,
        reference: &BundleRef,
        digest: &str,
    ) -> Result<Signature, RegistryError> {
        let tag = reference.signature_tag(digest);
        let image = match self
            .client
            .pull(&tag, &self.auth, vec![SIGNATURE_MEDIA_TYPE])
            .await
        {
            Ok(image) => image,
            Err(e) if is_not_found(&e) => {
                return Err(RegistryError::Unsigned(
                    format!("{reference}@{digest}"),
                    signature_tag(digest),
                ));
            }
            Err(e) => return Err(RegistryError::Registry(e.to_string())),
        };
        let layer = image.layers.first().ok_or_else(|| {
            RegistryError::Unsigned(format!("{reference}@{digest}"), signature_tag(digest))
        })?;
        Signature::parse(&layer.data).map_err(|source| RegistryError::Signature {
            reference: reference.to_string(),
            source,
        })
    }
}

/// A descriptor's size, if it is one this client accepts (0..=`most`).
fn declared(size: i64, most: u64) -> Option<u64> {
    u64::try_from(size).ok().filter(|s| *s <= most)
}

/// A writer that refuses more than `left` bytes: a registry cannot send more
/// than the descriptor it was asked for declared.
struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W> Capped<W> {
    fn new(inner: W, most: u64) -> Self {
        Self { inner, left: most }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<W> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() as u64 > this.left {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the registry sent more bytes than the descriptor declares",
            )));
        }
        let written = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.left = this.left.saturating_sub(written as u64);
        std::task::Poll::Ready(Ok(written))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A bundle pulled and checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub bundle: Bundle,
    pub signature: Signature,
    /// The id of the trusted key that signed it.
    pub key_id: String,
    /// The artifact's manifest digest in the registry.
    pub artifact_digest: String,
}

impl Signature {
    /// Checks only that this signs `bundle` (no key): what `push` checks
    /// before it uploads a signature that could never verify.
    fn verify_digest(&self, bundle: &Bundle) -> Result<(), KeyError> {
        if self.bundle_digest == bundle.digest.to_string() {
            Ok(())
        } else {
            Err(KeyError::SignedOther {
                signed: self.bundle_digest.clone(),
                actual: bundle.digest.to_string(),
            })
        }
    }
}

fn is_not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(_) => true,
        E::ServerError { code, .. } => *code == 404,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| format!("{:?}", e.code).contains("ManifestUnknown")),
        _ => e.to_string().contains("404") || e.to_string().contains("MANIFEST_UNKNOWN"),
    }
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Flags first, then the Docker configuration, then anonymous.
fn auth_for(host: &str, credentials: &Credentials, docker_config: Option<&Path>) -> RegistryAuth {
    if let Some(token) = &credentials.token {
        return RegistryAuth::Bearer(token.clone());
    }
    if let (Some(user), Some(password)) = (&credentials.username, &credentials.password) {
        return RegistryAuth::Basic(user.clone(), password.clone());
    }
    docker_config
        .and_then(|path| docker_config_auth(path, host))
        .unwrap_or(RegistryAuth::Anonymous)
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json")),
    }
}

fn docker_config_auth(path: &Path, host: &str) -> Option<RegistryAuth> {
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths
        .iter()
        .find(|(k, _)| {
            let k = k
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            k.trim_end_matches('/') == host
        })?
        .1;
    if let Some(token) = entry.get("registrytoken").and_then(|v| v.as_str()) {
        return Some(RegistryAuth::Bearer(token.to_owned()));
    }
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
}

/// rustls needs one process-wide crypto provider (ring).
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_loopback_and_signature_tags() {
        let r: BundleRef = "oci://127.0.0.1:5000/portcullis/bundle:v1".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.reference.repository(), "portcullis/bundle");
        assert_eq!(r.reference.tag(), Some("v1"));
        assert!("127.0.0.1:5000/x:v1".parse::<BundleRef>().is_err());
        assert!("oci://host".parse::<BundleRef>().is_err());
        for (host, loopback) in [
            ("127.0.0.1:5000", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("registry.example.com", false),
            ("10.0.0.1:5000", false),
        ] {
            assert_eq!(is_loopback(host), loopback, "{host}");
        }
        assert_eq!(signature_tag("sha256:ab12"), "sha256-ab12.sig");
    }

    #[test]
    fn docker_config_credentials_are_used_for_their_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("ana:s3cret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths": {{"https://registry.example.com": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let config = dir.path().join("config.json");
        let none = Credentials::default();
        assert!(matches!(
            auth_for("registry.example.com", &none, Some(&config)),
            RegistryAuth::Basic(u, p) if u == "ana" && p == "s3cret"
        ));
        assert!(matches!(
            auth_for("other.example.com", &none, Some(&config)),
            RegistryAuth::Anonymous
        ));
        let flags = Credentials {
            token: Some("t".into()),
            ..Credentials::default()
        };
        assert!(matches!(
            auth_for("registry.example.com", &flags, Some(&config)),
            RegistryAuth::Bearer(t) if t == "t"
        ));
    }
}
