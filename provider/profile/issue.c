/*
 * The CA side: a certificate for a request that passes the profile, with
 * keyUsage/EKU set from the profile's purpose (never copied from the request).
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>
#include <openssl/rand.h>

static ASN1_INTEGER *tm_profile_random_serial_impl(void)
{
    unsigned char buf[20];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *out = NULL;

    if (RAND_bytes(buf, sizeof(buf)) != 1)
        goto out;
    /* top bit clear (positive), next bit set: always exactly 159 bits */
    buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    if (bn != NULL)
        out = BN_to_ASN1_INTEGER(bn, NULL);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_free(bn);
    return out;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* The SAN for the certificate: hardwareModuleName rebuilt from the binding,
 * then the request's other names (the check let through only allowed types). */
static X509_EXTENSION *make_san(const tm_binding *b, const tm_view *req, int subject_empty)
{
    GENERAL_NAMES *req_gens = X509V3_get_d2i(req->exts, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gn = NULL;
    X509_EXTENSION *ext = NULL;
    int i;

    if (gens == NULL || !tm_hwmn_encode(b->hw_type, b->serial, b->serial_len, &gn) ||
        !sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        goto out;
    }
    for (i = 0; req_gens != NULL && i < sk_GENERAL_NAME_num(req_gens); i++) {
        GENERAL_NAME *other = sk_GENERAL_NAME_value(req_gens, i);
        if (tm_gn_is_hwmn(other))
            continue;
        other = GENERAL_NAME_dup(other);
        if (other == NULL || !sk_GENERAL_NAME_push(gens, other)) {
            GENERAL_NAME_free(other);
            goto out;
        }
    }
    ext = X509V3_EXT_i2d(NID_subject_alt_name, subject_empty, gens);
out:
    GENERAL_NAMES_free(req_gens);
    GENERAL_NAMES_free(gens);
    return ext;
}

static int set_validity(const tm_profile *p, X509 *cert)
{
    ASN1_TIME *t = NULL;
    int ok;

    if (X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL)
        return 0;
    if (p->no_expiry) {
        t = ASN1_TIME_new();
        ok = t != NULL && ASN1_GENERALIZEDTIME_set_string(t, "99991231235959Z") &&
             X509_set1_notAfter(cert, t);
        ASN1_TIME_free(t);
        return ok;
    }
    return X509_time_adj_ex(X509_getm_notAfter(cert), (int)p->validity_days, 0, NULL) != NULL;
}

static int tm_profile_issue_impl(const tm_profile *p, X509 *cert, const X509_REQ *req,
                                 const X509 *ca_cert, tm_violations *errors)
{
    tm_binding b;
    tm_view v;
    const tm_purpose *pu;
    EVP_PKEY *pkey;
    ASN1_INTEGER *serial = NULL;
    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *purpose_exts = NULL;
    X509_NAME *subject = NULL;
    int i, ok = 0;

    return_val_if_fail(p != NULL && cert != NULL && req != NULL && ca_cert != NULL, 0);
    memset(&v, 0, sizeof(v));
    pkey = X509_get0_pubkey(cert);
    if (pkey == NULL) {
        tm_violations_add(errors, "set the certificate's public key before tm_profile_issue");
        goto out;
    }
    if (X509_REQ_get0_pubkey((X509_REQ *)req) == NULL ||
        EVP_PKEY_eq(pkey, X509_REQ_get0_pubkey((X509_REQ *)req)) != 1) {
        tm_violations_add(errors, "the certificate's public key is not the request's public key");
        goto out;
    }
    /* The CA honours only requests the profile accepts; the binding comes
     * from the same reading of the request. */
    if (!tm_view_from_req(&v, req, errors) || tm_check_view(p, &v, &b, errors) != 0)
        goto out;
    pu = tm_profile_find_purpose(p, b.purpose);
    if (pu == NULL) {
        tm_violations_add(errors, "the request names no purpose of the profile");
        goto out;
    }

    /* start from a clean certificate: nothing the caller left may survive */
    while (X509_get_ext_count(cert) > 0)
        X509_EXTENSION_free(X509_delete_ext(cert, 0));
    subject = X509_NAME_dup(X509_REQ_get_subject_name(req));
    serial = tm_profile_random_serial();
    if (subject == NULL || serial == NULL || !X509_set_version(cert, X509_VERSION_3) ||
        !X509_set_serialNumber(cert, serial) || !X509_set_subject_name(cert, subject) ||
        !X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) || !set_validity(p, cert)) {
        tm_violations_add(errors, "cannot set serial number, names or validity: out of memory");
        goto out;
    }
    if (!add_ext(cert, (X509 *)ca_cert, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, (X509 *)ca_cert, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, (X509 *)ca_cert, NID_authority_key_identifier, "keyid,issuer")) {
        tm_violations_add(errors, "cannot add basicConstraints/subjectKeyIdentifier/"
                                  "authorityKeyIdentifier (does the CA certificate have a key "
                                  "identifier or a subject?)");
        goto out;
    }
    san = make_san(&b, &v, X509_NAME_entry_count(subject) == 0);
    if (san == NULL || !X509_add_ext(cert, san, -1)) {
        tm_violations_add(errors, "cannot encode the subjectAltName for serial %s", b.serial_text);
        goto out;
    }
    if (!tm_purpose_add_exts(pu, tm_key_class_of(pkey), &purpose_exts, errors))
        goto out;
    for (i = 0; i < sk_X509_EXTENSION_num(purpose_exts); i++)
        if (!X509_add_ext(cert, sk_X509_EXTENSION_value(purpose_exts, i), -1)) {
            tm_violations_add(errors, "cannot add keyUsage/extendedKeyUsage: out of memory");
            goto out;
        }
    if (!tm_urls_add_exts(p, cert, errors))
        goto out;
    tm_debug("issued: serialNumber %s, purpose %s", b.serial_text, pu->name);
    ok = 1;
out:
    tm_view_clear(&v);
    ASN1_INTEGER_free(serial);
    X509_NAME_free(subject);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(purpose_exts, X509_EXTENSION_free);
    return ok;
}

/* Public entry points: libcrypto errors raised inside stay inside, and the
 * caller's own error queue is left as it was. */
int tm_profile_issue(const tm_profile *p, X509 *cert, const X509_REQ *req, const X509 *ca_cert,
                     tm_violations *errors)
{
    int r;

    ERR_set_mark();
    r = tm_profile_issue_impl(p, cert, req, ca_cert, errors);
    ERR_pop_to_mark();
    return r;
}

ASN1_INTEGER *tm_profile_random_serial(void)
{
    ASN1_INTEGER *r;

    ERR_set_mark();
    r = tm_profile_random_serial_impl();
    ERR_pop_to_mark();
    return r;
}
