/*
 * index.txt, serial and newcerts/ written from the CA store, so that stock
 * `openssl ca -config DIR/ca.cnf` (-gencrl, -updatedb, -revoke, issuing)
 * keeps working on the directory. The store is the truth; these files are a
 * copy made through a temporary file and rename, never appended in place.
 */
#include "ca_files.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

/* index.txt's time form: what the certificate carries (RFC 5280: UTCTime
 * up to 2049, GeneralizedTime from 2050). */
static void index_time(int64_t t, char out[20])
{
    time_t tt = (time_t)t;
    struct tm tmv;

    gmtime_r(&tt, &tmv);
    if (tmv.tm_year + 1900 >= 1950 && tmv.tm_year + 1900 < 2050)
        strftime(out, 20, "%y%m%d%H%M%SZ", &tmv);
    else
        strftime(out, 20, "%Y%m%d%H%M%SZ", &tmv);
}

/* 1 when path holds exactly text (then it is left alone). */
static int holds(const char *path, const char *text, size_t len)
{
    struct stat sb;
    char *cur = NULL;
    FILE *f;
    int same = 0;

    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size != len)
        return 0;
    if (len == 0)
        return 1;
    f = fopen(path, "rbe");
    cur = f ? malloc(len) : NULL;
    if (cur && fread(cur, 1, len, f) == len && fgetc(f) == EOF)
        same = memcmp(cur, text, len) == 0;
    free(cur);
    if (f)
        fclose(f);
    return same;
}

/* Writes text to path through path.tmp.PID: fsync, rename. A file that
 * already says it is not rewritten: an open that changed nothing writes
 * nothing, so a read-only command works on a full disk. */
static int replace_file(const char *path, const char *text, size_t len, int sync)
{
    char tmp[PATH_MAX + 32];
    int fd, ok;

    if (holds(path, text, len))
        return 1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return 0;
    ok = write(fd, text, len) == (ssize_t)len && (!sync || fsync(fd) == 0);
    if (close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        errno = e;
    }
    return ok;
}

int tool_ca_view_cert_file(const char *newcerts, const char *serial, const unsigned char *der,
                           size_t der_len)
{
    char path[PATH_MAX + 100];
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long l;
    int ok = 0;

    /* PEM of the stored DER as it is: decoding the certificate first would
     * cost more than the file (OpenSSL 3.0 decodes its public key) */
    snprintf(path, sizeof path, "%s/%s.pem", newcerts, serial);
    if (b && der && der_len > 0 && PEM_write_bio(b, PEM_STRING_X509, "", der, (long)der_len) > 0 &&
        (l = BIO_get_mem_data(b, &pem)) > 0)
        ok = replace_file(path, pem, (size_t)l, 0);
    BIO_free(b);
    return ok;
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t nc = (b->cap ? b->cap * 2 : 65536) + (size_t)n;
            char *t = realloc(b->p, nc);
            if (!t) {
                b->oom = 1;
                return;
            }
            b->p = t;
            b->cap = nc;
        }
    }
}

typedef struct vctx {
    buf idx;
    BIGNUM *max;
    char (*missing)[TOOL_CS_SERIAL_MAX];
    size_t nmissing, capmissing;
    const char *newcerts;
    tool_ca_known *known;
} vctx;

