/*
 * The serving side that `ca serve` and `relay` share: the options that say
 * where to listen and how stations authenticate, loading what they name, and
 * running the CMP server over HTTP until SIGINT/SIGTERM. Each command adds
 * its own options and backend.
 */
#include "cmp/cmp.h"
#include "station/station.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

void tool_cmp_front_init(tool_cmp_front *f, const char *name)
{
    memset(f, 0, sizeof *f);
    f->name = name;
    f->max_body = TOOL_CMP_MAX_BODY_DEFAULT;
    tool_cmp_http_limits_init(&f->lim);
}

/* A whole number in lo..hi for option NAME, else said and 0. */
static int front_uint(const tool_cmp_front *f, const char *name, const char *arg, unsigned lo,
                      unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi) {
        tool_err("%s: --%s %s: a whole number from %u to %u", f->name, name, arg, lo, hi);
        return 0;
    }
    *out = (unsigned)v;
    return 1;
}

int tool_cmp_front_opt(tool_cmp_front *f, int code, const char *arg)
{
    char *end;

    switch (code) {
    case TOOL_FRONT_LISTEN:
        f->listen = arg;
        return 1;
    case TOOL_FRONT_PORTFILE:
        f->port_file = arg;
        return 1;
    case TOOL_FRONT_SECRET:
        f->secret_src = arg;
        return 1;
    case TOOL_FRONT_REF:
        f->ref = arg;
        return 1;
    case TOOL_FRONT_TRUSTED:
        f->trusted_src = arg;
        return 1;
    case TOOL_FRONT_SRVCERT:
        f->srvcert = arg;
        return 1;
    case TOOL_FRONT_SRVKEY:
        f->srvkey = arg;
        return 1;
    case TOOL_FRONT_PROFILE:
        f->profile = arg;
        return 1;
    case TOOL_FRONT_MAXCONNS:
        return front_uint(f, "max-connections", arg, 1, 65536, &f->lim.max_conns) ? 1 : -1;
    case TOOL_FRONT_PERCLIENT:
        return front_uint(f, "max-per-client", arg, 1, 65536, &f->lim.per_client) ? 1 : -1;
    case TOOL_FRONT_HDRTIMEOUT:
        return front_uint(f, "header-timeout", arg, 1, 3600, &f->lim.header_s) ? 1 : -1;
    case TOOL_FRONT_BODYTIMEOUT:
        return front_uint(f, "body-timeout", arg, 1, 3600, &f->lim.body_s) ? 1 : -1;
    case TOOL_FRONT_IDLETIMEOUT:
        return front_uint(f, "idle-timeout", arg, 1, 3600, &f->lim.idle_s) ? 1 : -1;
    case TOOL_FRONT_MAXBODY:
        f->max_body = strtoull(arg, &end, 10);
        if (*end || f->max_body < 1024 || f->max_body > 16u * 1024 * 1024) {
            tool_err("%s: --max-body %s: 1024 to 16777216 bytes", f->name, arg);
            return -1;
        }
        return 1;
    }
    return 0;
}

/* Blocks SIGINT/SIGTERM in every thread started from here on; the main
 * thread sigwait()s for them in tool_cmp_http_serve_until_signal. */
static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int tool_cmp_front_check(const tool_cmp_front *f)
{
    if (!f->listen) {
        tool_err("%s: --listen ADDR:PORT is required (see --help)", f->name);
        return 0;
    }
    if (!f->secret_src && !f->trusted_src) {
        tool_err("%s: give --secret-source FILE (PBMAC) and/or --trusted FILE with "
                 "--srv-cert/--srv-key (signatures): unauthenticated requests are never served",
                 f->name);
        return 0;
    }
    if ((f->srvcert || f->srvkey || f->trusted_src) && !(f->srvcert && f->srvkey)) {
        tool_err("%s: signature protection needs --srv-cert and --srv-key together", f->name);
        return 0;
    }
    /* before the crypto setup or the server start any thread */
    block_signals();
    return 1;
}

