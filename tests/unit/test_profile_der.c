#define _GNU_SOURCE
/* Malformed DER at the signing boundary: always an error, never a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>

#include "test_profile_util.h"

typedef struct fixture {
    tm_profile *p;
    unsigned char *tbs, *cri;
    int tbs_len, cri_len;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    EVP_PKEY *key = tpu_key("P-256"), *ca_key;
    X509 *ca, *cert;
    X509_REQ *req;

    f->p = tpu_profile();
    tpu_ca(&ca_key, &ca);
    req = tpu_request(f->p, key, "0A1B2C3D", "auth");
    cert = tpu_issue(f->p, req, ca_key, ca);
    f->tbs_len = i2d_re_X509_tbs(cert, &f->tbs);
    f->cri_len = i2d_re_X509_REQ_tbs(req, &f->cri);
    assert_true(f->tbs_len > 0 && f->cri_len > 0);
    X509_free(cert);
    X509_REQ_free(req);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    OPENSSL_free(f->tbs);
    OPENSSL_free(f->cri);
    tm_profile_free(f->p);
    free(f);
    return 0;
}

static void test_intact_der_conforms(void **state)
{
    fixture *f = *state;

    assert_int_equal(tm_profile_check_tbs(f->p, f->tbs, (size_t)f->tbs_len, NULL), 0);
    assert_int_equal(tm_profile_check_req_info(f->p, f->cri, (size_t)f->cri_len, NULL), 0);
}

static void test_empty_and_garbage(void **state)
{
    fixture *f = *state;
    tm_violations *v = tm_violations_new();
    tm_binding b;
    static const unsigned char junk[] = "this is not DER at all";

    assert_int_equal(tm_profile_check_tbs(f->p, NULL, 0, v), 1);
    tpu_expect(v, "not a DER TBSCertificate: no bytes");
    assert_int_equal(tm_profile_check_req_info(f->p, junk, sizeof(junk), v), 1);
    tpu_expect(v, "not a DER CertificationRequestInfo: the outer length is wrong or truncated");
    assert_false(tm_binding_from_tbs(f->p, junk, sizeof(junk), &b, v));
    assert_int_equal(b.serial_len, 0);
    /* a SET is not a SEQUENCE */
    assert_int_equal(tm_profile_check_tbs(f->p, (const unsigned char *)"\x31\x00", 2, v), 1);
    tpu_expect(v, "not a DER TBSCertificate: it does not start with a definite-length SEQUENCE");
    /* a request is not a certificate */
    assert_int_equal(tm_profile_check_tbs(f->p, f->cri, (size_t)f->cri_len, v), 1);
    tpu_expect(v, "not a DER TBSCertificate");
    tm_violations_free(v);
}

static void test_trailing_bytes(void **state)
{
    fixture *f = *state;
    tm_violations *v = tm_violations_new();
    unsigned char *longer = OPENSSL_malloc((size_t)f->tbs_len + 1);

    memcpy(longer, f->tbs, (size_t)f->tbs_len);
    longer[f->tbs_len] = 0;
    assert_int_equal(tm_profile_check_tbs(f->p, longer, (size_t)f->tbs_len + 1, v), 1);
    tpu_expect(v, "not a DER TBSCertificate: the SEQUENCE holds");
    OPENSSL_free(longer);
    tm_violations_free(v);
}

/* What the signing boundary uses to learn what it is asked to sign, so the
 * bytes are decoded once: each parser takes exactly its own structure, and the
 * checks read what it returns. */
static void test_parsers_tell_request_from_certificate(void **state)
{
    fixture *f = *state;
    tm_violations *v = tm_violations_new();
    tm_binding b;
    X509_REQ *r;
    X509 *x;

    ERR_clear_error();
    x = tm_tbs_parse(f->tbs, (size_t)f->tbs_len, NULL);
    r = tm_req_info_parse(f->cri, (size_t)f->cri_len, NULL);
    assert_non_null(x);
    assert_non_null(r);
    assert_int_equal(tm_profile_check_cert(f->p, x, NULL), 0);
    assert_int_equal(tm_profile_check_req(f->p, r, NULL), 0);
    assert_true(tm_binding_from_req(f->p, r, &b, NULL));
    assert_string_equal(b.serial_text, "0A1B2C3D");
    X509_free(x);
    X509_REQ_free(r);

    assert_null(tm_req_info_parse(f->tbs, (size_t)f->tbs_len, v));
    tpu_expect(v, "not a DER CertificationRequestInfo");
    assert_null(tm_tbs_parse(f->cri, (size_t)f->cri_len, v));
    tpu_expect(v, "not a DER TBSCertificate");
    tpu_expect_count(v, 2);
    /* libcrypto's decoding errors stay inside */
    assert_int_equal(ERR_peek_error(), 0);
    tm_violations_free(v);
}

