/*
 * Log rotation while a writer keeps the log open: another rank renames
 * log -> log.1, creates a new log, then renames log.1 -> log.2 and
 * log -> log.1. When the writer closes, everything it wrote is in log.2:
 * the size published at close follows the file through both renames.
 */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITTEN 196619

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "log_rotation");
    harness_benchfs_init();
    int writer = 0, rotator = 1 % g_nranks;
    unsigned char *buf = malloc(WRITTEN);
    pattern_fill(buf, 5, 0, WRITTEN);
    for (int round = 0; round < 20; round++) {
        char dir[64], log0[96], log1[96], log2[96];
        snprintf(dir, sizeof dir, "/logs%d", round);
        snprintf(log0, sizeof log0, "%s/log", dir);
        snprintf(log1, sizeof log1, "%s/log.1", dir);
        snprintf(log2, sizeof log2, "%s/log.2", dir);
        int fd = -1;
        if (g_rank == writer) {
            CHECK_RET(benchfs_mkdir(dir, 0755), 0, "mkdir");
            fd = benchfs_open(log0, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0, "open log failed (errno %d)", errno);
            CHECK_RET(benchfs_pwrite(fd, buf, WRITTEN, 0), WRITTEN, "write the log");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (g_rank == rotator) {
            CHECK_RET(benchfs_rename(log0, log1), 0, "log -> log.1");
            int nfd = benchfs_open(log0, O_CREAT | O_WRONLY, 0644);
            CHECK(nfd >= 0, "new log failed (errno %d)", errno);
            if (nfd >= 0)
                CHECK_RET(benchfs_close(nfd), 0, "close new log");
            CHECK_RET(benchfs_rename(log1, log2), 0, "log.1 -> log.2");
            CHECK_RET(benchfs_rename(log0, log1), 0, "log -> log.1");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (fd >= 0)
            CHECK_RET(benchfs_close(fd), 0, "writer close");
        MPI_Barrier(MPI_COMM_WORLD);
        struct stat st;
        CHECK_RET(benchfs_stat(log2, &st), 0, "stat log.2");
        CHECK(st.st_size == WRITTEN, "round %d: log.2 has %lld bytes, want %d", round, (long long)st.st_size,
              WRITTEN);
        CHECK_RET(benchfs_stat(log1, &st), 0, "stat log.1");
        CHECK(st.st_size == 0, "round %d: log.1 has %lld bytes, want 0", round, (long long)st.st_size);
        if (g_rank == (2 % g_nranks)) {
            unsigned char *got = malloc(WRITTEN);
            int rfd = benchfs_open(log2, O_RDONLY, 0);
            CHECK_RET(benchfs_pread(rfd, got, WRITTEN, 0), WRITTEN, "read log.2");
            verify_pattern(got, 5, 0, WRITTEN, "log.2");
            CHECK_RET(benchfs_close(rfd), 0, "close log.2");
            free(got);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    free(buf);
    return harness_finish(1);
}
