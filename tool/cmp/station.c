/*
 * The station's CMP client as a CA backend (ca/ca.h): `issue --cmp URL` and
 * `watch --cmp URL` issue through a CMP server or relay instead of a local CA
 * directory. Its whole configuration (URL, root, protection, reference,
 * signer key, lock directory) is checked when the CA is opened, before any
 * token is touched.
 *
 * Per-token locks: without a CA directory, two runs on one station meet only
 * in a station-local directory (--cmp-lock-dir, else
 * $XDG_RUNTIME_DIR/tokenmint/locks, else /run/tokenmint/locks); every run has
 * to pick the same one, so the default depends on nothing but the user's
 * runtime directory.
 */
#include "ca/ca.h"
#include "cmp/cmp.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cmp_ca {
    tool_ca base; /* first: the interface */
    tool_cmp_station cfg;
} cmp_ca;

static const tool_ca_ops cmp_ops;

const char *tool_cmp_issue_help =
    "CMP (instead of --ca DIR): steps 8-10 against a CMP server or relay\n"
    "  --cmp URL               http://HOST:PORT/PATH of `tokenmint ca serve`, `tokenmint relay`\n"
    "                          or any CMP CA that takes p10cr\n"
    "  --cmp-root FILE         the CA root certificate the station verifies against (step 11)\n"
    "  --cmp-secret-source FILE   PBMAC shared secret (first line of FILE)\n"
    "  --cmp-ref REF           our reference (senderKID) with the secret\n"
    "  --cmp-cert FILE --cmp-key FILE   signature protection with this certificate and key\n"
    "  --cmp-srvcert FILE      pin the server's CMP signer certificate\n"
    "  --cmp-trusted FILE      trust anchors for the server's signer certificate\n"
    "  --cmp-jobs N            requests in flight at once (default 8, at most 64)\n"
    "  --cmp-timeout S         seconds per transaction, polling included (default 120)\n"
    "  --cmp-lock-dir DIR      per-token lock files, shared by every issue --cmp on this\n"
    "                          station (default $XDG_RUNTIME_DIR/tokenmint/locks, else\n"
    "                          /run/tokenmint/locks)\n";

void tool_cmp_station_clear(tool_cmp_station *s)
{
    if (!s)
        return;
    tool_cmp_client_opts_clear(&s->o);
    memset(s, 0, sizeof *s);
}

int tool_cmp_station_opt(tool_cmp_station *s, const char *name, const char *value, char *err,
                         size_t errlen)
{
    tool_return_val_if_fail(s != NULL && name != NULL && value != NULL, 0);
    s->any = 1;
    if (!strcmp(name, "cmp")) {
        snprintf(s->url, sizeof s->url, "%s", value);
        s->o.url = s->url;
        return 1;
    }
    if (!strcmp(name, "cmp-lock-dir")) {
        if (!value[0] || strlen(value) >= sizeof s->lock_dir - 80) {
            snprintf(err, errlen, "--cmp-lock-dir: a directory path (at most %zu bytes)",
                     sizeof s->lock_dir - 81);
            return 0;
        }
        snprintf(s->lock_dir, sizeof s->lock_dir, "%s", value);
        return 1;
    }
    if (!strcmp(name, "cmp-jobs") || !strcmp(name, "cmp-timeout")) {
        char *end;
        long v = strtol(value, &end, 10), max = !strcmp(name, "cmp-jobs") ? 64 : 3600;
        if (!value[0] || *end || v < 1 || v > max) {
            snprintf(err, errlen, "--%s %s: a number from 1 to %ld", name, value, max);
            return 0;
        }
        if (!strcmp(name, "cmp-jobs"))
            s->o.jobs = (int)v;
        else
            s->o.timeout = (int)v;
        return 1;
    }
    if (strncmp(name, "cmp-", 4) == 0) {
        char e[512];
        if (tool_cmp_client_opt(&s->o, name + 4, value, e, sizeof e))
            return 1;
        snprintf(err, errlen, "--%s: %s", name, e);
        return 0;
    }
    snprintf(err, errlen, "--%s: not a CMP option", name);
    return 0;
}

static int default_lock_dir(tool_cmp_station *s)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    size_t len;

    if (s->lock_dir[0])
        return 1;
    if (!rt || rt[0] != '/')
        rt = "/run";
    len = strlen(rt);
    if (len >= sizeof s->lock_dir - 100)
        return 0;
    memcpy(s->lock_dir, rt, len);
    memcpy(s->lock_dir + len, "/tokenmint", sizeof "/tokenmint");
    mkdir(s->lock_dir, 0755);
    memcpy(s->lock_dir + len + strlen("/tokenmint"), "/locks", sizeof "/locks");
    return 1;
}

