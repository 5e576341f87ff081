/*
 * An open descriptor of a file another rank unlinks reads the same thing from
 * every chunk, wherever the chunk lives and however it is reached (this
 * rank's store, a same-node peer's chunk file, the transport): zeros within
 * the size it knew, as docs/semantics.md promises. Before, chunks read
 * through a cached same-node descriptor still showed the old data.
 */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>

#define SPAN (2 * 65536)

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "unlinked_open");
    harness_benchfs_init();
    const char *path = "/unlinked_open";
    unsigned char *buf = malloc(SPAN);
    if (g_rank == 0) {
        pattern_fill(buf, 33, 0, SPAN);
        int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
        CHECK_RET(benchfs_pwrite(fd, buf, SPAN, 0), SPAN, "write");
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open failed (errno %d)", errno);
    CHECK_RET(benchfs_pread(fd, buf, SPAN, 0), SPAN, "read before the unlink");
    verify_pattern(buf, 33, 0, SPAN, "before the unlink");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink");
    MPI_Barrier(MPI_COMM_WORLD);
    memset(buf, 0x5a, SPAN);
    CHECK_RET(benchfs_pread(fd, buf, SPAN, 0), SPAN, "read after the unlink");
    verify_zero(buf, 0, SPAN, "an unlinked file through a descriptor opened before");
    CHECK_RET(benchfs_close(fd), 0, "close");
    free(buf);
    return harness_finish(1);
}
