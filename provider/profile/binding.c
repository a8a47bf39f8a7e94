/*
 * Reading the binding back: subject serialNumber, SAN hardwareModuleName and
 * purpose. A binding is consistent when the decoded subject serialNumber and
 * hwSerialNum are the same bytes.
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>

/* subject serialNumber -> out->serial_text; its decoded bytes into raw. */
static size_t read_subject_serial(const tm_view *v, tm_binding *out, unsigned char *raw,
                                  size_t *raw_len, tm_violations *errors)
{
    const X509_NAME *name = v->subject;
    int idx = -1, first = -1, count = 0;
    const ASN1_STRING *s;
    char shown[TM_SERIAL_TEXT_MAX + 16];

    while ((idx = X509_NAME_get_index_by_NID(name, NID_serialNumber, idx)) >= 0) {
        if (first < 0)
            first = idx;
        count++;
    }
    if (count == 0) {
        tm_violations_add(errors,
                          "%s subject has no serialNumber: the profile binds every %s to "
                          "a token serial",
                          v->what, v->what);
        return 1;
    }
    if (count > 1) {
        tm_violations_add(errors,
                          "%s subject has %d serialNumber attributes: the profile wants "
                          "exactly one",
                          v->what, count);
        return 1;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, first));
    tm_asn1_string_text(s, shown, sizeof(shown));
    if (ASN1_STRING_type(s) != V_ASN1_PRINTABLESTRING) {
        tm_violations_add(errors,
                          "subject serialNumber %s is a %s: the profile wants a "
                          "PrintableString",
                          shown, ASN1_tag2str(ASN1_STRING_type(s)));
        return 1;
    }
    if (ASN1_STRING_length(s) <= 0 || ASN1_STRING_length(s) > TM_SERIAL_TEXT_MAX ||
        (*raw_len = tm_serial_decode((const char *)ASN1_STRING_get0_data(s),
                                     (size_t)ASN1_STRING_length(s), raw, TM_SERIAL_MAX)) == 0) {
        tm_violations_add(errors,
                          "subject serialNumber \"%s\" is not a serial in the profile's "
                          "encoding (bytes outside PrintableString and '?' are written "
                          "?XX with upper-case hex)",
                          shown);
        return 1;
    }
    memcpy(out->serial_text, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    out->serial_text[ASN1_STRING_length(s)] = '\0';
    return 0;
}

static size_t read_san(const tm_view *v, tm_binding *out, tm_violations *errors)
{
    GENERAL_NAMES *gens;
    int crit = -1, i, count = 0;
    const GENERAL_NAME *hw = NULL;
    char why[128];
    size_t n = 0;

    gens = X509V3_get_d2i(v->exts, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        if (crit == -1)
            tm_violations_add(errors,
                              "%s has no subjectAltName: the profile needs the "
                              "hardwareModuleName otherName naming the token",
                              v->what);
        else if (crit == -2)
            tm_violations_add(errors, "%s has more than one subjectAltName extension", v->what);
        else
            tm_violations_add(errors, "%s subjectAltName cannot be decoded: not DER GeneralNames",
                              v->what);
        return 1;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (tm_gn_is_hwmn(gn)) {
            hw = gn;
            count++;
        }
    }
    if (count != 1) {
        if (count == 0)
            tm_violations_add(errors,
                              "%s subjectAltName has no hardwareModuleName otherName "
                              "(1.3.6.1.5.5.7.8.4): nothing names the token",
                              v->what);
        else
            tm_violations_add(errors,
                              "%s subjectAltName has %d hardwareModuleName entries: the "
                              "profile wants exactly one",
                              v->what, count);
        n++;
    } else if (!tm_hwmn_decode(hw, out->hw_type, sizeof(out->hw_type), out->serial,
                               &out->serial_len, why, sizeof(why))) {
        tm_violations_add(errors,
                          "SAN hardwareModuleName is not DER SEQUENCE { hwType OBJECT "
                          "IDENTIFIER, hwSerialNum OCTET STRING }: %s",
                          why);
        out->hw_type[0] = '\0';
        out->serial_len = 0;
        n++;
    }
    GENERAL_NAMES_free(gens);
    return n;
}

static unsigned int ku_bits(const ASN1_BIT_STRING *bs)
{
    unsigned int ku = 0;

    if (bs->length > 0)
        ku = bs->data[0];
    if (bs->length > 1)
        ku |= (unsigned int)bs->data[1] << 8;
    if (bs->length > 2)
        ku |= 0x10000; /* bits the profile cannot name: never matches */
    return ku;
}

