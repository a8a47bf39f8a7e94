/*
 * The write policy for certificates (patent steps 5 and 12): a certificate
 * goes only onto the token whose serial it names, onto the key pair whose
 * public key it carries, and only if that key pair has no certificate yet or
 * the new one renews every certificate it has (issue 12).
 *
 * Everything the policy learns about the token it reads through the backend's
 * own function list and the caller's backend session, so the unit tests drive
 * it with an in-memory token.
 */
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>

static void reason(mod_policy_decision *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reason(mod_policy_decision *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
    va_end(ap);
}

/* ---- templates ------------------------------------------------------------ */

static void templ_free(CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_ULONG i;
    if (t == NULL)
        return;
    for (i = 0; i < n; i++)
        free(t[i].pValue);
    free(t);
}

/* Appends a copy of (type, value, len) to out; returns 0 on allocation failure. */
static int templ_add(CK_ATTRIBUTE *out, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, const void *value,
                     CK_ULONG len)
{
    out[*n].type = type;
    out[*n].pValue = NULL;
    out[*n].ulValueLen = len;
    if (value != NULL && len > 0) {
        out[*n].pValue = malloc(len);
        if (out[*n].pValue == NULL)
            return 0;
        memcpy(out[*n].pValue, value, len);
    }
    (*n)++;
    return 1;
}

static const CK_ATTRIBUTE *templ_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
                                      int *count)
{
    const CK_ATTRIBUTE *first = NULL;
    CK_ULONG i;
    *count = 0;
    for (i = 0; i < n; i++) {
        if (t[i].type == type) {
            if (first == NULL)
                first = &t[i];
            (*count)++;
        }
    }
    return first;
}

static int ulong_value(const CK_ATTRIBUTE *a, CK_ULONG *out)
{
    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG))
        return 0;
    memcpy(out, a->pValue, sizeof(CK_ULONG));
    return 1;
}

/* ---- reading the token ------------------------------------------------------ */

typedef struct token {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
} token;

/* ---- comparing public keys ---------------------------------------------------- */

/* The certificate's public key in the forms the token may hold it in. */
typedef struct cert_key {
    CK_KEY_TYPE type;
    EC_GROUP *group;       /* CKK_EC */
    EC_POINT *point;       /* CKK_EC */
    unsigned char raw[64]; /* CKK_EC_EDWARDS */
    size_t raw_len;        /* CKK_EC_EDWARDS */
    BIGNUM *n, *e;         /* CKK_RSA */
    const char *name;      /* for messages */
} cert_key;

static void cert_key_free(cert_key *k)
{
    EC_POINT_free(k->point);
    EC_GROUP_free(k->group);
    BN_free(k->n);
    BN_free(k->e);
}

static int curve_nid(const char *name)
{
    int nid = OBJ_txt2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid;
}

/* Returns 1 when the key type is one a token key can be matched against. */
static int cert_key_load(EVP_PKEY *pk, cert_key *k)
{
    memset(k, 0, sizeof(*k));
    if (pk == NULL)
        return 0;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_EC: {
        char group[64];
        unsigned char enc[256];
        size_t enc_len = 0;
        int nid;
        k->type = CKK_EC;
        k->name = "EC";
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            (nid = curve_nid(group)) == NID_undef ||
            (k->group = EC_GROUP_new_by_curve_name(nid)) == NULL ||
            !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, enc,
                                             sizeof(enc), &enc_len) ||
            (k->point = EC_POINT_new(k->group)) == NULL ||
            !EC_POINT_oct2point(k->group, k->point, enc, enc_len, NULL))
            return 0;
        return 1;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
        k->type = CKK_EC_EDWARDS;
        k->name = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448";
        k->raw_len = sizeof(k->raw);
        return EVP_PKEY_get_raw_public_key(pk, k->raw, &k->raw_len) == 1;
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        k->type = CKK_RSA;
        k->name = "RSA";
        return EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &k->n) &&
               EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &k->e);
    default:
        return 0;
    }
}

