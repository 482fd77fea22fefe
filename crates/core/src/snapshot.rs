//! The snapshot: everything a decision needs, loaded, validated and hashed together.
//!
//! A snapshot is immutable. It is built all-or-nothing from a [`Sources`]
//! description (read every file, parse, validate, hash) and either comes out
//! whole or not at all, with every problem as a located [`Diagnostic`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cedar_policy::Schema;

use crate::cases::LocatedCase;
use crate::cedar_input::{self, CedarNames};
use crate::designation::{self, Designated};
use crate::diagnostic::Diagnostic;
use crate::enrich::EnrichSettings;
use crate::files;
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
    /// Enrichment settings (the screening threshold), part of the revision.
    pub settings: EnrichSettings,
    /// Serve a policy directory with no policy at all (every request is then
    /// denied: no permit applies). Off by default: an empty directory is far
    /// more often a mistake (a missing volume, a failed checkout) than intended.
    pub allow_empty: bool,
    /// A file is read only once it has not been modified for this long (and is
    /// unchanged across the read), so a file being written is never read half
    /// done. Zero for one-off commands; the watch debounce when serving.
    pub settle: Duration,
    /// The revision to report instead of the content hash: a bundle's digest,
    /// so that every answer names the bundle it was decided on.
    pub label: Option<Arc<str>>,
}

impl Sources {
    /// The policy directory and geo databases, with default settings.
    pub fn new(policies: impl Into<PathBuf>, geo: Vec<PathBuf>) -> Self {
        Self {
            policies: policies.into(),
            geo,
            settings: EnrichSettings::default(),
            allow_empty: false,
            settle: Duration::ZERO,
            label: None,
        }
    }
}

/// The stack a snapshot is built on. Cedar parses a policy by recursion, one
/// level per operator of a chain, before its nesting can be measured; the size
/// limit (`policies::limits`) bounds that: the deepest policy it allows (64 KiB
/// of `+1`, 32,000 levels) parses on 8 MiB. This is eight times that (address
/// space reserved, touched only as deep as a build goes).
pub const BUILD_STACK: usize = 64 * 1024 * 1024;

/// The subdirectory of the policy directory holding designations.
pub const DESIGNATIONS_DIR: &str = "designations";

/// Building a snapshot failed; nothing was published.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {}", summary(.diagnostics))]
pub struct BuildError {
    /// Every problem found, each with its file, line and column.
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
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GeoInfo {
    /// `path`: the database file.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// `database_type`: as its metadata names it (`GeoLite2-Country`, …).
    pub database_type: String,
    /// `layout`: what it tells, `+`-joined: `country`, `anonymous-ip`, `asn`.
    pub layout: String,
    /// `build_epoch`: when it was built, in seconds since the Unix epoch.
    pub build_epoch: u64,
}

/// One immutable, validated set of policies, designations and geo databases.
#[derive(Debug)]
pub struct Snapshot {
    /// Content hash over every input file; changes when any input changes.
    pub revision: Arc<str>,
    /// When it was built.
    pub loaded_at: SystemTime,
    /// What it was built from; a reload builds from the same.
    pub sources: Sources,
    /// The validated policy set.
    pub policies: LoadedPolicies,
    /// Shared with the previous snapshot when the designation files are unchanged.
    pub designations: Arc<ScreeningIndex>,
    /// Content hash of the designation files alone (what `designations` was built from).
    pub(crate) designations_digest: blake3::Hash,
    /// The geo databases, in the order they are consulted.
    pub geo: GeoSet,
    pub(crate) names: CedarNames,
    /// How many policy test cases passed when the snapshot was built.
    pub test_cases: usize,
    /// The policy test cases (`tests/*.json`), read in the same pass as the
    /// files they test.
    pub cases: Vec<LocatedCase>,
    /// The built-in Cedar schema the policies were validated against.
    pub schema: Schema,
}

impl Snapshot {
    /// Reads, validates and hashes every input, without running test cases.
    pub fn load(sources: Sources) -> Result<Self, BuildError> {
        on_build_stack(|| Self::load_reusing(sources, None))
    }

