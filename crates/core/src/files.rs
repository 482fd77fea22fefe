//! Reading the snapshot's input files: listing a directory with symbolic links
//! followed, and reading a file only once it has stopped changing.
//!
//! Deployments publish files in ways a plain `read_dir` misreads. Kubernetes
//! ConfigMap and Secret volumes hold each file as a symbolic link into `..data`,
//! itself a link swapped atomically on update: links are followed (a dangling
//! one or a loop is a located error, never a silently skipped file). A list
//! rewritten in place is, while being written, a valid shorter list: a file is
//! read only when its size and modification time were the same before and after
//! the read and it had not changed for the settle window before it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a file that keeps changing is tried before giving up.
const MAX_ATTEMPTS: u32 = 40;
/// The pause between two attempts when no settle window is asked for.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Why a directory could not be listed or a file read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("cannot read directory: {0}")]
    ReadDir(#[source] io::Error),
    #[error("symbolic link to `{}`, which does not exist", target.display())]
    Dangling { target: PathBuf },
    #[error("symbolic link loop (too many levels of symbolic links)")]
    Loop,
    #[error("cannot read file: {0}")]
    Read(#[source] io::Error),
    #[error(
        "the file kept changing while it was read ({attempts} attempts); publish it by writing a new file and renaming it over the old one"
    )]
    Unstable { attempts: u32 },
    #[error("not valid UTF-8 text")]
    NotUtf8,
}

/// A problem with one file or directory.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub(crate) struct LocatedError {
    pub path: PathBuf,
    #[source]
    pub error: FileError,
}

fn located(path: &Path, error: FileError) -> LocatedError {
    LocatedError {
        path: path.to_owned(),
        error,
    }
}

/// Lists `dir/*.<ext>`, not hidden, sorted by name. Symbolic links are followed:
/// a link to a regular file counts as that file; a dangling link or a link loop
/// is an error naming the link. Subdirectories are not entered.
pub(crate) fn list(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, LocatedError> {
    let entries = std::fs::read_dir(dir).map_err(|e| located(dir, FileError::ReadDir(e)))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| located(dir, FileError::ReadDir(e)))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || path.extension().is_none_or(|e| e != ext) {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) => return Err(located(&path, link_error(&path, e))),
        }
    }
    files.sort();
    Ok(files)
}

/// What a failed `metadata` (which follows links) means for a listed entry.
fn link_error(path: &Path, e: io::Error) -> FileError {
    const ELOOP: i32 = 40;
    if e.raw_os_error() == Some(ELOOP) {
        return FileError::Loop;
    }
    match (e.kind(), std::fs::read_link(path)) {
        (io::ErrorKind::NotFound, Ok(target)) => FileError::Dangling { target },
        _ => FileError::Read(e),
    }
}

/// What identifies a version of a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(path: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt as _;
                (meta.dev(), meta.ino())
            },
        })
    }

    /// How long ago the file was last modified; a time in the future or unknown
    /// counts as long ago (nothing to wait for).
    fn age(&self, now: SystemTime) -> Duration {
        self.modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::MAX)
    }
}

/// Reads a whole file once it is stable: unchanged (size, modification time,
/// inode) across the read, and not modified within `settle` before it. A file
/// still being written is waited for and read again, up to a bound.
pub(crate) fn read_stable(path: &Path, settle: Duration) -> Result<Vec<u8>, LocatedError> {
    let err = |e: io::Error| located(path, FileError::Read(e));
    for _ in 0..MAX_ATTEMPTS {
        let before = Stamp::of(path).map_err(err)?;
        let age = before.age(SystemTime::now());
        if age < settle {
            std::thread::sleep(settle.saturating_sub(age));
            continue;
        }
        let bytes = std::fs::read(path).map_err(err)?;
        let after = Stamp::of(path).map_err(err)?;
        if before == after && u64::try_from(bytes.len()).is_ok_and(|n| n == after.len) {
            return Ok(bytes);
        }
        std::thread::sleep(settle.max(RETRY_PAUSE));
    }
    Err(located(
        path,
        FileError::Unstable {
            attempts: MAX_ATTEMPTS,
        },
    ))
}

/// [`read_stable`], as UTF-8 text.
pub(crate) fn read_stable_text(path: &Path, settle: Duration) -> Result<String, LocatedError> {
    String::from_utf8(read_stable(path, settle)?).map_err(|_| located(path, FileError::NotUtf8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_broken_ones_named() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..data")).unwrap();
        std::fs::write(d.join("..data/a.cedar"), "x").unwrap();
        symlink("..data/a.cedar", d.join("a.cedar")).unwrap();
        std::fs::write(d.join("b.cedar"), "y").unwrap();
        let listed = list(d, "cedar").unwrap();
        assert_eq!(listed, [d.join("a.cedar"), d.join("b.cedar")]);

        symlink("..data/gone.cedar", d.join("c.cedar")).unwrap();
        let e = list(d, "cedar").unwrap_err();
        assert_eq!(e.path, d.join("c.cedar"));
        assert!(matches!(e.error, FileError::Dangling { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        std::fs::remove_file(d.join("c.cedar")).unwrap();

        symlink("loop2.cedar", d.join("loop1.cedar")).unwrap();
        symlink("loop1.cedar", d.join("loop2.cedar")).unwrap();
        let e = list(d, "cedar").unwrap_err();
        assert!(matches!(e.error, FileError::Loop), "{e}");
    }

    #[test]
    fn a_settled_file_is_read_and_a_fresh_one_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("l.jsonl");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(read_stable(&f, Duration::ZERO).unwrap(), b"abc");
        // Just written: read only once it has been quiet for the window.
        std::fs::write(&f, "abcd").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            read_stable(&f, Duration::from_millis(200)).unwrap(),
            b"abcd"
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}
