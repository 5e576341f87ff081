/*
 * The namespace calls of the C API: mkdir, rmdir, rename, truncate,
 * ftruncate, access, statvfs, the directory streams (opendir, readdir,
 * closedir), O_APPEND and SEEK_END, with the errno values the header
 * documents, and the directory times that creates, removals and renames
 * stamp.
 *
 * Every rank works in its own directory below /nsc, then every rank lists
 * and reads what the others made: a directory's entries live on the ranks
 * that own their paths, so a listing from any rank must be complete.
 */
#include "harness.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <sys/statvfs.h>

static uint64_t g_chunk;

/* Entries of a rank's directory that every rank checks: f0.., d0.. and the
 * file "trunc" left by truncation(). */
enum { NFILES = 6, NDIRS = 2, NENTRIES = NFILES + NDIRS + 1 };

static void rank_dir(char *buf, size_t n, int owner)
{
    snprintf(buf, n, "/nsc/r%d", owner);
}

static uint64_t file_len(int owner, int i)
{
    return i == 0 ? g_chunk + 100 + (uint64_t)owner : 10 + 97 * (uint64_t)i;
}

static uint64_t file_id(int owner, int i)
{
    return 5000 + (uint64_t)owner * 100 + (uint64_t)i;
}

/* Creates path holding len bytes of pattern id, and closes it. */
static void create_file(const char *path, uint64_t id, uint64_t len)
{
    unsigned char *buf = xmalloc(len);
    pattern_fill(buf, id, 0, len);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "create %s (errno %d: %s)", path, errno, strerror(errno));
    if (fd >= 0) {
        pwrite_all(fd, buf, len, 0, path);
        CHECK_RET(benchfs_close(fd), 0, path);
    }
    free(buf);
}

/* Reads the whole of path: len bytes of pattern id up to keep, zeros after. */
static void verify_file(const char *path, uint64_t id, uint64_t keep, uint64_t len)
{
    struct stat st;
    int r = benchfs_stat(path, &st);
    CHECK(r == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len,
          "stat %s: ret %d size %lld, want a file of %" PRIu64 " bytes", path, r,
          r == 0 ? (long long)st.st_size : -1LL, len);
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open %s (errno %d: %s)", path, errno, strerror(errno));
    if (fd < 0)
        return;
    unsigned char *buf = xmalloc(len + 64);
    long long got = pread_all(fd, buf, len + 64, 0, path);
    CHECK(got == (long long)len, "%s: read %lld bytes, want %" PRIu64, path, got, len);
    if (got == (long long)len) {
        verify_pattern(buf, id, 0, (size_t)(keep < len ? keep : len), path);
        if (keep < len)
            verify_zero(buf + keep, keep, (size_t)(len - keep), path);
    }
    free(buf);
    CHECK_RET(benchfs_close(fd), 0, path);
}

