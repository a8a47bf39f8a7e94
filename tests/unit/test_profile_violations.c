/* Every class of violation is found, with a message a person can act on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "test_profile_util.h"

#define SERIAL "0A1B2C3D"

typedef struct fixture {
    tm_profile *p;
    tm_violations *v;
    EVP_PKEY *key, *ca_key;
    X509 *ca;
    X509_REQ *req; /* a conforming request ... */
    X509 *cert;    /* ... and a conforming certificate for it */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    f->p = tpu_profile();
    f->v = tm_violations_new();
    f->key = tpu_key("P-256");
    tpu_ca(&f->ca_key, &f->ca);
    f->req = tpu_request(f->p, f->key, SERIAL, "auth");
    f->cert = tpu_issue(f->p, f->req, f->ca_key, f->ca);
    /* the fixtures conform: every test below changes exactly one thing */
    assert_int_equal(tm_profile_check_req(f->p, f->req, f->v), 0);
    assert_int_equal(tm_profile_check_cert(f->p, f->cert, f->v), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    X509_free(f->cert);
    X509_REQ_free(f->req);
    X509_free(f->ca);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->key);
    tm_violations_free(f->v);
    tm_profile_free(f->p);
    free(f);
    return 0;
}

static void add_subject(X509_NAME *name, const char *field, const char *value)
{
    assert_true(X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC, (const unsigned char *)value,
                                           -1, -1, 0));
}

static size_t check_req(fixture *f)
{
    tpu_sign_req(f->req, f->key);
    return tm_profile_check_req(f->p, f->req, f->v);
}

static size_t check_cert(fixture *f)
{
    tpu_sign_cert(f->cert, f->ca_key);
    return tm_profile_check_cert(f->p, f->cert, f->v);
}

/* Request extensions: the SAN from the fixture plus these nid/value pairs. */
static void req_exts(fixture *f, int keep_san, const int *nids, const char *const *values)
{
    STACK_OF(X509_EXTENSION) *old = X509_REQ_get_extensions(f->req), *exts;
    X509_EXTENSION *san = X509_EXTENSION_dup(
        X509v3_get_ext(old, X509v3_get_ext_by_NID(old, NID_subject_alt_name, -1)));

    tpu_req_set_exts(f->req, nids, values);
    if (keep_san) {
        int idx;
        exts = X509_REQ_get_extensions(f->req);
        assert_non_null(X509v3_add_ext(&exts, san, 0));
        while ((idx = X509_REQ_get_attr_by_NID(f->req, NID_ext_req, -1)) >= 0)
            X509_ATTRIBUTE_free(X509_REQ_delete_attr(f->req, idx));
        assert_true(X509_REQ_add_extensions(f->req, exts));
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(old, X509_EXTENSION_free);
}

/* ---- subject ---- */

static void test_personal_name_in_subject(void **state)
{
    fixture *f = *state;

    add_subject(X509_REQ_get_subject_name(f->req), "CN", "Alice");
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "subject has CN=Alice: the profile allows no personal name");
}

static void test_email_in_subject(void **state)
{
    fixture *f = *state;

    add_subject(X509_get_subject_name(f->cert), "emailAddress", "alice@example.com");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "subject has emailAddress=alice@example.com: the profile allows no personal "
                     "name");
}

static void test_other_attribute_in_subject(void **state)
{
    fixture *f = *state;

    add_subject(X509_REQ_get_subject_name(f->req), "L", "Paris");
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "subject has L=Paris: the profile allows only serialNumber and the "
                     "organisation attributes O, OU, C");
}

static void test_organisation_attribute_not_allowed(void **state)
{
    fixture *f = *state;
    tm_profile *strict = tpu_profile_text(
        "[profile]\ndefault_purpose = auth\npurposes = pp\nallowed_subject_attributes = C\n"
        "hw_type = 2.25.306879213863795936203097792690857128826.1\nvalidity_days = 30\n"
        "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n");

    add_subject(X509_REQ_get_subject_name(f->req), "C", "DE");
    add_subject(X509_REQ_get_subject_name(f->req), "O", "Example Bank");
    tpu_sign_req(f->req, f->key);
    assert_int_equal(tm_profile_check_req(strict, f->req, f->v), 1);
    tpu_expect(f->v, "subject has O=Example Bank: the profile does not allow O "
                     "(allowed_subject_attributes)");
    tm_profile_free(strict);
}

