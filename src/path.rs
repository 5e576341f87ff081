//! Lexical normalisation of BenchFS paths, and the few operations on normalised ones.
//!
//! A path is bytes, as in POSIX: `/` separates its components and NUL (which no C caller can
//! pass) is refused; every other byte may appear in a name, whether or not the name is UTF-8.
//! Paths are compared, hashed and sent as these bytes, so a name comes back from `readdir`
//! exactly as it was created.
//!
//! Metadata is placed by hashing the path, so every spelling of a path must reduce to a single
//! byte string before it is hashed or sent to another rank. Resolution is purely lexical:
//! BenchFS has no symbolic links, so `/a/b/..` always names `/a`.

use std::borrow::Cow;

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
pub fn normalize(path: &[u8]) -> Result<Vec<u8>, Error> {
    spell(path).map(|spelled| spelled.path)
}

/// Accepts only a path already in normal form: what another rank must send. It fails as
/// [`normalize`] would, and with `EINVAL` for a path that normalizes to another; in one pass,
/// without building the normal form (every request served checks its paths).
pub fn check_normal(path: &[u8]) -> Result<(), Error> {
    check_whole(path)?;
    if path == b"/" {
        return Ok(());
    }
    // The normal form is "/" or "/name" components: an empty component (a doubled or trailing
    // '/'), "." or ".." is spelled otherwise. Long names fail first, as in `spell`.
    let mut normal = true;
    for name in path[1..].split(|&b| b == b'/') {
        match name {
            b"" | b"." | b".." => normal = false,
            _ if name.len() > MAX_NAME => return Err(Error::NameTooLong),
            _ => {}
        }
    }
    if !normal {
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
    pub path: Vec<u8>,
    /// Normal forms of the paths that a `..` stepped out of: each must be an existing directory.
    pub walked: Vec<Vec<u8>>,
    /// The spelling ends in `/`, `/.` or `/..`: the path must name a directory.
    pub dir_only: bool,
    /// How the last component was spelled.
    pub last: Last,
}

/// What a path must be as a whole, before its components are looked at: absolute, of
/// [`MAX_PATH`] bytes at most, without a NUL.
fn check_whole(path: &[u8]) -> Result<(), Error> {
    if path.first() != Some(&b'/') {
        return Err(Error::RelativePath);
    }
    if path.len() > MAX_PATH {
        return Err(Error::NameTooLong);
    }
    if path.contains(&0) {
        return Err(Error::InvalidArgument("path contains a NUL byte"));
    }
    Ok(())
}

/// Normalises `path` as [`normalize`] does, and says what its spelling demands.
pub fn spell(path: &[u8]) -> Result<Spelled, Error> {
    check_whole(path)?;
    // Invariant: `out` is empty (standing for the root) or a sequence of "/name" components.
    // It never grows longer than the input, which is why MAX_PATH needs no second check.
    let mut out = Vec::with_capacity(path.len());
    let mut walked = Vec::new();
    let mut last = Last::Name;
    for name in path.split(|&b| b == b'/') {
        match name {
            b"" => {}
            b"." => last = Last::Dot,
            b".." => {
                if !out.is_empty() {
                    walked.push(out.clone());
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
                last = Last::DotDot;
            }
            _ if name.len() > MAX_NAME => return Err(Error::NameTooLong),
            _ => {
                out.push(b'/');
                out.extend_from_slice(name);
                last = Last::Name;
            }
        }
    }
    let dir_only = last != Last::Name || (path.ends_with(b"/") && !out.is_empty());
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(Spelled { path: out, walked, dir_only, last })
}

/// Splits a normalised path into its parent directory and its last component:
/// `"/a/b"` gives `("/a", "b")` and `"/a"` gives `("/", "a")`. Returns `None` for the root,
/// which has no parent. Any other byte string is split at its last `/`, giving `None` if it
/// has none or if nothing follows it.
pub fn split_parent(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    let name = &path[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let parent = if slash == 0 { b"/".as_slice() } else { &path[..slash] };
    Some((parent, name))
}

/// The path of the entry `name` of the normalised directory `dir`: `join("/a", "b")` is
/// `"/a/b"` and `join("/", "b")` is `"/b"`.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    if dir != b"/" {
        path.extend_from_slice(dir);
    }
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// Whether the normalised `path` lies strictly below the normalised directory `dir`: `"/a/b"`
/// is below `"/a"` and `"/"`, but `"/a"` is not below itself and `"/ab"` is not below `"/a"`.
pub fn is_below(path: &[u8], dir: &[u8]) -> bool {
    if dir == b"/" {
        return path.len() > 1 && path[0] == b'/';
    }
    path.len() > dir.len() + 1 && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The path that `path`, below the directory `from` ([`is_below`]; not the root), has once
/// `from` is renamed to `to`: `rebase("/a/x/y", "/a", "/b")` is `"/b/x/y"`.
pub fn rebase(path: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let rest = path.get(from.len()..).unwrap_or_default();
    [to, rest].concat()
}

/// A path as text for log lines: bytes that are not UTF-8 show as U+FFFD.
pub fn show(path: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: impl AsRef<[u8]>) -> Vec<u8> {
        let path = path.as_ref();
        match normalize(path) {
            Ok(normal) => normal,
            Err(e) => panic!("normalize({:?}) failed: {e}", show(path)),
        }
    }

    /// An absolute path of exactly `len` bytes whose components are at most `MAX_NAME` long.
    fn path_of_len(len: usize) -> Vec<u8> {
        let mut path = Vec::with_capacity(len);
        while path.len() < len {
            path.push(b'/');
            let room = (len - path.len()).min(MAX_NAME);
            path.extend(std::iter::repeat(b'n').take(room));
        }
        assert_eq!(path.len(), len);
        path
    }

    #[test]
    fn root_and_plain_paths_are_unchanged() {
        assert_eq!(ok("/"), b"/");
        assert_eq!(ok("/a"), b"/a");
        assert_eq!(ok("/a/b/c"), b"/a/b/c");
        assert_eq!(ok("/.hidden/..dots/..."), b"/.hidden/..dots/...");
    }

    #[test]
    fn repeated_slashes_and_dots_are_collapsed() {
        assert_eq!(ok("//"), b"/");
        assert_eq!(ok("///a//b/./c"), b"/a/b/c");
        assert_eq!(ok("/a/./././b"), b"/a/b");
        assert_eq!(ok("/."), b"/");
        assert_eq!(ok("/./"), b"/");
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(ok("/a/"), b"/a");
        assert_eq!(ok("/a/b///"), b"/a/b");
        assert_eq!(ok("/a/."), b"/a");
    }

    #[test]
    fn dot_dot_is_resolved_lexically() {
        assert_eq!(ok("/a/b/../c"), b"/a/c");
        assert_eq!(ok("/a/b/.."), b"/a");
        assert_eq!(ok("/a/b/../.."), b"/");
        assert_eq!(ok("/a/b/../../c/./d/"), b"/c/d");
        assert_eq!(ok("/a/..b/../c"), b"/a/c");
    }

    #[test]
    fn dot_dot_at_the_root_stays_at_the_root() {
        assert_eq!(ok("/.."), b"/");
        assert_eq!(ok("/../x"), b"/x");
        assert_eq!(ok("/../../x/../../y"), b"/y");
    }

    #[test]
    fn names_are_bytes() {
        // Not UTF-8: a lone 0xff, Latin-1, a broken sequence; and UTF-8 beyond ASCII.
        for name in [&b"a\xffb"[..], b"caf\xe9", b"\xc3\x28", "日本".as_bytes(), b"\x01\x7f\x80"] {
            let path = [b"/d/".as_slice(), name].concat();
            assert_eq!(ok(&path), path, "{:?}", show(name));
            assert_eq!(ok([&path[..], b"/./"].concat()), path);
            assert_eq!(ok([&path[..], b"/../e"].concat()), b"/d/e");
            assert_eq!(split_parent(&path), Some((&b"/d"[..], name)));
            check_normal(&path).unwrap();
        }
        // Bytes that look like '.' or '/' in other encodings are names like any other.
        assert_eq!(ok(b"/\xc0\xae\xc0\xae/x"), b"/\xc0\xae\xc0\xae/x");
        assert_eq!(ok(b"/\xc0\xaf"), b"/\xc0\xaf");
        assert!(matches!(check_normal(b"/a\xff/"), Err(Error::InvalidArgument(_))));
    }

    /// `check_normal` says what comparing a path with its normal form says, error for error.
    #[test]
    fn a_normal_path_is_one_that_normalizes_to_itself() {
        let long = "n".repeat(MAX_NAME + 1);
        let mut paths: Vec<Vec<u8>> = ["", "a", "/", "//", "/a", "/a/", "/a//b", "/./a", "/a/.", "/a/..", "/..", "/.a", "/a./b..", "/a\0b"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        paths.push(format!("/{long}").into_bytes());
        paths.push(format!("/{long}/..").into_bytes());
        paths.push(format!("/a/../{long}").into_bytes());
        paths.push(format!("/{}", "a/".repeat(MAX_PATH / 2)).into_bytes());
        // Every path of up to five characters from '/', '.', 'a'.
        let mut short: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            short = short.iter().flat_map(|p| [b'/', b'.', b'a'].map(|c| [p.as_slice(), &[c]].concat())).collect();
            paths.extend(short.iter().cloned());
        }
        for path in &paths {
            let compared = normalize(path).and_then(|n| if n == *path { Ok(()) } else { Err(Error::InvalidArgument("")) });
            let checked = check_normal(path);
            let errno = |r: &Result<(), Error>| r.as_ref().err().map(Error::errno);
            assert_eq!(errno(&checked), errno(&compared), "{:?}", show(path));
        }
    }

    #[test]
    fn spelling_demands_are_kept() {
        let plain = spell(b"/a/b").unwrap();
        assert!(!plain.dir_only && plain.walked.is_empty());
        assert_eq!(plain.last, Last::Name);
        let trailing = spell(b"/a/b/").unwrap();
        assert!(trailing.dir_only && trailing.walked.is_empty());
        assert_eq!(trailing.path, b"/a/b");
        let dot = spell(b"/a/b/.").unwrap();
        assert!(dot.dir_only);
        assert_eq!(dot.last, Last::Dot);
        let up = spell(b"/a/f/../c").unwrap();
        assert_eq!((up.path.as_slice(), up.walked.clone(), up.dir_only), (&b"/a/c"[..], vec![b"/a/f".to_vec()], false));
        let up_last = spell(b"/a/f/..").unwrap();
        assert_eq!((up_last.path.as_slice(), up_last.dir_only, up_last.last), (&b"/a"[..], true, Last::DotDot));
        // The root is a directory; nothing to demand of it.
        for root in ["/", "//"] {
            let spelled = spell(root.as_bytes()).unwrap();
            assert!(!spelled.dir_only && spelled.walked.is_empty(), "{root:?}");
        }
        assert_eq!(spell(b"/..").unwrap().walked, Vec::<Vec<u8>>::new());
    }

    #[test]
    fn relative_paths_are_rejected() {
        for path in ["", "a", "a/b", "./a", "../a", " /a", "\u{ff}/a"] {
            assert!(matches!(normalize(path.as_bytes()), Err(Error::RelativePath)), "{path:?}");
        }
        assert!(matches!(normalize(b"\xff/a"), Err(Error::RelativePath)));
    }

    #[test]
    fn nul_bytes_are_rejected() {
        for path in ["/a\0b", "/\0", "/a/\0/b"] {
            let err = normalize(path.as_bytes());
            assert!(matches!(err, Err(Error::InvalidArgument("path contains a NUL byte"))), "{path:?}: {err:?}");
        }
    }

    #[test]
    fn component_length_limit_is_inclusive() {
        let longest = "n".repeat(MAX_NAME);
        assert_eq!(ok(format!("/{longest}")), format!("/{longest}").into_bytes());
        assert_eq!(ok(format!("/d/{longest}/")), format!("/d/{longest}").into_bytes());

        let too_long = "n".repeat(MAX_NAME + 1);
        for path in [format!("/{too_long}"), format!("/d/{too_long}/e"), format!("/d/{too_long}/..")] {
            assert!(matches!(normalize(path.as_bytes()), Err(Error::NameTooLong)));
        }
    }

    #[test]
    fn length_limit_counts_bytes_not_characters() {
        // 'é' is two bytes in UTF-8: 128 of them make a 256-byte component.
        let name = "é".repeat(128);
        assert!(matches!(normalize(format!("/{name}").as_bytes()), Err(Error::NameTooLong)));
        let name = "é".repeat(127);
        assert_eq!(ok(format!("/{name}")), format!("/{name}").into_bytes());
        // Bytes that are not UTF-8 count one each.
        let mut path = vec![b'/'];
        path.extend([0xff; MAX_NAME]);
        assert_eq!(ok(&path), path);
        path.push(0xff);
        assert!(matches!(normalize(&path), Err(Error::NameTooLong)));
    }

    #[test]
    fn path_length_limit_is_inclusive() {
        let longest = path_of_len(MAX_PATH);
        assert_eq!(ok(&longest), longest);
        assert!(matches!(normalize(&path_of_len(MAX_PATH + 1)), Err(Error::NameTooLong)));
        // The limit applies to the input, even if it would normalise to something short.
        assert_eq!(ok("/".repeat(MAX_PATH)), b"/");
        assert!(matches!(normalize("/".repeat(MAX_PATH + 1).as_bytes()), Err(Error::NameTooLong)));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for path in [&b"/"[..], b"/a//b/./c/", b"/../x", b"/a/b/../c", b"/a/b/../..", b"/\xff//\xfe/."] {
            let once = ok(path);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn split_parent_of_normalised_paths() {
        assert_eq!(split_parent(b"/"), None);
        assert_eq!(split_parent(b"/a"), Some((&b"/"[..], &b"a"[..])));
        assert_eq!(split_parent(b"/a/b"), Some((&b"/a"[..], &b"b"[..])));
        assert_eq!(split_parent(b"/a/b/c.txt"), Some((&b"/a/b"[..], &b"c.txt"[..])));
    }

    #[test]
    fn split_parent_rejects_what_is_not_a_normalised_path() {
        assert_eq!(split_parent(b""), None);
        assert_eq!(split_parent(b"a"), None);
        assert_eq!(split_parent(b"/a/"), None);
    }

    #[test]
    fn join_undoes_split_parent() {
        assert_eq!(join(b"/", b"a"), b"/a");
        assert_eq!(join(b"/a", b"b"), b"/a/b");
        assert_eq!(join(b"/a\xff", b"\xe9"), b"/a\xff/\xe9");
        for path in [&b"/a"[..], b"/a/b", b"/\xff/\xfe\xfd"] {
            let (dir, name) = split_parent(path).unwrap();
            assert_eq!(join(dir, name), path);
        }
    }

    #[test]
    fn below_means_strictly_inside_a_directory() {
        assert!(is_below(b"/a/b", b"/a"));
        assert!(is_below(b"/a/b/c", b"/a"));
        assert!(is_below(b"/a", b"/"));
        assert!(is_below(b"/\xff/x", b"/\xff"));
        assert!(!is_below(b"/a", b"/a"));
        assert!(!is_below(b"/", b"/"));
        assert!(!is_below(b"/ab", b"/a"), "a sibling sharing the prefix");
        assert!(!is_below(b"/a\xff", b"/a"));
        assert!(!is_below(b"/b", b"/a"));
        assert!(!is_below(b"/a", b"/a/b"));
    }

    #[test]
    fn rebase_moves_the_prefix() {
        assert_eq!(rebase(b"/a/x", b"/a", b"/b"), b"/b/x");
        assert_eq!(rebase(b"/a/x/y", b"/a", b"/c/d"), b"/c/d/x/y");
        assert_eq!(rebase(b"/\xff/\xe9", b"/\xff", b"/\xc3\x28"), b"/\xc3\x28/\xe9");
    }

    #[test]
    fn shown_paths_are_lossy_text() {
        assert_eq!(show(b"/a/b"), "/a/b");
        assert_eq!(show("/日本".as_bytes()), "/日本");
        assert_eq!(show(b"/caf\xe9"), "/caf\u{fffd}");
    }
}