static int cmp_check(tool_ca *base, char *err, size_t errlen)
{
    cmp_ca *ca = (cmp_ca *)base;
    tool_cmp_station *s = &ca->cfg;

    if (!s->url[0]) {
        snprintf(err, errlen, "--cmp-* options need --cmp URL");
        return 0;
    }
    if (!s->o.root) {
        snprintf(err, errlen,
                 "--cmp needs --cmp-root FILE, the CA root to verify certificates against "
                 "(step 11)");
        return 0;
    }
    if (!tool_cmp_client_check(&s->o, "--cmp", err, errlen))
        return 0;
    if (!default_lock_dir(s)) {
        snprintf(err, errlen,
                 "$XDG_RUNTIME_DIR is too long for the token locks; choose a directory with "
                 "--cmp-lock-dir");
        return 0;
    }
    return 1;
}

tool_ca *tool_cmp_ca_open(tool_cmp_station *s, char *err, size_t errlen)
{
    cmp_ca *ca;

    tool_return_val_if_fail(s != NULL, NULL);
    ca = calloc(1, sizeof *ca);
    if (!ca) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tool_ca_base_init(&ca->base, &cmp_ops);
    ca->cfg = *s; /* takes the certificates, keys and the secret */
    ca->cfg.o.url = ca->cfg.url;
    memset(s, 0, sizeof *s);
    if (!ca->cfg.o.jobs)
        ca->cfg.o.jobs = 8;
    return &ca->base;
}

typedef struct batch_ctx {
    pthread_mutex_t mu;
    const tool_cmp_client_opts *o;
    tool_ca_item *items;
    size_t n, next, issued;
} batch_ctx;

static void *batch_worker(void *arg)
{
    batch_ctx *b = arg;
    for (;;) {
        size_t i;
        tool_ca_item *it;
        pthread_mutex_lock(&b->mu);
        i = b->next++;
        pthread_mutex_unlock(&b->mu);
        if (i >= b->n)
            break;
        it = &b->items[i];
        /* a renewal of a certificate the CA still holds valid is a kur,
         * signed with it: the CA sees which one the new one replaces */
        if (it->old_cert && it->old_key && it->new_key)
            it->cert = tool_cmp_client_kur(b->o, it->old_cert, it->old_key, it->new_key, it->req,
                                           NULL, it->error, sizeof it->error);
        else
            it->cert = tool_cmp_client_p10cr(b->o, it->req, NULL, it->error, sizeof it->error);
        if (it->cert) {
            pthread_mutex_lock(&b->mu);
            b->issued++;
            pthread_mutex_unlock(&b->mu);
        }
        it->done = 1;
    }
    return NULL;
}

/* Steps 8-10 over CMP: every item's request in flight at once (up to --cmp-jobs). */
static size_t cmp_issue_batch(tool_ca *base, tool_ca_item *items, size_t n)
{
    cmp_ca *ca = (cmp_ca *)base;
    batch_ctx b = {.o = &ca->cfg.o, .items = items, .n = n};
    pthread_t th[64];
    size_t nth = (size_t)ca->cfg.o.jobs, i, started = 0;

    if (nth > n)
        nth = n;
    if (nth > sizeof th / sizeof th[0])
        nth = sizeof th / sizeof th[0];
    pthread_mutex_init(&b.mu, NULL);
    for (i = 0; i < nth; i++)
        if (pthread_create(&th[started], NULL, batch_worker, &b) == 0)
            started++;
    if (!started)
        batch_worker(&b);
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&b.mu);
    return b.issued;
}

static X509 *cmp_root(tool_ca *base)
{
    return ((cmp_ca *)base)->cfg.o.root;
}

static int cmp_token_lock(tool_ca *base, const unsigned char *serial, size_t len, char *err,
                          size_t errlen)
{
    const char *dir = ((cmp_ca *)base)->cfg.lock_dir;
    int fd = dir[0] ? tool_token_lock(dir, serial, len) : -1;

    if (fd == -1)
        snprintf(err, errlen,
                 "cannot take the token's lock in %s: %s (choose a writable directory with "
                 "--cmp-lock-dir)",
                 dir[0] ? dir : "the lock directory", strerror(errno));
    return fd;
}

static void cmp_close(tool_ca *base)
{
    cmp_ca *ca = (cmp_ca *)base;
    tool_cmp_station_clear(&ca->cfg);
    tool_ca_base_clear(&ca->base);
    free(ca);
}

/* No find_by_key: the station cannot read the server's records; a CA that
 * gets the same key again answers from its own (`ca serve` does). */
static const tool_ca_ops cmp_ops = {
    .name = "CMP",
    .check = cmp_check,
    .issue_batch = cmp_issue_batch,
    .root = cmp_root,
    .token_lock = cmp_token_lock,
    .close = cmp_close,
    .renews_by_signature = 1,
};