const tm_purpose *tm_view_purpose(const tm_profile *p, const tm_view *v, char *why, size_t len)
{
    ASN1_BIT_STRING *ku = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    int crit = -1, ecrit = -1;
    const tm_purpose *pu = NULL;
    enum tm_key_class kc = tm_key_class_of(v->pkey);

    why[0] = '\0';
    ku = X509V3_get_d2i(v->exts, NID_key_usage, &crit, NULL);
    eku = X509V3_get_d2i(v->exts, NID_ext_key_usage, &ecrit, NULL);
    if (ku == NULL) {
        snprintf(why, len, "%s",
                 crit == -1   ? "no keyUsage"
                 : crit == -2 ? "keyUsage appears more than once"
                              : "keyUsage cannot be decoded");
        goto out;
    }
    if (eku == NULL && ecrit != -1) {
        snprintf(why, len, "%s",
                 ecrit == -2 ? "extendedKeyUsage appears more than once"
                             : "extendedKeyUsage cannot be decoded");
        goto out;
    }
    if (v->pkey == NULL) {
        snprintf(why, len, "the public key cannot be decoded");
        goto out;
    }
    pu = tm_purpose_match(p, kc, ku_bits(ku), eku);
    if (pu == NULL) {
        char kus[160], ekus[300] = "";
        int i, used = 0;
        tm_ku_text(ku_bits(ku), kus, sizeof(kus));
        for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku) && used < 150; i++) {
            char o[64];
            tm_obj_text(sk_ASN1_OBJECT_value(eku, i), o, sizeof(o));
            used += snprintf(ekus + used, sizeof(ekus) - (size_t)used, "%s%s", i ? "," : "", o);
        }
        snprintf(why, len,
                 "keyUsage %s with %s%s does not match any purpose of the profile for "
                 "%s keys",
                 kus, eku ? "extendedKeyUsage " : "no extendedKeyUsage", ekus,
                 tm_key_class_name(kc));
    }
out:
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return pu;
}

size_t tm_binding_read(const tm_profile *p, const tm_view *v, tm_binding *out,
                       tm_violations *errors)
{
    unsigned char raw[TM_SERIAL_MAX];
    size_t raw_len = 0, n = 0;
    int have_subject;

    memset(out, 0, sizeof(*out));
    have_subject = read_subject_serial(v, out, raw, &raw_len, errors) == 0;
    n += !have_subject;
    n += read_san(v, out, errors);
    if (n == 0 && (raw_len != out->serial_len || memcmp(raw, out->serial, raw_len) != 0)) {
        char hw[TM_SERIAL_TEXT_MAX + 1] = "";
        tm_serial_encode(out->serial, out->serial_len, hw, sizeof(hw));
        tm_violations_add(errors, "SAN hwSerialNum %s differs from subject serialNumber %s", hw,
                          out->serial_text);
        n++;
    }
    if (p != NULL && v->exts != NULL) {
        char why[256];
        const tm_purpose *pu = tm_view_purpose(p, v, why, sizeof(why));
        if (pu != NULL)
            snprintf(out->purpose, sizeof(out->purpose), "%s", pu->name);
    }
    return n;
}

int tm_binding_names_serial(const tm_binding *b, const unsigned char *serial, size_t len)
{
    return_val_if_fail(b != NULL, 0);
    return serial != NULL && len > 0 && b->serial_len == len && memcmp(b->serial, serial, len) == 0;
}

/* The entry points that decode something keep libcrypto errors raised inside
 * to themselves: the caller's own error queue is left as it was. The DER ones
 * are built from public calls that already do. */
int tm_binding_from_req(const tm_profile *p, const X509_REQ *req, tm_binding *out,
                        tm_violations *errors)
{
    tm_view v;
    size_t n = 1;

    return_val_if_fail(req != NULL && out != NULL, 0);
    memset(out, 0, sizeof(*out));
    ERR_set_mark();
    if (tm_view_from_req(&v, req, errors))
        n = tm_binding_read(p, &v, out, errors);
    tm_view_clear(&v);
    ERR_pop_to_mark();
    return n == 0;
}

int tm_binding_from_cert(const tm_profile *p, const X509 *cert, tm_binding *out,
                         tm_violations *errors)
{
    tm_view v;
    size_t n;

    return_val_if_fail(cert != NULL && out != NULL, 0);
    ERR_set_mark();
    tm_view_from_cert(&v, cert);
    n = tm_binding_read(p, &v, out, errors);
    tm_view_clear(&v);
    ERR_pop_to_mark();
    return n == 0;
}

int tm_binding_from_tbs(const tm_profile *p, const unsigned char *der, size_t der_len,
                        tm_binding *out, tm_violations *errors)
{
    X509 *x;
    int ok = 0;

    return_val_if_fail(out != NULL, 0);
    memset(out, 0, sizeof(*out));
    x = tm_tbs_parse(der, der_len, errors);
    if (x != NULL)
        ok = tm_binding_from_cert(p, x, out, errors);
    X509_free(x);
    return ok;
}

int tm_binding_from_req_info(const tm_profile *p, const unsigned char *der, size_t der_len,
                             tm_binding *out, tm_violations *errors)
{
    X509_REQ *r;
    int ok = 0;

    return_val_if_fail(out != NULL, 0);
    memset(out, 0, sizeof(*out));
    r = tm_req_info_parse(der, der_len, errors);
    if (r != NULL)
        ok = tm_binding_from_req(p, r, out, errors);
    X509_REQ_free(r);
    return ok;
}
