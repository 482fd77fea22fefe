//! The layers of ARCHITECTURE.md, checked: which crate may depend on which,
//! and within the engine, which module may use which (no cycles).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates a library must never pull in (normal dependencies, transitively).
const SERVER_CRATES: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "tower",
    "tokio",
    "clap",
    "notify",
    "prometheus",
    "tracing-subscriber",
    "arc-swap",
    "mimalloc",
];

/// The normal dependencies of one workspace package, transitively, by name.
fn dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{lib}",
            "-p",
            package,
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().replace('_', "-"))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_engine_pulls_in_no_server_or_command_line_crate() {
    let deps = dependencies("portcullis-core");
    assert!(deps.contains("cedar-policy"), "the tree was read: {deps:?}");
    let found: Vec<_> = SERVER_CRATES
        .iter()
        .filter(|c| deps.contains(**c))
        .collect();
    assert!(found.is_empty(), "portcullis-core depends on {found:?}");
    assert!(!deps.contains("portcullis-audit") && !deps.contains("portcullis-import"));
}

#[test]
fn records_and_importers_know_no_metrics_registry_http_or_command_line() {
    for package in ["portcullis-audit", "portcullis-import"] {
        let deps = dependencies(package);
        assert!(
            deps.contains("portcullis-core"),
            "the tree was read: {deps:?}"
        );
        let forbidden = [
            "axum",
            "hyper",
            "clap",
            "notify",
            "prometheus",
            "tracing-subscriber",
        ];
        let found: Vec<_> = forbidden.iter().filter(|c| deps.contains(**c)).collect();
        assert!(found.is_empty(), "{package} depends on {found:?}");
    }
    assert!(!dependencies("portcullis-import").contains("tokio"));
}

/// The engine's modules, lowest layer first: each may use only those before it
/// (the same list as `crates/core/src/lib.rs` and ARCHITECTURE.md).
const CORE_LAYERS: &[&str] = &[
    "country",
    "diagnostic",
    "files",
    "lifecycle",
    "frozen",
    "scripts",
    "typos",
    "names",
    "packed",
    "keys",
    "budget",
    "request",
    "schema",
    "geo",
    "designation",
    "screening",
    "enrich",
    "cedar_input",
    "decision",
    "slicing",
    "policies",
    "cases",
    "snapshot",
    "engine",
    "gate",
    "explain",
    "coverage",
    "impact",
];

/// The `crate::module` paths a source file uses, comments and tests left out.
fn used_modules(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut used = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

fn module_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let module = path.file_name().unwrap().to_string_lossy().into_owned();
            for (_, p) in module_files(&path) {
                files.push((module.clone(), p));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.push((module, path));
        }
    }
    files
}

#[test]
fn engine_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (module, file) in module_files(&src) {
        if module == "lib" {
            continue;
        }
        let Some(layer) = CORE_LAYERS.iter().position(|m| *m == module) else {
            problems.push(format!(
                "`{module}` is in no layer: add it to CORE_LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        seen.insert(module.clone());
        for used in used_modules(&file) {
            if used == module || used == "objects_only" {
                continue;
            }
            match CORE_LAYERS.iter().position(|m| *m == used) {
                Some(l) if l < layer => {}
                _ => problems.push(format!(
                    "`{module}` ({}) uses `{used}`, which is not below it",
                    file.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        seen.len(),
        CORE_LAYERS.len(),
        "every layer has its module: {seen:?}"
    );
}

#[test]
fn the_server_never_uses_the_command_line() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
    for (_, file) in module_files(&src) {
        let used = used_modules(&file);
        assert!(
            !used.contains("cli"),
            "{} uses the command line",
            file.display()
        );
    }
}