/* The errno values of the header, in this rank's directory. */
static void errno_cases(const char *dir)
{
    char file[128], sub[128], path[512];
    struct stat st;
    snprintf(file, sizeof file, "%s/errfile", dir);
    snprintf(sub, sizeof sub, "%s/errdir", dir);
    create_file(file, 1, 10);
    CHECK_RET(benchfs_mkdir(sub, 0755), 0, "mkdir errdir");

    CHECK_ERR(benchfs_mkdir(sub, 0755), EEXIST, "mkdir of an existing directory");
    CHECK_ERR(benchfs_mkdir(file, 0755), EEXIST, "mkdir of an existing file");
    CHECK_ERR(benchfs_mkdir("/", 0755), EEXIST, "mkdir /");
    snprintf(path, sizeof path, "%s/missing/x", dir);
    CHECK_ERR(benchfs_mkdir(path, 0755), ENOENT, "mkdir with a missing parent");
    CHECK_ERR(benchfs_open(path, O_CREAT | O_WRONLY, 0644), ENOENT, "create with a missing parent");
    snprintf(path, sizeof path, "%s/x", file);
    CHECK_ERR(benchfs_mkdir(path, 0755), ENOTDIR, "mkdir under a file");
    CHECK_ERR(benchfs_open(path, O_CREAT | O_WRONLY, 0644), ENOTDIR, "create under a file");
    CHECK_ERR(benchfs_open(path, O_RDONLY, 0), ENOTDIR, "open under a file");
    CHECK_ERR(benchfs_rmdir(file), ENOTDIR, "rmdir of a file");
    CHECK_ERR(benchfs_unlink(sub), EISDIR, "unlink of a directory");
    CHECK_ERR(benchfs_open(sub, O_WRONLY, 0), EISDIR, "open of a directory for writing");
    CHECK_ERR(benchfs_open(sub, O_RDWR, 0), EISDIR, "open of a directory O_RDWR");
    CHECK_ERR(benchfs_truncate(sub, 0), EISDIR, "truncate of a directory");
    CHECK_ERR(benchfs_rmdir("/"), EBUSY, "rmdir /");
    CHECK_ERR(benchfs_rmdir("nsc"), EINVAL, "rmdir of a relative path");
    snprintf(path, sizeof path, "%s/%0300d", dir, 0);
    CHECK_ERR(benchfs_mkdir(path, 0755), ENAMETOOLONG, "mkdir of a 300-byte name");
    snprintf(path, sizeof path, "%s/inner", sub);
    create_file(path, 2, 0);
    CHECK_ERR(benchfs_rmdir(sub), ENOTEMPTY, "rmdir of a non-empty directory");
    CHECK_ERR(benchfs_rename(dir, path), EINVAL, "rename of a directory into its subtree");
    CHECK_ERR(benchfs_rename(file, sub), EISDIR, "rename of a file onto a directory");
    CHECK_ERR(benchfs_rename(sub, file), ENOTDIR, "rename of a directory onto a file");
    CHECK_RET(benchfs_unlink(path), 0, "unlink inner");
    CHECK_RET(benchfs_rmdir(sub), 0, "rmdir errdir once empty");
    CHECK_ERR(benchfs_stat(sub, &st), ENOENT, "stat after rmdir");
    CHECK_ERR(benchfs_rmdir(sub), ENOENT, "rmdir of a missing directory");
    CHECK_RET(benchfs_unlink(file), 0, "unlink errfile");

    CHECK_ERR(benchfs_access(file, F_OK), ENOENT, "access of a missing file");
    CHECK_ERR(benchfs_truncate(file, 0), ENOENT, "truncate of a missing file");
    CHECK_ERR(benchfs_rename(file, sub), ENOENT, "rename of a missing file");
}

/* A rank's directory: NFILES files (one spanning chunks) and NDIRS directories. */
static void populate(const char *dir)
{
    char path[160];
    CHECK_RET(benchfs_mkdir(dir, 0755), 0, dir);
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        create_file(path, file_id(g_rank, i), file_len(g_rank, i));
    }
    for (int i = 0; i < NDIRS; i++) {
        snprintf(path, sizeof path, "%s/d%d", dir, i);
        CHECK_RET(benchfs_mkdir(path, 0700), 0, path);
    }
}

/*
 * Lists a rank's directory: "." and ".." first, then each name exactly
 * once with its d_type and the d_ino that stat gives; the end is NULL with
 * errno untouched, and stays at the end.
 */
