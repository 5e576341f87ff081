/*
 * An ordinary MPI program that knows nothing of BenchFS: plain POSIX calls and stdio on files
 * under a directory given on the command line. Run with libbenchfs-preload.so preloaded and
 * the directory under the mount, its files live on BenchFS.
 *
 *   posix_stdio DIR LOCAL_DIR
 *
 * Every rank writes files of its own in DIR through write, pwrite, writev and stdio, then
 * reads and checks, byte for byte, those of the next rank; it lists the directory, works with
 * relative paths after chdir into it, duplicates descriptors, renames, truncates and removes,
 * and does the same kind of I/O in LOCAL_DIR (a system directory) in between, which must reach
 * the kernel untouched. Ends with "posix_stdio: P passed, F failed" from rank 0.
 */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

enum { BLOCK = 300000, LINES = 50 };

static char *path_of(const char *dir, const char *name, int rank)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s.%d", dir, name, rank);
    return p;
}

/* POSIX writes: a block with write, one with pwrite at an offset, one with writev of three
 * parts; the file is 3 * BLOCK bytes. */
static void write_posix(const char *dir)
{
    unsigned char *buf = malloc(3 * BLOCK);
    fill(buf, 3 * BLOCK, g_rank, 1, 0);
    int fd = open(path_of(dir, "posix", g_rank), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "open for writing");
    CHECK(write(fd, buf, BLOCK) == BLOCK, "write");
    CHECK(pwrite(fd, buf + 2 * BLOCK, BLOCK, 2 * BLOCK) == BLOCK, "pwrite");
    CHECK(lseek(fd, BLOCK, SEEK_SET) == BLOCK, "lseek");
    struct iovec iov[3] = {{buf + BLOCK, 1000}, {buf + BLOCK + 1000, 0}, {buf + BLOCK + 1000, BLOCK - 1000}};
    CHECK(writev(fd, iov, 3) == BLOCK, "writev");
    CHECK(fsync(fd) == 0, "fsync");
    CHECK(close(fd) == 0, "close");
    free(buf);
}

static void write_stdio(const char *dir)
{
    FILE *f = fopen(path_of(dir, "stdio", g_rank), "w");
    CHECK(f != NULL, "fopen for writing");
    if (!f)
        return;
    for (int i = 0; i < LINES; i++)
        fprintf(f, "rank %d line %d of %d\n", g_rank, i, LINES);
    unsigned char *buf = malloc(BLOCK);
    fill(buf, BLOCK, g_rank, 2, 0);
    CHECK(fwrite(buf, 1, BLOCK, f) == BLOCK, "fwrite");
    CHECK(fflush(f) == 0, "fflush");
    CHECK(fileno(f) >= 0, "fileno of a BenchFS stream");
    CHECK(fclose(f) == 0, "fclose");
    free(buf);
}

static void read_posix(const char *dir, int owner)
{
    unsigned char *buf = malloc(3 * BLOCK);
    int fd = open(path_of(dir, "posix", owner), O_RDONLY);
    CHECK(fd >= 0, "open for reading");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 3 * BLOCK && S_ISREG(st.st_mode), "fstat: size %lld", (long long)st.st_size);
    struct stat at;
    CHECK(fstatat(fd, "", &at, AT_EMPTY_PATH) == 0 && at.st_ino == st.st_ino, "fstatat with AT_EMPTY_PATH");
    struct statx stx;
    CHECK(statx(AT_FDCWD, path_of(dir, "posix", owner), 0, STATX_BASIC_STATS, &stx) == 0 && stx.stx_size == 3 * BLOCK &&
              stx.stx_ino == st.st_ino,
          "statx");
    memset(buf, 0, 3 * BLOCK);
    CHECK(read(fd, buf, BLOCK) == BLOCK && matches(buf, BLOCK, owner, 1, 0), "read");
    CHECK(pread(fd, buf, BLOCK, 2 * BLOCK) == BLOCK && matches(buf, BLOCK, owner, 1, 2 * BLOCK), "pread");
    struct iovec iov[2] = {{buf, 700}, {buf + 700, BLOCK - 700}};
    CHECK(readv(fd, iov, 2) == BLOCK && matches(buf, BLOCK, owner, 1, BLOCK), "readv");
    CHECK(read(fd, buf, BLOCK) == BLOCK, "read of the last block");
    CHECK(read(fd, buf, 1) == 0, "read at the end returns 0");
    CHECK(lseek(fd, -10, SEEK_END) == 3 * BLOCK - 10, "lseek from the end");
    CHECK(read(fd, buf, 100) == 10 && matches(buf, 10, owner, 1, 3 * BLOCK - 10), "read of the tail");
    errno = 0;
    void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(map == MAP_FAILED && errno == ENODEV, "mmap of a BenchFS file: want ENODEV");
    CHECK(close(fd) == 0, "close");
    free(buf);
}

