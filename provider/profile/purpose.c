/*
 * Purposes: the patent's "certificate usage information". A purpose is a
 * keyUsage set (per key class) plus an extendedKeyUsage set; a request or
 * certificate names a purpose by carrying exactly that set.
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

static const struct {
    const char *name;
    int bit;           /* bit number in the KeyUsage BIT STRING */
    unsigned int flag; /* KU_* as X509_get_key_usage() reports it */
} ku_names[] = {
    {"digitalSignature", 0, KU_DIGITAL_SIGNATURE},
    {"nonRepudiation", 1, KU_NON_REPUDIATION},
    {"keyEncipherment", 2, KU_KEY_ENCIPHERMENT},
    {"dataEncipherment", 3, KU_DATA_ENCIPHERMENT},
    {"keyAgreement", 4, KU_KEY_AGREEMENT},
    {"keyCertSign", 5, KU_KEY_CERT_SIGN},
    {"cRLSign", 6, KU_CRL_SIGN},
    {"encipherOnly", 7, KU_ENCIPHER_ONLY},
    {"decipherOnly", 8, KU_DECIPHER_ONLY},
};

int tm_ku_from_name(const char *name, unsigned int *flag)
{
    size_t i;

    if (strcmp(name, "contentCommitment") == 0)
        name = "nonRepudiation";
    for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++) {
        if (strcmp(name, ku_names[i].name) == 0) {
            *flag = ku_names[i].flag;
            return 1;
        }
    }
    return 0;
}

void tm_ku_text(unsigned int ku, char *buf, size_t len)
{
    size_t i, used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++) {
        if (ku & ku_names[i].flag) {
            int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", ku_names[i].name);
            if (n < 0 || (size_t)n >= len - used)
                return;
            used += (size_t)n;
        }
    }
    if (used == 0)
        snprintf(buf, len, "(none)");
}

enum tm_key_class tm_key_class_of(const EVP_PKEY *pkey)
{
    if (pkey == NULL)
        return TM_KEY_OTHER;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        return TM_KEY_RSA;
    case EVP_PKEY_EC:
    case EVP_PKEY_X25519:
    case EVP_PKEY_X448:
        return TM_KEY_EC;
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
        return TM_KEY_EDDSA;
    default:
        return TM_KEY_OTHER;
    }
}

const char *tm_key_class_name(enum tm_key_class c)
{
    static const char *names[TM_KEY_CLASSES] = {"other", "rsa", "ec", "eddsa"};
    return names[c];
}

const tm_purpose *tm_profile_find_purpose(const tm_profile *p, const char *name)
{
    size_t i;

    if (p == NULL || name == NULL)
        return NULL;
    for (i = 0; i < p->purpose_count; i++)
        if (strcmp(p->purposes[i].name, name) == 0)
            return &p->purposes[i];
    return NULL;
}

static int eku_equal(const tm_purpose *pu, const EXTENDED_KEY_USAGE *eku)
{
    int i, n = eku == NULL ? 0 : sk_ASN1_OBJECT_num(eku);
    size_t j;

    if ((size_t)n != pu->eku_count)
        return 0;
    for (i = 0; i < n; i++) {
        char txt[64];
        int found = 0;
        if (OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, i), 1) <= 0)
            return 0;
        for (j = 0; j < pu->eku_count; j++)
            found |= strcmp(txt, pu->eku[j]) == 0;
        if (!found)
            return 0; /* same count and every entry known: also rules out duplicates */
    }
    for (j = 0; j < pu->eku_count; j++) {
        int found = 0;
        for (i = 0; i < n; i++) {
            char txt[64];
            if (OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, i), 1) > 0)
                found |= strcmp(txt, pu->eku[j]) == 0;
        }
        if (!found)
            return 0;
    }
    return 1;
}

const tm_purpose *tm_purpose_match(const tm_profile *p, enum tm_key_class kc, unsigned int ku,
                                   const EXTENDED_KEY_USAGE *eku)
{
    size_t i;

    if (p == NULL)
        return NULL;
    for (i = 0; i < p->purpose_count; i++) {
        const tm_purpose *pu = &p->purposes[i];
        if (pu->has_ku[kc] && pu->ku[kc] == ku && eku_equal(pu, eku))
            return pu;
    }
    return NULL;
}

int tm_purpose_add_exts(const tm_purpose *pu, enum tm_key_class kc,
                        STACK_OF(X509_EXTENSION) * *exts, tm_violations *errors)
{
    ASN1_BIT_STRING *bits = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    X509_EXTENSION *ext = NULL;
    size_t i;
    int ok = 0;

    if (!pu->has_ku[kc]) {
        tm_violations_add(errors, "purpose %s is not defined for %s keys in the profile", pu->name,
                          tm_key_class_name(kc));
        goto out;
    }
    bits = ASN1_BIT_STRING_new();
    if (bits == NULL)
        goto oom;
    for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
        if ((pu->ku[kc] & ku_names[i].flag) && !ASN1_BIT_STRING_set_bit(bits, ku_names[i].bit, 1))
            goto oom;
    ext = X509V3_EXT_i2d(NID_key_usage, 1, bits);
    if (ext == NULL || !X509v3_add_ext(exts, ext, -1))
        goto oom;
    X509_EXTENSION_free(ext);
    ext = NULL;
    if (pu->eku_count > 0) {
        eku = sk_ASN1_OBJECT_new_null();
        if (eku == NULL)
            goto oom;
        for (i = 0; i < pu->eku_count; i++) {
            ASN1_OBJECT *o = OBJ_txt2obj(pu->eku[i], 1);
            if (o == NULL || !sk_ASN1_OBJECT_push(eku, o)) {
                ASN1_OBJECT_free(o);
                goto oom;
            }
        }
        ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
        if (ext == NULL || !X509v3_add_ext(exts, ext, -1))
            goto oom;
    }
    ok = 1;
    goto out;
oom:
    tm_violations_add(
        errors, "cannot encode keyUsage/extendedKeyUsage for purpose %s: out of memory", pu->name);
out:
    X509_EXTENSION_free(ext);
    ASN1_BIT_STRING_free(bits);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

size_t tm_profile_purpose_count(const tm_profile *p)
{
    return p == NULL ? 0 : p->purpose_count;
}

const char *tm_profile_purpose_name(const tm_profile *p, size_t i)
{
    if (p == NULL || i >= p->purpose_count)
        return NULL;
    return p->purposes[i].name;
}

const char *tm_profile_default_purpose(const tm_profile *p)
{
    return p == NULL ? NULL : p->default_purpose;
}
