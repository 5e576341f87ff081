//! The contact file: how a separate MPI job finds a running BenchFS and attaches to it.
//!
//! Written by rank 0 of the serving job (mode 0600: the UCX addresses are the keys to the file
//! system) and removed when it finalizes. Text, one field per line:
//!
//! ```text
//! benchfs-contact 2
//! chunk_size 1048576
//! client_key <32 hex digits: the key attached clients' requests carry (see `rpc::keys`)>
//! ranks 4
//! <hex UCX worker address of rank 0>
//! ...
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::config::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use crate::error::{Error, Result};
use crate::placement::MAX_RANKS;
use crate::rpc::wire::Credential;

const MAGIC: &str = "benchfs-contact 2";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub chunk_size: u64,
    pub client_key: Credential,
    pub addresses: Vec<Vec<u8>>,
}

impl Contact {
    pub fn encode(&self) -> String {
        let mut text =
            format!("{MAGIC}\nchunk_size {}\nclient_key {}\nranks {}\n", self.chunk_size, hex(&self.client_key), self.addresses.len());
        for address in &self.addresses {
            text.push_str(&hex(address));
            text.push('\n');
        }
        text
    }

    pub fn parse(text: &[u8]) -> Result<Contact> {
        let bad = Error::InvalidArgument("not a valid BenchFS contact file");
        let text = std::str::from_utf8(text).map_err(|_| Error::InvalidArgument("not a valid BenchFS contact file"))?;
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad);
        }
        let field = |line: Option<&str>, name: &str| -> Option<u64> { line?.strip_prefix(name)?.strip_prefix(' ')?.parse().ok() };
        let chunk_size = field(lines.next(), "chunk_size")
            .filter(|c| (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(c))
            .ok_or(Error::InvalidArgument("contact file: bad chunk_size"))?;
        let client_key = lines
            .next()
            .and_then(|line| line.strip_prefix("client_key "))
            .and_then(decode_hex)
            .and_then(|key| Credential::try_from(key.as_slice()).ok())
            .ok_or(Error::InvalidArgument("contact file: bad client_key"))?;
        // Bounded before anything is read or allocated for the ranks.
        let ranks = field(lines.next(), "ranks")
            .filter(|&r| r > 0 && r <= u64::from(MAX_RANKS))
            .map(|r| r as usize)
            .ok_or(Error::InvalidArgument("contact file: bad ranks"))?;
        let addresses: Vec<Vec<u8>> =
            lines.take(ranks).map(decode_hex).collect::<Option<_>>().ok_or(Error::InvalidArgument("contact file: bad address"))?;
        if addresses.len() != ranks {
            return Err(Error::InvalidArgument("contact file: fewer addresses than ranks"));
        }
        Ok(Contact { chunk_size, client_key, addresses })
    }

    /// Writes the file atomically (a temporary file renamed into place), readable by its owner
    /// only. The temporary file has an unpredictable name and is made new (`O_EXCL`, never
    /// through a link), so nothing another user planted beside the contact file is written to
    /// or used; the rename then replaces whatever is at `path` (a link itself, not its target).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let (tmp, mut file) = create_temporary(path)?;
        let written = file.write_all(self.encode().as_bytes()).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// A new file beside `path` with a random name, mode 0600.
fn create_temporary(path: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new();
    let mut last = std::io::Error::from_raw_os_error(libc::EEXIST);
    for attempt in 0..16u32 {
        let tmp = path.with_extension(format!("tmp.{:016x}", random.hash_one((std::process::id(), attempt))));
        let opened = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp);
        match opened {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(line: &str) -> Option<Vec<u8>> {
    if line.is_empty() || line.len() % 2 != 0 {
        return None;
    }
    (0..line.len()).step_by(2).map(|i| u8::from_str_radix(line.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Contact { chunk_size: 65536, client_key: [0xa5; 16], addresses: vec![vec![0, 1, 0xab], vec![0xff; 40]] };
        assert_eq!(Contact::parse(c.encode().as_bytes()).unwrap(), c);
    }

    #[test]
    fn damaged_files_are_refused() {
        let good = Contact { chunk_size: 4096, client_key: [3; 16], addresses: vec![vec![1, 2]] }.encode();
        for bad in [
            String::new(),
            good.replace("benchfs-contact 2", "benchfs-contact 1"),
            good.replace(&"03".repeat(16), &"03".repeat(15)),
            good.replace("client_key", "client-key"),
            good.replace("chunk_size 4096", "chunk_size 0"),
            good.replace("ranks 1", "ranks 2"),
            good.replace("ranks 1", "ranks 99999999999"),
            good.replace("ranks 1", &format!("ranks {}", MAX_RANKS + 1)),
            good.replace("chunk_size 4096", "chunk_size 1"),
            good.replace("chunk_size 4096", &format!("chunk_size {}", MAX_CHUNK_SIZE * 2)),
            good.replace("0102", "01g2"),
            good.replace("0102", "010"),
        ] {
            assert!(Contact::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(Contact::parse(&[0xff, 0xfe]).is_err());
    }

    /// What another user could plant at the name the temporary file once had (the contact
    /// path with `.tmp.<pid>`): a link to a file of the victim's, and a file of their own that
    /// everyone may read. Neither is written through or used.
    #[test]
    fn planted_temporary_files_are_never_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("benchfs-contact-plant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("contact");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let guessed = path.with_extension(format!("tmp.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &guessed).unwrap();
        let c = Contact { chunk_size: 4096, client_key: [3; 16], addresses: vec![vec![7; 9]] };
        c.write(&path).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "written through a planted link");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_file(&guessed).unwrap();
        std::fs::write(&guessed, b"").unwrap();
        std::fs::set_permissions(&guessed, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::remove_file(&path).unwrap();
        c.write(&path).unwrap();
        assert_eq!(std::fs::read(&guessed).unwrap(), b"", "a planted file was used");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Contact::parse(&std::fs::read(&path).unwrap()).unwrap(), c);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn written_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("benchfs-contact-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("contact");
        let c = Contact { chunk_size: 4096, client_key: [3; 16], addresses: vec![vec![7; 9]] };
        c.write(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Contact::parse(&std::fs::read(&path).unwrap()).unwrap(), c);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
