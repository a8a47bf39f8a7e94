/*
 * Checking a request or certificate against the profile: every violation is
 * reported, one sentence each, so one run tells the operator everything.
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>

static int personal_nid(int nid)
{
    switch (nid) {
    case NID_commonName:
    case NID_pkcs9_emailAddress:
    case NID_givenName:
    case NID_surname:
    case NID_userId:
    case NID_initials:
    case NID_pseudonym:
    case NID_generationQualifier:
    case NID_name:
    case NID_title:
    case NID_dnQualifier:
    case NID_streetAddress:
    case NID_postalAddress:
    case NID_postalCode:
    case NID_telephoneNumber:
    case NID_Domain:
    case NID_domainComponent:
        return 1;
    default:
        return 0;
    }
}

static size_t check_subject(const tm_profile *p, const tm_view *v, tm_violations *errors)
{
    int i, count = X509_NAME_entry_count(v->subject);
    size_t n = 0;

    for (i = 0; i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(v->subject, i);
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
        int nid = OBJ_obj2nid(obj);
        unsigned int attr = nid == NID_countryName              ? TM_ATTR_C
                            : nid == NID_organizationName       ? TM_ATTR_O
                            : nid == NID_organizationalUnitName ? TM_ATTR_OU
                                                                : 0;
        char type[64], value[96];

        if (nid == NID_serialNumber)
            continue;
        if (attr != 0 && (p->allowed_attrs & attr))
            continue;
        tm_obj_text(obj, type, sizeof(type));
        tm_asn1_string_text(X509_NAME_ENTRY_get_data(e), value, sizeof(value));
        if (personal_nid(nid))
            tm_violations_add(errors, "subject has %s=%s: the profile allows no personal name",
                              type, value);
        else if (attr != 0)
            tm_violations_add(errors,
                              "subject has %s=%s: the profile does not allow %s "
                              "(allowed_subject_attributes)",
                              type, value, type);
        else
            tm_violations_add(errors,
                              "subject has %s=%s: the profile allows only serialNumber "
                              "and the organisation attributes O, OU, C",
                              type, value);
        n++;
    }
    return n;
}

static unsigned int san_bit(int type, const char **label)
{
    switch (type) {
    case GEN_EMAIL:
        *label = "email";
        return TM_SAN_EMAIL;
    case GEN_DNS:
        *label = "DNS";
        return TM_SAN_DNS;
    case GEN_URI:
        *label = "URI";
        return TM_SAN_URI;
    case GEN_IPADD:
        *label = "IP";
        return TM_SAN_IP;
    case GEN_DIRNAME:
        *label = "dirName";
        return TM_SAN_DIRNAME;
    case GEN_RID:
        *label = "RID";
        return TM_SAN_RID;
    case GEN_OTHERNAME:
        *label = "otherName";
        return TM_SAN_OTHERNAME;
    default:
        *label = "x400Address/ediPartyName";
        return 0;
    }
}

static size_t check_san(const tm_profile *p, const tm_view *v, tm_violations *errors)
{
    int crit = -1, i;
    GENERAL_NAMES *gens = X509V3_get_d2i(v->exts, NID_subject_alt_name, &crit, NULL);
    size_t n = 0;

    if (gens == NULL)
        return 0; /* the binding reader already said why */
    if (X509_NAME_entry_count(v->subject) == 0 && !crit) {
        tm_violations_add(errors, "subjectAltName is not critical although the subject is empty "
                                  "(RFC 5280 4.2.1.6)");
        n++;
    }
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        const char *label;
        unsigned int bit;
        char shown[128];

        if (tm_gn_is_hwmn(gn))
            continue;
        bit = san_bit(gn->type, &label);
        if (bit != 0 && (p->allowed_san & bit))
            continue;
        tm_gn_text(gn, shown, sizeof(shown));
        if (gn->type == GEN_EMAIL || gn->type == GEN_URI || gn->type == GEN_DIRNAME)
            tm_violations_add(errors,
                              "SAN has %s: the profile allows no personal name (add %s "
                              "to allowed_san_types to permit it)",
                              shown, label);
        else
            tm_violations_add(errors,
                              "SAN has %s: the profile allows no %s names "
                              "(allowed_san_types)",
                              shown, label);
        n++;
    }
    GENERAL_NAMES_free(gens);
    return n;
}

