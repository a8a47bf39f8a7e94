/*
 * The write policy, decision by decision, against an in-memory token behind a
 * mock CK_FUNCTION_LIST (only the four calls the policy may make are set; any
 * other call would crash the test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy.h"

/* ---- the mock token ------------------------------------------------------- */

#define SESSION 7
#define MAX_OBJS 32
#define MAX_ATTRS 16

typedef struct mattr {
    CK_ATTRIBUTE_TYPE type;
    unsigned char *val;
    CK_ULONG len;
    int sensitive;
} mattr;

typedef struct mobj {
    CK_OBJECT_HANDLE h;
    mattr a[MAX_ATTRS];
    int n;
} mobj;

static mobj objs[MAX_OBJS];
static int n_objs;
static int find_active;
static CK_OBJECT_HANDLE found[MAX_OBJS];
static int n_found, found_pos;

static void mock_reset(void)
{
    int i, j;
    for (i = 0; i < n_objs; i++)
        for (j = 0; j < objs[i].n; j++)
            free(objs[i].a[j].val);
    memset(objs, 0, sizeof(objs));
    n_objs = 0;
    find_active = 0;
}

static mobj *obj_new(CK_OBJECT_CLASS cls)
{
    mobj *o;
    assert_true(n_objs < MAX_OBJS);
    o = &objs[n_objs];
    o->h = 100 + (CK_OBJECT_HANDLE)n_objs;
    n_objs++;
    o->a[o->n].type = CKA_CLASS;
    o->a[o->n].val = malloc(sizeof(cls));
    memcpy(o->a[o->n].val, &cls, sizeof(cls));
    o->a[o->n].len = sizeof(cls);
    o->n++;
    return o;
}

static void obj_set(mobj *o, CK_ATTRIBUTE_TYPE type, const void *val, CK_ULONG len)
{
    assert_true(o->n < MAX_ATTRS);
    o->a[o->n].type = type;
    o->a[o->n].val = malloc(len ? len : 1);
    memcpy(o->a[o->n].val, val, len);
    o->a[o->n].len = len;
    o->n++;
}

static void obj_ulong(mobj *o, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
    obj_set(o, type, &v, sizeof(v));
}

static const mattr *obj_attr(const mobj *o, CK_ATTRIBUTE_TYPE type)
{
    int i;
    for (i = 0; i < o->n; i++)
        if (o->a[i].type == type)
            return &o->a[i];
    return NULL;
}

static mobj *obj_by_handle(CK_OBJECT_HANDLE h)
{
    int i;
    for (i = 0; i < n_objs; i++)
        if (objs[i].h == h)
            return &objs[i];
    return NULL;
}

static CK_RV mock_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    int i;
    CK_ULONG k;

    if (s != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (find_active)
        return CKR_OPERATION_ACTIVE;
    n_found = found_pos = 0;
    for (i = 0; i < n_objs; i++) {
        int match = 1;
        for (k = 0; k < n && match; k++) {
            const mattr *a = obj_attr(&objs[i], t[k].type);
            match = a != NULL && !a->sensitive && a->len == t[k].ulValueLen &&
                    (a->len == 0 || memcmp(a->val, t[k].pValue, a->len) == 0);
        }
        if (match)
            found[n_found++] = objs[i].h;
    }
    find_active = 1;
    return CKR_OK;
}

