//! Lexical normalisation of BenchFS paths.
//!
//! Metadata is placed by hashing the path, so every spelling of a path must reduce to a single
//! string before it is hashed or sent to another rank. Resolution is purely lexical: BenchFS has
//! no symbolic links, so `/a/b/..` always names `/a`.

use crate::error::Error;

/// Longest accepted path in bytes, not counting a terminating NUL (Linux `PATH_MAX - 1`).
pub const MAX_PATH: usize = 4095;

/// Longest accepted path component in bytes (Linux `NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Normalises an absolute BenchFS path: collapses repeated `/`, drops `.` components, resolves
/// `..` lexically (`..` at the root stays at the root) and drops a trailing `/`. The result
/// always starts with `/` and has no trailing `/` except for the root itself, `"/"`.
///
/// # Errors
/// * [`Error::RelativePath`] if `path` is empty or does not start with `/`;
/// * [`Error::NameTooLong`] if `path` is longer than [`MAX_PATH`] bytes, or any of its
///   components (including one that a later `..` removes) is longer than [`MAX_NAME`] bytes;
/// * [`Error::InvalidArgument`] if `path` contains a NUL byte, which no C caller could pass.
pub fn normalize(path: &str) -> Result<String, Error> {
    spell(path).map(|spelled| spelled.path)
}

/// Accepts only a path already in normal form: what another rank must send.
pub fn check_normal(path: &str) -> Result<(), Error> {
    if normalize(path)? != path {
        return Err(Error::InvalidArgument("path is not normalised"));
    }
    Ok(())
}

/// How the last component of a path was spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Last {
    /// A name, or nothing after a trailing `/`.
    Name,
    /// `.`
    Dot,
    /// `..`
    DotDot,
}

/// A path as the caller spelled it: its normal form, and what the spelling demands that the
/// lexical normal form forgets. A kernel walks a path component by component, so every
/// component that a `/` follows must be a directory; the normal form keeps that rule only for
/// the components it keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spelled {
    /// The normal form, as [`normalize`] gives it.
    pub path: String,
    /// Normal forms of the paths that a `..` stepped out of: each must be an existing directory.
    pub walked: Vec<String>,
    /// The spelling ends in `/`, `/.` or `/..`: the path must name a directory.
    pub dir_only: bool,
    /// How the last component was spelled.
    pub last: Last,
}

/// Normalises `path` as [`normalize`] does, and says what its spelling demands.
pub fn spell(path: &str) -> Result<Spelled, Error> {
    if !path.starts_with('/') {
        return Err(Error::RelativePath);
    }
    if path.len() > MAX_PATH {
        return Err(Error::NameTooLong);
    }
    if path.as_bytes().contains(&0) {
        return Err(Error::InvalidArgument("path contains a NUL byte"));
    }
    // Invariant: `out` is empty (standing for the root) or a sequence of "/name" components.
    // It never grows longer than the input, which is why MAX_PATH needs no second check.
    let mut out = String::with_capacity(path.len());
    let mut walked = Vec::new();
    let mut last = Last::Name;
    for name in path.split('/') {
        match name {
            "" => {}
            "." => last = Last::Dot,
            ".." => {
                if !out.is_empty() {
                    walked.push(out.clone());
                }
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
                last = Last::DotDot;
            }
            _ if name.len() > MAX_NAME => return Err(Error::NameTooLong),
            _ => {
                out.push('/');
                out.push_str(name);
                last = Last::Name;
            }
        }
    }
    let dir_only = last != Last::Name || (path.ends_with('/') && !out.is_empty());
    if out.is_empty() {
        out.push('/');
    }
    Ok(Spelled { path: out, walked, dir_only, last })
}

