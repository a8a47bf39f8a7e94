/*
 * Fuzz target: arbitrary bytes as the CKA_VALUE of a certificate written to a
 * token. The mock token holds a public key equal to the input's own key when
 * the input parses (so mutated certificates get past key matching) and, for
 * some inputs, a certificate already stored for it and a trusted root, so the
 * later checks run on malformed input too. Built as a libFuzzer target with
 * -DTOKENMINT_FUZZ=ON and clang, and always as a replay program over the seeds
 * written by policy-fuzz-corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "policy.h"

static const unsigned char SERIAL[] = "5a1f0c3e9b2d4411";

static struct {
    unsigned char point[160]; /* DER OCTET STRING around the point */
    CK_ULONG point_len;
    unsigned char n[1024], e[16]; /* RSA */
    CK_ULONG n_len, e_len;
    const unsigned char *value; /* the stored certificate's CKA_VALUE */
    CK_ULONG value_len;
    int have_cert;
    CK_OBJECT_CLASS want;
    int searching, pos;
} tok;

static CK_RV find_init(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_ULONG i;
    if (tok.searching)
        abort(); /* the policy must end every search it starts */
    tok.want = (CK_OBJECT_CLASS)-1;
    for (i = 0; i < n; i++)
        if (t[i].type == CKA_CLASS && t[i].ulValueLen == sizeof(CK_OBJECT_CLASS))
            memcpy(&tok.want, t[i].pValue, sizeof(CK_OBJECT_CLASS));
    tok.searching = 1;
    tok.pos = 0;
    return CKR_OK;
}

static CK_RV find(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n)
{
    *n = 0;
    if (tok.pos++ > 0 || max == 0)
        return CKR_OK;
    if (tok.want == CKO_PUBLIC_KEY && (tok.point_len > 0 || tok.n_len > 0))
        o[(*n)++] = 1;
    else if (tok.want == CKO_CERTIFICATE && tok.have_cert)
        o[(*n)++] = 2;
    return CKR_OK;
}

static CK_RV find_final(CK_SESSION_HANDLE s)
{
    tok.searching = 0;
    return CKR_OK;
}

static CK_RV get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_RV rv = CKR_OK;
    CK_ULONG i;

    for (i = 0; i < n; i++) {
        const void *v = NULL;
        CK_ULONG len = 0;
        if (t[i].type == CKA_ID || t[i].type == CKA_LABEL) {
            v = "k";
            len = 1;
        } else if (h == 1 && t[i].type == CKA_EC_POINT && tok.point_len > 0) {
            v = tok.point;
            len = tok.point_len;
        } else if (h == 1 && t[i].type == CKA_MODULUS && tok.n_len > 0) {
            v = tok.n;
            len = tok.n_len;
        } else if (h == 1 && t[i].type == CKA_PUBLIC_EXPONENT && tok.e_len > 0) {
            v = tok.e;
            len = tok.e_len;
        } else if (h == 2 && t[i].type == CKA_VALUE) {
            v = tok.value;
            len = tok.value_len;
        } else {
            t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            continue;
        }
        if (t[i].pValue != NULL) {
            if (t[i].ulValueLen < len)
                return CKR_BUFFER_TOO_SMALL;
            memcpy(t[i].pValue, v, len);
        }
        t[i].ulValueLen = len;
    }
    return rv;
}

/* The input's own public key, as SoftHSM2 would return it: CKA_EC_POINT in
 * an OCTET STRING (EC, Ed25519), or CKA_MODULUS / CKA_PUBLIC_EXPONENT. */
static void key_from_input(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    X509 *c = d2i_X509(NULL, &p, (long)size);
    EVP_PKEY *pk = c != NULL ? X509_get0_pubkey(c) : NULL;
    unsigned char pt[140];
    size_t len = 0;
    BIGNUM *n = NULL, *e = NULL;

    tok.point_len = tok.n_len = tok.e_len = 0;
    if (pk == NULL)
        goto out;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) &&
            EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) &&
            BN_num_bytes(n) <= (int)sizeof(tok.n) && BN_num_bytes(e) <= (int)sizeof(tok.e)) {
            tok.n_len = (CK_ULONG)BN_bn2bin(n, tok.n);
            tok.e_len = (CK_ULONG)BN_bn2bin(e, tok.e);
        }
        goto out;
    }
    len = sizeof(pt);
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(pk, pt, &len) != 1)
            len = 0;
    } else if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
                                               sizeof(pt), &len) != 1) {
        len = 0;
    }
    if (len > 0 && len < 128) {
        tok.point[0] = 0x04;
        tok.point[1] = (unsigned char)len;
        memcpy(tok.point + 2, pt, len);
        tok.point_len = (CK_ULONG)len + 2;
    }
out:
    BN_free(n);
    BN_free(e);
    X509_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tm_profile *profile;
    static CK_FUNCTION_LIST list;
    static STACK_OF(X509) * roots;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_ATTRIBUTE t[3] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
        {CKA_VALUE, (void *)data, size},
    };
    mod_policy policy = {0};
    mod_policy_decision d;
    int mode;

    if (profile == NULL) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *root = X509_new();
        profile = tm_profile_load(NULL, NULL);
        list.C_FindObjectsInit = find_init;
        list.C_FindObjects = find;
        list.C_FindObjectsFinal = find_final;
        list.C_GetAttributeValue = get_attr;
        X509_set_pubkey(root, k);
        X509_sign(root, k, EVP_sha256());
        roots = sk_X509_new_null();
        sk_X509_push(roots, root);
        EVP_PKEY_free(k);
    }
    key_from_input(data, size);
    tok.value = data;
    tok.value_len = size;
    policy.profile = profile;
    /* every input under every setting: with and without a certificate already
     * on the token, with and without trusted roots, refusing or allowing
     * certificates outside the profile */
    for (mode = 0; mode < 8; mode++) {
        tok.have_cert = mode & 1;
        policy.trusted_roots = mode & 2 ? roots : NULL;
        policy.outside_profile = mode & 4 ? TM_OUTSIDE_PROFILE_ALLOW : TM_OUTSIDE_PROFILE_REFUSE;
        mod_policy_decide(&policy, &list, 1, SERIAL, sizeof(SERIAL) - 1, t, 3, &d);
        if ((d.rv != CKR_OK && d.templ != NULL) || (d.rv == CKR_OK && d.templ == NULL))
            abort(); /* a refusal never hands out a template, an acceptance always does */
        mod_policy_decision_clear(&d);
    }
    return 0;
}
