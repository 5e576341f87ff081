/*
 * Every misuse of the C API fails with -1 and the errno that
 * include/benchfs.h and POSIX promise, and never crashes or hangs: calls
 * outside init/finalize, NULL pointers, bad paths, bad descriptors, bad
 * offsets and flags, access-mode violations. Also path normalisation and
 * the reference counting of nested benchfs_init/benchfs_finalize.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every entry point, with arguments that would be valid once initialised. */
static void check_not_connected(const char *when)
{
    char what[96];
    unsigned char buf[4] = {0};
    struct stat st;
    struct statvfs sv;
#define NC(call, name)                                                         \
    do {                                                                       \
        snprintf(what, sizeof what, "%s %s", name, when);                      \
        CHECK_ERR(call, ENOTCONN, what);                                       \
    } while (0)
    NC(benchfs_open("/nc", O_CREAT | O_RDWR, 0644), "open");
    NC(benchfs_open("/nc", O_RDONLY, 0), "open(O_RDONLY)");
    NC(benchfs_stat("/nc", &st), "stat");
    NC(benchfs_unlink("/nc"), "unlink");
    NC(benchfs_close(3), "close");
    NC(benchfs_pread(3, buf, sizeof buf, 0), "pread");
    NC(benchfs_pwrite(3, buf, sizeof buf, 0), "pwrite");
    NC(benchfs_read(3, buf, sizeof buf), "read");
    NC(benchfs_write(3, buf, sizeof buf), "write");
    NC(benchfs_lseek(3, 0, SEEK_SET), "lseek");
    NC(benchfs_fsync(3), "fsync");
    NC(benchfs_fstat(3, &st), "fstat");
    NC(benchfs_mkdir("/ncdir", 0755), "mkdir");
    NC(benchfs_rmdir("/ncdir"), "rmdir");
    NC(benchfs_rename("/nc", "/nc2"), "rename");
    NC(benchfs_truncate("/nc", 0), "truncate");
    NC(benchfs_ftruncate(3, 0), "ftruncate");
    NC(benchfs_access("/nc", F_OK), "access");
    NC(benchfs_statvfs("/", &sv), "statvfs");
    NC(benchfs_finalize(), "finalize");
#undef NC
    errno = 0;
    benchfs_dir_t *dir = benchfs_opendir("/");
    int e = errno;
    CHECK(dir == NULL && e == ENOTCONN, "opendir %s: want NULL/ENOTCONN, got %p/errno %d",
          when, (void *)dir, e);
}

static void null_pointers(void)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/null_r%d", g_rank);

    CHECK_ERR(benchfs_open(NULL, O_CREAT | O_RDWR, 0644), EFAULT, "open(NULL)");
    CHECK_ERR(benchfs_stat(NULL, &st), EFAULT, "stat(NULL)");
    CHECK_ERR(benchfs_unlink(NULL), EFAULT, "unlink(NULL)");
    CHECK_ERR(benchfs_mkdir(NULL, 0755), EFAULT, "mkdir(NULL)");
    CHECK_ERR(benchfs_rmdir(NULL), EFAULT, "rmdir(NULL)");
    CHECK_ERR(benchfs_rename(NULL, "/x"), EFAULT, "rename(NULL, path)");
    CHECK_ERR(benchfs_rename("/x", NULL), EFAULT, "rename(path, NULL)");
    CHECK_ERR(benchfs_truncate(NULL, 0), EFAULT, "truncate(NULL)");
    CHECK_ERR(benchfs_access(NULL, F_OK), EFAULT, "access(NULL)");
    struct statvfs sv;
    CHECK_ERR(benchfs_statvfs(NULL, &sv), EFAULT, "statvfs(NULL, buf)");
    CHECK_ERR(benchfs_statvfs("/", NULL), EFAULT, "statvfs(path, NULL)");
    errno = 0;
    benchfs_dir_t *dir = benchfs_opendir(NULL);
    int e = errno;
    CHECK(dir == NULL && e == EFAULT, "opendir(NULL): want NULL/EFAULT, got %p/errno %d",
          (void *)dir, e);
    errno = 0;
    struct dirent *ent = benchfs_readdir(NULL);
    e = errno;
    CHECK(ent == NULL && (e == EFAULT || e == EBADF),
          "readdir(NULL): want NULL/EFAULT (or EBADF), got %p/errno %d", (void *)ent, e);
    int r = benchfs_closedir(NULL);
    e = errno;
    CHECK(r == -1 && (e == EFAULT || e == EBADF),
          "closedir(NULL): want -1/EFAULT (or EBADF), got %d/errno %d", r, e);

    int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd < 0)
        return;
    CHECK_ERR(benchfs_stat(path, NULL), EFAULT, "stat with NULL struct stat");
    CHECK_ERR(benchfs_fstat(fd, NULL), EFAULT, "fstat with NULL struct stat");
    CHECK_ERR(benchfs_pwrite(fd, NULL, 10, 0), EFAULT, "pwrite(NULL buf, 10)");
    CHECK_ERR(benchfs_pread(fd, NULL, 10, 0), EFAULT, "pread(NULL buf, 10)");
    CHECK_ERR(benchfs_write(fd, NULL, 10), EFAULT, "write(NULL buf, 10)");
    CHECK_ERR(benchfs_read(fd, NULL, 10), EFAULT, "read(NULL buf, 10)");
    CHECK(benchfs_fstat(fd, &st) == 0 && st.st_size == 0,
          "a rejected NULL write changed the size (errno %d)", errno);
    CHECK_RET(benchfs_close(fd), 0, "close");
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
}

