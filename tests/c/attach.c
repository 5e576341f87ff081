/*
 * A separate MPI job attached to a running BenchFS (examples/serve_tree.rs)
 * through its contact file: bad contact files fail cleanly, then every file
 * the serving job wrote reads back byte for byte, a file written by the
 * attached job reads back too, and a create right before the detach has
 * stamped its directory's times by the time the detach returns.
 *
 * usage: attach CONTACT_FILE SERVER_RANKS FILES_PER_DIR SCRATCH_DIR
 */
#include <stdio.h>

#include "harness.h"

static unsigned char tree_byte(unsigned rank, unsigned i, size_t offset)
{
    return (unsigned char)((rank * 31u + i * 7u + offset) % 251u);
}

static void check_bad_contact_files(const char *scratch)
{
    char path[4096];
    FILE *f;

    CHECK_ERR(benchfs_attach(MPI_COMM_WORLD, NULL), EFAULT, "attach with a NULL contact file");
    snprintf(path, sizeof path, "%s/no-such-contact", scratch);
    CHECK_ERR(benchfs_attach(MPI_COMM_WORLD, path), ENOENT, "attach with a missing contact file");
    snprintf(path, sizeof path, "%s/garbage-contact.%d", scratch, g_rank);
    f = fopen(path, "w");
    CHECK(f != NULL, "cannot create %s", path);
    if (f) {
        fputs("benchfs-contact 1\nchunk_size 65536\nranks 3\nzz\n", f);
        fclose(f);
    }
    CHECK_ERR(benchfs_attach(MPI_COMM_WORLD, path), EINVAL, "attach with a damaged contact file");
    remove(path);

    /* Well-formed files that name more ranks than a job may have, or a chunk size that no job
     * may use: refused at once, never passed on to placement. */
    static const struct {
        unsigned long ranks;
        unsigned long chunk;
        const char *what;
    } forged[] = {
        {1ul << 24, 65536, "attach to 2^24 ranks"},
        {2, 1, "attach with a 1-byte chunk size"},
        {2, 1ul << 40, "attach with a 1 TiB chunk size"},
    };
    snprintf(path, sizeof path, "%s/forged-contact", scratch);
    for (unsigned k = 0; k < sizeof forged / sizeof forged[0]; k++) {
        if (g_rank == 0) {
            f = fopen(path, "w");
            CHECK(f != NULL, "cannot create %s", path);
            if (f) {
                fprintf(f, "benchfs-contact 2\nchunk_size %lu\nclient_key %032d\nranks %lu\n", forged[k].chunk, 0,
                        forged[k].ranks);
                for (unsigned long r = 0; r < forged[k].ranks; r++)
                    fputs("00\n", f);
                fclose(f);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_ERR(benchfs_attach(MPI_COMM_WORLD, path), EINVAL, forged[k].what);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (g_rank == 0)
        remove(path);
    CHECK_ERR(benchfs_stat("/tree", &(struct stat){0}), ENOTCONN, "stat after failed attaches");
}

static void check_tree(unsigned server_ranks, unsigned files)
{
    static const char *dirs[] = {"/tree/a", "/tree/b", "/tree/a/deep"};
    unsigned char buf[4096];
    for (unsigned d = 0; d < 3; d++) {
        for (unsigned r = 0; r < server_ranks; r++) {
            for (unsigned i = 0; i < files; i++) {
                char path[256];
                struct stat st;
                size_t want = i % 2 == 1 ? 3901 : 100;
                long long got;
                int fd, bad = 0;
                if ((i + r + d) % (unsigned)g_nranks != (unsigned)g_rank)
                    continue;
                snprintf(path, sizeof path, "%s/f.r%u.%02u", dirs[d], r, i);
                CHECK_RET(benchfs_stat(path, &st), 0, path);
                CHECK(st.st_size == (off_t)want, "%s: size %lld, want %zu", path,
                      (long long)st.st_size, want);
                fd = benchfs_open(path, O_RDONLY, 0);
                CHECK(fd >= 0, "open %s: errno %d", path, errno);
                if (fd < 0)
                    continue;
                got = benchfs_pread(fd, buf, sizeof buf, 0);
                CHECK(got == (long long)want, "%s: read %lld bytes, want %zu", path, got, want);
                for (size_t off = 0; got > 0 && off < (size_t)got; off++)
                    bad += buf[off] != tree_byte(r, i, off);
                CHECK(bad == 0, "%s: %d bytes differ from what the serving job wrote", path, bad);
                CHECK_RET(benchfs_close(fd), 0, path);
            }
        }
    }
}

static void check_own_file(void)
{
    char path[64];
    unsigned char out[10000], in[10000];
    int fd;
    snprintf(path, sizeof path, "/tree/b/attached.%d", g_rank);
    pattern_fill(out, 9000 + (uint64_t)g_rank, 0, sizeof out);
    fd = benchfs_open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK(fd >= 0, "create %s: errno %d", path, errno);
    if (fd < 0)
        return;
    CHECK(pwrite_all(fd, out, sizeof out, 0, path) == 0, "write %s", path);
    CHECK(pread_all(fd, in, sizeof in, 0, path) == (long long)sizeof in, "read %s", path);
    CHECK(memcmp(in, out, sizeof in) == 0, "%s reads back different bytes", path);
    CHECK_RET(benchfs_close(fd), 0, path);
    CHECK_RET(benchfs_unlink(path), 0, path);
}

/* A create in a directory that a server rank owns stamps the directory's times after the call
 * returns; a detach right after it still leaves them stamped (benchfs_finalize sends what is
 * pending), as a second attach sees. */
static void check_stamp_at_detach(const char *contact)
{
    char path[64];
    struct stat before, after;
    int fd;
    snprintf(path, sizeof path, "/tree/b/stamped.%d", g_rank);
    CHECK_RET(benchfs_stat("/tree/b", &before), 0, "stat /tree/b before");
    MPI_Barrier(MPI_COMM_WORLD);
    fd = benchfs_open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0, "create %s: errno %d", path, errno);
    if (fd >= 0)
        CHECK_RET(benchfs_close(fd), 0, path);
    CHECK_RET(benchfs_finalize(), 0, "detach right after a create");
    if (benchfs_attach(MPI_COMM_WORLD, contact) != 0) {
        fprintf(stderr, "[attach rank %d] FAIL: attach again: errno %d (%s)\n", g_rank, errno,
                strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    CHECK_RET(benchfs_stat("/tree/b", &after), 0, "stat /tree/b after attaching again");
    CHECK(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
              (after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
               after.st_mtim.tv_nsec > before.st_mtim.tv_nsec),
          "/tree/b: mtime %lld.%09ld not after %lld.%09ld: the create's stamp was lost at detach",
          (long long)after.st_mtim.tv_sec, after.st_mtim.tv_nsec, (long long)before.st_mtim.tv_sec,
          before.st_mtim.tv_nsec);
    CHECK_RET(benchfs_unlink(path), 0, path);
}

int main(int argc, char **argv)
{
    const char *contact, *scratch;
    unsigned server_ranks, files;
    harness_init(&argc, &argv, "attach");
    if (argc != 5) {
        fprintf(stderr, "usage: attach CONTACT_FILE SERVER_RANKS FILES_PER_DIR SCRATCH_DIR\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    contact = argv[1];
    server_ranks = (unsigned)atoi(argv[2]);
    files = (unsigned)atoi(argv[3]);
    scratch = argv[4];

    check_bad_contact_files(scratch);
    if (benchfs_attach(MPI_COMM_WORLD, contact) != 0) {
        fprintf(stderr, "[attach rank %d] FAIL: benchfs_attach(%s): errno %d (%s)\n", g_rank,
                contact, errno, strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    check_tree(server_ranks, files);
    check_own_file();
    check_stamp_at_detach(contact);
    return harness_finish(1);
}
