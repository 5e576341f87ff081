/*
 * Unlink is final, whether or not the file's writers have closed yet: once
 * it returns, no chunk file of the unlinked file is left on any rank, even
 * for data that writers still holding the file open put beyond the size its
 * owner knew.
 */
#define _XOPEN_SOURCE 700
#include "harness.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_chunk_name[32];
static int g_found;

static int find_chunk(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    if (type == FTW_F && strcmp(fpath + ftw->base, g_chunk_name) == 0)
        g_found++;
    return 0;
}

static void unlink_is_final(void)
{
    const char *path = "/unlink_final";
    unsigned char buf[4096];
    pattern_fill(buf, (uint64_t)g_rank, 0, sizeof buf);
    if (g_rank == 0) {
        int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
        CHECK_RET(benchfs_close(fd), 0, "create");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int fd = benchfs_open(path, O_RDWR, 0);
    CHECK(fd >= 0, "open failed (errno %d)", errno);
    struct stat st;
    CHECK_RET(benchfs_fstat(fd, &st), 0, "fstat");
    /* Every rank but the unlinking one writes a block into 16 chunks' worth
     * of offsets, so that chunk files exist on every rank; nobody closes. */
    for (int i = 0; i < 16 && g_rank != 0; i++)
        CHECK_RET(benchfs_pwrite(fd, buf, sizeof buf, (off_t)i * 1048576 + (off_t)g_rank * 4096),
                  (long long)sizeof buf, "pwrite");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink while others write");
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(benchfs_close(fd), 0, "close after unlink");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        const char *data = getenv("BENCHFS_DATA_DIR");
        CHECK(data != NULL, "BENCHFS_DATA_DIR is not set");
        if (data != NULL) {
            snprintf(g_chunk_name, sizeof g_chunk_name, "%016" PRIx64, (uint64_t)st.st_ino);
            g_found = 0;
            nftw(data, find_chunk, 16, FTW_PHYS);
            CHECK(g_found == 0, "%d chunk files of the unlinked file %s are left", g_found, g_chunk_name);
        }
    }
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "unlink_final");
    harness_benchfs_init();
    unlink_is_final();
    return harness_finish(1);
}