/* Fills dst with a path of exactly len bytes made of 100-byte components. */
static void long_path(char *dst, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (i % 101 == 0) ? '/' : (char)('a' + (i % 26));
    dst[len] = '\0';
}

static void bad_paths(void)
{
    struct stat st;
    char name[300], path[6000];

    CHECK_ERR(benchfs_open("a/b", O_CREAT | O_RDWR, 0644), EINVAL, "open relative path");
    CHECK_ERR(benchfs_stat("a/b", &st), EINVAL, "stat relative path");
    CHECK_ERR(benchfs_unlink("a/b"), EINVAL, "unlink relative path");

    int r = benchfs_open("", O_CREAT | O_RDWR, 0644);
    int e = errno;
    CHECK(r == -1 && (e == EINVAL || e == ENOENT),
          "open(\"\"): want -1/EINVAL (or ENOENT), got %d/errno %d", r, e);
    r = benchfs_stat("", &st);
    e = errno;
    CHECK(r == -1 && (e == EINVAL || e == ENOENT),
          "stat(\"\"): want -1/EINVAL (or ENOENT), got %d/errno %d", r, e);

    /* A 256-byte component is too long... */
    name[0] = '/';
    memset(name + 1, 'n', 256);
    name[257] = '\0';
    CHECK_ERR(benchfs_open(name, O_CREAT | O_RDWR, 0644), ENAMETOOLONG, "256-byte component");
    CHECK_ERR(benchfs_stat(name, &st), ENAMETOOLONG, "stat of 256-byte component");

    /* ...and 255 bytes is the longest allowed. */
    snprintf(name, sizeof name, "/%d_", g_rank);
    size_t used = strlen(name);
    memset(name + used, 'm', 256 - used);
    name[256] = '\0';
    int fd = benchfs_open(name, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "open with a 255-byte component failed (errno %d: %s)", errno,
          strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_close(fd), 0, "close 255-byte name");
        CHECK_RET(benchfs_stat(name, &st), 0, "stat 255-byte name");
        CHECK_RET(benchfs_unlink(name), 0, "unlink 255-byte name");
    }

    long_path(path, 5000);
    CHECK_ERR(benchfs_open(path, O_CREAT | O_RDWR, 0644), ENAMETOOLONG, "5000-byte path");
    CHECK_ERR(benchfs_stat(path, &st), ENAMETOOLONG, "stat of 5000-byte path");
    CHECK_ERR(benchfs_unlink(path), ENAMETOOLONG, "unlink of 5000-byte path");
    long_path(path, 4096);
    CHECK_ERR(benchfs_open(path, O_CREAT | O_RDWR, 0644), ENAMETOOLONG, "4096-byte path");

    CHECK_ERR(benchfs_open("/no_such_file", O_RDONLY, 0), ENOENT, "open nonexistent");
    CHECK_ERR(benchfs_open("/no_such_file", O_RDWR, 0), ENOENT, "open nonexistent O_RDWR");
    CHECK_ERR(benchfs_stat("/no_such_file", &st), ENOENT, "stat nonexistent");
    CHECK_ERR(benchfs_unlink("/no_such_file"), ENOENT, "unlink nonexistent");
}

