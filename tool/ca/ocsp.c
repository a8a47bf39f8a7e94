/*
 * The OCSP responder and CRL download of `ca serve` (issue 12), on
 * OpenSSL's OCSP API (RFC 6960):
 *
 *   POST, Content-Type application/ocsp-request, body a DER OCSPRequest;
 *   GET  .../ocsp/<base64 of the DER OCSPRequest> (RFC 6960 appendix A.1);
 *   GET  .../crl (or any path ending .crl): DIR/crl.pem as DER, the CRL
 *        `tokenmint ca crl` made last.
 *
 * Each CertID is answered from the CA's records: good, revoked (time and
 * reason) or unknown (another issuer, or a serial the CA never issued).
 * A request nonce is copied into the response. Responses are signed by the
 * CA key, or by a delegated OCSP signer (--ocsp-cert/--ocsp-key: a
 * certificate the CA issued with extendedKeyUsage OCSPSigning), checked at
 * start.
 */
#include "ca/ocsp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct tool_ocsp {
    tool_ca *ca;
    X509 *root;             /* borrowed from ca */
    X509 *signer;           /* owned: root or the delegated signer */
    EVP_PKEY *key;          /* owned ref */
    STACK_OF(X509) * certs; /* sent with delegated responses: the signer */
    OCSP_CERTID *id_sha1;   /* the root as a CertID issuer, SHA-1 (what clients use) */
    char crl_path[4200];
    const char *log_name;
};

tool_ocsp *tool_ocsp_new(tool_ca *ca, const char *dir, const char *cert_path, const char *key_path,
                         OSSL_LIB_CTX *libctx, const char *log_name, char *err, size_t errlen)
{
    tool_ocsp *o = calloc(1, sizeof *o);
    EVP_PKEY *cakey = NULL;
    X509 *root = NULL;

    tool_return_val_if_fail(ca != NULL && dir != NULL, NULL);
    if (!o)
        goto oom;
    o->ca = ca;
    o->log_name = log_name;
    snprintf(o->crl_path, sizeof o->crl_path, "%s/crl.pem", dir);
    if (!tool_ca_local_signer(ca, &root, &cakey)) {
        snprintf(err, errlen, "OCSP needs the local CA's key");
        goto fail;
    }
    o->root = root;
    if (cert_path || key_path) {
        FILE *f;
        if (!cert_path || !key_path) {
            snprintf(err, errlen, "--ocsp-cert and --ocsp-key go together");
            goto fail;
        }
        f = fopen(cert_path, "r");
        o->signer = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        f = fopen(key_path, "r");
        o->key = f ? PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, libctx, NULL) : NULL;
        if (f)
            fclose(f);
        if (!o->signer || !o->key) {
            snprintf(err, errlen,
                     "--ocsp-cert %s / --ocsp-key %s: not a PEM certificate and unencrypted PEM "
                     "key",
                     cert_path, key_path);
            goto fail;
        }
        /* fail closed: a delegated signer clients would refuse is refused now */
        if (X509_check_private_key(o->signer, o->key) != 1) {
            snprintf(err, errlen, "--ocsp-key does not match --ocsp-cert");
            goto fail;
        }
        if (X509_check_issued(root, o->signer) != X509_V_OK ||
            X509_verify(o->signer, X509_get0_pubkey(root)) != 1) {
            snprintf(err, errlen, "--ocsp-cert is not issued by this CA (RFC 6960 4.2.2.2)");
            goto fail;
        }
        if (!(X509_get_extension_flags(o->signer) & EXFLAG_XKUSAGE) ||
            !(X509_get_extended_key_usage(o->signer) & XKU_OCSP_SIGN)) {
            snprintf(err, errlen, "--ocsp-cert has no extendedKeyUsage OCSPSigning");
            goto fail;
        }
        o->certs = sk_X509_new_null();
        if (!o->certs || !sk_X509_push(o->certs, o->signer) || !X509_up_ref(o->signer))
            goto oom;
    } else {
        o->signer = root;
        X509_up_ref(root);
        o->key = cakey;
        EVP_PKEY_up_ref(cakey);
    }
    o->id_sha1 = OCSP_cert_to_id(EVP_sha1(), NULL, root);
    if (!o->id_sha1)
        goto oom;
    ERR_clear_error();
    return o;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    ERR_clear_error();
    tool_ocsp_free(o);
    return NULL;
}

