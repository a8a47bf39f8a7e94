/* Derived PINs and the station secret file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pin.h"

static const unsigned char serial_a[] = "5a1f0c3e9b2d4411";
static const unsigned char serial_b[] = "5a1f0c3e9b2d4412";

static void make_secret(mod_station_secret *s, unsigned char fill, size_t len)
{
    s->bytes = malloc(len);
    assert_non_null(s->bytes);
    memset(s->bytes, fill, len);
    s->len = len;
}

static size_t derive(const mod_station_secret *s, const unsigned char *serial, CK_ULONG min,
                     CK_ULONG max, char *pin)
{
    return mod_pin_derive(s, serial, strlen((const char *)serial), min, max, pin, TM_PIN_MAX);
}

static void assert_digits(const char *pin, size_t len)
{
    size_t i;
    assert_int_equal(strlen(pin), len);
    for (i = 0; i < len; i++)
        assert_true(pin[i] >= '0' && pin[i] <= '9');
}

static void test_deterministic(void **state)
{
    mod_station_secret s1, s2;
    char p1[TM_PIN_MAX], p2[TM_PIN_MAX];

    /* two separately loaded copies of the same secret give the same PIN */
    make_secret(&s1, 0x42, 32);
    make_secret(&s2, 0x42, 32);
    assert_int_equal(derive(&s1, serial_a, 4, 255, p1), 16);
    assert_int_equal(derive(&s2, serial_a, 4, 255, p2), 16);
    assert_string_equal(p1, p2);
    assert_digits(p1, 16);
    mod_station_secret_clear(&s1);
    mod_station_secret_clear(&s2);
    assert_null(s1.bytes);
    assert_int_equal(s1.len, 0);
}

/* Known answers, computed independently (Python hmac) from the algorithm as
 * documented: digits = bytes < 250 taken mod 10, block 0 = HMAC(secret,
 * serial), block i = HMAC(secret, serial || uint32_be(i)). */
static void test_known_answers(void **state)
{
    mod_station_secret s;
    char pin[TM_PIN_MAX];

    make_secret(&s, 0x42, 32);
    assert_int_equal(derive(&s, serial_a, 4, 255, pin), 16);
    assert_string_equal(pin, "4554883513647318");
    assert_int_equal(derive(&s, serial_a, 63, 255, pin), 63);
    assert_string_equal(pin, "455488351364731833594293129597998635761207060068479623648210589");
    mod_station_secret_clear(&s);
}

static void test_differs_by_serial_and_secret(void **state)
{
    mod_station_secret s1, s2;
    char pa[TM_PIN_MAX], pb[TM_PIN_MAX], pc[TM_PIN_MAX];

    make_secret(&s1, 0x42, 32);
    make_secret(&s2, 0x43, 32);
    assert_int_equal(derive(&s1, serial_a, 4, 255, pa), 16);
    assert_int_equal(derive(&s1, serial_b, 4, 255, pb), 16);
    assert_int_equal(derive(&s2, serial_a, 4, 255, pc), 16);
    assert_string_not_equal(pa, pb);
    assert_string_not_equal(pa, pc);
    mod_station_secret_clear(&s1);
    mod_station_secret_clear(&s2);
}

static void test_length_clamped(void **state)
{
    mod_station_secret s;
    char pin[TM_PIN_MAX], longer[TM_PIN_MAX];

    make_secret(&s, 0x11, 48);
    /* default 16 when the token allows it */
    assert_int_equal(derive(&s, serial_a, 4, 255, pin), 16);
    assert_digits(pin, 16);
    /* token maximum below 16 */
    assert_int_equal(derive(&s, serial_a, 4, 8, pin), 8);
    assert_digits(pin, 8);
    /* token minimum above 16: needs more than one HMAC block's worth of digits */
    assert_int_equal(derive(&s, serial_a, 40, 255, longer), 40);
    assert_digits(longer, 40);
    /* a longer PIN starts with the shorter one: same digit stream */
    assert_memory_equal(longer, pin, 8);
    /* max 0 means "no maximum" */
    assert_int_equal(derive(&s, serial_a, 20, 0, pin), 20);
    assert_digits(pin, 20);
    /* capped at TM_PIN_MAX - 1 */
    assert_int_equal(derive(&s, serial_a, 4, 0, pin), 16);
    assert_int_equal(derive(&s, serial_a, 63, 0, pin), TM_PIN_MAX - 1);
    assert_digits(pin, TM_PIN_MAX - 1);
    /* a token that wants more than we can give gets no PIN at all */
    assert_int_equal(derive(&s, serial_a, 100, 0, pin), 0);
    assert_string_equal(pin, "");
    /* min above max: an impossible range */
    assert_int_equal(derive(&s, serial_a, 10, 6, pin), 0);
    /* output buffer too small for the length the token needs */
    assert_int_equal(mod_pin_derive(&s, serial_a, 16, 4, 255, pin, 10), 0);
    mod_station_secret_clear(&s);
}

