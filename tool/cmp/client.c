/*
 * The station (and the relay, upstream) as a CMP client on OpenSSL's client
 * API. One OSSL_CMP_CTX per transaction, so requests for many tokens are in
 * flight at once, each on its own thread; OpenSSL handles "waiting" answers by
 * polling (pollReq) until the certificate can be downloaded.
 *
 * The station asks for implicit confirmation (one round trip); a server that
 * does not grant it gets a certConf. Step 11 (verify against the CA root) and
 * step 12 (write to the token the certificate names) stay in the pipeline: a
 * certificate from the network is trusted no more than one from the local CA.
 */
#include "ca/ca.h"
#include "cmp/cmp.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>

void tool_cmp_client_opts_clear(tool_cmp_client_opts *o)
{
    if (!o)
        return;
    OPENSSL_cleanse(o->secret, sizeof o->secret);
    X509_free(o->cert);
    EVP_PKEY_free(o->key);
    sk_X509_pop_free(o->extra, X509_free);
    X509_free(o->srvcert);
    X509_STORE_free(o->trust);
    X509_free(o->root);
    memset(o, 0, sizeof *o);
}

static X509 *read_pem_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

int tool_cmp_client_opt(tool_cmp_client_opts *o, const char *name, const char *value, char *err,
                        size_t errlen)
{
    if (!strcmp(name, "secret-source")) {
        char buf[sizeof o->secret];
        size_t len = 0;
        if (!tool_read_secret_file(value, buf, sizeof buf, &len, err, errlen))
            return 0;
        if (!len) {
            snprintf(err, errlen, "%s: the secret is empty", value);
            return 0;
        }
        memcpy(o->secret, buf, len);
        o->secret_len = len;
        OPENSSL_cleanse(buf, sizeof buf);
        return 1;
    }
    if (!strcmp(name, "ref")) {
        snprintf(o->ref, sizeof o->ref, "%s", value);
        return 1;
    }
    if (!strcmp(name, "cert") || !strcmp(name, "srvcert") || !strcmp(name, "root")) {
        X509 *x = read_pem_cert(value), **slot;
        if (!x) {
            snprintf(err, errlen, "%s: not a readable PEM certificate", value);
            return 0;
        }
        slot = !strcmp(name, "cert") ? &o->cert : !strcmp(name, "srvcert") ? &o->srvcert : &o->root;
        X509_free(*slot);
        *slot = x;
        return 1;
    }
    if (!strcmp(name, "key")) {
        FILE *f = fopen(value, "r");
        EVP_PKEY *k = f ? PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, o->libctx, NULL) : NULL;
        if (f)
            fclose(f);
        if (!k) {
            snprintf(err, errlen, "%s: not a readable unencrypted PEM private key", value);
            return 0;
        }
        EVP_PKEY_free(o->key);
        o->key = k;
        return 1;
    }
    if (!strcmp(name, "trusted")) {
        X509_STORE *st = X509_STORE_new();
        if (!st || X509_STORE_load_file(st, value) != 1) {
            X509_STORE_free(st);
            ERR_clear_error();
            snprintf(err, errlen, "%s: no PEM certificates to trust", value);
            return 0;
        }
        X509_STORE_free(o->trust);
        o->trust = st;
        return 1;
    }
    snprintf(err, errlen, "unknown CMP client option %s", name);
    return 0;
}

static int setup_ctx(OSSL_CMP_CTX *ctx, const tool_cmp_client_opts *o, char *err, size_t errlen)
{
    char *host = NULL, *port = NULL, *path = NULL;
    int ssl = 0, portnum = 0, ok = 0;

    if (!OSSL_HTTP_parse_url(o->url, &ssl, NULL, &host, &port, &portnum, &path, NULL, NULL)) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: not an http://HOST:PORT/PATH URL", o->url);
        goto out;
    }
    if (ssl) {
        snprintf(err, errlen,
                 "%s: https is not supported here (use http on a trusted "
                 "network or a TLS proxy)",
                 o->url);
        goto out;
    }
    OSSL_CMP_CTX_set_log_cb(ctx, tool_cmp_log_cb);
    if (!OSSL_CMP_CTX_set1_server(ctx, host) || !OSSL_CMP_CTX_set_serverPort(ctx, portnum) ||
        !OSSL_CMP_CTX_set1_serverPath(ctx, path))
        goto oom;
    if (o->secret_len) {
        if (!OSSL_CMP_CTX_set1_secretValue(ctx, o->secret, (int)o->secret_len))
            goto oom;
    }
    if (o->ref[0] &&
        !OSSL_CMP_CTX_set1_referenceValue(ctx, (const unsigned char *)o->ref, (int)strlen(o->ref)))
        goto oom;
    if (o->cert && o->key &&
        (!OSSL_CMP_CTX_set1_cert(ctx, o->cert) || !OSSL_CMP_CTX_set1_pkey(ctx, o->key)))
        goto oom;
    if (o->extra && !OSSL_CMP_CTX_set1_untrusted(ctx, o->extra))
        goto oom;
    if (o->srvcert && !OSSL_CMP_CTX_set1_srvCert(ctx, o->srvcert))
        goto oom;
    if (o->trust) {
        if (!X509_STORE_up_ref(o->trust))
            goto oom;
        if (!OSSL_CMP_CTX_set0_trustedStore(ctx, o->trust)) {
            X509_STORE_free(o->trust);
            goto oom;
        }
    }
    OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1);
    OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, 30);
    OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, o->timeout > 0 ? o->timeout : 120);
    ok = 1;
    goto out;
