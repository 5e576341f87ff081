/*
 * An idle rank must not burn CPU: the progress thread may spin briefly
 * after activity but has to block when nothing happens. After some I/O (so
 * that the progress threads have been busy), every rank sleeps; the CPU
 * time the whole process used meanwhile (getrusage(RUSAGE_SELF) covers all
 * its threads) is summed over the ranks and must stay under 5% of one core.
 *
 * Usage: idle_cpu [seconds]   (default 10)
 */
#include "harness.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Sleeps the full duration even if a signal interrupts nanosleep. */
static void sleep_seconds(double seconds)
{
    struct timespec req, rem;
    req.tv_sec = (time_t)seconds;
    req.tv_nsec = (long)((seconds - (double)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

/* Each rank writes a multi-chunk file; each then reads its neighbour's. */
static void warm_up(uint64_t chunk)
{
    char path[64], peer_path[64];
    uint64_t size = 3 * chunk + 101;
    int peer = (g_rank + 1) % g_nranks;
    unsigned char *buf = xmalloc(size);

    snprintf(path, sizeof path, "/idle_r%d", g_rank);
    snprintf(peer_path, sizeof peer_path, "/idle_r%d", peer);
    pattern_fill(buf, 700 + (uint64_t)g_rank, 0, size);
    int fd = benchfs_open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", path, errno, strerror(errno));
    if (fd >= 0) {
        pwrite_all(fd, buf, size, 0, path);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    fd = benchfs_open(peer_path, O_RDONLY, 0);
    CHECK(fd >= 0, "open(%s) failed (errno %d: %s)", peer_path, errno, strerror(errno));
    if (fd >= 0) {
        long long n = pread_all(fd, buf, size, 0, peer_path);
        CHECK(n == (long long)size, "read %lld bytes of %s, want %" PRIu64, n, peer_path, size);
        if (n > 0)
            verify_pattern(buf, 700 + (uint64_t)peer, 0, (size_t)n, peer_path);
        CHECK_RET(benchfs_close(fd), 0, "close peer file");
    }
    struct stat st;
    CHECK_RET(benchfs_stat(peer_path, &st), 0, "stat peer file");
    free(buf);
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "idle_cpu");
    double duration = argc > 1 ? atof(argv[1]) : 10.0;
    if (duration <= 0)
        duration = 10.0;
    harness_benchfs_init();

    warm_up(probe_chunk_size());
    MPI_Barrier(MPI_COMM_WORLD);

    double before = cpu_seconds();
    sleep_seconds(duration);
    double used = cpu_seconds() - before;

    double total = 0;
    double *per_rank = g_rank == 0 ? xmalloc(sizeof(double) * (size_t)g_nranks) : NULL;
    MPI_Reduce(&used, &total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Gather(&used, 1, MPI_DOUBLE, per_rank, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
        double limit = 0.05 * duration;
        printf("idle CPU: %.3f s in %.1f s over %d ranks = %.2f%% of one core (limit 5%%)\n",
               total, duration, g_nranks, 100.0 * total / duration);
        for (int r = 0; r < g_nranks; r++)
            printf("  rank %d: %.3f s\n", r, per_rank[r]);
        fflush(stdout);
        CHECK(total <= limit, "idle ranks used %.3f s of CPU in %.1f s (limit %.3f s)", total,
              duration, limit);
        free(per_rank);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    char path[64];
    snprintf(path, sizeof path, "/idle_r%d", g_rank);
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
    return harness_finish(1);
}
