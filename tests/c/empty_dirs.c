/*
 * Listings ask only the ranks that hold entries of a directory (the owners of its
 * entries' records). Rank 0 lists an empty directory 100 times; then three ranks
 * fill another and every rank lists it and finds exactly their entries. Run with
 * BENCHFS_STATS=1: the test harness checks that the empty listings cost no List
 * request at any rank.
 */
#include "harness.h"

#include <dirent.h>

#define LISTINGS 100
#define PER_RANK 20

int main(int argc, char **argv)
{
    char path[64];

    harness_init(&argc, &argv, "empty_dirs");
    harness_benchfs_init();
    if (g_rank == 0) {
        CHECK_RET(benchfs_mkdir("/empty", 0755), 0, "mkdir /empty");
        CHECK_RET(benchfs_mkdir("/filled", 0755), 0, "mkdir /filled");
        for (int i = 0; i < LISTINGS; i++)
            CHECK_RET(count_entries("/empty"), 2, "entries of the empty directory (. and ..)");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int writers = g_nranks < 3 ? g_nranks : 3;
    if (g_rank < writers) {
        for (int i = 0; i < PER_RANK; i++) {
            snprintf(path, sizeof path, "/filled/r%d.%d", g_rank, i);
            int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0, "create %s (errno %d)", path, errno);
            if (fd >= 0)
                benchfs_close(fd);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(count_entries("/filled"), 2 + writers * PER_RANK, "entries of the filled directory");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank < writers) {
        for (int i = 0; i < PER_RANK; i++) {
            snprintf(path, sizeof path, "/filled/r%d.%d", g_rank, i);
            CHECK_RET(benchfs_unlink(path), 0, "unlink");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK_RET(count_entries("/filled"), 2, "entries once emptied");
        CHECK_RET(benchfs_rmdir("/filled"), 0, "rmdir /filled");
        CHECK_RET(benchfs_rmdir("/empty"), 0, "rmdir /empty");
    }
    return harness_finish(1);
}
