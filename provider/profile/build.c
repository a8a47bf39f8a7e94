/* Building a request's subject and requested extensions for one token. */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>

/* The key class whose keyUsage the request gets. Without a public key the
 * purpose must give every key class the same keyUsage. */
static int pick_class(const tm_purpose *pu, EVP_PKEY *pkey, enum tm_key_class *kc,
                      tm_violations *errors)
{
    int c, first = -1;

    if (pkey != NULL) {
        *kc = tm_key_class_of(pkey);
        if (!pu->has_ku[*kc]) {
            tm_violations_add(errors, "purpose %s is not defined for %s keys in the profile",
                              pu->name, tm_key_class_name(*kc));
            return 0;
        }
        return 1;
    }
    for (c = 0; c < TM_KEY_CLASSES; c++) {
        if (!pu->has_ku[c])
            continue;
        if (first >= 0 && pu->ku[c] != pu->ku[first]) {
            tm_violations_add(errors,
                              "set the request's public key before building it: the "
                              "keyUsage of purpose %s depends on the key type",
                              pu->name);
            return 0;
        }
        if (first < 0)
            first = c;
    }
    *kc = (enum tm_key_class)first;
    return first >= 0;
}

static int add_text(X509_NAME *name, int nid, const char *value)
{
    return value[0] == '\0' || X509_NAME_add_entry_by_NID(name, nid, MBSTRING_ASC,
                                                          (const unsigned char *)value, -1, -1, 0);
}

static void drop_ext_requests(X509_REQ *req)
{
    static const int nids[] = {NID_ext_req, NID_ms_ext_req};
    size_t i;
    int idx;

    for (i = 0; i < sizeof(nids) / sizeof(nids[0]); i++)
        while ((idx = X509_REQ_get_attr_by_NID(req, nids[i], -1)) >= 0)
            X509_ATTRIBUTE_free(X509_REQ_delete_attr(req, idx));
}

static int tm_profile_build_request_impl(const tm_profile *p, X509_REQ *req,
                                         const unsigned char *serial, size_t serial_len,
                                         const char *model, const char *purpose,
                                         tm_violations *errors)
{
    char text[TM_SERIAL_TEXT_MAX + 1];
    size_t text_len;
    const tm_purpose *pu;
    enum tm_key_class kc;
    X509_NAME *name = NULL;
    GENERAL_NAMES *gens = NULL;
    GENERAL_NAME *gn = NULL;
    X509_EXTENSION *san = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    int ok = 0;

    return_val_if_fail(p != NULL && req != NULL, 0);
    if (serial == NULL || serial_len == 0 || serial_len > TM_SERIAL_MAX) {
        tm_violations_add(errors, "token serial has %zu bytes: a binding needs 1 to %d",
                          serial ? serial_len : 0, TM_SERIAL_MAX);
        return 0;
    }
    text_len = tm_serial_encode(serial, serial_len, text, sizeof(text));
    if (text_len == 0 || text_len > 64) {
        tm_violations_add(errors,
                          "token serial encodes to %zu characters: subject serialNumber "
                          "holds at most 64 (X.520)",
                          text_len);
        return 0;
    }
    if (purpose == NULL)
        purpose = p->default_purpose;
    pu = tm_profile_find_purpose(p, purpose);
    if (pu == NULL) {
        char list[256] = "";
        size_t i;
        for (i = 0; i < p->purpose_count; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     p->purposes[i].name);
        tm_violations_add(errors, "purpose %s is not in the profile (%s)", purpose, list);
        return 0;
    }
    if (!pick_class(pu, X509_REQ_get0_pubkey(req), &kc, errors))
        goto out;

    name = X509_NAME_new();
    if (name == NULL || !add_text(name, NID_countryName, p->org_c) ||
        !add_text(name, NID_organizationName, p->org_o) ||
        !add_text(name, NID_organizationalUnitName, p->org_ou) ||
        !add_text(name, NID_serialNumber, text) || !X509_REQ_set_subject_name(req, name)) {
        tm_violations_add(errors, "cannot set the request subject (serialNumber %s)", text);
        goto out;
    }
    gens = GENERAL_NAMES_new();
    if (gens == NULL || !tm_hwmn_encode(tm_profile_hw_type(p, model), serial, serial_len, &gn) ||
        !sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        tm_violations_add(errors, "cannot encode the hardwareModuleName for serial %s", text);
        goto out;
    }
    /* RFC 5280 4.2.1.6: critical only when the subject is empty; ours never is */
    san = X509V3_EXT_i2d(NID_subject_alt_name, X509_NAME_entry_count(name) == 0, gens);
    if (san == NULL || !X509v3_add_ext(&exts, san, -1)) {
        tm_violations_add(errors, "cannot encode the subjectAltName for serial %s", text);
        goto out;
    }
    if (!tm_purpose_add_exts(pu, kc, &exts, errors))
        goto out;
    drop_ext_requests(req);
    if (!X509_REQ_add_extensions(req, exts) || !X509_REQ_set_version(req, X509_REQ_VERSION_1)) {
        tm_violations_add(errors, "cannot add the requested extensions");
        goto out;
    }
    tm_debug("request built: serialNumber %s, purpose %s, hwType %s", text, pu->name,
             tm_profile_hw_type(p, model));
    ok = 1;
out:
    X509_NAME_free(name);
    GENERAL_NAMES_free(gens);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return ok;
}

/* Public entry points: libcrypto errors raised inside stay inside, and the
 * caller's own error queue is left as it was. */
int tm_profile_build_request(const tm_profile *p, X509_REQ *req, const unsigned char *serial,
                             size_t serial_len, const char *model, const char *purpose,
                             tm_violations *errors)
{
    int r;

    ERR_set_mark();
    r = tm_profile_build_request_impl(p, req, serial, serial_len, model, purpose, errors);
    ERR_pop_to_mark();
    return r;
}