static size_t check_hw_type(const tm_profile *p, const tm_binding *b, tm_violations *errors)
{
    size_t i;

    if (b->hw_type[0] == '\0')
        return 0;
    for (i = 0; i < p->hwtype_count; i++)
        if (strcmp(p->hwtypes[i].oid, b->hw_type) == 0)
            return 0;
    tm_violations_add(errors,
                      "SAN hwType %s is not a hardware type of the profile (hw_type, "
                      "hw_type_models)",
                      b->hw_type);
    return 1;
}

static size_t check_purpose(const tm_profile *p, const tm_view *v, tm_violations *errors)
{
    char why[400], list[256] = "";
    size_t i;

    if (tm_view_purpose(p, v, why, sizeof(why)) != NULL)
        return 0;
    for (i = 0; i < p->purpose_count; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 p->purposes[i].name);
    tm_violations_add(errors, "purpose: %s (the profile's purposes: %s)", why, list);
    return 1;
}

/* Extensions a request may ask for / a certificate may carry. */
static int ext_allowed(int nid, int is_cert)
{
    switch (nid) {
    case NID_subject_alt_name:
    case NID_key_usage:
    case NID_ext_key_usage:
    case NID_basic_constraints:
    case NID_subject_key_identifier:
        return 1;
    /* the CA's own pointers: they name the CA, never the holder */
    case NID_authority_key_identifier:
    case NID_crl_distribution_points:
    case NID_freshest_crl:
    case NID_info_access:
    case NID_certificate_policies:
    case NID_issuer_alt_name:
        return is_cert;
    default:
        return 0;
    }
}

static size_t check_extensions(const tm_view *v, tm_violations *errors)
{
    int i, j, num = sk_X509_EXTENSION_num(v->exts);
    size_t n = 0;

    for (i = 0; i < num; i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(v->exts, i);
        const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
        int nid = OBJ_obj2nid(obj);
        char name[64];

        tm_obj_text(obj, name, sizeof(name));
        if (!ext_allowed(nid, v->cert != NULL)) {
            tm_violations_add(errors, "%s has extension %s%s, which the profile does not define",
                              v->what, name, X509_EXTENSION_get_critical(ext) ? " (critical)" : "");
            n++;
            continue;
        }
        for (j = 0; j < i; j++)
            if (OBJ_cmp(obj, X509_EXTENSION_get_object(sk_X509_EXTENSION_value(v->exts, j))) == 0)
                break;
        /* a second SAN, keyUsage or EKU was reported by the binding and purpose readers */
        if (j < i && nid != NID_subject_alt_name && nid != NID_key_usage &&
            nid != NID_ext_key_usage) {
            tm_violations_add(errors, "%s has extension %s more than once", v->what, name);
            n++;
        }
    }
    if (v->cert == NULL) {
        int crit = -1;
        BASIC_CONSTRAINTS *bc = X509V3_get_d2i(v->exts, NID_basic_constraints, &crit, NULL);
        if (bc != NULL && bc->ca) {
            tm_violations_add(errors, "request asks for basicConstraints CA:TRUE: the profile "
                                      "issues end-entity certificates (CA:FALSE) only");
            n++;
        }
        BASIC_CONSTRAINTS_free(bc);
    }
    return n;
}

/* A request carries {public key, serial, purpose} and nothing else (claim 7):
 * any attribute besides the extension request is refused. The value is not
 * shown: it may be a challengePassword. */
static size_t check_req_attributes(const X509_REQ *req, tm_violations *errors)
{
    int i, count = X509_REQ_get_attr_count(req);
    size_t n = 0;

    for (i = 0; i < count; i++) {
        const ASN1_OBJECT *obj = X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, i));
        int nid = OBJ_obj2nid(obj);
        char name[64];

        if (nid == NID_ext_req || nid == NID_ms_ext_req)
            continue;
        tm_obj_text(obj, name, sizeof(name));
        tm_violations_add(errors,
                          "request has attribute %s: the profile allows only the "
                          "extension request (no other data travels with the key)",
                          name);
        n++;
    }
    return n;
}

/* Size bounds, before anything else reads the fields: a request with 70 OUs
 * made a 4.7 KB index line once. */
