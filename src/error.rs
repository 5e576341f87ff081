//! Typed errors, one enum per layer, and the single place where they become `errno` values.

use crate::ids::Rank;

/// A configuration variable that failed validation at init.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// Its value as set.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A failed UCX call: which call, and the `ucs_status_t` it returned.
#[derive(Debug, thiserror::Error)]
#[error("UCX {op} failed: {message} (status {status})")]
pub struct UcxError {
    /// The UCX function that failed.
    pub op: &'static str,
    /// Its `ucs_status_t`.
    pub status: i32,
    /// UCX's text for the status.
    pub message: String,
}

/// Errors of the node-local chunk store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call on a chunk file or the store directory failed.
    #[error("chunk store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No room for another operation in the io_uring submission queue.
    #[error("io_uring submission queue is full")]
    QueueFull,
}

/// A message that does not decode: what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than its layout says.
    #[error("message is truncated")]
    Truncated,
    /// Not a BenchFS message.
    #[error("bad magic number")]
    BadMagic,
    /// An opcode this version does not know.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    /// A length or flag field out of range, or bytes left over.
    #[error("length field out of range")]
    BadLength,
    /// A listed name that is empty, longer than a name may be, or holds a `/` or a NUL byte.
    #[error("not a valid name")]
    BadPath,
}

/// Errors of MPI bootstrap (communicator duplication, address exchange).
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// `MPI_Init` has not been called (or `MPI_Finalize` has).
    #[error("MPI is not initialized: call MPI_Init before benchfs_init")]
    MpiNotInitialized,
    /// `MPI_COMM_NULL` or an invalid communicator.
    #[error("MPI_COMM_NULL or an invalid communicator was passed")]
    BadCommunicator,
    /// The progress thread (or its eventfd) could not be created.
    #[error("progress thread failed to start: {0}")]
    Thread(#[from] std::io::Error),
}

/// Errors of a file-system operation, as the application sees them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call before init or after the last finalize (`ENOTCONN`).
    #[error("BenchFS is not initialized (call benchfs_init first)")]
    NotInitialized,
    /// A call in a child made by `fork()` of a process that had initialised BenchFS: the child
    /// has no progress thread, and the parent's state is not its own (`ENOTCONN`).
    #[error("BenchFS is not available in a child made by fork()")]
    ForkedChild,
    /// A `BENCHFS_*` variable failed validation (`EINVAL`).
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// MPI or the progress thread could not be set up.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] BootstrapError),
    /// A UCX call failed (`EIO`).
    #[error(transparent)]
    Ucx(#[from] UcxError),
    /// The node-local chunk store failed (its own errno, else `EIO`).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A message did not decode (`EPROTO`).
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    /// A request failed on the rank that served it, with that rank's errno.
    #[error("{rank}: {} (errno {errno})", std::io::Error::from_raw_os_error(*errno))]
    Remote {
        /// The rank that served the request.
        rank: Rank,
        /// Its errno.
        errno: i32,
    },
    /// A NULL pointer where the C API needs memory (`EFAULT`).
    #[error("null pointer argument: {0}")]
    NullPointer(&'static str),
    /// An argument out of range (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A path that does not start with `/` (`EINVAL`).
    #[error("path is not absolute")]
    RelativePath,
    /// A path or component over the limits (`ENAMETOOLONG`).
    #[error("file name too long")]
    NameTooLong,
    /// `ENOENT`.
    #[error("no such file or directory")]
    NotFound,
    /// `EEXIST`.
    #[error("file exists")]
    Exists,
    /// `EISDIR`.
    #[error("is a directory")]
    IsDirectory,
    /// `ENOTDIR`.
    #[error("not a directory")]
    NotDirectory,
    /// `ENOTEMPTY`.
    #[error("directory not empty")]
    NotEmpty,
    /// The root directory, which cannot be removed or renamed (`EBUSY`).
    #[error("resource busy")]
    Busy,
    /// A record a rename holds for a moment; the caller tries again (`EAGAIN` on the wire only).
    #[error("held by a rename")]
    Locked,
    /// `EACCES`.
    #[error("permission denied")]
    Access,
    /// Not an open BenchFS descriptor, or not open for this access (`EBADF`).
    #[error("bad file descriptor {0}")]
    BadFd(i32),
    /// The descriptor table is full (`EMFILE`).
    #[error("too many open files")]
    TooManyOpenFiles,
    /// Offset plus length beyond `off_t` (`EFBIG`).
    #[error("file too large")]
    FileTooLarge,
    /// The progress thread has stopped (`ENOTCONN`).
    #[error("the progress thread has stopped")]
    ProgressStopped,
    /// A request its sender may not send (`EPERM`).
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    /// This rank's progress thread failed (a panic or a fatal error): nothing is served any
    /// more, and every call fails (`EIO`).
    #[error("the progress thread failed; BenchFS cannot serve on this rank any more")]
    ProgressFailed,
    /// The rank a call needs has died (`EIO`).
    #[error("{0} is unreachable (its process is gone)")]
    PeerLost(Rank),
    /// Another rank failed to initialize; its errno.
    #[error("another rank failed to initialize: {} (errno {errno})", std::io::Error::from_raw_os_error(*errno))]
    PeerInitFailed {
        /// The errno of the lowest rank that failed.
        errno: i32,
    },
    /// A broken internal invariant (`EIO`).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The `errno` value this error is reported as, in the C API and on the wire.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotInitialized | Error::ForkedChild | Error::ProgressStopped => libc::ENOTCONN,
            Error::ProgressFailed => libc::EIO,
            Error::NotPermitted(_) => libc::EPERM,
            Error::Config(_) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::MpiNotInitialized) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::BadCommunicator) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::Thread(e)) => e.raw_os_error().unwrap_or(libc::EAGAIN),
            Error::Ucx(_) => libc::EIO,
            Error::Storage(StorageError::Io(e)) => e.raw_os_error().unwrap_or(libc::EIO),
            // A blocking caller never sees EAGAIN: a full queue is an internal failure.
            Error::Storage(StorageError::QueueFull) => libc::EIO,
            Error::Wire(_) => libc::EPROTO,
            Error::Remote { errno, .. } => *errno,
            Error::NullPointer(_) => libc::EFAULT,
            Error::InvalidArgument(_) | Error::RelativePath => libc::EINVAL,
            Error::NameTooLong => libc::ENAMETOOLONG,
            Error::NotFound => libc::ENOENT,
            Error::Exists => libc::EEXIST,
            Error::IsDirectory => libc::EISDIR,
            Error::NotDirectory => libc::ENOTDIR,
            Error::NotEmpty => libc::ENOTEMPTY,
            Error::Busy => libc::EBUSY,
            Error::Locked => libc::EAGAIN,
            Error::Access => libc::EACCES,
            Error::BadFd(_) => libc::EBADF,
            Error::TooManyOpenFiles => libc::EMFILE,
            Error::FileTooLarge => libc::EFBIG,
            Error::Internal(_) | Error::PeerLost(_) => libc::EIO,
            Error::PeerInitFailed { errno } => *errno,
        }
    }
}

/// A result whose error is [`Error`] unless another is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;
