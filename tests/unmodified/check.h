/*
 * What the unmodified test programs share: counting their checks and reporting them, and the
 * data they write and check byte for byte. Nothing of BenchFS is here; the programs know only
 * POSIX, stdio, MPI(-IO) and HDF5.
 *
 * A program calls check_start("name") after MPI_Init and check_report() before MPI_Finalize;
 * rank 0 then prints "name: P passed, F failed" over all ranks.
 */
#ifndef UNMODIFIED_CHECK_H
#define UNMODIFIED_CHECK_H

#include <errno.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *g_program;
static int g_rank, g_size;
static long g_passed, g_failed;

#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (cond) {                                                                  \
            g_passed++;                                                              \
        } else {                                                                     \
            g_failed++;                                                              \
            fprintf(stderr, "[%s rank %d] FAIL line %d: ", g_program, g_rank, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, " (errno %d %s)\n", errno, strerror(errno));             \
        }                                                                            \
    } while (0)

static void check_start(const char *program)
{
    g_program = program;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
}

static void check_report(void)
{
    long counts[2] = {g_passed, g_failed}, total[2];
    MPI_Reduce(counts, total, 2, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (g_rank == 0)
        printf("%s: %ld passed, %ld failed\n", g_program, total[0], total[1]);
}

/* The byte at `offset` of data that `owner` wrote, for a given `salt` (one per data set). */
static inline unsigned char pattern(int owner, int salt, size_t offset)
{
    return (unsigned char)((offset * 131 + (size_t)owner * 17 + (size_t)salt * 7 + offset / 251) & 0xff);
}

static inline void fill(unsigned char *buf, size_t len, int owner, int salt, size_t from)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(owner, salt, from + i);
}

/* True if `buf` holds `owner`'s data of `salt` from offset `from` on. */
static inline int matches(const unsigned char *buf, size_t len, int owner, int salt, size_t from)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern(owner, salt, from + i))
            return 0;
    return 1;
}

#endif