static CK_RV mock_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                              CK_ULONG_PTR count)
{
    CK_ULONG i = 0;
    if (s != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (!find_active)
        return CKR_OPERATION_NOT_INITIALIZED;
    /* hand out at most 2 per call so the policy's batching loop is exercised */
    while (i < max && i < 2 && found_pos < n_found)
        out[i++] = found[found_pos++];
    *count = i;
    return CKR_OK;
}

static CK_RV mock_FindObjectsFinal(CK_SESSION_HANDLE s)
{
    if (s != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (!find_active)
        return CKR_OPERATION_NOT_INITIALIZED;
    find_active = 0;
    return CKR_OK;
}

static CK_RV mock_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t,
                                    CK_ULONG n)
{
    mobj *o = obj_by_handle(h);
    CK_RV rv = CKR_OK;
    CK_ULONG k;

    if (s != SESSION)
        return CKR_SESSION_HANDLE_INVALID;
    if (o == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    for (k = 0; k < n; k++) {
        const mattr *a = obj_attr(o, t[k].type);
        if (a == NULL) {
            t[k].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (a->sensitive) {
            t[k].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (t[k].pValue == NULL) {
            t[k].ulValueLen = a->len;
        } else if (t[k].ulValueLen < a->len) {
            t[k].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            memcpy(t[k].pValue, a->val, a->len);
            t[k].ulValueLen = a->len;
        }
    }
    return rv;
}

static CK_FUNCTION_LIST mock;

static void mock_init_list(void)
{
    memset(&mock, 0, sizeof(mock));
    mock.version.major = 2;
    mock.version.minor = 40;
    mock.C_FindObjectsInit = mock_FindObjectsInit;
    mock.C_FindObjects = mock_FindObjects;
    mock.C_FindObjectsFinal = mock_FindObjectsFinal;
    mock.C_GetAttributeValue = mock_GetAttributeValue;
}

/* ---- keys and certificates ------------------------------------------------- */

static const unsigned char SERIAL[] = "5a1f0c3e9b2d4411";
#define SERIAL_LEN (sizeof(SERIAL) - 1)
static const unsigned char OTHER_SERIAL[] = "77aa00bb11cc22dd";
#define OTHER_SERIAL_LEN (sizeof(OTHER_SERIAL) - 1)

static tm_profile *profile;
static EVP_PKEY *ec_key, *ec_key2, *rsa_key, *ed_key, *ca_key, *ca2_key;
static X509 *ca_cert, *ca2_cert;

static X509 *make_ca(EVP_PKEY *key, const char *cn)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(c, name);
    X509_set_issuer_name(c, name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 365);
    X509_set_pubkey(c, key);
    X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(c, key, EVP_sha256()) > 0);
    return c;
}

/* A profile certificate for key naming serial, issued by the CA through the
 * profile library, exactly as the station's CA would. */
static X509 *issue(EVP_PKEY *key, const unsigned char *serial, size_t serial_len, X509 *ca,
                   EVP_PKEY *cakey)
{
    tm_violations *v = tm_violations_new();
    X509_REQ *req = X509_REQ_new();
    X509 *c = X509_new();
    char why[512];
    int is_ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;

    assert_non_null(req);
    assert_non_null(c);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (!tm_profile_build_request(profile, req, serial, serial_len, NULL, NULL, v)) {
        tm_violations_join(v, why, sizeof(why));
        fail_msg("build request: %s", why);
    }
    assert_true(X509_REQ_sign(req, key, is_ed ? NULL : EVP_sha256()) > 0);
    assert_int_equal(X509_set_pubkey(c, key), 1);
    if (!tm_profile_issue(profile, c, req, ca, v)) {
        tm_violations_join(v, why, sizeof(why));
        fail_msg("issue: %s", why);
    }
    assert_true(X509_sign(c, cakey, EVP_sha256()) > 0);
    X509_REQ_free(req);
    tm_violations_free(v);
    return c;
}

static unsigned char *der_of(X509 *c, int *len)
{
    unsigned char *der = NULL;
    *len = i2d_X509(c, &der);
    assert_true(*len > 0);
    return der;
}

/* CKA_EC_POINT as SoftHSM2 returns it: DER OCTET STRING around the point. */
static void set_ec_point(mobj *o, EVP_PKEY *key, int wrapped)
{
    unsigned char pt[256], *der = NULL;
    size_t len = 0;
    ASN1_OCTET_STRING *os;
    int dlen;

    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
        len = sizeof(pt);
        assert_int_equal(EVP_PKEY_get_raw_public_key(key, pt, &len), 1);
    } else {
        assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                         pt, sizeof(pt), &len),
                         1);
    }
    if (!wrapped) {
        obj_set(o, CKA_EC_POINT, pt, len);
        return;
    }
    os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, pt, (int)len);
    dlen = i2d_ASN1_OCTET_STRING(os, &der);
    obj_set(o, CKA_EC_POINT, der, (CK_ULONG)dlen);
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(os);
}

static void set_rsa(mobj *o, EVP_PKEY *key)
{
    BIGNUM *n = NULL, *e = NULL;
    unsigned char buf[1024];
    int len;

    assert_true(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n));
    assert_true(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e));
    len = BN_bn2bin(n, buf);
    obj_set(o, CKA_MODULUS, buf, (CK_ULONG)len);
    len = BN_bn2bin(e, buf);
    obj_set(o, CKA_PUBLIC_EXPONENT, buf, (CK_ULONG)len);
    BN_free(n);
    BN_free(e);
}

static CK_KEY_TYPE key_type_of(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return CKK_RSA;
    case EVP_PKEY_ED25519:
        return CKK_EC_EDWARDS;
    default:
        return CKK_EC;
    }
}

/* A key pair on the mock token as a PKCS#11 token keeps it: the public half
 * with its public key, the private half with CKA_VALUE sensitive (and, for
 * RSA, modulus and exponent readable). */