static void test_digits_are_unbiased_enough(void **state)
{
    /* Over many serials every digit appears; a modulo-256 bias or a
     * hex-to-decimal mistake (digits 0-5 only) shows up as a missing or
     * heavily over-represented digit. */
    mod_station_secret s;
    char pin[TM_PIN_MAX];
    unsigned counts[10] = {0};
    unsigned char serial[16];
    int i, d;

    make_secret(&s, 0x5c, 32);
    for (i = 0; i < 500; i++) {
        snprintf((char *)serial, sizeof(serial), "SER%06d", i);
        assert_int_equal(derive(&s, serial, 4, 0, pin), 16);
        for (d = 0; d < 16; d++)
            counts[pin[d] - '0']++;
    }
    /* 8000 digits: expectation 800 each, sd ~27 */
    for (d = 0; d < 10; d++) {
        assert_true(counts[d] > 650);
        assert_true(counts[d] < 950);
    }
    mod_station_secret_clear(&s);
}

static void test_bad_arguments(void **state)
{
    mod_station_secret s;
    mod_station_secret empty = {NULL, 0};
    char pin[TM_PIN_MAX];

    make_secret(&s, 0x01, 32);
    assert_int_equal(mod_pin_derive(&empty, serial_a, 16, 4, 0, pin, sizeof(pin)), 0);
    assert_int_equal(mod_pin_derive(&s, serial_a, 0, 4, 0, pin, sizeof(pin)), 0);
    assert_int_equal(mod_pin_derive(&s, NULL, 16, 4, 0, pin, sizeof(pin)), 0);
    mod_station_secret_clear(&s);
}

/* ---- the secret file ------------------------------------------------------ */

static char dir[64];

static int setup_dir(void **state)
{
    strcpy(dir, "/tmp/tm-test-pin.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *content, size_t len, mode_t mode)
{
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

#define SECRET_TEXT "0123456789abcdef0123456789abcdef-secret"

static void test_secret_accepted_0600(void **state)
{
    char path[128], err[256];
    mod_station_secret s = {NULL, 0};

    snprintf(path, sizeof(path), "%s/good", dir);
    write_file(path, SECRET_TEXT, strlen(SECRET_TEXT), 0600);
    assert_int_equal(mod_station_secret_load(path, &s, err, sizeof(err)), 1);
    assert_int_equal(s.len, strlen(SECRET_TEXT));
    assert_memory_equal(s.bytes, SECRET_TEXT, s.len);
    mod_station_secret_clear(&s);
}

static void expect_refused(const char *path, const char *needle)
{
    char err[256];
    mod_station_secret s = {NULL, 0};

    assert_int_equal(mod_station_secret_load(path, &s, err, sizeof(err)), 0);
    assert_null(s.bytes);
    /* names the path and the problem, never the content */
    assert_non_null(strstr(err, path));
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_null(strstr(err, "0123456789abcdef"));
}

static void test_secret_refused_group_other(void **state)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/loose", dir);
    write_file(path, SECRET_TEXT, strlen(SECRET_TEXT), 0644);
    expect_refused(path, "0644");
    write_file(path, SECRET_TEXT, strlen(SECRET_TEXT), 0640);
    expect_refused(path, "0640");
    write_file(path, SECRET_TEXT, strlen(SECRET_TEXT), 0400);
    expect_refused(path, "0400");
}

static void test_secret_refused_short(void **state)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/short", dir);
    write_file(path, SECRET_TEXT, 31, 0600);
    expect_refused(path, "at least 32");
}

static void test_secret_refused_not_regular(void **state)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/adir", dir);
    assert_int_equal(mkdir(path, 0600), 0);
    expect_refused(path, "is a directory");
    /* a FIFO without a writer: refused at once, the module never waits */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_refused(path, "is a FIFO");
    snprintf(path, sizeof(path), "%s/missing", dir);
    expect_refused(path, "No such file");
}

static void test_secret_refused_wrong_owner(void **state)
{
    char path[128];
    struct passwd *nobody;

    snprintf(path, sizeof(path), "%s/theirs", dir);
    write_file(path, SECRET_TEXT, strlen(SECRET_TEXT), 0600);
    /* Only root can give a file away; elsewhere this check cannot be set up. */
    if (geteuid() != 0)
        skip();
    nobody = getpwnam("nobody");
    assert_non_null(nobody);
    assert_int_equal(chown(path, nobody->pw_uid, nobody->pw_gid), 0);
    expect_refused(path, "owned by uid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_differs_by_serial_and_secret),
        cmocka_unit_test(test_length_clamped),
        cmocka_unit_test(test_digits_are_unbiased_enough),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_secret_accepted_0600),
        cmocka_unit_test(test_secret_refused_group_other),
        cmocka_unit_test(test_secret_refused_short),
        cmocka_unit_test(test_secret_refused_not_regular),
        cmocka_unit_test(test_secret_refused_wrong_owner),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
