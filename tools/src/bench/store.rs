//! The two compared file systems behind one interface, [`Store`]: BenchFS and a local POSIX
//! directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// How a pattern opens a file; both stores create files with mode 0644.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// `O_RDONLY`
    Read,
    /// `O_WRONLY | O_CREAT`
    Create,
    /// `O_WRONLY | O_CREAT | O_TRUNC`
    CreateTruncate,
}

/// A failed file-system call, with the errno it reported.
#[derive(Debug)]
pub struct OpError {
    pub op: &'static str,
    pub errno: i32,
    pub detail: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {} (errno {})", self.op, self.detail, self.errno)
    }
}

/// What the patterns need to know from `stat`.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    pub size: u64,
    /// File type and permission bits, as `st_mode`.
    pub mode: u32,
}

impl Attrs {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// Which of the two compared file systems a [`Store`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum System {
    BenchFs,
    Posix,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            System::BenchFs => "BenchFS",
            System::Posix => "POSIX",
        }
    }
}

/// The calls a benchmark pattern makes. Both implementations take the same absolute paths, so
/// one pattern function drives both file systems call for call.
pub trait Store {
    /// An open file, from [`Store::open`] until [`Store::close`].
    type File;

    fn system(&self) -> System;

    fn label(&self) -> &'static str {
        self.system().label()
    }

    fn open(&self, path: &str, mode: OpenMode) -> Result<Self::File, OpError>;
    fn close(&self, file: Self::File) -> Result<(), OpError>;
    fn pwrite(&self, file: &Self::File, buf: &[u8], offset: u64) -> Result<usize, OpError>;
    fn pread(&self, file: &Self::File, buf: &mut [u8], offset: u64) -> Result<usize, OpError>;
    fn fsync(&self, file: &Self::File) -> Result<(), OpError>;
    /// What `stat` reports about `path` (following symbolic links, like `stat(2)`).
    fn stat(&self, path: &str) -> Result<Attrs, OpError>;
    fn unlink(&self, path: &str) -> Result<(), OpError>;
    fn mkdir(&self, path: &str) -> Result<(), OpError>;
    fn rmdir(&self, path: &str) -> Result<(), OpError>;
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError>;
    /// Opens the directory `path`, passes the name of every entry in it (`.` and `..` included)
    /// to `visit`, and closes it: one `opendir`, `readdir` loop, `closedir`.
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError>;

    /// Writes all of `buf`, continuing after short writes as a POSIX program must.
    fn pwrite_all(&self, file: &Self::File, buf: &[u8], offset: u64) -> Result<(), OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pwrite(file, &buf[done..], offset + done as u64)? {
                0 => return Err(OpError { op: "pwrite", errno: libc::EIO, detail: "wrote 0 bytes".into() }),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or end of file; returns the number of bytes read.
    fn pread_full(&self, file: &Self::File, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pread(file, &mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
}

/// BenchFS through its Rust API; a file is a BenchFS descriptor.
pub struct BenchFs;

fn bfs_err(op: &'static str) -> impl FnOnce(benchfs::Error) -> OpError {
    move |e| OpError { op, errno: e.errno(), detail: e.to_string() }
}

impl Store for BenchFs {
    type File = i32;

    fn system(&self) -> System {
        System::BenchFs
    }
    fn open(&self, path: &str, mode: OpenMode) -> Result<i32, OpError> {
        let flags = match mode {
            OpenMode::Read => libc::O_RDONLY,
            OpenMode::Create => libc::O_WRONLY | libc::O_CREAT,
            OpenMode::CreateTruncate => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
        };
        benchfs::open(path, flags, 0o644).map_err(bfs_err("open"))
    }
    fn close(&self, fd: i32) -> Result<(), OpError> {
        benchfs::close(fd).map_err(bfs_err("close"))
    }
    fn pwrite(&self, &fd: &i32, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pwrite(fd, buf, offset).map_err(bfs_err("pwrite"))
    }
    fn pread(&self, &fd: &i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pread(fd, buf, offset).map_err(bfs_err("pread"))
    }
    fn fsync(&self, &fd: &i32) -> Result<(), OpError> {
        benchfs::fsync(fd).map_err(bfs_err("fsync"))
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        benchfs::stat(path).map(|st| Attrs { size: st.size, mode: st.mode }).map_err(bfs_err("stat"))
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        benchfs::unlink(path).map_err(bfs_err("unlink"))
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::mkdir(path, 0o755).map_err(bfs_err("mkdir"))
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::rmdir(path).map_err(bfs_err("rmdir"))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        benchfs::rename(from, to).map_err(bfs_err("rename"))
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        // The stream is closed when it is dropped, on every path out of this function.
        let dir = benchfs::opendir(path).map_err(bfs_err("opendir"))?;
        for entry in dir {
            visit(&entry.map_err(bfs_err("readdir"))?.name);
        }
        Ok(())
    }
}

/// The kernel file system under `root`, through `std::fs`: each call is the one system call
/// IOR's POSIX backend makes (`open`, `pwrite`, `pread`, `fsync`, `close`, `stat`, `unlink`,
/// `mkdir`, `rmdir`, `rename`, and `opendir`/`readdir`/`closedir`).
pub struct Posix {
    pub root: String,
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> OpError {
    move |e| {
        // Only errors that std raises itself, such as a NUL byte in a path, carry no errno.
        let errno = e.raw_os_error().unwrap_or(if e.kind() == io::ErrorKind::InvalidInput { libc::EINVAL } else { libc::EIO });
        OpError { op, errno, detail: e.to_string() }
    }
}

impl Posix {
    fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("{}{path}", self.root))
    }
}

impl Store for Posix {
    type File = File;

    fn system(&self) -> System {
        System::Posix
    }
    fn open(&self, path: &str, mode: OpenMode) -> Result<File, OpError> {
        // std adds O_CLOEXEC, as the benchmark always did.
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::Create => options.write(true).create(true),
            OpenMode::CreateTruncate => options.write(true).create(true).truncate(true),
        };
        options.mode(0o644).open(self.path(path)).map_err(io_err("open"))
    }
    fn close(&self, file: File) -> Result<(), OpError> {
        // Dropping the File calls close(2), here and so inside the timing. std does not report
        // what close returns; for a local file, its errors would have surfaced in fsync first.
        drop(file);
        Ok(())
    }
    fn pwrite(&self, file: &File, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        file.write_at(buf, offset).map_err(io_err("pwrite"))
    }
    fn pread(&self, file: &File, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        file.read_at(buf, offset).map_err(io_err("pread"))
    }
    fn fsync(&self, file: &File) -> Result<(), OpError> {
        file.sync_all().map_err(io_err("fsync"))
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        let meta = fs::metadata(self.path(path)).map_err(io_err("stat"))?;
        Ok(Attrs { size: meta.len(), mode: meta.mode() })
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        fs::remove_file(self.path(path)).map_err(io_err("unlink"))
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        // DirBuilder rather than fs::create_dir to keep mode 0755, like the BenchFS side.
        DirBuilder::new().mode(0o755).create(self.path(path)).map_err(io_err("mkdir"))
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        fs::remove_dir(self.path(path)).map_err(io_err("rmdir"))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        fs::rename(self.path(from), self.path(to)).map_err(io_err("rename"))
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        let entries = fs::read_dir(self.path(path)).map_err(io_err("opendir"))?;
        // readdir(3) returns `.` and `..` like any other entry, and std's ReadDir reads them but
        // does not pass them on; they are reported here so that both stores list the same entries.
        visit(b".");
        visit(b"..");
        for entry in entries {
            visit(entry.map_err(io_err("readdir"))?.file_name().as_bytes());
        }
        Ok(())
    }
}