/* Issue 10 item 4: the size bounds. A profile whose bounds are exactly this
 * request's sizes accepts it; one less on any bound refuses it, naming the
 * bound. */
static tm_profile *bounded(long attrs, long sbytes, long rbytes)
{
    char text[1024];

    snprintf(text, sizeof text,
             "[profile]\ndefault_purpose = auth\npurposes = pp\nallowed_subject_attributes = "
             "O, OU, C\nhw_type = 2.25.306879213863795936203097792690857128826.1\n"
             "validity_days = 30\nmax_subject_attributes = %ld\nmax_subject_bytes = %ld\n"
             "max_request_bytes = %ld\n"
             "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = "
             "clientAuth\n",
             attrs, sbytes, rbytes);
    return tpu_profile_text(text);
}

static void test_size_bounds_exactly_and_over(void **state)
{
    fixture *f = *state;
    X509_NAME *name = X509_REQ_get_subject_name(f->req);
    long c, sb, rb;
    tm_profile *p;

    add_subject(name, "O", "Example Bank");
    add_subject(name, "OU", "Station 7");
    tpu_sign_req(f->req, f->key);
    c = X509_NAME_entry_count(name);
    sb = i2d_X509_NAME(name, NULL);
    rb = i2d_X509_REQ(f->req, NULL);
    assert_true(c == 3 && sb > 0 && rb > sb);

    p = bounded(c, sb, rb); /* exactly at every bound */
    assert_int_equal(tm_profile_check_req(p, f->req, f->v), 0);
    tm_profile_free(p);

    p = bounded(c - 1, sb, rb);
    assert_int_equal(tm_profile_check_req(p, f->req, f->v), 1);
    tpu_expect(f->v, "subject has 3 attributes: the profile allows at most 2 "
                     "(max_subject_attributes)");
    tm_profile_free(p);
    tm_violations_free(f->v);
    f->v = tm_violations_new();

    p = bounded(c, sb - 1, rb);
    assert_int_equal(tm_profile_check_req(p, f->req, f->v), 1);
    tpu_expect(f->v, "(max_subject_bytes)");
    tm_profile_free(p);
    tm_violations_free(f->v);
    f->v = tm_violations_new();

    p = bounded(c, sb, rb - 1);
    assert_int_equal(tm_profile_check_req(p, f->req, f->v), 1);
    tpu_expect(f->v, "(max_request_bytes)");
    tm_profile_free(p);
}

/* The default profile: a 64 KB request (hundreds of OUs, as in the report
 * that made a 4.7 KB index.txt line) is refused with every bound it breaks,
 * and the certificate check applies the subject bounds too. */
static void test_64k_request_refused_by_default(void **state)
{
    fixture *f = *state;
    X509_NAME *name = X509_REQ_get_subject_name(f->req);
    char ou[64];
    int i;

    for (i = 0; i < 1300; i++) {
        snprintf(ou, sizeof ou, "unit %04d of a very long organisation chart", i);
        add_subject(name, "OU", ou);
    }
    tpu_sign_req(f->req, f->key);
    assert_true(i2d_X509_REQ(f->req, NULL) >= 64 * 1024);
    assert_int_equal(tm_profile_check_req(f->p, f->req, f->v), 3);
    tpu_expect(f->v, "(max_subject_attributes)");
    tpu_expect(f->v, "(max_subject_bytes)");
    tpu_expect(f->v, "(max_request_bytes)");
    tm_violations_free(f->v);
    f->v = tm_violations_new();
    assert_true(X509_set_subject_name(f->cert, name));
    assert_int_equal(check_cert(f) >= 2, 1);
    tpu_expect(f->v, "(max_subject_bytes)");
}

static void test_bound_out_of_range_is_a_config_error(void **state)
{
    tm_violations *v = tm_violations_new();
    tm_profile *p = tm_profile_load_string(
        "[profile]\ndefault_purpose = auth\npurposes = pp\nallowed_subject_attributes = C\n"
        "hw_type = 2.25.306879213863795936203097792690857128826.1\nvalidity_days = 30\n"
        "max_request_bytes = 100000\n"
        "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n",
        v);

    (void)state;
    assert_null(p);
    tpu_expect(v, "max_request_bytes");
    tm_violations_free(v);
}

