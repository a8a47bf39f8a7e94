/*
 * verify --ocsp URL (issue 12): a certificate's revocation status asked of
 * an OCSP responder (RFC 6960) over plain HTTP POST, with a nonce. The
 * answer counts only when it is signed by the certificate's issuer or by a
 * responder the issuer delegated to (OCSP_basic_verify against the same
 * trust store verify uses), echoes our nonce, and is current.
 */
#include "ui/ui.h"

#include <string.h>
#include <time.h>

#include <openssl/http.h>
#include <openssl/ocsp.h>

#define OCSP_TIMEOUT_S 20
#define OCSP_MAX_RESPONSE (100 * 1024)
#define OCSP_SKEW_S 300 /* thisUpdate/nextUpdate slack between clocks */

int tool_ocsp_url_check(const char *url, char *err, size_t errlen)
{
    char *host = NULL, *port = NULL, *path = NULL;
    int ssl = 0, ok = 0;
    const char *c;

    tool_return_val_if_fail(url != NULL, 0);
    for (c = url; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            break;
    if (strncmp(url, "https://", 8) == 0)
        snprintf(err, errlen,
                 "--ocsp %s: only http:// (OCSP answers are signed; TLS adds nothing here)", url);
    else if (strncmp(url, "http://", 7) != 0 || *c)
        snprintf(err, errlen, "--ocsp %s: not an http://HOST:PORT/PATH URL", url);
    else if (OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1 ||
             !host || !*host)
        snprintf(err, errlen, "--ocsp %s: does not parse as http://HOST:PORT/PATH", url);
    else
        ok = 1;
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return ok;
}

/* The certificate's issuer from the trust store (the CA root). Caller frees. */
static X509 *issuer_of(X509_STORE *roots, X509 *cert)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *iss = NULL;

    if (ctx && X509_STORE_CTX_init(ctx, roots, cert, NULL) &&
        X509_STORE_CTX_get1_issuer(&iss, ctx, cert) != 1)
        iss = NULL;
    X509_STORE_CTX_free(ctx);
    return iss;
}

static OCSP_RESPONSE *transfer(const char *url, OCSP_REQUEST *req, char *err, size_t errlen)
{
    char *host = NULL, *port = NULL, *path = NULL;
    BIO *rbio = NULL, *resp = NULL;
    OCSP_RESPONSE *out = NULL;
    int ssl = 0;

    if (OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1) {
        snprintf(err, errlen, "not a URL: %s", url);
        goto out;
    }
    rbio = BIO_new(BIO_s_mem());
    if (!rbio || i2d_OCSP_REQUEST_bio(rbio, req) <= 0) {
        snprintf(err, errlen, "cannot encode the OCSP request");
        goto out;
    }
    resp = OSSL_HTTP_transfer(NULL, host, port, path, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                              NULL, "application/ocsp-request", rbio, "application/ocsp-response",
                              1, OCSP_MAX_RESPONSE, OCSP_TIMEOUT_S, 0);
    if (!resp) {
        char e[300];
        snprintf(err, errlen, "no answer from %s: %s", url, tool_ossl_err(e, sizeof e));
        goto out;
    }
    out = d2i_OCSP_RESPONSE_bio(resp, NULL);
    if (!out)
        snprintf(err, errlen, "%s did not answer with an OCSP response", url);
out:
    BIO_free(resp);
    BIO_free(rbio);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return out;
}

static void when_text(const ASN1_GENERALIZEDTIME *t, char *out, size_t outlen)
{
    struct tm tm;
    snprintf(out, outlen, "?");
    if (t && ASN1_TIME_to_tm(t, &tm))
        strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int tool_ocsp_check(const char *url, X509 *cert, X509_STORE *roots, int *revoked, char *msg,
                    size_t msglen)
{
    OCSP_REQUEST *req = NULL;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    X509 *issuer = NULL;
    STACK_OF(X509) *signers = NULL;
    int status = -1, reason = -1, rc, ok = 0;
    char e[300];

    tool_return_val_if_fail(url && cert && roots && revoked && msg, 0);
    *revoked = 0;
    msg[0] = 0;
    issuer = issuer_of(roots, cert);
    if (!issuer) {
        snprintf(msg, msglen, "OCSP: the issuer is not in the trust store");
        goto out;
    }
    req = OCSP_REQUEST_new();
    id = OCSP_cert_to_id(NULL, cert, issuer);
    if (!req || !id || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        snprintf(msg, msglen, "OCSP: cannot make the request");
        goto out;
    }
    id = OCSP_CERTID_dup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)));
    if (!id || !OCSP_request_add1_nonce(req, NULL, -1)) {
        snprintf(msg, msglen, "OCSP: cannot make the request");
        goto out;
    }
    resp = transfer(url, req, e, sizeof e);
    if (!resp) {
        snprintf(msg, msglen, "OCSP: %s", e);
        goto out;
    }
    rc = OCSP_response_status(resp);
    if (rc != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(msg, msglen, "OCSP: the responder answered %s", OCSP_response_status_str(rc));
        goto out;
    }
    bs = OCSP_response_get1_basic(resp);
    if (!bs) {
        snprintf(msg, msglen, "OCSP: the answer is not a basic response");
        goto out;
    }
    /* a replayed or foreign answer is worth nothing */
    if (OCSP_check_nonce(req, bs) != 1) {
        snprintf(msg, msglen, "OCSP: the answer does not echo our nonce");
        goto out;
    }
    /* a response the CA signs itself need not carry the CA certificate */
    signers = sk_X509_new_null();
    if (!signers || !sk_X509_push(signers, issuer)) {
        snprintf(msg, msglen, "out of memory");
        goto out;
    }
    if (OCSP_basic_verify(bs, signers, roots, 0) <= 0) {
        snprintf(msg, msglen, "OCSP: the answer's signature does not verify: %s",
                 tool_ossl_err(e, sizeof e));
        goto out;
    }
    if (!OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd)) {
        snprintf(msg, msglen, "OCSP: the answer says nothing of this certificate");
        goto out;
    }
    if (!OCSP_check_validity(thisupd, nextupd, OCSP_SKEW_S, -1)) {
        snprintf(msg, msglen, "OCSP: the answer is not current");
        goto out;
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED) {
        char when[32];
        when_text(rev, when, sizeof when);
        snprintf(msg, msglen, "revoked on %s, reason %s (OCSP)", when,
                 reason >= 0 ? OCSP_crl_reason_str(reason) : "unspecified");
        *revoked = 1;
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        snprintf(msg, msglen, "OCSP: the responder does not know this certificate");
        goto out;
    }
    ok = 1;
out:
    sk_X509_free(signers); /* issuer is freed below */
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    X509_free(issuer);
    return ok;
}
