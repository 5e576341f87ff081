/*
 * An ordinary parallel HDF5 program: every rank writes its rows of one 2-D dataset
 * collectively through the MPI-IO driver, with an attribute; the file is reopened and every
 * rank reads, collectively, the rows of the next rank and checks each value.
 *
 *   collective DIR [LOCAL_DIR]   (LOCAL_DIR is not used)
 *
 * Ends with "hdf5_collective: P passed, F failed" from rank 0.
 */
#include "../check.h"
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { ROWS = 64, COLS = 1000 };

static long value(int rank, long row, long col)
{
    return (long)rank * 1000003 + row * 7919 + col;
}

/* A hyperslab of `rank`'s rows in `space`, and a memory space of their size. */
static hid_t rows_of(hid_t space, int rank)
{
    hsize_t start[2] = {(hsize_t)rank * ROWS, 0}, count[2] = {ROWS, COLS};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    return H5Screate_simple(2, count, NULL);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    check_start("hdf5_collective");
    if (argc < 2)
        MPI_Abort(MPI_COMM_WORLD, 2);
    char path[600];
    snprintf(path, sizeof path, "%s/data.h5", argv[1]);
    if (g_rank == 0)
        CHECK(mkdir(argv[1], 0755) == 0, "mkdir %s", argv[1]);
    MPI_Barrier(MPI_COMM_WORLD);

    long *rows = malloc(sizeof(long) * ROWS * COLS);
    for (long r = 0; r < ROWS; r++)
        for (long c = 0; c < COLS; c++)
            rows[r * COLS + c] = value(g_rank, (long)g_rank * ROWS + r, c);

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CHECK(file >= 0, "H5Fcreate %s", path);
    if (file < 0)
        MPI_Abort(MPI_COMM_WORLD, 3);
    hsize_t dims[2] = {(hsize_t)g_size * ROWS, COLS};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dset = H5Dcreate2(file, "values", H5T_NATIVE_LONG, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(dset >= 0, "H5Dcreate2");
    int ranks = g_size;
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(dset, "ranks", H5T_NATIVE_INT, scalar, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT, &ranks) >= 0, "attribute");
    H5Aclose(attr);
    H5Sclose(scalar);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    hid_t mem = rows_of(space, g_rank);
    CHECK(H5Dwrite(dset, H5T_NATIVE_LONG, mem, space, dxpl, rows) >= 0, "collective H5Dwrite");
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(dset);
    CHECK(H5Fclose(file) >= 0, "H5Fclose after writing");

    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    CHECK(file >= 0, "H5Fopen");
    dset = H5Dopen2(file, "values", H5P_DEFAULT);
    space = H5Dget_space(dset);
    hsize_t got[2] = {0, 0};
    H5Sget_simple_extent_dims(space, got, NULL);
    CHECK(got[0] == dims[0] && got[1] == dims[1], "dimensions %llu x %llu", (unsigned long long)got[0], (unsigned long long)got[1]);
    attr = H5Aopen(dset, "ranks", H5P_DEFAULT);
    int read_ranks = 0;
    CHECK(attr >= 0 && H5Aread(attr, H5T_NATIVE_INT, &read_ranks) >= 0 && read_ranks == g_size, "attribute read back: %d", read_ranks);
    H5Aclose(attr);
    int next = (g_rank + 1) % g_size;
    mem = rows_of(space, next);
    for (long i = 0; i < ROWS * COLS; i++)
        rows[i] = -1;
    CHECK(H5Dread(dset, H5T_NATIVE_LONG, mem, space, dxpl, rows) >= 0, "collective H5Dread");
    long wrong = 0;
    for (long r = 0; r < ROWS; r++)
        for (long c = 0; c < COLS; c++)
            wrong += rows[r * COLS + c] != value(next, (long)next * ROWS + r, c);
    CHECK(wrong == 0, "%ld of rank %d's values read back wrong", wrong, next);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(dset);
    H5Pclose(dxpl);
    CHECK(H5Fclose(file) >= 0, "H5Fclose after reading");
    H5Pclose(fapl);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK(unlink(path) == 0, "unlink");
        CHECK(rmdir(argv[1]) == 0, "rmdir");
    }
    free(rows);

    check_report();
    MPI_Finalize();
    return 0;
}