static void bad_descriptors(void)
{
    static const int bad[] = {-1, 12345};
    unsigned char buf[16] = {0};
    struct stat st;
    char what[64];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = bad[i];
#define BADF(call, name)                                                       \
    do {                                                                       \
        snprintf(what, sizeof what, "%s(fd %d)", name, fd);                    \
        CHECK_ERR(call, EBADF, what);                                          \
    } while (0)
        BADF(benchfs_close(fd), "close");
        BADF(benchfs_pread(fd, buf, sizeof buf, 0), "pread");
        BADF(benchfs_pwrite(fd, buf, sizeof buf, 0), "pwrite");
        BADF(benchfs_read(fd, buf, sizeof buf), "read");
        BADF(benchfs_write(fd, buf, sizeof buf), "write");
        BADF(benchfs_fstat(fd, &st), "fstat");
        BADF(benchfs_fsync(fd), "fsync");
        BADF(benchfs_lseek(fd, 0, SEEK_SET), "lseek");
        BADF(benchfs_ftruncate(fd, 0), "ftruncate");
#undef BADF
    }

    char path[64];
    snprintf(path, sizeof path, "/dclose_r%d", g_rank);
    int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_close(fd), 0, "first close");
        CHECK_ERR(benchfs_close(fd), EBADF, "second close");
        CHECK_ERR(benchfs_pread(fd, buf, sizeof buf, 0), EBADF, "pread after close");
        CHECK_ERR(benchfs_pwrite(fd, buf, sizeof buf, 0), EBADF, "pwrite after close");
    }
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
}

static void bad_offsets_and_modes(void)
{
    char path[64];
    unsigned char buf[16];
    memset(buf, 0x5a, sizeof buf);
    snprintf(path, sizeof path, "/modes_r%d", g_rank);

    CHECK_ERR(benchfs_open(path, O_RDONLY | O_WRONLY | O_RDWR | O_CREAT, 0644), EINVAL,
              "open with access mode 3");

    int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd < 0)
        return;
    CHECK_ERR(benchfs_pread(fd, buf, sizeof buf, -1), EINVAL, "pread at offset -1");
    CHECK_ERR(benchfs_pwrite(fd, buf, sizeof buf, -1), EINVAL, "pwrite at offset -1");
    CHECK_ERR(benchfs_lseek(fd, 0, 42), EINVAL, "lseek whence 42");
    CHECK_ERR(benchfs_lseek(fd, -1, SEEK_SET), EINVAL, "lseek to -1");
    CHECK_ERR(benchfs_lseek(fd, -100, SEEK_CUR), EINVAL, "lseek SEEK_CUR below 0");
    CHECK_ERR(benchfs_lseek(fd, -100, SEEK_END), EINVAL, "lseek SEEK_END below 0");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 0, "offset unchanged by failed lseeks");
    CHECK_RET(benchfs_pwrite(fd, buf, sizeof buf, 0), (long long)sizeof buf, "pwrite");
    CHECK_RET(benchfs_close(fd), 0, "close");

    fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open O_RDONLY failed (errno %d: %s)", errno, strerror(errno));
    if (fd >= 0) {
        CHECK_ERR(benchfs_pwrite(fd, buf, sizeof buf, 0), EBADF, "pwrite on O_RDONLY fd");
        CHECK_ERR(benchfs_write(fd, buf, sizeof buf), EBADF, "write on O_RDONLY fd");
        CHECK_RET(benchfs_pread(fd, buf, sizeof buf, 0), (long long)sizeof buf,
                  "pread on O_RDONLY fd");
        CHECK_RET(benchfs_close(fd), 0, "close O_RDONLY fd");
    }
    fd = benchfs_open(path, O_WRONLY, 0);
    CHECK(fd >= 0, "open O_WRONLY failed (errno %d: %s)", errno, strerror(errno));
    if (fd >= 0) {
        CHECK_ERR(benchfs_pread(fd, buf, sizeof buf, 0), EBADF, "pread on O_WRONLY fd");
        CHECK_ERR(benchfs_read(fd, buf, sizeof buf), EBADF, "read on O_WRONLY fd");
        CHECK_RET(benchfs_close(fd), 0, "close O_WRONLY fd");
    }
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
}

