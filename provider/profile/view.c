/*
 * One view over requests, certificates and the DER a signing key is asked to
 * sign, so that every reader and check runs the same code for all of them.
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>

int tm_view_from_req(tm_view *v, const X509_REQ *req, tm_violations *errors)
{
    X509_REQ *r = (X509_REQ *)req; /* 3.0 getters are not const-clean */

    memset(v, 0, sizeof(*v));
    v->what = "request";
    v->req = req;
    v->subject = X509_REQ_get_subject_name(req);
    v->pkey = X509_REQ_get0_pubkey(r);
    v->exts = X509_REQ_get_extensions(r);
    v->owns_exts = 1;
    if (v->exts == NULL && (X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) >= 0 ||
                            X509_REQ_get_attr_by_NID(req, NID_ms_ext_req, -1) >= 0)) {
        tm_violations_add(errors, "request extensions cannot be decoded");
        return 0;
    }
    return 1;
}

void tm_view_from_cert(tm_view *v, const X509 *cert)
{
    memset(v, 0, sizeof(*v));
    v->what = "certificate";
    v->subject = X509_get_subject_name(cert);
    v->pkey = X509_get0_pubkey(cert);
    v->exts = (STACK_OF(X509_EXTENSION) *)X509_get0_extensions(cert);
    v->cert = (X509 *)cert;
}

void tm_view_clear(tm_view *v)
{
    if (v->owns_exts)
        sk_X509_EXTENSION_pop_free(v->exts, X509_EXTENSION_free);
    memset(v, 0, sizeof(*v));
}

/*
 * The signer sees only the to-be-signed part. Wrapping it as
 * SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING {} } gives the outer
 * structure libcrypto decodes, without trusting the bytes any further: the
 * placeholder signature is never verified.
 */
static unsigned char *wrap(const unsigned char *der, size_t der_len, const char *what,
                           size_t *out_len, tm_violations *errors)
{
    /* sha256WithRSAEncryption, NULL; then an empty BIT STRING */
    static const unsigned char tail[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                         0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00, 0x03, 0x01, 0x00};
    const unsigned char *p = der;
    long len = 0;
    int tag = 0, xclass = 0, ret;
    size_t body, n = 0;
    unsigned char *out;

    if (der == NULL || der_len == 0) {
        tm_violations_add(errors, "not a DER %s: no bytes", what);
        return NULL;
    }
    if (der_len > 1024 * 1024) {
        tm_violations_add(errors, "not a DER %s: %zu bytes is too large", what, der_len);
        return NULL;
    }
    ret = ASN1_get_object(&p, &len, &tag, &xclass, (long)der_len);
    if ((ret & 0x80) || ret != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
        xclass != V_ASN1_UNIVERSAL) {
        tm_violations_add(errors, "not a DER %s: %s", what,
                          (ret & 0x80) ? "the outer length is wrong or truncated"
                                       : "it does not start with a definite-length SEQUENCE");
        return NULL;
    }
    if ((size_t)(p - der) + (size_t)len != der_len) {
        tm_violations_add(errors, "not a DER %s: the SEQUENCE holds %ld bytes but %zu follow it",
                          what, len, der_len - (size_t)(p - der));
        return NULL;
    }
    body = der_len + sizeof(tail);
    out = OPENSSL_malloc(body + 6);
    if (out == NULL) {
        tm_violations_add(errors, "cannot check the %s: out of memory", what);
        return NULL;
    }
    out[n++] = 0x30;
    if (body < 0x80) {
        out[n++] = (unsigned char)body;
    } else if (body < 0x100) {
        out[n++] = 0x81;
        out[n++] = (unsigned char)body;
    } else if (body < 0x10000) {
        out[n++] = 0x82;
        out[n++] = (unsigned char)(body >> 8);
        out[n++] = (unsigned char)body;
    } else {
        out[n++] = 0x83;
        out[n++] = (unsigned char)(body >> 16);
        out[n++] = (unsigned char)(body >> 8);
        out[n++] = (unsigned char)body;
    }
    memcpy(out + n, der, der_len);
    memcpy(out + n + der_len, tail, sizeof(tail));
    *out_len = n + body;
    return out;
}

static void report_decode_error(const char *what, tm_violations *errors)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;

    tm_violations_add(errors, "not a DER %s: %s", what, why ? why : "libcrypto cannot decode it");
}

/* Public: libcrypto errors raised inside stay inside, and the caller's own
 * error queue is left as it was. */
static ASN1_VALUE *parse_wrapped(const unsigned char *der, size_t der_len, const char *what,
                                 const ASN1_ITEM *it, tm_violations *errors)
{
    size_t len = 0;
    unsigned char *buf;
    const unsigned char *p;
    ASN1_VALUE *v = NULL;

    ERR_set_mark();
    buf = wrap(der, der_len, what, &len, errors);
    if (buf != NULL) {
        p = buf;
        v = ASN1_item_d2i(NULL, &p, (long)len, it);
        if (v == NULL || p != buf + len) {
            ASN1_item_free(v, it);
            v = NULL;
            report_decode_error(what, errors);
        }
    }
    OPENSSL_free(buf);
    ERR_pop_to_mark();
    return v;
}

X509 *tm_tbs_parse(const unsigned char *der, size_t der_len, tm_violations *errors)
{
    return (X509 *)parse_wrapped(der, der_len, "TBSCertificate", ASN1_ITEM_rptr(X509), errors);
}

X509_REQ *tm_req_info_parse(const unsigned char *der, size_t der_len, tm_violations *errors)
{
    return (X509_REQ *)parse_wrapped(der, der_len, "CertificationRequestInfo",
                                     ASN1_ITEM_rptr(X509_REQ), errors);
}
