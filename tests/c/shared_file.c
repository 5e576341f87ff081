/*
 * One file written by all ranks at once, and the POSIX corner cases of a
 * single file as seen from other ranks: holes, reads at and past the end,
 * the file offset of write/read/lseek, O_EXCL, O_TRUNC, fsync without
 * close, a one-byte file and zero-byte writes.
 *
 * Consistency is close-to-open, so every cross-rank observation here is
 * made after the writer closed (or fsync'ed) and a barrier.
 */
#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

enum { SEGMENT = 47008, TAIL = 12347, READ_PIECE = 100003 };

static uint64_t g_chunk;

static int open_checked(const char *path, int flags, mode_t mode)
{
    int fd = benchfs_open(path, flags, mode);
    CHECK(fd >= 0, "open(%s, 0x%x) failed (errno %d: %s)", path, (unsigned)flags, errno,
          strerror(errno));
    return fd;
}

static void check_size(const char *path, uint64_t want, const char *what)
{
    struct stat st;
    int r = benchfs_stat(path, &st);
    CHECK(r == 0 && (uint64_t)st.st_size == want,
          "%s: stat(%s) ret %d size %lld, want %" PRIu64 " (errno %d)", what, path, r,
          r == 0 ? (long long)st.st_size : -1LL, want, r == 0 ? 0 : errno);
}

/*
 * Segment s of SEGMENT bytes is written by rank s % nranks, in three
 * unaligned pieces; a final TAIL-byte segment follows. Odd ranks write
 * their segments from last to first, so the size grows out of order.
 */
