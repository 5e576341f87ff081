/*
 * Every rank writes its own files; every rank then reads and verifies the
 * files of every rank, byte for byte, and checks their stat data; after the
 * owners unlink them, no rank may still see them.
 *
 * File sizes are chosen relative to the chunk size (st_blksize) so that
 * files end exactly on, just before and just after chunk boundaries, span
 * several chunks with an odd tail, or are empty or one byte long.
 */
#include "harness.h"

#include <sys/stat.h>
#include <time.h>

enum { FILES_PER_RANK = 8, RANDOM_READS = 12 };

static uint64_t g_chunk;
/* When the files were written; st_mtime must fall near it. The slack
 * allows for clock differences between nodes. */
static time_t g_write_start;
enum { CLOCK_SLACK = 300 };

static uint64_t file_size(int owner, int i)
{
    switch (i) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 3 * g_chunk + 12345 + (uint64_t)owner;
    case 3: return g_chunk;
    case 4: return g_chunk + 1;
    case 5: return 2 * g_chunk - 1;
    case 6: return 12345 + 7 * (uint64_t)owner;
    default: return 2 * g_chunk + 777;
    }
}

/* Distinct per (owner, index) so that data landing in the wrong file shows. */
static uint64_t file_id(int owner, int i)
{
    return (uint64_t)owner * 1000 + (uint64_t)i + 1;
}

static void file_path(char *buf, size_t n, int owner, int i)
{
    snprintf(buf, n, "/r%d_f%d", owner, i);
}

/*
 * Writes the file in pieces of random length (1 byte to 1.5 chunks, so pieces
 * straddle chunk boundaries at odd offsets). Odd-numbered files are written
 * back to front, so that the first write lands beyond the current end.
 */
static void write_file(int i)
{
    char path[64];
    uint64_t size = file_size(g_rank, i), id = file_id(g_rank, i);
    uint64_t rng = id * 7919;
    unsigned char *buf = xmalloc(size);
    size_t cap = 16, npieces = 0;
    uint64_t *starts = xmalloc(sizeof(uint64_t) * cap);
    struct stat st;

    file_path(path, sizeof path, g_rank, i);
    pattern_fill(buf, id, 0, size);
    for (uint64_t off = 0; off < size;) {
        if (npieces + 2 > cap) {
            cap *= 2;
            starts = realloc(starts, sizeof(uint64_t) * cap);
            if (!starts)
                MPI_Abort(MPI_COMM_WORLD, 3);
        }
        starts[npieces++] = off;
        off += 1 + rng_below(&rng, g_chunk + g_chunk / 2);
        if (off > size)
            off = size;
    }
    starts[npieces] = size;

    int fd = benchfs_open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0, "open(%s, O_CREAT|O_EXCL|O_WRONLY) failed (errno %d: %s)", path, errno,
          strerror(errno));
    if (fd < 0)
        goto out;
    for (size_t k = 0; k < npieces; k++) {
        size_t p = (i % 2) ? npieces - 1 - k : k;
        if (pwrite_all(fd, buf + starts[p], starts[p + 1] - starts[p], starts[p], path) != 0)
            break;
    }
    int r = benchfs_fstat(fd, &st);
    CHECK(r == 0 && (uint64_t)st.st_size == size,
          "fstat(%s) before close: ret %d, size %lld, want %" PRIu64, path, r,
          r == 0 ? (long long)st.st_size : -1LL, size);
    CHECK_RET(benchfs_close(fd), 0, path);
out:
    free(starts);
    free(buf);
}