static size_t check_bounds(const tm_profile *p, const tm_view *v, tm_violations *errors)
{
    int count = X509_NAME_entry_count(v->subject);
    int sbytes = i2d_X509_NAME(v->subject, NULL);
    int rbytes = v->req != NULL ? i2d_X509_REQ(v->req, NULL) : 0;
    size_t n = 0;

    /* an unsigned template (CMP ir/cr) has no whole encoding: its info */
    if (v->req != NULL && rbytes < 0)
        rbytes = i2d_re_X509_REQ_tbs((X509_REQ *)v->req, NULL);

    if (count > p->max_subject_attributes) {
        tm_violations_add(errors,
                          "subject has %d attributes: the profile allows at most %ld "
                          "(max_subject_attributes)",
                          count, p->max_subject_attributes);
        n++;
    }
    if (sbytes < 0 || sbytes > p->max_subject_bytes) {
        tm_violations_add(errors,
                          "subject is %d bytes (DER): the profile allows at most %ld "
                          "(max_subject_bytes)",
                          sbytes, p->max_subject_bytes);
        n++;
    }
    if (v->req != NULL && (rbytes < 0 || rbytes > p->max_request_bytes)) {
        tm_violations_add(errors,
                          "request is %d bytes (DER): the profile allows at most %ld "
                          "(max_request_bytes)",
                          rbytes, p->max_request_bytes);
        n++;
    }
    return n;
}

size_t tm_check_view(const tm_profile *p, const tm_view *v, tm_binding *binding,
                     tm_violations *errors)
{
    tm_binding local, *b = binding != NULL ? binding : &local;
    size_t n;

    n = check_bounds(p, v, errors);
    if (n > 0)
        return n; /* nothing oversized is read further */
    n = tm_binding_read(p, v, b, errors);
    n += check_subject(p, v, errors);
    n += check_san(p, v, errors);
    n += check_hw_type(p, b, errors);
    n += check_purpose(p, v, errors);
    n += check_extensions(v, errors);
    if (v->req != NULL)
        n += check_req_attributes(v->req, errors);
    return n;
}

static void time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;

    snprintf(buf, len, "(unreadable)");
    if (bio != NULL && t != NULL && ASN1_TIME_print(bio, t)) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0)
            snprintf(buf, len, "%.*s", (int)n, data);
    }
    BIO_free(bio);
}

static size_t check_validity(const tm_profile *p, const X509 *cert, tm_violations *errors)
{
    const ASN1_TIME *nb = X509_get0_notBefore(cert), *na = X509_get0_notAfter(cert);
    int days = 0, secs = 0;
    char after[64];

    if (nb == NULL || na == NULL || !ASN1_TIME_diff(&days, &secs, nb, na)) {
        tm_violations_add(errors, "validity: the dates cannot be read");
        return 1;
    }
    time_text(na, after, sizeof(after));
    if (days < 0 || secs < 0) {
        tm_violations_add(errors, "validity: notAfter %s is before notBefore", after);
        return 1;
    }
    if (p->no_expiry) {
        if (ASN1_STRING_type(na) != V_ASN1_GENERALIZEDTIME || ASN1_STRING_length(na) != 15 ||
            memcmp(ASN1_STRING_get0_data(na), "99991231235959Z", 15) != 0) {
            tm_violations_add(errors,
                              "validity: notAfter is %s: the profile wants no expiry "
                              "(GeneralizedTime 99991231235959Z, IEEE 802.1AR)",
                              after);
            return 1;
        }
        return 0;
    }
    if (days > p->validity_days || (days == p->validity_days && secs > 0)) {
        tm_violations_add(errors,
                          "validity: the certificate is valid for %d days %d h %d min (until %s): "
                          "the profile allows at most %ld days",
                          days, secs / 3600, secs % 3600 / 60, after, p->validity_days);
        return 1;
    }
    return 0;
}

static size_t check_serial(const X509 *cert, tm_violations *errors)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    size_t n = 0;
    int bits;

    if (bn == NULL) {
        tm_violations_add(errors, "certificate serial number cannot be read");
        return 1;
    }
    bits = BN_num_bits(bn);
    if (BN_is_negative(bn) || BN_is_zero(bn)) {
        tm_violations_add(errors,
                          "certificate serial number is %s: the profile wants a positive "
                          "random number of 64 to 159 bits",
                          BN_is_zero(bn) ? "zero" : "negative");
        n++;
    } else if (bits < 64 || bits > 159) {
        tm_violations_add(errors,
                          "certificate serial number has %d bits: the profile wants 64 "
                          "to 159",
                          bits);
        n++;
    }
    BN_free(bn);
    return n;
}

