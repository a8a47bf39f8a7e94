/*
 * OpenSSL's config parser (NCONF) silently skips a `.include` whose file is
 * missing, so a typo in an include path switches off whatever the included
 * file set. This scan finds every `.include` line the parser would act on
 * (in the text and, recursively, in the files it names) and refuses a path
 * that cannot be opened. It runs before NCONF sees the text; it interprets
 * nothing but the `.include` lines.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "tm_profile.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* OpenSSL itself nests includes; a deeper chain than this is a loop. */
#define TM_INCLUDE_DEPTH 8
#define TM_INCLUDE_FILE_MAX (1024 * 1024)

static void say(char *err, size_t errlen, const char *source, long line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void say(char *err, size_t errlen, const char *source, long line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return;
    n = line > 0 ? snprintf(err, errlen, "%s:%ld: ", source, line)
                 : snprintf(err, errlen, "%s: ", source);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int check_text(const char *text, size_t len, const char *source, int depth, char *err,
                      size_t errlen);

/* Reads a whole (bounded) file and scans it. */
static int check_file(const char *path, int depth, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t got;
    int ok = 0;

    if (f == NULL) {
        say(err, errlen, path, 0, "cannot open included file: %s", strerror(errno));
        return 0;
    }
    buf = malloc(TM_INCLUDE_FILE_MAX + 1);
    if (buf == NULL) {
        say(err, errlen, path, 0, "out of memory");
        goto out;
    }
    got = fread(buf, 1, TM_INCLUDE_FILE_MAX + 1, f);
    if (ferror(f) || got > TM_INCLUDE_FILE_MAX) {
        say(err, errlen, path, 0,
            ferror(f) ? "cannot read included file" : "included file is larger than %d bytes",
            TM_INCLUDE_FILE_MAX);
        goto out;
    }
    ok = check_text(buf, got, path, depth, err, errlen);
out:
    free(buf);
    fclose(f);
    return ok;
}

/* OpenSSL takes the suffix in any case: x.CNF is read too, so it is checked
 * too (a FIFO by that name would block the parser). */
int tm_conf_dir_reads(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcasecmp(name + n - 4, ".cnf") == 0) ||
           (n > 5 && strcasecmp(name + n - 5, ".conf") == 0);
}

/* A directory is included file by file (*.cnf, *.conf), as OpenSSL does. */
static int check_dir(const char *path, int depth, char *err, size_t errlen)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int ok = 1;

    if (d == NULL) {
        say(err, errlen, path, 0, "cannot read included directory: %s", strerror(errno));
        return 0;
    }
    while (ok && (e = readdir(d)) != NULL) {
        char full[4096];
        if (!tm_conf_dir_reads(e->d_name))
            continue;
        if (snprintf(full, sizeof(full), "%s/%s", path, e->d_name) >= (int)sizeof(full)) {
            say(err, errlen, path, 0, "included path too long");
            ok = 0;
            break;
        }
        {
            struct stat st;
            if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
                say(err, errlen, full, 0, "included file is not a regular file");
                ok = 0;
                break;
            }
        }
        ok = check_file(full, depth + 1, err, errlen);
    }
    closedir(d);
    return ok;
}