static void check_listing(int owner)
{
    char dir[64], path[320];
    int seen_files[NFILES] = {0}, seen_dirs[NDIRS] = {0}, seen_trunc = 0;
    struct stat st, parent;
    rank_dir(dir, sizeof dir, owner);
    int have_dir = benchfs_stat(dir, &st) == 0;
    int have_parent = benchfs_stat("/nsc", &parent) == 0;
    CHECK(have_dir && have_parent && S_ISDIR(st.st_mode), "stat %s and /nsc", dir);

    benchfs_dir_t *d = benchfs_opendir(dir);
    CHECK(d != NULL, "opendir %s (errno %d: %s)", dir, errno, strerror(errno));
    if (!d)
        return;
    int n = 0, strangers = 0;
    struct dirent *e;
    for (;;) {
        errno = EDOM;
        e = benchfs_readdir(d);
        if (!e)
            break;
        if (n == 0 || n == 1) {
            const char *want = n == 0 ? "." : "..";
            ino_t want_ino = n == 0 ? st.st_ino : parent.st_ino;
            CHECK(strcmp(e->d_name, want) == 0 && e->d_type == DT_DIR && e->d_ino == want_ino,
                  "%s: entry %d is \"%s\" type %d ino %llu, want \"%s\" DT_DIR ino %llu", dir,
                  n, e->d_name, e->d_type, (unsigned long long)e->d_ino, want,
                  (unsigned long long)want_ino);
            n++;
            continue;
        }
        n++;
        int k;
        char kind;
        if (strcmp(e->d_name, "trunc") == 0) {
            seen_trunc++;
            CHECK(e->d_type == DT_REG, "%s/trunc: d_type %d", dir, e->d_type);
            continue;
        }
        if (sscanf(e->d_name, "%c%d", &kind, &k) != 2 || (kind != 'f' && kind != 'd') ||
            k < 0 || k >= (kind == 'f' ? NFILES : NDIRS)) {
            strangers++;
            CHECK(0, "%s: unexpected entry \"%s\"", dir, e->d_name);
            continue;
        }
        int *seen = kind == 'f' ? &seen_files[k] : &seen_dirs[k];
        (*seen)++;
        CHECK(e->d_type == (kind == 'f' ? DT_REG : DT_DIR), "%s/%s: d_type %d", dir,
              e->d_name, e->d_type);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat es;
        int r = benchfs_stat(path, &es);
        CHECK(r == 0 && es.st_ino == e->d_ino, "%s: d_ino %llu, stat ret %d ino %llu", path,
              (unsigned long long)e->d_ino, r, r == 0 ? (unsigned long long)es.st_ino : 0ULL);
    }
    CHECK(errno == EDOM, "readdir at the end of %s changed errno to %d (%s)", dir, errno,
          strerror(errno));
    errno = EDOM;
    CHECK(benchfs_readdir(d) == NULL && errno == EDOM, "readdir past the end of %s", dir);
    CHECK(n == 2 + NENTRIES && strangers == 0 && seen_trunc == 1,
          "%s: %d entries (trunc %d times), want %d", dir, n, seen_trunc, 2 + NENTRIES);
    for (int k = 0; k < NFILES; k++)
        CHECK(seen_files[k] == 1, "%s/f%d listed %d times", dir, k, seen_files[k]);
    for (int k = 0; k < NDIRS; k++)
        CHECK(seen_dirs[k] == 1, "%s/d%d listed %d times", dir, k, seen_dirs[k]);
    CHECK_RET(benchfs_closedir(d), 0, "closedir");
}

/* The stream calls given what is not an open stream. */
static void bad_streams(const char *dir)
{
    char file[128];
    snprintf(file, sizeof file, "%s/f1", dir);
    errno = 0;
    CHECK(benchfs_closedir(NULL) == -1 && errno != 0, "closedir(NULL): want -1 with errno set");
    errno = 0;
    CHECK(benchfs_readdir(NULL) == NULL && errno != 0, "readdir(NULL): want NULL with errno set");
    errno = 0;
    CHECK(benchfs_opendir(file) == NULL && errno == ENOTDIR, "opendir of a file: errno %d", errno);
    char below_file[160];
    snprintf(below_file, sizeof below_file, "%s/x", file);
    errno = 0;
    CHECK(benchfs_opendir(below_file) == NULL && errno == ENOTDIR, "opendir below a file: errno %d", errno);
    errno = 0;
    CHECK(benchfs_opendir("/nsc/missing") == NULL && errno == ENOENT,
          "opendir of a missing directory: errno %d", errno);

    benchfs_dir_t *d = benchfs_opendir(dir);
    CHECK(d != NULL, "opendir %s (errno %d)", dir, errno);
    if (!d)
        return;
    CHECK(benchfs_readdir(d) != NULL, "first readdir of %s", dir);
    CHECK_RET(benchfs_closedir(d), 0, "closedir");
    /* The pointer is stale now: it must be refused, not dereferenced. */
    errno = 0;
    CHECK(benchfs_readdir(d) == NULL && errno == EBADF,
          "readdir on a closed stream: want NULL/EBADF, errno %d", errno);
    CHECK_ERR(benchfs_closedir(d), EBADF, "second closedir");
}

