/* The module's config: what a good file yields, and that every mistake is
 * refused with "FILE:LINE: problem". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char path[64];

static const char *write_conf(const char *text)
{
    int fd;
    FILE *f;

    strcpy(path, "/tmp/tm-config-test.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text, expects failure, and checks the message names file and line. */
static void expect_error(const char *text, long line, const char *what)
{
    char err[512], want[128];
    mod_config *c = NULL;

    write_conf(text);
    assert_int_equal(mod_config_load_file(path, &c, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s:%ld: ", path, line);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
        fail_msg("expected \"%s...%s\", got \"%s\"", want, what, err);
    mod_config_free(c);
    unlink(path);
}

static void test_full_config(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    write_conf("# a station\n"
               "[tokenmint]\n"
               "backends = softhsm, nss\n"
               "audit_log = /var/log/tokenmint/audit.jsonl\n"
               "station_secret = /etc/tokenmint/station.secret\n"
               "outside_profile = allow\n"
               "trusted_roots = /etc/tokenmint/roots.pem\n"
               "profile = /etc/tokenmint/profile.cnf\n"
               "\n"
               "[backend_softhsm]\n"
               "module = /usr/lib/softhsm/libsofthsm2.so\n"
               "uri = pkcs11:manufacturer=SoftHSM%20project\n"
               "[ backend_nss ]\n"
               "p11kit_module = nss\n"
               "init_args = \"configdir='sql:/tmp/db' certPrefix='' flags=\"\n");
    assert_int_equal(mod_config_load_file(path, &c, err, sizeof(err)), 1);
    assert_string_equal(c->path, path);
    assert_int_equal(c->n_backends, 2);
    assert_string_equal(c->backends[0].name, "softhsm");
    assert_string_equal(c->backends[0].module, "/usr/lib/softhsm/libsofthsm2.so");
    assert_null(c->backends[0].p11kit_module);
    assert_string_equal(c->backends[0].uri, "pkcs11:manufacturer=SoftHSM%20project");
    assert_int_equal(c->backends[0].line, 10);
    assert_string_equal(c->backends[1].name, "nss");
    assert_null(c->backends[1].module);
    assert_string_equal(c->backends[1].p11kit_module, "nss");
    /* single quotes survive inside a double-quoted value: NSS needs them */
    assert_string_equal(c->backends[1].init_args, "configdir='sql:/tmp/db' certPrefix='' flags=");
    assert_int_equal(c->backends[1].line, 13);
    assert_string_equal(c->audit_log, "/var/log/tokenmint/audit.jsonl");
    assert_string_equal(c->station_secret, "/etc/tokenmint/station.secret");
    assert_string_equal(c->trusted_roots, "/etc/tokenmint/roots.pem");
    assert_string_equal(c->profile, "/etc/tokenmint/profile.cnf");
    assert_int_equal(c->outside_profile_allow, 1);
    mod_config_free(c);
    unlink(path);
}

static void test_minimal_defaults(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    write_conf("[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x.so\n");
    assert_int_equal(mod_config_load_file(path, &c, err, sizeof(err)), 1);
    assert_null(c->audit_log);
    assert_null(c->station_secret);
    assert_null(c->trusted_roots);
    assert_null(c->profile);
    assert_null(c->backends[0].uri);
    assert_int_equal(c->outside_profile_allow, 0); /* refuse unless told */
    mod_config_free(c);
    unlink(path);
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\nadit_log = /x\n[backend_a]\nmodule = /x.so\n", 3,
                 "unknown key 'adit_log' in [tokenmint]");
    expect_error("[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x.so\nmodul = /y.so\n", 5,
                 "unknown key 'modul' in [backend_a]");
}

static void test_syntax_error_line(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\n[backend_a\nmodule = /x.so\n", 3, "syntax error");
}

static void test_missing_backend_section(void **state)
{
    (void)state;
    expect_error("[tokenmint]\naudit_log = /a\nbackends = a, b\n[backend_a]\nmodule = /x.so\n", 3,
                 "backend 'b' is listed but there is no [backend_b] section");
}

static void test_module_and_name_exclusive(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\n\n[backend_a]\nmodule = /x.so\np11kit_module = y\n", 4,
                 "exactly one of 'module'");
    expect_error("[tokenmint]\nbackends = a\n[backend_a]\nuri = pkcs11:\n", 3,
                 "exactly one of 'module'");
}

static void test_bad_uri(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x.so\nuri = http://x\n", 5,
                 "uri 'http://x' is not a valid PKCS#11 URI");
}

