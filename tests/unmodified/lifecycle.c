/*
 * The mount outside the life of the job: before MPI_Init, in a forked child and after
 * MPI_Finalize, calls on paths under the mount (and on a BenchFS descriptor a child inherited)
 * fail with ENOTCONN, and nothing reaches the local file system.
 *
 *   lifecycle DIR [LOCAL_DIR]   (LOCAL_DIR is not used)
 *
 * Ends with "lifecycle: P passed, F failed" from rank 0; a rank whose check after MPI_Finalize
 * fails also exits with status 1.
 */
#include "check.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char path[600];
    snprintf(path, sizeof path, "%s/early", argv[1]);
    errno = 0;
    int early = open(path, O_CREAT | O_WRONLY, 0644);
    int early_errno = errno;

    MPI_Init(&argc, &argv);
    check_start("lifecycle");
    CHECK(early == -1 && early_errno == ENOTCONN, "open before MPI_Init: fd %d, errno %d", early, early_errno);

    snprintf(path, sizeof path, "%s.%d", argv[1], g_rank);
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && write(fd, "data", 4) == 4, "open and write %s", path);
    pid_t child = fork();
    if (child == 0) {
        /* The child reports through its exit status only. */
        char buf[4];
        errno = 0;
        int failures = !(open(path, O_RDONLY) == -1 && errno == ENOTCONN);
        errno = 0;
        failures += !(pread(fd, buf, 4, 0) == -1 && errno == ENOTCONN);
        _exit(failures);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "in a forked child, calls on the mount fail with ENOTCONN (status %d)", status);
    char buf[4] = {0};
    CHECK(pread(fd, buf, 4, 0) == 4 && memcmp(buf, "data", 4) == 0, "the parent still reads its file");
    CHECK(close(fd) == 0 && unlink(path) == 0, "close and unlink");
    check_report();
    MPI_Finalize();

    errno = 0;
    struct stat st;
    if (!(stat(path, &st) == -1 && errno == ENOTCONN)) {
        fprintf(stderr, "[lifecycle rank %d] FAIL: stat after MPI_Finalize: errno %d\n", g_rank, errno);
        return 1;
    }
    return 0;
}
