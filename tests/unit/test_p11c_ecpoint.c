/* The client layer's EC helpers: CKA_EC_POINT readings (wrapped, bare, and
 * the bare point that looks wrapped) and CKA_EC_PARAMS to a curve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "p11c.h"

static void test_wrapped_and_bare(void **state)
{
    unsigned char bare[65], wrapped[67];
    const unsigned char *pt[2];
    size_t len[2];

    (void)state;
    memset(bare, 0x11, sizeof bare);
    bare[0] = 0x04;
    wrapped[0] = 0x04;
    wrapped[1] = 65;
    memcpy(wrapped + 2, bare, sizeof bare);

    assert_int_equal(p11c_ec_point_readings(wrapped, sizeof wrapped, pt, len), 2);
    assert_ptr_equal(pt[0], wrapped + 2);
    assert_int_equal(len[0], 65);
    assert_ptr_equal(pt[1], wrapped);
    assert_int_equal(len[1], 67);

    /* 0x11 is no OCTET STRING length that fits 65 bytes: one reading */
    assert_int_equal(p11c_ec_point_readings(bare, sizeof bare, pt, len), 1);
    assert_ptr_equal(pt[0], bare);
    assert_int_equal(len[0], 65);

    /* a bare point whose X starts with 0x3f looks like an OCTET STRING of
     * 63 bytes: both readings, so the caller can still take the bare one */
    bare[1] = 0x3f;
    assert_int_equal(p11c_ec_point_readings(bare, sizeof bare, pt, len), 2);
    assert_int_equal(len[0], 63);
    assert_int_equal(len[1], 65);

    assert_int_equal(p11c_ec_point_readings(bare, 0, pt, len), 0);
    assert_int_equal(p11c_ec_point_readings(bare, sizeof bare, NULL, len), 0);
}

/* Long-form lengths (P-521: 133 bytes) and non-DER lengths. */
static void test_long_form(void **state)
{
    unsigned char w[3 + 133];
    const unsigned char *pt[2];
    size_t len[2];

    (void)state;
    memset(w, 0x22, sizeof w);
    w[0] = 0x04;
    w[1] = 0x81;
    w[2] = 133;
    w[3] = 0x04;
    assert_int_equal(p11c_ec_point_readings(w, sizeof w, pt, len), 2);
    assert_ptr_equal(pt[0], w + 3);
    assert_int_equal(len[0], 133);

    /* 0x81 0x05: a length under 128 in long form is not DER */
    {
        unsigned char nd[] = {0x04, 0x81, 0x05, 1, 2, 3, 4, 5};
        assert_int_equal(p11c_ec_point_readings(nd, sizeof nd, pt, len), 1);
        assert_ptr_equal(pt[0], nd);
    }
    /* trailing bytes after the OCTET STRING: not a wrapping */
    {
        unsigned char tr[] = {0x04, 0x02, 0xaa, 0xbb, 0xcc};
        assert_int_equal(p11c_ec_point_readings(tr, sizeof tr, pt, len), 1);
    }
}

static void test_params(void **state)
{
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    static const unsigned char p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    static const unsigned char ed_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    static const unsigned char ed_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                            'd',  's',  '2', '5', '5', '1', '9'};
    static const unsigned char ed448_name[] = {0x13, 0x0a, 'e', 'd', 'w', 'a',
                                               'r',  'd',  's', '4', '4', '8'};
    static const unsigned char bad_oid[] = {0x06, 0x03, 0x2b, 0x65};
    static const unsigned char junk[] = {0x30, 0x00};

    (void)state;
    ERR_clear_error();
    assert_int_equal(p11c_ec_params_nid(p256, sizeof p256), NID_X9_62_prime256v1);
    assert_int_equal(p11c_ec_params_nid(p384, sizeof p384), NID_secp384r1);
    assert_int_equal(p11c_ec_params_nid(ed_oid, sizeof ed_oid), NID_ED25519);
    assert_int_equal(p11c_ec_params_nid(ed_name, sizeof ed_name), NID_ED25519);
    assert_int_equal(p11c_ec_params_nid(ed448_name, sizeof ed448_name), NID_ED448);
    assert_int_equal(p11c_ec_params_nid(bad_oid, sizeof bad_oid), NID_undef);
    assert_int_equal(p11c_ec_params_nid(junk, sizeof junk), NID_undef);
    assert_int_equal(p11c_ec_params_nid(p256, 0), NID_undef);
    assert_int_equal(p11c_ec_params_nid(p256, sizeof p256 - 1), NID_undef);
    /* nothing left on the caller's error queue */
    assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrapped_and_bare),
        cmocka_unit_test(test_long_form),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