/* Renames within the rank's directory and onto an existing file. */
static void renames(const char *dir)
{
    char a[128], b[128], sub[128], c[160];
    struct stat st_a, st;
    snprintf(a, sizeof a, "%s/ren_a", dir);
    snprintf(b, sizeof b, "%s/ren_b", dir);
    snprintf(sub, sizeof sub, "%s/ren_dir", dir);
    snprintf(c, sizeof c, "%s/ren_dir/c", dir);
    uint64_t ida = 7000 + (uint64_t)g_rank, idb = 7100 + (uint64_t)g_rank;
    create_file(a, ida, 3000);
    create_file(b, idb, 2 * g_chunk + 50);
    CHECK_RET(benchfs_stat(a, &st_a), 0, "stat ren_a");
    CHECK_RET(benchfs_rename(a, b), 0, "rename onto an existing file");
    CHECK_ERR(benchfs_stat(a, &st), ENOENT, "stat of the old name");
    CHECK(benchfs_stat(b, &st) == 0 && st.st_ino == st_a.st_ino && st.st_size == 3000,
          "stat after replacing rename: ino %llu size %lld, want ino %llu size 3000",
          (unsigned long long)st.st_ino, (long long)st.st_size, (unsigned long long)st_a.st_ino);
    verify_file(b, ida, 3000, 3000);
    CHECK_RET(benchfs_mkdir(sub, 0755), 0, "mkdir ren_dir");
    CHECK_RET(benchfs_rename(b, c), 0, "rename into a subdirectory");
    verify_file(c, ida, 3000, 3000);
    CHECK_RET(benchfs_unlink(c), 0, "unlink ren_dir/c");
    CHECK_RET(benchfs_rmdir(sub), 0, "rmdir ren_dir");
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mtime_ns(const char *path)
{
    struct stat st = {0};
    CHECK(benchfs_stat(path, &st) == 0, "stat %s (errno %d)", path, errno);
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* Waits (5 s at most) until directory `dir`'s mtime is `since` or later. */
static void stamped_since(const char *dir, int64_t since, const char *change)
{
    int64_t m = mtime_ns(dir);
    for (int i = 0; i < 5000 && m < since; i++) {
        usleep(1000);
        m = mtime_ns(dir);
    }
    CHECK(m >= since, "%s: mtime of %s still %lld, before the change at %lld", change, dir,
          (long long)m, (long long)since);
}

/*
 * A directory's times follow each create, removal and rename in it shortly
 * after (docs/semantics.md). Each directory here sees one change at a time,
 * so the stamp a check waits for can only come from that change.
 */
static void directory_times(const char *dir)
{
    char t1[128], t2[128], x1[160], x2[160];
    snprintf(t1, sizeof t1, "%s/times1", dir);
    snprintf(t2, sizeof t2, "%s/times2", dir);
    snprintf(x1, sizeof x1, "%s/x", t1);
    snprintf(x2, sizeof x2, "%s/x", t2);
    CHECK(benchfs_mkdir(t1, 0755) == 0, "mkdir %s (errno %d)", t1, errno);
    CHECK(benchfs_mkdir(t2, 0755) == 0, "mkdir %s (errno %d)", t2, errno);

    int64_t before = now_ns();
    create_file(x1, 9000 + (uint64_t)g_rank, 10);
    stamped_since(t1, before, "create");
    before = now_ns();
    CHECK(benchfs_rename(x1, x2) == 0, "rename %s to %s (errno %d)", x1, x2, errno);
    stamped_since(t1, before, "rename out");
    stamped_since(t2, before, "rename in");

    /* Opening an existing file with O_CREAT changes nothing, so it stamps
     * nothing; the rename's stamp of t2 has landed above. */
    int64_t settled = mtime_ns(t2);
    int fd = benchfs_open(x2, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "open O_CREAT of the existing %s (errno %d)", x2, errno);
    if (fd >= 0)
        CHECK(benchfs_close(fd) == 0, "close %s (errno %d)", x2, errno);
    usleep(50000);
    CHECK(mtime_ns(t2) == settled, "open O_CREAT of an existing file changed the mtime of %s", t2);

    before = now_ns();
    CHECK(benchfs_unlink(x2) == 0, "unlink %s (errno %d)", x2, errno);
    stamped_since(t2, before, "unlink");
    CHECK(benchfs_rmdir(t1) == 0, "rmdir %s (errno %d)", t1, errno);
    CHECK(benchfs_rmdir(t2) == 0, "rmdir %s (errno %d)", t2, errno);
}

/* truncate and ftruncate: shrink, then grow; the cut part reads as zeros. */
static void truncation(const char *dir)
{
    char path[128];
    struct stat st;
    uint64_t id = 8000 + (uint64_t)g_rank, len = 2 * g_chunk + 999, cut = g_chunk / 3 + 1;
    snprintf(path, sizeof path, "%s/trunc", dir);
    create_file(path, id, len);
    CHECK_RET(benchfs_truncate(path, (off_t)cut), 0, "truncate down");
    verify_file(path, id, cut, cut);
    CHECK_RET(benchfs_truncate(path, (off_t)len), 0, "truncate up");
    verify_file(path, id, cut, len);
    CHECK_ERR(benchfs_truncate(path, -1), EINVAL, "truncate to a negative length");

    int fd = benchfs_open(path, O_RDWR, 0);
    CHECK(fd >= 0, "open %s O_RDWR (errno %d)", path, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_ftruncate(fd, 10), 0, "ftruncate down");
        CHECK(benchfs_fstat(fd, &st) == 0 && st.st_size == 10, "fstat after ftruncate");
        CHECK_RET(benchfs_ftruncate(fd, (off_t)(g_chunk + 7)), 0, "ftruncate up");
        CHECK(benchfs_fstat(fd, &st) == 0 && (uint64_t)st.st_size == g_chunk + 7,
              "fstat after growing ftruncate");
        CHECK_ERR(benchfs_ftruncate(fd, -5), EINVAL, "ftruncate to a negative length");
        CHECK_RET(benchfs_close(fd), 0, "close after ftruncate");
    }
    CHECK_ERR(benchfs_ftruncate(fd, 0), EBADF, "ftruncate of a closed descriptor");
    verify_file(path, id, 10, g_chunk + 7);
}

/* O_APPEND writes go to the end whatever the offset; SEEK_END finds it. */
static void append_and_seek_end(const char *dir)
{
    char path[128];
    uint64_t id = 9000 + (uint64_t)g_rank;
    const uint64_t pieces[] = {500, 1, g_chunk - 3, 2048};
    uint64_t at = 0;
    unsigned char *buf = xmalloc(g_chunk + 4096);
    snprintf(path, sizeof path, "%s/append", dir);
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        int fd = benchfs_open(path, O_CREAT | O_WRONLY | O_APPEND, 0644);
        CHECK(fd >= 0, "open O_APPEND (errno %d)", errno);
        if (fd < 0)
            break;
        CHECK_RET(benchfs_lseek(fd, 0, SEEK_SET), 0, "lseek to 0 before an append");
        pattern_fill(buf, id, at, pieces[k]);
        CHECK_RET(benchfs_write(fd, buf, pieces[k]), (long long)pieces[k], "append");
        at += pieces[k];
        CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), (long long)at, "offset after an append");
        CHECK_RET(benchfs_close(fd), 0, "close after append");
    }
    verify_file(path, id, at, at);

    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open %s (errno %d)", path, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_lseek(fd, 0, SEEK_END), (long long)at, "lseek(0, SEEK_END)");
        CHECK_RET(benchfs_lseek(fd, -100, SEEK_END), (long long)at - 100, "lseek(-100, SEEK_END)");
        CHECK_RET(benchfs_read(fd, buf, 4096), 100, "read of the last 100 bytes");
        verify_pattern(buf, id, at - 100, 100, "the last 100 bytes");
        CHECK_ERR(benchfs_lseek(fd, -(off_t)at - 1, SEEK_END), EINVAL, "lseek before the start");
        CHECK_ERR(benchfs_lseek(fd, 0, 12345), EINVAL, "lseek with a bad whence");
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    free(buf);
    CHECK_RET(benchfs_unlink(path), 0, "unlink append");
}

