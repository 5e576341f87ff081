//! Which paths are BenchFS's: those under the mount prefix (`BENCHFS_MOUNT`, `/benchfs` by
//! default), including relative ones while the current directory is inside it.
//!
//! A path is judged by its lexical form (`.`, `..` and repeated slashes resolved, as BenchFS has
//! no symbolic links): `/benchfs/a/../b` is BenchFS's `/b`, `/benchfs/../etc` is the system's
//! `/etc`. The current directory inside the mount exists only here (the kernel's stays where it
//! was); `chdir` out of the mount hands it back to the kernel.

use std::ffi::{CStr, CString};
use std::sync::{Mutex, OnceLock};

const DEFAULT_MOUNT: &[u8] = b"/benchfs";

/// The mount prefix: absolute, without a trailing slash (never `/` itself).
pub fn mount() -> &'static [u8] {
    static MOUNT: OnceLock<Vec<u8>> = OnceLock::new();
    MOUNT.get_or_init(|| {
        let chosen = std::env::var_os("BENCHFS_MOUNT").map(|v| v.into_encoded_bytes()).unwrap_or_else(|| DEFAULT_MOUNT.to_vec());
        let normal = normalize(&chosen);
        if !chosen.starts_with(b"/") || normal == b"/" {
            crate::warn(b"BENCHFS_MOUNT must be an absolute path other than /; using /benchfs");
            return DEFAULT_MOUNT.to_vec();
        }
        normal
    })
}

/// The current directory while it is inside the mount, as a BenchFS path.
static CWD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

pub fn cwd() -> Option<Vec<u8>> {
    CWD.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Makes `dir` (a BenchFS path, or None: the kernel's) the current directory.
pub fn set_cwd(dir: Option<Vec<u8>>) {
    *CWD.lock().unwrap_or_else(|p| p.into_inner()) = dir;
}

/// `path` with `.`, `..` and repeated slashes resolved lexically; absolute paths stay
/// absolute and `..` stops at the root.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Where a path leads.
pub enum Target {
    /// The system's: the original path, or (`Some`) the absolute one it stands for, when it was
    /// relative to a directory inside the mount but leads out of it.
    Kernel(Option<CString>),
    /// BenchFS's, as a BenchFS path (`/` is the mount point).
    Ours(Vec<u8>),
}

/// True if `path` has a component that [`normalize`] would change (`.`, `..`, or an empty one
/// other than after a trailing slash).
fn needs_normalizing(path: &[u8]) -> bool {
    let body = path.strip_suffix(b"/").unwrap_or(path);
    body.split(|&b| b == b'/').skip(1).any(|part| matches!(part, b"" | b"." | b".."))
}

/// The BenchFS path of absolute `path` if it is under the mount; a trailing slash (the name must
/// be a directory) is kept.
fn under_mount(path: &[u8]) -> Option<Vec<u8>> {
    let mount = mount();
    // Most paths are already plain: decided without building a normalized copy.
    if !needs_normalizing(path) {
        let rest = path.strip_prefix(mount)?;
        return match rest {
            b"" | b"/" => Some(b"/".to_vec()),
            _ if rest.starts_with(b"/") => Some(rest.to_vec()),
            _ => None,
        };
    }
    let normal = normalize(path);
    let rest = normal.strip_prefix(mount)?;
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return None;
    }
    let mut inside = if rest.is_empty() { b"/".to_vec() } else { rest.to_vec() };
    if path.ends_with(b"/") && inside != b"/" {
        inside.push(b'/');
    }
    Some(inside)
}

/// Where `path` leads, relative to the BenchFS directory `base` if it is relative (`None`: the
/// kernel's current directory).
pub fn resolve_from(base: Option<&[u8]>, path: &CStr) -> Target {
    let bytes = path.to_bytes();
    if bytes.starts_with(b"/") {
        return match under_mount(bytes) {
            Some(inside) => Target::Ours(inside),
            None => Target::Kernel(None),
        };
    }
    let Some(base) = base else { return Target::Kernel(None) };
    // The absolute spelling: the mount, the base directory, then the path.
    let mut full = mount().to_vec();
    full.extend_from_slice(base);
    full.push(b'/');
    full.extend_from_slice(bytes);
    match under_mount(&full) {
        Some(inside) => Target::Ours(inside),
        None => Target::Kernel(CString::new(normalize(&full)).ok()),
    }
}

/// Where `path` leads from the current directory.
pub fn resolve(path: &CStr) -> Target {
    if path.to_bytes().starts_with(b"/") {
        return resolve_from(None, path);
    }
    resolve_from(cwd().as_deref(), path)
}

/// The absolute system spelling of BenchFS path `inside`.
pub fn outside(inside: &[u8]) -> Vec<u8> {
    let mut full = mount().to_vec();
    if inside != b"/" {
        full.extend_from_slice(inside.strip_suffix(b"/").unwrap_or(inside));
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing() {
        assert_eq!(normalize(b"/a//b/./c/../d"), b"/a/b/d");
        assert_eq!(normalize(b"/../.."), b"/");
        assert_eq!(normalize(b"a/b/.."), b"/a");
    }

    fn ours(t: Target) -> Option<Vec<u8>> {
        match t {
            Target::Ours(p) => Some(p),
            Target::Kernel(_) => None,
        }
    }

    #[test]
    fn plain_paths_need_no_normalizing() {
        assert!(!needs_normalizing(b"/benchfs/a/b"));
        assert!(!needs_normalizing(b"/benchfs/a/b/"));
        assert!(needs_normalizing(b"/benchfs//a"));
        assert!(needs_normalizing(b"/benchfs/./a"));
        assert!(needs_normalizing(b"/benchfs/a/.."));
    }

    #[test]
    fn paths_under_the_mount_are_ours() {
        // The tests run without BENCHFS_MOUNT: the mount is /benchfs.
        assert_eq!(mount(), b"/benchfs");
        let at = |p: &CStr| ours(resolve_from(None, p));
        assert_eq!(at(c"/benchfs"), Some(b"/".to_vec()));
        assert_eq!(at(c"/benchfs/a//b/../c"), Some(b"/a/c".to_vec()));
        assert_eq!(at(c"/benchfs/d/"), Some(b"/d/".to_vec()));
        assert_eq!(at(c"/benchfs/"), Some(b"/".to_vec()));
        assert_eq!(at(c"/benchfs/a/b"), Some(b"/a/b".to_vec()));
        assert_eq!(at(c"/benchfsx/a"), None);
        assert_eq!(at(c"/benchfs/../etc/passwd"), None);
        assert_eq!(at(c"relative"), None);
    }

    #[test]
    fn relative_paths_from_a_directory_inside() {
        assert_eq!(ours(resolve_from(Some(b"/a"), c"b/c")), Some(b"/a/b/c".to_vec()));
        assert_eq!(ours(resolve_from(Some(b"/a"), c"..")), Some(b"/".to_vec()));
        match resolve_from(Some(b"/a"), c"../../etc") {
            Target::Kernel(Some(p)) => assert_eq!(p.as_bytes(), b"/etc"),
            _ => panic!("a path leading out of the mount is the system's, spelled absolute"),
        }
        assert_eq!(outside(b"/"), b"/benchfs");
        assert_eq!(outside(b"/a/b"), b"/benchfs/a/b");
    }
}
