/* pkcs11: URIs as the provider reads them: good ones parse, bad ones are
 * refused with a message naming the part that is wrong (never the PIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uri.h"

int prov_debug_on;
void prov_debug(const char *fmt, ...)
{
    (void)fmt;
}

static void full_uri_parses(void **state)
{
    char err[256] = "";
    prov_uri *u = prov_uri_parse(
        "pkcs11:token=tm-0001;serial=8bcb10f34ab57aae;manufacturer=SoftHSM%20project;"
        "model=SoftHSM%20v2;object=key01;id=%01%02;type=private;pin-value=1234",
        err, sizeof(err));
    CK_TOKEN_INFO info;

    if (u == NULL)
        fail_msg("refused: %s", err);
    assert_true(u->has_class);
    assert_int_equal(u->klass, CKO_PRIVATE_KEY);
    assert_int_equal(u->id_len, 2);
    assert_memory_equal(u->id, "\x01\x02", 2);
    assert_int_equal(u->label_len, 5);
    assert_true(u->has_pin);
    assert_int_equal(u->pin_len, 4);
    assert_memory_equal(u->pin, "1234", 4);

    memset(&info, ' ', sizeof(info));
    memcpy(info.label, "tm-0001", 7);
    memcpy(info.serialNumber, "8bcb10f34ab57aae", 16);
    memcpy(info.manufacturerID, "SoftHSM project", 15);
    memcpy(info.model, "SoftHSM v2", 10);
    assert_true(prov_uri_match_token(u, &info));
    info.serialNumber[0] = '9';
    assert_false(prov_uri_match_token(u, &info));
    assert_true(prov_uri_match_object(u, CKO_PRIVATE_KEY, (const unsigned char *)"\x01\x02", 2,
                                      "key01", 5));
    assert_false(
        prov_uri_match_object(u, CKO_PUBLIC_KEY, (const unsigned char *)"\x01\x02", 2, "key01", 5));
    assert_false(
        prov_uri_match_object(u, CKO_PRIVATE_KEY, (const unsigned char *)"\x01", 1, "key01", 5));
    prov_uri_free(u);
}

static void expect_error(const char *uri, const char *needle)
{
    char err[256] = "";
    prov_uri *u = prov_uri_parse(uri, err, sizeof(err));
    if (u != NULL || strstr(err, needle) == NULL)
        fail_msg("URI %s: expected an error containing '%s', got '%s'", uri, needle, err);
    assert_null(strstr(err, "s3cret"));
}

static void bad_parts_are_named(void **state)
{
    expect_error("file:/etc/passwd", "must start with 'pkcs11:'");
    expect_error("pkcs11:serial=1;colour=blue", "unknown path attribute 'colour'");
    expect_error("pkcs11:serial=1;type=banana", "bad type value 'banana'");
    expect_error("pkcs11:id=%zz", "bad id value '%zz'");
    expect_error("pkcs11:serial", "attribute 'serial' has no '='");
    expect_error("pkcs11:serial=1?pin-value=s3cret&pin-source=/x", "both pin-value and pin-source");
    expect_error("pkcs11:serial=1?pin-source=/nonexistent/pin",
                 "cannot read PIN file /nonexistent/pin");
}

/* Issue 10 item 12, provider URI parts. */
static void empty_pin_value_is_refused(void **state)
{
    /* an empty PIN would cost the token a try */
    expect_error("pkcs11:serial=1?pin-value=", "pin-value is empty");
}

static void long_uri_parses(void **state)
{
    char uri[2200], err[256] = "";
    int n = snprintf(uri, sizeof(uri), "pkcs11:serial=1;token=");
    memset(uri + n, 't', 32); /* a token label is at most 32 bytes */
    n += 32;
    n += snprintf(uri + n, sizeof(uri) - (size_t)n, ";object=");
    memset(uri + n, 'o', 1200);
    n += 1200;
    uri[n] = '\0';
    prov_uri *u = prov_uri_parse(uri, err, sizeof(err));
    if (u == NULL)
        fail_msg("a %d-character URI was refused: %s", n, err);
    assert_int_equal(u->label_len, 1200);
    prov_uri_free(u);
    /* too long a value still names the part */
    n = snprintf(uri, sizeof(uri), "pkcs11:serial=1;object=");
    memset(uri + n, 'o', 1200);
    n += 1200;
    snprintf(uri + n, sizeof(uri) - (size_t)n, ";id=%%zz");
    expect_error(uri, "bad id value");
}

/* A separator of the other part inside a value (found by fuzz_uri): p11-kit
 * reads "token=a&pin-value=s3cret" as one token label, so the PIN was in the
 * label, and in the message when that value was bad; the same for a ';' or a
 * second '?' in a query value. */
static void other_separator_is_refused(void **state)
{
    expect_error("pkcs11:token=a%zz&pin-value=s3cret", "the token value holds '&'");
    expect_error("pkcs11:token=a&pin-value=s3cret", "the token value holds '&'");
    expect_error("pkcs11:id=%01?pin-source=/x;pin-value=s3cret", "the pin-source value holds ';'");
    expect_error("pkcs11:id=%01?module-name=m?pin-value=s3cret", "the module-name value holds '?'");
    expect_error("pkcs11:id=%01?pin-value=s3cret;x", "the pin-value value holds ';'");
    /* encoded, they are bytes of the value */
    char err[256] = "";
    prov_uri *u = prov_uri_parse("pkcs11:token=a%26b?pin-value=s3%3Bcret", err, sizeof(err));
    if (u == NULL)
        fail_msg("encoded separators were refused: %s", err);
    assert_int_equal(u->pin_len, 7);
    assert_memory_equal(u->pin, "s3;cret", 7);
    prov_uri_free(u);
}

static void nul_byte_names_its_attribute(void **state)
{
    expect_error("pkcs11:serial=1;object=a%00b;id=%01", "object");
    expect_error("pkcs11:token=a%00b;object=x", "token");
    expect_error("pkcs11:token=ab;object=x%00", "object");
}

static void pin_source_file(void **state)
{
    char path[] = "/tmp/tm-pin.XXXXXX", err[256], pin[64], uri[128];
    size_t len = 0;
    int fd = mkstemp(path);
    prov_uri *u;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "424242\nrest\n", 12), 12);
    close(fd);
    snprintf(uri, sizeof(uri), "pkcs11:serial=1?pin-source=file:%s", path);
    u = prov_uri_parse(uri, err, sizeof(err));
    assert_non_null(u);
    assert_int_equal(u->pin_len, 6);
    assert_memory_equal(u->pin, "424242", 6);
    prov_uri_free(u);
    /* per-token files: %s is the serial */
    assert_true(p11c_secret_read(path, "ignored", "PIN", pin, sizeof(pin), &len, err, sizeof(err)));
    assert_int_equal(len, 6);
    assert_false(p11c_secret_read("/tmp/tm-no-such-%s.pin", "SER1", "PIN", pin, sizeof(pin), &len,
                                  err, sizeof(err)));
    assert_non_null(strstr(err, "/tmp/tm-no-such-SER1.pin"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_uri_parses),
        cmocka_unit_test(bad_parts_are_named),
        cmocka_unit_test(pin_source_file),
        cmocka_unit_test(empty_pin_value_is_refused),
        cmocka_unit_test(other_separator_is_refused),
        cmocka_unit_test(long_uri_parses),
        cmocka_unit_test(nul_byte_names_its_attribute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
