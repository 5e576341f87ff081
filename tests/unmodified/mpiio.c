/*
 * An ordinary MPI-IO program: one shared file written collectively (interleaved blocks, each
 * rank's blocks strided through the file with a file view), independently and non-blockingly,
 * then read back by other ranks, byte for byte.
 *
 *   mpiio DIR [LOCAL_DIR]   (LOCAL_DIR is not used)
 *
 * Ends with "mpiio: P passed, F failed" from rank 0.
 */
#include "check.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BLOCK = 65536 + 123, BLOCKS = 6 };

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    check_start("mpiio");
    if (argc < 2)
        MPI_Abort(MPI_COMM_WORLD, 2);
    char path[600], dir[512];
    snprintf(dir, sizeof dir, "%s", argv[1]);
    snprintf(path, sizeof path, "%s/shared.dat", dir);
    unsigned char *buf = malloc((size_t)BLOCK * BLOCKS), *back = malloc((size_t)BLOCK * BLOCKS);
    MPI_File fh;
    if (g_rank == 0)
        CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Collective: a view that gives each rank every size-th block. */
    MPI_Datatype blocks;
    MPI_Type_vector(BLOCKS, BLOCK, BLOCK * g_size, MPI_BYTE, &blocks);
    MPI_Type_commit(&blocks);
    int rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &fh);
    CHECK(rc == MPI_SUCCESS, "MPI_File_open %s: %d", path, rc);
    if (rc != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 3);
    MPI_File_set_view(fh, (MPI_Offset)g_rank * BLOCK, MPI_BYTE, blocks, "native", MPI_INFO_NULL);
    fill(buf, (long)BLOCK * BLOCKS, g_rank, 1, 0);
    MPI_Status st;
    int count = 0;
    rc = MPI_File_write_at_all(fh, 0, buf, BLOCK * BLOCKS, MPI_BYTE, &st);
    MPI_Get_count(&st, MPI_BYTE, &count);
    CHECK(rc == MPI_SUCCESS && count == BLOCK * BLOCKS, "write_at_all: rc %d count %d", rc, count);
    CHECK(MPI_File_sync(fh) == MPI_SUCCESS, "sync");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Offset size = 0;
    MPI_File_get_size(fh, &size);
    CHECK(size == (MPI_Offset)BLOCK * BLOCKS * g_size, "size %lld", (long long)size);

    /* Collective read of the next rank's blocks through its view. */
    int next = (g_rank + 1) % g_size;
    MPI_File_set_view(fh, (MPI_Offset)next * BLOCK, MPI_BYTE, blocks, "native", MPI_INFO_NULL);
    memset(back, 0, (size_t)BLOCK * BLOCKS);
    rc = MPI_File_read_at_all(fh, 0, back, BLOCK * BLOCKS, MPI_BYTE, &st);
    CHECK(rc == MPI_SUCCESS && matches(back, (long)BLOCK * BLOCKS, next, 1, 0), "read_at_all of rank %d's blocks", next);
    MPI_File_close(&fh);
    MPI_Type_free(&blocks);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Independent and non-blocking writes past the collective part, contiguous per rank. */
    MPI_Offset base = (MPI_Offset)BLOCK * BLOCKS * g_size, mine = base + (MPI_Offset)g_rank * BLOCK * 2;
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDWR, MPI_INFO_NULL, &fh);
    CHECK(rc == MPI_SUCCESS, "reopen");
    fill(buf, 2L * BLOCK, g_rank, 2, 0);
    CHECK(MPI_File_write_at(fh, mine, buf, BLOCK, MPI_BYTE, &st) == MPI_SUCCESS, "write_at");
    MPI_Request req;
    CHECK(MPI_File_iwrite_at(fh, mine + BLOCK, buf + BLOCK, BLOCK, MPI_BYTE, &req) == MPI_SUCCESS, "iwrite_at");
    CHECK(MPI_Wait(&req, &st) == MPI_SUCCESS, "wait");
    MPI_Get_count(&st, MPI_BYTE, &count);
    CHECK(count == BLOCK, "iwrite_at count %d", count);
    MPI_File_sync(fh);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_File_sync(fh);
    MPI_Offset theirs = base + (MPI_Offset)next * BLOCK * 2;
    memset(back, 0, 2L * BLOCK);
    CHECK(MPI_File_iread_at(fh, theirs, back, 2 * BLOCK, MPI_BYTE, &req) == MPI_SUCCESS, "iread_at");
    MPI_Wait(&req, &st);
    CHECK(matches(back, 2L * BLOCK, next, 2, 0), "iread_at of rank %d's contiguous part", next);
    MPI_File_get_size(fh, &size);
    CHECK(size == base + (MPI_Offset)BLOCK * 2 * g_size, "final size %lld", (long long)size);
    MPI_File_close(&fh);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK(MPI_File_delete(path, MPI_INFO_NULL) == MPI_SUCCESS, "delete");
        CHECK(rmdir(dir) == 0, "rmdir %s", dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    check_report();
    free(buf);
    free(back);
    MPI_Finalize();
    return 0;
}