/* Single pread of a random range; the count must be exact (regular file). */
static void random_reads(int fd, const char *path, uint64_t id, uint64_t size,
                         unsigned char *buf, uint64_t *rng)
{
    for (int k = 0; k < RANDOM_READS; k++) {
        uint64_t off = rng_below(rng, size + 1);
        if (k == RANDOM_READS - 1)
            off = size + rng_below(rng, 3 * g_chunk); /* at or past the end */
        uint64_t len = 1 + rng_below(rng, 2 * g_chunk);
        uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
        ssize_t n = benchfs_pread(fd, buf, len, (off_t)off);
        CHECK(n >= 0 && (uint64_t)n == want,
              "%s: pread(%" PRIu64 " bytes at %" PRIu64 ") of a %" PRIu64
              "-byte file returned %zd, want %" PRIu64 " (errno %d)",
              path, len, off, size, n, want, errno);
        if (n > 0) {
            char what[128];
            snprintf(what, sizeof what, "%s range [%" PRIu64 ", +%zd)", path, off, n);
            verify_pattern(buf, id, off, (size_t)n, what);
        }
    }
}

static void verify_file(int owner, int i, ino_t *ino_out)
{
    char path[64];
    uint64_t size = file_size(owner, i), id = file_id(owner, i);
    uint64_t rng = id * 104729 + (uint64_t)g_rank;
    struct stat st, fst;
    unsigned char *buf = xmalloc(size + 64 > 2 * g_chunk + 1 ? size + 64 : 2 * g_chunk + 1);

    file_path(path, sizeof path, owner, i);
    *ino_out = 0;
    int r = benchfs_stat(path, &st);
    CHECK(r == 0, "stat(%s) failed (errno %d: %s)", path, errno, strerror(errno));
    if (r == 0) {
        CHECK((uint64_t)st.st_size == size, "stat(%s): size %lld, want %" PRIu64, path,
              (long long)st.st_size, size);
        CHECK(S_ISREG(st.st_mode), "stat(%s): st_mode 0%o is not S_IFREG", path,
              (unsigned)st.st_mode);
        CHECK(st.st_ino != 0, "stat(%s): st_ino is 0", path);
        CHECK(st.st_blksize > 0, "stat(%s): st_blksize %ld", path, (long)st.st_blksize);
        CHECK(st.st_nlink >= 1, "stat(%s): st_nlink %lu", path, (unsigned long)st.st_nlink);
        CHECK(st.st_mtime >= g_write_start - CLOCK_SLACK &&
                  st.st_mtime <= time(NULL) + CLOCK_SLACK,
              "stat(%s): st_mtime %lld is not near the time of writing (%lld)", path,
              (long long)st.st_mtime, (long long)g_write_start);
        *ino_out = st.st_ino;
    }

    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open(%s, O_RDONLY) failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd < 0)
        goto out;
    r = benchfs_fstat(fd, &fst);
    CHECK(r == 0 && (uint64_t)fst.st_size == size && fst.st_ino == *ino_out,
          "fstat(%s): ret %d, size %lld (want %" PRIu64 "), ino %llu (stat said %llu)", path,
          r, r == 0 ? (long long)fst.st_size : -1LL, size,
          r == 0 ? (unsigned long long)fst.st_ino : 0ULL, (unsigned long long)*ino_out);

    long long got = pread_all(fd, buf, size + 64, 0, path);
    CHECK(got == (long long)size, "%s: full read returned %lld bytes, want %" PRIu64, path,
          got, size);
    if (got > 0)
        verify_pattern(buf, id, 0, (size_t)(got < (long long)size ? got : (long long)size),
                       path);
    random_reads(fd, path, id, size, buf, &rng);
    CHECK_RET(benchfs_close(fd), 0, path);
out:
    free(buf);
}

static int cmp_ino(const void *a, const void *b)
{
    ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;
    return x < y ? -1 : x > y;
}

static void check_distinct_inodes(ino_t *inos, size_t n)
{
    qsort(inos, n, sizeof *inos, cmp_ino);
    size_t dups = 0;
    for (size_t k = 1; k < n; k++)
        if (inos[k] != 0 && inos[k] == inos[k - 1])
            dups++;
    CHECK(dups == 0, "%zu duplicate st_ino values among %zu files", dups, n);
}

