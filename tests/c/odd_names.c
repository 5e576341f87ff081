/*
 * Names are bytes, as in POSIX: only NUL and '/' are special. Names that
 * are not UTF-8 (a 0xff byte, Latin-1 "caf\xe9", the broken sequence
 * "\xc3\x28") and names that are UTF-8 beyond ASCII work in every call, and
 * readdir returns their bytes unchanged, each name exactly once.
 *
 * Every rank makes a tree of such names in its own directory: a file for
 * each name, and a directory for each name holding a file of that name.
 * Every rank then stats, reads and lists every rank's tree (the records
 * live on the ranks that own their paths, so most of them are reached
 * through the wire); each rank renames its entries to other odd names and
 * everyone checks again; then each rank removes its tree.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>

enum { NNAMES = 5, MAX_LISTED = 16 };

/* The names entries get, and the names they are renamed to. */
static const char *const g_names[NNAMES] = {
    "a\xff" "b", "caf\xe9", "\xc3\x28", "\xe6\x97\xa5\xe6\x9c\xac", "\x80\x01\x7f\xfe",
};
static const char *const g_renamed[NNAMES] = {
    "\xff\xff", "na\xefve", "\xe2\x28\xa1", "\xe5\x90\x8d\xe5\x89\x8d", "\xfe.\xff",
};

/* A name as printable text for messages: bytes outside ASCII as \xNN. */
static const char *shown(const char *name)
{
    static char buf[8][4 * 300];
    static int next;
    char *out = buf[next++ % 8];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && n + 5 < sizeof buf[0]; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, sizeof buf[0] - n, "\\x%02x", *p);
    }
    out[n] = 0;
    return out;
}

static void rank_dir(char *buf, size_t n, int owner)
{
    snprintf(buf, n, "/odd_r%d", owner);
}

static uint64_t file_id(int owner, int i, int nested)
{
    return 9000 + (uint64_t)owner * 100 + (uint64_t)i * 2 + (uint64_t)nested;
}

/* Longer than a small chunk (64 KiB), so the data of a file spreads over ranks. */
static uint64_t file_len(int i, int nested)
{
    return nested ? 100 + (uint64_t)i : 70000 + 1000 * (uint64_t)i;
}

