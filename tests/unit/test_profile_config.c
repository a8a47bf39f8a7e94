/* The profile config: OpenSSL syntax, every key known, errors naming file,
 * line and problem; the built-in default is conf/profile.cnf. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_profile_util.h"

#define HW "2.25.306879213863795936203097792690857128826.1"
#define GOOD_TAIL                                                                                  \
    "[pp]\nauth = pa\nsign = ps\n"                                                                 \
    "[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n"                           \
    "[ps]\nkeyUsage = digitalSignature, nonRepudiation\n"

static void expect_refused(const char *text, const char *needle)
{
    tm_violations *v = tm_violations_new();
    tm_profile *p = tm_profile_load_string(text, v);

    assert_null(p);
    assert_true(tm_violations_count(v) >= 1);
    tpu_expect(v, needle);
    tm_violations_free(v);
}

static void test_default_is_conf_profile_cnf(void **state)
{
    tm_violations *v = tm_violations_new();
    tm_profile *builtin = tm_profile_load(NULL, v), *file = tpu_profile();
    size_t i;

    tpu_expect_count(v, 0);
    assert_non_null(builtin);
    assert_int_equal(tm_profile_purpose_count(builtin), 3);
    assert_int_equal(tm_profile_purpose_count(builtin), tm_profile_purpose_count(file));
    for (i = 0; i < tm_profile_purpose_count(file); i++)
        assert_string_equal(tm_profile_purpose_name(builtin, i), tm_profile_purpose_name(file, i));
    assert_string_equal(tm_profile_purpose_name(builtin, 0), "auth");
    assert_string_equal(tm_profile_purpose_name(builtin, 1), "sign");
    assert_string_equal(tm_profile_purpose_name(builtin, 2), "encrypt");
    assert_null(tm_profile_purpose_name(builtin, 3));
    assert_string_equal(tm_profile_default_purpose(builtin), "auth");
    assert_string_equal(tm_profile_hw_type(builtin, NULL), tm_profile_hw_type(file, NULL));
    assert_string_equal(tm_profile_hw_type(builtin, "SoftHSM v2"),
                        tm_profile_hw_type(file, "SoftHSM v2"));
    tm_profile_free(builtin);
    tm_profile_free(file);
    tm_violations_free(v);
}

static void test_minimal_profile(void **state)
{
    tm_profile *p = tpu_profile_text("[profile]\ndefault_purpose = sign\npurposes = pp\n"
                                     "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL);

    assert_int_equal(tm_profile_purpose_count(p), 2);
    assert_string_equal(tm_profile_default_purpose(p), "sign");
    assert_string_equal(tm_profile_hw_type(p, "any model"), HW);
    tm_profile_free(p);
}

static void test_unknown_key_names_line(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\nvalidty = 3\n" GOOD_TAIL,
                   "(profile text):6: [profile] validty: unknown key; known keys here are: "
                   "default_purpose, purposes");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL "extKeyUsage = clientAuth\n",
                   "(profile text):14: [ps] extKeyUsage: unknown key");
}

/* issue 10 item 1: a misspelt section name must not switch its settings off */
static void test_unknown_section_refused(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL "[organisaton]\nO = x\n",
                   "(profile text):14: [organisaton]: unknown section");
    /* a key before any section header */
    expect_refused("validity_days = 1\n[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL,
                   "[default] validity_days: set outside any section");
}

/* issue 10 item 1: NCONF skips a missing .include; the profile refuses it */
static void test_missing_include_refused(void **state)
{
    char dir[] = "/tmp/tm-profile-inc-XXXXXX", part[64], text[1024];
    FILE *f;
    tm_profile *p;

    assert_non_null(mkdtemp(dir));
    snprintf(part, sizeof(part), "%s/hw.cnf", dir);
    snprintf(text, sizeof(text),
             "[profile]\ndefault_purpose = auth\npurposes = pp\nvalidity_days = 30\n"
             ".include %s\n" GOOD_TAIL,
             part);
    expect_refused(text, "(profile text):5: .include ");
    expect_refused(text, "hw.cnf: No such file or directory");
    /* the same include, once the file is there, is read */
    f = fopen(part, "w");
    assert_non_null(f);
    fputs("[profile]\nhw_type = " HW "\n", f);
    fclose(f);
    p = tpu_profile_text(text);
    assert_string_equal(tm_profile_hw_type(p, "any"), HW);
    tm_profile_free(p);
    /* and a missing include inside an included file is found too */
    f = fopen(part, "w");
    assert_non_null(f);
    fprintf(f, "[profile]\nhw_type = " HW "\n.include = %s/nested.cnf\n", dir);
    fclose(f);
    expect_refused(text, "hw.cnf:3: .include ");
    unlink(part);
    rmdir(dir);
}

static void test_syntax_error_names_line(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\nthis line has no equals sign\n",
                   "(profile text):3: missing equal sign");
}

