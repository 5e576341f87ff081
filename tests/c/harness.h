/*
 * Shared scaffolding for the self-checking MPI programs in this directory.
 *
 * Every check goes through CHECK(); a failed check prints one line with the
 * rank, the source line and details to stderr. harness_finish() sums the
 * counts over MPI_COMM_WORLD so that every rank exits nonzero if any rank saw
 * a failure, and rank 0 prints the "<name>: P passed, F failed" summary that
 * the test driver looks for.
 *
 * Data written by the programs comes from pattern_byte(file id, offset): a
 * byte of a 64-bit mix of both, so a byte written at the wrong offset or into
 * the wrong file is detected with probability 255/256 per byte.
 */
#ifndef BENCHFS_TEST_HARNESS_H
#define BENCHFS_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "benchfs.h"

static int g_rank = 0;
static int g_nranks = 1;
static long g_checks = 0;
static long g_failures = 0;
static const char *g_prog = "test";

static inline void fail_at(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void fail_at(int line, const char *fmt, ...)
{
    /* One write per line, so that lines of different ranks do not mix. */
    char msg[1024];
    int n;
    va_list ap;
    g_failures++;
    n = snprintf(msg, sizeof msg, "[%s rank %d/%d] FAIL line %d: ", g_prog, g_rank, g_nranks,
                 line);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

/* CHECK(cond, printf-args...): counts a check; reports it if cond is false. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        g_checks++;                                                            \
        if (!(cond))                                                           \
            fail_at(__LINE__, __VA_ARGS__);                                    \
    } while (0)

/* Checks that a call failed with -1 and the expected errno. */
#define CHECK_ERR(ret, want_errno, what)                                       \
    do {                                                                       \
        long long r_ = (long long)(ret);                                       \
        int e_ = errno;                                                        \
        CHECK(r_ == -1 && e_ == (want_errno),                                  \
              "%s: want -1/%s, got %lld/errno %d (%s)", (what), #want_errno,   \
              r_, r_ == -1 ? e_ : 0, r_ == -1 ? strerror(e_) : "no error");    \
    } while (0)

/* Checks that a call returned the expected value; reports errno otherwise. */
#define CHECK_RET(ret, want, what)                                             \
    do {                                                                       \
        long long r_ = (long long)(ret);                                       \
        long long w_ = (long long)(want);                                      \
        int e_ = errno;                                                        \
        CHECK(r_ == w_, "%s: want %lld, got %lld (errno %d: %s)", (what), w_,  \
              r_, e_, strerror(e_));                                           \
    } while (0)

static inline void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An informational line that is not a failure (e.g. a skipped check). */
static inline void note(const char *fmt, ...)
{
    char msg[1024];
    int n;
    va_list ap;
    n = snprintf(msg, sizeof msg, "[%s rank %d/%d] ", g_prog, g_rank, g_nranks);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

static inline uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: every input bit affects every output bit. */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline unsigned char pattern_byte(uint64_t file_id, uint64_t offset)
{
    return (unsigned char)(mix64(mix64(file_id) ^ offset) >> 32);
}

static inline void pattern_fill(unsigned char *buf, uint64_t file_id, uint64_t offset, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern_byte(file_id, offset + i);
}

/*
 * Compares buf (holding the file range [offset, offset+len)) with the
 * pattern; counts one check and reports the first mismatch and how many
 * bytes differ, so a bad range produces one line rather than millions.
 */
static inline int verify_pattern(const unsigned char *buf, uint64_t file_id, uint64_t offset,
                          size_t len, const char *what)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != pattern_byte(file_id, offset + i)) {
            if (bad == 0)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0,
          "%s: %zu of %zu bytes differ; first at file offset %" PRIu64
          " (got 0x%02x, want 0x%02x)",
          what, bad, len, offset + first, bad ? buf[first] : 0,
          bad ? pattern_byte(file_id, offset + first) : 0);
    return bad == 0;
}

/* Like verify_pattern for a range that must read as zeros (a hole). */
static inline int verify_zero(const unsigned char *buf, uint64_t offset, size_t len, const char *what)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != 0) {
            if (bad == 0)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0,
          "%s: %zu of %zu bytes nonzero in a hole; first at file offset %" PRIu64 " (0x%02x)",
          what, bad, len, offset + first, bad ? buf[first] : 0);
    return bad == 0;
}

/* A small deterministic generator so every rank derives the same sizes. */
static inline uint64_t rng_next(uint64_t *state)
{
    *state += 1;
    return mix64(*state);
}

