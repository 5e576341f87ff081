/*
 * A cut (truncate) is final, whoever wrote the data and whether or not the
 * writer has closed yet:
 *  - bytes cut by a truncate read as zeros after the file grows again, even
 *    when their writer had not published them (stale data never comes back);
 *  - a writer that closes after another rank's truncate publishes only what
 *    it wrote after the truncate: the cut size does not come back.
 * Needs 2 ranks or more: the writer and the truncating rank must differ.
 */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPAN (256 * 1024)

static void truncate_is_final(void)
{
    const char *path = "/trunc_final";
    int writer = 1 % g_nranks, cutter = 0, grower = 2 % g_nranks;
    unsigned char *buf = malloc(SPAN);
    int fd = -1;
    if (g_rank == writer) {
        fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
        CHECK(fd >= 0, "writer open failed (errno %d)", errno);
        pattern_fill(buf, 77, 0, SPAN);
        CHECK_RET(benchfs_pwrite(fd, buf, SPAN, 0), SPAN, "writer pwrite");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == cutter)
        CHECK_RET(benchfs_truncate(path, 0), 0, "truncate to 0");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == grower)
        CHECK_RET(benchfs_truncate(path, SPAN), 0, "truncate back up");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank != writer) {
        int rfd = benchfs_open(path, O_RDONLY, 0);
        CHECK(rfd >= 0, "reader open failed (errno %d)", errno);
        if (rfd >= 0) {
            CHECK_RET(benchfs_pread(rfd, buf, SPAN, 0), SPAN, "read the grown range");
            verify_zero(buf, 0, SPAN, "range cut by truncate, then grown");
            CHECK_RET(benchfs_close(rfd), 0, "reader close");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (fd >= 0)
        CHECK_RET(benchfs_close(fd), 0, "writer close");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink");
    free(buf);
}

/* Rank `writer` writes SPAN bytes and keeps the file open; rank 0 cuts it to
 * 0; the writer then writes `after` bytes at offset 100 (none if 0) and
 * closes. The file must be 100 + after bytes long (0 if after is 0): zeros,
 * then what was written after the cut. */
static void truncate_wins_over_close(const char *path, int after)
{
    int writer = 1 % g_nranks;
    unsigned char *buf = malloc(SPAN);
    pattern_fill(buf, 91, 0, SPAN);
    int fd = -1;
    if (g_rank == writer) {
        fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
        CHECK(fd >= 0, "writer open failed (errno %d)", errno);
        CHECK_RET(benchfs_pwrite(fd, buf, SPAN, 0), SPAN, "writer pwrite before the cut");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_truncate(path, 0), 0, "truncate to 0");
    MPI_Barrier(MPI_COMM_WORLD);
    if (fd >= 0) {
        if (after > 0)
            CHECK_RET(benchfs_pwrite(fd, buf, after, 100), after, "writer pwrite after the cut");
        CHECK_RET(benchfs_close(fd), 0, "writer close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    struct stat st;
    off_t want = after > 0 ? 100 + after : 0;
    CHECK_RET(benchfs_stat(path, &st), 0, "stat");
    CHECK(st.st_size == want, "%s: size %lld after the writer's close, want %lld", path,
          (long long)st.st_size, (long long)want);
    if (after > 0) {
        int rfd = benchfs_open(path, O_RDONLY, 0);
        unsigned char got[100 + SPAN];
        CHECK_RET(benchfs_pread(rfd, got, sizeof got, 0), (long long)want, "read back");
        verify_zero(got, 0, 100, "bytes cut and not written again");
        CHECK(memcmp(got + 100, buf, (size_t)after) == 0, "bytes written after the cut differ");
        CHECK_RET(benchfs_close(rfd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink");
    free(buf);
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "truncate_final");
    harness_benchfs_init();
    truncate_is_final();
    truncate_wins_over_close("/cut_then_close", 0);
    truncate_wins_over_close("/cut_write_close", 10);
    return harness_finish(1);
}
