/*
 * A certificate in words, with the serial binding decoded (OpenSSL 3.0
 * prints hardwareModuleName as <unsupported>). Used by show and verify.
 */
#include "ui/ui.h"

#include <string.h>

#include <openssl/x509v3.h>

static void print_time(FILE *out, const char *what, const ASN1_TIME *t)
{
    BIO *b = BIO_new_fp(out, BIO_NOCLOSE);
    fprintf(out, "  %-18s", what);
    ASN1_TIME_print(b, t);
    fputc('\n', out);
    BIO_free(b);
}

void tool_describe_cert(FILE *out, const tm_profile *prof, X509 *x)
{
    tm_binding b;
    tm_violations *v = tm_violations_new();
    char *subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    char *iss = X509_NAME_oneline(X509_get_issuer_name(x), NULL, 0);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *sn = bn ? BN_bn2hex(bn) : NULL, oid[128], why[1024];
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char hexbuf[2 * TM_SERIAL_MAX + 1];
    size_t i;

    fprintf(out, "certificate\n");
    fprintf(out, "  %-18s%s\n", "subject", subj ? subj : "?");
    fprintf(out, "  %-18s%s\n", "issuer", iss ? iss : "?");
    fprintf(out, "  %-18s%s\n", "serial number", sn ? sn : "?");
    print_time(out, "not before", X509_get0_notBefore(x));
    print_time(out, "not after", X509_get0_notAfter(x));
    if (pk)
        fprintf(out, "  %-18s%s, %d bits\n", "public key", EVP_PKEY_get0_type_name(pk),
                EVP_PKEY_get_bits(pk));
    if (tm_binding_from_cert(prof, x, &b, v)) {
        const char *name = NULL;
        ASN1_OBJECT *o = OBJ_txt2obj(b.hw_type, 1);
        int nid = o ? OBJ_obj2nid(o) : NID_undef;
        if (nid != NID_undef)
            name = OBJ_nid2sn(nid);
        ASN1_OBJECT_free(o);
        fprintf(out, "  hardwareModuleName (the token this certificate is bound to)\n");
        fprintf(out, "    %-16s%s\n", "token serial", b.serial_text);
        fprintf(out, "    %-16s", "serial bytes");
        p11c_hex_encode(b.serial, b.serial_len, hexbuf, sizeof hexbuf);
        fprintf(out, "%s\n", hexbuf);
        snprintf(oid, sizeof oid, "%s", b.hw_type);
        fprintf(out, "    %-16s%s%s%s%s\n", "hwType", oid, name ? " (" : "", name ? name : "",
                name ? ")" : "");
        fprintf(out, "  %-18s%s\n", "purpose",
                b.purpose[0] ? b.purpose : "(none of the profile's)");
    } else {
        tm_violations_join(v, why, sizeof why);
        fprintf(out, "  not bound to a token: %s\n", why);
    }
    tm_violations_free(v);
    v = tm_violations_new();
    if (tm_profile_check_cert(prof, x, v) == 0) {
        fprintf(out, "  %-18s%s\n", "profile", "conforms");
    } else {
        fprintf(out, "  %-18s%zu violation(s)\n", "profile", tm_violations_count(v));
        for (i = 0; i < tm_violations_count(v); i++)
            fprintf(out, "    - %s\n", tm_violations_get(v, i));
    }
    tm_violations_free(v);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(sn);
    BN_free(bn);
}