static void shared_interleaved(void)
{
    const char *path = "/shared";
    const uint64_t id = 77;
    uint64_t nseg = 4 * (uint64_t)g_nranks;
    if (nseg < 3 * g_chunk / SEGMENT + 2)
        nseg = 3 * g_chunk / SEGMENT + 2;
    uint64_t total = nseg * SEGMENT + TAIL;
    unsigned char *buf = xmalloc(total + READ_PIECE);
    int fd = -1;

    if (g_rank == 0)
        fd = open_checked(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank != 0)
        fd = open_checked(path, O_WRONLY, 0);
    if (fd >= 0) {
        for (uint64_t k = 0; k <= nseg; k++) {
            uint64_t s = (g_rank % 2) ? nseg - k : k;
            if ((int)(s % (uint64_t)g_nranks) != g_rank)
                continue;
            uint64_t off = s * SEGMENT, len = s == nseg ? TAIL : SEGMENT;
            uint64_t cut1 = 1, cut2 = 1 + (s * 7919) % (len - 8) + 3;
            pattern_fill(buf, id, off, len);
            pwrite_all(fd, buf, cut1, off, "shared segment head");
            pwrite_all(fd, buf + cut1, cut2 - cut1, off + cut1, "shared segment middle");
            pwrite_all(fd, buf + cut2, len - cut2, off + cut2, "shared segment tail");
        }
        CHECK_RET(benchfs_close(fd), 0, "close shared file");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    check_size(path, total, "shared file");
    fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        /* Sequential read(2)-style access, in pieces that do not divide the
         * segment or the chunk size. */
        uint64_t got = 0;
        for (;;) {
            ssize_t n = benchfs_read(fd, buf + got, READ_PIECE);
            if (n < 0) {
                CHECK(0, "read of shared file at %" PRIu64 " failed (errno %d: %s)", got,
                      errno, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            got += (uint64_t)n;
            if (got > total)
                break;
        }
        CHECK(got == total, "shared file: read %" PRIu64 " bytes, want %" PRIu64, got, total);
        verify_pattern(buf, id, 0, got < total ? got : total, "shared file contents");
        CHECK_RET(benchfs_close(fd), 0, "close shared file after read");
    }
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink shared file");
}

/* Two writes far apart: everything between reads as zeros on every rank. */
static void holes(void)
{
    const char *path = "/holes";
    const uint64_t id = 88, far = 5 * g_chunk + 7, size = far + 10;
    int writer = g_nranks - 1;
    unsigned char *buf = xmalloc(size + 200);

    if (g_rank == writer) {
        int fd = open_checked(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd >= 0) {
            pattern_fill(buf, id, 0, 100);
            pwrite_all(fd, buf, 100, 0, "hole head");
            pattern_fill(buf, id, far, 10);
            pwrite_all(fd, buf, 10, far, "hole tail");
            CHECK_RET(benchfs_close(fd), 0, "close holes");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);

    check_size(path, size, "holes");
    int fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        long long got = pread_all(fd, buf, size + 200, 0, path);
        CHECK(got == (long long)size, "holes: read %lld bytes, want %" PRIu64, got, size);
        if (got == (long long)size) {
            verify_pattern(buf, id, 0, 100, "holes: head");
            verify_zero(buf + 100, 100, far - 100, "holes: gap");
            verify_pattern(buf + far, id, far, 10, "holes: tail");
        }
        ssize_t n = benchfs_pread(fd, buf, 100, (off_t)(size - 10));
        CHECK(n == 10, "pread of 100 bytes 10 before EOF returned %zd, want 10 (errno %d)", n,
              errno);
        if (n == 10)
            verify_pattern(buf, id, size - 10, 10, "holes: read up to EOF");
        CHECK_RET(benchfs_pread(fd, buf, 100, (off_t)size), 0, "pread at EOF");
        CHECK_RET(benchfs_pread(fd, buf, 100, (off_t)(size + 1000)), 0, "pread past EOF");
        CHECK_RET(benchfs_pread(fd, buf, 100, (off_t)(size + 7 * g_chunk)), 0,
                  "pread chunks past EOF");
        CHECK_RET(benchfs_pread(fd, buf, 0, 0), 0, "pread of 0 bytes");
        CHECK_RET(benchfs_close(fd), 0, "close holes reader");
    }
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == writer)
        CHECK_RET(benchfs_unlink(path), 0, "unlink holes");
}

/* The file offset as write(2), read(2) and lseek(2) move it; per rank. */
static void seek_semantics(void)
{
    char path[64];
    const uint64_t id = 300 + (uint64_t)g_rank;
    unsigned char data[1200], got[1200];
    snprintf(path, sizeof path, "/seek_r%d", g_rank);
    pattern_fill(data, id, 0, sizeof data);

    int fd = open_checked(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0)
        return;
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 0, "initial offset");
    CHECK_RET(benchfs_write(fd, data, 1000), 1000, "write 1000");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 1000, "offset after write");
    CHECK_RET(benchfs_lseek(fd, 10, SEEK_SET), 10, "SEEK_SET 10");
    CHECK_RET(benchfs_read(fd, got, 20), 20, "read 20 at 10");
    verify_pattern(got, id, 10, 20, "read at 10");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 30, "offset after read");
    CHECK_RET(benchfs_lseek(fd, 5, SEEK_CUR), 35, "SEEK_CUR +5");
    CHECK_RET(benchfs_read(fd, got, 5), 5, "read 5 at 35");
    verify_pattern(got, id, 35, 5, "read at 35");
    CHECK_RET(benchfs_lseek(fd, -15, SEEK_CUR), 25, "SEEK_CUR -15");
    CHECK_RET(benchfs_lseek(fd, -5, SEEK_END), 995, "SEEK_END -5");
    CHECK_RET(benchfs_read(fd, got, 100), 5, "short read at the end");
    verify_pattern(got, id, 995, 5, "read at 995");
    CHECK_RET(benchfs_read(fd, got, 100), 0, "read at EOF");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 1000, "offset stays at EOF");

    /* pread/pwrite leave the offset alone. */
    CHECK_RET(benchfs_pwrite(fd, data, 10, 0), 10, "pwrite 10 at 0");
    CHECK_RET(benchfs_pread(fd, got, 10, 500), 10, "pread 10 at 500");
    verify_pattern(got, id, 500, 10, "pread at 500");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 1000, "offset after pread/pwrite");

    /* Seeking past the end and writing leaves a hole. */
    CHECK_RET(benchfs_lseek(fd, 100, SEEK_END), 1100, "SEEK_END +100");
    CHECK_RET(benchfs_write(fd, data + 1100, 3), 3, "write 3 at 1100");
    CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 1103, "offset after write past end");
    struct stat st;
    int r = benchfs_fstat(fd, &st);
    CHECK(r == 0 && st.st_size == 1103, "fstat after hole write: ret %d size %lld", r,
          r == 0 ? (long long)st.st_size : -1LL);
    long long n = pread_all(fd, got, sizeof got, 0, path);
    CHECK(n == 1103, "read back own writes: %lld bytes, want 1103", n);
    if (n == 1103) {
        verify_pattern(got, id, 0, 1000, "own writes [0,1000)");
        verify_zero(got + 1000, 1000, 100, "hole [1000,1100)");
        verify_pattern(got + 1100, id, 1100, 3, "own writes [1100,1103)");
    }
    off_t far = (off_t)(2 * g_chunk + 3);
    CHECK_RET(benchfs_lseek(fd, far, SEEK_SET), far, "SEEK_SET beyond EOF");
    CHECK_RET(benchfs_read(fd, got, 10), 0, "read beyond EOF");
    CHECK_RET(benchfs_close(fd), 0, "close seek file");

    /* A new descriptor starts at offset 0. */
    fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        CHECK_RET(benchfs_read(fd, got, 7), 7, "read 7 after reopen");
        verify_pattern(got, id, 0, 7, "read after reopen");
        CHECK_RET(benchfs_lseek(fd, 0, SEEK_END), 1103, "SEEK_END after reopen");
        CHECK_RET(benchfs_close(fd), 0, "close reopened seek file");
    }
    CHECK_RET(benchfs_unlink(path), 0, "unlink seek file");
}

