/*
 * BenchFS backend for IOR, mdtest and md-workbench (IOR 4.x): `-a BENCHFS`.
 *
 * Every call maps onto the POSIX-shaped C API of <benchfs.h>. BenchFS runs
 * inside the benchmark's own MPI ranks: the first initialize() starts it over
 * the test communicator and the matching finalize() stops it, so no daemon has
 * to be running before the job.
 *
 * Paths. BenchFS has one namespace per job and accepts absolute paths only.
 * IOR's default test file ("testFile") and mdtest's default directory
 * ("./out") are relative; a relative path is read as relative to the BenchFS
 * root, so "out/x" becomes "/out/x".
 *
 * Parent directories. The namespace starts empty for every job, so the
 * directory IOR is told to write into (`-o /ior/file`) cannot exist before the
 * run. create() and mkdir() therefore make missing parent directories, as
 * `mkdir -p` would; `--benchfs.strict-parents` turns this off and gives
 * POSIX's ENOENT instead.
 *
 * Errors. Calls whose IOR prototype returns a status (mkdir, stat, access,
 * ...) return -1 with errno set by BenchFS, and IOR reports them. Calls that
 * return nothing report their failure here, naming the path and the errno.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <benchfs.h>

#include "ior.h"
#include "aiori.h"
#include "utilities.h"

/* BenchFS refuses paths longer than this (plus one for the leading '/' that
 * a relative path gains). */
#define BFS_PATH_MAX 4097

/* Limits BenchFS enforces on BENCHFS_CHUNK_SIZE, checked here so that a bad
 * option fails before any rank starts BenchFS. */
#define BFS_MIN_CHUNK (4LL << 10)
#define BFS_MAX_CHUNK (1LL << 30)

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
        int chunk_size;        /* bytes; 0 keeps BENCHFS_CHUNK_SIZE or the default */
        char *data_dir;        /* node-local base directory; NULL keeps BENCHFS_DATA_DIR */
        int keep_data;         /* keep chunk files after finalize */
        char *io_backend;      /* auto | uring | sync; NULL keeps BENCHFS_IO_BACKEND */
        int strict_parents;    /* do not create missing parent directories */
} benchfs_options_t;

static option_help *BENCHFS_options(aiori_mod_opt_t **init_backend_options,
                                    aiori_mod_opt_t *init_values)
{
        benchfs_options_t *o = malloc(sizeof(*o));
        if (o == NULL)
                ERR("out of memory");
        if (init_values != NULL)
                memcpy(o, init_values, sizeof(*o));
        else
                memset(o, 0, sizeof(*o));
        *init_backend_options = (aiori_mod_opt_t *) o;

        option_help h[] = {
                {0, "benchfs.chunk-size",
                 "Chunk size in bytes (K/M/G suffixes), 4K..1G; sets BENCHFS_CHUNK_SIZE",
                 OPTION_OPTIONAL_ARGUMENT, 'd', &o->chunk_size},
                {0, "benchfs.data-dir",
                 "Node-local base directory for each rank's chunk store; sets BENCHFS_DATA_DIR",
                 OPTION_OPTIONAL_ARGUMENT, 's', &o->data_dir},
                {0, "benchfs.keep-data",
                 "Keep the chunk files after the run; sets BENCHFS_KEEP_DATA=1",
                 OPTION_FLAG, 'd', &o->keep_data},
                {0, "benchfs.io-backend",
                 "Chunk store I/O: auto, uring or sync; sets BENCHFS_IO_BACKEND",
                 OPTION_OPTIONAL_ARGUMENT, 's', &o->io_backend},
                {0, "benchfs.strict-parents",
                 "Do not create missing parent directories on create/mkdir (POSIX ENOENT instead)",
                 OPTION_FLAG, 'd', &o->strict_parents},
                LAST_OPTION
        };
        option_help *help = malloc(sizeof(h));
        if (help == NULL)
                ERR("out of memory");
        memcpy(help, h, sizeof(h));
        return help;
}

