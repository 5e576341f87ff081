/*
 * A directory rename happens whole or not at all. Renaming a tree to a
 * longer name that would push its deepest paths past PATH_MAX (4095 bytes)
 * fails with ENAMETOOLONG and leaves every file where it was, readable and
 * listed; a rename to a name that fits then moves every file.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEVELS 17
#define PER_LEVEL 2
#define NAME_LEN 250

static char g_base[64];

/* The path of level `level` (0 = the tree's root) below `root`. */
static void level_path(char *out, size_t cap, const char *root, int level)
{
    char name[NAME_LEN + 1];
    memset(name, 'd', NAME_LEN);
    name[NAME_LEN] = '\0';
    size_t n = (size_t)snprintf(out, cap, "%s", root);
    for (int l = 0; l < level && n < cap; l++)
        n += (size_t)snprintf(out + n, cap - n, "/%s", name);
}

static void file_path(char *out, size_t cap, const char *root, int level, int i)
{
    char dir[4200];
    level_path(dir, sizeof dir, root, level);
    snprintf(out, cap, "%s/f%d", dir, i);
}

static void build(const char *root)
{
    char path[4200];
    CHECK_RET(benchfs_mkdir(root, 0755), 0, "mkdir tree root");
    for (int level = 1; level < LEVELS; level++) {
        level_path(path, sizeof path, root, level);
        CHECK_RET(benchfs_mkdir(path, 0755), 0, "mkdir level");
    }
    for (int level = 1; level < LEVELS; level++) {
        for (int i = 0; i < PER_LEVEL; i++) {
            file_path(path, sizeof path, root, level, i);
            unsigned char buf[64];
            pattern_fill(buf, (uint64_t)(level * 10 + i), 0, sizeof buf);
            int fd = benchfs_open(path, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0, "create level %d file %d (%zu bytes) failed (errno %d)", level, i,
                  strlen(path), errno);
            if (fd >= 0) {
                CHECK_RET(benchfs_pwrite(fd, buf, sizeof buf, 0), 64, "pwrite");
                CHECK_RET(benchfs_close(fd), 0, "close");
            }
        }
    }
}

/* Every file of the tree under `root` is there with its data. */
static void verify(const char *root, const char *when)
{
    char path[4200];
    for (int level = 1; level < LEVELS; level++) {
        for (int i = 0; i < PER_LEVEL; i++) {
            file_path(path, sizeof path, root, level, i);
            unsigned char buf[64];
            int fd = benchfs_open(path, O_RDONLY, 0);
            CHECK(fd >= 0, "%s: level %d file %d is gone (errno %d)", when, level, i, errno);
            if (fd < 0)
                continue;
            CHECK_RET(benchfs_pread(fd, buf, sizeof buf, 0), 64, "pread");
            verify_pattern(buf, (uint64_t)(level * 10 + i), 0, sizeof buf, when);
            CHECK_RET(benchfs_close(fd), 0, "close");
        }
    }
}

int main(int argc, char **argv)
{
    harness_init(&argc, &argv, "rename_limits");
    harness_benchfs_init();
    char root[128], too_long[512], fits[128];
    snprintf(g_base, sizeof g_base, "/rl_r%d", g_rank);
    snprintf(root, sizeof root, "%s/a", g_base);
    CHECK_RET(benchfs_mkdir(g_base, 0755), 0, "mkdir base");
    build(root);
    verify(root, "after build");

    char longname[NAME_LEN + 1];
    memset(longname, 'b', NAME_LEN);
    longname[NAME_LEN] = '\0';
    snprintf(too_long, sizeof too_long, "%s/%s", g_base, longname);
    CHECK_ERR(benchfs_rename(root, too_long), ENAMETOOLONG, "rename to a name too long for the tree");
    verify(root, "after the refused rename");
    struct stat st;
    CHECK_ERR(benchfs_stat(too_long, &st), ENOENT, "nothing at the refused name");
    CHECK(count_entries(g_base) == 3, "base lists %d entries, want . .. a", count_entries(g_base));
    CHECK_ERR(benchfs_rmdir(g_base), ENOTEMPTY, "rmdir of the base still refused");

    snprintf(fits, sizeof fits, "%s/c", g_base);
    CHECK_RET(benchfs_rename(root, fits), 0, "rename to a name that fits");
    verify(fits, "after the rename");
    CHECK_ERR(benchfs_stat(root, &st), ENOENT, "old name gone");
    return harness_finish(1);
}
