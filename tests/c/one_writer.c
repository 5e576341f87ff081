/*
 * One rank writes, every other rank reads it all back and checks every byte.
 * A reader has not touched any other rank's chunks before it reads, so each
 * read is its first contact with the owner: run with each rank on storage of
 * its own under one host name (the "split" setting), this is where a reader
 * that took another host's missing chunk file for a hole returned zeros.
 */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>

#define FILES 8
#define FILE_SIZE (3 * 65536 + 1234)

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "one_writer");
    harness_benchfs_init();
    unsigned char *buf = malloc(FILE_SIZE);
    char path[64];
    if (g_rank == 0) {
        for (int i = 0; i < FILES; i++) {
            snprintf(path, sizeof path, "/one_writer.%d", i);
            pattern_fill(buf, (uint64_t)i, 0, FILE_SIZE);
            int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0, "create %s failed (errno %d)", path, errno);
            if (fd < 0)
                continue;
            CHECK_RET(benchfs_pwrite(fd, buf, FILE_SIZE, 0), FILE_SIZE, "pwrite");
            CHECK_RET(benchfs_close(fd), 0, "close");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < FILES && g_rank != 0; i++) {
        snprintf(path, sizeof path, "/one_writer.%d", i);
        int fd = benchfs_open(path, O_RDONLY, 0);
        CHECK(fd >= 0, "open %s failed (errno %d)", path, errno);
        if (fd < 0)
            continue;
        memset(buf, 0xee, FILE_SIZE);
        CHECK_RET(benchfs_pread(fd, buf, FILE_SIZE, 0), FILE_SIZE, "pread");
        verify_pattern(buf, (uint64_t)i, 0, FILE_SIZE, path);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(buf);
    return harness_finish(1);
}
