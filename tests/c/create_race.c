/*
 * All ranks create the same file at once while its parent directory is
 * itself being created by whichever rank gets there first (open, and on
 * ENOENT mkdir then open again, as IOR's shared-file mode does). Every rank
 * must end up with the same file, and every rank's bytes must be in it.
 *
 * usage: create_race [ITERATIONS]
 */
#include "harness.h"

enum { PIECE = 100 };

static int open_making_parent(const char *path, const char *dir)
{
    int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0 && errno == ENOENT) {
        if (benchfs_mkdir(dir, 0755) != 0)
            CHECK(errno == EEXIST, "mkdir %s: errno %d", dir, errno);
        fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
    }
    return fd;
}

int main(int argc, char **argv)
{
    int iterations;
    harness_init(&argc, &argv, "create_race");
    harness_benchfs_init();
    iterations = argc > 1 ? atoi(argv[1]) : 100;

    for (int i = 0; i < iterations; i++) {
        char dir[64], path[80];
        unsigned char piece[PIECE], *all;
        long long ino, *inos;
        struct stat st;
        int fd;

        snprintf(dir, sizeof dir, "/race%d", i);
        snprintf(path, sizeof path, "%s/f", dir);
        MPI_Barrier(MPI_COMM_WORLD);
        fd = open_making_parent(path, dir);
        CHECK(fd >= 0, "open %s: errno %d", path, errno);
        if (fd < 0)
            MPI_Abort(MPI_COMM_WORLD, 2);
        pattern_fill(piece, (uint64_t)i, (uint64_t)g_rank * PIECE, PIECE);
        CHECK(pwrite_all(fd, piece, PIECE, (uint64_t)g_rank * PIECE, path) == 0, "write %s", path);
        CHECK_RET(benchfs_fstat(fd, &st), 0, path);
        ino = (long long)st.st_ino;
        inos = xmalloc(sizeof *inos * (size_t)g_nranks);
        MPI_Allgather(&ino, 1, MPI_LONG_LONG, inos, 1, MPI_LONG_LONG, MPI_COMM_WORLD);
        for (int r = 0; r < g_nranks; r++)
            CHECK(inos[r] == ino, "%s: rank %d opened inode %lld, this rank %lld", path, r,
                  inos[r], ino);
        free(inos);
        CHECK_RET(benchfs_close(fd), 0, path);
        MPI_Barrier(MPI_COMM_WORLD);

        /* Every rank checks that every rank's piece is in the file. */
        all = xmalloc((size_t)PIECE * (size_t)g_nranks);
        fd = benchfs_open(path, O_RDONLY, 0);
        CHECK(fd >= 0, "reopen %s: errno %d", path, errno);
        if (fd >= 0) {
            long long n = pread_all(fd, all, (size_t)PIECE * (size_t)g_nranks, 0, path);
            CHECK(n == (long long)PIECE * g_nranks, "%s: read %lld bytes", path, n);
            for (int r = 0; r < g_nranks && n == (long long)PIECE * g_nranks; r++)
                verify_pattern(all + (size_t)r * PIECE, (uint64_t)i, (uint64_t)r * PIECE, PIECE,
                               path);
            CHECK_RET(benchfs_close(fd), 0, path);
        }
        free(all);
    }
    return harness_finish(1);
}