static void token_key_pair(EVP_PKEY *key, const char *id, const char *label, int with_public)
{
    CK_KEY_TYPE kt = key_type_of(key);
    mobj *o;
    static const unsigned char secret[] = "never read";

    if (with_public) {
        o = obj_new(CKO_PUBLIC_KEY);
        obj_ulong(o, CKA_KEY_TYPE, kt);
        obj_set(o, CKA_ID, id, strlen(id));
        obj_set(o, CKA_LABEL, label, strlen(label));
        if (kt == CKK_RSA)
            set_rsa(o, key);
        else
            set_ec_point(o, key, 1);
    }
    o = obj_new(CKO_PRIVATE_KEY);
    obj_ulong(o, CKA_KEY_TYPE, kt);
    obj_set(o, CKA_ID, id, strlen(id));
    obj_set(o, CKA_LABEL, label, strlen(label));
    if (kt == CKK_RSA)
        set_rsa(o, key);
    obj_set(o, CKA_VALUE, secret, sizeof(secret));
    o->a[o->n - 1].sensitive = 1;
}

static void token_cert(X509 *c, const char *id)
{
    int len;
    unsigned char *der = der_of(c, &len);
    mobj *o = obj_new(CKO_CERTIFICATE);
    obj_ulong(o, CKA_CERTIFICATE_TYPE, CKC_X_509);
    obj_set(o, CKA_ID, id, strlen(id));
    obj_set(o, CKA_VALUE, der, (CK_ULONG)len);
    OPENSSL_free(der);
}

/* ---- the template a client such as pkcs11-tool sends ------------------------------ */

static CK_OBJECT_CLASS cls_cert = CKO_CERTIFICATE;
static CK_CERTIFICATE_TYPE x509 = CKC_X_509;
static CK_BBOOL yes = CK_TRUE;

typedef struct req_templ {
    CK_ATTRIBUTE a[8];
    CK_ULONG n;
    unsigned char *der;
} req_templ;

static void templ_for(req_templ *t, const void *value, CK_ULONG len)
{
    memset(t, 0, sizeof(*t));
    t->a[t->n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls_cert, sizeof(cls_cert)};
    t->a[t->n++] = (CK_ATTRIBUTE){CKA_CERTIFICATE_TYPE, &x509, sizeof(x509)};
    t->a[t->n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    t->a[t->n++] = (CK_ATTRIBUTE){CKA_VALUE, (void *)value, len};
}

static void templ_cert(req_templ *t, X509 *c)
{
    int len;
    unsigned char *der = der_of(c, &len);
    templ_for(t, der, (CK_ULONG)len);
    t->der = der;
}

static void templ_add(req_templ *t, CK_ATTRIBUTE_TYPE type, const void *v, CK_ULONG len)
{
    t->a[t->n++] = (CK_ATTRIBUTE){type, (void *)v, len};
}

static void templ_done(req_templ *t)
{
    OPENSSL_free(t->der);
}

static const CK_ATTRIBUTE *out_attr(const mod_policy_decision *d, CK_ATTRIBUTE_TYPE type,
                                    int *count)
{
    const CK_ATTRIBUTE *first = NULL;
    CK_ULONG i;
    *count = 0;
    for (i = 0; i < d->templ_count; i++) {
        if (d->templ[i].type == type) {
            if (first == NULL)
                first = &d->templ[i];
            (*count)++;
        }
    }
    return first;
}

static void assert_attr(const mod_policy_decision *d, CK_ATTRIBUTE_TYPE type, const void *v,
                        CK_ULONG len)
{
    int count;
    const CK_ATTRIBUTE *a = out_attr(d, type, &count);
    if (a == NULL)
        fail_msg("attribute 0x%lx missing from the output template", (unsigned long)type);
    assert_int_equal(count, 1);
    assert_int_equal(a->ulValueLen, len);
    assert_memory_equal(a->pValue, v, len);
}

static void assert_reason(const mod_policy_decision *d, const char *needle)
{
    if (strstr(d->reason, needle) == NULL)
        fail_msg("reason \"%s\" does not contain \"%s\"", d->reason, needle);
}

static mod_policy policy;

static void decide(req_templ *t, mod_policy_decision *d, const unsigned char *serial, size_t len)
{
    mod_policy_decide(&policy, &mock, SESSION, serial, len, t->a, t->n, d);
    /* whatever the outcome, the policy leaves no search open on the session */
    assert_int_equal(find_active, 0);
    /* and a refusal carries no template */
    if (d->rv != CKR_OK) {
        assert_null(d->templ);
        assert_true(d->reason[0] != '\0');
    }
}

/* ---- fixtures -------------------------------------------------------------------- */

static int group_setup(void **state)
{
    tm_violations *v = tm_violations_new();
    profile = tm_profile_load(NULL, v);
    tm_violations_free(v);
    if (profile == NULL)
        return -1;
    ec_key = EVP_EC_gen("P-256");
    ec_key2 = EVP_EC_gen("P-256");
    rsa_key = EVP_RSA_gen(2048);
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ca_key = EVP_EC_gen("P-256");
    ca2_key = EVP_EC_gen("P-256");
    if (!ec_key || !ec_key2 || !rsa_key || !ed_key || !ca_key || !ca2_key)
        return -1;
    ca_cert = make_ca(ca_key, "tokenmint test CA");
    ca2_cert = make_ca(ca2_key, "some other CA");
    mock_init_list();
    return 0;
}

static int group_teardown(void **state)
{
    X509_free(ca_cert);
    X509_free(ca2_cert);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_key2);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ed_key);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ca2_key);
    tm_profile_free(profile);
    mock_reset();
    return 0;
}

