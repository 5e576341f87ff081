/*
 * BenchFS: an MPI-native ad-hoc distributed file system.
 *
 * Every rank of the communicator given to benchfs_init() is both a server and a
 * client: a background progress thread serves other ranks' requests while the
 * application thread calls the blocking, POSIX-shaped functions below.
 *
 * Conventions (as in POSIX):
 *   - Functions return -1 (or NULL) on failure and set errno; perror() works.
 *   - Paths are absolute inside the BenchFS namespace ("/dir/file"). Repeated
 *     slashes and "." components are normalised away and ".." goes up one
 *     component, with the rules of a kernel's walk: what "/", "/." or "/.."
 *     follows must be a directory (ENOTDIR) that exists (ENOENT). A relative
 *     path gives EINVAL, a component longer than 255 bytes or a path longer
 *     than 4095 bytes gives ENAMETOOLONG.
 *   - Names are bytes: any byte but NUL and '/' may appear in one, whether or
 *     not it is UTF-8 (no encoding is assumed), and readdir returns it unchanged.
 *   - Any call made before benchfs_init() or after the last benchfs_finalize()
 *     fails with ENOTCONN, and so does every call (benchfs_init included) in a
 *     child made by fork() once BenchFS was started in the process.
 *   - Every function is thread-safe: several application threads may call at
 *     once.
 *
 * Consistency: close-to-open. Once a rank has closed (or fsync'ed) a file, a
 * rank that opens it afterwards sees all its data and its size.
 *
 * Each function's comment ends with its "Safety" conditions: what the caller
 * guarantees about the pointers it passes.
 */

#ifndef BENCHFS_H
#define BENCHFS_H

/* Generated from src/ffi/ by cbindgen (see cbindgen.toml): do not edit; run `make header`. */

#include <mpi.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

/**
 * The state of a `benchfs_dir_t`, opaque to C.
 */
struct BenchfsDir;

/**
 * An open directory stream, as `DIR` is for `opendir(3)`.
 */
typedef struct BenchfsDir benchfs_dir_t;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Collective over `comm`; the job's counterpart of `mount(2)`: creates this rank's UCX worker,
 * exchanges worker addresses over `comm`, starts the progress thread, and returns when every
 * rank serves. Call after `MPI_Init` (`MPI_THREAD_SINGLE` is enough: only the calling thread
 * uses MPI, inside `benchfs_init` and `benchfs_finalize`). Reference counted: a nested call
 * returns 0 and does nothing else.
 * Returns 0, or -1 with errno (EINVAL for a bad configuration variable, EIO for a transport
 * failure).
 *
 * # Safety
 * `comm` is a valid communicator handle (or `MPI_COMM_NULL`, which fails with EINVAL), and MPI
 * is initialized.
 */
int benchfs_init(MPI_Comm comm);

/**
 * Collective over `comm`, the communicator of a separate MPI job (a tool such as a parallel
 * find); like `mount(2)` of a file system that another job serves: connects to a running BenchFS
 * as a pure client that serves nothing. `contact_file` is the file the serving job published
 * because `BENCHFS_CONTACT_FILE` named it at its `benchfs_init` (only rank 0 of `comm` reads
 * it). Every other call then works as usual; `benchfs_finalize` detaches.
 * Returns 0, or -1 with errno (ENOENT: no contact file; EINVAL: not a contact file; EIO: the
 * serving job cannot be reached).
 *
 * # Safety
 * `comm` is a valid communicator handle and MPI is initialized; `contact_file` is NULL or a
 * NUL-terminated string.
 */
int benchfs_attach(MPI_Comm comm, const char *contact_file);

/**
 * Collective over the communicator given to `benchfs_init`; the counterpart of `umount(2)`. Only
 * the outermost call tears down: it waits until every rank has stopped issuing requests, stops
 * the progress thread, closes UCX and removes this rank's chunk files (unless
 * `BENCHFS_KEEP_DATA=1`). Returns 0, or -1 with errno. If a rank of the job is found dead
 * while it waits (see `BENCHFS_PEER_TIMEOUT`), it tears down without it and fails with `EIO`.
 * `MPI_Finalize` calls it first if the application did not.
 *
 * # Safety
 * Call from the thread that uses MPI, before `MPI_Finalize`.
 */
int benchfs_finalize(void);

/**
 * Like `open(2)`. Flags: `O_RDONLY`, `O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_EXCL`, `O_TRUNC`,
 * `O_APPEND`, `O_DIRECTORY`. The parent directory must exist (ENOENT) and be a directory
 * (ENOTDIR); opening a directory for writing gives EISDIR.
 * Returns a BenchFS file descriptor (not a kernel one).
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_open(const char *path, int flags, mode_t mode);

/**
 * Like `close(2)`. Publishes the file's size and mtime to its metadata owner.
 *
 * # Safety
 * No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
 */
int benchfs_close(int fd);