/* "//", "." and ".." reduce to one name, for files and directories ("..", as in a kernel walk, only out of an existing directory). */
static void normalisation(void)
{
    char raw[96], clean[96], dotdot[96], top[64], top_messy[96], dir[64], sub[64], sub_messy[96];
    struct stat a, b;
    unsigned char data[5] = {1, 2, 3, 4, 5};

    snprintf(top, sizeof top, "/top_r%d", g_rank);
    snprintf(top_messy, sizeof top_messy, "///top_r%d", g_rank);
    int fd = benchfs_open(top_messy, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", top_messy, errno, strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_close(fd), 0, "close");
        CHECK_RET(benchfs_stat(top, &a), 0, "stat of the normalised name");
        snprintf(top_messy, sizeof top_messy, "/../top_r%d", g_rank);
        CHECK_RET(benchfs_stat(top_messy, &b), 0, "stat of /../name");
        snprintf(top_messy, sizeof top_messy, "/./top_r%d", g_rank);
        CHECK_RET(benchfs_unlink(top_messy), 0, "unlink of /./name");
        CHECK_ERR(benchfs_stat(top, &a), ENOENT, "stat after unlink via another spelling");
    }

    snprintf(dir, sizeof dir, "/norm_r%d", g_rank);
    snprintf(sub, sizeof sub, "/norm_r%d/x", g_rank);
    snprintf(sub_messy, sizeof sub_messy, "//norm_r%d/./x/", g_rank);
    snprintf(raw, sizeof raw, "/norm_r%d//x/./y", g_rank);
    snprintf(clean, sizeof clean, "/norm_r%d/x/y", g_rank);
    snprintf(dotdot, sizeof dotdot, "/norm_r%d/x/z/../y", g_rank);
    CHECK_RET(benchfs_mkdir(dir, 0755), 0, "mkdir");
    CHECK_RET(benchfs_mkdir(sub_messy, 0755), 0, "mkdir of a messy spelling");
    int r = benchfs_stat(sub, &a);
    CHECK(r == 0 && S_ISDIR(a.st_mode), "stat(%s): ret %d, mode 0%o (errno %d)", sub, r,
          r == 0 ? (unsigned)a.st_mode : 0u, errno);

    fd = benchfs_open(raw, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", raw, errno, strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_pwrite(fd, data, sizeof data, 0), (long long)sizeof data, "pwrite");
        CHECK_RET(benchfs_close(fd), 0, "close");
        r = benchfs_stat(clean, &a);
        CHECK(r == 0 && a.st_size == (off_t)sizeof data,
              "stat(%s): ret %d size %lld (errno %d)", clean, r,
              r == 0 ? (long long)a.st_size : -1LL, errno);
        /* ".." steps out of "z", which must exist as a directory, as in a
         * kernel's walk; then it names the same file. */
        CHECK_ERR(benchfs_stat(dotdot, &b), ENOENT, "stat through .. out of a missing directory");
        char z[96];
        snprintf(z, sizeof z, "/norm_r%d/x/z", g_rank);
        CHECK_RET(benchfs_mkdir(z, 0755), 0, "mkdir z");
        r = benchfs_stat(dotdot, &b);
        CHECK(r == 0 && b.st_ino == a.st_ino, "stat(%s): ret %d, same inode %d", dotdot, r,
              r == 0 && b.st_ino == a.st_ino);
        CHECK_RET(benchfs_rmdir(z), 0, "rmdir z");
        CHECK_RET(benchfs_unlink(clean), 0, "unlink normalised name");
        CHECK_ERR(benchfs_stat(raw, &a), ENOENT, "stat after unlink");
    }
    CHECK_RET(benchfs_rmdir(sub_messy), 0, "rmdir of a messy spelling");
    CHECK_RET(benchfs_rmdir(dir), 0, "rmdir");
}

/* A nested init/finalize pair leaves the file system up; the outer one ends it. */
static void nested_init(void)
{
    char path[64];
    unsigned char out[1000], in[1000];
    snprintf(path, sizeof path, "/nested_r%d", g_rank);
    pattern_fill(out, 900 + (uint64_t)g_rank, 0, sizeof out);

    CHECK_RET(benchfs_init(MPI_COMM_WORLD), 0, "nested benchfs_init");
    CHECK_RET(benchfs_finalize(), 0, "inner benchfs_finalize");
    MPI_Barrier(MPI_COMM_WORLD);

    int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "open after inner finalize failed (errno %d: %s)", errno, strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_pwrite(fd, out, sizeof out, 0), (long long)sizeof out,
                  "pwrite after inner finalize");
        CHECK_RET(benchfs_close(fd), 0, "close after inner finalize");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* Read a neighbour's file so that the other ranks' servers are
     * known to be still up too. */
    int peer = (g_rank + 1) % g_nranks;
    char peer_path[64];
    snprintf(peer_path, sizeof peer_path, "/nested_r%d", peer);
    fd = benchfs_open(peer_path, O_RDONLY, 0);
    CHECK(fd >= 0, "open(%s) after inner finalize failed (errno %d)", peer_path, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_pread(fd, in, sizeof in, 0), (long long)sizeof in, "pread peer file");
        verify_pattern(in, 900 + (uint64_t)peer, 0, sizeof in, "peer file after inner finalize");
        CHECK_RET(benchfs_close(fd), 0, "close peer file");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(benchfs_unlink(path), 0, "unlink nested file");

    CHECK_RET(benchfs_finalize(), 0, "outer benchfs_finalize");
    check_not_connected("after the outer finalize");
}