static int setup(void **state)
{
    mock_reset();
    memset(&policy, 0, sizeof(policy));
    policy.profile = profile;
    policy.outside_profile = TM_OUTSIDE_PROFILE_REFUSE;
    return 0;
}

/* ---- the decisions --------------------------------------------------------------- */

static void test_accepted_gets_key_id_and_label(void **state)
{
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;
    unsigned char *subj = NULL, *iss = NULL, *sn = NULL;
    int subj_len, iss_len, sn_len;

    token_key_pair(ec_key2, "\x01\x02", "other key", 1);
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    templ_cert(&t, c);
    templ_add(&t, CKA_ID, "\xff", 1); /* whatever the client says, the key's ID wins */
    decide(&t, &d, SERIAL, SERIAL_LEN);

    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_OK);
    assert_memory_equal(d.binding.serial, SERIAL, SERIAL_LEN);
    assert_int_equal(d.binding.serial_len, SERIAL_LEN);
    assert_attr(&d, CKA_ID, "\xa1\xb2", 2);
    assert_attr(&d, CKA_LABEL, "key-1", 5);
    assert_attr(&d, CKA_VALUE, t.der, t.a[3].ulValueLen);
    assert_attr(&d, CKA_TOKEN, &yes, sizeof(yes));
    assert_attr(&d, CKA_CLASS, &cls_cert, sizeof(cls_cert));
    /* the fields PKCS#11 uses to describe a certificate, from the certificate */
    subj_len = i2d_X509_NAME(X509_get_subject_name(c), &subj);
    iss_len = i2d_X509_NAME(X509_get_issuer_name(c), &iss);
    sn_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(c), &sn);
    assert_attr(&d, CKA_SUBJECT, subj, (CK_ULONG)subj_len);
    assert_attr(&d, CKA_ISSUER, iss, (CK_ULONG)iss_len);
    assert_attr(&d, CKA_SERIAL_NUMBER, sn, (CK_ULONG)sn_len);
    assert_reason(&d, "a1b2");

    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(sn);
    mod_policy_decision_clear(&d);
    assert_null(d.templ);
    templ_done(&t);
    X509_free(c);
}

/* Issue 13: a certificate that names the token's serial is still refused
 * when that serial names no one token: blank, any run of '0's (also with
 * spaces around it: tpm2-pkcs11's "0000000000000000"), or a serial another
 * present token reports too. The refusal names the token. */
static void test_unusable_serial_refused(void **state)
{
    static const char *zeros[] = {"0000000000000000", "0", "000", " 00 "};
    mod_policy_decision d;
    mod_policy_token who;
    req_templ t;
    size_t i;
    X509 *c;

    (void)state;
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    for (i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++) {
        c = issue(ec_key, (const unsigned char *)"0000000000000000", 16, ca_cert, ca_key);
        templ_cert(&t, c);
        who = (mod_policy_token){(const unsigned char *)zeros[i], strlen(zeros[i]),
                                 "'tpm0' (slot 3)", NULL};
        mod_policy_decide_token(&policy, &mock, SESSION, &who, t.a, t.n, &d);
        assert_int_equal(d.is_certificate, 1);
        assert_int_equal(d.rv, CKR_ACTION_PROHIBITED);
        assert_null(d.templ);
        assert_reason(&d, "'tpm0' (slot 3)");
        assert_reason(&d, "all zeros");
        mod_policy_decision_clear(&d);
        templ_done(&t);
        X509_free(c);
    }
    /* no serial at all, through the old entry point */
    c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    templ_cert(&t, c);
    decide(&t, &d, (const unsigned char *)"", 0);
    assert_int_equal(d.rv, CKR_ACTION_PROHIBITED);
    assert_reason(&d, "blank");
    mod_policy_decision_clear(&d);
    /* a real serial another present token shares */
    who = (mod_policy_token){SERIAL, SERIAL_LEN, "'tm-a' (slot 1)", "'tm-b' (slot 2)"};
    mod_policy_decide_token(&policy, &mock, SESSION, &who, t.a, t.n, &d);
    assert_int_equal(d.rv, CKR_ACTION_PROHIBITED);
    assert_reason(&d, "'tm-a' (slot 1)");
    assert_reason(&d, "'tm-b' (slot 2)");
    mod_policy_decision_clear(&d);
    /* the same serial alone at the station: written */
    who.shared_with = NULL;
    mod_policy_decide_token(&policy, &mock, SESSION, &who, t.a, t.n, &d);
    assert_int_equal(d.rv, CKR_OK);
    mod_policy_decision_clear(&d);
    /* a serial with zeros in it is a serial */
    assert_null(tm_serial_unusable((const unsigned char *)"0000000000000010", 16));
    assert_null(tm_serial_unusable((const unsigned char *)"0 0", 3));
    assert_string_equal(tm_serial_unusable((const unsigned char *)"  \0", 3), "blank");
    templ_done(&t);
    X509_free(c);
}

