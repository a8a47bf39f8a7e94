#define _GNU_SOURCE
/* Build -> sign with stock OpenSSL -> read back, for every key type the
 * station meets; then issue -> sign -> read back and check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "test_profile_util.h"

#define SERIAL "0A1B2C3D4E5F6071"

static X509_REQ *through_der_req(X509_REQ *req)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509_REQ(req, &der);
    X509_REQ *back;

    assert_true(len > 0);
    p = der;
    back = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(back);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return back;
}

static X509 *through_der_cert(X509 *x)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_X509(x, &der);
    X509 *back;

    assert_true(len > 0);
    p = der;
    back = d2i_X509(NULL, &p, len);
    assert_non_null(back);
    OPENSSL_free(der);
    X509_free(x);
    return back;
}

static void round_trip(const char *kind, const char *purpose)
{
    tm_profile *p = tpu_profile();
    tm_violations *v = tm_violations_new();
    EVP_PKEY *key = tpu_key(kind), *ca_key;
    X509 *ca, *cert;
    X509_REQ *req;
    tm_binding b;
    unsigned char *der = NULL;
    int len;

    tpu_ca(&ca_key, &ca);
    req = through_der_req(tpu_request(p, key, SERIAL, purpose));

    /* the request as the CA receives it */
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    assert_true(tm_binding_from_req(p, req, &b, v));
    assert_true(tm_binding_names_serial(&b, (const unsigned char *)SERIAL, strlen(SERIAL)));
    assert_false(tm_binding_names_serial(&b, (const unsigned char *)SERIAL, strlen(SERIAL) - 1));
    assert_string_equal(b.serial_text, SERIAL);
    assert_string_equal(b.purpose, purpose);
    assert_string_equal(b.hw_type, tm_profile_hw_type(p, NULL));
    assert_int_equal(tm_profile_check_req(p, req, v), 0);

    /* what the token key is asked to sign */
    len = i2d_re_X509_REQ_tbs(req, &der);
    assert_true(len > 0);
    assert_int_equal(tm_profile_check_req_info(p, der, (size_t)len, v), 0);
    memset(&b, 0, sizeof(b));
    assert_true(tm_binding_from_req_info(p, der, (size_t)len, &b, v));
    assert_string_equal(b.purpose, purpose);
    OPENSSL_free(der);
    der = NULL;

    cert = through_der_cert(tpu_issue(p, req, ca_key, ca));
    assert_int_equal(X509_verify(cert, ca_key), 1);
    memset(&b, 0, sizeof(b));
    assert_true(tm_binding_from_cert(p, cert, &b, v));
    assert_true(tm_binding_names_serial(&b, (const unsigned char *)SERIAL, strlen(SERIAL)));
    assert_string_equal(b.purpose, purpose);
    assert_int_equal(tm_profile_check_cert(p, cert, v), 0);
    assert_int_equal(X509_check_issued(ca, cert), X509_V_OK);

    /* what the CA key is asked to sign */
    len = i2d_re_X509_tbs(cert, &der);
    assert_true(len > 0);
    assert_int_equal(tm_profile_check_tbs(p, der, (size_t)len, v), 0);
    memset(&b, 0, sizeof(b));
    assert_true(tm_binding_from_tbs(p, der, (size_t)len, &b, v));
    assert_string_equal(b.serial_text, SERIAL);
    OPENSSL_free(der);

    tpu_expect_count(v, 0);
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_violations_free(v);
    tm_profile_free(p);
}

static void test_p256(void **state)
{
    round_trip("P-256", "auth");
}

static void test_p384(void **state)
{
    round_trip("P-384", "auth");
}

static void test_rsa2048(void **state)
{
    round_trip("RSA-2048", "auth");
}

static void test_ed25519(void **state)
{
    round_trip("ED25519", "auth");
}

static void test_sign_and_encrypt_purposes(void **state)
{
    round_trip("P-256", "sign");
    round_trip("ED25519", "sign");
    round_trip("RSA-2048", "encrypt");
    round_trip("P-256", "encrypt");
}

static void expect_ku(const char *kind, const char *purpose, uint32_t want)
{
    tm_profile *p = tpu_profile();
    EVP_PKEY *key = tpu_key(kind), *ca_key;
    X509 *ca, *cert;
    X509_REQ *req;

    tpu_ca(&ca_key, &ca);
    req = tpu_request(p, key, SERIAL, purpose);
    cert = tpu_issue(p, req, ca_key, ca);
    assert_int_equal(X509_get_key_usage(cert), want);
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_profile_free(p);
}

