/*
 * Creates racing with rmdir of their parent, and readers opening the new
 * files at the same time. Whatever the interleaving, the namespace stays one
 * that POSIX could produce: a file that was created is in a directory that
 * exists and counts it, and once the directory is gone no file below it is
 * left (no orphan record that rmdir removed its parent from under).
 */
#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

#define ROUNDS 150

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "rmdir_race");
    harness_benchfs_init();
    if (g_rank == 0)
        CHECK_RET(benchfs_mkdir("/race", 0755), 0, "mkdir /race");
    MPI_Barrier(MPI_COMM_WORLD);
    int removed = 0, created = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char dir[64], mine[96];
        snprintf(dir, sizeof dir, "/race/d%d", round);
        if (g_rank == 0)
            CHECK_RET(benchfs_mkdir(dir, 0755), 0, "mkdir");
        MPI_Barrier(MPI_COMM_WORLD);
        int ok = 0;
        snprintf(mine, sizeof mine, "%s/f%d", dir, g_rank);
        if (g_rank == 0) {
            /* The remover: rmdir until it succeeds or the directory is in use. */
            for (int tries = 0; tries < 3; tries++) {
                int r = benchfs_rmdir(dir);
                if (r == 0) {
                    ok = 1;
                    break;
                }
                CHECK(errno == ENOTEMPTY, "rmdir: errno %d", errno);
            }
        } else if (g_rank % 2 == 1) {
            /* Creators. */
            int fd = benchfs_open(mine, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0 || errno == ENOENT, "create %s: errno %d", mine, errno);
            if (fd >= 0) {
                ok = 1;
                CHECK_RET(benchfs_close(fd), 0, "close");
            }
        } else {
            /* Readers: open the creators' files as soon as they appear. */
            for (int k = 0; k < 20; k++) {
                char theirs[96];
                snprintf(theirs, sizeof theirs, "%s/f%d", dir, (g_rank + 1 + k) % g_nranks);
                int fd = benchfs_open(theirs, O_RDONLY, 0);
                if (fd >= 0)
                    benchfs_close(fd);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        int any_ok[2] = {g_rank == 0 ? ok : 0, g_rank != 0 ? ok : 0}, all_ok[2];
        MPI_Allreduce(any_ok, all_ok, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        struct stat st;
        int dir_exists = benchfs_stat(dir, &st) == 0;
        if (g_rank % 2 == 1 && g_rank != 0) {
            int file_exists = benchfs_stat(mine, &st) == 0;
            if (ok)
                CHECK(dir_exists && file_exists, "round %d: created %s, but dir %d file %d", round, mine,
                      dir_exists, file_exists);
            if (!dir_exists)
                CHECK(!file_exists, "round %d: %s is an orphan: its directory is gone", round, mine);
        }
        if (all_ok[0])
            CHECK(!dir_exists, "round %d: rmdir succeeded but %s is still there", round, dir);
        removed += all_ok[0];
        created += all_ok[1];
        MPI_Barrier(MPI_COMM_WORLD);
        /* Clean up for the next round. */
        if (g_rank % 2 == 1 && g_rank != 0 && benchfs_stat(mine, &st) == 0)
            CHECK_RET(benchfs_unlink(mine), 0, "unlink");
        MPI_Barrier(MPI_COMM_WORLD);
        if (g_rank == 0 && benchfs_stat(dir, &st) == 0)
            CHECK_RET(benchfs_rmdir(dir), 0, "rmdir after the round");
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (g_rank == 0)
        note("%d rounds: rmdir won %d, a create won %d", ROUNDS, removed, created);
    return harness_finish(1);
}
