/*
 * The call sequences that the IOR/mdtest backend (ior_patch/aiori-BENCHFS.c)
 * issues, replayed through the C API and checked byte for byte:
 *
 *   - IOR easy: a file per process, created O_WRONLY|O_CREAT|O_TRUNC under a
 *     missing parent (open, ENOENT, mkdir -p, open again), 1 MiB transfers
 *     each followed by fsync (-Y), close, the aggregate size from stat, a
 *     read-only reopen of the neighbour's file (-C) and delete; a second
 *     repetition with -E shows that O_TRUNC is honoured per process.
 *   - IOR shared: one file, rank 0 removes an old one, a barrier, every rank
 *     creates it O_WRONLY|O_CREAT (never O_TRUNC) after making the parent,
 *     segmented writes, fsync (-e), close, equal sizes on every rank, reads
 *     of the neighbour's blocks; with -E the old size and data survive.
 *   - IOR hard: 47008-byte transfers, one per rank per segment.
 *   - IOR random (-z): each rank's transfers in a seeded permutation.
 *   - mdtest: mkdir -p of the test directory, per-rank trees (-u), directory
 *     create/stat/rename/remove, mknod (-k), create + 3901-byte write + close
 *     (-w), stat, open + 3901-byte read verified (-e -X) + close, with the
 *     phases shifted by rank (-N 1), remove, tree removal, statfs.
 *   - initialize/finalize nesting as IO500 drives it, teardown (ENOTCONN
 *     afterwards) and a second start with a fresh namespace.
 *
 * Paths are given the way IOR and mdtest hand them to the backend, mostly
 * relative, and mapped to "/" + path as the backend maps them.
 *
 * usage: ior_sequences [HARD_SEGMENTS [MDTEST_ITEMS [EASY_TRANSFERS]]]
 */
#include "harness.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

/* ------------------------------------------------------------------------ */
/* Sizes                                                                     */
/* ------------------------------------------------------------------------ */

enum {
    MIB = 1 << 20,
    HARD_XFER = 47008,   /* IO500 ior-hard transfer and block size */
    MD_BYTES = 3901,     /* IO500 mdtest-hard -w/-e */
    PATH_BUF = 4097,     /* longest absolute path the backend builds, plus NUL */
    /* mdtest's test directory, tree or item directory, and item names. */
    MD_TESTDIR = 256,
    MD_DIR = MD_TESTDIR + 64,
    MD_ITEM = MD_DIR + 96,
};

static uint64_t g_hard_segments = 60;
static uint64_t g_md_items = 24;
static uint64_t g_easy_transfers = 3;

/* ------------------------------------------------------------------------ */
/* The backend's call shapes                                                 */
/* ------------------------------------------------------------------------ */

/* The transfer hints IOR and mdtest hand to the backend. */
static struct {
    int file_per_proc;
    int fsync_per_write;
} g_hints;

/* "/" + path for a relative path, the path itself otherwise. */
static void abs_path(const char *path, char out[PATH_BUF])
{
    int n = snprintf(out, PATH_BUF, "%s%s", path[0] == '/' ? "" : "/", path);
    CHECK(n > 0 && n < PATH_BUF, "path %s does not fit", path);
}

/* mkdir -p of every ancestor of an absolute path; EEXIST from a rank that
 * got there first is success. Returns 0 or -1 with errno. */
static int make_parents(const char *path)
{
    char dir[PATH_BUF];
    strcpy(dir, path);
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (benchfs_mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *slash = '/';
    }
    return 0;
}

static int parent_exists(const char *path)
{
    char dir[PATH_BUF];
    struct stat st;
    char *slash;
    strcpy(dir, path);
    slash = strrchr(dir, '/');
    if (slash == dir)
        return 1;
    *slash = '\0';
    return benchfs_stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The backend's open path: with O_CREAT in shared-file mode the parent is
 * made first (all ranks create the same path at once); otherwise a create
 * that fails with ENOENT makes the parents and is retried once.
 */
static int be_open_file(const char *path, int flags)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    const int make_missing = (flags & O_CREAT) != 0;
    if (make_missing && !g_hints.file_per_proc && !parent_exists(abs))
        CHECK_RET(make_parents(abs), 0, "make_parents before a shared create");
    int fd = benchfs_open(abs, flags, 0664);
    if (fd < 0 && errno == ENOENT && make_missing) {
        int r = make_parents(abs);
        CHECK_RET(r, 0, "make_parents after ENOENT");
        if (r == 0)
            fd = benchfs_open(abs, flags, 0664);
    }
    CHECK(fd >= 0, "open(%s, %#o) failed (errno %d: %s)", abs, (unsigned)flags, errno,
          strerror(errno));
    return fd;
}

/* create(): IOR's flags plus O_CREAT; no O_TRUNC in shared-file mode. */
static int be_create(const char *path, int flags)
{
    flags |= O_CREAT;
    if (!g_hints.file_per_proc)
        flags &= ~O_TRUNC;
    return be_open_file(path, flags);
}

