/* The serial-bound profile at the signing boundary. */
#include <string.h>

#include <openssl/x509v3.h>

#include <openssl/x509.h>

#include "profile_guard.h"
#include "session.h"

static int has_san(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int yes = exts != NULL && X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) >= 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return yes;
}

static int check_request(prov_ctx *prov, const prov_key *key, X509_REQ *req)
{
    tm_binding b;
    tm_violations *why = tm_violations_new();
    size_t serial_len;
    const unsigned char *serial = prov_token_serial(key->tok, &serial_len);
    const char *mine = prov_token_serial_text(key->tok);
    char reasons[512] = "";
    int ok = 0, named = 0;

    memset(&b, 0, sizeof(b));
    if (tm_binding_from_req(prov->profile, req, &b, why)) {
        if (!tm_binding_names_serial(&b, serial, serial_len)) {
            TM_RAISE(prov, TM_R_PROFILE, "request names serial %s; this key is on token %s",
                     b.serial_text, mine);
            goto out;
        }
        ok = 1;
        goto out;
    }
    tm_violations_join(why, reasons, sizeof(reasons));
    if (has_san(req)) {
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
    tm_violations_free(why);
    return ok;
}

static int check_certificate(prov_ctx *prov, const prov_key *key, X509 *tbs)
{
    tm_violations *why = tm_violations_new();
    size_t n = tm_profile_check_cert(prov->profile, tbs, why);

    for (size_t i = 0; i < n; i++) {
        const char *msg = tm_violations_get(why, i);
        TM_RAISE(prov, TM_R_PROFILE, "issuing key '%s' on token %s refuses to sign: %s", key->label,
                 prov_token_serial_text(key->tok),
                 msg != NULL ? msg : "profile violation (message lost)");
    }
    tm_violations_free(why);
    return n == 0;
}

int prov_guard_check(prov_ctx *prov, const prov_key *key, const unsigned char *data, size_t len)
{
    X509_REQ *req;
    X509 *tbs;
    int ok = 1;

    if (!prov->enforce || key->tok == NULL)
        return 1;
    if (len == 0 || data[0] != 0x30) /* not a DER SEQUENCE: nothing to check */
        return 1;
    /* The same bound as for data that arrives in pieces (signature.c). */
    if (len > TM_GUARD_MAX) {
        if (!prov_guard_could_be_der(data, len < 8 ? len : 8, len))
            return 1;
        TM_RAISE(prov, TM_R_PROFILE,
                 "refusing to sign a %zu-byte DER structure too large for the profile check", len);
        return 0;
    }
    /* Each parse tells whether the bytes are that structure at all, and the
     * check then reads the parsed object: the DER is decoded once. */
    if ((req = tm_req_info_parse(data, len, NULL)) != NULL) {
        ok = check_request(prov, key, req);
        X509_REQ_free(req);
    } else if (key->issuing && (tbs = tm_tbs_parse(data, len, NULL)) != NULL) {
        ok = check_certificate(prov, key, tbs);
        X509_free(tbs);
    }
    return ok;
}

int prov_guard_could_be_der(const unsigned char *head, size_t head_len, size_t total)
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
