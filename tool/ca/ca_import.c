/*
 * Records made outside the store, taken in when the CA is opened:
 *   - issued.txt of tokenmint's old directory format (migration, once);
 *   - index.txt lines stock `openssl ca` added (issued, revoked, -updatedb);
 *   - certificate files in newcerts/ signed by this CA that nothing names
 *     (a crash of stock openssl ca or of the old format between its writes).
 * Every source is keyed by certificate serial, so taking the same line in
 * twice is a no-op: the store's primary key makes duplicates impossible.
 * Lines are read whole, of any length (getline).
 */
#include "ca_files.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

typedef struct ictx {
    tool_castore *db;
    const tool_ca_paths *p;
    X509 *root;
    const tm_profile *prof;
    void (*report_fn)(const char *line, void *user);
    void *user;
    tool_ca_import_report *rep;
    int failed;     /* a store error: the import is rolled back */
    int had_issued; /* issued.txt was read: renamed once the import is committed */
} ictx;

static void say(ictx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(ictx *c, const char *fmt, ...)
{
    char line[1200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->report_fn)
        c->report_fn(line, c->user);
}

static int64_t parse_index_time(const char *s)
{
    ASN1_TIME *t = ASN1_TIME_new();
    struct tm tmv;
    int64_t v = 0;

    if (t && ASN1_TIME_set_string(t, s) && ASN1_TIME_to_tm(t, &tmv))
        v = (int64_t)timegm(&tmv);
    ASN1_TIME_free(t);
    ERR_clear_error();
    return v;
}

/* The certificate file for a serial, when it is one this CA signed. */
static X509 *cert_file(ictx *c, const char *serial, const char **why)
{
    char path[PATH_MAX + 100];
    FILE *f;
    X509 *x = NULL;
    EVP_PKEY *pk = X509_get0_pubkey(c->root);

    snprintf(path, sizeof path, "%s/%s.pem", c->p->newcerts, serial);
    f = fopen(path, "r");
    if (!f) {
        *why = "its certificate file is missing";
        return NULL;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!x) {
        *why = "its certificate file is empty or not a PEM certificate";
        return NULL;
    }
    if (!pk || X509_verify(x, pk) != 1 ||
        X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(c->root)) != 0) {
        ERR_clear_error();
        X509_free(x);
        *why = "its certificate file holds a certificate this CA did not sign";
        return NULL;
    }
    return x;
}

/* A record for a certificate found in the directory. */
static int record_for(ictx *c, X509 *x, const char *origin, const char *op, tool_cs_record *r)
{
    tm_binding b;
    tm_violations *v = tm_violations_new();
    int ok;

    memset(&b, 0, sizeof b);
    tm_binding_from_cert(c->prof, x, &b, v);
    tm_violations_free(v);
    ok = tool_cs_record_from_cert(r, x, b.serial_text[0] ? b.serial_text : "-",
                                  b.purpose[0] ? b.purpose : "-", op, origin);
    if (ok) { /* not when tokenmint saw it, but when it was made */
        struct tm tmv;
        if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tmv))
            r->issued_at = (int64_t)timegm(&tmv);
    }
    return ok;
}

/* Inserts r; counts what happened. 1 taken in, 0 already there, -1 store error. */
static int take(ictx *c, const tool_cs_record *r, const char *from)
{
    char sup[TOOL_CS_SERIAL_MAX];
    int code = tool_castore_import(c->db, r, sup, sizeof sup);

    if (code == TOOL_CS_CONFLICT) {
        c->rep->duplicates++;
        return 0;
    }
    if (code != TOOL_CS_OK) {
        say(c, "%s: serial %s: %s", from, r->serial, tool_castore_error(c->db));
        c->failed = 1;
        return -1;
    }
    if (sup[0]) {
        c->rep->superseded++;
        say(c,
            "%s: key %.16s... purpose %s was certified twice (serials %s and %s): %s is "
            "recorded as superseded",
            from, r->spki, r->purpose, sup, strcmp(sup, r->serial) ? r->serial : "the other", sup);
    }
    return 1;
}