/*
 * CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40, and what
 * SoftHSM2 returns), but some tokens hand out the bare point. Since a bare
 * uncompressed point also starts with 0x04, both readings are tried.
 */
static int ec_point_value_matches(const cert_key *k, const unsigned char *v, CK_ULONG len)
{
    const unsigned char *cands[2];
    size_t lens[2], i, n;
    int match = 0;

    n = p11c_ec_point_readings(v, len, cands, lens);
    /* A wrong reading fails to decode as a point; that is expected here and
     * must neither reach nor wipe the application's error queue. */
    ERR_set_mark();
    for (i = 0; i < n && !match; i++) {
        if (k->type == CKK_EC) {
            EC_POINT *pt = EC_POINT_new(k->group);
            if (pt != NULL && EC_POINT_oct2point(k->group, pt, cands[i], lens[i], NULL) == 1 &&
                EC_POINT_cmp(k->group, pt, k->point, NULL) == 0)
                match = 1;
            EC_POINT_free(pt);
        } else if (lens[i] == k->raw_len && memcmp(cands[i], k->raw, k->raw_len) == 0) {
            match = 1;
        }
    }
    ERR_pop_to_mark();
    return match;
}

static int bn_value_equals(const BIGNUM *want, const unsigned char *v, CK_ULONG len)
{
    BIGNUM *got = BN_bin2bn(v, (int)len, NULL);
    int eq = got != NULL && BN_cmp(got, want) == 0;
    BN_free(got);
    return eq;
}

/* Does the token object hold this public key? Unreadable attributes: no. */
static int object_matches(const token *t, CK_OBJECT_HANDLE obj, const cert_key *k)
{
    unsigned char *a = NULL, *b = NULL;
    CK_ULONG alen = 0, blen = 0;
    int match = 0;

    if (k->type == CKK_RSA) {
        if (p11c_attr_get(t->f, t->s, obj, CKA_MODULUS, &a, &alen) == CKR_OK && alen > 0 &&
            p11c_attr_get(t->f, t->s, obj, CKA_PUBLIC_EXPONENT, &b, &blen) == CKR_OK && blen > 0)
            match = bn_value_equals(k->n, a, alen) && bn_value_equals(k->e, b, blen);
    } else {
        if (p11c_attr_get(t->f, t->s, obj, CKA_EC_POINT, &a, &alen) == CKR_OK && alen > 0)
            match = ec_point_value_matches(k, a, alen);
    }
    free(a);
    free(b);
    return match;
}

/* First object of the class with the certificate's public key; 0 when none. */
static CK_RV find_key(const token *t, CK_OBJECT_CLASS cls, const cert_key *k,
                      CK_OBJECT_HANDLE *found)
{
    CK_KEY_TYPE kt = k->type;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
    };
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv;

    *found = CK_INVALID_HANDLE;
    rv = p11c_find_all(t->f, t->s, tmpl, 2, &objs, &n);
    if (rv != CKR_OK)
        return rv;
    for (i = 0; i < n; i++) {
        if (object_matches(t, objs[i], k)) {
            *found = objs[i];
            break;
        }
    }
    free(objs);
    return CKR_OK;
}

/* ---- existing certificates ------------------------------------------------------ */

static void cert_serial_text(const X509 *c, char *out, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
    char *h = bn != NULL ? BN_bn2hex(bn) : NULL;
    snprintf(out, len, "%s", h != NULL ? h : "unreadable");
    OPENSSL_free(h);
    BN_free(bn);
}

static X509 *object_cert(const token *t, CK_OBJECT_HANDLE obj)
{
    unsigned char *v = NULL;
    CK_ULONG len = 0;
    const unsigned char *p;
    X509 *c = NULL;

    if (p11c_attr_get(t->f, t->s, obj, CKA_VALUE, &v, &len) == CKR_OK && len > 0) {
        p = v;
        ERR_set_mark();
        c = d2i_X509(NULL, &p, (long)len);
        ERR_pop_to_mark();
    }
    free(v);
    return c;
}