static void test_given_label_and_subject_kept(void **state)
{
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    templ_cert(&t, c);
    templ_add(&t, CKA_LABEL, "my cert", 7);
    templ_add(&t, CKA_SUBJECT, "\x30\x00", 2);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    assert_attr(&d, CKA_LABEL, "my cert", 7);
    assert_attr(&d, CKA_SUBJECT, "\x30\x00", 2);
    assert_attr(&d, CKA_ID, "\xa1", 1);
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_rsa_and_ed25519_keys_match(void **state)
{
    X509 *rc = issue(rsa_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    X509 *ec = issue(ed_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\x01", "ec", 1);
    token_key_pair(rsa_key, "\x02", "rsa", 1);
    token_key_pair(ed_key, "\x03", "ed", 1);

    templ_cert(&t, rc);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    assert_attr(&d, CKA_ID, "\x02", 1);
    mod_policy_decision_clear(&d);
    templ_done(&t);

    templ_cert(&t, ec);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    assert_attr(&d, CKA_ID, "\x03", 1);
    assert_attr(&d, CKA_LABEL, "ed", 2);
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(rc);
    X509_free(ec);
}

static void test_rsa_private_key_alone_matches(void **state)
{
    /* no public key object: the private key's readable modulus identifies it */
    X509 *c = issue(rsa_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(rsa_key, "rsa-1", "rsa", 0);
    templ_cert(&t, c);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    assert_attr(&d, CKA_ID, "rsa-1", 5);
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_bare_ec_point_matches(void **state)
{
    /* some tokens return CKA_EC_POINT without the OCTET STRING wrapper */
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;
    mobj *o = obj_new(CKO_PUBLIC_KEY);

    obj_ulong(o, CKA_KEY_TYPE, CKK_EC);
    obj_set(o, CKA_ID, "\x09", 1);
    set_ec_point(o, ec_key, 0);
    templ_cert(&t, c);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    assert_attr(&d, CKA_ID, "\x09", 1);
    /* no label on the key, none given: none added */
    {
        int count;
        assert_null(out_attr(&d, CKA_LABEL, &count));
    }
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_other_serial_refused(void **state)
{
    X509 *c = issue(ec_key, OTHER_SERIAL, OTHER_SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    templ_cert(&t, c);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_ATTRIBUTE_VALUE_INVALID);
    assert_reason(&d, "certificate names serial 77aa00bb11cc22dd; this token is "
                      "5a1f0c3e9b2d4411");
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_no_matching_key_refused(void **state)
{
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key2, "\x01", "another key", 1);
    token_key_pair(rsa_key, "\x02", "rsa", 1);
    /* an EC private key carries no CKA_EC_POINT: not enough to match */
    token_key_pair(ec_key, "\x03", "private only", 0);
    templ_cert(&t, c);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_KEY_HANDLE_INVALID);
    assert_reason(&d, "no key pair on token 5a1f0c3e9b2d4411 matches the certificate's "
                      "public key");
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_second_certificate_refused(void **state)
{
    X509 *first = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    X509 *second = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    X509 *other;
    mod_policy_decision d;
    req_templ t;
    char first_serial[80];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(first), NULL);
    char *h = BN_bn2hex(bn);

    snprintf(first_serial, sizeof(first_serial), "(serial %s)", h);
    OPENSSL_free(h);
    BN_free(bn);

    /* found by CKA_ID */
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\xa1\xb2");
    templ_cert(&t, second);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_DATA_INVALID);
    assert_reason(&d, "key pair a1b2 on token 5a1f0c3e9b2d4411 already has a certificate");
    assert_reason(&d, first_serial);
    assert_reason(&d, "certificates never overwrite one another");
    mod_policy_decision_clear(&d);

    /* found by public key, under another CKA_ID */
    mock_reset();
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\x55");
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_DATA_INVALID);
    assert_reason(&d, first_serial);
    mod_policy_decision_clear(&d);

    /* a certificate of another key pair does not block this one */
    mock_reset();
    token_key_pair(ec_key2, "\x01", "key-0", 1);
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    other = issue(ec_key2, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    token_cert(other, "\x01");
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    mod_policy_decision_clear(&d);

    templ_done(&t);
    X509_free(first);
    X509_free(second);
    X509_free(other);
}

/* The certificate c again, valid from and until days later, with a new
 * serial, signed by ca: what a same-key renewal at that CA gives. */
static X509 *renewal_of(X509 *c, long days, X509 *ca, EVP_PKEY *cakey)
{
    X509 *r = X509_dup(c);
    BIGNUM *bn = BN_new();
    ASN1_INTEGER *sn;

    assert_non_null(r);
    assert_non_null(bn);
    /* a fresh serial of the profile's size (64 bits and more) */
    assert_int_equal(BN_rand(bn, 96, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), 1);
    sn = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(sn);
    assert_int_equal(X509_set_serialNumber(r, sn), 1);
    BN_free(bn);
    /* the whole validity moves: the profile bounds its length */
    {
        int d = 0, secs = 0;
        assert_int_equal(ASN1_TIME_diff(&d, &secs, NULL, X509_get0_notAfter(c)), 1);
        assert_non_null(X509_time_adj_ex(X509_getm_notAfter(r), d + (int)days, secs, NULL));
        assert_int_equal(ASN1_TIME_diff(&d, &secs, NULL, X509_get0_notBefore(c)), 1);
        assert_non_null(X509_time_adj_ex(X509_getm_notBefore(r), d + (int)days, secs, NULL));
    }
    assert_int_equal(X509_set_issuer_name(r, X509_get_subject_name(ca)), 1);
    assert_true(X509_sign(r, cakey, EVP_sha256()) > 0);
    ASN1_INTEGER_free(sn);
    return r;
}

static void test_same_key_renewal_accepted(void **state)
{
    X509 *first = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    X509 *second = renewal_of(first, 1, ca_cert, ca_key);
    X509 *third = renewal_of(first, 2, ca_cert, ca_key);
    X509 *shorter = renewal_of(first, -1, ca_cert, ca_key);
    X509 *elsewhere = renewal_of(first, 1, ca2_cert, ca2_key);
    mod_policy_decision d;
    req_templ t;
    char first_serial[80], want[160];
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(first), NULL);
    char *h = BN_bn2hex(bn);

    snprintf(first_serial, sizeof(first_serial), "%s", h);
    OPENSSL_free(h);
    BN_free(bn);

    /* the same token, purpose and CA, lasting longer: a renewal */
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\xa1\xb2");
    templ_cert(&t, second);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    if (d.rv != CKR_OK)
        fail_msg("a renewal refused: %s", d.reason);
    snprintf(want, sizeof(want), "renewing certificate %s", first_serial);
    assert_reason(&d, want);
    mod_policy_decision_clear(&d);
    templ_done(&t);

    /* and the next renewal renews both */
    token_cert(second, "\xa1\xb2");
    templ_cert(&t, third);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    mod_policy_decision_clear(&d);
    templ_done(&t);

    /* one that ends sooner than the one there renews nothing */
    mock_reset();
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\xa1\xb2");
    templ_cert(&t, shorter);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_DATA_INVALID);
    assert_reason(&d, "does not renew it (the new one does not outlast it)");
    mod_policy_decision_clear(&d);
    templ_done(&t);

    /* nor does one from another CA, even under another CKA_ID */
    mock_reset();
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\x55");
    templ_cert(&t, elsewhere);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_DATA_INVALID);
    assert_reason(&d, "(the new one is from another issuer)");
    mod_policy_decision_clear(&d);
    templ_done(&t);

    /* nor the same certificate again */
    mock_reset();
    token_key_pair(ec_key, "\xa1\xb2", "key-1", 1);
    token_cert(first, "\xa1\xb2");
    templ_cert(&t, first);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_DATA_INVALID);
    assert_reason(&d, "(it is the same certificate)");
    mod_policy_decision_clear(&d);
    templ_done(&t);

    X509_free(first);
    X509_free(second);
    X509_free(third);
    X509_free(shorter);
    X509_free(elsewhere);
}

