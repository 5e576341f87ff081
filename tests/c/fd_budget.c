/*
 * BenchFS keeps its kernel descriptors well below the soft limit: under a
 * limit of 256, after every rank has written and read back (byte for byte)
 * files whose chunks lie on every rank, 10,000 files in all, the application
 * can still open /dev/null, and the process holds at most half its limit.
 */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#define LIMIT 256
#define TOTAL_FILES 10000
#define LEN 3000

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

int main(int argc, char **argv)
{
    struct rlimit lim;
    unsigned char buf[LEN], back[LEN];
    char path[64];

    harness_init(&argc, &argv, "fd_budget");
    CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0, "getrlimit (errno %d)", errno);
    lim.rlim_cur = LIMIT;
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit (errno %d)", errno);
    harness_benchfs_init();
    int per_rank = TOTAL_FILES / g_nranks;
    if (g_rank == 0)
        CHECK_RET(benchfs_mkdir("/fds", 0755), 0, "mkdir /fds");
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < per_rank; i++) {
        snprintf(path, sizeof path, "/fds/%d.%d", g_rank, i);
        pattern_fill(buf, (uint64_t)(g_rank * per_rank + i), 0, LEN);
        int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) {
            CHECK(0, "create %s (errno %d)", path, errno);
            break;
        }
        CHECK_RET(benchfs_pwrite(fd, buf, LEN, 0), LEN, "write");
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int peer = (g_rank + 1) % g_nranks, bad = 0;
    for (int i = 0; i < per_rank; i++) {
        snprintf(path, sizeof path, "/fds/%d.%d", peer, i);
        int fd = benchfs_open(path, O_RDONLY, 0);
        if (fd < 0 || benchfs_pread(fd, back, LEN, 0) != LEN) {
            CHECK(0, "read %s (errno %d)", path, errno);
            break;
        }
        pattern_fill(buf, (uint64_t)(peer * per_rank + i), 0, LEN);
        bad += memcmp(buf, back, LEN) != 0;
        benchfs_close(fd);
    }
    CHECK(bad == 0, "%d files read back wrong", bad);
    int fds = open_fds();
    CHECK(fds >= 0 && fds <= LIMIT / 2, "%d descriptors open under a limit of %d", fds, LIMIT);
    int null = open("/dev/null", O_RDONLY);
    CHECK(null >= 0, "the application cannot open /dev/null after BenchFS I/O (errno %d)", errno);
    if (null >= 0)
        close(null);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < per_rank; i++) {
        snprintf(path, sizeof path, "/fds/%d.%d", g_rank, i);
        if (benchfs_unlink(path) != 0) {
            CHECK(0, "unlink %s (errno %d)", path, errno);
            break;
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_rmdir("/fds"), 0, "rmdir /fds");
    return harness_finish(1);
}