/*
 * Renewal (issue 12): a second certificate for a key pair is the same
 * binding again, from the same issuer, lasting longer. Against one
 * certificate already on the key pair: 1 when cert renews it, else 0 with
 * why it does not. A certificate that is not in the profile, names another
 * token or purpose, or comes from another CA is never renewed: the old rule
 * (no second certificate) stands for it.
 */
static int renews(const mod_policy *policy, X509 *cert, const tm_binding *b, X509 *old, char *why,
                  size_t whylen)
{
    tm_binding ob;

    if (!tm_binding_from_cert(policy->profile, old, &ob, NULL)) {
        snprintf(why, whylen, "it is not a serial-bound certificate");
        return 0;
    }
    if (!tm_binding_names_serial(&ob, b->serial, b->serial_len) ||
        strcmp(ob.purpose, b->purpose) != 0) {
        snprintf(why, whylen, "it binds %s (%s), the new one %s (%s)", ob.serial_text,
                 ob.purpose[0] ? ob.purpose : "no purpose", b->serial_text,
                 b->purpose[0] ? b->purpose : "no purpose");
        return 0;
    }
    if (X509_NAME_cmp(X509_get_issuer_name(old), X509_get_issuer_name(cert)) != 0) {
        snprintf(why, whylen, "the new one is from another issuer");
        return 0;
    }
    if (ASN1_INTEGER_cmp(X509_get0_serialNumber(old), X509_get0_serialNumber(cert)) == 0) {
        snprintf(why, whylen, "it is the same certificate");
        return 0;
    }
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(old)) <= 0 ||
        ASN1_TIME_compare(X509_get0_notBefore(cert), X509_get0_notBefore(old)) < 0) {
        snprintf(why, whylen, "the new one does not outlast it");
        return 0;
    }
    return 1;
}

/*
 * The certificates already on this key pair: those with its CKA_ID, and
 * those carrying the same public key (whatever their CKA_ID). *blocking is
 * set when one of them is not renewed by cert; its serial goes to serial,
 * the reason to why. *renewed counts those cert renews (its serial too when
 * nothing blocks), so the caller can say what was renewed.
 */
static CK_RV existing_certificates(const token *t, const mod_policy *policy, X509 *cert,
                                   const tm_binding *b, const unsigned char *id, CK_ULONG id_len,
                                   int *blocking, int *renewed, char *serial, size_t serial_len,
                                   char *why, size_t whylen)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE by_id[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0, i;
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    CK_RV rv;

    *blocking = 0;
    *renewed = 0;
    snprintf(serial, serial_len, "unreadable");
    why[0] = '\0';
    /* Every certificate object is looked at: by CKA_ID alone a certificate
     * filed under another ID for the same key would go unseen. An empty
     * CKA_ID says nothing about which key a certificate belongs to. */
    rv = p11c_find_all(t->f, t->s, by_id, 1, &objs, &n);
    if (rv != CKR_OK)
        return rv;
    ERR_set_mark();
    for (i = 0; i < n && !*blocking; i++) {
        unsigned char *oid = NULL;
        CK_ULONG oid_len = 0;
        int same_id, same_key;
        X509 *c = object_cert(t, objs[i]);

        same_id = id_len > 0 &&
                  p11c_attr_get(t->f, t->s, objs[i], CKA_ID, &oid, &oid_len) == CKR_OK &&
                  oid_len == id_len && memcmp(oid, id, id_len) == 0;
        free(oid);
        same_key =
            c != NULL && X509_get0_pubkey(c) != NULL && EVP_PKEY_eq(X509_get0_pubkey(c), pk) == 1;
        if (same_id || same_key) {
            if (c != NULL && renews(policy, cert, b, c, why, whylen)) {
                if (!*renewed)
                    cert_serial_text(c, serial, serial_len);
                (*renewed)++;
            } else {
                *blocking = 1;
                if (c != NULL)
                    cert_serial_text(c, serial, serial_len);
                else
                    snprintf(why, whylen, "it cannot be read as a certificate");
            }
        }
        X509_free(c);
    }
    ERR_pop_to_mark();
    free(objs);
    return CKR_OK;
}