static void test_file_errors_name_the_file(void **state)
{
    char path[] = "/tmp/tm-profile-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    tm_violations *v = tm_violations_new();

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("# comment\n[profile]\ndefault_purpose = auth\npurposes = pp\n"
          "hw_type = " HW "\nvalidity_days = forever\n" GOOD_TAIL,
          f);
    fclose(f);
    assert_null(tm_profile_load(path, v));
    tpu_expect(v, path);
    tpu_expect(v, ":6: [profile] validity_days: forever is neither 1..36500 days nor no_expiry");
    unlink(path);
    assert_null(tm_profile_load(path, v));
    tpu_expect(v, "cannot open profile: No such file or directory");
    tm_violations_free(v);
}

static void test_personal_attribute_cannot_be_allowed(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "allowed_subject_attributes = O, CN\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL,
                   ":4: [profile] allowed_subject_attributes: CN cannot be allowed: only O, OU and "
                   "C never name a person");
}

static void test_ca_key_usage_refused(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n"
                   "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature, keyCertSign\n",
                   "[pa] keyUsage: keyCertSign would make a token certificate a CA");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n"
                   "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignatur\n",
                   "digitalSignatur is not a keyUsage name");
}

static void test_missing_pieces(void **state)
{
    expect_refused("[other]\nx = 1\n", "[profile]: section is missing");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = nowhere\n"
                   "hw_type = " HW "\nvalidity_days = 30\n",
                   ":3: [profile] purposes: section [nowhere] is missing");
    expect_refused("[profile]\ndefault_purpose = print\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL,
                   ":2: [profile] default_purpose: print is not one of the listed purposes");
    expect_refused(
        "[profile]\ndefault_purpose = auth\npurposes = pp\nvalidity_days = 30\n" GOOD_TAIL,
        "hw_type is missing");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\nhw_type = " HW "\n" GOOD_TAIL,
                   "validity_days is missing");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n"
                   "[pp]\nauth = pa\n[pa]\nextendedKeyUsage = clientAuth\n",
                   "purpose auth has no keyUsage");
}

static void test_ambiguous_purposes_refused(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n"
                   "[pp]\nauth = pa\nlogin = pa\n[pa]\nkeyUsage = digitalSignature\n",
                   "purposes auth and login have the same keyUsage/extendedKeyUsage for rsa keys");
}

static void test_bad_oids_and_names(void **state)
{
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = not.an.oid\nvalidity_days = 30\n" GOOD_TAIL,
                   ":4: [profile] hw_type: not.an.oid is not a dotted OID");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nhw_type_name = commonName\nvalidity_days = 30\n" GOOD_TAIL,
                   "commonName already names OID 2.5.4.3 in OpenSSL");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nhw_type_models = models\nvalidity_days = 30\n" GOOD_TAIL
                   "[models]\nmyToken = 1.2.3.4\n",
                   "[models] myToken: expected <dotted OID> : <token model>");
    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "hw_type = " HW "\nvalidity_days = 30\n"
                   "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\n"
                   "extendedKeyUsage = clientAuthentication\n",
                   "clientAuthentication is not a known name or a dotted OID");
}

static void test_organisation_values(void **state)
{
    tm_violations *v = tm_violations_new();
    tm_profile *p = tpu_profile_text(
        "[profile]\ndefault_purpose = auth\npurposes = pp\nallowed_subject_attributes = O, C\n"
        "organisation = org\nhw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL
        "[org]\nO = Example Bank\nC = DE\n");
    EVP_PKEY *key = tpu_key("P-256");
    X509_REQ *req = tpu_request(p, key, "0A1B", "auth");
    char buf[256];

    X509_NAME_oneline(X509_REQ_get_subject_name(req), buf, sizeof(buf));
    assert_string_equal(buf, "/C=DE/O=Example Bank/serialNumber=0A1B");
    assert_int_equal(tm_profile_check_req(p, req, v), 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    tm_profile_free(p);
    tm_violations_free(v);

    expect_refused("[profile]\ndefault_purpose = auth\npurposes = pp\n"
                   "allowed_subject_attributes = C\norganisation = org\n"
                   "hw_type = " HW "\nvalidity_days = 30\n" GOOD_TAIL "[org]\nO = Example Bank\n",
                   "[org] O: O is not in allowed_subject_attributes, so it cannot have a value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_conf_profile_cnf),
        cmocka_unit_test(test_minimal_profile),
        cmocka_unit_test(test_unknown_key_names_line),
        cmocka_unit_test(test_unknown_section_refused),
        cmocka_unit_test(test_missing_include_refused),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_file_errors_name_the_file),
        cmocka_unit_test(test_personal_attribute_cannot_be_allowed),
        cmocka_unit_test(test_ca_key_usage_refused),
        cmocka_unit_test(test_missing_pieces),
        cmocka_unit_test(test_ambiguous_purposes_refused),
        cmocka_unit_test(test_bad_oids_and_names),
        cmocka_unit_test(test_organisation_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