static int check_include(const char *value, size_t n, const char *source, long line, int depth,
                         char *err, size_t errlen)
{
    char path[4096];
    struct stat st;

    if (n == 0) {
        say(err, errlen, source, line, ".include names no file");
        return 0;
    }
    /* NCONF would expand variables and quotes here; a path written literally
     * is the only one that can be checked to be what the parser opens. */
    if (memchr(value, '$', n) != NULL || memchr(value, '"', n) != NULL ||
        memchr(value, '\'', n) != NULL || memchr(value, '\\', n) != NULL) {
        say(err, errlen, source, line,
            ".include %.*s: write the path literally (no $variables, quotes or escapes)", (int)n,
            value);
        return 0;
    }
    if (!tm_conf_include_path(value, n, path, sizeof(path))) {
        say(err, errlen, source, line, ".include path is too long");
        return 0;
    }
    if (depth >= TM_INCLUDE_DEPTH) {
        say(err, errlen, source, line, ".include %s: includes nest deeper than %d", path,
            TM_INCLUDE_DEPTH);
        return 0;
    }
    if (stat(path, &st) != 0) {
        say(err, errlen, source, line, ".include %s: %s (a missing include is an error here)", path,
            strerror(errno));
        return 0;
    }
    if (S_ISDIR(st.st_mode))
        return check_dir(path, depth, err, errlen);
    /* a FIFO or a device (/dev/stdin) could block the reader or never end */
    if (!S_ISREG(st.st_mode)) {
        say(err, errlen, source, line, ".include %s: not a regular file or directory", path);
        return 0;
    }
    return check_file(path, depth + 1, err, errlen);
}

static int has_word(const char *p, size_t n, const char *w)
{
    size_t wl = strlen(w), i;
    for (i = 0; i + wl <= n; i++)
        if (memcmp(p + i, w, wl) == 0)
            return 1;
    return 0;
}

/*
 * A NUL makes the parser's line reader stop and run the rest into the next
 * line; other control characters than tab, CR and LF are not blanks to it
 * as they are to isspace(). ".include x.cnf<NUL>" was checked as x.cnf and
 * read as something else.
 */
int tm_conf_odd_byte(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char b = (unsigned char)p[i];
        if ((b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7f)
            return b;
    }
    return -1;
}

int tm_conf_include_path(const char *value, size_t n, char *out, size_t outlen)
{
    /* secure_getenv, as OpenSSL reads it (ignored in a setuid program) */
    const char *dir = secure_getenv("OPENSSL_CONF_INCLUDE");
    int w;

    /* a relative path goes under $OPENSSL_CONF_INCLUDE whenever that is
     * set, even to "" (then "x.conf" is "/x.conf") */
    if (dir != NULL && n > 0 && value[0] != '/')
        w = snprintf(out, outlen, "%s%s%.*s", dir,
                     dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/", (int)n, value);
    else
        w = snprintf(out, outlen, "%.*s", (int)n, value);
    return w >= 0 && (size_t)w < outlen;
}

static int check_text(const char *text, size_t len, const char *source, int depth, char *err,
                      size_t errlen)
{
    const char *p = text, *end = text + len;
    long line = 0;
    int odd;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p, *v, *e;

        if (eol == NULL)
            eol = end;
        line++;
        if ((odd = tm_conf_odd_byte(p, (size_t)(eol - p))) >= 0) {
            say(err, errlen, source, line,
                "control character 0x%02x (a config line is text; OpenSSL would read this one "
                "otherwise than it was checked)",
                (unsigned)odd);
            return 0;
        }
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        /* includedir sends a relative .include elsewhere than the file
         * checked here */
        if ((size_t)(eol - q) >= 7 && memcmp(q, ".pragma", 7) == 0 &&
            has_word(q, (size_t)(eol - q), "includedir")) {
            say(err, errlen, source, line,
                ".pragma includedir is refused (write include paths in full)");
            return 0;
        }
        /* ".include" then blanks or '=' (".includex = 1" is an ordinary key) */
        if ((size_t)(eol - q) >= 8 && memcmp(q, ".include", 8) == 0 &&
            (q + 8 == eol || q[8] == ' ' || q[8] == '\t' || q[8] == '=' || q[8] == '\r')) {
            v = q + 8;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (v < eol && *v == '=')
                v++;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            e = v;
            while (e < eol && *e != '#')
                e++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
            if (!check_include(v, (size_t)(e - v), source, line, depth, err, errlen))
                return 0;
        }
        p = eol + 1;
    }
    return 1;
}

int tm_conf_check_includes(const char *text, size_t len, const char *source, char *err,
                           size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL)
        return 1;
    return check_text(text, len, source != NULL ? source : "(config)", 0, err, errlen);
}