static void test_subject_without_serial_number(void **state)
{
    fixture *f = *state;
    X509_NAME *name = X509_NAME_new();

    add_subject(name, "O", "Example Bank");
    assert_true(X509_REQ_set_subject_name(f->req, name));
    X509_NAME_free(name);
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "request subject has no serialNumber: the profile binds every request to a "
                     "token serial");
}

static void test_subject_with_two_serial_numbers(void **state)
{
    fixture *f = *state;

    add_subject(X509_get_subject_name(f->cert), "serialNumber", SERIAL);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate subject has 2 serialNumber attributes: the profile wants "
                     "exactly one");
}

static void set_serial_number(X509_NAME *name, int type, const char *text)
{
    int idx = X509_NAME_get_index_by_NID(name, NID_serialNumber, -1);

    assert_true(idx >= 0);
    X509_NAME_ENTRY_free(X509_NAME_delete_entry(name, idx));
    assert_true(X509_NAME_add_entry_by_NID(name, NID_serialNumber, type,
                                           (const unsigned char *)text, -1, -1, 0));
}

static void test_serial_number_not_in_encoding(void **state)
{
    fixture *f = *state;

    /* "?41" is 'A' escaped: not canonical, a second text for one serial */
    set_serial_number(X509_REQ_get_subject_name(f->req), MBSTRING_ASC, "?41B2C3D");
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "subject serialNumber \"?41B2C3D\" is not a serial in the profile's encoding");
}

static void test_serial_number_not_printable_string(void **state)
{
    fixture *f = *state;

    set_serial_number(X509_get_subject_name(f->cert), V_ASN1_UTF8STRING, SERIAL);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "subject serialNumber " SERIAL " is a UTF8STRING: the profile wants a "
                     "PrintableString");
}

/* ---- SAN and binding ---- */

static void test_no_subject_alt_name(void **state)
{
    fixture *f = *state;
    static const int nids[] = {NID_key_usage, NID_ext_key_usage, 0};
    static const char *const values[] = {"critical,digitalSignature", "clientAuth"};

    req_exts(f, 0, nids, values);
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "request has no subjectAltName: the profile needs the hardwareModuleName "
                     "otherName naming the token");
}

static void test_serial_mismatch(void **state)
{
    fixture *f = *state;

    set_serial_number(X509_get_subject_name(f->cert), MBSTRING_ASC, "0A1C2C3D");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "SAN hwSerialNum 0A1B2C3D differs from subject serialNumber 0A1C2C3D");
}

static GENERAL_NAME *other_name(const char *oid, const unsigned char *der, int len)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);

    assert_true(ASN1_STRING_set(seq, der, len));
    ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq);
    assert_true(GENERAL_NAME_set0_othername(gn, OBJ_txt2obj(oid, 1), value));
    return gn;
}

static void cert_set_san(fixture *f, GENERAL_NAMES *gens)
{
    int idx = X509_get_ext_by_NID(f->cert, NID_subject_alt_name, -1);

    X509_EXTENSION_free(X509_delete_ext(f->cert, idx));
    assert_true(X509_add1_ext_i2d(f->cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT));
    GENERAL_NAMES_free(gens);
}

static void test_hardware_module_name_malformed(void **state)
{
    fixture *f = *state;
    /* SEQUENCE { OID 1.2 } without hwSerialNum */
    static const unsigned char der[] = {0x30, 0x03, 0x06, 0x01, 0x2a};
    GENERAL_NAMES *gens = GENERAL_NAMES_new();

    sk_GENERAL_NAME_push(gens, other_name("1.3.6.1.5.5.7.8.4", der, sizeof(der)));
    cert_set_san(f, gens);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "SAN hardwareModuleName is not DER SEQUENCE { hwType OBJECT IDENTIFIER, "
                     "hwSerialNum OCTET STRING }: hwSerialNum: truncated");
}

