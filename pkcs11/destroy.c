#include "destroy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>

static const char *class_name(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_DATA:
        return "data object";
    case CKO_CERTIFICATE:
        return "certificate";
    case CKO_PUBLIC_KEY:
        return "public key";
    case CKO_PRIVATE_KEY:
        return "private key";
    case CKO_SECRET_KEY:
        return "secret key";
    default:
        return "object";
    }
}

void mod_destroy_describe(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE bs, CK_OBJECT_HANDLE bo,
                          const tm_profile *profile, const unsigned char *serial, size_t serial_len,
                          mod_destroy_info *out)
{
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    CK_ATTRIBUTE ca = {CKA_CLASS, &cls, sizeof(cls)};
    unsigned char *id = NULL, *label = NULL, *value = NULL;
    CK_ULONG id_len = 0, label_len = 0, value_len = 0;
    char id_text[65] = "", cert_text[200] = "";
    int have_class;

    memset(out, 0, sizeof(*out));
    ERR_set_mark();
    have_class = f->C_GetAttributeValue(bs, bo, &ca, 1) == CKR_OK;
    /* Unreadable is as good as empty here: the detail says "(none)". */
    if (p11c_attr_get(f, bs, bo, CKA_ID, &id, &id_len) != CKR_OK)
        id_len = 0;
    if (p11c_attr_get(f, bs, bo, CKA_LABEL, &label, &label_len) != CKR_OK)
        label_len = 0;
    if (id_len > 0)
        p11c_hex_encode(id, id_len > 32 ? 32 : id_len, id_text, sizeof(id_text));
    /* An unreadable class counts as a certificate: the safe answer for a gate. */
    out->is_certificate = !have_class || cls == CKO_CERTIFICATE;
    if (out->is_certificate && p11c_attr_get(f, bs, bo, CKA_VALUE, &value, &value_len) == CKR_OK &&
        value_len > 0) {
        const unsigned char *p = value;
        X509 *x = d2i_X509(NULL, &p, (long)value_len);
        tm_binding b;
        if (x != NULL) {
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
            char *h = bn != NULL ? BN_bn2hex(bn) : NULL;
            memset(&b, 0, sizeof(b));
            if (profile != NULL && tm_binding_from_cert(profile, x, &b, NULL) &&
                tm_binding_names_serial(&b, serial, serial_len))
                out->bound = 1;
            snprintf(cert_text, sizeof(cert_text), " (serial %s%s)", h != NULL ? h : "unreadable",
                     out->bound ? ", bound to this token" : "");
            OPENSSL_free(h);
            BN_free(bn);
            X509_free(x);
        } else {
            snprintf(cert_text, sizeof(cert_text), " (value is not an X.509 certificate)");
        }
    }
    snprintf(out->detail, sizeof(out->detail), "%s%s, CKA_ID %s, label '%.*s'",
             have_class ? class_name(cls) : "object of unreadable class", cert_text,
             id_text[0] ? id_text : "(none)", label_len > 64 ? 64 : (int)label_len,
             label != NULL ? (const char *)label : "");
    ERR_pop_to_mark();
    free(id);
    free(label);
    free(value);
}