/// Splits a normalised path into its parent directory and its last component:
/// `"/a/b"` gives `("/a", "b")` and `"/a"` gives `("/", "a")`. Returns `None` for the root,
/// which has no parent. Any other string is split at its last `/`, giving `None` if it has none
/// or if nothing follows it.
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    let name = &path[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        match normalize(path) {
            Ok(normal) => normal,
            Err(e) => panic!("normalize({path:?}) failed: {e}"),
        }
    }

    /// An absolute path of exactly `len` bytes whose components are at most `MAX_NAME` long.
    fn path_of_len(len: usize) -> String {
        let mut path = String::with_capacity(len);
        while path.len() < len {
            path.push('/');
            let room = (len - path.len()).min(MAX_NAME);
            path.push_str(&"n".repeat(room));
        }
        assert_eq!(path.len(), len);
        path
    }

    #[test]
    fn root_and_plain_paths_are_unchanged() {
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/a"), "/a");
        assert_eq!(ok("/a/b/c"), "/a/b/c");
        assert_eq!(ok("/.hidden/..dots/..."), "/.hidden/..dots/...");
    }

    #[test]
    fn repeated_slashes_and_dots_are_collapsed() {
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("///a//b/./c"), "/a/b/c");
        assert_eq!(ok("/a/./././b"), "/a/b");
        assert_eq!(ok("/."), "/");
        assert_eq!(ok("/./"), "/");
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(ok("/a/"), "/a");
        assert_eq!(ok("/a/b///"), "/a/b");
        assert_eq!(ok("/a/."), "/a");
    }

    #[test]
    fn dot_dot_is_resolved_lexically() {
        assert_eq!(ok("/a/b/../c"), "/a/c");
        assert_eq!(ok("/a/b/.."), "/a");
        assert_eq!(ok("/a/b/../.."), "/");
        assert_eq!(ok("/a/b/../../c/./d/"), "/c/d");
        assert_eq!(ok("/a/..b/../c"), "/a/c");
    }

    #[test]
    fn dot_dot_at_the_root_stays_at_the_root() {
        assert_eq!(ok("/.."), "/");
        assert_eq!(ok("/../x"), "/x");
        assert_eq!(ok("/../../x/../../y"), "/y");
    }

    #[test]
    fn spelling_demands_are_kept() {
        let plain = spell("/a/b").unwrap();
        assert!(!plain.dir_only && plain.walked.is_empty());
        assert_eq!(plain.last, Last::Name);
        let trailing = spell("/a/b/").unwrap();
        assert!(trailing.dir_only && trailing.walked.is_empty());
        assert_eq!(trailing.path, "/a/b");
        let dot = spell("/a/b/.").unwrap();
        assert!(dot.dir_only);
        assert_eq!(dot.last, Last::Dot);
        let up = spell("/a/f/../c").unwrap();
        assert_eq!((up.path.as_str(), up.walked.clone(), up.dir_only), ("/a/c", vec!["/a/f".to_string()], false));
        let up_last = spell("/a/f/..").unwrap();
        assert_eq!((up_last.path.as_str(), up_last.dir_only, up_last.last), ("/a", true, Last::DotDot));
        // The root is a directory; nothing to demand of it.
        for root in ["/", "//"] {
            let spelled = spell(root).unwrap();
            assert!(!spelled.dir_only && spelled.walked.is_empty(), "{root:?}");
        }
        assert_eq!(spell("/..").unwrap().walked, Vec::<String>::new());
    }

    #[test]
    fn relative_paths_are_rejected() {
        for path in ["", "a", "a/b", "./a", "../a", " /a"] {
            assert!(matches!(normalize(path), Err(Error::RelativePath)), "{path:?}");
        }
    }

    #[test]
    fn nul_bytes_are_rejected() {
        for path in ["/a\0b", "/\0", "/a/\0/b"] {
            let err = normalize(path);
            assert!(matches!(err, Err(Error::InvalidArgument("path contains a NUL byte"))), "{path:?}: {err:?}");
        }
    }

    #[test]
    fn component_length_limit_is_inclusive() {
        let longest = "n".repeat(MAX_NAME);
        assert_eq!(ok(&format!("/{longest}")), format!("/{longest}"));
        assert_eq!(ok(&format!("/d/{longest}/")), format!("/d/{longest}"));

        let too_long = "n".repeat(MAX_NAME + 1);
        for path in [format!("/{too_long}"), format!("/d/{too_long}/e"), format!("/d/{too_long}/..")] {
            assert!(matches!(normalize(&path), Err(Error::NameTooLong)));
        }
    }

    #[test]
    fn length_limit_counts_bytes_not_characters() {
        // 'é' is two bytes in UTF-8: 128 of them make a 256-byte component.
        let name = "é".repeat(128);
        assert!(matches!(normalize(&format!("/{name}")), Err(Error::NameTooLong)));
        let name = "é".repeat(127);
        assert_eq!(ok(&format!("/{name}")), format!("/{name}"));
    }

    #[test]
    fn path_length_limit_is_inclusive() {
        let longest = path_of_len(MAX_PATH);
        assert_eq!(ok(&longest), longest);
        assert!(matches!(normalize(&path_of_len(MAX_PATH + 1)), Err(Error::NameTooLong)));
        // The limit applies to the input, even if it would normalise to something short.
        assert_eq!(ok(&"/".repeat(MAX_PATH)), "/");
        assert!(matches!(normalize(&"/".repeat(MAX_PATH + 1)), Err(Error::NameTooLong)));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for path in ["/", "/a//b/./c/", "/../x", "/a/b/../c", "/a/b/../.."] {
            let once = ok(path);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn split_parent_of_normalised_paths() {
        assert_eq!(split_parent("/"), None);
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/a/b/c.txt"), Some(("/a/b", "c.txt")));
    }

    #[test]
    fn split_parent_rejects_what_is_not_a_normalised_path() {
        assert_eq!(split_parent(""), None);
        assert_eq!(split_parent("a"), None);
        assert_eq!(split_parent("/a/"), None);
    }
}