static int view_row(const tool_cs_record *r, void *user)
{
    vctx *c = user;
    char na[20], rd[20] = "", path[PATH_MAX + 100];
    struct stat sb;
    BIGNUM *bn = NULL;
    const char *reason;
    char st = r->status == TOOL_CS_SUPERSEDED ? 'V' : r->status;

    index_time(r->not_after, na);
    if (r->status == TOOL_CS_REVOKED)
        index_time(r->revoked_at, rd);
    reason = r->status == TOOL_CS_REVOKED ? tool_cs_reason_name(r->reason) : NULL;
    /* status, notAfter, revocation[,reason], serial, file name, subject */
    put(&c->idx, "%c\t%s\t%s%s%s\t%s\tunknown\t%s\n", st, na, rd, reason ? "," : "",
        reason ? reason : "", r->serial, r->subject);
    if (BN_hex2bn(&bn, r->serial) > 0 && BN_cmp(bn, c->max) > 0)
        BN_copy(c->max, bn);
    BN_free(bn);
    if (tool_ca_known_has(c->known, r->serial))
        return 1;
    snprintf(path, sizeof path, "%s/%s.pem", c->newcerts, r->serial);
    if (stat(path, &sb) == 0 && sb.st_size > 0) {
        if (c->known && !tool_ca_known_add(c->known, r->serial))
            c->idx.oom = 1;
        return !c->idx.oom;
    }
    if (c->nmissing == c->capmissing) {
        size_t nc = c->capmissing ? c->capmissing * 2 : 16;
        void *t = realloc(c->missing, nc * sizeof *c->missing);
        if (!t) {
            c->idx.oom = 1;
            return 0;
        }
        c->missing = t;
        c->capmissing = nc;
    }
    snprintf(c->missing[c->nmissing++], TOOL_CS_SERIAL_MAX, "%s", r->serial);
    return 1;
}

int tool_ca_view_write(tool_castore *db, const tool_ca_paths *p, tool_ca_known *known,
                       struct stat *written, char *err, size_t errlen)
{
    vctx c;
    tool_cs_filter all = {0};
    char *next = NULL;
    size_t i;
    int ok = 0, code;

    memset(&c, 0, sizeof c);
    c.max = BN_new();
    c.newcerts = p->newcerts;
    c.known = known;
    if (!c.max) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    BN_zero(c.max);
    code = tool_castore_list(db, &all, view_row, &c);
    if (code != TOOL_CS_OK) {
        snprintf(err, errlen, "reading the CA database: %s", tool_castore_error(db));
        goto out;
    }
    if (c.idx.oom) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* certificate files first: an index line never names a missing file */
    for (i = 0; i < c.nmissing; i++) {
        tool_cs_record r;
        memset(&r, 0, sizeof r);
        code = tool_castore_find_serial(db, c.missing[i], &r);
        if (code == TOOL_CS_OK &&
            !tool_ca_view_cert_file(p->newcerts, r.serial, r.der, r.der_len)) {
            snprintf(err, errlen, "cannot write %s/%s.pem: %s", p->newcerts, r.serial,
                     strerror(errno));
            tool_cs_record_clear(&r);
            goto out;
        }
        if (code == TOOL_CS_OK && known && !tool_ca_known_add(known, r.serial)) {
            snprintf(err, errlen, "out of memory");
            tool_cs_record_clear(&r);
            goto out;
        }
        tool_cs_record_clear(&r);
    }
    if (!replace_file(p->index, c.idx.p ? c.idx.p : "", c.idx.len, 1)) {
        snprintf(err, errlen, "cannot write %s: %s", p->index, strerror(errno));
        goto out;
    }
    if (written && stat(p->index, written) != 0)
        memset(written, 0, sizeof *written);
    if (p->serial) {
        /* openssl ca's next serial, past every one in use (rand_serial = yes
         * ignores it; a config without it counts from here) */
        char line[TOOL_CS_SERIAL_MAX + 4];
        if (!BN_add_word(c.max, 1) || !(next = BN_bn2hex(c.max))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(line, sizeof line, "%s%s\n", strlen(next) % 2 ? "0" : "", next);
        if (!replace_file(p->serial, line, strlen(line), 1)) {
            snprintf(err, errlen, "cannot write %s: %s", p->serial, strerror(errno));
            goto out;
        }
    }
    ok = 1;
out:
    OPENSSL_free(next);
    BN_free(c.max);
    free(c.idx.p);
    free(c.missing);
    return ok;
}

int tool_ca_view_changed(const tool_ca_paths *p, const struct stat *written)
{
    struct stat sb;

    if (stat(p->index, &sb) != 0)
        return 1;
    return sb.st_ino != written->st_ino || sb.st_size != written->st_size ||
           sb.st_mtim.tv_sec != written->st_mtim.tv_sec ||
           sb.st_mtim.tv_nsec != written->st_mtim.tv_nsec;
}
