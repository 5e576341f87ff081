/*
 * What a path's spelling demands beyond its normal form, as a kernel's
 * component-by-component walk would: a trailing "/", "/." or "/.." after a
 * regular file is ENOTDIR; a ".." out of a file or of a missing directory
 * fails; a name spelled as a directory cannot be created as a file; and
 * directories spelled that way work as usual.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64], g_file[96];

static const char *at(const char *suffix)
{
    static char buf[4][160];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, sizeof buf[0], "%s%s", g_dir, suffix);
    return out;
}

static void file_spelled_as_directory(void)
{
    struct stat st;
    const char *spellings[] = {"/f/", "/f/.", "/f/..", "/f//"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        const char *p = at(spellings[i]);
        char what[200];
        snprintf(what, sizeof what, "stat(%s)", p);
        CHECK_ERR(benchfs_stat(p, &st), ENOTDIR, what);
        snprintf(what, sizeof what, "open(%s, O_RDONLY)", p);
        CHECK_ERR(benchfs_open(p, O_RDONLY, 0), ENOTDIR, what);
        snprintf(what, sizeof what, "open(%s, O_CREAT)", p);
        CHECK_ERR(benchfs_open(p, O_CREAT | O_WRONLY, 0644), ENOTDIR, what);
        snprintf(what, sizeof what, "unlink(%s)", p);
        CHECK_ERR(benchfs_unlink(p), ENOTDIR, what);
        snprintf(what, sizeof what, "rename(%s, ...)", p);
        CHECK_ERR(benchfs_rename(p, at("/g")), ENOTDIR, what);
        snprintf(what, sizeof what, "truncate(%s)", p);
        CHECK_ERR(benchfs_truncate(p, 0), ENOTDIR, what);
        snprintf(what, sizeof what, "access(%s)", p);
        CHECK_ERR(benchfs_access(p, F_OK), ENOTDIR, what);
    }
    CHECK_ERR(benchfs_rename(g_file, at("/g/")), ENOTDIR, "rename(file, name/)");
    CHECK_ERR(benchfs_stat(at("/f/../f"), &st), ENOTDIR, "stat(/f/../f)");
    CHECK_ERR(benchfs_stat(at("/missing/../f"), &st), ENOENT, "stat(/missing/../f)");
    CHECK_ERR(benchfs_open(at("/new/"), O_CREAT | O_WRONLY, 0644), EISDIR, "open(new/, O_CREAT)");
    CHECK_ERR(benchfs_stat(at("/new"), &st), ENOENT, "nothing created by open(new/, O_CREAT)");
    /* The file is untouched by all of the above. */
    CHECK_RET(benchfs_stat(g_file, &st), 0, "stat of the file");
    CHECK(S_ISREG(st.st_mode) && st.st_size == 5, "file changed: mode %o size %lld", st.st_mode,
          (long long)st.st_size);
}

static void directories_spelled_as_directories(void)
{
    struct stat st;
    CHECK_RET(benchfs_stat(at("/"), &st), 0, "stat(dir/)");
    CHECK(S_ISDIR(st.st_mode), "dir/ is not a directory");
    CHECK_RET(benchfs_stat(at("/."), &st), 0, "stat(dir/.)");
    CHECK_RET(benchfs_stat(at("/sub/.."), &st), 0, "stat(dir/sub/..)");
    CHECK_RET(benchfs_mkdir(at("/made/"), 0755), 0, "mkdir(made/)");
    CHECK_RET(benchfs_stat(at("/made"), &st), 0, "stat(made)");
    CHECK(S_ISDIR(st.st_mode), "made is not a directory");
    int fd = benchfs_open(at("/made/"), O_RDONLY, 0);
    CHECK(fd >= 0, "open(made/, O_RDONLY) failed (errno %d)", errno);
    if (fd >= 0)
        CHECK_RET(benchfs_close(fd), 0, "close(made/)");
    CHECK_ERR(benchfs_rmdir(at("/made/.")), EINVAL, "rmdir(made/.)");
    CHECK_ERR(benchfs_rmdir(at("/made/..")), ENOTEMPTY, "rmdir(made/..)");
    CHECK_RET(benchfs_rename(at("/made/"), at("/moved/")), 0, "rename(made/, moved/)");
    CHECK_RET(benchfs_rmdir(at("/moved/")), 0, "rmdir(moved/)");
    benchfs_dir_t *d = benchfs_opendir(at("/sub/../"));
    CHECK(d != NULL, "opendir(dir/sub/../) failed (errno %d)", errno);
    if (d != NULL)
        CHECK_RET(benchfs_closedir(d), 0, "closedir");
    CHECK(benchfs_opendir(at("/f/")) == NULL && errno == ENOTDIR, "opendir(f/): errno %d", errno);
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "path_spelling");
    harness_benchfs_init();
    snprintf(g_dir, sizeof g_dir, "/spell_r%d", g_rank);
    snprintf(g_file, sizeof g_file, "%s/f", g_dir);
    CHECK_RET(benchfs_mkdir(g_dir, 0755), 0, "mkdir");
    CHECK_RET(benchfs_mkdir(at("/sub"), 0755), 0, "mkdir sub");
    int fd = benchfs_open(g_file, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s failed (errno %d)", g_file, errno);
    if (fd >= 0) {
        CHECK_RET(benchfs_pwrite(fd, "hello", 5, 0), 5, "pwrite");
        CHECK_RET(benchfs_close(fd), 0, "close");
    }
    file_spelled_as_directory();
    directories_spelled_as_directories();
    return harness_finish(1);
}