static void test_outside_profile_refuse_and_allow(void **state)
{
    /* a CA certificate: no serial binding */
    mod_policy_decision d;
    req_templ t;
    CK_ULONG i;

    templ_cert(&t, ca2_cert);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "certificate is outside the serial-bound profile: ");
    /* the profile library's own words follow */
    assert_true(strlen(d.reason) > strlen("certificate is outside the serial-bound profile: "));
    mod_policy_decision_clear(&d);

    policy.outside_profile = TM_OUTSIDE_PROFILE_ALLOW;
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_OK);
    /* stored as given: the same attributes, nothing added */
    assert_int_equal(d.templ_count, t.n);
    for (i = 0; i < t.n; i++) {
        assert_int_equal(d.templ[i].type, t.a[i].type);
        assert_int_equal(d.templ[i].ulValueLen, t.a[i].ulValueLen);
        assert_memory_equal(d.templ[i].pValue, t.a[i].pValue, t.a[i].ulValueLen);
        /* a copy the caller can free independently */
        assert_ptr_not_equal(d.templ[i].pValue, t.a[i].pValue);
    }
    mod_policy_decision_clear(&d);
    templ_done(&t);
}

static void test_chain_to_trusted_root(void **state)
{
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    STACK_OF(X509) *roots = sk_X509_new_null();
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    templ_cert(&t, c);
    policy.trusted_roots = roots;

    /* issued by a configured root */
    sk_X509_push(roots, ca2_cert);
    sk_X509_push(roots, ca_cert);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    mod_policy_decision_clear(&d);

    /* only some other root configured */
    sk_X509_pop(roots);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_SIGNATURE_INVALID);
    assert_reason(&d, "certificate does not chain to a trusted root: ");
    assert_reason(&d, "unable to get local issuer certificate");
    mod_policy_decision_clear(&d);

    /* an empty list means no chain check */
    sk_X509_pop(roots);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_OK);
    mod_policy_decision_clear(&d);

    sk_X509_free(roots);
    templ_done(&t);
    X509_free(c);
}