static int be_open(const char *path, int flags)
{
    return be_open_file(path, flags);
}

static int be_mknod(const char *path)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    int fd = benchfs_open(abs, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0)
        return -1;
    return benchfs_close(fd);
}

/*
 * xfer(): pwrite/pread until len bytes moved, then fsync after a complete
 * write if the hint asks. BenchFS gives short counts only at the end of a
 * file, which the backend relies on (IOR -Z), so every call must move all
 * that was asked of it. Returns the bytes moved.
 */
static long long be_xfer(int writing, int fd, unsigned char *buf, size_t len, uint64_t off,
                         const char *what)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = writing
                        ? benchfs_pwrite(fd, buf + done, len - done, (off_t)(off + done))
                        : benchfs_pread(fd, buf + done, len - done, (off_t)(off + done));
        if (n <= 0) {
            CHECK(0, "%s: %s(%zu bytes at %" PRIu64 ") returned %zd (errno %d: %s)", what,
                  writing ? "pwrite" : "pread", len - done, off + done, n, errno,
                  strerror(errno));
            break;
        }
        CHECK((size_t)n == len - done, "%s: %s(%zu bytes at %" PRIu64 ") moved only %zd",
              what, writing ? "pwrite" : "pread", len - done, off + done, n);
        done += (size_t)n;
    }
    if (writing && done == len && g_hints.fsync_per_write)
        CHECK_RET(benchfs_fsync(fd), 0, what);
    return (long long)done;
}

static void be_close(int fd, const char *what)
{
    CHECK_RET(benchfs_close(fd), 0, what);
}

static int be_delete(const char *path)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    return benchfs_unlink(abs);
}

/* get_file_size(): stat's st_size, -1 after a report. */
static long long be_get_file_size(const char *path)
{
    char abs[PATH_BUF];
    struct stat st;
    abs_path(path, abs);
    int r = benchfs_stat(abs, &st);
    CHECK(r == 0, "stat(%s) for the file size failed (errno %d: %s)", abs, errno,
          strerror(errno));
    return r == 0 ? (long long)st.st_size : -1;
}

static int be_mkdir(const char *path, mode_t mode)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    int r = benchfs_mkdir(abs, mode);
    if (r != 0 && errno == ENOENT && make_parents(abs) == 0)
        r = benchfs_mkdir(abs, mode);
    return r;
}

static int be_rmdir(const char *path)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    return benchfs_rmdir(abs);
}

static int be_access(const char *path, int mode)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    return benchfs_access(abs, mode);
}

static int be_stat(const char *path, struct stat *st)
{
    char abs[PATH_BUF];
    abs_path(path, abs);
    return benchfs_stat(abs, st);
}

static int be_rename(const char *from, const char *to)
{
    char a[PATH_BUF], b[PATH_BUF];
    abs_path(from, a);
    abs_path(to, b);
    return benchfs_rename(a, b);
}

/* statfs(): always the root, whatever the path. Returns the entries in use
 * (f_files - f_ffree), or -1 after a report. */
static long long be_statfs(const char *what)
{
    struct statvfs st;
    int r = benchfs_statvfs("/", &st);
    CHECK(r == 0, "%s: statvfs(/) failed (errno %d: %s)", what, errno, strerror(errno));
    if (r != 0)
        return -1;
    CHECK((st.f_frsize ? st.f_frsize : st.f_bsize) > 0 && st.f_blocks > 0 &&
              st.f_bfree <= st.f_blocks && st.f_bavail <= st.f_bfree &&
              st.f_ffree <= st.f_files,
          "%s: statvfs(/): frsize %lu bsize %lu blocks %llu bfree %llu bavail %llu files %llu "
          "ffree %llu",
          what, (unsigned long)st.f_frsize, (unsigned long)st.f_bsize,
          (unsigned long long)st.f_blocks, (unsigned long long)st.f_bfree,
          (unsigned long long)st.f_bavail, (unsigned long long)st.f_files,
          (unsigned long long)st.f_ffree);
    return st.f_ffree <= st.f_files ? (long long)(st.f_files - st.f_ffree) : -1;
}

/* initialize()/finalize(): only the outermost pair starts and stops. */
static int g_init_depth = 0;