static void test_duplicate_and_empty(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\naudit_log = /a\naudit_log = /b\n[backend_a]\n"
                 "module = /x.so\n",
                 4, "audit_log is set twice");
    expect_error("[tokenmint]\nbackends = a\nprofile =\n[backend_a]\nmodule = /x.so\n", 3,
                 "profile is empty");
    expect_error("[tokenmint]\nbackends = a, a\n[backend_a]\nmodule = /x.so\n", 2,
                 "'a' is listed twice");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\noutside_profile = maybe\n[backend_a]\nmodule = /x\n",
                 3, "outside_profile must be 'refuse' or 'allow'");
    expect_error("[tokenmint]\nbackends = a b\n[backend_a]\nmodule = /x\n", 2,
                 "'a b' is not a backend name");
}

/* Issue 13: token_serials = LABEL:SERIAL, ... in a backend section. */
static void test_token_serials(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    write_conf("[tokenmint]\nbackends = tpm, b\n[backend_tpm]\nmodule = /t.so\n"
               "token_serials = tpm0:TPM0SERIAL01 ,  my:label : A-1 (x)=/.+ , z:Z\n"
               "[backend_b]\nmodule = /b.so\ntoken_serials = tpm0:OTHER\n");
    if (mod_config_load_file(path, &c, err, sizeof(err)) != 1)
        fail_msg("%s", err);
    assert_int_equal(c->backends[0].n_token_serials, 3);
    assert_string_equal(c->backends[0].token_serials[0].label, "tpm0");
    assert_string_equal(c->backends[0].token_serials[0].serial, "TPM0SERIAL01");
    /* split at the last ':', spaces around each part dropped */
    assert_string_equal(c->backends[0].token_serials[1].label, "my:label");
    assert_string_equal(c->backends[0].token_serials[1].serial, "A-1 (x)=/.+");
    assert_string_equal(c->backends[0].token_serials[2].serial, "Z");
    /* one label in two backends names two tokens */
    assert_int_equal(c->backends[1].n_token_serials, 1);
    assert_string_equal(c->backends[1].token_serials[0].label, "tpm0");
    assert_int_equal(c->backends[0].line, 3);
    mod_config_free(c);
    unlink(path);
}

/* Every malformed token_serials refused at load, naming the value. */
static void test_token_serials_refused(void **state)
{
#define TS_CONF(v) "[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x.so\ntoken_serials = " v "\n"
    (void)state;
    expect_error(TS_CONF(""), 5, "token_serials is empty");
    expect_error(TS_CONF("tpm0"), 5, "token_serials: 'tpm0' is not LABEL:SERIAL");
    expect_error(TS_CONF("tpm0:A, tpm1"), 5, "'tpm1' is not LABEL:SERIAL");
    expect_error(TS_CONF(":ABC"), 5, "':ABC' has an empty label");
    expect_error(TS_CONF("tpm0:"), 5, "'tpm0:' has an empty serial");
    expect_error(TS_CONF(","), 5, "token_serials lists no LABEL:SERIAL");
    expect_error(TS_CONF("abcdefghijklmnopqrstuvwxyz0123456:A"), 5,
                 "label 'abcdefghijklmnopqrstuvwxyz0123456' is longer than a token label");
    expect_error(TS_CONF("tpm0:ABCDEFGHIJKLMNOPQ"), 5,
                 "serial 'ABCDEFGHIJKLMNOPQ' for 'tpm0' is longer than a token serial (16");
    expect_error(TS_CONF("tpm0:ab?cd"), 5, "serial 'ab?cd' for 'tpm0' has a character");
    expect_error(TS_CONF("tpm0:x_y"), 5, "serial 'x_y' for 'tpm0' has a character");
    expect_error(TS_CONF("tpm0:caf\xc3\xa9"), 5, "for 'tpm0' has a character");
    expect_error(TS_CONF("tpm0:0000000000000000"), 5,
                 "serial '0000000000000000' for 'tpm0' is all zeros: it names no one token");
    expect_error(TS_CONF("tpm0:0"), 5, "serial '0' for 'tpm0' is all zeros");
    expect_error(TS_CONF("tpm0:A, tpm0:B"), 5, "label 'tpm0' is given twice");
    expect_error(TS_CONF("tpm0:A, tpm1:A"), 5, "serial 'A' is given to 'tpm0' and to 'tpm1'");
    expect_error(TS_CONF("tpm0:A") "token_serials = tpm1:B\n", 6, "token_serials is set twice");
    expect_error("[tokenmint]\nbackends = a, b\n[backend_a]\nmodule = /x.so\n"
                 "token_serials = t:S1\n[backend_b]\nmodule = /y.so\ntoken_serials = u:S2, v:S1\n",
                 8, "serial 'S1' for 'v' is also given to 't' in [backend_a]");
#undef TS_CONF
}

