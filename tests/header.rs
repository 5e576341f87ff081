//! `include/benchfs.h` is generated: cbindgen writes it from the Rust declarations of the C API
//! (`src/ffi/`) with the settings in `cbindgen.toml`. This test generates it again and fails when
//! the committed file differs by a single byte, so a signature or doc comment changed on one side
//! only cannot pass CI.
//!
//! `BENCHFS_BLESS_HEADER=1 cargo test --test header` (or `make header`) writes the generated header
//! to `include/benchfs.h` instead of comparing.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

const HEADER: &str = "include/benchfs.h";
const BLESS: &str = "BENCHFS_BLESS_HEADER";
const REGENERATE: &str = "BENCHFS_BLESS_HEADER=1 cargo test --test header";
/// Diff lines shown on a mismatch; the rest is summarised.
const MAX_DIFF_LINES: usize = 60;
/// Unchanged lines shown around each change.
const CONTEXT: usize = 2;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The header as cbindgen generates it from `src/ffi/mod.rs` and `cbindgen.toml`.
fn generate(root: &Path) -> String {
    let config_path = root.join("cbindgen.toml");
    let config = cbindgen::Config::from_file(&config_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", config_path.display()));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen cannot generate the header: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

fn bless_requested() -> bool {
    env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn committed_header_is_the_generated_one() {
    let root = root();
    let generated = generate(&root);
    let path = root.join(HEADER);
    let committed = fs::read_to_string(&path).unwrap_or_default();
    if bless_requested() {
        if committed != generated {
            fs::write(&path, &generated).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            eprintln!("wrote {}", path.display());
        }
        return;
    }
    assert!(
        committed == generated,
        "{HEADER} differs from the header generated from src/ffi/ (- committed, + generated):\n{}\n\
         Regenerate it with `{REGENERATE}` (or `make header`) and commit it.",
        line_diff(&committed, &generated)
    );
}

/// The types a declaration of the C API may use: C's own and the POSIX ones, never a spelling that
/// cbindgen derives from a Rust type (`intptr_t` for `isize`, `int64_t` for `i64`). A Rust signature
/// must say `libc::off_t`, `libc::ssize_t`, `libc::mode_t`, so that C callers see those types.
const C_API_TYPES: &[&str] = &[
    "void",
    "int",
    "char",
    "size_t",
    "ssize_t",
    "off_t",
    "mode_t",
    "MPI_Comm",
    "struct stat",
    "struct statvfs",
    "struct dirent",
    "benchfs_dir_t",
];

#[test]
fn header_uses_only_c_and_posix_types() {
    let header = generate(&root());
    let declarations = function_declarations(&header);
    assert!(declarations.iter().any(|d| d.contains("benchfs_pread(")), "no function declarations found in the generated header");
    let foreign = foreign_types(&declarations);
    assert!(foreign.is_empty(), "the C API uses types that are not C or POSIX ones:\n  {}", foreign.join("\n  "));
}

/// The function declarations of a C header, each on one line, without comments or preprocessor
/// lines.
fn function_declarations(header: &str) -> Vec<String> {
    let mut code = String::new();
    let mut rest = header;
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        rest = rest[start..].find("*/").map_or("", |end| &rest[start + end + 2..]);
    }
    code.push_str(rest);
    let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| l.split("//").next().unwrap_or("")).collect();
    code.join("\n")
        .split(';')
        // Drop what comes before a brace, such as `extern "C" {`.
        .map(|statement| statement.rsplit(['{', '}']).next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| statement.contains('('))
        .collect()
}

/// `"<type> in <declaration>"` for each return or parameter type not in [`C_API_TYPES`].
fn foreign_types(declarations: &[String]) -> Vec<String> {
    let mut foreign = Vec::new();
    for declaration in declarations {
        let Some((head, params)) = declaration.split_once('(') else { continue };
        let params = params.trim_end_matches(')');
        let mut parts = vec![head];
        if params != "void" {
            parts.extend(params.split(','));
        }
        for part in parts {
            // `const char *path` is the type `char` and the name `path`.
            let words: Vec<&str> = part.split(|c: char| c == '*' || c.is_whitespace()).filter(|w| !w.is_empty() && *w != "const").collect();
            let ty = words[..words.len().saturating_sub(1)].join(" ");
            if !C_API_TYPES.contains(&ty.as_str()) {
                foreign.push(format!("{ty} in {declaration}"));
            }
        }
    }
    foreign
}

#[test]
fn foreign_types_are_found() {
    let header = "/** int f(long x); */\n#ifdef __cplusplus\nextern \"C\" {\n#endif // x\n\
                  intptr_t benchfs_x(const char *p,\n int64_t n);\nint benchfs_y(void);\nstruct dirent *benchfs_z(benchfs_dir_t *d);\n";
    let declarations = function_declarations(header);
    assert_eq!(
        declarations,
        ["intptr_t benchfs_x(const char *p, int64_t n)", "int benchfs_y(void)", "struct dirent *benchfs_z(benchfs_dir_t *d)"]
    );
    assert_eq!(
        foreign_types(&declarations),
        ["intptr_t in intptr_t benchfs_x(const char *p, int64_t n)", "int64_t in intptr_t benchfs_x(const char *p, int64_t n)"]
    );
}

/// A unified-style diff of `old` and `new` by lines (longest common subsequence), with `CONTEXT`
/// unchanged lines around each change and at most `MAX_DIFF_LINES` lines.
fn line_diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // One entry per line of the edit script: (marker, old line number, text).
    let mut script = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            script.push((' ', i + 1, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            script.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            script.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = script.iter().enumerate().filter(|(_, (m, _, _))| *m != ' ').map(|(k, _)| k).collect();
    if changed.is_empty() {
        // Equal lines: the files differ only in line endings or a final newline.
        return format!("  (same lines; they differ in line endings or the final newline: {} vs {} bytes)", old.len(), new.len());
    }
    let near_change = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = Vec::new();
    let mut last_shown = None;
    for (k, &(marker, line_no, text)) in script.iter().enumerate().filter(|&(k, _)| near_change(k)) {
        if last_shown.is_some_and(|last| last + 1 != k) || (last_shown.is_none() && k > 0) {
            out.push(format!("@@ line {line_no} of {HEADER}"));
        }
        out.push(format!("{marker} {text}"));
        last_shown = Some(k);
    }
    if out.len() > MAX_DIFF_LINES {
        let hidden = out.len() - MAX_DIFF_LINES;
        out.truncate(MAX_DIFF_LINES);
        out.push(format!("... {hidden} more diff lines"));
    }
    out.join("\n")
}

#[test]
fn line_diff_shows_changes_with_context() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
    let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
    assert_eq!(line_diff(old, new), "@@ line 3 of include/benchfs.h\n  c\n  d\n- e\n+ E\n  f\n  g");
    assert_eq!(line_diff("x\n", "x\ny\n"), "  x\n+ y");
    assert!(line_diff("x\n", "x").contains("final newline"));
}