int tool_cmp_front_load(tool_cmp_front *f, OSSL_LIB_CTX *libctx, tool_cmp_srv_opts *so)
{
    char err[600];
    FILE *fp;

    if (f->secret_src && !tool_secret_read(f->secret_src, NULL, "secret", f->secret,
                                           sizeof f->secret, &f->secret_len, err, sizeof err)) {
        tool_err("%s: --secret-source: %s", f->name, err);
        return 0;
    }
    if (f->secret_src && f->secret_len == 0) {
        tool_err("%s: --secret-source %s: the secret is empty", f->name, f->secret_src);
        return 0;
    }
    f->violations = tm_violations_new();
    f->prof = f->violations ? tm_profile_load(f->profile, f->violations) : NULL;
    if (!f->prof) {
        tm_violations_join(f->violations, err, sizeof err);
        tool_err("profile %s: %s", f->profile ? f->profile : "(built in)", err);
        return 0;
    }
    tm_profile_register_oids(f->prof);
    if (f->srvcert) {
        fp = fopen(f->srvcert, "r");
        f->cert = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
        if (fp)
            fclose(fp);
        fp = fopen(f->srvkey, "r");
        f->key = fp ? PEM_read_PrivateKey_ex(fp, NULL, NULL, NULL, libctx, NULL) : NULL;
        if (fp)
            fclose(fp);
        if (!f->cert || !f->key) {
            tool_err("%s: --srv-cert %s / --srv-key %s: not a readable PEM certificate and "
                     "unencrypted PEM private key",
                     f->name, f->srvcert, f->srvkey);
            return 0;
        }
        if (X509_check_private_key(f->cert, f->key) != 1) {
            tool_err("%s: --srv-key does not match --srv-cert", f->name);
            return 0;
        }
    }
    if (f->trusted_src) {
        f->trusted = X509_STORE_new();
        if (!f->trusted || X509_STORE_load_file(f->trusted, f->trusted_src) != 1) {
            tool_err("%s: --trusted %s: no PEM certificates to trust", f->name, f->trusted_src);
            return 0;
        }
    }
    ERR_clear_error();
    so->libctx = libctx;
    so->secret = (unsigned char *)f->secret;
    so->secret_len = f->secret_len;
    so->ref = f->ref;
    so->cert = f->cert;
    so->key = f->key;
    so->trusted = f->trusted;
    return 1;
}

int tool_cmp_front_run(tool_cmp_front *f, const tool_cmp_srv_opts *so, const tool_cmp_backend *be)
{
    char err[600];
    tool_cmp_srv *srv = tool_cmp_srv_new(so, be, err, sizeof err);
    tool_cmp_http *http = NULL;
    int rc = TOOL_EXIT_USAGE;

    if (!srv) {
        tool_err("%s: %s", f->name, err);
        goto out;
    }
    f->lim.max_body = (size_t)f->max_body;
    f->lim.log_name = so->log_name;
    http = tool_cmp_http_start(f->listen, &f->lim, srv, err, sizeof err);
    if (!http) {
        tool_err("%s: %s", f->name, err);
        goto out;
    }
    if (tool_cmp_http_serve_until_signal(http, f->port_file))
        rc = TOOL_EXIT_OK;
out:
    tool_cmp_http_stop(http);
    tool_cmp_srv_free(srv);
    return rc;
}

void tool_cmp_front_clear(tool_cmp_front *f)
{
    OPENSSL_cleanse(f->secret, sizeof f->secret);
    X509_free(f->cert);
    EVP_PKEY_free(f->key);
    X509_STORE_free(f->trusted);
    tm_profile_free(f->prof);
    tm_violations_free(f->violations);
    f->cert = NULL;
    f->key = NULL;
    f->trusted = NULL;
    f->prof = NULL;
    f->violations = NULL;
}
