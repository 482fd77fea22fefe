//! The bundle file: a tar archive compressed with zstd, `manifest.json` first,
//! then every file the manifest lists, in its order.
//!
//! Building is deterministic: entries in a fixed order, with fixed owners,
//! modes and times, one zstd level, so the same inputs give the same bytes
//! (and so the same digests) on any machine.
//!
//! Reading trusts nothing: the manifest must parse and pass its checks, every
//! entry must be a regular file the manifest lists, once, with its size and
//! SHA-256, and every listed file must be present. Sizes are bounded before
//! anything is read into memory, so a bundle cannot exhaust the disk or the
//! memory of the replica that unpacks it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::manifest::{Digest, FileEntry, GEO_DIR, MANIFEST_PATH, Manifest, POLICIES_DIR, hex};

/// The zstd level bundles are written with (fixed: part of determinism).
const ZSTD_LEVEL: i32 = 9;

/// The largest manifest read.
pub const MAX_MANIFEST: u64 = 16 << 20;

/// The largest bundle unpacked (all files together).
pub const MAX_UNPACKED: u64 = 8 << 30;

/// Why a bundle cannot be built or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: not a bundle: {1}")]
    Format(PathBuf, String),
    #[error("{path}: `{file}` does not match the manifest: {why}")]
    Mismatch {
        path: PathBuf,
        file: String,
        why: String,
    },
    #[error("{0}")]
    Input(String),
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A bundle read and checked: its manifest, digest, and (when unpacked)
/// where its files are.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The bundle digest: the SHA-256 of `manifest.json` as stored.
    pub digest: Digest,
    /// The unpacked policy directory, if unpacked.
    pub policies: Option<PathBuf>,
    /// The unpacked geo databases, in the order they are consulted.
    pub geo: Vec<PathBuf>,
}

/// Builds the bundle of the policy directory `policies` and the geo databases
/// `geo` (consulted in that order) into `out`. Hidden files and directories
/// (a name starting with `.`) are left out, as a reload ignores them.
pub fn build(policies: &Path, geo: &[PathBuf], out: &Path) -> Result<Bundle, BundleError> {
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    collect(policies, POLICIES_DIR, &mut sources)?;
    if sources.is_empty() {
        return Err(BundleError::Input(format!(
            "{}: no file to bundle",
            policies.display()
        )));
    }
    let mut geo_paths = Vec::new();
    for (i, g) in geo.iter().enumerate() {
        let name = g
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BundleError::Input(format!("{}: not a file name", g.display())))?;
        let path = format!("{GEO_DIR}/{i:02}-{name}");
        geo_paths.push(path.clone());
        sources.push((path, g.clone()));
    }
    let mut files = Vec::with_capacity(sources.len());
    for (path, source) in &sources {
        let (size, sha256) = hash_file(source)?;
        files.push(FileEntry {
            path: path.clone(),
            size,
            sha256,
        });
    }
    let manifest = Manifest::new(files, geo_paths);
    manifest
        .check()
        .map_err(|why| BundleError::Input(format!("{}: {why}", policies.display())))?;
    let manifest_bytes = manifest.to_bytes();

    let tmp = tmp_beside(out);
    let written = (|| -> Result<(), BundleError> {
        let file = File::create(&tmp).map_err(io_at(&tmp))?;
        let mut encoder =
            zstd::Encoder::new(BufWriter::new(file), ZSTD_LEVEL).map_err(io_at(&tmp))?;
        encoder.include_checksum(true).map_err(io_at(&tmp))?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        append(
            &mut tar,
            MANIFEST_PATH,
            manifest_bytes.len() as u64,
            &manifest_bytes[..],
            &tmp,
        )?;
        for ((path, source), entry) in sources.iter().zip(&manifest.files) {
            let reader = File::open(source).map_err(io_at(source))?;
            // A file that changed since it was hashed would not match.
            append(&mut tar, path, entry.size, reader.take(entry.size), &tmp)?;
        }
        let encoder = tar.into_inner().map_err(io_at(&tmp))?;
        let writer = encoder.finish().map_err(io_at(&tmp))?;
        let file = writer.into_inner().map_err(|e| BundleError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_at(&tmp))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, out).map_err(io_at(out))?;
    // What was written is read back and checked, as any reader will.
    let bundle = verify(out)?;
    Ok(bundle)
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &str,
    size: u64,
    data: impl Read,
    at: &Path,
) -> Result<(), BundleError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, data).map_err(io_at(at))
}

