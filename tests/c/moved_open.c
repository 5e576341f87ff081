/*
 * Descriptors of files that were renamed while open, by themselves or with
 * their directory, and whose old names another rank then used again: writes,
 * ftruncate, fstat and close through the old descriptors act on the files
 * they opened, never on the new files at the old names.
 */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define N 70000
#define OTHER 100

static void make_file(const char *path, int seed)
{
    unsigned char buf[OTHER];
    pattern_fill(buf, seed, 0, OTHER);
    int fd = benchfs_open(path, O_CREAT | O_WRONLY | O_EXCL, 0644);
    CHECK(fd >= 0, "create %s: errno %d", path, errno);
    CHECK_RET(benchfs_pwrite(fd, buf, OTHER, 0), OTHER, "write the new file");
    CHECK_RET(benchfs_close(fd), 0, "close the new file");
}

static void expect(const char *path, int seed, long size)
{
    struct stat st;
    CHECK_RET(benchfs_stat(path, &st), 0, path);
    CHECK(st.st_size == size, "%s: size %lld, want %ld", path, (long long)st.st_size, size);
    if (st.st_size != size)
        return;
    unsigned char *got = malloc(size + 1);
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK_RET(benchfs_pread(fd, got, size, 0), size, path);
    verify_pattern(got, seed, 0, size, path);
    CHECK_RET(benchfs_close(fd), 0, "close");
    free(got);
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "moved_open");
    harness_benchfs_init();
    int holder = 0, mover = 1 % g_nranks;
    unsigned char *buf = malloc(N);
    pattern_fill(buf, 7, 0, N);
    for (int round = 0; round < 5; round++) {
        char top[64], d[96], e[96], df[128], dg[128], ef[128], eg[128], h[96], h2[96];
        snprintf(top, sizeof top, "/mo%d", round);
        snprintf(d, sizeof d, "%s/d", top);
        snprintf(e, sizeof e, "%s/e", top);
        snprintf(df, sizeof df, "%s/f", d);
        snprintf(dg, sizeof dg, "%s/g", d);
        snprintf(ef, sizeof ef, "%s/f", e);
        snprintf(eg, sizeof eg, "%s/g", e);
        snprintf(h, sizeof h, "%s/h", top);
        snprintf(h2, sizeof h2, "%s/h2", top);
        int f = -1, g = -1, hf = -1;
        struct stat opened_f;
        if (g_rank == holder) {
            CHECK_RET(benchfs_mkdir(top, 0755), 0, "mkdir top");
            CHECK_RET(benchfs_mkdir(d, 0755), 0, "mkdir d");
            /* f: open for writing, nothing written yet; g: written before the move. */
            f = benchfs_open(df, O_CREAT | O_RDWR, 0644);
            g = benchfs_open(dg, O_CREAT | O_WRONLY, 0644);
            hf = benchfs_open(h, O_CREAT | O_RDWR, 0644);
            CHECK(f >= 0 && g >= 0 && hf >= 0, "open: errno %d", errno);
            CHECK_RET(benchfs_fstat(f, &opened_f), 0, "fstat f");
            CHECK_RET(benchfs_pwrite(g, buf, N, 0), N, "write g");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (g_rank == mover) {
            CHECK_RET(benchfs_rename(d, e), 0, "rename d -> e");
            CHECK_RET(benchfs_mkdir(d, 0755), 0, "mkdir d again");
            make_file(df, 9);
            make_file(dg, 9);
            CHECK_RET(benchfs_rename(h, h2), 0, "rename h -> h2");
            make_file(h, 9);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (g_rank == holder) {
            struct stat st;
            CHECK_RET(benchfs_fstat(f, &st), 0, "fstat f after the move");
            CHECK(st.st_ino == opened_f.st_ino, "fstat f: inode %llu, want %llu", (unsigned long long)st.st_ino,
                  (unsigned long long)opened_f.st_ino);
            CHECK_RET(benchfs_pwrite(f, buf, N, 0), N, "write f after the move");
            CHECK_RET(benchfs_ftruncate(g, 1000), 0, "ftruncate g after the move");
            CHECK_RET(benchfs_ftruncate(hf, 10), 0, "ftruncate h after its rename");
            CHECK_RET(benchfs_pwrite(hf, buf, 50, 0), 50, "write h after its rename");
            CHECK_RET(benchfs_close(f), 0, "close f");
            CHECK_RET(benchfs_close(g), 0, "close g");
            CHECK_RET(benchfs_close(hf), 0, "close h");
        }
        MPI_Barrier(MPI_COMM_WORLD);
        expect(ef, 7, N);
        expect(eg, 7, 1000);
        expect(h2, 7, 50);
        expect(df, 9, OTHER);
        expect(dg, 9, OTHER);
        expect(h, 9, OTHER);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    free(buf);
    return harness_finish(1);
}
