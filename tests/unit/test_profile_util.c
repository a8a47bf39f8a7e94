#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "test_profile_util.h"

EVP_PKEY *tpu_key(const char *kind)
{
    EVP_PKEY *k = NULL;

    if (strcmp(kind, "P-256") == 0 || strcmp(kind, "P-384") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
    else if (strcmp(kind, "RSA-2048") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(kind, "ED25519") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

static const EVP_MD *md_for(EVP_PKEY *key)
{
    int id = EVP_PKEY_get_base_id(key);
    return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
}

void tpu_ca(EVP_PKEY **key, X509 **cert)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    ASN1_INTEGER *sn;

    *key = tpu_key("P-256");
    assert_non_null(x);
    assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                           (const unsigned char *)"tokenmint test CA", -1, -1, 0));
    assert_true(X509_set_version(x, X509_VERSION_3));
    sn = tm_profile_random_serial();
    assert_true(X509_set_serialNumber(x, sn));
    ASN1_INTEGER_free(sn);
    assert_true(X509_set_subject_name(x, n));
    assert_true(X509_set_issuer_name(x, n));
    X509_NAME_free(n);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, NULL));
    assert_true(X509_set_pubkey(x, *key));
    tpu_cert_set_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    tpu_cert_set_ext(x, x, NID_subject_key_identifier, "hash");
    tpu_sign_cert(x, *key);
    *cert = x;
}

void tpu_sign_req(X509_REQ *req, EVP_PKEY *key)
{
    assert_true(X509_REQ_sign(req, key, md_for(key)) > 0);
}

void tpu_sign_cert(X509 *cert, EVP_PKEY *ca_key)
{
    assert_true(X509_sign(cert, ca_key, md_for(ca_key)) > 0);
}

X509_REQ *tpu_request(const tm_profile *p, EVP_PKEY *key, const char *serial, const char *purpose)
{
    X509_REQ *req = X509_REQ_new();
    tm_violations *v = tm_violations_new();

    assert_non_null(req);
    assert_true(X509_REQ_set_pubkey(req, key));
    if (!tm_profile_build_request(p, req, (const unsigned char *)serial, strlen(serial), NULL,
                                  purpose, v)) {
        tpu_expect_count(v, 0);
        fail();
    }
    tm_violations_free(v);
    tpu_sign_req(req, key);
    return req;
}

X509 *tpu_issue(const tm_profile *p, const X509_REQ *req, EVP_PKEY *ca_key, X509 *ca_cert)
{
    X509 *x = X509_new();
    tm_violations *v = tm_violations_new();

    assert_non_null(x);
    assert_true(X509_set_pubkey(x, X509_REQ_get0_pubkey((X509_REQ *)req)));
    if (!tm_profile_issue(p, x, req, ca_cert, v)) {
        tpu_expect_count(v, 0);
        fail();
    }
    tm_violations_free(v);
    tpu_sign_cert(x, ca_key);
    return x;
}

void tpu_cert_set_ext(X509 *cert, X509 *ca, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int idx;

    while ((idx = X509_get_ext_by_NID(cert, nid, -1)) >= 0)
        X509_EXTENSION_free(X509_delete_ext(cert, idx));
    if (value == NULL)
        return;
    X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_true(X509_add_ext(cert, ext, -1));
    X509_EXTENSION_free(ext);
}

void tpu_req_set_exts(X509_REQ *req, const int *nids, const char *const *values)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX ctx;
    int idx;
    size_t i;

    while ((idx = X509_REQ_get_attr_by_NID(req, NID_ext_req, -1)) >= 0)
        X509_ATTRIBUTE_free(X509_REQ_delete_attr(req, idx));
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    for (i = 0; nids[i] != 0; i++) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nids[i], values[i]);
        assert_non_null(ext);
        assert_non_null(X509v3_add_ext(&exts, ext, -1));
        X509_EXTENSION_free(ext);
    }
    if (exts != NULL)
        assert_true(X509_REQ_add_extensions(req, exts));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void dump(const tm_violations *v)
{
    size_t i;
    for (i = 0; i < tm_violations_count(v); i++)
        print_message("  violation: %s\n", tm_violations_get(v, i));
}

void tpu_expect(const tm_violations *v, const char *needle)
{
    size_t i;

    for (i = 0; i < tm_violations_count(v); i++)
        if (tm_violations_get(v, i) && strstr(tm_violations_get(v, i), needle) != NULL)
            return;
    print_message("no violation contains \"%s\"\n", needle);
    dump(v);
    fail();
}

void tpu_expect_count(const tm_violations *v, size_t n)
{
    if (tm_violations_count(v) != n) {
        print_message("expected %zu violations, got %zu\n", n, tm_violations_count(v));
        dump(v);
        fail();
    }
}

tm_profile *tpu_profile(void)
{
    const char *src = getenv("TM_SOURCE_DIR");
    char path[4096];
    tm_violations *v = tm_violations_new();
    tm_profile *p;

    assert_non_null(src);
    snprintf(path, sizeof(path), "%s/conf/profile.cnf", src);
    p = tm_profile_load(path, v);
    tpu_expect_count(v, 0);
    assert_non_null(p);
    tm_violations_free(v);
    return p;
}

tm_profile *tpu_profile_text(const char *text)
{
    tm_violations *v = tm_violations_new();
    tm_profile *p = tm_profile_load_string(text, v);

    tpu_expect_count(v, 0);
    assert_non_null(p);
    tm_violations_free(v);
    return p;
}