/// Every regular file under `dir` (symbolic links followed), as
/// `prefix/relative/path`, sorted by path.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), BundleError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(BundleError::Input(format!(
                "{}: a file name that is not UTF-8",
                entry.path().display()
            )));
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(io_at(&path))?;
        let inner = format!("{prefix}/{name}");
        if meta.is_dir() {
            collect(&path, &inner, out)?;
        } else if meta.is_file() {
            out.push((inner, path));
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<(u64, String), BundleError> {
    let mut file = File::open(path).map_err(io_at(path))?;
    let mut hasher = Sha256::new();
    let mut sink = Tee {
        hasher: &mut hasher,
        out: io::sink(),
    };
    let size = io::copy(&mut file, &mut sink).map_err(io_at(path))?;
    Ok((size, hex(&hasher.finalize())))
}

fn tmp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Reads only the manifest: what `bundle inspect` shows. Nothing else is
/// checked.
pub fn read_manifest(path: &Path) -> Result<(Manifest, Digest, Vec<u8>), BundleError> {
    let file = File::open(path).map_err(io_at(path))?;
    let decoder = zstd::Decoder::new(file).map_err(|e| format_error(path, &e))?;
    let mut archive = tar::Archive::new(decoder);
    let mut entries = archive.entries().map_err(|e| format_error(path, &e))?;
    first_manifest(path, &mut entries)
}

fn format_error(path: &Path, e: &dyn std::fmt::Display) -> BundleError {
    BundleError::Format(path.to_owned(), e.to_string())
}

fn first_manifest<R: Read>(
    path: &Path,
    entries: &mut tar::Entries<'_, R>,
) -> Result<(Manifest, Digest, Vec<u8>), BundleError> {
    let mut first = entries
        .next()
        .ok_or_else(|| format_error(path, &"the archive is empty"))?
        .map_err(|e| format_error(path, &e))?;
    let name = entry_path(&first).map_err(|e| format_error(path, &e))?;
    if name != MANIFEST_PATH {
        return Err(format_error(
            path,
            &format!("the first entry is `{name}`, not `{MANIFEST_PATH}`"),
        ));
    }
    if first.header().entry_type() != tar::EntryType::Regular || first.size() > MAX_MANIFEST {
        return Err(format_error(
            path,
            &"the manifest is not a file of a sane size",
        ));
    }
    let mut bytes = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST)
        .read_to_end(&mut bytes)
        .map_err(|e| format_error(path, &e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format_error(path, &format!("the manifest: {e}")))?;
    manifest
        .check()
        .map_err(|why| format_error(path, &format!("the manifest: {why}")))?;
    let digest = Digest::of(&bytes);
    Ok((manifest, digest, bytes))
}

fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, String> {
    let raw = entry.path_bytes();
    std::str::from_utf8(&raw)
        .map(str::to_owned)
        .map_err(|_| "an entry name that is not UTF-8".to_owned())
}

/// Checks every file of the bundle at `path` against its manifest, without
/// unpacking it.
pub fn verify(path: &Path) -> Result<Bundle, BundleError> {
    read_all(path, None)
}

/// Checks and unpacks the bundle at `path` into `dest` (which must not
/// exist): the files are written to a temporary directory beside it, which
/// becomes `dest` only once every file has been checked.
pub fn unpack(path: &Path, dest: &Path) -> Result<Bundle, BundleError> {
    let tmp = tmp_beside(dest);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
    match read_all(path, Some(&tmp)) {
        Ok(mut bundle) => {
            fs::rename(&tmp, dest).map_err(io_at(dest))?;
            bundle.policies = Some(dest.join(POLICIES_DIR));
            bundle.geo = bundle.manifest.geo.iter().map(|g| dest.join(g)).collect();
            Ok(bundle)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn read_all(path: &Path, dest: Option<&Path>) -> Result<Bundle, BundleError> {
    let file = File::open(path).map_err(io_at(path))?;
    let decoder = zstd::Decoder::new(file).map_err(|e| format_error(path, &e))?;
    let mut archive = tar::Archive::new(decoder);
    let mut entries = archive.entries().map_err(|e| format_error(path, &e))?;
    let (manifest, digest, _) = first_manifest(path, &mut entries)?;
    let total = manifest.total_size().unwrap_or(u64::MAX);
    if total > MAX_UNPACKED {
        return Err(format_error(
            path,
            &format!("it would unpack to {total} bytes (at most {MAX_UNPACKED})"),
        ));
    }
    let mismatch = |file: &str, why: String| BundleError::Mismatch {
        path: path.to_owned(),
        file: file.to_owned(),
        why,
    };
    let mut expected = manifest.files.iter();
    for entry in entries {
        let mut entry = entry.map_err(|e| format_error(path, &e))?;
        let name = entry_path(&entry).map_err(|e| format_error(path, &e))?;
        // Entries come in the manifest's order: anything else is refused.
        let Some(want) = expected.next() else {
            return Err(mismatch(&name, "the manifest does not list it".to_owned()));
        };
        if name != want.path {
            return Err(mismatch(
                &name,
                format!("found where the manifest lists `{}`", want.path),
            ));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(mismatch(&name, "not a regular file".to_owned()));
        }
        if entry.size() != want.size {
            return Err(mismatch(
                &name,
                format!("{} bytes, the manifest says {}", entry.size(), want.size),
            ));
        }
        let mut hasher = Sha256::new();
        let mut reader = (&mut entry).take(want.size);
        let copied = match dest {
            Some(dir) => {
                let target = dir.join(&want.path);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                let out = File::create(&target).map_err(io_at(&target))?;
                let mut tee = Tee {
                    hasher: &mut hasher,
                    out: BufWriter::new(out),
                };
                let n = io::copy(&mut reader, &mut tee).map_err(|e| format_error(path, &e))?;
                tee.out.flush().map_err(io_at(&target))?;
                n
            }
            None => {
                let mut sink = Tee {
                    hasher: &mut hasher,
                    out: io::sink(),
                };
                io::copy(&mut reader, &mut sink).map_err(|e| format_error(path, &e))?
            }
        };
        if copied != want.size {
            return Err(mismatch(&name, "the archive ends inside it".to_owned()));
        }
        let got = hex(&hasher.finalize());
        if got != want.sha256 {
            return Err(mismatch(
                &name,
                format!("SHA-256 {got}, the manifest says {}", want.sha256),
            ));
        }
    }
    if let Some(missing) = expected.next() {
        return Err(mismatch(
            &missing.path,
            "missing from the archive".to_owned(),
        ));
    }
    Ok(Bundle {
        manifest,
        digest,
        policies: None,
        geo: Vec::new(),
    })
}

/// Hashes what it writes (to `out`, or to nothing with `io::sink()`).
struct Tee<'a, W: Write> {
    hasher: &'a mut Sha256,
    out: W,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policies");
        fs::create_dir_all(p.join("designations")).unwrap();
        fs::create_dir_all(p.join(".git")).unwrap();
        fs::write(p.join("a.cedar"), "permit(principal, action, resource);\n").unwrap();
        fs::write(p.join("designations/x.jsonl"), "{}\n").unwrap();
        fs::write(p.join(".git/HEAD"), "ref\n").unwrap();
        fs::write(dir.path().join("geo.mmdb"), b"not really a database").unwrap();
        dir
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes_and_hidden_files_are_left_out() {
        let dir = tree();
        let geo = vec![dir.path().join("geo.mmdb")];
        let (a, b) = (dir.path().join("a.bundle"), dir.path().join("b.bundle"));
        let first = build(&dir.path().join("policies"), &geo, &a).unwrap();
        build(&dir.path().join("policies"), &geo, &b).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        let paths: Vec<_> = first
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "policies/a.cedar",
                "policies/designations/x.jsonl",
                "geo/00-geo.mmdb"
            ]
        );
        let out = dir.path().join("out");
        let unpacked = unpack(&a, &out).unwrap();
        assert_eq!(unpacked.digest, first.digest);
        assert_eq!(
            fs::read_to_string(out.join("policies/designations/x.jsonl")).unwrap(),
            "{}\n"
        );
        assert_eq!(unpacked.geo, vec![out.join("geo/00-geo.mmdb")]);
    }

    /// What a test does to one entry: a new name and bytes, or drop it.
    type Edit = Box<dyn Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>>;

    /// Rewrites the archive with `edit` applied to its entries.
    fn rewrite(from: &Path, to: &Path, edit: impl Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>) {
        let mut archive = tar::Archive::new(zstd::Decoder::new(File::open(from).unwrap()).unwrap());
        let mut builder = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_str().unwrap().to_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if let Some((name, data)) = edit(&name, data) {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                builder.append_data(&mut header, name, &data[..]).unwrap();
            }
        }
        let tar = builder.into_inner().unwrap();
        fs::write(to, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    }

    #[test]
    fn a_changed_missing_or_extra_file_is_refused_and_nothing_is_unpacked() {
        let dir = tree();
        let good = dir.path().join("good.bundle");
        build(&dir.path().join("policies"), &[], &good).unwrap();
        let bad = dir.path().join("bad.bundle");
        let cases: Vec<(&str, Edit)> = vec![
            (
                "changed",
                Box::new(|n, d| {
                    Some((
                        n.to_owned(),
                        if n.ends_with(".cedar") {
                            b"forbid(principal, action, resource);\n".to_vec()
                        } else {
                            d
                        },
                    ))
                }),
            ),
            (
                "missing",
                Box::new(|n, d| (!n.ends_with(".jsonl")).then(|| (n.to_owned(), d))),
            ),
            (
                "renamed",
                Box::new(|n, d| Some((n.replace("a.cedar", "b.cedar"), d))),
            ),
        ];
        for (what, edit) in cases {
            rewrite(&good, &bad, edit);
            let e = verify(&bad).unwrap_err();
            assert!(matches!(e, BundleError::Mismatch { .. }), "{what}: {e}");
            let out = dir.path().join(format!("out-{what}"));
            assert!(unpack(&bad, &out).is_err());
            assert!(!out.exists(), "{what}: unpacked anyway");
        }
        // An extra entry at the end.
        let mut archive =
            tar::Archive::new(zstd::Decoder::new(File::open(&good).unwrap()).unwrap());
        let mut builder = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let name = entry.path().unwrap().to_path_buf();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            builder.append_data(&mut header, name, &data[..]).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        builder
            .append_data(&mut header, "policies/z.cedar", &b"{}"[..])
            .unwrap();
        fs::write(
            &bad,
            zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            verify(&bad).unwrap_err(),
            BundleError::Mismatch { .. }
        ));
        // Not a bundle at all.
        fs::write(&bad, b"plain text").unwrap();
        assert!(matches!(verify(&bad).unwrap_err(), BundleError::Format(..)));
    }
}
