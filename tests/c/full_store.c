/*
 * Every rank writes until the node's store is full: the write that does not
 * fit fails with ENOSPC (no hang, no other errno), writes over space already
 * held still work, and after the files are unlinked the space is there again
 * for a new file that reads back byte for byte. Run on one small store that
 * the whole job shares, with BENCHFS_STATS=1: the test harness also checks
 * that no write went through the transport, i.e. a full store did not switch
 * same-node ranks off writing each other's chunk files directly.
 */
#include "harness.h"

#include <stdlib.h>

#define XFER (1 << 20)
#define MAX_XFERS 64
#define AGAIN (4 << 20)

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "full_store");
    harness_benchfs_init();
    unsigned char *buf = malloc(AGAIN);
    unsigned char *back = malloc(AGAIN);
    char path[64];

    snprintf(path, sizeof path, "/full.%d", g_rank);
    pattern_fill(buf, (uint64_t)g_rank, 0, XFER);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s (errno %d)", path, errno);
    long long r = 0;
    int e = 0, n = 0;
    for (; fd >= 0 && n < MAX_XFERS; n++) {
        r = benchfs_pwrite(fd, buf, XFER, (off_t)n * XFER);
        e = errno;
        if (r != XFER)
            break;
    }
    CHECK(n < MAX_XFERS, "%s: %d MiB written and the store is still not full", path, n);
    CHECK(r == -1 && e == ENOSPC, "%s: the write that did not fit returned %lld, errno %d (%s); want -1/ENOSPC", path, r,
          e, strerror(e));
    /* Space the file already holds can be written again, full store or not. */
    for (int i = 0; fd >= 0 && i < n; i++)
        CHECK_RET(benchfs_pwrite(fd, buf, 4096, (off_t)i * XFER + 8192), 4096, "rewrite of held space");
    if (fd >= 0)
        CHECK_RET(benchfs_close(fd), 0, "close of the full file");
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(benchfs_unlink(path), 0, "unlink of the full file");
    MPI_Barrier(MPI_COMM_WORLD);

    /* The space is free again. */
    snprintf(path, sizeof path, "/again.%d", g_rank);
    pattern_fill(buf, 1000 + (uint64_t)g_rank, 0, AGAIN);
    fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "create %s (errno %d)", path, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_pwrite(fd, buf, AGAIN, 0), AGAIN, "write after the unlinks");
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int peer = (g_rank + 1) % g_nranks;
    snprintf(path, sizeof path, "/again.%d", peer);
    fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open %s (errno %d)", path, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_pread(fd, back, AGAIN, 0), AGAIN, "read back");
        pattern_fill(buf, 1000 + (uint64_t)peer, 0, AGAIN);
        CHECK(memcmp(buf, back, AGAIN) == 0, "%s: data differs", path);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(path, sizeof path, "/again.%d", g_rank);
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
    free(buf);
    free(back);
    return harness_finish(1);
}
