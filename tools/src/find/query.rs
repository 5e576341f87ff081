//! The command line of `benchfs-find` and the tests it asks for.
//!
//! Options (`--contact FILE`, `--print`, `--help`) are parsed with lexopt. find's tests
//! (`-name GLOB`, `-size N`, `-newer FILE`) are single-dash words rather than clusters of
//! one-letter options, so they are taken whole from the raw arguments before lexopt sees them.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use lexopt::prelude::*;

pub const USAGE: &str = "usage: benchfs-find [--contact FILE] [--print] PATH [-name GLOB] [-size [+|-]N[c|k|M|G]] [-newer FILE]
  --contact FILE  contact file of the running BenchFS (default: $BENCHFS_CONTACT_FILE)
  --print         print every matching path (each rank prints its own share)";

#[derive(Debug, PartialEq, Eq)]
pub enum SizeTest {
    Exactly(u64),
    Above(u64),
    Below(u64),
}

/// `-size [+|-]N[unit]` in find's own units: `c` bytes; `k`, `M`, `G` the powers of 1024 that
/// [`benchfs::parse_size`] gives those suffixes (find's letters are case-sensitive); `b` or no
/// suffix 512-byte blocks. Returns the test and the unit in bytes.
fn parse_size_test(arg: &str) -> Option<(SizeTest, u64)> {
    let (cmp, rest) = match arg.as_bytes().first()? {
        b'+' => ('+', &arg[1..]),
        b'-' => ('-', &arg[1..]),
        _ => ('=', arg),
    };
    let (digits, unit) = match rest.char_indices().last()? {
        (i, 'c') => (&rest[..i], 1),
        (i, 'b') => (&rest[..i], 512),
        (i, suffix @ ('k' | 'M' | 'G')) => (&rest[..i], benchfs::parse_size(&format!("1{suffix}"))?),
        _ => (rest, 512),
    };
    let n: u64 = digits.parse().ok()?;
    let test = match cmp {
        '+' => SizeTest::Above(n),
        '-' => SizeTest::Below(n),
        _ => SizeTest::Exactly(n),
    };
    Some((test, unit))
}

/// Whether `size` bytes pass the test; like find, the size is rounded up to whole units first.
pub fn size_matches(test: &SizeTest, unit: u64, size: u64) -> bool {
    let units = size.div_ceil(unit);
    match *test {
        SizeTest::Exactly(n) => units == n,
        SizeTest::Above(n) => units > n,
        SizeTest::Below(n) => units < n,
    }
}

#[derive(Debug)]
pub struct Query {
    /// The path to search, as given: bytes, like any path.
    pub root: Vec<u8>,
    pub name: Option<CString>,
    pub size: Option<(SizeTest, u64)>,
    pub newer: Option<PathBuf>,
    pub print: bool,
    pub contact: Option<PathBuf>,
}

pub enum Parsed {
    Run(Query),
    Help,
}

/// The next argument if it is one of find's tests (a single dash and a word), with its value.
fn take_test(parser: &mut lexopt::Parser) -> Result<Option<(String, OsString)>, lexopt::Error> {
    let Some(mut raw) = parser.try_raw_args() else { return Ok(None) };
    let word = match raw.peek().and_then(|arg| arg.to_str()) {
        Some(word) if word.len() > 2 && word.starts_with('-') && !word.starts_with("--") => word.to_string(),
        _ => return Ok(None),
    };
    raw.next();
    let value = raw.next().ok_or_else(|| format!("{word} needs a value"))?;
    Ok(Some((word, value)))
}

/// Adds the test `word value` to the query.
fn add_test(q: &mut Query, word: &str, value: OsString) -> Result<(), lexopt::Error> {
    match word {
        "-name" => q.name = Some(CString::new(value.into_vec()).map_err(|_| "-name: NUL in pattern")?),
        "-size" => {
            let text = value.string()?;
            q.size = Some(parse_size_test(&text).ok_or(format!("-size: cannot parse {text:?}"))?);
        }
        "-newer" => q.newer = Some(PathBuf::from(value)),
        other => return Err(format!("unknown option {other}").into()),
    }
    Ok(())
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Parsed, lexopt::Error> {
    let mut q = Query { root: Vec::new(), name: None, size: None, newer: None, print: false, contact: None };
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        if let Some((word, value)) = take_test(&mut parser)? {
            add_test(&mut q, &word, value)?;
            continue;
        }
        let Some(arg) = parser.next()? else { break };
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Long("contact") => q.contact = Some(PathBuf::from(parser.value()?)),
            Long("print") => q.print = true,
            Value(path) if q.root.is_empty() => q.root = path.into_vec(),
            _ => return Err(arg.unexpected()),
        }
    }
    if q.root.is_empty() {
        return Err("no PATH given".into());
    }
    Ok(Parsed::Run(q))
}