static void test_forged_signature_refused_by_chain(void **state)
{
    /* issued in ca_cert's name but signed with another key */
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca2_key);
    STACK_OF(X509) *roots = sk_X509_new_null();
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    sk_X509_push(roots, ca_cert);
    policy.trusted_roots = roots;
    templ_cert(&t, c);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_SIGNATURE_INVALID);
    assert_reason(&d, "signature");
    mod_policy_decision_clear(&d);
    sk_X509_free(roots);
    templ_done(&t);
    X509_free(c);
}

static void test_garbage_value_refused(void **state)
{
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;
    int len;
    unsigned char *der = der_of(c, &len);
    unsigned char *longer = malloc((size_t)len + 1);

    token_key_pair(ec_key, "\xa1", "key-1", 1);

    templ_for(&t, "not a certificate", 17);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "CKA_VALUE is not a DER X.509 certificate");
    mod_policy_decision_clear(&d);

    /* truncated */
    templ_for(&t, der, (CK_ULONG)len - 10);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    mod_policy_decision_clear(&d);

    /* a valid certificate followed by a stray byte */
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    templ_for(&t, longer, (CK_ULONG)len + 1);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "trailing");
    mod_policy_decision_clear(&d);

    /* no CKA_VALUE at all */
    templ_for(&t, der, (CK_ULONG)len);
    t.n--;
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "no CKA_VALUE");
    mod_policy_decision_clear(&d);

    /* two CKA_VALUEs: the policy would check one, the backend might store the other */
    templ_for(&t, der, (CK_ULONG)len);
    templ_add(&t, CKA_VALUE, "x", 1);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    mod_policy_decision_clear(&d);

    free(longer);
    OPENSSL_free(der);
    X509_free(c);
}

static void test_undecodable_public_key_refused(void **state)
{
    /* a certificate that parses but whose EC point is not on the curve */
    X509 *c = issue(ec_key, SERIAL, SERIAL_LEN, ca_cert, ca_key);
    unsigned char pt[65];
    size_t pt_len = 0, i;
    int len;
    unsigned char *der = der_of(c, &len);
    unsigned char *at = NULL;
    mod_policy_decision d;
    req_templ t;

    assert_int_equal(EVP_PKEY_get_octet_string_param(ec_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
                                                     sizeof(pt), &pt_len),
                     1);
    for (i = 0; i + pt_len <= (size_t)len && at == NULL; i++)
        if (memcmp(der + i, pt, pt_len) == 0)
            at = der + i;
    assert_non_null(at);
    at[pt_len - 1] ^= 0x01; /* y no longer fits x */

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    templ_for(&t, der, (CK_ULONG)len);
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "public key cannot be decoded");
    mod_policy_decision_clear(&d);
    OPENSSL_free(der);
    X509_free(c);
}