    /// Reads every input (reusing `previous`'s geo databases and screening
    /// index where their files are unchanged), validates it and hashes it into
    /// the revision; every problem is a diagnostic.
    pub(crate) fn load_reusing(
        sources: Sources,
        previous: Option<&Snapshot>,
    ) -> Result<Self, BuildError> {
        let schema = cedar_input::schema().map_err(|e| one(&sources.policies, e))?;
        let names = CedarNames::new().map_err(|e| one(&sources.policies, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut diagnostics = Vec::new();
        let inputs = Inputs::read(&sources, &mut hasher)?;
        let mut collect = |mut d: Vec<Diagnostic>| diagnostics.append(&mut d);
        let cases = crate::cases::load_sources(&inputs.cases).map_err(&mut collect);
        let policies = policies::load_sources(&inputs.policies, &schema).map_err(&mut collect);
        let designations_digest = digest(&sources.policies, &inputs.designations);
        let designations = Designations::load(&inputs.designations, designations_digest, previous)
            .map_err(&mut collect);
        let geo = open_geo_set(&sources, previous, &mut hasher, &mut diagnostics);
        let (Ok(policies), Ok(designations), Some(geo), Ok(cases)) =
            (policies, designations, geo, cases)
        else {
            return Err(diagnostics.into());
        };
        if policies.is_empty() && !sources.allow_empty {
            return Err(vec![empty_policy_dir(
                &sources.policies,
                "the policy files hold no policy",
            )]
            .into());
        }
        hasher.update(&[sources.settings.screening_threshold]);
        let revision = hasher.finalize().to_hex();
        Ok(Self {
            revision: sources
                .label
                .clone()
                .unwrap_or_else(|| Arc::from(revision.get(..16).unwrap_or(revision.as_str()))),
            loaded_at: SystemTime::now(),
            sources,
            policies,
            designations: designations.index(),
            designations_digest,
            geo,
            names,
            schema,
            test_cases: 0,
            cases,
        })
    }

    /// The content hash of the designation files (hex): equal for the same lists.
    pub fn designations_digest(&self) -> String {
        self.designations_digest.to_hex().to_string()
    }

    /// The geo databases in force, as `/v1/status` reports them.
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

/// The text of every input file, read in one pass (policies and designations
/// hashed into the revision as they are read).
struct Inputs {
    policies: Vec<(PathBuf, String)>,
    designations: Vec<(PathBuf, String)>,
    cases: Vec<(PathBuf, String)>,
}

impl Inputs {
    fn read(sources: &Sources, hasher: &mut blake3::Hasher) -> Result<Self, BuildError> {
        let settle = sources.settle;
        let policies = read_all(&sources.policies, "cedar", settle, Some(&mut *hasher))?;
        if policies.is_empty() && !sources.allow_empty {
            return Err(vec![empty_policy_dir(
                &sources.policies,
                "no `*.cedar` policy files",
            )]
            .into());
        }
        let designations = read_optional_dir(
            &sources.policies.join(DESIGNATIONS_DIR),
            "jsonl",
            settle,
            Some(hasher),
        )?;
        let cases = read_optional_dir(
            &sources.policies.join(crate::cases::TESTS_DIR),
            "json",
            settle,
            None,
        )?;
        Ok(Self {
            policies,
            designations,
            cases,
        })
    }
}

/// The designations of a snapshot: the previous snapshot's index when the
/// files are the same, else the parsed records (indexed only once every other
/// input is valid).
enum Designations {
    Reused(Arc<ScreeningIndex>),
    Parsed(Vec<Designated>),
}

impl Designations {
    fn load(
        files: &[(PathBuf, String)],
        digest: blake3::Hash,
        previous: Option<&Snapshot>,
    ) -> Result<Self, Vec<Diagnostic>> {
        match previous.filter(|p| p.designations_digest == digest) {
            Some(p) => Ok(Self::Reused(p.designations.clone())),
            None => designation::load_sources(files).map(Self::Parsed),
        }
    }

    fn index(self) -> Arc<ScreeningIndex> {
        match self {
            Self::Reused(index) => index,
            Self::Parsed(entries) => Arc::new(ScreeningIndex::build(entries)),
        }
    }
}

/// Opens every geo database (reusing `previous`'s unchanged ones) and hashes
/// each into the revision; `None` if any cannot be opened (its diagnostic added).
fn open_geo_set(
    sources: &Sources,
    previous: Option<&Snapshot>,
    hasher: &mut blake3::Hasher,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<GeoSet> {
    let mut geo = Vec::with_capacity(sources.geo.len());
    for path in &sources.geo {
        match open_geo(path, previous, sources.settle) {
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
    (geo.len() == sources.geo.len()).then(|| GeoSet::from_databases(geo))
}

fn one(path: &Path, e: impl std::fmt::Display) -> BuildError {
    vec![Diagnostic::file(path, e.to_string())].into()
}

fn empty_policy_dir(dir: &Path, what: &str) -> Diagnostic {
    Diagnostic::file(dir, format!("{what}: every request would be denied"))
        .with_help("serving no policy at all needs `--allow-empty`")
}

/// Runs `f` on a thread with [`BUILD_STACK`] (reserved address space, touched
/// only as deep as the build goes), at the lowest scheduling priority: on a
/// loaded machine decisions get the CPU first and a build only slows itself.
pub(crate) fn on_build_stack<T: Send>(
    f: impl FnOnce() -> Result<T, BuildError> + Send,
) -> Result<T, BuildError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("snapshot-build".into())
            .stack_size(BUILD_STACK)
            .spawn_scoped(scope, || {
                let lowest = thread_priority::ThreadPriority::Min;
                if let Err(e) = thread_priority::set_current_thread_priority(lowest) {
                    tracing::debug!(error = ?e, "cannot lower the snapshot build thread's priority");
                }
                f()
            });
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(one(
                    Path::new(""),
                    "the snapshot build failed unexpectedly (panic); see the log",
                ))
            }),
            Err(e) => Err(one(
                Path::new(""),
                format_args!("cannot start the snapshot build thread: {e}"),
            )),
        }
    })
}

/// Lists `dir/*.<ext>` (not hidden, symbolic links followed), sorted by name.
pub fn list_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, Diagnostic> {
    files::list(dir, ext).map_err(|e| Diagnostic::file(&e.path, e.error.to_string()))
}

/// Reads every `dir/*.<ext>` once stable (see `files`) and feeds name and
/// content to the revision hash, if one is given.
fn read_all(
    dir: &Path,
    ext: &str,
    settle: Duration,
    mut hasher: Option<&mut blake3::Hasher>,
) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let files = list_files(dir, ext).map_err(|d| BuildError::from(vec![d]))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let text = files::read_stable_text(&file, settle).map_err(|e| one(&e.path, &e.error))?;
        if let Some(hasher) = hasher.as_deref_mut() {
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
        }
        out.push((file, text));
    }
    Ok(out)
}

/// [`read_all`] of a subdirectory that may be absent (then: no files).
fn read_optional_dir(
    dir: &Path,
    ext: &str,
    settle: Duration,
    hasher: Option<&mut blake3::Hasher>,
) -> Result<Vec<(PathBuf, String)>, BuildError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        _ => read_all(dir, ext, settle, hasher),
    }
}

/// A content hash of files as [`read_all`] returned them (names and contents).
/// The designation files' digest: each file's path within the policy
/// directory and its text. Two directories with the same list (the one in
/// force and a candidate that changes only policies) share one index; where
/// a designation came from is used only while loading.
fn digest(dir: &Path, files: &[(PathBuf, String)]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for (path, text) in files {
        let path = path.strip_prefix(dir).unwrap_or(path);
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
fn open_geo(
    path: &Path,
    previous: Option<&Snapshot>,
    settle: Duration,
) -> Result<Arc<GeoDb>, Diagnostic> {
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
    // Read once, when stable: the bytes hashed are the bytes served (a file
    // written in place meanwhile is seen by the next reload).
    let bytes = files::read_stable(path, settle)
        .map_err(|e| Diagnostic::file(path, format!("cannot read geo database: {}", e.error)))?;
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