void tool_ocsp_free(tool_ocsp *o)
{
    if (!o)
        return;
    X509_free(o->signer);
    EVP_PKEY_free(o->key);
    sk_X509_pop_free(o->certs, X509_free);
    OCSP_CERTID_free(o->id_sha1);
    free(o);
}

/* Is cid about a certificate of our root? Compares the issuer hashes with
 * the digest the client chose. */
static int ours(tool_ocsp *o, OCSP_CERTID *cid)
{
    ASN1_OBJECT *md_oid = NULL;
    ASN1_INTEGER *sn = NULL;
    OCSP_CERTID *mine;
    const EVP_MD *md;
    int same;

    if (!OCSP_id_get0_info(NULL, &md_oid, NULL, &sn, cid))
        return 0;
    if (OBJ_obj2nid(md_oid) == NID_sha1)
        return OCSP_id_issuer_cmp(o->id_sha1, cid) == 0;
    md = EVP_get_digestbyobj(md_oid);
    mine = md ? OCSP_cert_to_id(md, NULL, o->root) : NULL;
    same = mine && OCSP_id_issuer_cmp(mine, cid) == 0;
    OCSP_CERTID_free(mine);
    return same;
}

static OCSP_RESPONSE *answer(tool_ocsp *o, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *rsp = NULL;
    ASN1_TIME *now = NULL;
    int i, n;

    if (!req || p != der + len) {
        rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, NULL);
        goto out;
    }
    n = OCSP_request_onereq_count(req);
    bs = OCSP_BASICRESP_new();
    now = X509_gmtime_adj(NULL, 0);
    if (n <= 0 || n > 64 || !bs || !now) {
        rsp = OCSP_response_create(n <= 0 || n > 64 ? OCSP_RESPONSE_STATUS_MALFORMEDREQUEST
                                                    : OCSP_RESPONSE_STATUS_INTERNALERROR,
                                   NULL);
        goto out;
    }
    for (i = 0; i < n; i++) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        ASN1_INTEGER *sn = NULL;
        int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1;
        ASN1_TIME *revtime = NULL;

        if (ours(o, cid) && OCSP_id_get0_info(NULL, NULL, NULL, &sn, cid)) {
            char st = 0, err[300];
            int64_t at = 0;
            int known = tool_ca_status(o->ca, X509_get_subject_name(o->root), sn, &st, &at, &reason,
                                       err, sizeof err);
            if (known < 0) {
                rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
                goto out;
            }
            if (known > 0 && st == TOOL_CS_REVOKED) {
                status = V_OCSP_CERTSTATUS_REVOKED;
                revtime = ASN1_TIME_set(NULL, (time_t)at);
                if (reason < 0)
                    reason = OCSP_REVOKED_STATUS_UNSPECIFIED;
            } else if (known > 0) {
                /* valid, expired, superseded: not revoked (RFC 6960 2.2) */
                status = V_OCSP_CERTSTATUS_GOOD;
            }
        }
        if (!OCSP_basic_add1_status(bs, cid, status, reason, revtime, now, NULL)) {
            ASN1_TIME_free(revtime);
            rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_INTERNALERROR, NULL);
            goto out;
        }
        ASN1_TIME_free(revtime);
    }
    if (OCSP_copy_nonce(bs, req) <= 0 ||
        !OCSP_basic_sign(bs, o->signer, o->key,
                         EVP_PKEY_get_id(o->key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256(),
                         o->certs, o->certs ? 0 : OCSP_NOCERTS)) {
        rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_INTERNALERROR, NULL);
        goto out;
    }
    rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
out:
    OCSP_REQUEST_free(req);
    OCSP_BASICRESP_free(bs);
    ASN1_TIME_free(now);
    ERR_clear_error();
    return rsp;
}

