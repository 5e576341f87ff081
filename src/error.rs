//! Typed errors, one enum per layer, and the single place where they become `errno` values.

use crate::ids::Rank;

/// A configuration variable that failed validation at init.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A failed UCX call: which call, and the `ucs_status_t` it returned.
#[derive(Debug, thiserror::Error)]
#[error("UCX {op} failed: {message} (status {status})")]
pub struct UcxError {
    pub op: &'static str,
    pub status: i32,
    pub message: String,
}

/// Errors of the node-local chunk store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("chunk store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("io_uring submission queue is full")]
    QueueFull,
}

/// A message that does not decode: what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message is truncated")]
    Truncated,
    #[error("bad magic number")]
    BadMagic,
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    #[error("length field out of range")]
    BadLength,
    #[error("path is not valid UTF-8")]
    BadPath,
    #[error("sender rank {0} is not in the job")]
    BadRank(u32),
}

/// Errors of MPI bootstrap (communicator duplication, address exchange).
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("MPI is not initialized: call MPI_Init before benchfs_init")]
    MpiNotInitialized,
    #[error("MPI_COMM_NULL or an invalid communicator was passed")]
    BadCommunicator,
    #[error("progress thread failed to start: {0}")]
    Thread(#[from] std::io::Error),
}

/// Errors of a file-system operation, as the application sees them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("BenchFS is not initialized (call benchfs_init first)")]
    NotInitialized,
    #[error("BenchFS is already initialized on another communicator")]
    AlreadyInitialized,
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Ucx(#[from] UcxError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    #[error("{rank}: {} (errno {errno})", std::io::Error::from_raw_os_error(*errno))]
    Remote { rank: Rank, errno: i32 },
    #[error("null pointer argument: {0}")]
    NullPointer(&'static str),
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    #[error("path is not absolute")]
    RelativePath,
    #[error("file name too long")]
    NameTooLong,
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("is a directory")]
    IsDirectory,
    #[error("not a directory")]
    NotDirectory,
    #[error("directory not empty")]
    NotEmpty,
    #[error("resource busy")]
    Busy,
    #[error("permission denied")]
    Access,
    #[error("bad file descriptor {0}")]
    BadFd(i32),
    #[error("too many open files")]
    TooManyOpenFiles,
    #[error("file too large")]
    FileTooLarge,
    #[error("the progress thread has stopped")]
    ProgressStopped,
    #[error("{0} is unreachable (its process is gone)")]
    PeerLost(Rank),
    #[error("another rank failed to initialize: {} (errno {errno})", std::io::Error::from_raw_os_error(*errno))]
    PeerInitFailed { errno: i32 },
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The `errno` value this error is reported as, in the C API and on the wire.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotInitialized | Error::ProgressStopped => libc::ENOTCONN,
            Error::AlreadyInitialized => libc::EBUSY,
            Error::Config(_) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::MpiNotInitialized) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::BadCommunicator) => libc::EINVAL,
            Error::Bootstrap(BootstrapError::Thread(e)) => e.raw_os_error().unwrap_or(libc::EAGAIN),
            Error::Ucx(_) => libc::EIO,
            Error::Storage(StorageError::Io(e)) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::Storage(StorageError::QueueFull) => libc::EAGAIN,
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
            Error::Access => libc::EACCES,
            Error::BadFd(_) => libc::EBADF,
            Error::TooManyOpenFiles => libc::EMFILE,
            Error::FileTooLarge => libc::EFBIG,
            Error::Internal(_) | Error::PeerLost(_) => libc::EIO,
            Error::PeerInitFailed { errno } => *errno,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
