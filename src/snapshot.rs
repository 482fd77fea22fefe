//! The snapshot: everything a decision needs, loaded, validated and hashed together.
//!
//! A snapshot is immutable. It is built all-or-nothing from a [`Sources`]
//! description (read every file, parse, validate, hash) and either comes out
//! whole or not at all, with every problem as a located [`Diagnostic`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::Schema;

use crate::cedar_input::{self, CedarNames};
use crate::designation;
use crate::diagnostic::Diagnostic;
use crate::enrich::EnrichSettings;
use crate::geo::{FileIdentity, GeoDb, GeoSet};
use crate::policies::{self, LoadedPolicies};
use crate::screening::ScreeningIndex;

/// Where a snapshot comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The policy directory: `*.cedar`, and `designations/*.jsonl`.
    pub policies: PathBuf,
    /// Geo databases, consulted in order.
    pub geo: Vec<PathBuf>,
    pub settings: EnrichSettings,
}

/// The subdirectory of the policy directory holding designations.
pub const DESIGNATIONS_DIR: &str = "designations";

/// Building a snapshot failed; nothing was published.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {}", summary(.diagnostics))]
pub struct BuildError {
    pub diagnostics: Vec<Diagnostic>,
}

fn summary(d: &[Diagnostic]) -> String {
    match d {
        [one] => one.to_string(),
        many => format!(
            "{} problems, first: {}",
            many.len(),
            many.first().map(ToString::to_string).unwrap_or_default()
        ),
    }
}

impl From<Vec<Diagnostic>> for BuildError {
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        Self { diagnostics }
    }
}

/// A geo database in force, as reported by `/v1/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeoInfo {
    pub path: PathBuf,
    pub database_type: String,
    pub layout: String,
    pub build_epoch: u64,
}

/// One immutable, validated set of policies, designations and geo databases.
#[derive(Debug)]
pub struct Snapshot {
    /// Content hash over every input file; changes when any input changes.
    pub revision: Arc<str>,
    pub loaded_at: SystemTime,
    pub sources: Sources,
    pub policies: LoadedPolicies,
    /// Shared with the previous snapshot when the designation files are unchanged.
    pub designations: Arc<ScreeningIndex>,
    /// Content hash of the designation files alone (what `designations` was built from).
    designations_digest: blake3::Hash,
    pub geo: GeoSet,
    pub(crate) names: CedarNames,
    /// How many policy test cases passed when the snapshot was built.
    pub test_cases: usize,
    pub schema: Schema,
}

impl Snapshot {
    /// Reads, validates and hashes every input, then runs the policy test cases
    /// (`tests/*.json` in the policy directory): a snapshot whose own cases fail is
    /// refused. Blocking: run it off the async runtime.
    pub fn build(sources: Sources) -> Result<Self, BuildError> {
        Self::rebuild(sources, None)
    }

    /// [`Snapshot::build`], reusing the geo databases of `previous` whose
    /// content has not changed (opening one verifies the whole file), and its
    /// screening index if the designation files are the same: a policy edit
    /// reads and hashes the list but neither parses nor indexes it again, and
    /// never holds two indexes at once.
    pub fn rebuild(sources: Sources, previous: Option<&Snapshot>) -> Result<Self, BuildError> {
        let snapshot = Self::load_reusing(sources, previous)?;
        let cases = crate::cases::load(&snapshot.sources.policies)?;
        let failures = crate::cases::run(&snapshot, &cases);
        if !failures.is_empty() {
            return Err(failures
                .iter()
                .map(|f| f.diagnostic())
                .collect::<Vec<_>>()
                .into());
        }
        Ok(Self {
            test_cases: cases.len(),
            ..snapshot
        })
    }

    /// Reads, validates and hashes every input, without running test cases.
    pub fn load(sources: Sources) -> Result<Self, BuildError> {
        Self::load_reusing(sources, None)
    }