static void test_stray_sections_and_keys(void **state)
{
    (void)state;
    expect_error("[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x\n[backend_b]\nmodule = /y\n",
                 5, "section [backend_b] is not listed");
    expect_error("[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x\n[extras]\nfoo = 1\n", 5,
                 "unknown section [extras]");
    expect_error("backends = a\n[tokenmint]\nbackends = a\n[backend_a]\nmodule = /x\n", 1,
                 "outside any section");
}

static void test_no_tokenmint_section(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    write_conf("[backend_a]\nmodule = /x\n");
    assert_int_equal(mod_config_load_file(path, &c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "no [tokenmint] section"));
    mod_config_free(c);
    unlink(path);

    expect_error("[tokenmint]\naudit_log = /a\n", 1, "[tokenmint] has no 'backends' key");
}

static void test_audit_log_kept_on_error(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    /* a later error can still be recorded in the audit log */
    write_conf("[tokenmint]\nbackends = a\naudit_log = /tmp/a.jsonl\nbogus = 1\n[backend_a]\n"
               "module = /x\n");
    assert_int_equal(mod_config_load_file(path, &c, err, sizeof(err)), 0);
    assert_non_null(c);
    assert_string_equal(c->audit_log, "/tmp/a.jsonl");
    mod_config_free(c);
    unlink(path);
}

static void test_missing_file(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    assert_int_equal(mod_config_load_file("/nonexistent/tokenmint.conf", &c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/tokenmint.conf: cannot open config file"));
    mod_config_free(c);
}

static void test_backend_list(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    assert_int_equal(mod_config_from_backend_list("/a.so:/b.so", &c, err, sizeof(err)), 1);
    assert_int_equal(c->n_backends, 2);
    assert_string_equal(c->backends[0].module, "/a.so");
    assert_string_equal(c->backends[1].module, "/b.so");
    assert_null(c->path);
    mod_config_free(c);

    assert_int_equal(mod_config_from_backend_list(":", &c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "TOKENMINT_BACKEND"));
    mod_config_free(c);
}

static void test_env_precedence(void **state)
{
    char err[512];
    mod_config *c = NULL;

    (void)state;
    unsetenv("TOKENMINT_CONF");
    unsetenv("TOKENMINT_BACKEND");
    assert_int_equal(mod_config_load_env("/nonexistent/default.conf", &c, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "TOKENMINT_CONF and TOKENMINT_BACKEND are not set"));
    assert_non_null(strstr(err, "/nonexistent/default.conf"));
    mod_config_free(c);

    setenv("TOKENMINT_BACKEND", "/env.so", 1);
    assert_int_equal(mod_config_load_env("/nonexistent/default.conf", &c, err, sizeof(err)), 1);
    assert_string_equal(c->backends[0].module, "/env.so");
    mod_config_free(c);

    write_conf("[tokenmint]\nbackends = f\n[backend_f]\nmodule = /file.so\n");
    setenv("TOKENMINT_CONF", path, 1);
    assert_int_equal(mod_config_load_env("/nonexistent/default.conf", &c, err, sizeof(err)), 1);
    assert_string_equal(c->backends[0].module, "/file.so");
    mod_config_free(c);
    unsetenv("TOKENMINT_CONF");
    unsetenv("TOKENMINT_BACKEND");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_syntax_error_line),
        cmocka_unit_test(test_missing_backend_section),
        cmocka_unit_test(test_module_and_name_exclusive),
        cmocka_unit_test(test_bad_uri),
        cmocka_unit_test(test_duplicate_and_empty),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_token_serials),
        cmocka_unit_test(test_token_serials_refused),
        cmocka_unit_test(test_stray_sections_and_keys),
        cmocka_unit_test(test_no_tokenmint_section),
        cmocka_unit_test(test_audit_log_kept_on_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_backend_list),
        cmocka_unit_test(test_env_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
