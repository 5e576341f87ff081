/*
 * Several application threads per rank call BenchFS at once (the calls are
 * documented as thread-safe). Each thread writes its own files in unaligned
 * pieces, reads them back, stats them, and shares one descriptor with the
 * other threads of its rank for concurrent pwrite/pread at disjoint offsets.
 * After a barrier every rank verifies every other rank's files byte for byte.
 * Only the main thread calls MPI.
 *
 * usage: threads [THREADS] [FILES_PER_THREAD]
 */
#include <pthread.h>

#include "harness.h"

enum { FILE_SIZE = 300001, SHARED_PIECE = 40000 };

static int g_threads = 4, g_files = 3;
static int g_shared_fd = -1;
static pthread_mutex_t g_count_lock = PTHREAD_MUTEX_INITIALIZER;

/* CHECK() updates plain counters: threads take the lock around it. */
#define TCHECK(cond, ...)                                                      \
    do {                                                                       \
        pthread_mutex_lock(&g_count_lock);                                     \
        CHECK(cond, __VA_ARGS__);                                              \
        pthread_mutex_unlock(&g_count_lock);                                   \
    } while (0)

static uint64_t file_id(int rank, int thread, int i)
{
    return ((uint64_t)rank << 32) | ((uint64_t)thread << 16) | (uint64_t)i;
}

static void file_path(char *out, size_t n, int rank, int thread, int i)
{
    snprintf(out, n, "/threads/r%d.t%d.f%d", rank, thread, i);
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned char *buf = malloc(FILE_SIZE), *back = malloc(FILE_SIZE);
    uint64_t rng = 0x1234 + (uint64_t)t * 77 + (uint64_t)g_rank * 1000;
    for (int i = 0; i < g_files; i++) {
        char path[128];
        uint64_t id = file_id(g_rank, t, i);
        size_t done = 0;
        int fd;
        struct stat st;
        file_path(path, sizeof path, g_rank, t, i);
        pattern_fill(buf, id, 0, FILE_SIZE);
        fd = benchfs_open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
        TCHECK(fd >= 0, "thread %d: create %s: errno %d", t, path, errno);
        if (fd < 0)
            continue;
        while (done < FILE_SIZE) {
            size_t piece = 1 + (size_t)(rng_next(&rng) % 70000);
            ssize_t n;
            if (piece > FILE_SIZE - done)
                piece = FILE_SIZE - done;
            n = benchfs_pwrite(fd, buf + done, piece, (off_t)done);
            TCHECK(n == (ssize_t)piece, "thread %d: pwrite %s: %zd (errno %d)", t, path, n, errno);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        TCHECK(benchfs_fstat(fd, &st) == 0 && st.st_size == FILE_SIZE,
               "thread %d: fstat %s: size %lld", t, path, (long long)st.st_size);
        memset(back, 0, FILE_SIZE);
        TCHECK(benchfs_pread(fd, back, FILE_SIZE, 0) == FILE_SIZE, "thread %d: pread %s", t, path);
        TCHECK(memcmp(back, buf, FILE_SIZE) == 0, "thread %d: %s reads back wrong bytes", t, path);
        TCHECK(benchfs_close(fd) == 0, "thread %d: close %s: errno %d", t, path, errno);
    }
    /* The shared descriptor: each thread owns a disjoint slice. */
    {
        off_t at = (off_t)t * SHARED_PIECE;
        uint64_t id = file_id(g_rank, 0xffff, 0);
        pattern_fill(buf, id, (uint64_t)at, SHARED_PIECE);
        TCHECK(benchfs_pwrite(g_shared_fd, buf, SHARED_PIECE, at) == SHARED_PIECE,
               "thread %d: pwrite shared: errno %d", t, errno);
        memset(back, 0, SHARED_PIECE);
        TCHECK(benchfs_pread(g_shared_fd, back, SHARED_PIECE, at) == SHARED_PIECE,
               "thread %d: pread shared: errno %d", t, errno);
        TCHECK(memcmp(back, buf, SHARED_PIECE) == 0, "thread %d: shared slice reads back wrong", t);
    }
    free(buf);
    free(back);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t *tids;
    char shared[64];
    unsigned char *buf;
    harness_init(&argc, &argv, "threads");
    harness_benchfs_init();
    if (argc > 1)
        g_threads = atoi(argv[1]);
    if (argc > 2)
        g_files = atoi(argv[2]);
    if (g_rank == 0)
        CHECK_RET(benchfs_mkdir("/threads", 0755), 0, "mkdir /threads");
    MPI_Barrier(MPI_COMM_WORLD);

    snprintf(shared, sizeof shared, "/threads/shared.r%d", g_rank);
    g_shared_fd = benchfs_open(shared, O_CREAT | O_RDWR, 0644);
    CHECK(g_shared_fd >= 0, "create %s: errno %d", shared, errno);
    tids = xmalloc(sizeof *tids * (size_t)g_threads);
    for (int t = 0; t < g_threads; t++)
        CHECK(pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t) == 0, "pthread_create");
    for (int t = 0; t < g_threads; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    CHECK_RET(benchfs_close(g_shared_fd), 0, shared);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Every rank verifies every other rank's files. */
    buf = xmalloc(FILE_SIZE);
    for (int r = 0; r < g_nranks; r++) {
        for (int t = 0; t < g_threads; t++) {
            for (int i = 0; i < g_files; i++) {
                char path[128];
                int fd;
                file_path(path, sizeof path, r, t, i);
                fd = benchfs_open(path, O_RDONLY, 0);
                CHECK(fd >= 0, "open %s: errno %d", path, errno);
                if (fd < 0)
                    continue;
                CHECK(pread_all(fd, buf, FILE_SIZE, 0, path) == FILE_SIZE, "read %s", path);
                verify_pattern(buf, file_id(r, t, i), 0, FILE_SIZE, path);
                CHECK_RET(benchfs_close(fd), 0, path);
            }
        }
        snprintf(shared, sizeof shared, "/threads/shared.r%d", r);
        {
            int fd = benchfs_open(shared, O_RDONLY, 0);
            size_t len = (size_t)g_threads * SHARED_PIECE;
            unsigned char *all = xmalloc(len);
            CHECK(fd >= 0, "open %s: errno %d", shared, errno);
            if (fd >= 0) {
                CHECK(pread_all(fd, all, len, 0, shared) == (long long)len, "read %s", shared);
                verify_pattern(all, file_id(r, 0xffff, 0), 0, len, shared);
                CHECK_RET(benchfs_close(fd), 0, shared);
            }
            free(all);
        }
    }
    free(buf);
    return harness_finish(1);
}