size_t tm_check_cert_only(const tm_profile *p, X509 *cert, tm_violations *errors)
{
    size_t n = 0;
    int crit = -1;
    BASIC_CONSTRAINTS *bc;
    void *id;

    if (X509_get_version(cert) != X509_VERSION_3) {
        tm_violations_add(errors, "certificate is version %ld: the profile needs version 3",
                          X509_get_version(cert) + 1);
        n++;
    }
    n += check_serial(cert, errors);
    bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    if (bc == NULL || crit != 1 || bc->ca || bc->pathlen != NULL) {
        tm_violations_add(errors, "basicConstraints missing or not critical CA:FALSE (found: %s)",
                          bc == NULL  ? (crit == -1 ? "none" : "undecodable or repeated")
                          : bc->ca    ? "CA:TRUE"
                          : crit != 1 ? "not critical"
                                      : "a pathLenConstraint");
        n++;
    }
    BASIC_CONSTRAINTS_free(bc);
    id = X509_get_ext_d2i(cert, NID_subject_key_identifier, &crit, NULL);
    if (id == NULL) {
        tm_violations_add(errors, "subjectKeyIdentifier missing: the profile wants one (RFC 5280 "
                                  "4.2.1.2)");
        n++;
    }
    ASN1_OCTET_STRING_free(id);
    id = X509_get_ext_d2i(cert, NID_authority_key_identifier, &crit, NULL);
    if (id == NULL) {
        tm_violations_add(errors, "authorityKeyIdentifier missing: the profile wants one naming "
                                  "the issuing CA key (RFC 5280 4.2.1.1)");
        n++;
    }
    AUTHORITY_KEYID_free(id);
    n += check_validity(p, cert, errors);
    n += tm_urls_check_cert(p, cert, errors);
    return n;
}

/* The entry points that decode something keep libcrypto errors raised inside
 * to themselves: the caller's own error queue is left as it was. The DER ones
 * are built from public calls that already do. */
size_t tm_profile_check_req(const tm_profile *p, const X509_REQ *req, tm_violations *errors)
{
    tm_view v;
    size_t n = 1;

    if (p == NULL || req == NULL) {
        tm_violations_add(errors, "tm_profile_check_req: no profile or no request to check");
        return 1;
    }
    ERR_set_mark();
    if (tm_view_from_req(&v, req, errors))
        n = tm_check_view(p, &v, NULL, errors);
    tm_view_clear(&v);
    ERR_pop_to_mark();
    return n;
}

size_t tm_profile_check_cert(const tm_profile *p, const X509 *cert, tm_violations *errors)
{
    tm_view v;
    size_t n;

    if (p == NULL || cert == NULL) {
        tm_violations_add(errors, "tm_profile_check_cert: no profile or no certificate to check");
        return 1;
    }
    ERR_set_mark();
    tm_view_from_cert(&v, cert);
    n = tm_check_view(p, &v, NULL, errors);
    n += tm_check_cert_only(p, (X509 *)cert, errors);
    tm_view_clear(&v);
    ERR_pop_to_mark();
    return n;
}

size_t tm_profile_check_tbs(const tm_profile *p, const unsigned char *der, size_t der_len,
                            tm_violations *errors)
{
    X509 *x;
    size_t n;

    if (p == NULL) {
        tm_violations_add(errors, "tm_profile_check_tbs: no profile to check against");
        return 1;
    }
    x = tm_tbs_parse(der, der_len, errors);
    if (x == NULL)
        return 1;
    n = tm_profile_check_cert(p, x, errors);
    X509_free(x);
    return n;
}

size_t tm_profile_check_req_info(const tm_profile *p, const unsigned char *der, size_t der_len,
                                 tm_violations *errors)
{
    X509_REQ *r;
    size_t n;

    if (p == NULL) {
        tm_violations_add(errors, "tm_profile_check_req_info: no profile to check against");
        return 1;
    }
    r = tm_req_info_parse(der, der_len, errors);
    if (r == NULL)
        return 1;
    n = tm_profile_check_req(p, r, errors);
    X509_REQ_free(r);
    return n;
}