/* An init that cannot make its data directory fails on every rank with the same errno, at
 * once, and leaves BenchFS down (a later init works). */
static void init_failures(void)
{
    char file[] = "/tmp/benchfs-regular-XXXXXX";
    char dir[sizeof file + 16];
    const char *saved = getenv("BENCHFS_DATA_DIR");
    char *keep = saved ? strdup(saved) : NULL;
    int fd = mkstemp(file);

    CHECK(fd >= 0, "mkstemp failed (errno %d)", errno);
    if (fd < 0)
        return;
    close(fd);
    snprintf(dir, sizeof dir, "%s/data", file);
    setenv("BENCHFS_DATA_DIR", dir, 1);
    CHECK_ERR(benchfs_init(MPI_COMM_WORLD), ENOTDIR, "init with the data directory under a regular file");
    check_not_connected("after a failed init");
    unlink(file);

    /* A shared base that another user owns and everyone may write to, without the sticky bit:
     * that user could plant or swap the job's directories, so init refuses it. */
    if (getuid() == 0) {
        char base[] = "/tmp/benchfs-foreign-XXXXXX";
        CHECK(mkdtemp(base) != NULL, "mkdtemp failed (errno %d)", errno);
        CHECK(chmod(base, 0777) == 0 && chown(base, 65534, 65534) == 0, "cannot hand %s to another user (errno %d)", base, errno);
        setenv("BENCHFS_DATA_DIR", base, 1);
        CHECK_ERR(benchfs_init(MPI_COMM_WORLD), EACCES, "init on another user's world-writable data directory");
        check_not_connected("after a refused init");
        MPI_Barrier(MPI_COMM_WORLD);
        rmdir(base);
    } else {
        note("init on another user's data directory: not checked (needs root to make one)");
    }
    if (keep) {
        setenv("BENCHFS_DATA_DIR", keep, 1);
        free(keep);
    } else {
        unsetenv("BENCHFS_DATA_DIR");
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A child made by fork() shares no progress thread with BenchFS: each call fails at once
 * with ENOTCONN (an alarm ends a child that hangs), and the parent is unaffected. */
static void forked_child(void)
{
    char path[64];
    int status = 0;

    snprintf(path, sizeof path, "/fork-probe.%d", g_rank);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s (errno %d)", path, errno);
    pid_t child = fork();
    CHECK(child >= 0, "fork failed (errno %d)", errno);
    if (child == 0) {
        struct stat st;
        int bad = 0;
        alarm(10);
        bad |= !(benchfs_stat(path, &st) == -1 && errno == ENOTCONN) << 0;
        bad |= !(benchfs_open(path, O_RDONLY, 0) == -1 && errno == ENOTCONN) << 1;
        bad |= !(benchfs_pwrite(fd, "x", 1, 0) == -1 && errno == ENOTCONN) << 2;
        bad |= !(benchfs_close(fd) == -1 && errno == ENOTCONN) << 3;
        bad |= !(benchfs_finalize() == -1 && errno == ENOTCONN) << 4;
        bad |= !(benchfs_init(MPI_COMM_WORLD) == -1 && errno == ENOTCONN) << 5;
        _exit(bad);
    }
    if (child > 0) {
        CHECK(waitpid(child, &status, 0) == child, "waitpid failed (errno %d)", errno);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "forked child: %s %d (exit bits: stat, open, pwrite, close, finalize, init)",
              WIFSIGNALED(status) ? "killed by signal" : "failed checks", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    CHECK_RET(benchfs_pwrite(fd, "y", 1, 0), 1, "parent write after the fork");
    CHECK_RET(benchfs_close(fd), 0, "parent close after the fork");
    CHECK_RET(benchfs_unlink(path), 0, "parent unlink after the fork");
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "bad_input");
    check_not_connected("before init");
    init_failures();
    harness_benchfs_init();

    null_pointers();
    bad_paths();
    bad_descriptors();
    bad_offsets_and_modes();
    normalisation();
    forked_child();
    MPI_Barrier(MPI_COMM_WORLD);
    nested_init();
    return harness_finish(0);
}
