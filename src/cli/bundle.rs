//! `portcullis bundle …`: build, sign, verify and ship snapshot bundles.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use portcullis_bundle::keys::{self, PublicKey, SignBundle as _, Signature, SigningKey};
use portcullis_bundle::registry::{BundleRef, Credentials, Registry, RegistryError};
use portcullis_bundle::{BundleError, archive};
use portcullis_core::snapshot::{Snapshot, Sources};

use super::args::{EnrichArgs, Geo, geo_files};
use super::exit;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Make an Ed25519 signing key (`KEY`, mode 0600) and its public key (`KEY.pub`).
    Keygen {
        /// Where the private key goes; never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a policy directory (policies, designations, test cases, geo
    /// databases, as `serve` does) and write its bundle.
    Build(BuildArgs),
    /// Print a bundle's manifest and digest.
    Inspect { file: PathBuf },
    /// Sign a bundle: writes `FILE.sig`, a detached signature over its digest.
    Sign {
        file: PathBuf,
        /// The private key (`bundle keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a bundle's signature (`FILE.sig`) by a trusted key and every
    /// file against its manifest.
    Verify {
        file: PathBuf,
        /// A trusted public key; repeat for several (key rotation).
        #[arg(long = "trust-key", value_name = "PUB", required = true)]
        trust_key: Vec<PathBuf>,
    },
    /// Push a bundle (and `FILE.sig`, if present) to an OCI registry.
    Push {
        file: PathBuf,
        /// `oci://HOST[:PORT]/REPOSITORY:TAG`.
        reference: String,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// Pull a bundle from an OCI registry, check its signature and files,
    /// and write it (and `FILE.sig`).
    Pull {
        /// `oci://HOST[:PORT]/REPOSITORY:TAG` (or `@sha256:…`).
        reference: String,
        /// A trusted public key; repeat for several.
        #[arg(long = "trust-key", value_name = "PUB", required = true)]
        trust_key: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The policy directory.
    pub dir: PathBuf,
    /// A geo database, in the order consulted; repeat for several. Default:
    /// every `*.mmdb` in `./geo-data`.
    #[arg(long = "geo", value_name = "FILE")]
    pub geo: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub enrich: EnrichArgs,
    /// Accept a policy directory with no policy at all.
    #[arg(long)]
    pub allow_empty: bool,
}

/// Registry credentials; without them, the Docker configuration's, else none.
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    #[arg(long, env = "PORTCULLIS_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,
    #[arg(long, env = "PORTCULLIS_REGISTRY_PASSWORD", hide_env_values = true)]
    pub registry_password: Option<String>,
    /// A bearer token (instead of a username and password).
    #[arg(long, env = "PORTCULLIS_REGISTRY_TOKEN", hide_env_values = true)]
    pub registry_token: Option<String>,
}

impl CredentialArgs {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            username: self.registry_username.clone(),
            password: self.registry_password.clone(),
            token: self.registry_token.clone(),
        }
    }
}