static void be_initialize(void)
{
    if (g_init_depth++ > 0)
        return;
    if (benchfs_init(MPI_COMM_WORLD) != 0) {
        fprintf(stderr, "[%s rank %d/%d] FAIL: benchfs_init failed (errno %d: %s)\n", g_prog,
                g_rank, g_nranks, errno, strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

static int be_finalize(void)
{
    CHECK(g_init_depth > 0, "finalize without initialize");
    if (g_init_depth == 0 || --g_init_depth > 0)
        return 0;
    return benchfs_finalize();
}

/* ------------------------------------------------------------------------ */
/* IOR                                                                       */
/* ------------------------------------------------------------------------ */

/* The shape of one IOR test: -t, -b, -s, -F, -z. */
struct ior_test {
    uint64_t xfer, block, segments;
    int file_per_proc;
    int random;
};

/* The offset of transfer t of the block of `who` in segment s, as IOR lays
 * out a file (per process: segments of one block; shared: segments of one
 * block per rank, in rank order). */
static uint64_t ior_offset(const struct ior_test *t, int who, uint64_t seg, uint64_t index)
{
    if (t->file_per_proc)
        return seg * t->block + index * t->xfer;
    return (seg * (uint64_t)g_nranks + (uint64_t)who) * t->block + index * t->xfer;
}

static uint64_t ior_file_size(const struct ior_test *t)
{
    return t->segments * t->block * (t->file_per_proc ? 1 : (uint64_t)g_nranks);
}

/* The transfer order within a block: in order, or (-z) a permutation seeded
 * by the rank whose block it is, so that a reader with -C recomputes the
 * writer's order. */
static uint64_t *ior_order(const struct ior_test *t, int who)
{
    uint64_t n = t->block / t->xfer;
    uint64_t *order = xmalloc(sizeof *order * n);
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    if (t->random) {
        uint64_t rng = 0x10f5eedULL + (uint64_t)who;
        for (uint64_t i = n; i > 1; i--) {
            uint64_t j = rng_below(&rng, i);
            uint64_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
    }
    return order;
}

/* The write loop of one rank: every transfer of its blocks, fsync after
 * each one when -Y is given (IOR fsyncs itself as well as passing the
 * hint), fsync at the end for -e. Returns the bytes moved. */
static uint64_t ior_write(int fd, const struct ior_test *t, uint64_t id, int fsync_at_end,
                          const char *what)
{
    uint64_t n = t->block / t->xfer, moved = 0;
    uint64_t *order = ior_order(t, g_rank);
    unsigned char *buf = xmalloc(t->xfer);
    for (uint64_t s = 0; s < t->segments; s++) {
        for (uint64_t k = 0; k < n; k++) {
            uint64_t off = ior_offset(t, g_rank, s, order[k]);
            pattern_fill(buf, id, off, t->xfer);
            long long got = be_xfer(1, fd, buf, t->xfer, off, what);
            if (got > 0)
                moved += (uint64_t)got;
            if (g_hints.fsync_per_write)
                CHECK_RET(benchfs_fsync(fd), 0, "IOR's own fsync after a transfer (-Y)");
        }
    }
    if (fsync_at_end)
        CHECK_RET(benchfs_fsync(fd), 0, "fsync after all transfers (-e)");
    free(buf);
    free(order);
    return moved;
}

/* The read loop for the blocks of `who`, in the order that rank wrote them,
 * verifying every byte. Returns the bytes moved. */
static uint64_t ior_read(int fd, const struct ior_test *t, int who, uint64_t id,
                         const char *what)
{
    uint64_t n = t->block / t->xfer, moved = 0;
    uint64_t *order = ior_order(t, who);
    unsigned char *buf = xmalloc(t->xfer);
    char label[160];
    for (uint64_t s = 0; s < t->segments; s++) {
        for (uint64_t k = 0; k < n; k++) {
            uint64_t off = ior_offset(t, who, s, order[k]);
            memset(buf, 0xa5, t->xfer);
            long long got = be_xfer(0, fd, buf, t->xfer, off, what);
            if (got > 0)
                moved += (uint64_t)got;
            snprintf(label, sizeof label, "%s: rank %d's transfer at %" PRIu64, what, who, off);
            if (got == (long long)t->xfer)
                verify_pattern(buf, id, off, t->xfer, label);
        }
    }
    free(buf);
    free(order);
    return moved;
}

/* IOR's CheckFileSize: per process the stat sizes add up, shared every rank
 * sees the same size; both must equal what was moved in total. */
static void ior_check_size(const struct ior_test *t, const char *path, uint64_t moved,
                           uint64_t want, const char *what)
{
    long long size = be_get_file_size(path), sum, min, max, total;
    long long mine = (long long)moved;
    MPI_Allreduce(&size, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&size, &min, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&size, &max, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (t->file_per_proc) {
        CHECK(sum == (long long)want * g_nranks,
              "%s: the stat sizes add up to %lld, want %lld", what, sum,
              (long long)want * g_nranks);
    } else {
        CHECK(min == max && max == (long long)want,
              "%s: ranks see sizes %lld..%lld of %s, want %" PRIu64, what, min, max, path,
              want);
    }
    CHECK(total == (long long)want * (t->file_per_proc ? g_nranks : 1),
          "%s: %lld bytes moved in all, want %lld", what, total,
          (long long)want * (t->file_per_proc ? g_nranks : 1));
}

/* RemoveFile: per process each rank removes its own file if it exists,
 * shared only rank 0. */
static void ior_remove(const char *path, int file_per_proc, int want_exists)
{
    if (!file_per_proc && g_rank != 0)
        return;
    int r = be_access(path, F_OK);
    if (want_exists)
        CHECK_RET(r, 0, "access(F_OK) of an existing IOR file");
    else
        CHECK_ERR(r, ENOENT, "access(F_OK) of an IOR file not yet written");
    if (r == 0)
        CHECK_RET(be_delete(path), 0, path);
}

static void check_gone(const char *path)
{
    struct stat st;
    CHECK_ERR(be_stat(path, &st), ENOENT, path);
}

static void easy_name(char *buf, size_t n, int who)
{
    snprintf(buf, n, "io500/ior-easy/ior_file_easy.%08d", who);
}

/*
 * One repetition of IOR easy. `existing` is -E: no removal before the
 * create, so O_TRUNC must cut the file left by the previous repetition.
 */
static void ior_easy_rep(const struct ior_test *t, uint64_t id, int existing, int keep,
                         int want_old)
{
    char mine[256], theirs[256];
    const int who = (g_rank + 1) % g_nranks;
    easy_name(mine, sizeof mine, g_rank);
    easy_name(theirs, sizeof theirs, who);

    g_hints.file_per_proc = 1;
    g_hints.fsync_per_write = 1;
    if (!existing)
        ior_remove(mine, 1, want_old);
    MPI_Barrier(MPI_COMM_WORLD);
    uint64_t moved = 0;
    int fd = be_create(mine, O_WRONLY | O_TRUNC);
    if (fd >= 0) {
        moved = ior_write(fd, t, id + (uint64_t)g_rank, 0, "ior-easy write");
        be_close(fd, "ior-easy close after write");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ior_check_size(t, mine, moved, ior_file_size(t), "ior-easy write");
    g_hints.fsync_per_write = 0;

    MPI_Barrier(MPI_COMM_WORLD);
    moved = 0;
    fd = be_open(theirs, O_RDONLY);
    if (fd >= 0) {
        moved = ior_read(fd, t, who, id + (uint64_t)who, "ior-easy read");
        be_close(fd, "ior-easy close after read");
    }
    ior_check_size(t, theirs, moved, ior_file_size(t), "ior-easy read");

    if (!keep) {
        MPI_Barrier(MPI_COMM_WORLD);
        ior_remove(mine, 1, 1);
        MPI_Barrier(MPI_COMM_WORLD);
        check_gone(theirs);
    }
}

static void ior_easy(void)
{
    struct ior_test t = { MIB, g_easy_transfers * MIB, 1, 1, 0 };
    struct stat st;
    char mine[256], abs[PATH_BUF];

    /* The relative name IOR passes is not a BenchFS path. */
    easy_name(mine, sizeof mine, g_rank);
    CHECK_ERR(benchfs_stat(mine, &st), EINVAL, "stat of a relative path");

    /* -k: the file stays for the next repetition. */
    ior_easy_rep(&t, 0x1000, 0, 1, 0);
    abs_path(mine, abs);
    CHECK(benchfs_stat(abs, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_size == ior_file_size(&t),
          "stat(%s) of the kept file: errno %d, size %lld", abs, errno,
          (long long)st.st_size);

    /* -E with one transfer fewer: the old tail must be cut off. */
    struct ior_test shorter = t;
    shorter.block -= MIB;
    if (shorter.block == 0)
        shorter.block = MIB / 2, shorter.xfer = MIB / 2;
    ior_easy_rep(&shorter, 0x1100, 1, 0, 1);
}

static const char *const SHARED_PATH = "io500/ior-shared/ior_file_shared";

/* One repetition of IOR on one shared file; returns the bytes this rank
 * wrote. `existing` is -E (no removal before the create). */
static void ior_shared_write(const char *path, const struct ior_test *t, uint64_t id,
                             int existing, int want_old)
{
    g_hints.file_per_proc = 0;
    g_hints.fsync_per_write = 0;
    if (!existing)
        ior_remove(path, 0, want_old);
    MPI_Barrier(MPI_COMM_WORLD);
    int fd = be_create(path, O_WRONLY | O_TRUNC);
    if (fd >= 0) {
        ior_write(fd, t, id, 1, "shared write");
        be_close(fd, "shared close after write");
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The -C read of the neighbour's blocks plus IOR's size check. */
static void ior_shared_read(const char *path, const struct ior_test *t, uint64_t id,
                            uint64_t want_size, const char *what)
{
    const int who = (g_rank + 1) % g_nranks;
    uint64_t moved = 0;
    int fd = be_open(path, O_RDONLY);
    if (fd >= 0) {
        moved = ior_read(fd, t, who, id, what);
        be_close(fd, what);
    }
    long long size = be_get_file_size(path), min, max;
    MPI_Allreduce(&size, &min, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&size, &max, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    CHECK(min == max && max == (long long)want_size,
          "%s: ranks see sizes %lld..%lld of %s, want %" PRIu64, what, min, max, path,
          want_size);
    CHECK(moved == t->segments * t->block, "%s: read %" PRIu64 " bytes, want %" PRIu64, what,
          moved, t->segments * t->block);
}

/* Reads the whole file [0, size) in large pieces and checks each byte
 * against the pattern the given function says belongs there. */
static void verify_whole(const char *path, uint64_t size, uint64_t (*id_at)(uint64_t off),
                         uint64_t piece, const char *what)
{
    int fd = be_open(path, O_RDONLY);
    if (fd < 0)
        return;
    unsigned char *buf = xmalloc(piece + 1);
    char label[160];
    for (uint64_t off = 0; off < size; off += piece) {
        uint64_t len = size - off < piece ? size - off : piece;
        long long got = pread_all(fd, buf, len, off, what);
        CHECK(got == (long long)len, "%s: read %lld of %" PRIu64 " bytes at %" PRIu64, what,
              got, len, off);
        if (got != (long long)len)
            break;
        /* Runs of one pattern id are verified at once. */
        for (uint64_t a = 0; a < len;) {
            uint64_t id = id_at(off + a), b = a + 1;
            while (b < len && id_at(off + b) == id)
                b++;
            snprintf(label, sizeof label, "%s: [%" PRIu64 ", %" PRIu64 ")", what, off + a,
                     off + b);
            verify_pattern(buf + a, id, off + a, b - a, label);
            a = b;
        }
    }
    long long past = benchfs_pread(fd, buf, 1, (off_t)size);
    CHECK_RET(past, 0, "pread at the end of a shared file");
    be_close(fd, what);
    free(buf);
}

static uint64_t g_shared_seg_bytes;   /* one segment of the shared file */
static uint64_t shared_id_round2(uint64_t off) { (void)off; return 0x2002; }
static uint64_t shared_id_round3(uint64_t off)
{
    return off < g_shared_seg_bytes ? 0x2003 : 0x2002;
}

static void ior_shared(void)
{
    /* IOR's default 256 KiB transfers, 512 KiB blocks. */
    struct ior_test t = { 256 << 10, 512 << 10, 3, 0, 0 };
    g_shared_seg_bytes = t.block * (uint64_t)g_nranks;

    /* 1: the parent directory does not exist yet; every rank makes it
     * before it creates the file. */
    ior_shared_write(SHARED_PATH, &t, 0x2001, 0, 0);
    ior_shared_read(SHARED_PATH, &t, 0x2001, ior_file_size(&t), "shared read 1");

    /* 2: the old, larger file is removed by rank 0 alone; the create does
     * not truncate, so its old tail would show if the removal failed. */
    t.segments = 2;
    MPI_Barrier(MPI_COMM_WORLD);
    ior_shared_write(SHARED_PATH, &t, 0x2002, 0, 1);
    ior_shared_read(SHARED_PATH, &t, 0x2002, ior_file_size(&t), "shared read 2");
    verify_whole(SHARED_PATH, ior_file_size(&t), shared_id_round2, 3 * MIB, "shared file 2");

    /* 3, -E: the file is reused as it is. Writing one segment leaves the
     * size and the second segment of repetition 2 in place. */
    uint64_t old_size = ior_file_size(&t);
    t.segments = 1;
    MPI_Barrier(MPI_COMM_WORLD);
    ior_shared_write(SHARED_PATH, &t, 0x2003, 1, 1);
    ior_shared_read(SHARED_PATH, &t, 0x2003, old_size, "shared read 3 (-E)");
    verify_whole(SHARED_PATH, old_size, shared_id_round3, 3 * MIB, "shared file 3 (-E)");

    MPI_Barrier(MPI_COMM_WORLD);
    ior_remove(SHARED_PATH, 0, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    check_gone(SHARED_PATH);
}

static uint64_t hard_id(uint64_t off) { (void)off; return 0x3000; }
static uint64_t random_id(uint64_t off) { (void)off; return 0x4000; }

/* Shared-file runs with one layout: write, -C read, whole-file check,
 * removal. */
static void ior_one_shared(const char *path, const struct ior_test *t, uint64_t id,
                           uint64_t (*id_at)(uint64_t), const char *what)
{
    ior_shared_write(path, t, id, 0, 0);
    ior_shared_read(path, t, id, ior_file_size(t), what);
    if (g_rank == 0)
        verify_whole(path, ior_file_size(t), id_at, 2 * MIB + 12345, what);
    MPI_Barrier(MPI_COMM_WORLD);
    ior_remove(path, 0, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    check_gone(path);
}

static void ior_hard(void)
{
    /* -t 47008 -b 47008 -s N: segment s holds one transfer of each rank,
     * in rank order. An absolute -o is passed through unchanged. */
    struct ior_test t = { HARD_XFER, HARD_XFER, g_hard_segments, 0, 0 };
    ior_one_shared("/io500/ior-hard/file", &t, 0x3000, hard_id, "ior-hard");
}

static void ior_random(void)
{
    /* -z: 47008-byte transfers in a seeded order within each block, so
     * that neighbouring writes land out of order across chunk boundaries. */
    struct ior_test t = { HARD_XFER, 12 * HARD_XFER, 2, 0, 1 };
    ior_one_shared("io500/ior-rnd/file", &t, 0x4000, random_id, "ior-random");
}

/* ------------------------------------------------------------------------ */
/* mdtest                                                                    */
/* ------------------------------------------------------------------------ */

/* One mdtest run: -d testdirpath, -u or not, -N stride, -w/-e bytes. */
struct md_run {
    const char *testdirpath;
    int unique_dir;      /* -u */
    int stride;          /* -N */
    int dirs;            /* directory phases (no -F) */
    int make_node;       /* -k */
    size_t bytes;        /* -w and -e */
    int sync_file;       /* -y */
};

static uint64_t md_file_id(int creator, uint64_t item)
{
    return 0x50000 + (uint64_t)creator * 1000000 + item;
}

/* The name prefix of the items a rank works on in a phase shifted by
 * `shift` strides. */
static int md_rank(const struct md_run *m, int shift)
{
    return (g_rank + shift * m->stride) % g_nranks;
}

/* The directory a rank's items of one phase live in. */
static void md_item_dir(const struct md_run *m, const char *testdir, int shift, char *out,
                        size_t n)
{
    if (m->unique_dir)
        snprintf(out, n, "%s/mdtest_tree.%d.0", testdir, md_rank(m, shift));
    else
        snprintf(out, n, "%s/mdtest_tree.0", testdir);
}

static void md_item(const char *dir, const char *kind, int who, uint64_t i, char *out,
                    size_t n)
{
    snprintf(out, n, "%s/%s.mdtest.%d.%" PRIu64, dir, kind, who, i);
}

/* Directory create, stat, rename and remove, in the rank's own tree. */
static void md_directory_phases(const struct md_run *m, const char *testdir)
{
    char dir[MD_DIR], item[MD_ITEM], last[MD_ITEM], first[MD_ITEM];
    struct stat st;
    uint64_t n = g_md_items;
    ino_t *ino = xmalloc(sizeof *ino * n);

    md_item_dir(m, testdir, 0, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "dir", md_rank(m, 0), i, item, sizeof item);
        CHECK_RET(be_mkdir(item, 0755), 0, item);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    md_item_dir(m, testdir, 2, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "dir", md_rank(m, 1), i, item, sizeof item);
        int r = be_stat(item, &st);
        CHECK(r == 0 && S_ISDIR(st.st_mode), "stat(%s): ret %d mode 0%o (errno %d)", item, r,
              r == 0 ? (unsigned)st.st_mode : 0, errno);
        ino[i] = r == 0 ? st.st_ino : 0;
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /*
     * Rename as mdtest does: the first item moves aside to "<name>-XX", each
     * following one takes its predecessor's name, and the last step puts
     * the one moved aside under the last name freed. The inodes end rotated:
     * name k holds inode k+1, name n-2 inode 0, name n-1 its own.
     */
    if (n > 1) {
        for (uint64_t i = 0; i < n; i++) {
            md_item(dir, "dir", md_rank(m, 1), i, item, sizeof item);
            if (i == 0) {
                snprintf(first, sizeof first, "%s-XX", item);
                strcpy(last, first);
            } else if (i == n - 1) {
                strcpy(item, first);
            }
            int r = be_rename(item, last);
            CHECK(r == 0, "rename(%s, %s) failed (errno %d: %s)", item, last, errno,
                  strerror(errno));
            strcpy(last, item);
        }
        CHECK_ERR(be_stat(first, &st), ENOENT, "stat of the name moved aside");
        for (uint64_t k = 0; k < n; k++) {
            uint64_t want = k + 2 < n ? k + 1 : (k + 2 == n ? 0 : k);
            md_item(dir, "dir", md_rank(m, 1), k, item, sizeof item);
            int r = be_stat(item, &st);
            CHECK(r == 0 && S_ISDIR(st.st_mode) && st.st_ino == ino[want],
                  "after the rename phase %s: ret %d, ino %llu, want %llu (item %" PRIu64 ")",
                  item, r, r == 0 ? (unsigned long long)st.st_ino : 0ULL,
                  (unsigned long long)ino[want], want);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);

    md_item_dir(m, testdir, 4, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "dir", md_rank(m, 3), i, item, sizeof item);
        CHECK_RET(be_rmdir(item), 0, item);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(ino);
}

/* Create (mknod, or create + write + close), stat, read, remove. */
static void md_file_phases(const struct md_run *m, const char *testdir)
{
    char dir[MD_DIR], item[MD_ITEM];
    struct stat st;
    uint64_t n = g_md_items;
    unsigned char *buf = xmalloc(m->bytes + 1);

    /* Entries in use before and after the create phase (ShowFileSystemSize
     * and its like only ever run on rank 0). */
    long long used_before = -1;
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        used_before = be_statfs("statfs before the create phase");
    MPI_Barrier(MPI_COMM_WORLD);

    g_hints.file_per_proc = 1;
    g_hints.fsync_per_write = m->sync_file;
    md_item_dir(m, testdir, 0, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "file", md_rank(m, 0), i, item, sizeof item);
        if (m->make_node) {
            CHECK_RET(be_mknod(item), 0, item);
            continue;
        }
        int fd = be_create(item, O_WRONLY);
        if (fd < 0)
            continue;
        if (m->bytes > 0) {
            pattern_fill(buf, md_file_id(g_rank, i), 0, m->bytes);
            CHECK_RET(be_xfer(1, fd, buf, m->bytes, 0, item), m->bytes, item);
        }
        be_close(fd, item);
    }
    g_hints.fsync_per_write = 0;
    if (m->make_node) {
        md_item(dir, "file", md_rank(m, 0), 0, item, sizeof item);
        CHECK_ERR(be_mknod(item), EEXIST, "mknod of an existing file");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        long long used_after = be_statfs("statfs after the create phase");
        CHECK(used_before >= 0 && used_after - used_before == (long long)n * g_nranks,
              "statfs: %lld entries in use after creating %lld files, %lld before",
              used_after, (long long)n * g_nranks, used_before);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    md_item_dir(m, testdir, 2, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "file", md_rank(m, 1), i, item, sizeof item);
        int r = be_stat(item, &st);
        CHECK(r == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == m->bytes,
              "stat(%s): ret %d, mode 0%o, size %lld, want a %zu-byte file (errno %d)", item,
              r, r == 0 ? (unsigned)st.st_mode : 0, r == 0 ? (long long)st.st_size : -1LL,
              m->bytes, errno);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    md_item_dir(m, testdir, 3, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        int who = md_rank(m, 2);
        md_item(dir, "file", who, i, item, sizeof item);
        int fd = be_open(item, O_RDONLY);
        if (fd < 0)
            continue;
        if (m->bytes > 0) {
            memset(buf, 0, m->bytes);
            long long got = be_xfer(0, fd, buf, m->bytes, 0, item);
            CHECK_RET(got, m->bytes, item);
            if (got == (long long)m->bytes)
                verify_pattern(buf, md_file_id(who, i), 0, m->bytes, item);
        }
        be_close(fd, item);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    md_item_dir(m, testdir, 4, dir, sizeof dir);
    for (uint64_t i = 0; i < n; i++) {
        md_item(dir, "file", md_rank(m, 3), i, item, sizeof item);
        CHECK_RET(be_delete(item), 0, item);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(buf);
}

static void mdtest_run(const struct md_run *m)
{
    char testdir[MD_TESTDIR], tree[MD_DIR], abs[PATH_BUF];
    struct stat st;

    /* Rank 0 makes the -d directory; its parents do not exist yet, so the
     * backend's mkdir makes them. */
    if (g_rank == 0) {
        CHECK_ERR(be_access(m->testdirpath, F_OK), ENOENT, "access of the new -d directory");
        CHECK_RET(be_mkdir(m->testdirpath, 0755), 0, m->testdirpath);
        be_statfs("statfs of the test directory");
    }
    snprintf(testdir, sizeof testdir, "%s/test-dir.0-0", m->testdirpath);
    if (g_rank == 0 && be_access(testdir, F_OK) != 0)
        CHECK_RET(be_mkdir(testdir, 0755), 0, testdir);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Tree creation: -u gives each rank its own tree, otherwise rank 0
     * makes the one tree. mdtest names it with a trailing slash. */
    if (m->unique_dir)
        snprintf(tree, sizeof tree, "%s/mdtest_tree.%d.0/", testdir, g_rank);
    else
        snprintf(tree, sizeof tree, "%s/mdtest_tree.0/", testdir);
    if (m->unique_dir || g_rank == 0)
        CHECK_RET(be_mkdir(tree, 0755), 0, tree);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(be_stat(tree, &st) == 0 && S_ISDIR(st.st_mode), "stat of the tree %s (errno %d)",
          tree, errno);

    if (m->dirs)
        md_directory_phases(m, testdir);
    md_file_phases(m, testdir);

    /* Tree removal, then rank 0 removes the test directory and the -d
     * directory it created. */
    if (m->unique_dir || g_rank == 0)
        CHECK_RET(be_rmdir(tree), 0, tree);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK_RET(be_access(testdir, F_OK), 0, testdir);
        CHECK_RET(be_rmdir(testdir), 0, testdir);
        CHECK_RET(be_rmdir(m->testdirpath), 0, m->testdirpath);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    abs_path(m->testdirpath, abs);
    CHECK_ERR(benchfs_stat(abs, &st), ENOENT, "stat of the removed -d directory");
}

static void mdtest_easy(void)
{
    /* mdtest -u -k, directories and files, no stride. */
    struct md_run m = { "io500/mdtest-easy/run", 1, 0, 1, 1, 0, 0 };
    mdtest_run(&m);
}

static void mdtest_hard(void)
{
    /* mdtest -F -N 1 -w 3901 -e 3901 -X -y in one shared directory. */
    struct md_run m = { "io500/mdtest-hard/run", 0, 1, 0, 0, MD_BYTES, 1 };
    mdtest_run(&m);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

/* One IO500 phase: initialize and finalize around it, which must neither
 * restart nor stop BenchFS. */
static void phase(void (*run)(void))
{
    be_initialize();
    run();
    CHECK_RET(be_finalize(), 0, "finalize at the end of a phase");
    MPI_Barrier(MPI_COMM_WORLD);
}

static void check_readable(const char *path, const char *when)
{
    unsigned char buf[4096];
    char what[128];
    snprintf(what, sizeof what, "%s read %s", path, when);
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open %s %s (errno %d: %s)", path, when, errno, strerror(errno));
    if (fd < 0)
        return;
    memset(buf, 0, sizeof buf);
    CHECK_RET(pread_all(fd, buf, sizeof buf, 0, what), sizeof buf, what);
    verify_pattern(buf, 0x6000, 0, sizeof buf, what);
    be_close(fd, what);
}

/* A file written before the nested calls must stay readable through them. */
static void nested_library_init(void)
{
    const char *path = "/nested";
    unsigned char buf[4096];
    struct stat st;

    if (g_rank == 0) {
        int fd = benchfs_open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        CHECK(fd >= 0, "create %s (errno %d)", path, errno);
        if (fd >= 0) {
            pattern_fill(buf, 0x6000, 0, sizeof buf);
            pwrite_all(fd, buf, sizeof buf, 0, path);
            be_close(fd, path);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(benchfs_init(MPI_COMM_WORLD), 0, "nested benchfs_init");
    CHECK_RET(benchfs_init(MPI_COMM_WORLD), 0, "doubly nested benchfs_init");
    check_readable(path, "after two nested inits");
    CHECK_RET(benchfs_finalize(), 0, "inner benchfs_finalize");
    check_readable(path, "after one inner finalize");
    CHECK_RET(benchfs_finalize(), 0, "inner benchfs_finalize");
    check_readable(path, "after both inner finalizes");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, path);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_ERR(benchfs_stat(path, &st), ENOENT, "stat after unlink");
}

/* After the last finalize every call fails with ENOTCONN; a new start has
 * a fresh, empty namespace and a working data path. */
static void restart(void)
{
    struct stat st;
    CHECK_RET(be_finalize(), 0, "outermost finalize");
    CHECK_ERR(benchfs_stat("/", &st), ENOTCONN, "stat after the last finalize");
    CHECK_ERR(benchfs_open("/io500/x", O_CREAT | O_WRONLY, 0644), ENOTCONN,
              "open after the last finalize");
    CHECK_ERR(benchfs_finalize(), ENOTCONN, "finalize once too often");

    be_initialize();
    CHECK(benchfs_stat("/", &st) == 0 && S_ISDIR(st.st_mode), "stat(/) after a restart");
    CHECK_ERR(benchfs_stat("/io500", &st), ENOENT, "stat of a directory of the previous start");

    /* One short IOR easy repetition on the new instance. */
    struct ior_test t = { MIB, MIB, 1, 1, 0 };
    ior_easy_rep(&t, 0x7000, 0, 0, 0);
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "ior_sequences");
    if (argc > 1)
        g_hard_segments = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        g_md_items = strtoull(argv[2], NULL, 0);
    if (argc > 3)
        g_easy_transfers = strtoull(argv[3], NULL, 0);
    if (g_hard_segments == 0 || g_md_items < 2 || g_easy_transfers == 0) {
        if (g_rank == 0)
            fprintf(stderr,
                    "usage: ior_sequences [HARD_SEGMENTS>0 [MDTEST_ITEMS>1 [EASY_TRANSFERS>0]]]\n");
        MPI_Finalize();
        return 2;
    }

    /* IO500 initialises once for the whole run... */
    be_initialize();
    if (g_rank == 0)
        note("%d ranks: ior-hard %" PRIu64 " segments, mdtest %" PRIu64
             " items per rank, ior-easy %" PRIu64 " MiB per rank",
             g_nranks, g_hard_segments, g_md_items, g_easy_transfers);
    if (g_rank == 0)
        be_statfs("statfs at the start");
    nested_library_init();

    /* ...and again around each phase. */
    phase(ior_easy);
    phase(ior_shared);
    phase(ior_hard);
    phase(ior_random);
    phase(mdtest_easy);
    phase(mdtest_hard);

    restart();
    CHECK_RET(be_finalize(), 0, "finalize after the restart");
    return harness_finish(0);
}