static int BENCHFS_check_params(aiori_mod_opt_t *options)
{
        benchfs_options_t *o = (benchfs_options_t *) options;

        if (o->chunk_size != 0 &&
            (o->chunk_size < BFS_MIN_CHUNK || o->chunk_size > BFS_MAX_CHUNK))
                ERRF("--benchfs.chunk-size=%d is outside 4K..1G", o->chunk_size);
        if (o->data_dir != NULL && o->data_dir[0] == '\0')
                ERR("--benchfs.data-dir is empty");
        if (o->io_backend != NULL && strcmp(o->io_backend, "auto") != 0 &&
            strcmp(o->io_backend, "uring") != 0 && strcmp(o->io_backend, "sync") != 0)
                ERRF("--benchfs.io-backend=%s: expected auto, uring or sync", o->io_backend);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Hints, paths, descriptors                                                 */
/* ------------------------------------------------------------------------ */

/* IOR, mdtest and md-workbench all hand over their hints before any I/O;
 * the zeroed default keeps every call safe even if one of them did not. */
static aiori_xfer_hint_t no_hints;
static aiori_xfer_hint_t *hints = &no_hints;

static void BENCHFS_xfer_hints(aiori_xfer_hint_t *params)
{
        hints = params != NULL ? params : &no_hints;
}

/* Copies `path` into `out` as an absolute BenchFS path (see the file
 * comment). Returns 0, or -1 with errno = ENAMETOOLONG. */
static int absolute_path(const char *path, char out[BFS_PATH_MAX])
{
        int n = snprintf(out, BFS_PATH_MAX, "%s%s", path[0] == '/' ? "" : "/", path);
        if (n < 0 || n >= BFS_PATH_MAX) {
                errno = ENAMETOOLONG;
                return -1;
        }
        /* mdtest names directories with a trailing slash; drop it, so that the
         * parent walk in make_parents() stops at the parent, not the path itself. */
        while (n > 1 && out[n - 1] == '/')
                out[--n] = '\0';
        return 0;
}

/* aiori_fd_t is opaque to IOR; ours carries the BenchFS descriptor, which may
 * be 0 and so cannot be passed as the pointer itself (NULL means failure). */
typedef struct {
        int fd;
} benchfs_file_t;

/* What create/open hand back in a dry run (-d): no BenchFS call is made. */
static benchfs_file_t dry_run_file = { -1 };

static int file_fd(aiori_fd_t *file)
{
        return ((benchfs_file_t *) file)->fd;
}

static int strict_parents(aiori_mod_opt_t *options)
{
        return options != NULL && ((benchfs_options_t *) options)->strict_parents;
}

/* Creates every missing ancestor directory of the absolute path `path`.
 * Several ranks may race here: a directory another rank made first (EEXIST)
 * is fine. Returns 0, or -1 with errno of the first real failure. */
static int make_parents(const char *path)
{
        char dir[BFS_PATH_MAX];
        strcpy(dir, path);
        for (char *slash = strchr(dir + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (benchfs_mkdir(dir, 0755) != 0 && errno != EEXIST)
                        return -1;
                *slash = '/';
        }
        return 0;
}

/* Whether the parent directory of the absolute path `path` exists. */
static int parent_exists(const char *path)
{
        char dir[BFS_PATH_MAX];
        struct stat st;
        char *slash;

        strcpy(dir, path);
        slash = strrchr(dir, '/');
        if (slash == dir)
                return 1;
        *slash = '\0';
        return benchfs_stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

/* IO500 initialises the backend once for the whole run and again around each
 * phase; only the outermost initialize/finalize pair starts and stops
 * BenchFS. The library counts nesting as well; this count also decides when
 * the options are turned into environment variables. */
static int init_depth = 0;

/* The options win over variables already in the environment: they were
 * given on this command line. */
static void set_variable(const char *name, const char *value)
{
        const char *old = getenv(name);
        if (old != NULL && strcmp(old, value) != 0 && rank == 0)
                INFOF("BenchFS option replaces %s=%s with %s", name, old, value);
        if (setenv(name, value, 1) != 0)
                ERRF("setenv(%s) failed: %s", name, strerror(errno));
}

static void apply_options(const benchfs_options_t *o)
{
        char number[32];

        if (o == NULL)
                return;
        if (o->chunk_size != 0) {
                snprintf(number, sizeof(number), "%d", o->chunk_size);
                set_variable("BENCHFS_CHUNK_SIZE", number);
        }
        if (o->data_dir != NULL)
                set_variable("BENCHFS_DATA_DIR", o->data_dir);
        if (o->keep_data)
                set_variable("BENCHFS_KEEP_DATA", "1");
        if (o->io_backend != NULL)
                set_variable("BENCHFS_IO_BACKEND", o->io_backend);
}

static void BENCHFS_initialize(aiori_mod_opt_t *options)
{
        if (init_depth++ > 0)
                return;
        apply_options((benchfs_options_t *) options);

        /* IOR runs a test on testComm (possibly fewer ranks than the job) and
         * mdtest sets it to its world communicator; only a caller that set
         * neither gets MPI_COMM_WORLD. */
        MPI_Comm comm = testComm != MPI_COMM_NULL ? testComm : MPI_COMM_WORLD;
        if (benchfs_init(comm) != 0)
                ERRF("benchfs_init failed: %s (check the BENCHFS_* variables and UCX)",
                     strerror(errno));
}

static void BENCHFS_finalize(aiori_mod_opt_t *options)
{
        if (init_depth == 0) {
                WARN("BenchFS finalize without initialize; ignored");
                return;
        }
        if (--init_depth > 0)
                return;
        if (benchfs_finalize() != 0)
                WARNF("benchfs_finalize failed: %s", strerror(errno));
}

static char *BENCHFS_get_version(void)
{
#ifdef BENCHFS_PKG_VERSION
        return "BenchFS " BENCHFS_PKG_VERSION;
#else
        return "BenchFS";
#endif
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/* Translates IOR's own flag bits into open(2) flags. mdtest opens files for
 * reading with a literal O_RDONLY, which is 0: no access bit means read-only.
 * IOR_DIRECT has no meaning for BenchFS (there is no client cache to bypass). */
static int open_flags(int iorflags)
{
        int flags;

        if (iorflags & IOR_RDWR)
                flags = O_RDWR;
        else if (iorflags & IOR_WRONLY)
                flags = O_WRONLY;
        else
                flags = O_RDONLY;
        if (iorflags & IOR_APPEND)
                flags |= O_APPEND;
        if (iorflags & IOR_CREAT)
                flags |= O_CREAT;
        if (iorflags & IOR_TRUNC)
                flags |= O_TRUNC;
        if (iorflags & IOR_EXCL)
                flags |= O_EXCL;
        return flags;
}

static aiori_fd_t *open_file(const char *path, int flags, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];
        int fd;

        if (absolute_path(path, abs) != 0) {
                WARNF("cannot open \"%s\": %s", path, strerror(errno));
                return NULL;
        }
        /*
         * In shared-file mode every rank creates the same path at the same
         * moment, so no create may be issued under a missing parent there:
         * BenchFS answers such a create with ENOENT only after it has briefly
         * made the entry, and another rank whose create of the same path lands
         * in that moment keeps a file that is removed under it (its writes are
         * lost). So the parent is made first. A rank that creates paths of its
         * own (file per process, mdtest) just retries after making it.
         */
        const int make_missing = (flags & O_CREAT) && !strict_parents(options);
        if (make_missing && !hints->filePerProc && !parent_exists(abs))
                make_parents(abs);

        fd = benchfs_open(abs, flags, 0664);
        if (fd < 0 && errno == ENOENT && make_missing) {
                if (make_parents(abs) == 0)
                        fd = benchfs_open(abs, flags, 0664);
        }
        if (fd < 0) {
                WARNF("benchfs_open(\"%s\", %#o) failed: %s", abs, flags, strerror(errno));
                return NULL;
        }

        benchfs_file_t *file = malloc(sizeof(*file));
        if (file == NULL)
                ERR("out of memory");
        file->fd = fd;
        return (aiori_fd_t *) file;
}

/*
 * Truncation. In shared-file mode every rank calls create() for the same file
 * at about the same time, and IOR passes IOR_TRUNC each time; a rank that
 * truncated after another had started writing would destroy that rank's data.
 * IOR has already made the file new: unless -E (use existing file) is given,
 * rank 0 removes it and all ranks pass a barrier before any create. So in
 * shared-file mode create() never truncates, like IOR's POSIX backend; with
 * -E the existing file is reused as it is. In file-per-process mode the file
 * belongs to one rank and IOR_TRUNC is honoured.
 */
static aiori_fd_t *BENCHFS_create(char *path, int iorflags, aiori_mod_opt_t *options)
{
        int flags;

        if (hints->dryRun)
                return (aiori_fd_t *) &dry_run_file;
        flags = open_flags(iorflags) | O_CREAT;
        if (!hints->filePerProc)
                flags &= ~O_TRUNC;
        return open_file(path, flags, options);
}

static aiori_fd_t *BENCHFS_open(char *path, int iorflags, aiori_mod_opt_t *options)
{
        if (hints->dryRun)
                return (aiori_fd_t *) &dry_run_file;
        return open_file(path, open_flags(iorflags), options);
}

/* Creates an empty file, failing like mknod(2) with EEXIST if it exists. */
static int BENCHFS_mknod(char *path)
{
        char abs[BFS_PATH_MAX];
        int fd;

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0)
                return -1;
        fd = benchfs_open(abs, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0)
                return -1;
        return benchfs_close(fd);
}

static void BENCHFS_fsync(aiori_fd_t *file, aiori_mod_opt_t *options)
{
        if (hints->dryRun)
                return;
        if (benchfs_fsync(file_fd(file)) != 0)
                WARNF("benchfs_fsync(%d) failed: %s", file_fd(file), strerror(errno));
}

/*
 * Moves `length` bytes at `offset`. BenchFS returns short counts only at the
 * end of a file (reads), so a loop finishes any remainder; a failure or an
 * early end of file is reported and the bytes done so far are returned, which
 * IOR and mdtest treat as an error. IOR's own -Y fsyncs after each write;
 * mdtest's -y only sets the hint, so the hint is honoured here.
 */
static IOR_offset_t BENCHFS_xfer(int access, aiori_fd_t *file, IOR_size_t *buffer,
                                 IOR_offset_t length, IOR_offset_t offset,
                                 aiori_mod_opt_t *options)
{
        const int writing = access == WRITE;
        char *ptr = (char *) buffer;
        IOR_offset_t done = 0;
        int fd;

        if (hints->dryRun)
                return length;
        fd = file_fd(file);
        while (done < length) {
                ssize_t n = writing
                        ? benchfs_pwrite(fd, ptr + done, length - done, offset + done)
                        : benchfs_pread(fd, ptr + done, length - done, offset + done);
                if (n < 0) {
                        WARNF("benchfs_%s(%d, %lld bytes at offset %lld) failed: %s",
                              writing ? "pwrite" : "pread", fd, length - done,
                              offset + done, strerror(errno));
                        break;
                }
                if (n == 0) {
                        WARNF("benchfs_pread(%d) reached the end of file at offset %lld,"
                              " %lld bytes short", fd, offset + done, length - done);
                        break;
                }
                done += n;
                if (done < length && hints->singleXferAttempt) {
                        WARNF("partial %s at offset %lld: %lld of %lld bytes",
                              writing ? "write" : "read", offset, done, length);
                        break;
                }
        }
        if (writing && done == length && hints->fsyncPerWrite)
                BENCHFS_fsync(file, options);
        return done;
}

/* Close publishes the file's size; losing it would corrupt every later
 * read, so a failure ends the run as IOR's POSIX backend does. */
static void BENCHFS_close(aiori_fd_t *file, aiori_mod_opt_t *options)
{
        if (hints->dryRun)
                return;
        if (benchfs_close(file_fd(file)) != 0)
                ERRF("benchfs_close(%d) failed: %s", file_fd(file), strerror(errno));
        free(file);
}

static void BENCHFS_delete(char *path, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];

        if (hints->dryRun)
                return;
        if (absolute_path(path, abs) != 0 || benchfs_unlink(abs) != 0)
                WARNF("[RANK %03d]: benchfs_unlink(\"%s\") failed: %s", rank, path,
                      strerror(errno));
}

static IOR_offset_t BENCHFS_get_file_size(aiori_mod_opt_t *options, char *path)
{
        char abs[BFS_PATH_MAX];
        struct stat st;

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0 || benchfs_stat(abs, &st) != 0)
                ERRF("benchfs_stat(\"%s\") failed: %s", path, strerror(errno));
        return st.st_size;
}

