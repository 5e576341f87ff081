/*
 * Threads of every rank use the mount at once through plain POSIX and stdio: each thread opens,
 * writes, duplicates, reads back and closes files of its own in a loop while the others do the
 * same, and lists the directory; kernel files are opened and closed in between, so BenchFS and
 * kernel descriptors come and go concurrently. Every byte read is checked, and no descriptor
 * number may ever stand for two open files at once.
 *
 *   posix_threads DIR [LOCAL_DIR]
 *
 * Ends with "posix_threads: P passed, F failed" from rank 0.
 */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { THREADS = 4, ROUNDS = 40, SIZE = 10000 };

static const char *g_dir, *g_local;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static long g_thread_passed, g_thread_failed;

struct result {
    long passed, failed;
};

static void tally(struct result *r, int ok, const char *what, int thread, int round)
{
    if (ok) {
        r->passed++;
    } else {
        r->failed++;
        fprintf(stderr, "[posix_threads rank %d thread %d round %d] FAIL: %s (errno %d %s)\n", g_rank, thread, round, what, errno, strerror(errno));
    }
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    struct result r = {0, 0};
    unsigned char *buf = malloc(SIZE), *back = malloc(SIZE);
    char path[600], local[600];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(path, sizeof path, "%s/r%d.t%d.%d", g_dir, g_rank, t, round);
        snprintf(local, sizeof local, "%s/l%d.t%d", g_local, g_rank, t);
        for (int i = 0; i < SIZE; i++)
            buf[i] = (unsigned char)(i * 7 + t * 13 + round * 3 + g_rank);
        int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
        int kfd = open(local, O_CREAT | O_RDWR | O_TRUNC, 0644);
        tally(&r, fd >= 0 && kfd >= 0 && fd != kfd, "open a BenchFS and a kernel file", t, round);
        tally(&r, write(fd, buf, SIZE / 2) == SIZE / 2 && pwrite(fd, buf + SIZE / 2, SIZE - SIZE / 2, SIZE / 2) == SIZE - SIZE / 2,
              "write", t, round);
        tally(&r, write(kfd, "k", 1) == 1, "write a kernel file", t, round);
        int copy = dup(fd);
        tally(&r, copy >= 0 && copy != kfd, "dup", t, round);
        memset(back, 0, SIZE);
        tally(&r, pread(copy, back, SIZE, 0) == SIZE && memcmp(buf, back, SIZE) == 0, "read back through the copy", t, round);
        struct stat st;
        tally(&r, fstat(copy, &st) == 0 && st.st_size == SIZE, "fstat", t, round);
        tally(&r, close(fd) == 0 && close(copy) == 0 && close(kfd) == 0, "close", t, round);
        FILE *f = fopen(path, "r");
        tally(&r, f && fread(back, 1, SIZE, f) == SIZE && memcmp(buf, back, SIZE) == 0, "stdio read", t, round);
        if (f)
            fclose(f);
        if (round % 10 == 9) {
            DIR *d = opendir(g_dir);
            int n = 0;
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL)
                n += e->d_name[0] == 'r';
            tally(&r, d && closedir(d) == 0 && n > 0, "list the directory", t, round);
        }
        if (round > 0) {
            snprintf(path, sizeof path, "%s/r%d.t%d.%d", g_dir, g_rank, t, round - 1);
            tally(&r, unlink(path) == 0, "unlink the previous file", t, round);
        }
    }
    snprintf(path, sizeof path, "%s/r%d.t%d.%d", g_dir, g_rank, t, ROUNDS - 1);
    tally(&r, unlink(path) == 0 && unlink(local) == 0, "unlink the last files", t, ROUNDS);
    free(buf);
    free(back);
    pthread_mutex_lock(&g_lock);
    g_thread_passed += r.passed;
    g_thread_failed += r.failed;
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    check_start("posix_threads");
    if (argc < 3)
        MPI_Abort(MPI_COMM_WORLD, 2);
    g_dir = argv[1];
    g_local = argv[2];
    if (g_rank == 0)
        CHECK(mkdir(g_dir, 0755) == 0, "mkdir %s", g_dir);
    MPI_Barrier(MPI_COMM_WORLD);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, worker, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    g_passed += g_thread_passed;
    g_failed += g_thread_failed;
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK(rmdir(g_dir) == 0, "rmdir %s", g_dir);
    check_report();
    MPI_Finalize();
    return 0;
}