oom:
    snprintf(err, errlen, "cannot set up the CMP client: out of memory");
out:
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return ok;
}

typedef struct conf_check {
    const X509_REQ *req;
    char why[500];
} conf_check;

/*
 * certConf: the station takes no certificate that names no token or
 * certifies another key than the one it asked for, and says so to the CA in
 * its certConf (rejection) before the pipeline's own step 11 ever sees it.
 */
static int check_new_cert(OSSL_CMP_CTX *ctx, X509 *cert, int fail_info, const char **txt)
{
    conf_check *cc = OSSL_CMP_CTX_get_certConf_cb_arg(ctx);
    tm_violations *v;
    tm_binding b;
    char j[300] = "";

    if (!cc || !cert)
        return fail_info;
    v = tm_violations_new();
    memset(&b, 0, sizeof b);
    /* OpenSSL has compared the keys already (fail_info incorrectData) */
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), X509_REQ_get0_pubkey((X509_REQ *)cc->req)) != 1) {
        snprintf(cc->why, sizeof cc->why,
                 "the certificate from the server is for another key than the token's; "
                 "not written, refused in certConf");
        fail_info |= 1 << OSSL_CMP_PKIFAILUREINFO_incorrectData;
    } else if (!v || !tm_binding_from_cert(NULL, cert, &b, v)) {
        if (v)
            tm_violations_join(v, j, sizeof j);
        snprintf(cc->why, sizeof cc->why,
                 "the certificate from the server names no token (no serial binding: %s); "
                 "not written, refused in certConf",
                 j);
        fail_info |= 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    }
    tm_violations_free(v);
    ERR_clear_error();
    if (fail_info && cc->why[0])
        *txt = cc->why;
    return fail_info;
}

X509 *tool_cmp_client_p10cr(const tool_cmp_client_opts *o, const X509_REQ *req, int *failinfo,
                            char *err, size_t errlen)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(o->libctx, NULL);
    X509 *cert = NULL, *got;
    char st[512], e[256];
    conf_check cc = {.req = req};

    if (failinfo)
        *failinfo = -1;
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!setup_ctx(ctx, o, err, errlen))
        goto out;
    if (!OSSL_CMP_CTX_set1_p10CSR(ctx, req) || !OSSL_CMP_CTX_set_certConf_cb(ctx, check_new_cert) ||
        !OSSL_CMP_CTX_set_certConf_cb_arg(ctx, &cc)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    got = OSSL_CMP_exec_P10CR_ses(ctx);
    if (got) {
        cert = X509_dup(got);
        goto out;
    }
    if (cc.why[0]) {
        snprintf(err, errlen, "CMP server %s: %s", o->url, cc.why);
    } else if (OSSL_CMP_CTX_get_status(ctx) >= 0) {
        /* the server answered: its PKIStatusInfo says why */
        if (failinfo) {
            int fi = OSSL_CMP_CTX_get_failInfoCode(ctx), b;
            for (b = 0; b <= OSSL_CMP_PKIFAILUREINFO_MAX; b++)
                if (fi & (1 << b)) {
                    *failinfo = b;
                    break;
                }
        }
        OSSL_CMP_CTX_snprint_PKIStatus(ctx, st, sizeof st);
        snprintf(err, errlen, "CMP server %s: %s", o->url, st);
    } else {
        snprintf(err, errlen, "CMP exchange with %s failed: %s", o->url,
                 tool_ossl_err(e, sizeof e));
    }
out:
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return cert;
}

/* ---- `tokenmint issue --cmp URL` --------------------------------------------------- */

static tool_cmp_client_opts station;
static char station_url[2048];
static int station_active;
static char station_lock_dir[PATH_MAX];

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

int tool_cmp_active(void)
{
    return station_active;
}

