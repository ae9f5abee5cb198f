//! Tidy checks over the workspace's sources: rules a reviewer would otherwise have to
//! remember. Run by `cargo xtask ci` and as a `#[test]`.
//!
//! 1. Every `.rs` file opens with a `//!` doc comment.
//! 2. Every `unsafe` block, `unsafe impl` and `unsafe fn` carries a `SAFETY` comment
//!    (or, for `unsafe fn`, a `# Safety` doc section) just above it.
//! 3. `unsafe` appears only in `crates/infrastructure`.
//! 4. In `crates/infrastructure/src`, only `sync.rs` names the synchronisation
//!    primitives (`std::sync::atomic`, `std::sync::Mutex`, `std::cell::UnsafeCell`,
//!    `loom`), so `--cfg loom` swaps all of them (test code and loom models excepted).
//! 5. Workspace crates depend only along the allowed arrows (`ALLOWED_DEPENDENCIES`),
//!    and every layer crate forbids `unsafe` code.
//! 6. Only `monitoring` depends on `prometheus-client`: the others use its re-export
//!    (`monitoring::prometheus_client`, `monitoring::Registry`), as a user must, so the
//!    types its API hands out are always the ones it was built with.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The allowed arrows between workspace crates under `crates/`: each layer may depend
/// on the crates listed here and on no other workspace crate (docs/ARCHITECTURE.md).
/// A new crate must be added here before it builds.
const ALLOWED_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("infrastructure", &[]),
    ("data", &["infrastructure"]),
    ("strategy", &["infrastructure"]),
    ("risk", &["infrastructure"]),
    ("execution", &["infrastructure"]),
    ("exchange", &["infrastructure"]),
    ("analysis", &["infrastructure"]),
    ("monitoring", &["infrastructure"]),
    (
        "pipeline",
        &[
            "infrastructure",
            "data",
            "strategy",
            "risk",
            "execution",
            "exchange",
            "analysis",
            "monitoring",
        ],
    ),
];

/// Runs every check; fails listing every violation.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    check_layers(root, &mut problems)?;
    for file in rust_files(root) {
        let text = fs::read_to_string(&file)?;
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        check_file(&rel, &text, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "tidy found {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        )
    }
}

/// 5. Workspace crates depend only along the allowed arrows, and every layer crate
///    (all but `infrastructure`) forbids `unsafe` code.
fn check_layers(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let crates_dir = root.join("crates");
    let mut names: Vec<String> = fs::read_dir(&crates_dir)?
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let manifest = fs::read_to_string(crates_dir.join(name).join("Cargo.toml"))?;
        let Some((_, allowed)) = ALLOWED_DEPENDENCIES.iter().find(|(n, _)| n == name) else {
            problems.push(format!(
                "crates/{name}: not in xtask's ALLOWED_DEPENDENCIES; add its allowed arrows"
            ));
            continue;
        };
        for dependency in dependencies(&manifest) {
            if dependency == "prometheus-client" && name != "monitoring" {
                problems.push(format!(
                    "crates/{name}: depends on prometheus-client; use monitoring's re-export"
                ));
            }
            if names.contains(&dependency) && !allowed.contains(&dependency.as_str()) {
                problems.push(format!(
                    "crates/{name}: depends on `{dependency}`, against the allowed arrows {allowed:?}"
                ));
            }
        }
        if name != "infrastructure" {
            let lib =
                fs::read_to_string(crates_dir.join(name).join("src/lib.rs")).unwrap_or_default();
            if !lib.contains("#![forbid(unsafe_code)]") {
                problems.push(format!(
                    "crates/{name}/src/lib.rs: lacks #![forbid(unsafe_code)]"
                ));
            }
        }
    }
    Ok(())
}