static void check_gone(int owner, int i)
{
    char path[64];
    struct stat st;
    file_path(path, sizeof path, owner, i);
    CHECK_ERR(benchfs_stat(path, &st), ENOENT, "stat after unlink");
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK_ERR(fd, ENOENT, "open(O_RDONLY) after unlink");
    if (fd >= 0)
        benchfs_close(fd);
}

/*
 * A name recreated after unlink must start empty: a small write at offset
 * chunk leaves a hole over the old first chunk, which must read as zeros
 * on a different rank, not as the deleted file's data.
 */
static void recreate_after_unlink(void)
{
    char path[64];
    unsigned char small[100];
    uint64_t id = file_id(g_rank, 2) + 500;
    struct stat st;

    file_path(path, sizeof path, g_rank, 2);
    int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "re-create %s failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd >= 0) {
        int r = benchfs_fstat(fd, &st);
        CHECK(r == 0 && st.st_size == 0, "re-created %s: fstat ret %d size %lld, want 0", path,
              r, r == 0 ? (long long)st.st_size : -1LL);
        CHECK_RET(benchfs_pread(fd, small, sizeof small, 0), 0, "pread of re-created file");
        pattern_fill(small, id, g_chunk, sizeof small);
        pwrite_all(fd, small, sizeof small, g_chunk, path);
        CHECK_RET(benchfs_close(fd), 0, "close of re-created file");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    int owner = (g_rank + 1) % g_nranks;
    uint64_t size = g_chunk + sizeof small;
    unsigned char *buf = xmalloc(size + 16);
    file_path(path, sizeof path, owner, 2);
    id = file_id(owner, 2) + 500;
    fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open re-created %s failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd >= 0) {
        long long got = pread_all(fd, buf, size + 16, 0, path);
        CHECK(got == (long long)size, "re-created %s: read %lld bytes, want %" PRIu64, path,
              got, size);
        if (got == (long long)size) {
            verify_zero(buf, 0, g_chunk, "re-created file's hole (stale data?)");
            verify_pattern(buf + g_chunk, id, g_chunk, sizeof small, "re-created file's data");
        }
        CHECK_RET(benchfs_close(fd), 0, "close re-created file");
    }
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    file_path(path, sizeof path, g_rank, 2);
    CHECK_RET(benchfs_unlink(path), 0, "unlink of re-created file");
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "cross_rank");
    harness_benchfs_init();
    g_chunk = probe_chunk_size();
    if (g_rank == 0)
        note("chunk size %" PRIu64 ", %d ranks, %d files per rank", g_chunk, g_nranks,
             FILES_PER_RANK);

    g_write_start = time(NULL);
    for (int i = 0; i < FILES_PER_RANK; i++)
        write_file(i);
    MPI_Barrier(MPI_COMM_WORLD);

    size_t nfiles = (size_t)g_nranks * FILES_PER_RANK;
    ino_t *inos = xmalloc(sizeof(ino_t) * nfiles);
    /* Start at a different owner on each rank so that ranks do not all read
     * from the same server at once. */
    for (int k = 0; k < g_nranks; k++) {
        int owner = (g_rank + 1 + k) % g_nranks;
        for (int i = 0; i < FILES_PER_RANK; i++)
            verify_file(owner, i, &inos[(size_t)owner * FILES_PER_RANK + (size_t)i]);
    }
    check_distinct_inodes(inos, nfiles);
    free(inos);
    MPI_Barrier(MPI_COMM_WORLD);

    for (int i = 0; i < FILES_PER_RANK; i++) {
        char path[64];
        file_path(path, sizeof path, g_rank, i);
        CHECK_RET(benchfs_unlink(path), 0, path);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    for (int owner = 0; owner < g_nranks; owner++)
        for (int i = 0; i < FILES_PER_RANK; i++)
            check_gone(owner, i);
    {
        char path[64];
        file_path(path, sizeof path, g_rank, 0);
        CHECK_ERR(benchfs_unlink(path), ENOENT, "second unlink");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    recreate_after_unlink();
    MPI_Barrier(MPI_COMM_WORLD);
    return harness_finish(1);
}
