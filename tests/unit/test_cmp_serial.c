/*
 * The relay's serial range rule (tool/cmp/serial.c): hex serials compare as
 * numbers, anything else as text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cmp/cmp.h"

static void hex_serials_compare_as_numbers(void **state)
{
    (void)state;
    assert_int_equal(tool_cmp_serial_cmp("00ff", "100"), -1);
    assert_int_equal(tool_cmp_serial_cmp("100", "ff"), 1);
    assert_int_equal(tool_cmp_serial_cmp("0A", "a"), 0);
    assert_int_equal(tool_cmp_serial_cmp("000", "0"), 0);
    assert_int_equal(tool_cmp_serial_cmp("7a2b3c4d5e6f7081", "7A2B3C4D5E6F7082"), -1);
    assert_int_equal(tool_cmp_serial_cmp("ffffffffffffffffffff", "fffffffffffffffffffe"), 1);
}

static void other_serials_compare_as_text(void **state)
{
    (void)state;
    /* "SN-10" is not hex: byte order, so "SN-10" < "SN-9" */
    assert_int_equal(tool_cmp_serial_cmp("SN-10", "SN-9"), -1);
    assert_int_equal(tool_cmp_serial_cmp("SN-9", "SN-9"), 0);
    /* one side hex, the other not: text, so no numeric surprise */
    assert_int_equal(tool_cmp_serial_cmp("10", "9x"), -1);
    assert_int_equal(tool_cmp_serial_cmp("", "0"), -1);
}

static void a_range_holds_its_ends_and_nothing_outside(void **state)
{
    const char *lo = "1000", *hi = "1fff";
    (void)state;
    assert_true(tool_cmp_serial_cmp("1000", lo) >= 0 && tool_cmp_serial_cmp("1000", hi) <= 0);
    assert_true(tool_cmp_serial_cmp("1fff", lo) >= 0 && tool_cmp_serial_cmp("1fff", hi) <= 0);
    assert_true(tool_cmp_serial_cmp("0fff", lo) < 0);
    assert_true(tool_cmp_serial_cmp("2000", hi) > 0);
    assert_true(tool_cmp_serial_cmp("10000", hi) > 0); /* longer is larger, not "1" < "1f" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hex_serials_compare_as_numbers),
        cmocka_unit_test(other_serials_compare_as_text),
        cmocka_unit_test(a_range_holds_its_ends_and_nothing_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