/// The BenchFS path for PATH: relative paths start at the BenchFS root.
pub fn benchfs_path(path: &[u8]) -> Vec<u8> {
    let mut trimmed = path;
    while let Some(rest) = trimmed.strip_prefix(b"./") {
        trimmed = rest;
    }
    if trimmed.starts_with(b"/") {
        trimmed.to_vec()
    } else {
        [b"/", trimmed].concat()
    }
}

/// Whether `name` (any bytes, as names are) matches the shell pattern, as `fnmatch(3)` decides.
pub fn glob_matches(pattern: &CString, name: &[u8]) -> bool {
    let Ok(name) = CString::new(name) else { return false };
    // SAFETY: both are valid NUL-terminated strings.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(args: &[&str]) -> Result<Query, String> {
        match parse_args(args.iter().copied()) {
            Ok(Parsed::Run(q)) => Ok(q),
            Ok(Parsed::Help) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn sizes_in_find_units() {
        let (t, u) = parse_size_test("3901c").unwrap();
        assert!(size_matches(&t, u, 3901) && !size_matches(&t, u, 3900));
        let (t, u) = parse_size_test("+1k").unwrap();
        assert!(size_matches(&t, u, 1025) && !size_matches(&t, u, 1024));
        let (t, u) = parse_size_test("-2M").unwrap();
        assert!(size_matches(&t, u, 1) && !size_matches(&t, u, 2 << 20));
        let (t, u) = parse_size_test("1G").unwrap();
        assert_eq!((t, u), (SizeTest::Exactly(1), 1 << 30));
        let (t, u) = parse_size_test("1").unwrap();
        assert!(size_matches(&t, u, 1) && size_matches(&t, u, 512) && !size_matches(&t, u, 513));
        assert_eq!(parse_size_test("2b"), Some((SizeTest::Exactly(2), 512)));
        for bad in ["x", "", "+", "1K", "1m", "1g", "k"] {
            assert!(parse_size_test(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn arguments_as_io500_passes_them() {
        let q = query(&["./datafiles", "-newer", "/r/timestampfile", "-size", "3901c", "-name", "*01*"]).unwrap();
        assert_eq!(benchfs_path(&q.root), b"/datafiles");
        assert!(glob_matches(q.name.as_ref().unwrap(), b"file.mdtest.01.7"));
        assert!(!glob_matches(q.name.as_ref().unwrap(), b"file.mdtest.10.7"));
        assert_eq!(q.size, Some((SizeTest::Exactly(3901), 1)));
        assert_eq!(q.newer, Some(PathBuf::from("/r/timestampfile")));
        assert!(!q.print && q.contact.is_none());
    }

    #[test]
    fn paths_and_names_are_bytes() {
        assert_eq!(benchfs_path(b"././d\xff"), b"/d\xff");
        assert_eq!(benchfs_path(b"/caf\xe9"), b"/caf\xe9");
        let star = CString::new("caf*").unwrap();
        assert!(glob_matches(&star, b"caf\xe9"));
        assert!(glob_matches(&star, "café".as_bytes()));
        assert!(!glob_matches(&star, b"\xffcaf"));
        assert!(!glob_matches(&star, b"caf\0e"), "a name with NUL matches nothing");
    }

    #[test]
    fn options() {
        let q = query(&["--contact", "/tmp/c", "/tree", "--print", "-name", "f.r1.*"]).unwrap();
        assert_eq!(q.contact, Some(PathBuf::from("/tmp/c")));
        assert!(q.print);
        assert_eq!(q.root, b"/tree");
        let q = query(&["--contact=/tmp/d", "/"]).unwrap();
        assert_eq!(q.contact, Some(PathBuf::from("/tmp/d")));
        assert_eq!(query(&["--help"]).err().as_deref(), Some("help"));
        assert_eq!(query(&["-h"]).err().as_deref(), Some("help"));
    }

    #[test]
    fn bad_arguments() {
        assert!(query(&["-bogus", "x", "/"]).unwrap_err().contains("-bogus"));
        assert!(query(&["/", "-name"]).unwrap_err().contains("-name"));
        assert!(query(&["/", "-size", "12q"]).unwrap_err().contains("-size"));
        assert!(query(&["/", "/other"]).unwrap_err().contains("/other"));
        assert!(query(&["--contact"]).is_err());
        assert!(query(&["--bogus", "/"]).is_err());
        assert!(query(&[]).unwrap_err().contains("no PATH"));
    }
}
