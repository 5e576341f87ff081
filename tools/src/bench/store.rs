//! The two compared file systems behind one interface, [`Store`]: BenchFS and a local POSIX
//! directory.

use std::ffi::{CStr, CString};

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

/// The calls a benchmark pattern makes. Both implementations take the same absolute paths and
/// return plain descriptors, so one pattern function drives both file systems call for call.
pub trait Store {
    fn system(&self) -> System;

    fn label(&self) -> &'static str {
        self.system().label()
    }

    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError>;
    fn close(&self, fd: i32) -> Result<(), OpError>;
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError>;
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError>;
    fn fsync(&self, fd: i32) -> Result<(), OpError>;
    /// What `stat` reports about `path` (following symbolic links, like `stat(2)`).
    fn stat(&self, path: &str) -> Result<Attrs, OpError>;
    fn unlink(&self, path: &str) -> Result<(), OpError>;
    fn mkdir(&self, path: &str) -> Result<(), OpError>;
    fn rmdir(&self, path: &str) -> Result<(), OpError>;
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError>;
    /// Opens the directory `path`, passes the name of every entry it returns (`.` and `..`
    /// included) to `visit`, and closes it: one `opendir`, `readdir` loop, `closedir`.
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError>;

    /// Writes all of `buf`, continuing after short writes as a POSIX program must.
    fn pwrite_all(&self, fd: i32, buf: &[u8], offset: u64) -> Result<(), OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pwrite(fd, &buf[done..], offset + done as u64)? {
                0 => return Err(OpError { op: "pwrite", errno: libc::EIO, detail: "wrote 0 bytes".into() }),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or end of file; returns the number of bytes read.
    fn pread_full(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        let mut done = 0;
        while done < buf.len() {
            match self.pread(fd, &mut buf[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        Ok(done)
    }
}

pub struct BenchFs;

pub fn bfs_err(op: &'static str, e: benchfs::Error) -> OpError {
    OpError { op, errno: e.errno(), detail: e.to_string() }
}

impl Store for BenchFs {
    fn system(&self) -> System {
        System::BenchFs
    }
    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError> {
        benchfs::open(path, flags, 0o644).map_err(|e| bfs_err("open", e))
    }
    fn close(&self, fd: i32) -> Result<(), OpError> {
        benchfs::close(fd).map_err(|e| bfs_err("close", e))
    }
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pwrite(fd, buf, offset).map_err(|e| bfs_err("pwrite", e))
    }
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        benchfs::pread(fd, buf, offset).map_err(|e| bfs_err("pread", e))
    }
    fn fsync(&self, fd: i32) -> Result<(), OpError> {
        benchfs::fsync(fd).map_err(|e| bfs_err("fsync", e))
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        benchfs::stat(path).map(|st| Attrs { size: st.size, mode: st.mode }).map_err(|e| bfs_err("stat", e))
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        benchfs::unlink(path).map_err(|e| bfs_err("unlink", e))
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::mkdir(path, 0o755).map_err(|e| bfs_err("mkdir", e))
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        benchfs::rmdir(path).map_err(|e| bfs_err("rmdir", e))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        benchfs::rename(from, to).map_err(|e| bfs_err("rename", e))
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        // The stream is closed when it is dropped, on every path out of this function.
        let dir = benchfs::opendir(path).map_err(|e| bfs_err("opendir", e))?;
        for entry in dir {
            visit(entry.map_err(|e| bfs_err("readdir", e))?.name.as_bytes());
        }
        Ok(())
    }
}

/// The kernel file system under `root`, through the same system calls IOR's POSIX backend uses.
pub struct Posix {
    pub root: String,
}

pub fn os_err(op: &'static str) -> OpError {
    let e = std::io::Error::last_os_error();
    OpError { op, errno: e.raw_os_error().unwrap_or(libc::EIO), detail: e.to_string() }
}

impl Posix {
    /// Runs a libc call that takes one path and returns -1 with errno on failure.
    pub fn path_call(&self, path: &str, op: &'static str, call: impl FnOnce(*const libc::c_char) -> libc::c_int) -> Result<(), OpError> {
        let p = self.cpath(path)?;
        if call(p.as_ptr()) < 0 {
            Err(os_err(op))
        } else {
            Ok(())
        }
    }

    pub fn cpath(&self, path: &str) -> Result<CString, OpError> {
        CString::new(format!("{}{}", self.root, path)).map_err(|_| OpError {
            op: "path",
            errno: libc::EINVAL,
            detail: "path contains a NUL byte".into(),
        })
    }
}

impl Store for Posix {
    fn system(&self) -> System {
        System::Posix
    }
    fn open(&self, path: &str, flags: i32) -> Result<i32, OpError> {
        let p = self.cpath(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o644 as libc::c_uint) };
        if fd < 0 {
            Err(os_err("open"))
        } else {
            Ok(fd)
        }
    }
    fn close(&self, fd: i32) -> Result<(), OpError> {
        // SAFETY: closing a descriptor this process opened and closes only once.
        if unsafe { libc::close(fd) } < 0 {
            Err(os_err("close"))
        } else {
            Ok(())
        }
    }
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, OpError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes of reading during the call.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) };
        usize::try_from(n).map_err(|_| os_err("pwrite"))
    }
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, OpError> {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writing during the call.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset as libc::off_t) };
        usize::try_from(n).map_err(|_| os_err("pread"))
    }
    fn fsync(&self, fd: i32) -> Result<(), OpError> {
        // SAFETY: plain system call on a descriptor.
        if unsafe { libc::fsync(fd) } < 0 {
            Err(os_err("fsync"))
        } else {
            Ok(())
        }
    }
    fn stat(&self, path: &str) -> Result<Attrs, OpError> {
        let p = self.cpath(path)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `p` is NUL-terminated and `st` has room for a `struct stat`.
        if unsafe { libc::stat(p.as_ptr(), st.as_mut_ptr()) } < 0 {
            return Err(os_err("stat"));
        }
        // SAFETY: stat returned 0, so it filled in `st`.
        let st = unsafe { st.assume_init() };
        Ok(Attrs { size: st.st_size as u64, mode: st.st_mode })
    }
    fn unlink(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "unlink", |p| unsafe { libc::unlink(p) })
    }
    fn mkdir(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "mkdir", |p| unsafe { libc::mkdir(p, 0o755) })
    }
    fn rmdir(&self, path: &str) -> Result<(), OpError> {
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        self.path_call(path, "rmdir", |p| unsafe { libc::rmdir(p) })
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), OpError> {
        let (f, t) = (self.cpath(from)?, self.cpath(to)?);
        // SAFETY: both paths are NUL-terminated strings that outlive the call.
        if unsafe { libc::rename(f.as_ptr(), t.as_ptr()) } < 0 {
            Err(os_err("rename"))
        } else {
            Ok(())
        }
    }
    fn list_dir(&self, path: &str, visit: &mut dyn FnMut(&[u8])) -> Result<(), OpError> {
        let p = self.cpath(path)?;
        // SAFETY: `p` is a NUL-terminated string that outlives the call.
        let dir = unsafe { libc::opendir(p.as_ptr()) };
        if dir.is_null() {
            return Err(os_err("opendir"));
        }
        let listed = loop {
            // readdir reports an error only through errno, and leaves errno alone at the end of
            // the stream; clearing it first tells the two apart.
            // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `dir` is an open stream that only this function uses.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                break if errno == 0 { Ok(()) } else { Err(os_err("readdir")) };
            }
            // SAFETY: a non-null entry stays valid until the next readdir or closedir of `dir`,
            // and its d_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            visit(name.to_bytes());
        };
        // SAFETY: `dir` came from opendir and is closed exactly once.
        if unsafe { libc::closedir(dir) } < 0 {
            return listed.and(Err(os_err("closedir")));
        }
        listed
    }
}
