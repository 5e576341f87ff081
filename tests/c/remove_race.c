/*
 * Removes of names that are not there, racing with rmdir of their directory,
 * which holds one file all along. A failed remove must never make the
 * directory look empty: every rmdir fails with ENOTEMPTY, and afterwards the
 * directory and its file are both still there and listed.
 */
#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

#define ATTEMPTS 1500

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "remove_race");
    harness_benchfs_init();
    if (g_rank == 0) {
        CHECK_RET(benchfs_mkdir("/rr", 0755), 0, "mkdir /rr");
        int fd = benchfs_open("/rr/keep", O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0, "create /rr/keep: errno %d", errno);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int wrongly_removed = 0;
    for (int i = 0; i < ATTEMPTS; i++) {
        if (g_rank == 0) {
            if (benchfs_rmdir("/rr") == 0) {
                wrongly_removed++;
                break;
            }
            CHECK(errno == ENOTEMPTY, "rmdir /rr: errno %d", errno);
        } else {
            char name[64];
            snprintf(name, sizeof name, "/rr/missing%d", i % 7);
            int r = g_rank % 2 ? benchfs_unlink(name) : benchfs_rmdir(name);
            CHECK(r == -1 && errno == ENOENT, "remove %s: %d errno %d", name, r, errno);
        }
    }
    CHECK(wrongly_removed == 0, "rmdir removed /rr while /rr/keep was in it");
    MPI_Barrier(MPI_COMM_WORLD);
    struct stat st;
    CHECK_RET(benchfs_stat("/rr", &st), 0, "stat /rr after the race");
    CHECK_RET(benchfs_stat("/rr/keep", &st), 0, "stat /rr/keep after the race");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK_RET(benchfs_unlink("/rr/keep"), 0, "unlink /rr/keep");
        CHECK_RET(benchfs_rmdir("/rr"), 0, "rmdir /rr once empty");
    }
    return harness_finish(1);
}