/**
 * Like `pwrite(2)`: any offset and length; chunks spread over all ranks.
 *
 * # Safety
 * `buf` is NULL (with `count == 0`) or valid for reads of `count` bytes.
 */
ssize_t benchfs_pwrite(int fd, const void *buf, size_t count, off_t offset);

/**
 * Like `pread(2)`: holes read as zeros; a read past the end returns a short count.
 *
 * # Safety
 * `buf` is NULL (with `count == 0`) or valid for writes of `count` bytes.
 */
ssize_t benchfs_pread(int fd, void *buf, size_t count, off_t offset);

/**
 * Like `write(2)`: writes at the file offset and advances it.
 *
 * # Safety
 * `buf` is NULL (with `count == 0`) or valid for reads of `count` bytes.
 */
ssize_t benchfs_write(int fd, const void *buf, size_t count);

/**
 * Like `read(2)`: reads at the file offset and advances it.
 *
 * # Safety
 * `buf` is NULL (with `count == 0`) or valid for writes of `count` bytes.
 */
ssize_t benchfs_read(int fd, void *buf, size_t count);

/**
 * Like `lseek(2)` with `SEEK_SET`, `SEEK_CUR` or `SEEK_END`.
 *
 * # Safety
 * No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
 */
off_t benchfs_lseek(int fd, off_t offset, int whence);

/**
 * Like `fsync(2)`: the data is durable in the owners' data directories and the size is published
 * to the metadata owner.
 *
 * # Safety
 * No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
 */
int benchfs_fsync(int fd);

/**
 * Like `stat(2)`: size, mode, inode number, block size (the chunk size), times.
 *
 * # Safety
 * `path` is NULL or NUL-terminated; `st` is NULL or valid for writes of a `struct stat`.
 */
int benchfs_stat(const char *path, struct stat *st);

/**
 * Like `fstat(2)`; includes this rank's own unpublished writes to `fd`.
 *
 * # Safety
 * `st` is NULL or valid for writes of a `struct stat`.
 */
int benchfs_fstat(int fd, struct stat *st);

/**
 * Like `unlink(2)`: removes the metadata and every chunk on every owner. EISDIR for a directory.
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_unlink(const char *path);

/**
 * Like `mkdir(2)`: EEXIST if the name exists, ENOENT/ENOTDIR for a bad parent.
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_mkdir(const char *path, mode_t mode);

/**
 * Like `rmdir(2)`: ENOTEMPTY if the directory has entries, ENOTDIR for a file, EBUSY for "/".
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_rmdir(const char *path);

/**
 * Like `rename(2)`, for files and directory trees; never copies file data. Replacing an
 * existing file is atomic as seen by stat/open. Renaming a directory into its own subtree gives
 * EINVAL.
 *
 * # Safety
 * Both paths are NULL or NUL-terminated strings.
 */
int benchfs_rename(const char *oldpath, const char *newpath);

/**
 * Like `truncate(2)`: shrink (cut data is freed on its owners and reads as zeros if the file
 * grows again) or grow (a hole).
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_truncate(const char *path, off_t length);

/**
 * Like `ftruncate(2)`: `benchfs_truncate` on an open descriptor.
 *
 * # Safety
 * No pointer arguments: any `fd` value is safe (one that is not open fails with EBADF).
 */
int benchfs_ftruncate(int fd, off_t length);

/**
 * Like `access(2)` with `F_OK`, `R_OK`, `W_OK`, `X_OK`, checked against the mode bits and the
 * caller's uid/gid (root passes `R_OK` and `W_OK`).
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
int benchfs_access(const char *path, int mode);

/**
 * Like `statvfs(2)`: capacity totals over the data directories of all ranks (each file system
 * counted once), and the number of entries.
 *
 * # Safety
 * `path` is NULL or NUL-terminated; `st` is NULL or valid for writes of a `struct statvfs`.
 */
int benchfs_statvfs(const char *path, struct statvfs *st);

/**
 * Like `opendir(3)`: ENOENT, ENOTDIR as POSIX.
 *
 * # Safety
 * `path` is NULL or a NUL-terminated string.
 */
benchfs_dir_t *benchfs_opendir(const char *path);

/**
 * Like `readdir(3)`: the next entry ("." and ".." first), with `d_name`, `d_type` and `d_ino`
 * set, or NULL at the end (errno unchanged) or on error (errno set). `d_name` holds the name's
 * bytes as it was created. Entries are fetched from their ranks in pages as the stream
 * advances. The returned struct is valid until the next call on the same stream.
 *
 * # Safety
 * `dir` is NULL or a stream from `benchfs_opendir` not yet closed; one thread uses a stream at a
 * time.
 */
struct dirent *benchfs_readdir(benchfs_dir_t *dir);

/**
 * Like `closedir(3)`.
 *
 * # Safety
 * `dir` is NULL or a stream from `benchfs_opendir` not used by another thread.
 */
int benchfs_closedir(benchfs_dir_t *dir);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* BENCHFS_H */