/* ---- old format: issued.txt ------------------------------------------------------ */

static void migrate_issued(ictx *c)
{
    char path[PATH_MAX + 32], *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    FILE *f;

    snprintf(path, sizeof path, "%s/issued.txt", c->p->dir);
    f = fopen(path, "r");
    if (!f)
        return;
    while (!c->failed && (n = getline(&line, &cap, f)) > 0) {
        char *fields[6] = {0}, *p = line, *save = NULL;
        const char *why = NULL;
        tool_cs_record r;
        X509 *x;
        struct tm tmv;
        int i;

        lineno++;
        if (line[n - 1] != '\n') {
            c->rep->problems++;
            say(c,
                "issued.txt line %zu: torn (%zd bytes without a newline): not taken in; its "
                "certificate file is taken in below if it is complete",
                lineno, n);
            break;
        }
        line[n - 1] = 0;
        for (i = 0; i < 6; i++)
            fields[i] = strtok_r(i ? NULL : p, "\t", &save);
        if (!fields[5] || strlen(fields[1]) != 64) {
            c->rep->problems++;
            say(c, "issued.txt line %zu: not serial, key hash, token, purpose, operator, time",
                lineno);
            continue;
        }
        x = cert_file(c, fields[0], &why);
        if (!x) {
            c->rep->problems++;
            say(c, "issued.txt line %zu: serial %s: %s: not taken in", lineno, fields[0], why);
            continue;
        }
        memset(&r, 0, sizeof r);
        if (!tool_cs_record_from_cert(&r, x, fields[2], fields[3], fields[4], "migrated")) {
            c->failed = 1;
            say(c, "issued.txt line %zu: out of memory", lineno);
        } else if (strcmp(r.spki, fields[1]) != 0) {
            c->rep->problems++;
            say(c,
                "issued.txt line %zu: serial %s: the recorded key hash is not the "
                "certificate's: not taken in",
                lineno, fields[0]);
        } else {
            memset(&tmv, 0, sizeof tmv);
            if (strptime(fields[5], "%Y-%m-%dT%H:%M:%SZ", &tmv))
                r.issued_at = (int64_t)timegm(&tmv);
            if (take(c, &r, "issued.txt") > 0)
                c->rep->migrated++;
        }
        tool_cs_record_clear(&r);
        X509_free(x);
    }
    free(line);
    fclose(f);
    c->had_issued = 1;
}

/* ---- index.txt ---------------------------------------------------------------------- */

