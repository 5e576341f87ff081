/*
 * Settings that decide where data lives must agree across the job. Launched
 * with a different BENCHFS_CHUNK_SIZE on some ranks (an MPMD launch), init
 * must fail on every rank with EINVAL. Then every rank sets the same chunk
 * size and init succeeds; a file written across chunks by each rank reads
 * back byte for byte on every rank.
 */
#include "harness.h"

#include <fcntl.h>
#include <stdlib.h>

#define CHUNK 65536
#define LEN (CHUNK * 5 + 123)

static unsigned char pattern(int owner, size_t i)
{
    return (unsigned char)(owner * 37 + i * 11 + i / 4093);
}

int main(int argc, char **argv)
{
    static unsigned char buf[LEN];
    char path[64];

    harness_init(&argc, &argv, "settings");
    CHECK_ERR(benchfs_init(MPI_COMM_WORLD), EINVAL, "init with chunk sizes that differ between ranks");
    MPI_Barrier(MPI_COMM_WORLD);

    setenv("BENCHFS_CHUNK_SIZE", "64K", 1);
    harness_benchfs_init();
    snprintf(path, sizeof path, "/settings.%d", g_rank);
    for (size_t i = 0; i < LEN; i++)
        buf[i] = pattern(g_rank, i);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s (errno %d)", path, errno);
    CHECK_RET(benchfs_pwrite(fd, buf, LEN, 0), LEN, "write across chunks");
    CHECK_RET(benchfs_close(fd), 0, "close");
    MPI_Barrier(MPI_COMM_WORLD);
    for (int owner = 0; owner < g_nranks; owner++) {
        snprintf(path, sizeof path, "/settings.%d", owner);
        fd = benchfs_open(path, O_RDONLY, 0);
        CHECK(fd >= 0, "open %s (errno %d)", path, errno);
        memset(buf, 0, sizeof buf);
        CHECK_RET(benchfs_pread(fd, buf, LEN, 0), LEN, "read back");
        size_t wrong = 0;
        for (size_t i = 0; i < LEN; i++)
            wrong += buf[i] != pattern(owner, i);
        CHECK(wrong == 0, "%s: %zu bytes differ", path, wrong);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    snprintf(path, sizeof path, "/settings.%d", g_rank);
    CHECK_RET(benchfs_unlink(path), 0, "unlink");
    return harness_finish(1);
}
