/* The token serial rule: trim the CK_TOKEN_INFO field, escape for the
 * subject, and decode back to exactly the same bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tm_profile.h"

static size_t trim16(const char field[16], unsigned char *out)
{
    return tm_serial_trim((const unsigned char *)field, 16, out, TM_SERIAL_MAX);
}

static void test_trim_drops_trailing_blanks_and_nuls(void **state)
{
    unsigned char out[TM_SERIAL_MAX];

    assert_int_equal(trim16("0A1B2C3D        ", out), 8);
    assert_memory_equal(out, "0A1B2C3D", 8);
    assert_int_equal(trim16("0A1B\0\0\0\0\0\0\0\0\0\0\0\0", out), 4);
    assert_int_equal(trim16("0A1B  \0 \0      ", out), 4);
}

static void test_trim_keeps_inner_spaces_and_nuls(void **state)
{
    unsigned char out[TM_SERIAL_MAX];

    assert_int_equal(trim16("  AB CD         ", out), 7);
    assert_memory_equal(out, "  AB CD", 7);
    assert_int_equal(trim16("AB\0CD           ", out), 5);
    assert_memory_equal(out, "AB\0CD", 5);
}

static void test_trim_all_padding_is_no_serial(void **state)
{
    unsigned char out[TM_SERIAL_MAX];

    assert_int_equal(trim16("                ", out), 0);
    assert_int_equal(trim16("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", out), 0);
    assert_int_equal(trim16(" \0 \0 \0 \0 \0 \0 \0 \0", out), 0);
}

static void test_trim_sixteen_chars_exact(void **state)
{
    unsigned char out[TM_SERIAL_MAX];

    assert_int_equal(trim16("0123456789ABCDEF", out), 16);
    assert_memory_equal(out, "0123456789ABCDEF", 16);
    /* an output buffer too small is an error, not a silent cut */
    assert_int_equal(tm_serial_trim((const unsigned char *)"0123456789ABCDEF", 16, out, 15), 0);
}

static void expect_encoding(const char *raw, size_t raw_len, const char *want)
{
    char text[TM_SERIAL_TEXT_MAX + 1];
    unsigned char back[TM_SERIAL_MAX];

    assert_int_equal(tm_serial_encode((const unsigned char *)raw, raw_len, text, sizeof(text)),
                     strlen(want));
    assert_string_equal(text, want);
    assert_int_equal(tm_serial_decode(text, strlen(text), back, sizeof(back)), raw_len);
    assert_memory_equal(back, raw, raw_len);
}

static void test_encode_printable_stands_for_itself(void **state)
{
    expect_encoding("0A1B2C3D", 8, "0A1B2C3D");
    expect_encoding("ab-12/x:y=(z)+'.,", 17, "ab-12/x:y=(z)+'.,");
    expect_encoding("AB CD", 5, "AB CD");
    expect_encoding(" lead", 5, " lead");
}

static void test_encode_escapes_question_mark(void **state)
{
    expect_encoding("A?B", 3, "A?3FB");
    expect_encoding("?", 1, "?3F");
}

static void test_encode_escapes_non_printable(void **state)
{
    expect_encoding("\xff", 1, "?FF");
    expect_encoding("AB\0CD", 5, "AB?00CD");
    expect_encoding("a@b_c*", 6, "a?40b?5Fc?2A");
    expect_encoding("\xc3\xa9t\xc3\xa9", 5, "?C3?A9t?C3?A9");
}

static void test_encode_every_byte_round_trips(void **state)
{
    unsigned char raw[256], back[256];
    char text[3 * 256 + 1];
    size_t n;
    int i;

    for (i = 0; i < 256; i++)
        raw[i] = (unsigned char)i;
    n = tm_serial_encode(raw, sizeof(raw), text, sizeof(text));
    assert_true(n > 256);
    assert_int_equal(tm_serial_decode(text, n, back, sizeof(back)), 256);
    assert_memory_equal(raw, back, 256);
}

static void test_encode_refuses_empty_and_small_buffers(void **state)
{
    char text[4];

    assert_int_equal(tm_serial_encode((const unsigned char *)"A", 0, text, sizeof(text)), 0);
    assert_int_equal(tm_serial_encode((const unsigned char *)"\xff\xff", 2, text, sizeof(text)), 0);
    assert_int_equal(tm_serial_encode((const unsigned char *)"ABCD", 4, text, sizeof(text)), 0);
    assert_int_equal(tm_serial_encode((const unsigned char *)"ABC", 3, text, sizeof(text)), 3);
}

static void expect_malformed(const char *text)
{
    unsigned char raw[TM_SERIAL_MAX];

    assert_int_equal(tm_serial_decode(text, strlen(text), raw, sizeof(raw)), 0);
}

static void test_decode_refuses_non_canonical_text(void **state)
{
    expect_malformed("");
    expect_malformed("AB?4");      /* truncated escape */
    expect_malformed("AB?");       /* truncated escape */
    expect_malformed("?ff");       /* lower-case hex is not canonical */
    expect_malformed("?41");       /* 'A' escaped: a second text for serial "A" */
    expect_malformed("?20");       /* space escaped */
    expect_malformed("a@b");       /* '@' is not a PrintableString character */
    expect_malformed("AB?G0");     /* not hex */
    expect_malformed("tab\there"); /* control character */
}

static void test_decode_respects_output_size(void **state)
{
    unsigned char raw[4];

    assert_int_equal(tm_serial_decode("ABCDE", 5, raw, sizeof(raw)), 0);
    assert_int_equal(tm_serial_decode("AB?FFD", 6, raw, sizeof(raw)), 4);
    assert_memory_equal(raw,
                        "AB\xff"
                        "D",
                        4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_drops_trailing_blanks_and_nuls),
        cmocka_unit_test(test_trim_keeps_inner_spaces_and_nuls),
        cmocka_unit_test(test_trim_all_padding_is_no_serial),
        cmocka_unit_test(test_trim_sixteen_chars_exact),
        cmocka_unit_test(test_encode_printable_stands_for_itself),
        cmocka_unit_test(test_encode_escapes_question_mark),
        cmocka_unit_test(test_encode_escapes_non_printable),
        cmocka_unit_test(test_encode_every_byte_round_trips),
        cmocka_unit_test(test_encode_refuses_empty_and_small_buffers),
        cmocka_unit_test(test_decode_refuses_non_canonical_text),
        cmocka_unit_test(test_decode_respects_output_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