static void create_file(const char *path, uint64_t id, uint64_t len)
{
    unsigned char *buf = xmalloc(len);
    pattern_fill(buf, id, 0, len);
    int fd = benchfs_open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s (errno %d: %s)", shown(path), errno, strerror(errno));
    if (fd >= 0) {
        pwrite_all(fd, buf, len, 0, path);
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    free(buf);
}

/* path is a file of len bytes of pattern id; returns its inode number. */
static ino_t verify_file(const char *path, uint64_t id, uint64_t len)
{
    struct stat st;
    int r = benchfs_stat(path, &st);
    CHECK(r == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len,
          "stat %s: ret %d (errno %d) size %lld, want a file of %" PRIu64 " bytes", shown(path),
          r, r == 0 ? 0 : errno, r == 0 ? (long long)st.st_size : -1LL, len);
    int fd = benchfs_open(path, O_RDONLY, 0);
    CHECK(fd >= 0, "open %s (errno %d: %s)", shown(path), errno, strerror(errno));
    if (fd < 0)
        return 0;
    unsigned char *buf = xmalloc(len + 64);
    long long got = pread_all(fd, buf, len + 64, 0, shown(path));
    CHECK(got == (long long)len, "%s: read %lld bytes, want %" PRIu64, shown(path), got, len);
    if (got == (long long)len)
        verify_pattern(buf, id, 0, (size_t)len, shown(path));
    free(buf);
    CHECK_RET(benchfs_close(fd), 0, "close");
    return r == 0 ? st.st_ino : 0;
}

static void expect_dir(const char *path)
{
    struct stat st;
    int r = benchfs_stat(path, &st);
    CHECK(r == 0 && S_ISDIR(st.st_mode), "stat %s: ret %d (errno %d), want a directory",
          shown(path), r, r == 0 ? 0 : errno);
}

static void expect_missing(const char *path)
{
    struct stat st;
    int r = benchfs_stat(path, &st);
    CHECK(r == -1 && errno == ENOENT, "stat %s: ret %d errno %d, want ENOENT", shown(path), r,
          r == -1 ? errno : 0);
}

/*
 * The listing of dir is ".", "..", then exactly the n names of want in any
 * order, each once and byte for byte.
 */
static void expect_listing(const char *dir, const char *const *want, int n)
{
    int seen[MAX_LISTED] = {0};
    int dots = 0;
    benchfs_dir_t *d = benchfs_opendir(dir);
    CHECK(d != NULL, "opendir %s (errno %d: %s)", shown(dir), errno, strerror(errno));
    if (d == NULL)
        return;
    struct dirent *e;
    errno = 0;
    while ((e = benchfs_readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            dots++;
            continue;
        }
        int found = -1;
        for (int i = 0; i < n; i++)
            if (strcmp(e->d_name, want[i]) == 0)
                found = i;
        CHECK(found >= 0, "readdir %s: unexpected name %s", shown(dir), shown(e->d_name));
        if (found >= 0)
            seen[found]++;
    }
    CHECK(errno == 0, "readdir %s ended with errno %d (%s)", shown(dir), errno, strerror(errno));
    CHECK_RET(benchfs_closedir(d), 0, "closedir");
    CHECK(dots == 2, "readdir %s: %d of . and ..", shown(dir), dots);
    for (int i = 0; i < n; i++)
        CHECK(seen[i] == 1, "readdir %s: %s listed %d times", shown(dir), shown(want[i]), seen[i]);
}

static const char *at(const char *dir, const char *a, const char *b)
{
    static char buf[8][1024];
    static int next;
    char *out = buf[next++ % 8];
    if (b)
        snprintf(out, sizeof buf[0], "%s/%s/%s", dir, a, b);
    else
        snprintf(out, sizeof buf[0], "%s/%s", dir, a);
    return out;
}

static void make_tree(void)
{
    char dir[64];
    rank_dir(dir, sizeof dir, g_rank);
    CHECK_RET(benchfs_mkdir(dir, 0755), 0, "mkdir rank directory");
    CHECK_RET(benchfs_mkdir(at(dir, "dirs", NULL), 0755), 0, "mkdir dirs");
    for (int i = 0; i < NNAMES; i++) {
        create_file(at(dir, g_names[i], NULL), file_id(g_rank, i, 0), file_len(i, 0));
        const char *sub = at(dir, "dirs", g_names[i]);
        CHECK_RET(benchfs_mkdir(sub, 0755), 0, shown(sub));
        create_file(at(sub, g_names[i], NULL), file_id(g_rank, i, 1), file_len(i, 1));
    }
}

/* Everything of owner's tree, under the names in names. */
static void check_tree(int owner, const char *const *names)
{
    char dir[64];
    const char *top[NNAMES + 1];
    rank_dir(dir, sizeof dir, owner);
    for (int i = 0; i < NNAMES; i++) {
        verify_file(at(dir, names[i], NULL), file_id(owner, i, 0), file_len(i, 0));
        const char *sub = at(dir, "dirs", names[i]);
        expect_dir(sub);
        verify_file(at(sub, names[i], NULL), file_id(owner, i, 1), file_len(i, 1));
        /* ".." out of an odd name goes up one component, as for any name. */
        char up[1024];
        snprintf(up, sizeof up, "%s/../%s/%s", sub, names[i], names[i]);
        verify_file(up, file_id(owner, i, 1), file_len(i, 1));
        expect_listing(sub, &names[i], 1);
        top[i] = names[i];
    }
    top[NNAMES] = "dirs";
    expect_listing(dir, top, NNAMES + 1);
    expect_listing(at(dir, "dirs", NULL), names, NNAMES);
}

/* Renames this rank's files and directories to the other odd names. */
static void rename_tree(void)
{
    char dir[64];
    rank_dir(dir, sizeof dir, g_rank);
    for (int i = 0; i < NNAMES; i++) {
        const char *from = at(dir, g_names[i], NULL), *to = at(dir, g_renamed[i], NULL);
        CHECK(benchfs_rename(from, to) == 0, "rename %s -> %s (errno %d: %s)", shown(from),
              shown(to), errno, strerror(errno));
        expect_missing(from);
        /* The nested file first, so that the directory moves with an odd name inside. */
        const char *sub = at(dir, "dirs", g_names[i]);
        from = at(sub, g_names[i], NULL);
        to = at(sub, g_renamed[i], NULL);
        CHECK(benchfs_rename(from, to) == 0, "rename %s -> %s (errno %d: %s)", shown(from),
              shown(to), errno, strerror(errno));
        to = at(dir, "dirs", g_renamed[i]);
        CHECK(benchfs_rename(sub, to) == 0, "rename %s -> %s (errno %d: %s)", shown(sub),
              shown(to), errno, strerror(errno));
        expect_missing(sub);
    }
}

static void remove_tree(void)
{
    char dir[64];
    rank_dir(dir, sizeof dir, g_rank);
    for (int i = 0; i < NNAMES; i++) {
        const char *file = at(dir, g_renamed[i], NULL);
        CHECK_RET(benchfs_unlink(file), 0, shown(file));
        expect_missing(file);
        const char *sub = at(dir, "dirs", g_renamed[i]);
        CHECK_ERR(benchfs_rmdir(sub), ENOTEMPTY, "rmdir of an odd directory with an entry");
        const char *nested = at(sub, g_renamed[i], NULL);
        CHECK_RET(benchfs_unlink(nested), 0, shown(nested));
        CHECK_RET(benchfs_rmdir(sub), 0, shown(sub));
        expect_missing(sub);
    }
    expect_listing(at(dir, "dirs", NULL), NULL, 0);
    CHECK_RET(benchfs_rmdir(at(dir, "dirs", NULL)), 0, "rmdir dirs");
    CHECK_RET(benchfs_rmdir(dir), 0, "rmdir rank directory");
}

/* Limits count bytes: a 255-byte name of 0xff works, one of 256 bytes does not. */
static void limits(void)
{
    char name[300], path[320];
    struct stat st;
    memset(name, 0xff, 255);
    name[255] = 0;
    snprintf(path, sizeof path, "/odd_r%d/%s", g_rank, name);
    int fd = benchfs_open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0, "create a 255-byte name of 0xff (errno %d: %s)", errno, strerror(errno));
    if (fd >= 0) {
        CHECK_RET(benchfs_close(fd), 0, "close");
        CHECK_RET(benchfs_stat(path, &st), 0, "stat a 255-byte name of 0xff");
        CHECK_RET(benchfs_unlink(path), 0, "unlink a 255-byte name of 0xff");
    }
    memset(name, 0xff, 256);
    name[256] = 0;
    snprintf(path, sizeof path, "/odd_r%d/%s", g_rank, name);
    CHECK_ERR(benchfs_open(path, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG, "create a 256-byte name");
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "odd_names");
    harness_benchfs_init();
    make_tree();
    limits();
    MPI_Barrier(MPI_COMM_WORLD);
    for (int owner = 0; owner < g_nranks; owner++)
        check_tree(owner, g_names);
    MPI_Barrier(MPI_COMM_WORLD);
    rename_tree();
    MPI_Barrier(MPI_COMM_WORLD);
    for (int owner = 0; owner < g_nranks; owner++) {
        check_tree(owner, g_renamed);
        char dir[64];
        rank_dir(dir, sizeof dir, owner);
        for (int i = 0; i < NNAMES; i++) {
            expect_missing(at(dir, g_names[i], NULL));
            expect_missing(at(dir, "dirs", g_names[i]));
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    remove_tree();
    return harness_finish(1);
}