static void test_encrypt_key_usage_follows_key_type(void **state)
{
    expect_ku("RSA-2048", "encrypt", KU_KEY_ENCIPHERMENT);
    expect_ku("P-256", "encrypt", KU_KEY_AGREEMENT);
    expect_ku("P-384", "auth", KU_DIGITAL_SIGNATURE);
    expect_ku("ED25519", "sign", KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
}

static void test_encrypt_refused_for_ed25519(void **state)
{
    tm_profile *p = tpu_profile();
    tm_violations *v = tm_violations_new();
    EVP_PKEY *key = tpu_key("ED25519");
    X509_REQ *req = X509_REQ_new();

    assert_true(X509_REQ_set_pubkey(req, key));
    assert_false(tm_profile_build_request(p, req, (const unsigned char *)SERIAL, strlen(SERIAL),
                                          NULL, "encrypt", v));
    tpu_expect(v, "purpose encrypt is not defined for eddsa keys");
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    tm_violations_free(v);
    tm_profile_free(p);
}

static void test_issue_takes_key_usage_from_profile_not_request(void **state)
{
    tm_profile *p = tpu_profile();
    tm_violations *v = tm_violations_new();
    EVP_PKEY *key = tpu_key("P-256"), *ca_key;
    X509 *ca, *cert = X509_new();
    X509_REQ *req;
    static const int nids[] = {NID_subject_alt_name, NID_key_usage, 0};
    const char *values[3] = {NULL, "critical,digitalSignature,keyCertSign", NULL};
    STACK_OF(X509_EXTENSION) * exts;
    X509_EXTENSION *san;

    tpu_ca(&ca_key, &ca);
    req = tpu_request(p, key, SERIAL, "auth");
    /* keep the SAN, ask for keyCertSign in keyUsage */
    exts = X509_REQ_get_extensions(req);
    san = X509_EXTENSION_dup(
        X509v3_get_ext(exts, X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1)));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    tpu_req_set_exts(req, &nids[1], &values[1]);
    exts = X509_REQ_get_extensions(req);
    assert_non_null(X509v3_add_ext(&exts, san, -1));
    while (X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) >= 0)
        X509_ATTRIBUTE_free(
            X509_REQ_delete_attr(req, X509_REQ_get_attr_by_NID(req, NID_ext_req, -1)));
    assert_true(X509_REQ_add_extensions(req, exts));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_EXTENSION_free(san);
    tpu_sign_req(req, key);

    assert_true(X509_set_pubkey(cert, key));
    assert_false(tm_profile_issue(p, cert, req, ca, v));
    tpu_expect(v, "does not match any purpose of the profile");
    assert_int_equal(X509_get_ext_by_NID(cert, NID_key_usage, -1), -1);
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_violations_free(v);
    tm_profile_free(p);
}

static void test_issue_refuses_other_public_key(void **state)
{
    tm_profile *p = tpu_profile();
    tm_violations *v = tm_violations_new();
    EVP_PKEY *key = tpu_key("P-256"), *other = tpu_key("P-256"), *ca_key;
    X509 *ca, *cert = X509_new();
    X509_REQ *req;

    tpu_ca(&ca_key, &ca);
    req = tpu_request(p, key, SERIAL, "auth");
    assert_true(X509_set_pubkey(cert, other));
    assert_false(tm_profile_issue(p, cert, req, ca, v));
    tpu_expect(v, "not the request's public key");
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    tm_violations_free(v);
    tm_profile_free(p);
}

static void test_odd_serials_survive_the_round_trip(void **state)
{
    static const struct {
        const char *raw;
        size_t len;
        const char *text;
    } serials[] = {
        {"AB CD", 5, "AB CD"},
        {"A?B", 3, "A?3FB"},
        {"\xff\x01", 2, "?FF?01"},
        {"AB\0CD", 5, "AB?00CD"},
        {"0123456789ABCDEF", 16, "0123456789ABCDEF"},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16,
         "?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF?FF"},
    };
    tm_profile *p = tpu_profile();
    EVP_PKEY *key = tpu_key("P-256"), *ca_key;
    X509 *ca;
    size_t i;

    tpu_ca(&ca_key, &ca);
    for (i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
        tm_violations *v = tm_violations_new();
        X509_REQ *req = X509_REQ_new();
        X509 *cert;
        tm_binding b;

        assert_true(X509_REQ_set_pubkey(req, key));
        assert_true(tm_profile_build_request(p, req, (const unsigned char *)serials[i].raw,
                                             serials[i].len, NULL, NULL, v));
        tpu_sign_req(req, key);
        cert = tpu_issue(p, req, ca_key, ca);
        assert_true(tm_binding_from_cert(p, cert, &b, v));
        assert_string_equal(b.serial_text, serials[i].text);
        assert_true(
            tm_binding_names_serial(&b, (const unsigned char *)serials[i].raw, serials[i].len));
        assert_int_equal(tm_profile_check_cert(p, cert, v), 0);
        tpu_expect_count(v, 0);
        X509_free(cert);
        X509_REQ_free(req);
        tm_violations_free(v);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_profile_free(p);
}