static void read_stdio(const char *dir, int owner)
{
    FILE *f = fopen(path_of(dir, "stdio", owner), "r");
    CHECK(f != NULL, "fopen for reading");
    if (!f)
        return;
    char line[128], want[128];
    long text = 0;
    for (int i = 0; i < LINES; i++) {
        snprintf(want, sizeof want, "rank %d line %d of %d\n", owner, i, LINES);
        text += (long)strlen(want);
        CHECK(fgets(line, sizeof line, f) && strcmp(line, want) == 0, "fgets line %d", i);
    }
    CHECK(ftell(f) == text, "ftell after the text");
    unsigned char *buf = malloc(BLOCK);
    CHECK(fread(buf, 1, BLOCK, f) == BLOCK && matches(buf, BLOCK, owner, 2, 0), "fread");
    CHECK(fgetc(f) == EOF && feof(f), "end of file");
    CHECK(fseek(f, text + 1000, SEEK_SET) == 0 && fread(buf, 1, 10, f) == 10 && matches(buf, 10, owner, 2, 1000), "fseek and fread");
    CHECK(fclose(f) == 0, "fclose");
    free(buf);
}

/* Every file of every rank is listed once. */
static void list(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir");
    if (!d)
        return;
    int posix = 0, stdio = 0, dots = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            dots++;
        else if (strncmp(e->d_name, "posix.", 6) == 0)
            posix += e->d_type == DT_REG;
        else if (strncmp(e->d_name, "stdio.", 6) == 0)
            stdio += e->d_type == DT_REG;
    }
    CHECK(errno == 0, "readdir ended with an error");
    CHECK(posix == g_size && stdio == g_size && dots == 2, "listing: %d posix, %d stdio, %d dots", posix, stdio, dots);
    CHECK(dirfd(d) >= 0, "dirfd");
    rewinddir(d);
    CHECK(readdir(d) != NULL, "readdir after rewinddir");
    CHECK(closedir(d) == 0, "closedir");
}

/* Relative paths after chdir into the mount, getcwd, and back out. */
static void relative(const char *dir)
{
    char cwd[1024], name[64];
    char *before = getcwd(NULL, 0);
    CHECK(chdir(dir) == 0, "chdir into the directory");
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0, "getcwd: %s", cwd);
    snprintf(name, sizeof name, "rel.%d", g_rank);
    int fd = open(name, O_CREAT | O_RDWR, 0600);
    CHECK(fd >= 0, "open of a relative path");
    CHECK(write(fd, "relative", 8) == 8, "write");
    CHECK(close(fd) == 0, "close");
    struct stat st;
    CHECK(stat(path_of(dir, "rel", g_rank), &st) == 0 && st.st_size == 8, "the relative file under its full path");
    CHECK(access(name, R_OK | W_OK) == 0, "access");
    CHECK(unlink(name) == 0, "unlink of a relative path");
    CHECK(stat("..", &st) == 0 && S_ISDIR(st.st_mode), "stat of ..");
    CHECK(before && chdir(before) == 0, "chdir back out");
    CHECK(getcwd(cwd, sizeof cwd) && before && strcmp(cwd, before) == 0, "getcwd after chdir back");
    free(before);
}