static void test_missing_certificate_type_counts_as_x509(void **state)
{
    X509 *c = issue(ec_key, OTHER_SERIAL, OTHER_SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    token_key_pair(ec_key, "\xa1", "key-1", 1);
    templ_cert(&t, c);
    t.a[1] = t.a[--t.n]; /* drop CKA_CERTIFICATE_TYPE */
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_ATTRIBUTE_VALUE_INVALID);
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_malformed_class_refused(void **state)
{
    /* a 4-byte CKA_CLASS: which object it is depends on how the backend reads
     * it, so the policy refuses it as if it were a certificate */
    uint32_t short_cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE in[] = {
        {CKA_CLASS, &short_cls, sizeof(short_cls)},
        {CKA_VALUE, "xx", 2},
    };
    mod_policy_decision d;

    mod_policy_decide(&policy, &mock, SESSION, SERIAL, SERIAL_LEN, in, 2, &d);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_ATTRIBUTE_VALUE_INVALID);
    assert_null(d.templ);
    assert_reason(&d, "CKA_CLASS");
    mod_policy_decision_clear(&d);
}

static void test_repeated_class_or_type_refused(void **state)
{
    /* a data object first, a certificate second: a backend reading the last
     * copy would store a certificate the policy never looked at */
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_CERTIFICATE_TYPE attr_cert = CKC_X_509_ATTR_CERT;
    X509 *c = issue(ec_key, OTHER_SERIAL, OTHER_SERIAL_LEN, ca_cert, ca_key);
    mod_policy_decision d;
    req_templ t;

    templ_cert(&t, c);
    t.a[0].pValue = &data;
    templ_add(&t, CKA_CLASS, &cls_cert, sizeof(cls_cert));
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "repeats CKA_CLASS");
    mod_policy_decision_clear(&d);
    templ_done(&t);

    templ_cert(&t, c);
    t.a[1].pValue = &attr_cert;
    templ_add(&t, CKA_CERTIFICATE_TYPE, &x509, sizeof(x509));
    decide(&t, &d, SERIAL, SERIAL_LEN);
    assert_int_equal(d.is_certificate, 1);
    assert_int_equal(d.rv, CKR_TEMPLATE_INCONSISTENT);
    assert_reason(&d, "repeats CKA_CERTIFICATE_TYPE");
    mod_policy_decision_clear(&d);
    templ_done(&t);
    X509_free(c);
}

static void test_other_objects_pass_through(void **state)
{
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE in[] = {
        {CKA_CLASS, &data, sizeof(data)},
        {CKA_LABEL, "notes", 5},
        {CKA_VALUE, "garbage is fine here", 20},
    };
    CK_CERTIFICATE_TYPE other = CKC_X_509_ATTR_CERT;
    CK_ATTRIBUTE attr_cert[] = {
        {CKA_CLASS, &cls_cert, sizeof(cls_cert)},
        {CKA_CERTIFICATE_TYPE, &other, sizeof(other)},
        {CKA_VALUE, "xx", 2},
    };
    mod_policy_decision d;

    mod_policy_decide(&policy, &mock, SESSION, SERIAL, SERIAL_LEN, in, 3, &d);
    assert_int_equal(d.is_certificate, 0);
    assert_int_equal(d.rv, CKR_OK);
    assert_int_equal(d.templ_count, 3);
    assert_memory_equal(d.templ[2].pValue, "garbage is fine here", 20);
    mod_policy_decision_clear(&d);

    mod_policy_decide(&policy, &mock, SESSION, SERIAL, SERIAL_LEN, attr_cert, 3, &d);
    assert_int_equal(d.is_certificate, 0);
    assert_int_equal(d.rv, CKR_OK);
    assert_int_equal(d.templ_count, 3);
    mod_policy_decision_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_accepted_gets_key_id_and_label, setup),
        cmocka_unit_test_setup(test_given_label_and_subject_kept, setup),
        cmocka_unit_test_setup(test_rsa_and_ed25519_keys_match, setup),
        cmocka_unit_test_setup(test_rsa_private_key_alone_matches, setup),
        cmocka_unit_test_setup(test_bare_ec_point_matches, setup),
        cmocka_unit_test_setup(test_other_serial_refused, setup),
        cmocka_unit_test_setup(test_no_matching_key_refused, setup),
        cmocka_unit_test_setup(test_second_certificate_refused, setup),
        cmocka_unit_test_setup(test_same_key_renewal_accepted, setup),
        cmocka_unit_test_setup(test_outside_profile_refuse_and_allow, setup),
        cmocka_unit_test_setup(test_chain_to_trusted_root, setup),
        cmocka_unit_test_setup(test_forged_signature_refused_by_chain, setup),
        cmocka_unit_test_setup(test_garbage_value_refused, setup),
        cmocka_unit_test_setup(test_undecodable_public_key_refused, setup),
        cmocka_unit_test_setup(test_missing_certificate_type_counts_as_x509, setup),
        cmocka_unit_test_setup(test_malformed_class_refused, setup),
        cmocka_unit_test_setup(test_repeated_class_or_type_refused, setup),
        cmocka_unit_test_setup(test_other_objects_pass_through, setup),
        cmocka_unit_test_setup(test_unusable_serial_refused, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
