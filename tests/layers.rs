//! The library's modules are layers: each may use only the modules below it (README, "Layout").
//! This test reads every `crate::<module>` path in `src/` and fails on a use that goes up or
//! sideways, so that no dependency circle can come back unnoticed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules from the top layer down. A module may use those of a later row only;
/// modules in one row do not use each other.
const LAYERS: &[&[&str]] = &[
    &["ffi"],
    &["fs"],
    &["bootstrap"],
    &["runtime"],
    &["rpc"],
    &["metadata", "storage"],
    &["ucx", "placement", "path", "config", "stats"],
    &["error", "join"],
    &["ids"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?.as_os_str().to_str()?;
    (first != "lib.rs").then(|| first.trim_end_matches(".rs").to_string())
}

/// Every module named as `crate::<name>` in `text`.
fn crate_paths(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, m)| text[at + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut uses: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for used in crate_paths(&text) {
            if used != module {
                uses.entry((module.clone(), used)).or_insert_with(|| file.clone());
            }
        }
    }
    assert!(!uses.is_empty(), "no crate:: paths found under {}", src.display());
    let mut wrong = Vec::new();
    for ((from, to), file) in &uses {
        match (layer_of(from), layer_of(to)) {
            (Some(a), Some(b)) if a < b => {}
            (None, _) => wrong.push(format!("{from} (in {}) is in no layer: add it to LAYERS", file.display())),
            (_, None) => wrong.push(format!("{to} (used in {}) is in no layer: add it to LAYERS", file.display())),
            _ => wrong.push(format!("{from} uses {to} (in {}), which is not below it", file.display())),
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn crate_path_scanner_finds_module_names() {
    assert_eq!(crate_paths("use crate::rpc::wire; x = crate::fs::open(); my_crate::no"), ["rpc", "fs"]);
}