static void import_index(ictx *c)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    FILE *f = fopen(c->p->index, "r");

    if (!f)
        return;
    while (!c->failed && (n = getline(&line, &cap, f)) > 0) {
        char *fields[6] = {0}, *p = line, *comma;
        const char *why = NULL;
        tool_cs_record have, r;
        int64_t revoked = 0;
        int reason = -1, i, code;
        X509 *x;

        lineno++;
        if (line[n - 1] != '\n') {
            c->rep->problems++;
            say(c, "index.txt line %zu: torn (%zd bytes without a newline): not taken in", lineno,
                n);
            break;
        }
        line[n - 1] = 0;
        for (i = 0; i < 6 && p; i++) {
            fields[i] = p;
            p = i < 5 ? strchr(p, '\t') : NULL;
            if (p)
                *p++ = 0;
        }
        if (!fields[3] || !*fields[3] || !strchr("VRE", fields[0][0]) || fields[0][1]) {
            c->rep->problems++;
            say(c, "index.txt line %zu: not an openssl ca database line", lineno);
            continue;
        }
        if (fields[0][0] == 'R') {
            if ((comma = strchr(fields[2], ',')) != NULL) {
                *comma = 0;
                reason = tool_cs_reason_code(comma + 1);
            }
            revoked = parse_index_time(fields[2]);
            if (!revoked) {
                c->rep->problems++;
                say(c, "index.txt line %zu: serial %s: revocation time '%s' unreadable", lineno,
                    fields[3], fields[2]);
                continue;
            }
        }
        memset(&have, 0, sizeof have);
        code = tool_castore_find_serial(c->db, fields[3], &have);
        if (code == TOOL_CS_OK) {
            /* known: only the changes stock openssl ca makes go in */
            if (fields[0][0] == 'R' && have.status != TOOL_CS_REVOKED) {
                code = tool_castore_revoke(c->db, have.serial, revoked, reason);
                if (code == TOOL_CS_OK) {
                    c->rep->revoked++;
                    say(c, "index.txt: certificate %s was revoked by openssl ca", have.serial);
                }
            } else if (fields[0][0] == 'E' && have.status == TOOL_CS_VALID) {
                code = tool_castore_expire(c->db, have.serial);
                if (code == TOOL_CS_OK)
                    c->rep->expired++;
            }
            tool_cs_record_clear(&have);
            if (code != TOOL_CS_OK) {
                say(c, "index.txt line %zu: %s", lineno, tool_castore_error(c->db));
                c->failed = 1;
            }
            continue;
        }
        tool_cs_record_clear(&have);
        if (code != TOOL_CS_NOTFOUND) {
            say(c, "index.txt line %zu: %s", lineno, tool_castore_error(c->db));
            c->failed = 1;
            break;
        }
        x = cert_file(c, fields[3], &why);
        if (!x) {
            c->rep->problems++;
            say(c, "index.txt line %zu: serial %s: %s: not taken in", lineno, fields[3], why);
            continue;
        }
        memset(&r, 0, sizeof r);
        if (!record_for(c, x, "openssl", "openssl ca", &r)) {
            c->failed = 1;
            say(c, "index.txt line %zu: out of memory", lineno);
        } else {
            r.status = fields[0][0];
            r.revoked_at = revoked;
            r.reason = reason;
            if (take(c, &r, "index.txt") > 0) {
                c->rep->imported++;
                say(c,
                    "index.txt: took in certificate %s issued by openssl ca (token %s, "
                    "purpose %s)",
                    r.serial, r.token, r.purpose);
            }
        }
        tool_cs_record_clear(&r);
        X509_free(x);
    }
    free(line);
    fclose(f);
}

/* ---- temporary files of dead view writers ------------------------------------------------ */

/* PID (the text after NAME.tmp.) names no process: the writer died between
 * writing its temporary file and renaming it. */
static int writer_is_dead(const char *pid_text)
{
    char *end = NULL;
    long pid;

    errno = 0;
    pid = strtol(pid_text, &end, 10);
    return pid > 0 && errno == 0 && end != pid_text && *end == 0 && kill((pid_t)pid, 0) != 0 &&
           errno == ESRCH;
}

/* path.tmp.PID files of dead writers (index.txt, serial: a kill -9 inside
 * the rewrite, or a full or read-only disk that refused the rename and then
 * the unlink) would stay for ever; removed like newcerts/'s. */
static void clean_view_tmp(ictx *c, const char *path)
{
    char dir[PATH_MAX], prefix[NAME_MAX + 8], full[PATH_MAX + NAME_MAX + 2];
    const char *slash = path ? strrchr(path, '/') : NULL;
    struct dirent *e;
    size_t pl;
    DIR *d;

    if (!path || !slash || (size_t)(slash - path) >= sizeof dir ||
        strlen(slash + 1) + 5 >= sizeof prefix)
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    pl = (size_t)snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
    d = opendir(dir[0] ? dir : "/");
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl) != 0 || !writer_is_dead(e->d_name + pl))
            continue;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (unlink(full) == 0)
            c->rep->cleaned++;
    }
    if (d)
        closedir(d);
}

/* ---- newcerts/ ---------------------------------------------------------------------------- */