/* dup, dup2, fcntl: shared offsets, flags, no record locks. */
static void descriptors(const char *dir)
{
    int fd = open(path_of(dir, "dup", g_rank), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "open");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "F_GETFL");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_GETFD of an O_CLOEXEC descriptor");
    int copy = dup(fd);
    CHECK(copy >= 0 && copy != fd, "dup");
    CHECK(write(fd, "abcd", 4) == 4 && write(copy, "efgh", 4) == 4, "writes through both");
    CHECK(lseek(copy, 0, SEEK_CUR) == 8, "the offset is shared");
    int high = fcntl(fd, F_DUPFD, 100);
    CHECK(high >= 100, "F_DUPFD");
    int local = open("/dev/null", O_RDONLY);
    CHECK(local >= 0 && local != fd && local != copy, "a kernel descriptor never collides with a BenchFS one");
    CHECK(dup2(copy, local) == local, "dup2 onto a kernel descriptor");
    char buf[8];
    CHECK(pread(local, buf, 8, 0) == 8 && memcmp(buf, "abcdefgh", 8) == 0, "read through the dup2 copy");
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    errno = 0;
    CHECK(fcntl(fd, F_SETLK, &lock) == -1 && errno == ENOLCK, "record locks: want ENOLCK");
    CHECK(close(fd) == 0 && close(copy) == 0 && close(high) == 0, "close");
    CHECK(pread(local, buf, 8, 0) == 8, "the last copy still reads");
    CHECK(close(local) == 0, "close the last copy");
    FILE *f = fdopen(open(path_of(dir, "dup", g_rank), O_RDONLY), "r");
    CHECK(f && fgets(buf, 5, f) && strcmp(buf, "abcd") == 0, "fdopen");
    if (f)
        fclose(f);
}

/* Names: rename, truncate, ftruncate, mkdir/rmdir, statvfs, errors. */
static void names(const char *dir)
{
    char *from = path_of(dir, "dup", g_rank), *to = path_of(dir, "moved", g_rank);
    CHECK(rename(from, to) == 0, "rename");
    struct stat st;
    CHECK(stat(from, &st) == -1 && errno == ENOENT, "the old name is gone");
    CHECK(truncate(to, 3) == 0 && stat(to, &st) == 0 && st.st_size == 3, "truncate");
    int fd = open(to, O_WRONLY);
    CHECK(fd >= 0 && ftruncate(fd, 100000) == 0 && fstat(fd, &st) == 0 && st.st_size == 100000, "ftruncate");
    close(fd);
    CHECK(unlink(to) == 0, "unlink");
    char *sub = path_of(dir, "sub", g_rank);
    CHECK(mkdir(sub, 0755) == 0, "mkdir");
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "stat of a directory");
    errno = 0;
    CHECK(mkdir(sub, 0755) == -1 && errno == EEXIST, "mkdir again: want EEXIST");
    CHECK(remove(sub) == 0, "remove of a directory");
    errno = 0;
    CHECK(open(path_of(dir, "missing", g_rank), O_RDONLY) == -1 && errno == ENOENT, "open of a missing file: want ENOENT");
    errno = 0;
    CHECK(rename(path_of(dir, "posix", g_rank), "/tmp/benchfs-cross") == -1 && errno == EXDEV, "rename out of the mount: want EXDEV");
    char spelled[600], *resolved;
    snprintf(spelled, sizeof spelled, "%s/./sub/../posix.%d", dir, g_rank);
    resolved = realpath(spelled, NULL);
    CHECK(resolved && strcmp(resolved, path_of(dir, "posix", g_rank)) == 0, "realpath: %s", resolved ? resolved : "NULL");
    free(resolved);
    struct statvfs vfs;
    CHECK(statvfs(dir, &vfs) == 0 && vfs.f_blocks > 0, "statvfs");
}

/* The same kind of I/O on a system directory, in the middle of it all. */
static void local_files(const char *local)
{
    char *p = path_of(local, "local", g_rank);
    FILE *f = fopen(p, "w");
    CHECK(f && fprintf(f, "local %d\n", g_rank) > 0 && fclose(f) == 0, "stdio on a system file");
    int fd = open(p, O_RDONLY);
    char buf[32] = {0};
    CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "local", 5) == 0, "read of a system file");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_dev != 0xbf5, "a system file's own stat");
    close(fd);
    CHECK(unlink(p) == 0, "unlink of a system file");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    check_start("posix_stdio");
    if (argc != 3) {
        if (g_rank == 0)
            fprintf(stderr, "usage: %s DIR LOCAL_DIR\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *dir = argv[1], *local = argv[2];
    if (g_rank == 0)
        CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    MPI_Barrier(MPI_COMM_WORLD);
    write_posix(dir);
    local_files(local);
    write_stdio(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    int next = (g_rank + 1) % g_size;
    read_posix(dir, next);
    read_stdio(dir, next);
    list(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    relative(dir);
    descriptors(dir);
    names(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(unlink(path_of(dir, "posix", g_rank)) == 0 && remove(path_of(dir, "stdio", g_rank)) == 0, "unlink and remove");
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0)
        CHECK(rmdir(dir) == 0, "rmdir of the emptied directory");
    check_report();
    MPI_Finalize();
    return 0;
}