static inline uint64_t rng_below(uint64_t *state, uint64_t bound)
{
    return bound ? rng_next(state) % bound : 0;
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "[%s rank %d] out of memory (%zu bytes)\n", g_prog, g_rank, n);
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    return p;
}

/*
 * Writes len bytes at offset with pwrite, resuming after a short count as a
 * POSIX caller must. Returns 0 on success; reports and returns -1 otherwise.
 */
static inline int pwrite_all(int fd, const unsigned char *buf, size_t len, uint64_t offset,
                      const char *what)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = benchfs_pwrite(fd, buf + done, len - done, (off_t)(offset + done));
        if (n <= 0) {
            CHECK(0, "%s: pwrite(%zu bytes at %" PRIu64 ") returned %zd (errno %d: %s)",
                  what, len - done, offset + done, n, errno, strerror(errno));
            return -1;
        }
        done += (size_t)n;
    }
    g_checks++;
    return 0;
}

/*
 * Reads [offset, offset+len) with pread, resuming after short counts, until
 * len bytes or end of file. Returns the byte count read or -1 after a report.
 */
static inline long long pread_all(int fd, unsigned char *buf, size_t len, uint64_t offset,
                           const char *what)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = benchfs_pread(fd, buf + done, len - done, (off_t)(offset + done));
        if (n < 0) {
            CHECK(0, "%s: pread(%zu bytes at %" PRIu64 ") failed (errno %d: %s)", what,
                  len - done, offset + done, errno, strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (long long)done;
}

/*
 * Finds the chunk size from st_blksize of a scratch file of this rank; falls
 * back to BENCHFS_CHUNK_SIZE or the documented default if that fails (the
 * failure is itself reported).
 */
static inline uint64_t probe_chunk_size(void)
{
    char path[64];
    struct stat st;
    uint64_t chunk = 0;
    snprintf(path, sizeof path, "/.chunk_probe_r%d", g_rank);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "open(%s, O_CREAT) for the chunk probe failed (errno %d: %s)", path,
          errno, strerror(errno));
    if (fd >= 0) {
        int r = benchfs_fstat(fd, &st);
        CHECK(r == 0 && st.st_blksize > 0, "fstat(%s): ret %d, st_blksize %ld (errno %d)",
              path, r, r == 0 ? (long)st.st_blksize : -1L, errno);
        if (r == 0 && st.st_blksize > 0)
            chunk = (uint64_t)st.st_blksize;
        CHECK_RET(benchfs_close(fd), 0, "close of chunk probe");
        CHECK_RET(benchfs_unlink(path), 0, "unlink of chunk probe");
    }
    if (chunk == 0) {
        const char *env = getenv("BENCHFS_CHUNK_SIZE");
        chunk = env ? strtoull(env, NULL, 0) : 0;
        if (chunk == 0)
            chunk = 1048576;
    }
    return chunk;
}

/*
 * MPI_Init plus benchfs_init. A failed benchfs_init aborts the job: it is
 * collective, so the other ranks could otherwise wait forever.
 */
static inline void harness_init(int *argc, char ***argv, const char *prog)
{
    g_prog = prog;
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
}

static inline void harness_benchfs_init(void)
{
    if (benchfs_init(MPI_COMM_WORLD) != 0) {
        fprintf(stderr, "[%s rank %d/%d] FAIL: benchfs_init failed (errno %d: %s)\n", g_prog,
                g_rank, g_nranks, errno, strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

/* Entries of directory `dir` (with . and ..), or -1 if it cannot be opened. */
static inline int count_entries(const char *dir)
{
    benchfs_dir_t *d = benchfs_opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    while (benchfs_readdir(d) != NULL)
        n++;
    benchfs_closedir(d);
    return n;
}

/*
 * Sums the counts over all ranks, prints the summary on rank 0, calls
 * benchfs_finalize if call_finalize, then MPI_Finalize. Returns the process
 * exit code: nonzero on every rank if any rank failed.
 */
static inline int harness_finish(int call_finalize)
{
    long local[2], total[2];
    if (call_finalize) {
        int r = benchfs_finalize();
        CHECK(r == 0, "benchfs_finalize failed (errno %d: %s)", errno, strerror(errno));
    }
    local[0] = g_checks;
    local[1] = g_failures;
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0) {
        printf("%s: %ld passed, %ld failed\n", g_prog, total[0] - total[1], total[1]);
        fflush(stdout);
    }
    MPI_Finalize();
    return total[1] == 0 ? 0 : 1;
}

#endif /* BENCHFS_TEST_HARNESS_H */
