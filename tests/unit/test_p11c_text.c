/* The client layer's text helpers: hex both ways and CKR names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "p11c.h"

static void test_hex_encode(void **state)
{
    const unsigned char b[] = {0x00, 0x9a, 0xff, 0x10};
    char out[16];

    (void)state;
    assert_int_equal(p11c_hex_encode(b, sizeof b, out, sizeof out), 8);
    assert_string_equal(out, "009aff10");
    /* whole bytes only: 7 bytes of room hold 3 bytes and the NUL */
    assert_int_equal(p11c_hex_encode(b, sizeof b, out, 8), 6);
    assert_string_equal(out, "009aff");
    assert_int_equal(p11c_hex_encode(b, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(p11c_hex_encode(b, sizeof b, out, 2), 0);
    assert_string_equal(out, "");
    /* guards: no output buffer, or bytes without a pointer */
    assert_int_equal(p11c_hex_encode(b, sizeof b, NULL, 8), 0);
    strcpy(out, "x");
    assert_int_equal(p11c_hex_encode(NULL, 3, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_hex_decode(void **state)
{
    unsigned char out[4];
    size_t n = 99;

    (void)state;
    assert_true(p11c_hex_decode("009AfF10", 8, out, sizeof out, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\x00\x9a\xff\x10", 4);
    assert_true(p11c_hex_decode("", 0, out, sizeof out, &n));
    assert_int_equal(n, 0);
    /* odd length, a non-hex digit, sign or blank (sscanf would take " f"), too long */
    assert_false(p11c_hex_decode("abc", 3, out, sizeof out, &n));
    assert_int_equal(n, 0);
    assert_false(p11c_hex_decode("0g", 2, out, sizeof out, &n));
    assert_false(p11c_hex_decode(" f", 2, out, sizeof out, &n));
    assert_false(p11c_hex_decode("+f", 2, out, sizeof out, &n));
    assert_false(p11c_hex_decode("0011223344", 10, out, sizeof out, &n));
    assert_false(p11c_hex_decode(NULL, 0, out, sizeof out, &n));
}

static void test_ckr_names(void **state)
{
    (void)state;
    assert_string_equal(p11c_ckr_name(CKR_OK), "CKR_OK");
    assert_string_equal(p11c_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    /* codes that only one of the old tables knew */
    assert_string_equal(p11c_ckr_name(CKR_ACTION_PROHIBITED), "CKR_ACTION_PROHIBITED");
    assert_string_equal(p11c_ckr_name(CKR_BUFFER_TOO_SMALL), "CKR_BUFFER_TOO_SMALL");
    assert_string_equal(p11c_ckr_name(CKR_CANT_LOCK), "CKR_CANT_LOCK");
    assert_string_equal(p11c_ckr_name(CKR_USER_TYPE_INVALID), "CKR_USER_TYPE_INVALID");
    assert_string_equal(p11c_ckr_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED");
    assert_string_equal(p11c_ckr_name(0x1234), "CKR 0x1234");
    assert_string_equal(p11c_ckr_name(CKR_VENDOR_DEFINED + 5), "CKR_VENDOR_DEFINED+0x5");
}

static void *unknown_in_thread(void *arg)
{
    const char *a = p11c_ckr_name((CK_RV)(uintptr_t)arg);
    return (void *)a;
}

/* The buffer of an unknown code is per thread: one thread's text is not
 * overwritten by another's. */
static void test_ckr_per_thread(void **state)
{
    pthread_t th;
    const char *mine = p11c_ckr_name(0x777);
    void *theirs = NULL;

    (void)state;
    assert_int_equal(pthread_create(&th, NULL, unknown_in_thread, (void *)(uintptr_t)0x888), 0);
    assert_int_equal(pthread_join(th, &theirs), 0);
    assert_ptr_not_equal(theirs, mine);
    assert_string_equal(mine, "CKR 0x777");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_ckr_names),
        cmocka_unit_test(test_ckr_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
