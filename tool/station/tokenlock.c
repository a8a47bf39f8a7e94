/*
 * One process at a time per token on a station: a flock on DIR/<serial hex>.
 * The local-CA path keeps the lock files in the CA directory (everyone who
 * issues from that CA sees them); CMP mode has no CA directory, so the files
 * live in a station-local directory instead.
 */
#include "station/station.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int tool_token_lock(const char *dir, const unsigned char *serial, size_t len)
{
    char path[PATH_MAX + 200];
    size_t off;
    int fd;

    tool_return_val_if_fail(dir != NULL && serial != NULL && len > 0, -1);
    off = (size_t)snprintf(path, sizeof path, "%s", dir);
    if (off >= sizeof path - 3) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* its failure is the reason (a read-only or full CA disk), not the
     * ENOENT of the open below */
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    off += (size_t)snprintf(path + off, sizeof path - off, "/");
    p11c_hex_encode(serial, len, path + off, sizeof path - off);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    /* Never waits: a batch holds its tokens' locks until it ends, so two
     * waiting batches could hold each other's tokens for ever. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return e == EWOULDBLOCK ? -2 : -1;
    }
    return fd;
}

void tool_token_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