static void scan_newcerts(ictx *c)
{
    DIR *d = opendir(c->p->newcerts);
    struct dirent *e;

    while (d && !c->failed && (e = readdir(d))) {
        char serial[TOOL_CS_SERIAL_MAX], path[PATH_MAX + 300];
        const char *tmp, *why = NULL;
        size_t l = strlen(e->d_name);
        tool_cs_record have, r;
        struct stat sb;
        X509 *x;
        int code;

        snprintf(path, sizeof path, "%s/%s", c->p->newcerts, e->d_name);
        /* a temporary file of a view writer that died */
        if ((tmp = strstr(e->d_name, ".pem.tmp.")) != NULL) {
            if (writer_is_dead(tmp + 9) && unlink(path) == 0)
                c->rep->cleaned++;
            continue;
        }
        if (l < 5 || l - 4 >= sizeof serial || strcmp(e->d_name + l - 4, ".pem") != 0)
            continue;
        memcpy(serial, e->d_name, l - 4);
        serial[l - 4] = 0;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        memset(&have, 0, sizeof have);
        code = tool_castore_find_serial(c->db, serial, &have);
        tool_cs_record_clear(&have);
        if (code == TOOL_CS_OK)
            continue; /* the view rewrites it if it is empty */
        if (code != TOOL_CS_NOTFOUND) {
            /* not hex: not one of ours */
            if (strspn(serial, "0123456789abcdefABCDEF") != strlen(serial))
                continue;
            say(c, "newcerts/%s: %s", e->d_name, tool_castore_error(c->db));
            c->failed = 1;
            break;
        }
        if (sb.st_size == 0) {
            if (unlink(path) == 0) {
                c->rep->cleaned++;
                say(c, "newcerts/%s: empty file left by a crash, no record names it: removed",
                    e->d_name);
            }
            continue;
        }
        x = cert_file(c, serial, &why);
        if (!x) {
            c->rep->problems++;
            say(c, "newcerts/%s: %s: left alone", e->d_name, why);
            continue;
        }
        memset(&r, 0, sizeof r);
        if (!record_for(c, x, "recovered", "recovered", &r)) {
            c->failed = 1;
        } else if (take(c, &r, "newcerts") > 0) {
            c->rep->recovered++;
            say(c,
                "newcerts/%s: certificate no index named (written just before a crash): "
                "taken in",
                e->d_name);
        }
        tool_cs_record_clear(&r);
        X509_free(x);
    }
    if (d)
        closedir(d);
}

int tool_ca_import(tool_castore *db, const tool_ca_paths *p, X509 *root, const tm_profile *prof,
                   void (*report_fn)(const char *line, void *user), void *user,
                   tool_ca_import_report *rep, char *err, size_t errlen)
{
    ictx c = {db, p, root, prof, report_fn, user, rep, 0, 0};
    char path[PATH_MAX + 32], done[PATH_MAX + 48];
    int code;

    memset(rep, 0, sizeof *rep);
    clean_view_tmp(&c, p->index);
    clean_view_tmp(&c, p->serial);
    code = tool_castore_begin(db);
    if (code != TOOL_CS_OK) {
        snprintf(err, errlen, "%s", tool_castore_error(db));
        return code;
    }
    migrate_issued(&c);
    if (!c.failed)
        import_index(&c);
    if (!c.failed)
        scan_newcerts(&c);
    if (c.failed) {
        snprintf(err, errlen, "taking in the directory's records: %s", tool_castore_error(db));
        tool_castore_rollback(db);
        return TOOL_CS_ERROR;
    }
    code = tool_castore_commit(db);
    if (code != TOOL_CS_OK) {
        snprintf(err, errlen, "%s", tool_castore_error(db));
        return code;
    }
    if (c.had_issued) {
        /* kept for the record, out of the way of the next open */
        snprintf(path, sizeof path, "%s/issued.txt", p->dir);
        snprintf(done, sizeof done, "%s.migrated", path);
        if (rename(path, done) != 0) {
            snprintf(err, errlen, "cannot rename %s: %s", path, strerror(errno));
            return TOOL_CS_ERROR;
        }
        say(&c,
            "migrated the old-format directory: %zu records from issued.txt (now "
            "issued.txt.migrated), %zu duplicate lines dropped, %zu problems",
            rep->migrated, rep->duplicates, rep->problems);
    }
    return code;
}