pub fn run(command: BundleCommand) -> anyhow::Result<u8> {
    match command {
        BundleCommand::Keygen { out } => {
            let key = SigningKey::generate()?;
            let public = key.write(&out)?;
            println!(
                "key {} written to {} (public key {})",
                key.public().id(),
                out.display(),
                public.display()
            );
            Ok(exit::OK)
        }
        BundleCommand::Build(args) => build(&args),
        BundleCommand::Inspect { file } => {
            let (manifest, digest, _) = archive::read_manifest(&file)?;
            let mut shown = serde_json::to_value(&manifest)?;
            if let Some(object) = shown.as_object_mut() {
                object.insert("digest".into(), digest.to_string().into());
                let sig = keys::signature_path(&file);
                if let Ok(bytes) = std::fs::read(&sig) {
                    let signed = Signature::parse(&bytes).map(|s| s.key_id);
                    object.insert(
                        "signed_by".into(),
                        signed.unwrap_or_else(|e| format!("unreadable: {e}")).into(),
                    );
                }
            }
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(exit::OK)
        }
        BundleCommand::Sign { file, key } => {
            let key = SigningKey::read(&key)?;
            let bundle = match archive::verify(&file) {
                Ok(b) => b,
                Err(e) => return refused(&e),
            };
            let signature = key.sign(&bundle.digest);
            let out = keys::signature_path(&file);
            std::fs::write(&out, signature.to_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{} signed by key {} ({})",
                bundle.digest,
                signature.key_id,
                out.display()
            );
            Ok(exit::OK)
        }
        BundleCommand::Verify { file, trust_key } => {
            let trusted = read_keys(&trust_key)?;
            let sig_path = keys::signature_path(&file);
            let bytes = match std::fs::read(&sig_path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("refused: not signed ({}: {e})", sig_path.display());
                    return Ok(exit::BUNDLE_REFUSED);
                }
            };
            let checked = (|| -> Result<(String, portcullis_bundle::Bundle), anyhow::Error> {
                let (_, digest, _) = archive::read_manifest(&file)?;
                let key = Signature::parse(&bytes)?.verify(&digest, &trusted)?;
                Ok((key, archive::verify(&file)?))
            })();
            match checked {
                Ok((key, bundle)) => {
                    println!(
                        "{}: signed by trusted key {key}; {} files match the manifest (revision {})",
                        bundle.digest,
                        bundle.manifest.files.len(),
                        bundle.manifest.revision
                    );
                    Ok(exit::OK)
                }
                Err(e) => {
                    eprintln!("refused: {e:#}");
                    Ok(exit::BUNDLE_REFUSED)
                }
            }
        }
        BundleCommand::Push {
            file,
            reference,
            credentials,
        } => {
            let reference: BundleRef = reference.parse()?;
            let sig_path = keys::signature_path(&file);
            let signature = match std::fs::read(&sig_path) {
                Ok(bytes) => Some(Signature::parse(&bytes)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!(
                        "warning: {} not found: pushing an unsigned bundle, which replicas will refuse",
                        sig_path.display()
                    );
                    None
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", sig_path.display()));
                }
            };
            let registry = Registry::new(&reference, &credentials.credentials());
            let digest = runtime()?.block_on(registry.push(&file, signature.as_ref(), &reference));
            match digest {
                Ok(digest) => {
                    println!(
                        "pushed {reference} ({digest}){}",
                        if signature.is_some() { ", signed" } else { "" }
                    );
                    Ok(exit::OK)
                }
                Err(RegistryError::Bundle(e)) => refused(&e),
                Err(e) => Err(e.into()),
            }
        }
        BundleCommand::Pull {
            reference,
            trust_key,
            out,
            credentials,
        } => {
            let trusted = read_keys(&trust_key)?;
            let reference: BundleRef = reference.parse()?;
            let registry = Registry::new(&reference, &credentials.credentials());
            let pulled = runtime()?.block_on(async {
                let digest = registry.digest(&reference).await?;
                registry.pull(&reference, &digest, &trusted, &out).await
            });
            match pulled {
                Ok(pulled) => {
                    let sig = keys::signature_path(&out);
                    std::fs::write(&sig, pulled.signature.to_bytes())
                        .with_context(|| format!("cannot write {}", sig.display()))?;
                    println!(
                        "pulled {reference} ({}) to {}: bundle {} signed by trusted key {}",
                        pulled.artifact_digest,
                        out.display(),
                        pulled.bundle.digest,
                        pulled.key_id
                    );
                    Ok(exit::OK)
                }
                Err(
                    e @ (RegistryError::Registry(_)
                    | RegistryError::Io(..)
                    | RegistryError::Reference(..)),
                ) => Err(e.into()),
                Err(e) => {
                    eprintln!("refused: {e}");
                    Ok(exit::BUNDLE_REFUSED)
                }
            }
        }
    }
}

fn build(args: &BuildArgs) -> anyhow::Result<u8> {
    let geo = geo_files(&args.geo, Geo::Required)?;
    let sources = Sources {
        allow_empty: args.allow_empty,
        settings: args.enrich.settings(),
        ..Sources::new(args.dir.clone(), geo.clone())
    };
    // What a replica would refuse is never bundled.
    if let Err(e) = Snapshot::build(sources) {
        super::diagnostics::report(&e.diagnostics);
        eprintln!("refusing to bundle: the snapshot is invalid");
        return Ok(exit::INVALID);
    }
    let started = std::time::Instant::now();
    let bundle = portcullis_bundle::archive::build(&args.dir, &geo, &args.out)?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} files, {} bytes unpacked, {size} bytes written in {:.2?} (revision {}, digest {})",
        args.out.display(),
        bundle.manifest.files.len(),
        bundle.manifest.files.iter().map(|f| f.size).sum::<u64>(),
        started.elapsed(),
        bundle.manifest.revision,
        bundle.digest
    );
    Ok(exit::OK)
}

fn refused(e: &BundleError) -> anyhow::Result<u8> {
    eprintln!("refused: {e}");
    Ok(exit::BUNDLE_REFUSED)
}

pub fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p| PublicKey::read(p).map_err(anyhow::Error::from))
        .collect()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
