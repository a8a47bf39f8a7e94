/* The serial-bound profile at the signing boundary. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include <openssl/x509.h>

#include "profile_guard.h"
#include "session.h"

/* Exactly one DER value of this type, nothing after it. */
static int is_req_info(const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    X509_REQ_INFO *ri = d2i_X509_REQ_INFO(NULL, &p, (long)len);
    int yes = ri != NULL && p == data + len;
    X509_REQ_INFO_free(ri);
    return yes;
}

static int is_tbs_cert(const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    X509_CINF *ci = d2i_X509_CINF(NULL, &p, (long)len);
    int yes = ci != NULL && p == data + len;
    X509_CINF_free(ci);
    return yes;
}

/*
 * The request as an X509_REQ, so its subject and requested extensions can be
 * read with public API: CertificationRequestInfo plus a placeholder signature.
 */
static X509_REQ *wrap_req_info(const unsigned char *data, size_t len)
{
    static const unsigned char tail[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, /* algid */
                                         0x03, 0x01, 0x00};                        /* BIT STRING */
    size_t body = len + sizeof(tail), n = 0;
    unsigned char *der = malloc(body + 6);
    const unsigned char *p;
    X509_REQ *req = NULL;

    if (der == NULL)
        return NULL;
    der[n++] = 0x30;
    if (body < 0x80) {
        der[n++] = (unsigned char)body;
    } else if (body < 0x10000) {
        der[n++] = 0x82;
        der[n++] = (unsigned char)(body >> 8);
        der[n++] = (unsigned char)body;
    } else {
        der[n++] = 0x83;
        der[n++] = (unsigned char)(body >> 16);
        der[n++] = (unsigned char)(body >> 8);
        der[n++] = (unsigned char)body;
    }
    memcpy(der + n, data, len);
    memcpy(der + n + len, tail, sizeof(tail));
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)(n + body));
    free(der);
    return req;
}

static int has_san(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int yes = exts != NULL && X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) >= 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return yes;
}

static int check_request(tm_prov *prov, const tm_key *key, const unsigned char *data, size_t len)
{
    tm_binding b;
    tm_violations *why = tm_violations_new();
    size_t serial_len;
    const unsigned char *serial = tm_token_serial(key->tok, &serial_len);
    const char *mine = tm_token_serial_text(key->tok);
    X509_REQ *req = NULL;
    char reasons[512] = "";
    int ok = 0, named = 0;

    memset(&b, 0, sizeof(b));
    if (tm_binding_from_req_info(prov->profile, data, len, &b, why)) {
        if (!tm_binding_names_serial(&b, serial, serial_len)) {
            TM_RAISE(prov, TM_R_PROFILE, "request names serial %s; this key is on token %s",
                     b.serial_text, mine);
            goto out;
        }
        ok = 1;
        goto out;
    }
    tm_violations_join(why, reasons, sizeof(reasons));
    req = wrap_req_info(data, len);
    if (req == NULL || has_san(req)) {
        /* A hardwareModuleName that is there but wrong is never papered over. */
        TM_RAISE(prov, TM_R_PROFILE,
                 "request does not name this token correctly (%s); this "
                 "key is on token %s",
                 reasons[0] ? reasons : "unreadable request", mine);
        goto out;
    }
    /* No SAN: a plain request names its token by subject serialNumber only. */
    const X509_NAME *subj = X509_REQ_get_subject_name(req);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_serialNumber, i)) >= 0;) {
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
        unsigned char raw[TM_SERIAL_MAX];
        size_t raw_len = tm_serial_decode((const char *)ASN1_STRING_get0_data(v),
                                          (size_t)ASN1_STRING_length(v), raw, sizeof(raw));
        named = 1;
        if (raw_len != serial_len || memcmp(raw, serial, serial_len) != 0) {
            TM_RAISE(prov, TM_R_PROFILE, "request names serial %.*s; this key is on token %s",
                     ASN1_STRING_length(v) > 64 ? 64 : ASN1_STRING_length(v),
                     (const char *)ASN1_STRING_get0_data(v), mine);
            goto out;
        }
    }
    if (!named) {
        TM_RAISE(prov, TM_R_PROFILE,
                 "request names no token serial; this key is on token %s: put "
                 "/serialNumber=%s in the subject",
                 mine, mine);
        goto out;
    }
    ok = 1;
out:
    X509_REQ_free(req);
    tm_violations_free(why);
    return ok;
}

static int check_certificate(tm_prov *prov, const tm_key *key, const unsigned char *data,
                             size_t len)
{
    tm_violations *why = tm_violations_new();
    size_t n = tm_profile_check_tbs(prov->profile, data, len, why);

    for (size_t i = 0; i < n; i++) {
        const char *msg = tm_violations_get(why, i);
        TM_RAISE(prov, TM_R_PROFILE, "issuing key '%s' on token %s refuses to sign: %s", key->label,
                 tm_token_serial_text(key->tok),
                 msg != NULL ? msg : "profile violation (message lost)");
    }
    tm_violations_free(why);
    return n == 0;
}

int tm_guard_check(tm_prov *prov, const tm_key *key, const unsigned char *data, size_t len)
{
    if (!prov->enforce || key->tok == NULL)
        return 1;
    if (len == 0 || data[0] != 0x30) /* not a DER SEQUENCE: nothing to check */
        return 1;
    if (is_req_info(data, len))
        return check_request(prov, key, data, len);
    if (key->issuing && is_tbs_cert(data, len))
        return check_certificate(prov, key, data, len);
    return 1;
}

int tm_guard_could_be_der(const unsigned char *head, size_t head_len, size_t total)
{
    size_t hdr, body = 0;

    if (head_len < 2 || head[0] != 0x30)
        return 0;
    if (head[1] < 0x80) {
        hdr = 2;
        body = head[1];
    } else {
        size_t nbytes = head[1] & 0x7f;
        if (nbytes == 0 || nbytes > 4 || head_len < 2 + nbytes)
            return 0;
        for (size_t i = 0; i < nbytes; i++)
            body = (body << 8) | head[2 + i];
        hdr = 2 + nbytes;
    }
    return hdr + body == total;
}