static void exclusive_create(void)
{
    if (g_rank == 0) {
        int fd = open_checked("/excl", O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd >= 0)
            CHECK_RET(benchfs_close(fd), 0, "close /excl");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int fd = benchfs_open("/excl", O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK_ERR(fd, EEXIST, "O_CREAT|O_EXCL on an existing file");
    if (fd >= 0)
        benchfs_close(fd);
    fd = open_checked("/excl", O_CREAT | O_RDWR, 0644);
    if (fd >= 0)
        CHECK_RET(benchfs_close(fd), 0, "close /excl opened with O_CREAT");

    /* All ranks race to create one file: exactly one may win. */
    fd = benchfs_open("/race", O_CREAT | O_EXCL | O_WRONLY, 0644);
    int won = fd >= 0, wins = 0;
    if (!won)
        CHECK(errno == EEXIST, "losing O_EXCL create: errno %d (%s), want EEXIST", errno,
              strerror(errno));
    else
        CHECK_RET(benchfs_close(fd), 0, "close /race");
    MPI_Allreduce(&won, &wins, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(wins == 1, "%d ranks won the O_EXCL race, want exactly 1", wins);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        CHECK_RET(benchfs_unlink("/excl"), 0, "unlink /excl");
        CHECK_RET(benchfs_unlink("/race"), 0, "unlink /race");
    }
}

/*
 * O_TRUNC from another rank empties the file for everyone; a later write
 * past the old first chunk must not bring the old data back.
 */
static void truncate_on_open(void)
{
    const char *path = "/trunc";
    const uint64_t old_size = 3 * g_chunk / 2 + 5, new_off = g_chunk + 5;
    int other = g_nranks - 1;
    unsigned char *buf = xmalloc(old_size + 100);

    if (g_rank == 0) {
        int fd = open_checked(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd >= 0) {
            pattern_fill(buf, 400, 0, old_size);
            pwrite_all(fd, buf, old_size, 0, "trunc initial data");
            CHECK_RET(benchfs_close(fd), 0, "close trunc");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, old_size, "before O_TRUNC");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == other) {
        int fd = open_checked(path, O_WRONLY | O_TRUNC, 0);
        if (fd >= 0) {
            struct stat st;
            int r = benchfs_fstat(fd, &st);
            CHECK(r == 0 && st.st_size == 0, "fstat after O_TRUNC: ret %d size %lld", r,
                  r == 0 ? (long long)st.st_size : -1LL);
            CHECK_RET(benchfs_close(fd), 0, "close after O_TRUNC");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, 0, "after O_TRUNC");
    int fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        CHECK_RET(benchfs_pread(fd, buf, 10, 0), 0, "pread of truncated file");
        CHECK_RET(benchfs_close(fd), 0, "close truncated file");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == other) {
        fd = open_checked(path, O_WRONLY, 0);
        if (fd >= 0) {
            pattern_fill(buf, 401, new_off, 7);
            pwrite_all(fd, buf, 7, new_off, "write after truncate");
            CHECK_RET(benchfs_close(fd), 0, "close after rewrite");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, new_off + 7, "rewritten after O_TRUNC");
    fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        long long n = pread_all(fd, buf, old_size + 100, 0, path);
        CHECK(n == (long long)(new_off + 7), "read after truncate+write: %lld bytes, want %" PRIu64,
              n, new_off + 7);
        if (n == (long long)(new_off + 7)) {
            verify_zero(buf, 0, new_off, "truncated region (old data back?)");
            verify_pattern(buf + new_off, 401, new_off, 7, "data written after truncate");
        }
        CHECK_RET(benchfs_close(fd), 0, "close rewritten file");
    }
    free(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink trunc");
}

/* After fsync, with the writer's descriptor still open, others see it all. */
static void fsync_visibility(void)
{
    const char *path = "/fsync";
    const uint64_t id = 500, size = g_chunk + 12345;
    unsigned char *buf = xmalloc(size + 100);
    int wfd = -1;

    if (g_rank == 0) {
        wfd = open_checked(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (wfd >= 0) {
            pattern_fill(buf, id, 0, size);
            pwrite_all(wfd, buf, size, 0, "fsync data");
            CHECK_RET(benchfs_fsync(wfd), 0, "fsync");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, size, "after fsync");
    int fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        long long n = pread_all(fd, buf, size + 100, 0, path);
        CHECK(n == (long long)size, "read after fsync: %lld bytes, want %" PRIu64, n, size);
        if (n > 0)
            verify_pattern(buf, id, 0, (size_t)n, "data after fsync");
        CHECK_RET(benchfs_close(fd), 0, "close reader after fsync");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (wfd >= 0) {
        CHECK_RET(benchfs_close(wfd), 0, "close fsync writer");
        CHECK_RET(benchfs_unlink(path), 0, "unlink fsync");
    }
    free(buf);
}

static void one_byte_file(void)
{
    const char *path = "/one";
    int writer = 1 % g_nranks;
    unsigned char b = pattern_byte(600, 0), got[10];

    if (g_rank == writer) {
        int fd = open_checked(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd >= 0) {
            CHECK_RET(benchfs_write(fd, &b, 1), 1, "write 1 byte");
            CHECK_RET(benchfs_close(fd), 0, "close one-byte file");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, 1, "one-byte file");
    int fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        CHECK_RET(benchfs_pread(fd, got, sizeof got, 0), 1, "pread of one-byte file");
        CHECK(got[0] == b, "one-byte file holds 0x%02x, want 0x%02x", got[0], b);
        CHECK_RET(benchfs_pread(fd, got, sizeof got, 1), 0, "pread at 1 of one-byte file");
        CHECK_RET(benchfs_close(fd), 0, "close one-byte reader");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == writer)
        CHECK_RET(benchfs_unlink(path), 0, "unlink one-byte file");
}

/* Writes of zero bytes succeed, change nothing and do not move the offset. */
static void zero_length_writes(void)
{
    const char *path = "/zero";
    unsigned char buf[8] = {0};

    if (g_rank == 0) {
        int fd = open_checked(path, O_CREAT | O_EXCL | O_RDWR, 0644);
        if (fd >= 0) {
            CHECK_RET(benchfs_pwrite(fd, buf, 0, 0), 0, "pwrite of 0 bytes at 0");
            CHECK_RET(benchfs_write(fd, buf, 0), 0, "write of 0 bytes");
            CHECK_RET(benchfs_pwrite(fd, buf, 0, 1000), 0, "pwrite of 0 bytes at 1000");
            CHECK_RET(benchfs_lseek(fd, 0, SEEK_CUR), 0, "offset after 0-byte writes");
            struct stat st;
            int r = benchfs_fstat(fd, &st);
            CHECK(r == 0 && st.st_size == 0, "fstat after 0-byte writes: ret %d size %lld", r,
                  r == 0 ? (long long)st.st_size : -1LL);
            CHECK_RET(benchfs_close(fd), 0, "close zero file");
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    check_size(path, 0, "after 0-byte writes");
    int fd = open_checked(path, O_RDONLY, 0);
    if (fd >= 0) {
        CHECK_RET(benchfs_read(fd, buf, sizeof buf), 0, "read of empty file");
        CHECK_RET(benchfs_close(fd), 0, "close empty file");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK_RET(benchfs_unlink(path), 0, "unlink zero file");
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "shared_file");
    harness_benchfs_init();
    g_chunk = probe_chunk_size();
    if (g_rank == 0)
        note("chunk size %" PRIu64 ", %d ranks", g_chunk, g_nranks);

    shared_interleaved();
    MPI_Barrier(MPI_COMM_WORLD);
    holes();
    MPI_Barrier(MPI_COMM_WORLD);
    seek_semantics();
    MPI_Barrier(MPI_COMM_WORLD);
    exclusive_create();
    MPI_Barrier(MPI_COMM_WORLD);
    truncate_on_open();
    MPI_Barrier(MPI_COMM_WORLD);
    fsync_visibility();
    MPI_Barrier(MPI_COMM_WORLD);
    one_byte_file();
    MPI_Barrier(MPI_COMM_WORLD);
    zero_length_writes();
    MPI_Barrier(MPI_COMM_WORLD);
    return harness_finish(1);
}