/// The package names in a manifest's `[dependencies]` section.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if in_section && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            if !key.is_empty() {
                out.push(key.to_owned());
            }
        }
    }
    out
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["crates", "benches", "xtask", "fuzz"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_test_code(path: &Path) -> bool {
    path.components()
        .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
        || path
            .file_name()
            .is_some_and(|n| n == "tests.rs" || n == "loom_models.rs")
}

fn check_file(path: &Path, text: &str, problems: &mut Vec<String>) {
    let shown = path.display();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !first.starts_with("//!") {
        problems.push(format!("{shown}: does not open with a `//!` doc comment"));
    }
    let in_infrastructure = path.starts_with("crates/infrastructure");
    let lines: Vec<&str> = text.lines().collect();
    // This file spells the patterns it looks for.
    let scan_unsafe = !path.ends_with("xtask/src/tidy.rs");
    for (i, line) in lines.iter().enumerate().filter(|_| scan_unsafe) {
        let code = line.split("//").next().unwrap_or("");
        let has_unsafe = ["unsafe {", "unsafe impl", "unsafe fn", "unsafe extern"]
            .iter()
            .any(|k| code.contains(k));
        if !has_unsafe {
            continue;
        }
        if !in_infrastructure {
            problems.push(format!(
                "{shown}:{}: `unsafe` outside crates/infrastructure",
                i + 1
            ));
        }
        let window = &lines[i.saturating_sub(12)..=i];
        let documented = window
            .iter()
            .any(|l| l.contains("SAFETY:") || l.contains("# Safety"));
        if !documented {
            problems.push(format!(
                "{shown}:{}: `unsafe` without a SAFETY comment just above",
                i + 1
            ));
        }
    }
    let shim_only = [
        "std::sync::atomic",
        "std::sync::Mutex",
        "std::sync::{Mutex",
        "std::cell::UnsafeCell",
        "loom::",
    ];
    // `alloc_count.rs` is a global allocator: it must use std's atomics even under
    // `--cfg loom` (loom's cannot exist outside a model), and nothing in it is modelled.
    let exempt = path.ends_with("sync.rs") || path.ends_with("alloc_count.rs");
    if path.starts_with("crates/infrastructure/src") && !exempt && !is_test_code(path) {
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            // A brace import names them too: `use std::sync::{Arc, Mutex};`.
            let braced = line.contains("std::sync::{")
                && ["Mutex", "atomic"].iter().any(|name| line.contains(name));
            if braced {
                problems.push(format!(
                    "{shown}:{}: names a `std::sync` primitive; use `crate::sync`",
                    i + 1
                ));
                continue;
            }
            if let Some(name) = shim_only.iter().find(|name| line.contains(**name)) {
                problems.push(format!(
                    "{shown}:{}: names `{name}`; use `crate::sync`",
                    i + 1
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        check(&crate::workspace_root()).unwrap();
    }

    #[test]
    fn reads_dependencies_from_a_manifest() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\ninfrastructure = { path = \"../infrastructure\" }\n# data = \"1\"\n\n[dev-dependencies]\nproptest = \"1\"\n";
        assert_eq!(dependencies(manifest), ["serde", "infrastructure"]);
    }

    #[test]
    fn a_forbidden_arrow_is_caught() {
        let root = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        let write = |name: &str, deps: &str, lib: &str| {
            let dir = root.join("crates").join(name);
            fs::create_dir_all(dir.join("src")).unwrap();
            fs::write(dir.join("Cargo.toml"), format!("[dependencies]\n{deps}\n")).unwrap();
            fs::write(dir.join("src/lib.rs"), lib).unwrap();
        };
        write("infrastructure", "data.workspace = true", "//! i\n");
        write("data", "infrastructure.workspace = true", "//! d\n");
        let mut problems = Vec::new();
        check_layers(&root, &mut problems).unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("crates/data/src/lib.rs: lacks"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("crates/infrastructure: depends on `data`"),
            "{problems:?}"
        );
    }

    #[test]
    fn tidy_catches_what_it_claims_to() {
        let mut problems = Vec::new();
        let bad = "fn f() {\n    unsafe { g() }\n}\n";
        check_file(Path::new("crates/data/src/lib.rs"), bad, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}"); // no //!, outside infra, no SAFETY
        problems.clear();
        let shim = "//! m\nuse std::sync::atomic::AtomicU64;\n";
        check_file(
            Path::new("crates/infrastructure/src/memory/x.rs"),
            shim,
            &mut problems,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.clear();
        let braced = "//! m\nuse std::sync::{LazyLock, Mutex};\n";
        check_file(
            Path::new("crates/infrastructure/src/memory/x.rs"),
            braced,
            &mut problems,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.clear();
        let good = "//! m\n// SAFETY: fine.\nunsafe impl Send for X {}\n";
        check_file(
            Path::new("crates/infrastructure/src/x.rs"),
            good,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }
}
