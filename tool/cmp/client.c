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
#include <strings.h>
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
        if (!tool_secret_read(value, NULL, "secret", buf, sizeof buf, &len, err, errlen))
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

int tool_cmp_client_check(const tool_cmp_client_opts *o, const char *prefix, char *err,
                          size_t errlen)
{
    int ssl = 0;

    tool_return_val_if_fail(o != NULL && prefix != NULL, 0);
    if (o->url && strncasecmp(o->url, "https://", 8) == 0) {
        snprintf(err, errlen,
                 "%s %s: https is not supported here (use http on a trusted network or a TLS "
                 "proxy)",
                 prefix, o->url);
        return 0;
    }
    /* OpenSSL's parser takes a bare "host port" too: say the scheme. */
    if (!o->url || strncasecmp(o->url, "http://", 7) != 0 ||
        !OSSL_HTTP_parse_url(o->url, &ssl, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) {
        ERR_clear_error();
        snprintf(err, errlen, "%s %s: not an http://HOST:PORT/PATH URL", prefix,
                 o->url ? o->url : "(none)");
        return 0;
    }
    if (!o->secret_len && !o->cert && !o->key) {
        snprintf(err, errlen,
                 "%s needs %s-secret-source FILE or %s-cert/%s-key to protect its messages", prefix,
                 prefix, prefix, prefix);
        return 0;
    }
    if (o->secret_len && !o->ref[0]) {
        snprintf(err, errlen,
                 "%s-secret-source needs %s-ref REF: the reference (senderKID) the server knows "
                 "the secret by",
                 prefix, prefix);
        return 0;
    }
    if (!o->cert != !o->key) {
        snprintf(err, errlen, "%s-cert and %s-key go together", prefix, prefix);
        return 0;
    }
    if (o->cert && X509_check_private_key(o->cert, o->key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s-key is not the key of %s-cert", prefix, prefix);
        return 0;
    }
    return 1;
}

/* signer/signer_key: protect with this certificate and key instead of the
 * options' own (a kur is signed with the certificate it updates). */
static int setup_ctx(OSSL_CMP_CTX *ctx, const tool_cmp_client_opts *o, X509 *signer,
                     EVP_PKEY *signer_key, char *err, size_t errlen)
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
    if (signer) {
        /* no secret: OpenSSL would protect with it rather than the key */
        if (!OSSL_CMP_CTX_set1_cert(ctx, signer) || !OSSL_CMP_CTX_set1_pkey(ctx, signer_key))
            goto oom;
    } else {
        if (o->secret_len && !OSSL_CMP_CTX_set1_secretValue(ctx, o->secret, (int)o->secret_len))
            goto oom;
        if (o->ref[0] && !OSSL_CMP_CTX_set1_referenceValue(ctx, (const unsigned char *)o->ref,
                                                           (int)strlen(o->ref)))
            goto oom;
        if (o->cert && o->key &&
            (!OSSL_CMP_CTX_set1_cert(ctx, o->cert) || !OSSL_CMP_CTX_set1_pkey(ctx, o->key)))
            goto oom;
    }
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
    } else if (signer && !o->srvcert && o->root) {
        /* A signed request gets a signed answer: without a trust anchor of
         * its own the station takes a CMP signer the CA root certified. */
        X509_STORE *st = X509_STORE_new();
        if (!st || !X509_STORE_add_cert(st, o->root) || !OSSL_CMP_CTX_set0_trustedStore(ctx, st)) {
            X509_STORE_free(st);
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

/* Why an exchange gave no result: the server's PKIStatusInfo (and its first
 * failInfo bit) when it answered, else what OpenSSL says went wrong. */
static void exchange_error(OSSL_CMP_CTX *ctx, const tool_cmp_client_opts *o, int *failinfo,
                           char *err, size_t errlen)
{
    char st[512], e[256];

    if (OSSL_CMP_CTX_get_status(ctx) < 0) {
        snprintf(err, errlen, "CMP exchange with %s failed: %s", o->url,
                 tool_ossl_err(e, sizeof e));
        return;
    }
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
}

X509 *tool_cmp_client_p10cr(const tool_cmp_client_opts *o, const X509_REQ *req, int *failinfo,
                            char *err, size_t errlen)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(o->libctx, NULL);
    X509 *cert = NULL, *got;
    conf_check cc = {.req = req};

    if (failinfo)
        *failinfo = -1;
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!setup_ctx(ctx, o, NULL, NULL, err, errlen))
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
    if (cc.why[0])
        snprintf(err, errlen, "CMP server %s: %s", o->url, cc.why);
    else
        exchange_error(ctx, o, failinfo, err, errlen);
out:
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return cert;
}

X509 *tool_cmp_client_kur(const tool_cmp_client_opts *o, X509 *old_cert, EVP_PKEY *old_key,
                          EVP_PKEY *new_key, const X509_REQ *req, int *failinfo, char *err,
                          size_t errlen)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(o->libctx, NULL);
    X509 *cert = NULL, *got;
    conf_check cc = {.req = req};

    if (failinfo)
        *failinfo = -1;
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!setup_ctx(ctx, o, old_cert, old_key, err, errlen))
        goto out;
    /* The template takes subject and extensions from the request (the
     * profile built it); without NODEFAULT OpenSSL would add the old
     * certificate's SAN a second time. */
    if (!OSSL_CMP_CTX_set1_oldCert(ctx, old_cert) || !OSSL_CMP_CTX_set1_p10CSR(ctx, req) ||
        !OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_SUBJECTALTNAME_NODEFAULT, 1) ||
        !EVP_PKEY_up_ref(new_key)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!OSSL_CMP_CTX_set0_newPkey(ctx, 1, new_key)) {
        EVP_PKEY_free(new_key);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!OSSL_CMP_CTX_set_certConf_cb(ctx, check_new_cert) ||
        !OSSL_CMP_CTX_set_certConf_cb_arg(ctx, &cc)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    got = OSSL_CMP_exec_KUR_ses(ctx);
    if (got) {
        cert = X509_dup(got);
        goto out;
    }
    if (cc.why[0]) {
        snprintf(err, errlen, "CMP server %s: %s", o->url, cc.why);
    } else {
        exchange_error(ctx, o, failinfo, err, errlen);
        if (strstr(err, "missing secret"))
            snprintf(err, errlen,
                     "CMP server %s answered a kur under the shared secret only, which the "
                     "station cannot check: a kur is signed with the certificate it renews, so "
                     "the server has to trust that certificate's CA and sign its answers (ca "
                     "serve --trusted CA.pem --srv-cert/--srv-key)",
                     o->url);
    }
out:
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return cert;
}

int tool_cmp_client_rr(const tool_cmp_client_opts *o, X509 *cert, int *failinfo, char *err,
                       size_t errlen)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(o->libctx, NULL);
    int ok = 0;

    if (failinfo)
        *failinfo = -1;
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    if (!setup_ctx(ctx, o, NULL, NULL, err, errlen))
        goto out;
    if (!OSSL_CMP_CTX_set1_oldCert(ctx, cert)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (OSSL_CMP_exec_RR_ses(ctx) == 1)
        ok = 1;
    else
        exchange_error(ctx, o, failinfo, err, errlen);
out:
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return ok;
}