static void test_model_selects_hw_type(void **state)
{
    tm_profile *p = tpu_profile();
    tm_violations *v = tm_violations_new();
    EVP_PKEY *key = tpu_key("P-256");
    X509_REQ *req = X509_REQ_new();
    tm_binding b;

    assert_true(X509_REQ_set_pubkey(req, key));
    assert_true(tm_profile_build_request(p, req, (const unsigned char *)SERIAL, strlen(SERIAL),
                                         "SoftHSM v2", "auth", v));
    assert_true(tm_binding_from_req(p, req, &b, v));
    assert_string_equal(b.hw_type, "2.25.306879213863795936203097792690857128826.2");
    assert_string_equal(tm_profile_hw_type(p, "Unknown model"),
                        "2.25.306879213863795936203097792690857128826.1");
    assert_int_equal(tm_profile_check_req(p, req, v), 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    tm_violations_free(v);
    tm_profile_free(p);
}

static void test_random_serials_are_positive_and_159_bits(void **state)
{
    int i;

    for (i = 0; i < 64; i++) {
        ASN1_INTEGER *a = tm_profile_random_serial(), *b = tm_profile_random_serial();
        BIGNUM *bn = ASN1_INTEGER_to_BN(a, NULL);
        assert_non_null(bn);
        assert_false(BN_is_negative(bn));
        assert_int_equal(BN_num_bits(bn), 159);
        assert_int_not_equal(ASN1_INTEGER_cmp(a, b), 0);
        BN_free(bn);
        ASN1_INTEGER_free(a);
        ASN1_INTEGER_free(b);
    }
}

static void test_registered_oids_are_named(void **state)
{
    tm_profile *p = tpu_profile();
    EVP_PKEY *key = tpu_key("P-256"), *ca_key;
    X509 *ca, *cert;
    X509_REQ *req;
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    long n;

    tm_profile_register_oids(p);
    tm_profile_register_oids(p); /* idempotent */
    assert_int_not_equal(OBJ_sn2nid("hardwareModuleName"), NID_undef);
    assert_int_equal(OBJ_txt2nid("1.3.6.1.5.5.7.8.4"), OBJ_sn2nid("hardwareModuleName"));
    assert_int_equal(OBJ_txt2nid("2.25.306879213863795936203097792690857128826.1"),
                     OBJ_sn2nid("tokenmintToken"));
    assert_int_equal(OBJ_txt2nid("2.25.306879213863795936203097792690857128826.2"),
                     OBJ_sn2nid("softhsm2Token"));

    tpu_ca(&ca_key, &ca);
    req = tpu_request(p, key, SERIAL, "auth");
    cert = tpu_issue(p, req, ca_key, ca);
    assert_true(X509_print(bio, cert));
    n = BIO_get_mem_data(bio, &text);
    assert_true(n > 0);
    /* OpenSSL 3.0 cannot print the value, but it names the otherName type */
    assert_non_null(
        memmem(text, (size_t)n, "serialNumber=" SERIAL, strlen("serialNumber=" SERIAL)));
    assert_non_null(memmem(text, (size_t)n, "othername: Hardware Module Name",
                           strlen("othername: Hardware Module Name")));
    BIO_free(bio);
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p256),
        cmocka_unit_test(test_p384),
        cmocka_unit_test(test_rsa2048),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_sign_and_encrypt_purposes),
        cmocka_unit_test(test_encrypt_key_usage_follows_key_type),
        cmocka_unit_test(test_encrypt_refused_for_ed25519),
        cmocka_unit_test(test_issue_takes_key_usage_from_profile_not_request),
        cmocka_unit_test(test_issue_refuses_other_public_key),
        cmocka_unit_test(test_odd_serials_survive_the_round_trip),
        cmocka_unit_test(test_model_selects_hw_type),
        cmocka_unit_test(test_random_serials_are_positive_and_159_bits),
        cmocka_unit_test(test_registered_oids_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
