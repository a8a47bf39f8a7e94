/*
 * Secret sources: one reader for every PIN, passphrase and shared-secret
 * file in tokenmint, so the syntax and the rules a secret file must meet
 * (regular, ours, not open to group or others) cannot drift between parts.
 */
#include "p11c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static const char *strip_scheme(const char *source)
{
    if (strncmp(source, "file:", 5) == 0) {
        source += 5;
        if (strncmp(source, "//", 2) == 0)
            source += 2;
    }
    return source;
}

/* The "%s" that stands for the serial: exactly one, and no other '%'. */
static const char *serial_slot(const char *src)
{
    const char *pct = strstr(src, "%s");

    if (pct == NULL || strchr(pct + 2, '%') != NULL || memchr(src, '%', (size_t)(pct - src)))
        return NULL;
    return pct;
}

int p11c_secret_per_token(const char *source)
{
    return source != NULL && serial_slot(strip_scheme(source)) != NULL;
}

int p11c_secret_path(const char *source, const char *serial, char *path, size_t pathlen, char *err,
                     size_t errlen)
{
    const char *src, *pct;
    int n;

    if (source == NULL || path == NULL || pathlen == 0) {
        snprintf(err, errlen, "no secret source given");
        return 0;
    }
    src = strip_scheme(source);
    pct = serial != NULL ? serial_slot(src) : NULL;
    if (pct != NULL)
        n = snprintf(path, pathlen, "%.*s%s%s", (int)(pct - src), src, serial, pct + 2);
    else
        n = snprintf(path, pathlen, "%s", src);
    if (n < 0 || (size_t)n >= pathlen) {
        snprintf(err, errlen, "secret file path too long (%s)", source);
        return 0;
    }
    if (path[0] == '\0') {
        snprintf(err, errlen, "secret source '%s' names no file", source);
        return 0;
    }
    return 1;
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "is a directory";
    if (S_ISFIFO(m))
        return "is a FIFO (named pipe), not a regular file";
    if (S_ISSOCK(m))
        return "is a socket, not a regular file";
    if (S_ISCHR(m))
        return "is a character device, not a regular file";
    if (S_ISBLK(m))
        return "is a block device, not a regular file";
    return S_ISREG(m) ? NULL : "is not a regular file";
}

/* The rules a secret file must meet before a byte of it is read. 1 when it
 * may be read; else 0 with the reason in err. */
static int file_ok(const struct stat *st, const char *what, const char *path, unsigned int flags,
                   char *err, size_t errlen)
{
    const char *kind = file_kind(st->st_mode);

    if (kind != NULL) {
        snprintf(err, errlen, "%s file %s %s", what, path, kind);
        return 0;
    }
    if (flags & P11C_SECRET_ALLOW_OPEN)
        return 1;
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "%s file %s has mode %04o: group or others may %s it (chmod 600 it; "
                 "allow-open-secrets accepts it)",
                 what, path, (unsigned)(st->st_mode & 07777),
                 (st->st_mode & (S_IWGRP | S_IWOTH)) ? "write" : "read");
        return 0;
    }
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        snprintf(err, errlen,
                 "%s file %s is owned by uid %lu, not by the running user (uid %lu) or root "
                 "(allow-open-secrets accepts it)",
                 what, path, (unsigned long)st->st_uid, (unsigned long)geteuid());
        return 0;
    }
    return 1;
}

int p11c_secret_open(const char *path, const char *what, unsigned int flags, char *err,
                     size_t errlen)
{
    struct stat st;
    int fd;

    if (what == NULL)
        what = "secret";
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "%s: no file given", what);
        return -1;
    }
    /* Judge the name before opening it: opening a device can have effects,
     * opening a FIFO can block. */
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!file_ok(&st, what, path, flags, err, errlen))
        return -1;
    /* O_NONBLOCK: should a FIFO be swapped in after the stat, open returns
     * at once and the fstat below refuses it. The rules are applied again to
     * what was opened, as that is what is read. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!file_ok(&st, what, path, flags, err, errlen)) {
        close(fd);
        return -1;
    }
    return fd;
}

int p11c_secret_read(const char *source, const char *serial, const char *what, char *out,
                     size_t outlen, size_t *len, char *err, size_t errlen)
{
    return p11c_secret_read_ex(source, serial, what, 0, out, outlen, len, err, errlen);
}

int p11c_secret_read_ex(const char *source, const char *serial, const char *what,
                        unsigned int flags, char *out, size_t outlen, size_t *len, char *err,
                        size_t errlen)
{
    char path[4096];
    size_t got = 0, l;
    ssize_t n;
    int fd = -1, ok = 0;

    if (what == NULL)
        what = "secret";
    if (out == NULL || outlen < 2 || len == NULL) {
        snprintf(err, errlen, "%s: no room for the secret", what);
        return 0;
    }
    if (!p11c_secret_path(source, serial, path, sizeof(path), err, errlen))
        goto out;
    fd = p11c_secret_open(path, what, flags, err, errlen);
    if (fd < 0)
        goto out;
    /* Straight into the caller's buffer: no stdio buffer keeps a copy. */
    while (got < outlen) {
        n = read(fd, out + got, outlen - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (memchr(out + got - (size_t)n, '\n', (size_t)n) != NULL ||
            memchr(out + got - (size_t)n, '\r', (size_t)n) != NULL)
            break;
    }
    if (got == 0) {
        snprintf(err, errlen, "%s file %s is empty", what, path);
        goto out;
    }
    for (l = 0; l < got && out[l] != '\n' && out[l] != '\r'; l++)
        ;
    if (l >= outlen) {
        snprintf(err, errlen, "%s in %s is longer than %zu bytes", what, path, outlen - 1);
        goto out;
    }
    if (l == 0) {
        snprintf(err, errlen, "%s file %s has an empty first line", what, path);
        goto out;
    }
    if (memchr(out, '\0', l) != NULL) {
        snprintf(err, errlen, "%s file %s has a NUL byte in its first line", what, path);
        goto out;
    }
    out[l] = '\0';
    OPENSSL_cleanse(out + l, outlen - l);
    *len = l;
    ok = 1;
out:
    if (fd >= 0)
        close(fd);
    if (!ok)
        OPENSSL_cleanse(out, outlen);
    return ok;
}