static void access_and_statvfs(const char *dir)
{
    char file[128];
    struct statvfs sv;
    snprintf(file, sizeof file, "%s/f1", dir);
    CHECK_RET(benchfs_access(file, F_OK), 0, "access F_OK");
    CHECK_RET(benchfs_access(file, R_OK | W_OK), 0, "access R_OK|W_OK");
    CHECK_RET(benchfs_access(dir, R_OK | W_OK | X_OK), 0, "access of a directory");
    CHECK_ERR(benchfs_access(file, X_OK), EACCES, "access X_OK of a 0644 file");
    CHECK_ERR(benchfs_access("/nsc/none", F_OK), ENOENT, "access of a missing file");

    int r = benchfs_statvfs("/", &sv);
    CHECK(r == 0, "statvfs / (errno %d: %s)", errno, strerror(errno));
    if (r == 0) {
        CHECK(sv.f_bsize > 0 && sv.f_blocks > 0 && sv.f_bfree <= sv.f_blocks &&
                  sv.f_bavail <= sv.f_bfree,
              "statvfs blocks: bsize %lu blocks %llu bfree %llu bavail %llu",
              (unsigned long)sv.f_bsize, (unsigned long long)sv.f_blocks,
              (unsigned long long)sv.f_bfree, (unsigned long long)sv.f_bavail);
        CHECK(sv.f_files > sv.f_ffree && sv.f_namemax == 255,
              "statvfs files %llu ffree %llu namemax %lu", (unsigned long long)sv.f_files,
              (unsigned long long)sv.f_ffree, (unsigned long)sv.f_namemax);
    }
    CHECK_ERR(benchfs_statvfs("/nsc/none", &sv), ENOENT, "statvfs of a missing path");
}

