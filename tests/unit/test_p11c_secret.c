/* The client layer's secret sources: one syntax (PATH, file:PATH,
 * file://PATH, "%s" for the token serial) and one reader (first line,
 * messages that name the file and never the secret). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "p11c.h"

static char dir[] = "/tmp/tm-p11c-secret.XXXXXX";

static void put(const char *name, const char *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    put("pin", "424242\nrest\n", 12);
    put("crlf", "1234\r\n", 6);
    put("nonl", "9876", 4);
    put("empty", "", 0);
    put("blank", "\nsecond\n", 8);
    put("nul",
        "12\0"
        "34\n",
        6);
    put("tok-SER1.pin", "111111\n", 7);
    put("tok-%s.pin", "literal\n", 8);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int read_src(const char *fmt, const char *serial, char *out, size_t outlen, size_t *len,
                    char *err, size_t errlen)
{
    char src[300];

    snprintf(src, sizeof(src), fmt, dir);
    return p11c_secret_read(src, serial, "PIN", out, outlen, len, err, errlen);
}

static void three_spellings_read_the_same(void **state)
{
    static const char *forms[] = {"%s/pin", "file:%s/pin", "file://%s/pin"};
    char out[64], err[256];
    size_t i, len;

    (void)state;
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        len = 0;
        assert_true(read_src(forms[i], NULL, out, sizeof(out), &len, err, sizeof(err)));
        assert_int_equal(len, 6);
        assert_string_equal(out, "424242");
    }
}

static void first_line_without_line_end(void **state)
{
    char out[64], err[256];
    size_t len = 0;

    (void)state;
    assert_true(read_src("%s/crlf", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "1234");
    assert_int_equal(len, 4);
    assert_true(read_src("%s/nonl", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "9876");
    assert_int_equal(len, 4);
}

static void serial_fills_percent_s(void **state)
{
    char out[64], err[256], src[300], path[300];
    size_t len = 0;

    (void)state;
    assert_true(read_src("file:%s/tok-%%s.pin", "SER1", out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "111111");
    /* without a serial the path is taken as it is */
    assert_true(read_src("%s/tok-%%s.pin", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "literal");
    snprintf(src, sizeof(src), "%s/tok-%%s.pin", dir);
    assert_true(p11c_secret_per_token(src));
    assert_false(p11c_secret_per_token("/etc/pin"));
    assert_false(p11c_secret_per_token("/etc/%s-%d"));
    assert_false(p11c_secret_per_token(NULL));
    assert_true(p11c_secret_path("file:///x/%s.pin", "AB", path, sizeof(path), err, sizeof(err)));
    assert_string_equal(path, "/x/AB.pin");
    /* a second '%' makes it a plain path */
    assert_true(p11c_secret_path("/x/%s%d", "AB", path, sizeof(path), err, sizeof(err)));
    assert_string_equal(path, "/x/%s%d");
    assert_false(p11c_secret_path("/x/%s", "AB", path, 5, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
    assert_false(p11c_secret_path("file:", NULL, path, sizeof(path), err, sizeof(err)));
    assert_non_null(strstr(err, "names no file"));
}

static void bad_files_are_named(void **state)
{
    char out[64], err[256];
    size_t len = 0;

    (void)state;
    assert_false(read_src("%s/missing", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read PIN file"));
    assert_non_null(strstr(err, "/missing"));
    assert_false(read_src("%s/empty", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "is empty"));
    assert_false(read_src("%s/blank", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "empty first line"));
    assert_null(strstr(err, "second"));
    assert_false(read_src("%s/nul", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "NUL"));
}

static void length_limit_is_exact(void **state)
{
    char out[7], err[256];
    size_t len = 0;

    (void)state;
    /* six bytes fit a seven-byte buffer, with the NUL */
    assert_true(read_src("%s/pin", NULL, out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "424242");
    /* five do not fit six */
    memset(out, 'x', sizeof(out));
    assert_false(read_src("%s/pin", NULL, out, 6, &len, err, sizeof(err)));
    assert_non_null(strstr(err, "longer than 5 bytes"));
    assert_null(strstr(err, "4242"));
    /* what was read is not left behind */
    assert_null(memchr(out, '4', 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_spellings_read_the_same),
        cmocka_unit_test(first_line_without_line_end),
        cmocka_unit_test(serial_fills_percent_s),
        cmocka_unit_test(bad_files_are_named),
        cmocka_unit_test(length_limit_is_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