    fn load_reusing(sources: Sources, previous: Option<&Snapshot>) -> Result<Self, BuildError> {
        let schema = cedar_input::schema().map_err(|e| one(&sources.policies, e))?;
        let names = CedarNames::new().map_err(|e| one(&sources.policies, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut diagnostics = Vec::new();

        let policy_files = read_all(&sources.policies, "cedar", &mut hasher)?;
        if policy_files.is_empty() {
            return Err(vec![Diagnostic::file(
                &sources.policies,
                "no `*.cedar` policy files: every request would be denied",
            )]
            .into());
        }
        let designation_dir = sources.policies.join(DESIGNATIONS_DIR);
        let designation_files = match read_all(&designation_dir, "jsonl", &mut hasher) {
            Ok(files) => files,
            Err(e) if !designation_dir.exists() => {
                drop(e);
                Vec::new()
            }
            Err(e) => return Err(e),
        };

        let policies = policies::load_sources(&policy_files, &schema).map_err(|mut d| {
            diagnostics.append(&mut d);
        });
        let designations_digest = digest(&designation_files);
        let reused = previous
            .filter(|p| p.designations_digest == designations_digest)
            .map(|p| p.designations.clone());
        let designations = if reused.is_some() {
            Ok(Vec::new())
        } else {
            designation::load_sources(&designation_files).map_err(|mut d| {
                diagnostics.append(&mut d);
            })
        };
        let mut geo = Vec::with_capacity(sources.geo.len());
        for path in &sources.geo {
            match open_geo(path, previous) {
                Ok(db) => {
                    if let Some(h) = &db.content_hash {
                        hasher.update(b"mmdb\0");
                        hasher.update(h.as_bytes());
                    }
                    geo.push(db);
                }
                Err(d) => diagnostics.push(d),
            }
        }
        let geo = if geo.len() == sources.geo.len() {
            Ok(GeoSet::from_databases(geo))
        } else {
            Err(())
        };
        let (Ok(policies), Ok(designations), Ok(geo)) = (policies, designations, geo) else {
            return Err(diagnostics.into());
        };
        hasher.update(&[sources.settings.screening_threshold]);
        let revision = hasher.finalize().to_hex();
        Ok(Self {
            revision: Arc::from(revision.get(..16).unwrap_or(revision.as_str())),
            loaded_at: SystemTime::now(),
            sources,
            policies,
            designations: reused.unwrap_or_else(|| Arc::new(ScreeningIndex::build(designations))),
            designations_digest,
            geo,
            names,
            schema,
            test_cases: 0,
        })
    }

    pub fn geo_info(&self) -> Vec<GeoInfo> {
        self.geo
            .databases()
            .iter()
            .map(|db| GeoInfo {
                path: db.path().to_owned(),
                database_type: db.database_type().to_owned(),
                layout: db.layout().to_string(),
                build_epoch: db.build_epoch(),
            })
            .collect()
    }
}

fn one(path: &Path, e: impl std::fmt::Display) -> BuildError {
    vec![Diagnostic::file(path, e.to_string())].into()
}

/// Lists `dir/*.<ext>` (regular files, not hidden), sorted by name.
pub fn list_files(dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.extension().is_some_and(|e| e == ext) && entry.file_type()?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every `dir/*.<ext>` and feeds name and content to the revision hash.
fn read_all(
    dir: &Path,
    ext: &str,
    hasher: &mut blake3::Hasher,
) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let files =
        list_files(dir, ext).map_err(|e| one(dir, format_args!("cannot read directory: {e}")))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| one(&file, format_args!("cannot read file: {e}")))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        hasher.update(ext.as_bytes());
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
        out.push((file, text));
    }
    Ok(out)
}

/// A content hash of files as [`read_all`] returned them (names and contents).
fn digest(files: &[(PathBuf, String)]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for (path, text) in files {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(b"\0");
        hasher.update(&(text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize()
}

/// Opens a geo database, or reuses the one `previous` has open if the file's
/// content is the same.
/// A file that is the same inode, size and modification time is taken to be
/// unchanged, and is not read again.
fn open_geo(path: &Path, previous: Option<&Snapshot>) -> Result<Arc<GeoDb>, Diagnostic> {
    let read_err = |e: io::Error| Diagnostic::file(path, format!("cannot read geo database: {e}"));
    let identity = FileIdentity::of(path).map_err(read_err)?;
    let known = previous.and_then(|p| {
        p.geo
            .databases()
            .iter()
            .find(|db| db.path() == path && db.content_hash.is_some())
    });
    if let Some(db) = known.filter(|db| db.identity == Some(identity)) {
        return Ok(db.clone());
    }
    // Read once: the bytes hashed are the bytes served (a file written in place
    // meanwhile is seen by the next reload).
    let bytes = std::fs::read(path).map_err(read_err)?;
    let hash = blake3::hash(&bytes);
    if let Some(db) = known.filter(|db| db.content_hash == Some(hash)) {
        return Ok(db.clone());
    }
    let mut db =
        GeoDb::from_bytes(path, bytes).map_err(|e| Diagnostic::file(path, e.to_string()))?;
    db.content_hash = Some(hash);
    db.identity = Some(identity);
    Ok(Arc::new(db))
}
