//! Bundles: everything a snapshot is built from — policies, designations,
//! policy test cases and geo databases — in one content-addressed file
//! (tar + zstd) with a manifest of every file's SHA-256, a detached Ed25519
//! signature over the manifest's digest, and the OCI registry transport that
//! ships both (the bundle as an artifact, the signature as a second artifact
//! tagged `sha256-<manifest digest>.sig`, as Cosign does).
//!
//! The trust chain: a trusted key signs the *bundle digest* (the SHA-256 of
//! `manifest.json`); the manifest holds each file's SHA-256; a reader checks
//! the signature, then every file against the manifest, and refuses a file
//! the manifest does not list. Nothing in a bundle is used before all of that
//! holds.

pub mod archive;
pub mod keys;
pub mod manifest;
pub mod registry;

pub use archive::{Bundle, BundleError};
pub use keys::{KeyError, PublicKey, Signature, SigningKey};
pub use manifest::{Digest, Manifest};