static void every_truncation(const tm_profile *p, const unsigned char *der, int len, int is_tbs)
{
    int cut;

    for (cut = 0; cut < len; cut++) {
        tm_violations *v = tm_violations_new();
        tm_binding b;
        size_t n = is_tbs ? tm_profile_check_tbs(p, der, (size_t)cut, v)
                          : tm_profile_check_req_info(p, der, (size_t)cut, v);
        assert_int_equal(n, 1);
        tpu_expect(v, is_tbs ? "not a DER TBSCertificate" : "not a DER CertificationRequestInfo");
        assert_false(is_tbs ? tm_binding_from_tbs(p, der, (size_t)cut, &b, NULL)
                            : tm_binding_from_req_info(p, der, (size_t)cut, &b, NULL));
        tm_violations_free(v);
    }
}

static void test_every_truncation_is_an_error(void **state)
{
    fixture *f = *state;

    every_truncation(f->p, f->tbs, f->tbs_len, 1);
    every_truncation(f->p, f->cri, f->cri_len, 0);
}

/*
 * Flips every bit once. Some flips still give valid DER (a public key bit), so
 * the assertion is: the count equals the messages recorded, and a flip in
 * the serial bytes is always caught.
 */
static void every_bit_flip(const tm_profile *p, const unsigned char *der, int len, int is_tbs)
{
    unsigned char *copy = OPENSSL_memdup(der, (size_t)len);
    size_t errors = 0;
    int i, bit;

    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            tm_violations *v = tm_violations_new();
            tm_binding b;
            size_t n;
            copy[i] ^= (unsigned char)(1u << bit);
            n = is_tbs ? tm_profile_check_tbs(p, copy, (size_t)len, v)
                       : tm_profile_check_req_info(p, copy, (size_t)len, v);
            assert_int_equal(n, tm_violations_count(v));
            for (size_t k = 0; k < n; k++)
                assert_non_null(tm_violations_get(v, k));
            (void)(is_tbs ? tm_binding_from_tbs(p, copy, (size_t)len, &b, NULL)
                          : tm_binding_from_req_info(p, copy, (size_t)len, &b, NULL));
            errors += n > 0;
            copy[i] ^= (unsigned char)(1u << bit);
            tm_violations_free(v);
        }
    }
    /* structure, tags and lengths make up much of the DER: most flips are caught */
    assert_true(errors > (size_t)len * 8 / 2);
    OPENSSL_free(copy);
}

static void test_every_bit_flip_is_safe(void **state)
{
    fixture *f = *state;

    every_bit_flip(f->p, f->tbs, f->tbs_len, 1);
    every_bit_flip(f->p, f->cri, f->cri_len, 0);
}

static void flip_serial_bytes(const tm_profile *p, unsigned char *der, int len, int is_tbs)
{
    const unsigned char *hit = der;
    int found = 0;

    /* both copies of the serial: subject serialNumber and hwSerialNum */
    while ((hit = memmem(hit, (size_t)(der + len - hit), "0A1B2C3D", 8)) != NULL) {
        size_t off = (size_t)(hit - der) + 3;
        tm_violations *v = tm_violations_new();
        der[off] ^= 0x01; /* '1' -> '0' */
        assert_true((is_tbs ? tm_profile_check_tbs(p, der, (size_t)len, v)
                            : tm_profile_check_req_info(p, der, (size_t)len, v)) >= 1);
        tpu_expect(v, "differs from subject serialNumber");
        der[off] ^= 0x01;
        tm_violations_free(v);
        hit += 8;
        found++;
    }
    assert_int_equal(found, 2);
}

static void test_flipped_serial_is_caught(void **state)
{
    fixture *f = *state;

    flip_serial_bytes(f->p, f->tbs, f->tbs_len, 1);
    flip_serial_bytes(f->p, f->cri, f->cri_len, 0);
}

/* The provider calls these in the middle of its own work: its pending
 * libcrypto errors must survive, and nothing of ours may be left behind. */
static void test_caller_error_queue_untouched(void **state)
{
    fixture *f = *state;
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01};
    tm_binding b;
    unsigned long e;

    ERR_clear_error();
    assert_int_equal(tm_profile_check_tbs(f->p, junk, sizeof(junk), NULL), 1);
    assert_false(tm_binding_from_req_info(f->p, junk, sizeof(junk), &b, NULL));
    assert_null(tm_profile_load_string("[profile]\nbroken line\n", NULL));
    assert_int_equal(ERR_peek_error(), 0);

    ERR_raise_data(ERR_LIB_USER, 42, "the caller's own error");
    e = ERR_peek_last_error();
    assert_int_equal(tm_profile_check_tbs(f->p, junk, sizeof(junk), NULL), 1);
    assert_int_equal(tm_profile_check_tbs(f->p, f->tbs, (size_t)f->tbs_len, NULL), 0);
    assert_int_equal(ERR_peek_last_error(), e);
    assert_int_equal(ERR_get_error(), e);
    assert_int_equal(ERR_get_error(), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_intact_der_conforms),
        T(test_empty_and_garbage),
        T(test_trailing_bytes),
        T(test_parsers_tell_request_from_certificate),
        T(test_every_truncation_is_an_error),
        T(test_every_bit_flip_is_safe),
        T(test_flipped_serial_is_caught),
        T(test_caller_error_queue_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
