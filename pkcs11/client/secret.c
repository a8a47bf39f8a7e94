/*
 * Secret sources: one reader for every PIN, passphrase and shared-secret
 * file in tokenmint, so the syntax cannot drift between the parts.
 */
#include "p11c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

int p11c_secret_read(const char *source, const char *serial, const char *what, char *out,
                     size_t outlen, size_t *len, char *err, size_t errlen)
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
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
        goto out;
    }
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