/* Removes what populate() made. */
static void depopulate(const char *dir)
{
    char path[160];
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        CHECK_RET(benchfs_unlink(path), 0, path);
    }
    for (int i = 0; i < NDIRS; i++) {
        snprintf(path, sizeof path, "%s/d%d", dir, i);
        CHECK_RET(benchfs_rmdir(path), 0, path);
    }
    snprintf(path, sizeof path, "%s/trunc", dir);
    CHECK_RET(benchfs_unlink(path), 0, path);
    CHECK_RET(benchfs_rmdir(dir), 0, dir);
}

int main(int argc, char **argv)
{
    char dir[64];
    harness_init(&argc, &argv, "namespace");
    harness_benchfs_init();
    g_chunk = probe_chunk_size();
    if (g_rank == 0)
        CHECK_RET(benchfs_mkdir("/nsc", 0755), 0, "mkdir /nsc");
    MPI_Barrier(MPI_COMM_WORLD);

    rank_dir(dir, sizeof dir, g_rank);
    populate(dir);
    errno_cases(dir);
    bad_streams(dir);
    renames(dir);
    directory_times(dir);
    truncation(dir);
    append_and_seek_end(dir);
    access_and_statvfs(dir);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Every rank's results, from every rank. */
    for (int k = 0; k < g_nranks; k++) {
        int owner = (g_rank + k) % g_nranks;
        char path[128];
        check_listing(owner);
        rank_dir(dir, sizeof dir, owner);
        for (int i = 0; i < NFILES; i++) {
            snprintf(path, sizeof path, "%s/f%d", dir, i);
            verify_file(path, file_id(owner, i), file_len(owner, i), file_len(owner, i));
        }
        snprintf(path, sizeof path, "%s/trunc", dir);
        verify_file(path, 8000 + (uint64_t)owner, 10, g_chunk + 7);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    rank_dir(dir, sizeof dir, g_rank);
    depopulate(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        benchfs_dir_t *d = benchfs_opendir("/nsc");
        int n = 0;
        CHECK(d != NULL, "opendir /nsc (errno %d)", errno);
        while (d && benchfs_readdir(d))
            n++;
        CHECK(n == 2, "/nsc has %d entries after cleanup, want . and .. only", n);
        if (d)
            CHECK_RET(benchfs_closedir(d), 0, "closedir /nsc");
        CHECK_RET(benchfs_rmdir("/nsc"), 0, "rmdir /nsc");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return harness_finish(1);
}
