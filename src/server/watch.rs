//! Reloads on file changes: the policy directory and each geo database's
//! directory are watched, and a reload is asked for once changes settle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use portcullis_core::snapshot::Sources;

use crate::server::reload::ReloadRequest;
use crate::server::state::AppState;

/// Watches the policy directory (recursively) and the directory of each geo
/// database, and reloads once changes have settled for `debounce`. Editors that
/// save by rename, files created, deleted or written in several chunks all end in
/// a reload after the last write; reading waits for files to be stable (see
/// `files`). Reading files (as a reload does) is not a change. A ConfigMap-style
/// directory, whose files are links into `..data`, reloads when `..data` is
/// swapped: that is a change inside the policy directory, or, for a geo
/// database given by such a link, a `..`-entry beside it.
/// Keep the returned watcher alive.
pub fn watch(
    state: Arc<AppState>,
    debounce: std::time::Duration,
) -> Result<RecommendedWatcher, notify::Error> {
    let sources = state.snapshot().sources.clone();
    watch_sources(&sources, debounce, move || {
        state.request_reload(ReloadRequest {
            trigger: "watch",
            force: false,
        });
    })
}

/// Watches what `sources` reads, as [`watch`] describes, and calls
/// `on_change` once changes have settled for `debounce` (on the runtime).
pub fn watch_sources(
    sources: &Sources,
    debounce: std::time::Duration,
    on_change: impl Fn() + Send + 'static,
) -> Result<RecommendedWatcher, notify::Error> {
    let policy_dir =
        std::fs::canonicalize(&sources.policies).unwrap_or_else(|_| sources.policies.clone());
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    // Each geo file as given (its directory may hold `..data`) and as resolved.
    let geo_given: Vec<PathBuf> = sources.geo.iter().map(|g| absolute(g)).collect();
    let geo_files: Vec<PathBuf> = sources
        .geo
        .iter()
        .map(|g| std::fs::canonicalize(g).unwrap_or_else(|_| g.clone()))
        .collect();
    let relevant = {
        let policy_dir = policy_dir.clone();
        let policy_given = absolute(&sources.policies);
        let geo_files = geo_files.clone();
        let geo_given = geo_given.clone();
        move |p: &Path| {
            let swapped_beside = |g: &PathBuf| {
                p.parent() == g.parent()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".."))
            };
            p.starts_with(&policy_dir)
                || p.starts_with(&policy_given)
                || geo_files.iter().any(|g| g == p)
                || geo_given.iter().any(|g| g == p || swapped_beside(g))
        }
    };

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if e.kind.is_access() || e.kind.is_other() => {}
            Ok(e) if e.paths.iter().any(|p| relevant(p)) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        })?;
    watcher.watch(&policy_dir, RecursiveMode::Recursive)?;
    let mut geo_dirs: Vec<PathBuf> = geo_files
        .iter()
        .chain(&geo_given)
        .filter_map(|g| g.parent().map(Path::to_owned))
        .filter(|d| !d.starts_with(&policy_dir))
        .collect();
    geo_dirs.sort();
    geo_dirs.dedup();
    for dir in &geo_dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }

    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until no change has arrived for `debounce`.
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_elapsed) => break,
                }
            }
            on_change();
        }
    });
    Ok(watcher)
}