static void test_two_hardware_module_names(void **state)
{
    fixture *f = *state;
    GENERAL_NAMES *gens = X509_get_ext_d2i(f->cert, NID_subject_alt_name, NULL, NULL);

    sk_GENERAL_NAME_push(gens, GENERAL_NAME_dup(sk_GENERAL_NAME_value(gens, 0)));
    cert_set_san(f, gens);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate subjectAltName has 2 hardwareModuleName entries");
}

static void test_unknown_hw_type(void **state)
{
    fixture *f = *state;
    /* SEQUENCE { OID 1.2.3.4, OCTET STRING "0A1B2C3D" } */
    static const unsigned char der[] = {0x30, 0x0f, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x04, 0x08,
                                        '0',  'A',  '1',  'B',  '2',  'C',  '3',  'D'};
    GENERAL_NAMES *gens = GENERAL_NAMES_new();

    sk_GENERAL_NAME_push(gens, other_name("1.3.6.1.5.5.7.8.4", der, sizeof(der)));
    cert_set_san(f, gens);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "SAN hwType 1.2.3.4 is not a hardware type of the profile");
}

static void test_email_in_subject_alt_name(void **state)
{
    fixture *f = *state;
    GENERAL_NAMES *gens = X509_get_ext_d2i(f->cert, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *mail = ASN1_IA5STRING_new();

    ASN1_STRING_set(mail, "alice@example.com", -1);
    GENERAL_NAME_set0_value(gn, GEN_EMAIL, mail);
    sk_GENERAL_NAME_push(gens, gn);
    cert_set_san(f, gens);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "SAN has email:alice@example.com: the profile allows no personal name");
}

static void test_dns_name_only_when_allowed(void **state)
{
    fixture *f = *state;
    static const int nids[] = {NID_key_usage, NID_ext_key_usage, NID_subject_alt_name, 0};
    static const char *const values[] = {"critical,digitalSignature", "clientAuth",
                                         "DNS:token.example"};
    tm_profile *open = tpu_profile_text(
        "[profile]\ndefault_purpose = auth\npurposes = pp\nallowed_san_types = DNS\n"
        "hw_type = 2.25.306879213863795936203097792690857128826.1\nvalidity_days = 3650\n"
        "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n");
    GENERAL_NAMES *gens = X509_get_ext_d2i(f->cert, NID_subject_alt_name, NULL, NULL);
    GENERAL_NAME *dns = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    ASN1_STRING_set(s, "token.example", -1);
    GENERAL_NAME_set0_value(dns, GEN_DNS, s);
    sk_GENERAL_NAME_push(gens, dns);
    cert_set_san(f, gens);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "SAN has DNS:token.example: the profile allows no DNS names");
    tm_violations_free(f->v);
    f->v = tm_violations_new();
    assert_int_equal(tm_profile_check_cert(open, f->cert, f->v), 0);
    /* a request with only a DNS name names no token */
    req_exts(f, 0, nids, values);
    assert_int_equal(check_req(f), 2);
    tpu_expect(f->v, "request subjectAltName has no hardwareModuleName otherName");
    tm_profile_free(open);
}

static void test_san_not_critical_with_empty_subject(void **state)
{
    fixture *f = *state;
    X509_NAME *empty = X509_NAME_new();

    assert_true(X509_set_subject_name(f->cert, empty));
    X509_NAME_free(empty);
    assert_int_equal(check_cert(f), 2);
    tpu_expect(f->v, "subjectAltName is not critical although the subject is empty");
    tpu_expect(f->v, "certificate subject has no serialNumber");
}

/* ---- purpose ---- */

static void test_key_usage_matches_no_purpose(void **state)
{
    fixture *f = *state;
    static const int nids[] = {NID_key_usage, NID_ext_key_usage, 0};
    static const char *const values[] = {"critical,digitalSignature,keyEncipherment", "clientAuth"};

    req_exts(f, 1, nids, values);
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "purpose: keyUsage digitalSignature,keyEncipherment with extendedKeyUsage "
                     "clientAuth does not match any purpose of the profile for ec keys (the "
                     "profile's purposes: auth, sign, encrypt)");
}

static void test_extended_key_usage_matches_no_purpose(void **state)
{
    fixture *f = *state;

    tpu_cert_set_ext(f->cert, f->ca, NID_ext_key_usage, "clientAuth,serverAuth");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "purpose: keyUsage digitalSignature with extendedKeyUsage "
                     "clientAuth,serverAuth does not match any purpose");
}