/* ---- chain ---------------------------------------------------------------------- */

/* Returns 1 when cert chains to one of roots, else 0 with why. */
static int chains_to_root(X509 *cert, STACK_OF(X509) * roots, char *why, size_t whylen)
{
    X509_STORE *store;
    X509_STORE_CTX *ctx;
    int i, ok = 0;

    ERR_set_mark();
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    snprintf(why, whylen, "out of memory");
    if (store == NULL || ctx == NULL)
        goto out;
    for (i = 0; i < sk_X509_num(roots); i++)
        if (!X509_STORE_add_cert(store, sk_X509_value(roots, i)))
            goto out;
    /* Only the certificate and the roots: no intermediates from the token, and
     * no partial chains, so the configured roots really are the anchors. */
    if (!X509_STORE_CTX_init(ctx, store, cert, NULL))
        goto out;
    if (X509_verify_cert(ctx) == 1) {
        ok = 1;
        why[0] = '\0';
    } else {
        snprintf(why, whylen, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_pop_to_mark();
    return ok;
}

/* ---- the decision ------------------------------------------------------------------ */

/* The caller's template into d->templ with room for extra attributes more;
 * its CKA_ID left out when without_id is set. */
static int copy_templ(const CK_ATTRIBUTE *in, CK_ULONG count, CK_ULONG extra, int without_id,
                      mod_policy_decision *d)
{
    CK_ULONG i;
    d->templ = calloc(count + extra + 1, sizeof(CK_ATTRIBUTE));
    d->templ_count = 0;
    if (d->templ == NULL)
        return 0;
    for (i = 0; i < count; i++) {
        if (without_id && in[i].type == CKA_ID)
            continue;
        if (!templ_add(d->templ, &d->templ_count, in[i].type, in[i].pValue, in[i].ulValueLen)) {
            templ_free(d->templ, d->templ_count);
            d->templ = NULL;
            d->templ_count = 0;
            return 0;
        }
    }
    return 1;
}

/* Appends the certificate's CKA_SUBJECT, CKA_ISSUER or CKA_SERIAL_NUMBER (DER,
 * as PKCS#11 describes a certificate) unless the caller's template has it. */
static int add_cert_field(mod_policy_decision *d, const CK_ATTRIBUTE *templ, CK_ULONG count,
                          CK_ATTRIBUTE_TYPE type, X509 *cert)
{
    unsigned char *der = NULL;
    int len, dummy, ok;

    if (templ_find(templ, count, type, &dummy) != NULL)
        return 1;
    len = type == CKA_SUBJECT  ? i2d_X509_NAME(X509_get_subject_name(cert), &der)
          : type == CKA_ISSUER ? i2d_X509_NAME(X509_get_issuer_name(cert), &der)
                               : i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &der);
    ok = len > 0 && templ_add(d->templ, &d->templ_count, type, der, (CK_ULONG)len);
    OPENSSL_free(der);
    return ok;
}

void mod_policy_decide(const mod_policy *policy, CK_FUNCTION_LIST *backend,
                       CK_SESSION_HANDLE backend_session, const unsigned char *token_serial,
                       size_t token_serial_len, const CK_ATTRIBUTE *templ, CK_ULONG count,
                       mod_policy_decision *out)
{
    mod_policy_token t = {token_serial, token_serial_len, NULL, NULL};

    mod_policy_decide_token(policy, backend, backend_session, &t, templ, count, out);
}

void mod_policy_decide_token(const mod_policy *policy, CK_FUNCTION_LIST *backend,
                             CK_SESSION_HANDLE backend_session, const mod_policy_token *who,
                             const CK_ATTRIBUTE *templ, CK_ULONG count, mod_policy_decision *out)
{
    const unsigned char *token_serial = who != NULL ? who->serial : NULL;
    size_t token_serial_len = who != NULL ? who->serial_len : 0;
    const char *unusable;
    token tok = {backend, backend_session};
    const CK_ATTRIBUTE *cls_a, *type_a, *value_a;
    int n_cls, n_type, n_value, dummy;
    CK_ULONG cls = 0, cert_type = CKC_X_509;
    X509 *cert = NULL;
    tm_violations *errors = NULL;
    cert_key key;
    CK_OBJECT_HANDLE key_obj = CK_INVALID_HANDLE;
    unsigned char *key_id = NULL, *key_label = NULL;
    CK_ULONG key_id_len = 0, key_label_len = 0;
    char token_text[TM_SERIAL_TEXT_MAX + 1], id_text[2 * 64 + 1], why[640], serial[128];
    const unsigned char *p;
    char renewed_serial[128] = "";
    int blocking = 0, renewed = 0;
    CK_RV rv;

    memset(&key, 0, sizeof(key));
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    out->rv = CKR_OK;
    if (policy == NULL || policy->profile == NULL || backend == NULL || who == NULL ||
        (templ == NULL && count > 0)) {
        out->rv = CKR_ARGUMENTS_BAD;
        reason(out, "policy called without a profile, backend or template");
        return;
    }
    if (token_serial_len == 0 ||
        tm_serial_encode(token_serial, token_serial_len, token_text, sizeof(token_text)) == 0)
        snprintf(token_text, sizeof(token_text), "(no serial)");

    cls_a = templ_find(templ, count, CKA_CLASS, &n_cls);
    type_a = templ_find(templ, count, CKA_CERTIFICATE_TYPE, &n_type);
    value_a = templ_find(templ, count, CKA_VALUE, &n_value);

    /* A malformed or repeated class or type might hide a certificate (the
     * backend may read another copy than the policy): refused as one, so
     * that the caller does not hand the template on unchecked. */
    if (n_cls > 1) {
        out->is_certificate = 1;
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "template repeats CKA_CLASS");
        return;
    }
    if (cls_a != NULL && !ulong_value(cls_a, &cls)) {
        out->is_certificate = 1;
        out->rv = CKR_ATTRIBUTE_VALUE_INVALID;
        reason(out, "CKA_CLASS is not a CK_OBJECT_CLASS value");
        return;
    }
    if (cls_a != NULL && cls == CKO_CERTIFICATE && n_type > 1) {
        out->is_certificate = 1;
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "template repeats CKA_CERTIFICATE_TYPE");
        return;
    }
    if (cls_a != NULL && cls == CKO_CERTIFICATE && type_a != NULL &&
        !ulong_value(type_a, &cert_type)) {
        out->is_certificate = 1;
        out->rv = CKR_ATTRIBUTE_VALUE_INVALID;
        reason(out, "CKA_CERTIFICATE_TYPE is not a CK_CERTIFICATE_TYPE value");
        return;
    }
    /* A missing certificate type counts as X.509: a backend that defaults it
     * must not become a way around the policy. */
    if (cls_a == NULL || cls != CKO_CERTIFICATE || cert_type != CKC_X_509) {
        if (!copy_templ(templ, count, 0, 0, out)) {
            out->rv = CKR_HOST_MEMORY;
            reason(out, "out of memory");
        }
        return;
    }
    out->is_certificate = 1;
    /* From here on every exit passes "out", where whatever OpenSSL queued
     * while looking at the certificate is dropped, and only that. */
    ERR_set_mark();

    /* Issue 13: a serial that names no one token binds a certificate to
     * none; first, so that no certificate can make it look otherwise. */
    unusable = tm_serial_unusable(token_serial, token_serial_len);
    if (unusable != NULL) {
        out->rv = CKR_ACTION_PROHIBITED;
        reason(out,
               "token %s%sreports the serial '%s' (%s): it names no one token, so no certificate "
               "is bound to it (name one with token_serials in the module config)",
               who->name ? who->name : "", who->name ? " " : "", token_serial_len ? token_text : "",
               unusable);
        goto out;
    }
    if (who->shared_with != NULL) {
        out->rv = CKR_ACTION_PROHIBITED;
        reason(out,
               "token %s%shas the serial %s, and so has token %s: a serial two tokens share "
               "binds a certificate to neither",
               who->name ? who->name : "", who->name ? " " : "", token_text, who->shared_with);
        goto out;
    }

    /* Two values would let the policy check one and the backend store the other. */
    if (n_value > 1) {
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "template repeats CKA_VALUE");
        goto out;
    }
    if (value_a == NULL || value_a->pValue == NULL || value_a->ulValueLen == 0) {
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "certificate has no CKA_VALUE");
        goto out;
    }
    p = value_a->pValue;
    cert = d2i_X509(NULL, &p, (long)value_a->ulValueLen);
    if (cert == NULL || p != (const unsigned char *)value_a->pValue + value_a->ulValueLen) {
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "CKA_VALUE is not a DER X.509 certificate%s",
               cert != NULL ? " (trailing bytes after it)" : "");
        goto out;
    }

    /* Parsing defers the key: a certificate whose key cannot be decoded is
     * as unusable as one that does not parse. */
    if (X509_get0_pubkey(cert) == NULL) {
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "CKA_VALUE is a certificate whose public key cannot be decoded");
        goto out;
    }

    errors = tm_violations_new();
    if (errors == NULL) {
        out->rv = CKR_HOST_MEMORY;
        reason(out, "out of memory");
        goto out;
    }
    if (!tm_binding_from_cert(policy->profile, cert, &out->binding, errors)) {
        memset(&out->binding, 0, sizeof(out->binding));
        if (policy->outside_profile == TM_OUTSIDE_PROFILE_ALLOW) {
            if (!copy_templ(templ, count, 0, 0, out)) {
                out->rv = CKR_HOST_MEMORY;
                reason(out, "out of memory");
                goto out;
            }
            reason(out, "certificate outside the serial-bound profile stored as given "
                        "(outside_profile = allow)");
            goto out;
        }
        tm_violations_join(errors, why, sizeof(why));
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "certificate is outside the serial-bound profile: %s", why);
        goto out;
    }

    /* (a) the token it names */
    if (!tm_binding_names_serial(&out->binding, token_serial, token_serial_len)) {
        out->rv = CKR_ATTRIBUTE_VALUE_INVALID;
        reason(out, "certificate names serial %s; this token is %s", out->binding.serial_text,
               token_text);
        goto out;
    }

    /* the whole profile, as the CA applies it, not just the binding: a stock
     * CA may have added what ours never would (issue 10 item 3) */
    tm_violations_free(errors);
    errors = tm_violations_new();
    if (errors == NULL || tm_profile_check_cert(policy->profile, cert, errors) > 0) {
        if (errors != NULL)
            tm_violations_join(errors, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "out of memory");
        out->rv = CKR_TEMPLATE_INCONSISTENT;
        reason(out, "certificate is outside the profile: %s", why);
        goto out;
    }

    /* (b) the key pair it certifies */
    if (!cert_key_load(X509_get0_pubkey(cert), &key)) {
        out->rv = CKR_KEY_HANDLE_INVALID;
        reason(out,
               "no key pair on token %s matches the certificate's public key (its key "
               "type cannot be matched against token keys)",
               token_text);
        goto out;
    }
    rv = find_key(&tok, CKO_PUBLIC_KEY, &key, &key_obj);
    if (rv == CKR_OK && key_obj == CK_INVALID_HANDLE)
        rv = find_key(&tok, CKO_PRIVATE_KEY, &key, &key_obj);
    if (rv != CKR_OK) {
        out->rv = rv;
        reason(out, "cannot search token %s for the certificate's key pair (CKR 0x%lx)", token_text,
               (unsigned long)rv);
        goto out;
    }
    if (key_obj == CK_INVALID_HANDLE) {
        out->rv = CKR_KEY_HANDLE_INVALID;
        reason(out, "no key pair on token %s matches the certificate's public key (%s)", token_text,
               key.name);
        goto out;
    }
    rv = p11c_attr_get(tok.f, tok.s, key_obj, CKA_ID, &key_id, &key_id_len);
    if (rv != CKR_OK) {
        out->rv = rv;
        reason(out, "cannot read CKA_ID of the matching key on token %s (CKR 0x%lx)", token_text,
               (unsigned long)rv);
        goto out;
    }
    if (p11c_attr_get(tok.f, tok.s, key_obj, CKA_LABEL, &key_label, &key_label_len) != CKR_OK) {
        key_label = NULL;
        key_label_len = 0;
    }
    if (key_id_len > 0)
        p11c_hex_encode(key_id, key_id_len > 64 ? 64 : key_id_len, id_text, sizeof(id_text));
    else
        snprintf(id_text, sizeof(id_text), "(empty CKA_ID)");

    /* (c) certificates never overwrite one another; a second one on a key
     * pair only renews the first (same token, purpose and issuer, lasting
     * longer), never binds it anew */
    rv = existing_certificates(&tok, policy, cert, &out->binding, key_id, key_id_len, &blocking,
                               &renewed, serial, sizeof(serial), why, sizeof(why));
    if (rv != CKR_OK) {
        out->rv = rv;
        reason(out, "cannot search token %s for certificates (CKR 0x%lx)", token_text,
               (unsigned long)rv);
        goto out;
    }
    if (blocking) {
        out->rv = CKR_DATA_INVALID;
        reason(out,
               "key pair %s on token %s already has a certificate (serial %s): "
               "certificates never overwrite one another, and this one does not renew it "
               "(%s)",
               id_text, token_text, serial, why);
        goto out;
    }
    if (renewed)
        snprintf(renewed_serial, sizeof(renewed_serial), "%s", serial);

    /* (d) issued by a CA the station trusts */
    if (policy->trusted_roots != NULL && sk_X509_num(policy->trusted_roots) > 0 &&
        !chains_to_root(cert, policy->trusted_roots, why, sizeof(why))) {
        out->rv = CKR_SIGNATURE_INVALID;
        reason(out, "certificate does not chain to a trusted root: %s", why);
        goto out;
    }

    /* The template the backend gets: the caller's, with the key's CKA_ID, a
     * label when none was given, and the fields PKCS#11 says describe the
     * certificate when the caller left them out. */
    if (!copy_templ(templ, count, 5, 1, out))
        goto oom;
    if (!templ_add(out->templ, &out->templ_count, CKA_ID, key_id, key_id_len))
        goto oom;
    if (templ_find(templ, count, CKA_LABEL, &dummy) == NULL && key_label_len > 0 &&
        !templ_add(out->templ, &out->templ_count, CKA_LABEL, key_label, key_label_len))
        goto oom;
    if (!add_cert_field(out, templ, count, CKA_SUBJECT, cert) ||
        !add_cert_field(out, templ, count, CKA_ISSUER, cert) ||
        !add_cert_field(out, templ, count, CKA_SERIAL_NUMBER, cert))
        goto oom;
    cert_serial_text(cert, serial, sizeof(serial));
    if (renewed_serial[0])
        reason(out,
               "certificate (serial %s) for token %s stored on key pair %s, renewing "
               "certificate %s",
               serial, token_text, id_text, renewed_serial);
    else
        reason(out, "certificate (serial %s) for token %s stored on key pair %s", serial,
               token_text, id_text);
    goto out;

oom:
    out->rv = CKR_HOST_MEMORY;
    reason(out, "out of memory");
out:
    if (out->rv != CKR_OK) {
        templ_free(out->templ, out->templ_count);
        out->templ = NULL;
        out->templ_count = 0;
    }
    cert_key_free(&key);
    free(key_id);
    free(key_label);
    tm_violations_free(errors);
    X509_free(cert);
    ERR_pop_to_mark();
}

void mod_policy_decision_clear(mod_policy_decision *d)
{
    if (d == NULL)
        return;
    templ_free(d->templ, d->templ_count);
    d->templ = NULL;
    d->templ_count = 0;
    d->reason[0] = '\0';
}