/* ------------------------------------------------------------------------ */
/* Namespace                                                                 */
/* ------------------------------------------------------------------------ */

static int BENCHFS_mkdir(const char *path, mode_t mode, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];
        int ret;

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0)
                return -1;
        ret = benchfs_mkdir(abs, mode);
        if (ret != 0 && errno == ENOENT && !strict_parents(options) && make_parents(abs) == 0)
                ret = benchfs_mkdir(abs, mode);
        return ret;
}

static int BENCHFS_rmdir(const char *path, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0)
                return -1;
        return benchfs_rmdir(abs);
}

static int BENCHFS_access(const char *path, int mode, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0)
                return -1;
        return benchfs_access(abs, mode);
}

static int BENCHFS_stat(const char *path, struct stat *buf, aiori_mod_opt_t *options)
{
        char abs[BFS_PATH_MAX];

        if (hints->dryRun)
                return 0;
        if (absolute_path(path, abs) != 0)
                return -1;
        return benchfs_stat(abs, buf);
}

static int BENCHFS_rename(const char *oldpath, const char *newpath, aiori_mod_opt_t *options)
{
        char from[BFS_PATH_MAX], to[BFS_PATH_MAX];

        if (hints->dryRun)
                return 0;
        if (absolute_path(oldpath, from) != 0 || absolute_path(newpath, to) != 0 ||
            benchfs_rename(from, to) != 0) {
                WARNF("[RANK %03d]: benchfs_rename(\"%s\", \"%s\") failed: %s", rank,
                      oldpath, newpath, strerror(errno));
                return -1;
        }
        return 0;
}

