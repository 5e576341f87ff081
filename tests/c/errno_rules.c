/*
 * errno as POSIX leaves it: a successful call does not touch errno, so the
 * usual "errno = 0; while ((e = readdir(d))) ...; if (errno) fail" loop works;
 * and once BenchFS is finalized, a directory stream opened before fails with
 * ENOTCONN like every other call instead of handing out what it buffered.
 *
 * BENCHFS_SPIN_US=0 makes every waiting thread block at once, the path on
 * which an internal wait could leave its own errno behind.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define SENTINEL 4242
#define FILES 300

/* Runs `call`, which must succeed, with errno set to SENTINEL before it. */
#define KEEPS_ERRNO(call, what)                                                \
    do {                                                                       \
        errno = SENTINEL;                                                      \
        long long ret_ = (long long)(call);                                    \
        int e_ = errno;                                                        \
        CHECK(ret_ >= 0, "%s failed (errno %d: %s)", what, e_, strerror(e_));  \
        CHECK(e_ == SENTINEL, "%s succeeded but changed errno to %d (%s)",     \
              what, e_, strerror(e_));                                         \
    } while (0)

static void successful_calls_keep_errno(void)
{
    char dir[64], path[96];
    unsigned char buf[4096];
    struct stat st;
    snprintf(dir, sizeof dir, "/errno_r%d", g_rank);
    KEEPS_ERRNO(benchfs_mkdir(dir, 0755), "mkdir");
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        pattern_fill(buf, (uint64_t)i, 0, sizeof buf);
        errno = SENTINEL;
        int fd = benchfs_open(path, O_CREAT | O_RDWR, 0644);
        int e = errno;
        CHECK(fd >= 0 && e == SENTINEL, "open(%s): fd %d, errno %d", path, fd, e);
        if (fd < 0)
            continue;
        KEEPS_ERRNO(benchfs_pwrite(fd, buf, sizeof buf, 0), "pwrite");
        KEEPS_ERRNO(benchfs_pread(fd, buf, sizeof buf, 0), "pread");
        KEEPS_ERRNO(benchfs_fstat(fd, &st), "fstat");
        KEEPS_ERRNO(benchfs_fsync(fd), "fsync");
        KEEPS_ERRNO(benchfs_close(fd), "close");
        KEEPS_ERRNO(benchfs_stat(path, &st), "stat");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* Every rank lists every rank's directory, the POSIX way. */
    for (int r = 0; r < g_nranks; r++) {
        snprintf(dir, sizeof dir, "/errno_r%d", r);
        errno = SENTINEL;
        benchfs_dir_t *d = benchfs_opendir(dir);
        CHECK(d != NULL && errno == SENTINEL, "opendir(%s): %p, errno %d", dir, (void *)d, errno);
        if (d == NULL)
            continue;
        int entries = 0;
        errno = 0;
        while (benchfs_readdir(d) != NULL)
            entries++;
        int e = errno;
        CHECK(e == 0, "readdir(%s) ended with errno %d (%s) after %d entries", dir, e,
              strerror(e), entries);
        CHECK(entries == FILES + 2, "readdir(%s): %d entries, want %d", dir, entries, FILES + 2);
        KEEPS_ERRNO(benchfs_closedir(d), "closedir");
    }
}

/* A stream opened before the last finalize: readdir fails with ENOTCONN
 * (even for entries it had already fetched); closedir still frees it. */
static void stream_after_finalize(void)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/errno_r%d", g_rank);
    benchfs_dir_t *d = benchfs_opendir(dir);
    CHECK(d != NULL, "opendir(%s) failed (errno %d)", dir, errno);
    if (d == NULL)
        return;
    /* Fetch the first page, so that entries are buffered in the stream. */
    CHECK(benchfs_readdir(d) != NULL, "first readdir failed (errno %d)", errno);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RET(benchfs_finalize(), 0, "finalize");
    errno = 0;
    struct dirent *e = benchfs_readdir(d);
    int err = errno;
    CHECK(e == NULL && err == ENOTCONN, "readdir after finalize: want NULL/ENOTCONN, got %p/errno %d",
          (void *)e, err);
    CHECK_RET(benchfs_closedir(d), 0, "closedir after finalize");
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "errno_rules");
    setenv("BENCHFS_SPIN_US", "0", 1);
    harness_benchfs_init();
    successful_calls_keep_errno();
    stream_after_finalize();
    return harness_finish(0);
}