/*
 * Without a CA directory, two `issue --cmp` runs on one station meet only in
 * a station-local directory; every run has to pick the same one, so the
 * default depends on nothing but the user's runtime directory. Settled while
 * the arguments are read, before any worker thread asks for it.
 */
static int default_lock_dir(void)
{
    const char *rt = getenv("XDG_RUNTIME_DIR");
    size_t len;

    if (station_lock_dir[0])
        return 1;
    if (!rt || rt[0] != '/')
        rt = "/run";
    len = strlen(rt);
    if (len >= sizeof station_lock_dir - 100)
        return 0;
    memcpy(station_lock_dir, rt, len);
    memcpy(station_lock_dir + len, "/tokenmint", sizeof "/tokenmint");
    mkdir(station_lock_dir, 0755);
    memcpy(station_lock_dir + len + strlen("/tokenmint"), "/locks", sizeof "/locks");
    return 1;
}

const char *tool_cmp_lock_dir(void)
{
    return station_active && station_lock_dir[0] ? station_lock_dir : NULL;
}

X509 *tool_cmp_station_root(void)
{
    return station_active ? station.root : NULL;
}

int tool_cmp_take_args(int *argc, char **argv)
{
    int i, j, n = *argc;
    char err[600];

    for (i = 1; i < n;) {
        const char *a = argv[i], *val;
        char name[64];
        const char *eq;
        int used = 2;

        if (strncmp(a, "--cmp", 5) != 0 || (a[5] && a[5] != '-' && a[5] != '=')) {
            i++;
            continue;
        }
        eq = strchr(a, '=');
        if (eq) {
            val = eq + 1;
            used = 1;
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
        } else {
            if (i + 1 >= n) {
                tool_err("issue: %s needs a value", a);
                return 0;
            }
            val = argv[i + 1];
            snprintf(name, sizeof name, "%s", a);
        }
        if (!strcmp(name, "--cmp")) {
            snprintf(station_url, sizeof station_url, "%s", val);
            station.url = station_url;
            station_active = 1;
        } else if (!strcmp(name, "--cmp-lock-dir")) {
            if (!val[0] || strlen(val) >= sizeof station_lock_dir - 80) {
                tool_err("issue: --cmp-lock-dir: a directory path (at most %zu bytes)",
                         sizeof station_lock_dir - 81);
                return 0;
            }
            snprintf(station_lock_dir, sizeof station_lock_dir, "%s", val);
        } else if (!strcmp(name, "--cmp-jobs") || !strcmp(name, "--cmp-timeout")) {
            char *end;
            long v = strtol(val, &end, 10), max = !strcmp(name, "--cmp-jobs") ? 64 : 3600;
            if (*end || v < 1 || v > max) {
                tool_err("issue: %s %s: a number from 1 to %ld", name, val, max);
                return 0;
            }
            if (!strcmp(name, "--cmp-jobs"))
                station.jobs = (int)v;
            else
                station.timeout = (int)v;
        } else if (!tool_cmp_client_opt(&station, name + 6, val, err, sizeof err)) {
            tool_err("issue: %s: %s", name, err);
            return 0;
        }
        for (j = i; j + used <= n; j++)
            argv[j] = argv[j + used];
        n -= used;
    }
    *argc = n;
    argv[n] = NULL;
    if (!station_active) {
        if (station.secret_len || station.cert || station.root || station_lock_dir[0]) {
            tool_err("issue: --cmp-* options need --cmp URL");
            return 0;
        }
        return 1;
    }
    if (!station.root) {
        tool_err("issue: --cmp needs --cmp-root FILE, the CA root to verify certificates "
                 "against (step 11)");
        return 0;
    }
    if (!station.secret_len && !(station.cert && station.key)) {
        tool_err("issue: --cmp needs --cmp-secret-source FILE or --cmp-cert/--cmp-key to "
                 "protect its messages");
        return 0;
    }
    if (!station.jobs)
        station.jobs = 8;
    if (!default_lock_dir()) {
        tool_err("issue: $XDG_RUNTIME_DIR is too long for the token locks; choose a directory "
                 "with --cmp-lock-dir");
        return 0;
    }
    return 1;
}

typedef struct batch_ctx {
    pthread_mutex_t mu;
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
        it->cert = tool_cmp_client_p10cr(&station, it->req, NULL, it->error, sizeof it->error);
        if (it->cert) {
            pthread_mutex_lock(&b->mu);
            b->issued++;
            pthread_mutex_unlock(&b->mu);
        }
        it->done = 1;
    }
    return NULL;
}

size_t tool_cmp_issue_batch(tool_ca_item *items, size_t n)
{
    batch_ctx b = {.items = items, .n = n};
    pthread_t th[64];
    size_t nth = (size_t)(station.jobs > 0 ? station.jobs : 8), i, started = 0;

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
