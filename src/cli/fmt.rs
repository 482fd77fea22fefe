//! `portcullis fmt [--check] DIR|FILE…`: formats Cedar policy files with
//! Cedar's own formatter (`cedar-policy-formatter`, the one the `cedar` CLI
//! uses), which keeps comments and annotations and refuses to drop either.
//! A directory is formatted whole: every `*.cedar` file under it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cedar_policy_formatter::{Config, policies_str_to_pretty};
use clap::Args;

use portcullis_core::policies::{limits, line_col};
use portcullis_core::snapshot::BUILD_STACK;

use super::exit;

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Policy files, or directories whose `*.cedar` files (at any depth) are formatted.
    #[arg(required = true, value_name = "DIR|FILE")]
    paths: Vec<PathBuf>,
    /// Change nothing: list the files that would change, and exit 1 if any would.
    #[arg(long)]
    check: bool,
    /// Longest line the formatter aims for.
    #[arg(long, default_value_t = Config::default().line_width)]
    line_width: usize,
}

/// What formatting one file came to.
enum Formatted {
    Unchanged,
    Changed(String),
}

/// The formatted text of one policy file (ending with one newline). Size and
/// nesting are checked first, as the loader checks them: the formatter's parser
/// recurses per level.
pub fn format_text(text: &str, line_width: usize) -> anyhow::Result<String> {
    if let Some((offset, message)) = limits::check_source(text).into_iter().next() {
        let (line, column) = line_col(text, offset);
        anyhow::bail!("{line}:{column}: {message}");
    }
    let config = Config {
        line_width,
        ..Config::default()
    };
    // The formatter's errors are miette reports: shown with their causes.
    let mut pretty = policies_str_to_pretty(text, &config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let trimmed = pretty.trim_end().len();
    pretty.truncate(trimmed);
    if !pretty.is_empty() {
        pretty.push('\n');
    }
    Ok(pretty)
}

/// Formats one file's text: `Err` when it cannot be formatted.
fn format_file(text: &str, line_width: usize) -> anyhow::Result<Formatted> {
    let pretty = format_text(text, line_width)?;
    Ok(if pretty == text {
        Formatted::Unchanged
    } else {
        Formatted::Changed(pretty)
    })
}

/// Replaces a file's content as one step: a sibling temporary file, synced,
/// renamed over it, with the original's permissions.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    // Through a symbolic link, the file linked to is the one replaced.
    let path = &std::fs::canonicalize(path).context("cannot resolve the path")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).context("cannot create a temporary file")?;
    tmp.write_all(text.as_bytes()).context("cannot write")?;
    tmp.as_file().sync_all().context("cannot sync")?;
    let permissions = std::fs::metadata(path)
        .context("cannot stat")?
        .permissions();
    std::fs::set_permissions(tmp.path(), permissions).context("cannot set permissions")?;
    tmp.persist(path).context("cannot replace the file")?;
    Ok(())
}

/// The `*.cedar` files named or under the directories named, in order.
fn cedar_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut files)?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("`{}` does not exist", path.display());
        }
    }
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read `{}`", dir.display()))?;
    entries.sort();
    for path in entries {
        // Hidden entries (editor files, a ConfigMap's `..data`) are not policies.
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let linked = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if path.is_dir() {
            // A linked directory is not walked: a link loop would never end.
            if !linked {
                collect(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "cedar") {
            files.push(path);
        }
    }
    Ok(())
}

pub fn run(args: FmtArgs) -> anyhow::Result<u8> {
    // On the stack a snapshot is built on: a policy within the limits
    // formats wherever the loader would load it.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("fmt".into())
            .stack_size(BUILD_STACK)
            .spawn_scoped(scope, || format_all(&args))
            .context("cannot start the formatting thread")?
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("formatting failed unexpectedly (panic)")))
    })
}

fn format_all(args: &FmtArgs) -> anyhow::Result<u8> {
    let files = cedar_files(&args.paths)?;
    let (mut changed, mut invalid, mut failed) = (0usize, 0usize, 0usize);
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: cannot read: {e}", file.display());
                continue;
            }
        };
        match format_file(&text, args.line_width) {
            Ok(Formatted::Unchanged) => {}
            Ok(Formatted::Changed(pretty)) => {
                changed += 1;
                if args.check {
                    println!("would reformat {}", file.display());
                } else if let Err(e) = replace(file, &pretty) {
                    failed += 1;
                    eprintln!("error: {}: {e:#}", file.display());
                } else {
                    println!("formatted {}", file.display());
                }
            }
            Err(e) => {
                invalid += 1;
                eprintln!("error: {}: cannot format: {e:#}", file.display());
            }
        }
    }
    let verb = if args.check {
        "would change"
    } else {
        "changed"
    };
    eprintln!("{} file(s) checked, {changed} {verb}", files.len());
    Ok(if invalid > 0 {
        exit::INVALID
    } else if failed > 0 {
        exit::ERROR
    } else if args.check && changed > 0 {
        exit::NOT_FORMATTED
    } else {
        exit::OK
    })
}