static void test_no_key_usage(void **state)
{
    fixture *f = *state;
    static const int nids[] = {0};

    req_exts(f, 1, nids, NULL);
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "purpose: no keyUsage (the profile's purposes: auth, sign, encrypt)");
}

/* ---- extensions ---- */

static void test_extension_the_profile_does_not_define(void **state)
{
    fixture *f = *state;

    tpu_cert_set_ext(f->cert, f->ca, NID_netscape_comment, "hello");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate has extension nsComment, which the profile does not define");
}

static void test_request_asks_for_ca(void **state)
{
    fixture *f = *state;
    static const int nids[] = {NID_key_usage, NID_ext_key_usage, NID_basic_constraints, 0};
    static const char *const values[] = {"critical,digitalSignature", "clientAuth",
                                         "critical,CA:TRUE"};

    req_exts(f, 1, nids, values);
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "request asks for basicConstraints CA:TRUE");
}

static void test_request_attribute(void **state)
{
    fixture *f = *state;

    assert_true(X509_REQ_add1_attr_by_NID(f->req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                          (const unsigned char *)"s3cret", -1));
    assert_int_equal(check_req(f), 1);
    tpu_expect(f->v, "request has attribute challengePassword: the profile allows only the "
                     "extension request");
    /* the value is never shown: it may be a secret */
    assert_null(strstr(tm_violations_get(f->v, 0), "s3cret"));
}

static void test_basic_constraints(void **state)
{
    fixture *f = *state;

    tpu_cert_set_ext(f->cert, f->ca, NID_basic_constraints, NULL);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "basicConstraints missing or not critical CA:FALSE (found: none)");

    tpu_cert_set_ext(f->cert, f->ca, NID_basic_constraints, "CA:FALSE");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "basicConstraints missing or not critical CA:FALSE (found: not critical)");

    tpu_cert_set_ext(f->cert, f->ca, NID_basic_constraints, "critical,CA:TRUE");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "basicConstraints missing or not critical CA:FALSE (found: CA:TRUE)");
}

static void test_key_identifiers(void **state)
{
    fixture *f = *state;

    tpu_cert_set_ext(f->cert, f->ca, NID_subject_key_identifier, NULL);
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "subjectKeyIdentifier missing");
    tpu_cert_set_ext(f->cert, f->ca, NID_authority_key_identifier, NULL);
    tm_violations_free(f->v);
    f->v = tm_violations_new();
    assert_int_equal(check_cert(f), 2);
    tpu_expect(f->v, "authorityKeyIdentifier missing");
}

/* ---- certificate serial, version, validity ---- */

static void set_cert_serial(X509 *cert, const char *hex)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai;

    assert_true(BN_hex2bn(&bn, hex));
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_true(X509_set_serialNumber(cert, ai));
    ASN1_INTEGER_free(ai);
    BN_free(bn);
}

static void test_certificate_serial_number_size(void **state)
{
    fixture *f = *state;

    /* 200 bits */
    set_cert_serial(f->cert, "80000000000000000000000000000000000000000000000001");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate serial number has 200 bits: the profile wants 64 to 159");

    set_cert_serial(f->cert, "DEADBEEF");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate serial number has 32 bits");

    set_cert_serial(f->cert, "-4000000000000000000000000000000000000001");
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate serial number is negative");

    /* the edges: 64 and 159 bits conform */
    tm_violations_free(f->v);
    f->v = tm_violations_new();
    set_cert_serial(f->cert, "8000000000000001");
    assert_int_equal(check_cert(f), 0);
    set_cert_serial(f->cert, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
    assert_int_equal(check_cert(f), 0);
}

static void test_certificate_version(void **state)
{
    fixture *f = *state;

    assert_true(X509_set_version(f->cert, X509_VERSION_1));
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "certificate is version 1: the profile needs version 3");
}

static void test_validity_too_long(void **state)
{
    fixture *f = *state;

    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(f->cert), 4000, 0, NULL));
    assert_int_equal(check_cert(f), 1);
    tpu_expect(f->v, "validity: the certificate is valid for 4000 days 0 h 0 min (until ");
    tpu_expect(f->v, "the profile allows at most 3650 days");
}

