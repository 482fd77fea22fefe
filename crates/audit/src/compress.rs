//! Compression of closed record files (`--records-compress`, on by default):
//! `records-….jsonl` becomes `records-….jsonl.zst` (zstd, level 3; about 9×
//! on decision records), on a thread of its own so that the writer never
//! waits for it.
//!
//! Crash-safe in every order: the compressed copy is written beside the file
//! as `….jsonl.zst.tmp`, synced, checked (it decompresses to the same bytes,
//! by SHA-256) and renamed; only then is the original removed. A stop in
//! between leaves the original (a `.tmp` is removed at the next start) or
//! both (readers read the original; the next start finishes the job).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The zstd level: fast, and about 9× on records.
pub const LEVEL: i32 = 3;

/// The background compressor of one writer.
pub(crate) struct Compressor {
    tx: Option<mpsc::Sender<PathBuf>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compressor {
    /// `guard` is held while a file is replaced by its copy (retention holds
    /// it to delete).
    pub fn start(guard: Arc<Mutex<()>>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("records-compress".into())
            .spawn(move || {
                while let Ok(path) = rx.recv() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    match compress_guarded(&path, &guard) {
                        Ok(to) => tracing::debug!(file = %to.display(), "records file compressed"),
                        Err(e) => {
                            tracing::error!(file = %path.display(), error = %e, "records: a closed file could not be compressed; it stays as it is")
                        }
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            stop,
            thread: Some(thread),
        })
    }

    /// Compresses `path` (a closed record file) in the background.
    pub fn send(&self, path: PathBuf) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(path);
        }
    }

    /// Stops after the file being compressed (the rest waits for the next
    /// start) and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `path` with `suffix` appended.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads through, hashing what it reads.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Compresses one file as the module says; the compressed file's path.
pub fn compress(path: &Path) -> std::io::Result<PathBuf> {
    compress_guarded(path, &Mutex::new(()))
}

/// [`compress`], holding `guard` from the check that the file is still
/// there to the removal of the original.
fn compress_guarded(path: &Path, guard: &Mutex<()>) -> std::io::Result<PathBuf> {
    let zst = with_suffix(path, ".zst");
    let tmp = with_suffix(path, ".zst.tmp");
    let mut source = Hashing {
        inner: std::io::BufReader::new(File::open(path)?),
        hash: Sha256::new(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let mut encoder = zstd::stream::write::Encoder::new(options.open(&tmp)?, LEVEL)?;
    std::io::copy(&mut source, &mut encoder)?;
    let mut out = encoder.finish()?;
    out.flush()?;
    out.sync_all()?;
    let mut check = Hashing {
        inner: zstd::stream::read::Decoder::new(File::open(&tmp)?)?,
        hash: Sha256::new(),
    };
    std::io::copy(&mut check, &mut std::io::sink())?;
    if check.hash.finalize() != source.hash.finalize() {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::other(
            "the compressed copy does not decompress to the file",
        ));
    }
    let _held = guard
        .lock()
        .map_err(|_| std::io::Error::other("a records thread failed"))?;
    if !path.exists() {
        // Deleted (by retention) while it was being compressed.
        std::fs::remove_file(&tmp)?;
        return Err(std::io::Error::other("deleted while it was compressed"));
    }
    std::fs::rename(&tmp, &zst)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::writer::sync_dir(dir)?;
    std::fs::remove_file(path)?;
    crate::writer::sync_dir(dir)?;
    Ok(zst)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_compressed_file_reads_back_as_the_original_which_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records-20260101T000000Z-00000001.jsonl");
        let text = "{\"a\":1}\n".repeat(10_000);
        std::fs::write(&path, &text).unwrap();
        let zst = super::compress(&path).unwrap();
        assert!(!path.exists());
        assert!(std::fs::metadata(&zst).unwrap().len() < text.len() as u64 / 20);
        assert_eq!(crate::chain::read_file(&zst).unwrap(), text.as_bytes());
        // Read by its old name, as a reader that listed it before.
        assert_eq!(crate::chain::read_file(&path).unwrap(), text.as_bytes());
        let mut first = String::new();
        crate::chain::open_file(&path)
            .unwrap()
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first, "{\"a\":1}\n");
    }
}
