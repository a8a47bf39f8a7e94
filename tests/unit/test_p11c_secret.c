/* The client layer's secret sources: one syntax (PATH, file:PATH,
 * file://PATH, "%s" for the token serial) and one reader (first line,
 * messages that name the file and never the secret), which refuses what is
 * not a private regular file (issue 10, item 12): a FIFO without blocking,
 * a directory as such, a file group or others may read or write unless the
 * caller allows it, another user's file. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
    assert_int_equal(chmod(path, 0600), 0);
}

static void put_mode(const char *name, const char *data, mode_t mode)
{
    char path[256];

    put(name, data, strlen(data));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(chmod(path, mode), 0);
}

static void on_alarm(int sig)
{
    (void)sig;
    /* only async-signal-safe calls here */
    static const char msg[] = "FAIL: p11c_secret_read blocked on a FIFO\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(3);
    _exit(1);
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
    put_mode("world", "5555\n", 0644);
    put_mode("group", "5555\n", 0640);
    put_mode("owrite", "5555\n", 0602);
    put_mode("readonly", "7777\n", 0400);
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

/* Refused, with the path and the reason in err, never the secret. */
static void refused(const char *name, unsigned int flags, const char *reason)
{
    char src[300], out[64], err[400];
    size_t len = 0;

    snprintf(src, sizeof(src), "%s/%s", dir, name);
    memset(out, 'x', sizeof(out));
    assert_false(
        p11c_secret_read_ex(src, NULL, "PIN", flags, out, sizeof(out), &len, err, sizeof(err)));
    if (strstr(err, reason) == NULL || strstr(err, src) == NULL)
        fail_msg("%s: want '%s' and the path, got: %s", name, reason, err);
    assert_null(strstr(err, "5555"));
    assert_null(memchr(out, '5', sizeof(out)));
}

static void fifo_refused_without_blocking(void **state)
{
    char path[300];

    (void)state;
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    /* no writer ever comes: a blocking open would wait for good */
    signal(SIGALRM, on_alarm);
    alarm(10);
    refused("fifo", 0, "is a FIFO");
    refused("fifo", P11C_SECRET_ALLOW_OPEN, "is a FIFO");
    alarm(0);
}

static void directory_named_as_such(void **state)
{
    char path[300];

    (void)state;
    snprintf(path, sizeof(path), "%s/adir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    refused("adir", 0, "is a directory");
    refused("adir", P11C_SECRET_ALLOW_OPEN, "is a directory");
}

static void devices_and_sockets_refused(void **state)
{
    struct sockaddr_un sa;
    char out[64], err[400];
    size_t len = 0;
    int fd;

    (void)state;
    assert_false(p11c_secret_read_ex("/dev/null", NULL, "PIN", P11C_SECRET_ALLOW_OPEN, out,
                                     sizeof(out), &len, err, sizeof(err)));
    assert_non_null(strstr(err, "/dev/null is a character device"));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    refused("sock", 0, "is a socket");
    close(fd);
}

static void open_modes_refused_unless_allowed(void **state)
{
    char src[300], out[64], err[400];
    size_t len = 0;

    (void)state;
    refused("world", 0, "has mode 0644: group or others may read it");
    refused("group", 0, "has mode 0640: group or others may read it");
    refused("owrite", 0, "has mode 0602: group or others may write it");
    snprintf(src, sizeof(src), "%s/world", dir);
    /* the caller's explicit option lets it through */
    assert_true(p11c_secret_read_ex(src, NULL, "PIN", P11C_SECRET_ALLOW_OPEN, out, sizeof(out),
                                    &len, err, sizeof(err)));
    assert_string_equal(out, "5555");
    /* p11c_secret_read is the strict reader */
    assert_false(p11c_secret_read(src, NULL, "PIN", out, sizeof(out), &len, err, sizeof(err)));
    /* 0400 and 0600 are private */
    snprintf(src, sizeof(src), "%s/readonly", dir);
    assert_true(p11c_secret_read(src, NULL, "PIN", out, sizeof(out), &len, err, sizeof(err)));
    assert_string_equal(out, "7777");
}

static void other_owner_refused(void **state)
{
    char path[300];

    (void)state;
    /* Only root can give a file away; CI runs as root. */
    if (geteuid() != 0)
        skip();
    put("theirs", "5555\n", 5);
    snprintf(path, sizeof(path), "%s/theirs", dir);
    assert_int_equal(chown(path, 65534, 65534), 0);
    refused("theirs", 0, "is owned by uid 65534");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_spellings_read_the_same),
        cmocka_unit_test(first_line_without_line_end),
        cmocka_unit_test(serial_fills_percent_s),
        cmocka_unit_test(bad_files_are_named),
        cmocka_unit_test(length_limit_is_exact),
        cmocka_unit_test(fifo_refused_without_blocking),
        cmocka_unit_test(directory_named_as_such),
        cmocka_unit_test(devices_and_sockets_refused),
        cmocka_unit_test(open_modes_refused_unless_allowed),
        cmocka_unit_test(other_owner_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