static void test_validity_no_expiry(void **state)
{
    fixture *f = *state;
    tm_profile *forever = tpu_profile_text(
        "[profile]\ndefault_purpose = auth\npurposes = pp\n"
        "hw_type = 2.25.306879213863795936203097792690857128826.1\nvalidity_days = no_expiry\n"
        "[pp]\nauth = pa\n[pa]\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n");
    X509 *cert;

    assert_int_equal(tm_profile_check_cert(forever, f->cert, f->v), 1);
    tpu_expect(f->v, "the profile wants no expiry (GeneralizedTime 99991231235959Z");
    /* and what tm_profile_issue makes under that profile conforms */
    cert = tpu_issue(forever, f->req, f->ca_key, f->ca);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(cert)), V_ASN1_GENERALIZEDTIME);
    assert_memory_equal(ASN1_STRING_get0_data(X509_get0_notAfter(cert)), "99991231235959Z", 15);
    assert_int_equal(tm_profile_check_cert(forever, cert, f->v), 0);
    X509_free(cert);
    tm_profile_free(forever);
}

static void test_every_violation_reported(void **state)
{
    fixture *f = *state;
    tm_binding b;

    add_subject(X509_get_subject_name(f->cert), "CN", "Alice");
    tpu_cert_set_ext(f->cert, f->ca, NID_basic_constraints, NULL);
    tpu_cert_set_ext(f->cert, f->ca, NID_key_usage, "critical,keyCertSign");
    assert_int_equal(check_cert(f), 3);
    assert_int_equal(tm_violations_count(f->v), 3);
    tpu_expect(f->v, "CN=Alice");
    tpu_expect(f->v, "basicConstraints");
    tpu_expect(f->v, "keyUsage keyCertSign");
    /* the binding itself is intact: readers still name the token */
    assert_true(tm_binding_from_cert(f->p, f->cert, &b, NULL));
    assert_string_equal(b.serial_text, SERIAL);
    assert_string_equal(b.purpose, "");
}

static void test_violation_list(void **state)
{
    tm_violations *v = tm_violations_new();
    char buf[32];

    assert_int_equal(tm_violations_count(v), 0);
    assert_null(tm_violations_get(v, 0));
    tm_violations_add(v, "first %d", 1);
    tm_violations_add(v, "second");
    assert_int_equal(tm_violations_count(v), 2);
    assert_string_equal(tm_violations_get(v, 1), "second");
    tm_violations_join(v, buf, sizeof(buf));
    assert_string_equal(buf, "first 1; second");
    tm_violations_join(v, buf, 8);
    assert_string_equal(buf, "first 1");
    tm_violations_free(v);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_personal_name_in_subject),
        T(test_size_bounds_exactly_and_over),
        T(test_64k_request_refused_by_default),
        T(test_email_in_subject),
        T(test_other_attribute_in_subject),
        T(test_organisation_attribute_not_allowed),
        T(test_subject_without_serial_number),
        T(test_subject_with_two_serial_numbers),
        T(test_serial_number_not_in_encoding),
        T(test_serial_number_not_printable_string),
        T(test_no_subject_alt_name),
        T(test_serial_mismatch),
        T(test_hardware_module_name_malformed),
        T(test_two_hardware_module_names),
        T(test_unknown_hw_type),
        T(test_email_in_subject_alt_name),
        T(test_dns_name_only_when_allowed),
        T(test_san_not_critical_with_empty_subject),
        T(test_key_usage_matches_no_purpose),
        T(test_extended_key_usage_matches_no_purpose),
        T(test_no_key_usage),
        T(test_extension_the_profile_does_not_define),
        T(test_request_asks_for_ca),
        T(test_request_attribute),
        T(test_basic_constraints),
        T(test_key_identifiers),
        T(test_certificate_serial_number_size),
        T(test_certificate_version),
        T(test_validity_too_long),
        T(test_validity_no_expiry),
        T(test_every_violation_reported),
        cmocka_unit_test(test_violation_list),
        cmocka_unit_test(test_bound_out_of_range_is_a_config_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