/* Capacity is one total over all ranks' data directories whatever the path,
 * so the root is asked: the path given may name a file not created yet. */
static int BENCHFS_statfs(const char *path, ior_aiori_statfs_t *out, aiori_mod_opt_t *options)
{
        struct statvfs st;

        if (hints->dryRun)
                return 0;
        if (benchfs_statvfs("/", &st) != 0)
                return -1;
        out->f_bsize = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
        out->f_blocks = st.f_blocks;
        out->f_bfree = st.f_bfree;
        out->f_bavail = st.f_bavail;
        out->f_files = st.f_files;
        out->f_ffree = st.f_ffree;
        return 0;
}

/* Every pwrite has reached its chunk owners when it returns and there is no
 * client-side cache, so there is nothing to flush for mdtest's -Y. */
static void BENCHFS_sync(aiori_mod_opt_t *options)
{
}

ior_aiori_t benchfs_aiori = {
        .name = "BENCHFS",
        .name_legacy = NULL,
        .create = BENCHFS_create,
        .mknod = BENCHFS_mknod,
        .open = BENCHFS_open,
        .xfer_hints = BENCHFS_xfer_hints,
        .xfer = BENCHFS_xfer,
        .close = BENCHFS_close,
#ifdef AIORI_HAS_REMOVE_MEMBER
        .remove = BENCHFS_delete,
#else
        .delete = BENCHFS_delete,
#endif
        .get_version = BENCHFS_get_version,
        .fsync = BENCHFS_fsync,
        .get_file_size = BENCHFS_get_file_size,
        .statfs = BENCHFS_statfs,
        .mkdir = BENCHFS_mkdir,
        .rmdir = BENCHFS_rmdir,
        .access = BENCHFS_access,
        .stat = BENCHFS_stat,
        .initialize = BENCHFS_initialize,
        .finalize = BENCHFS_finalize,
        .rename = BENCHFS_rename,
        .get_options = BENCHFS_options,
        .check_params = BENCHFS_check_params,
        .sync = BENCHFS_sync,
        .enable_mdtest = true,
};