static int der_out(OCSP_RESPONSE *rsp, unsigned char **out, size_t *outlen)
{
    unsigned char *der = NULL;
    int n = rsp ? i2d_OCSP_RESPONSE(rsp, &der) : -1;
    if (n <= 0)
        return 0;
    *out = malloc((size_t)n);
    if (*out) {
        memcpy(*out, der, (size_t)n);
        *outlen = (size_t)n;
    }
    OPENSSL_free(der);
    return *out != NULL;
}

static int text_out(const char *msg, unsigned char **out, size_t *outlen, int status)
{
    *out = (unsigned char *)strdup(msg);
    *outlen = *out ? strlen(msg) : 0;
    return status;
}

/* RFC 6960 A.1: the request after the last "/ocsp/", base64 (URL-decoded
 * by libmicrohttpd already), possibly with '+' turned into ' '. */
static unsigned char *from_base64(const char *s, size_t *len)
{
    size_t n = strlen(s), i, o = 0, pad = 0;
    char *t = malloc(n + 4);
    unsigned char *bin = NULL;
    int got = -1;

    if (!t)
        return NULL;
    for (i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            t[o++] = s[i] == ' ' ? '+' : s[i];
    while (o % 4)
        t[o++] = '=';
    t[o] = 0;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    for (i = o; i > 0 && t[i - 1] == '='; i--)
        pad++;
    if (o && pad <= 2)
        bin = malloc(o / 4 * 3 + 1);
    if (bin)
        got = EVP_DecodeBlock(bin, (unsigned char *)t, (int)o);
    free(t);
    if (got < (int)pad) {
        free(bin);
        return NULL;
    }
    *len = (size_t)got - pad;
    return bin;
}

int tool_ocsp_http(void *ctx, const char *method, const char *url, const char *ctype,
                   const unsigned char *body, size_t len, unsigned char **out, size_t *outlen,
                   const char **out_type)
{
    tool_ocsp *o = ctx;
    OCSP_RESPONSE *rsp = NULL;
    const char *b64;
    size_t ul = strlen(url);
    int status = 0;

    *out = NULL;
    *outlen = 0;
    if (!strcmp(method, "POST")) {
        if (!ctype || strncasecmp(ctype, "application/ocsp-request", 24) != 0)
            return 0; /* not ours: CMP */
        rsp = answer(o, body, len);
    } else if (!strcmp(method, "GET") && ul >= 4 &&
               (!strcmp(url + ul - 4, ".crl") || (ul >= 4 && !strcmp(url + ul - 4, "/crl")))) {
        FILE *f = fopen(o->crl_path, "r");
        X509_CRL *crl = f ? PEM_read_X509_CRL(f, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int n;
        if (f)
            fclose(f);
        if (!crl)
            return text_out("no CRL yet: the CA operator runs `tokenmint ca crl DIR`\n", out,
                            outlen, 404);
        n = i2d_X509_CRL(crl, &der);
        X509_CRL_free(crl);
        if (n <= 0)
            return text_out("cannot encode the CRL\n", out, outlen, 500);
        *out = malloc((size_t)n);
        if (*out) {
            memcpy(*out, der, (size_t)n);
            *outlen = (size_t)n;
        }
        OPENSSL_free(der);
        *out_type = "application/pkix-crl";
        return *out ? 200 : 500;
    } else if (!strcmp(method, "GET") && (b64 = strstr(url, "/ocsp/")) != NULL) {
        size_t blen = 0;
        unsigned char *bin = from_base64(b64 + 6, &blen);
        if (!bin)
            return text_out("GET /ocsp/: not base64 of a DER OCSPRequest\n", out, outlen, 400);
        rsp = answer(o, bin, blen);
        free(bin);
    } else if (!strcmp(method, "GET")) {
        return text_out("CMP over HTTP takes POST only; GET serves .../crl and "
                        ".../ocsp/<base64 request>\n",
                        out, outlen, 405);
    } else {
        return 0;
    }
    if (!der_out(rsp, out, outlen))
        status = text_out("cannot make an OCSP response\n", out, outlen, 500);
    else {
        *out_type = "application/ocsp-response";
        status = 200;
    }
    OCSP_RESPONSE_free(rsp);
    return status;
}
