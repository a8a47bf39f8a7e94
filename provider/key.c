/* Keys as references to token objects, and signing with them. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "forward.h"
#include "key.h"
#include "session.h"
#include "uri.h"

prov_key *prov_key_new(prov_ctx *prov, prov_key_type type)
{
    prov_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->refs = 1;
    k->prov = prov;
    k->type = type;
    k->priv = CK_INVALID_HANDLE;
    return k;
}

prov_key *prov_key_up(prov_key *k)
{
    if (k != NULL)
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_SEQ_CST);
    return k;
}

void prov_key_free(prov_key *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    BN_free(k->n);
    BN_free(k->e);
    EVP_PKEY_free(k->soft);
    if (k->soft_kd != NULL) {
        OSSL_FUNC_keymgmt_free_fn *fr = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_FREE, keymgmt_free);
        if (fr != NULL)
            fr(k->soft_kd);
    }
    free(k);
}

OSSL_PARAM *prov_key_public_params(const prov_key *k, int selection)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    int ok = bld != NULL;

    if (ok && k->type == TM_KEY_RSA && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
        ok = k->n != NULL && k->e != NULL &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, k->n) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, k->e);
    /* Named curve only: RFC 5480 forbids nothing else in certificates we make. */
    if (ok && k->type == TM_KEY_EC && (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS))
        ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, k->group, 0);
    if (ok && k->type != TM_KEY_RSA && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
        ok = OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pub, k->pub_len);
    if (ok)
        params = OSSL_PARAM_BLD_to_param(bld);
    OSSL_PARAM_BLD_free(bld);
    return params;
}

EVP_PKEY *prov_key_soft_public(prov_key *k)
{
    OSSL_LIB_CTX *libctx;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL, *expected = NULL;

    if ((pkey = __atomic_load_n(&k->soft, __ATOMIC_ACQUIRE)) != NULL)
        return pkey;
    if ((libctx = prov_libctx(k->prov)) == NULL ||
        (params = prov_key_public_params(k, OSSL_KEYMGMT_SELECT_PUBLIC_KEY |
                                                OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) == NULL)
        goto out;
    pctx = EVP_PKEY_CTX_new_from_name(libctx, prov_key_type_name(k), TM_NOT_US);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    if (!__atomic_compare_exchange_n(&k->soft, &expected, pkey, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        EVP_PKEY_free(pkey);
        pkey = expected;
    }
out:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return pkey;
}

const char *prov_key_op_name(const prov_key *k, int op)
{
    if (op == OSSL_OP_SIGNATURE)
        return k->type == TM_KEY_RSA ? "RSA" : k->type == TM_KEY_EC ? "ECDSA" : "ED25519";
    if (op == OSSL_OP_KEYEXCH)
        return "ECDH";
    return prov_key_type_name(k);
}

const char *prov_key_type_name(const prov_key *k)
{
    switch (k->type) {
    case TM_KEY_RSA:
        return k->pss_only ? "RSA-PSS" : "RSA";
    case TM_KEY_EC:
        return "EC";
    case TM_KEY_ED25519:
        return "ED25519";
    }
    return "?";
}

int prov_key_bits(const prov_key *k)
{
    switch (k->type) {
    case TM_KEY_RSA:
        return k->n != NULL ? BN_num_bits(k->n) : 0;
    case TM_KEY_EC:
        return k->curve_nid == NID_secp521r1 ? 521 : (int)k->field_len * 8;
    case TM_KEY_ED25519:
        return 256;
    }
    return 0;
}

int prov_key_security_bits(const prov_key *k)
{
    switch (k->type) {
    case TM_KEY_RSA:
        return BN_security_bits(prov_key_bits(k), -1);
    case TM_KEY_EC:
        return prov_key_bits(k) / 2;
    case TM_KEY_ED25519:
        return 128;
    }
    return 0;
}

int prov_key_max_sig(const prov_key *k)
{
    switch (k->type) {
    case TM_KEY_RSA:
        return (prov_key_bits(k) + 7) / 8;
    case TM_KEY_EC: {
        /* SEQUENCE of two INTEGERs, each at most field_len + 1 content bytes */
        int content = 2 * (2 + (int)k->field_len + 1);
        return content + (content < 128 ? 2 : 3);
    }
    case TM_KEY_ED25519:
        return 64;
    }
    return 0;
}

const char *prov_key_default_digest(const prov_key *k)
{
    if (k->type == TM_KEY_ED25519)
        return "";
    if (k->type == TM_KEY_EC && k->field_len == 48)
        return "SHA384";
    if (k->type == TM_KEY_EC && k->field_len == 66)
        return "SHA512";
    return "SHA256";
}

int prov_key_has_private(const prov_key *k)
{
    return k->tok != NULL && k->priv != CK_INVALID_HANDLE;
}

int prov_key_public_eq(const prov_key *a, const prov_key *b)
{
    if (a->type != b->type)
        return 0;
    if (a->type == TM_KEY_RSA)
        return a->n != NULL && b->n != NULL && BN_cmp(a->n, b->n) == 0 && a->e != NULL &&
               b->e != NULL && BN_cmp(a->e, b->e) == 0;
    if (a->type == TM_KEY_EC && a->curve_nid != b->curve_nid)
        return 0;
    return a->pub_len > 0 && a->pub_len == b->pub_len && memcmp(a->pub, b->pub, a->pub_len) == 0;
}

/* An object of class klass with the same CKA_ID, or CK_INVALID_HANDLE. */
static CK_OBJECT_HANDLE find_partner(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                                     CK_OBJECT_CLASS klass, const unsigned char *id, size_t id_len)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof(klass)}, {CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    if (f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK)
        return CK_INVALID_HANDLE;
    if (f->C_FindObjects(s, &h, 1, &n) != CKR_OK || n == 0)
        h = CK_INVALID_HANDLE;
    f->C_FindObjectsFinal(s);
    return h;
}

/* CKA_EC_POINT is a DER OCTET STRING by the spec; some modules give it raw. */
static int set_point(prov_key *k, const unsigned char *v, size_t len)
{
    const unsigned char *p = v;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
    int ok = 0;

    if (os != NULL && p == v + len) {
        v = ASN1_STRING_get0_data(os);
        len = (size_t)ASN1_STRING_length(os);
    }
    if (k->type == TM_KEY_EC && (len != 1 + 2 * k->field_len || v[0] != 0x04))
        goto out;
    if (k->type == TM_KEY_ED25519 && len != 32)
        goto out;
    if (len > sizeof(k->pub))
        goto out;
    memcpy(k->pub, v, len);
    k->pub_len = len;
    ok = 1;
out:
    ASN1_OCTET_STRING_free(os);
    return ok;
}

/* Public half from a certificate with the key's CKA_ID. */
static int point_from_cert(prov_key *k, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                           CK_OBJECT_HANDLE cert)
{
    unsigned char *der = NULL;
    CK_ULONG len = 0;
    const unsigned char *p, *pk = NULL;
    X509 *x = NULL;
    int pklen = 0, ok = 0;

    if (prov_object_attr(f, s, cert, CKA_VALUE, &der, &len) != CKR_OK)
        return 0;
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, X509_get_X509_PUBKEY(x)) == 1)
        ok = set_point(k, pk, (size_t)pklen);
    X509_free(x);
    free(der);
    return ok;
}

int prov_key_set_curve(prov_key *k, int nid)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
        k->field_len = 32;
        break;
    case NID_secp384r1:
        k->field_len = 48;
        break;
    case NID_secp521r1:
        k->field_len = 66;
        break;
    default:
        return 0;
    }
    k->curve_nid = nid;
    snprintf(k->group, sizeof(k->group), "%s", OBJ_nid2sn(nid));
    return 1;
}

static int ec_params(prov_key *k, const unsigned char *v, size_t len)
{
    const unsigned char *p = v;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid = oid != NULL ? OBJ_obj2nid(oid) : NID_undef;

    ASN1_OBJECT_free(oid);
    if (k->type == TM_KEY_ED25519) {
        /* RFC 8410 OID, or the PrintableString "edwards25519" of PKCS#11 3.0 */
        static const unsigned char name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                             'd',  's',  '2', '5', '5', '1', '9'};
        return nid == NID_ED25519 || (len == sizeof(name) && memcmp(v, name, len) == 0);
    }
    return prov_key_set_curve(k, nid);
}

/* Modulus and exponent of obj into k: both, or neither. */
static int rsa_public_from(prov_key *k, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                           CK_OBJECT_HANDLE obj)
{
    unsigned char *v = NULL;
    CK_ULONG len = 0;

    if (prov_object_attr(f, s, obj, CKA_MODULUS, &v, &len) == CKR_OK)
        k->n = BN_bin2bn(v, (int)len, NULL);
    free(v);
    if (prov_object_attr(f, s, obj, CKA_PUBLIC_EXPONENT, &v, &len) == CKR_OK)
        k->e = BN_bin2bn(v, (int)len, NULL);
    free(v);
    if (k->n != NULL && k->e != NULL)
        return 1;
    BN_free(k->n);
    BN_free(k->e);
    k->n = k->e = NULL;
    return 0;
}

static void mark_issuing(prov_ctx *prov, prov_key *k)
{
    for (size_t i = 0; i < prov->n_issuing; i++) {
        prov_uri *u = prov->issuing[i];
        if (prov_uri_match_token(u, prov_token_info(k->tok)) &&
            prov_uri_match_object(u, CKO_PRIVATE_KEY, k->id, k->id_len, k->label,
                                  strlen(k->label))) {
            k->issuing = 1;
            return;
        }
    }
}

prov_key *prov_key_from_object(prov_ctx *prov, prov_token *tok, CK_SESSION_HANDLE s,
                               CK_OBJECT_HANDLE obj, CK_OBJECT_CLASS klass)
{
    CK_FUNCTION_LIST *f = prov_module_fn(prov_token_module(tok));
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    unsigned char *v = NULL;
    CK_ULONG len = 0;
    prov_key *k = NULL;
    CK_RV rv;

    rv = f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_MODULE, "cannot read key type on token %s: %s",
                 prov_token_serial_text(tok), prov_ckr_str(rv));
        return NULL;
    }
    switch (kt) {
    case CKK_RSA:
        k = prov_key_new(prov, TM_KEY_RSA);
        break;
    case CKK_EC:
        k = prov_key_new(prov, TM_KEY_EC);
        break;
    case CKK_EC_EDWARDS:
        k = prov_key_new(prov, TM_KEY_ED25519);
        break;
    default:
        TM_DBG("skipping key of type 0x%lx on token %s", (unsigned long)kt,
               prov_token_serial_text(tok));
        return NULL;
    }
    if (k == NULL)
        return NULL;
    k->tok = tok;
    if (klass == CKO_PRIVATE_KEY)
        k->priv = obj;
    if (prov_object_attr(f, s, obj, CKA_ID, &v, &len) == CKR_OK && len <= sizeof(k->id)) {
        memcpy(k->id, v, len);
        k->id_len = len;
    }
    free(v);
    if (prov_object_attr(f, s, obj, CKA_LABEL, &v, &len) == CKR_OK && len < sizeof(k->label))
        memcpy(k->label, v, len);
    free(v);
    v = NULL;

    if (k->type == TM_KEY_RSA) {
        /* Modulus and exponent are public attributes of an RSA private key;
         * some tokens keep them only on the public key object. */
        if (!rsa_public_from(k, f, s, obj)) {
            CK_OBJECT_HANDLE pub = find_partner(f, s, CKO_PUBLIC_KEY, k->id, k->id_len);
            if (pub == CK_INVALID_HANDLE || !rsa_public_from(k, f, s, pub))
                goto nopub;
        }
    } else {
        if (prov_object_attr(f, s, obj, CKA_EC_PARAMS, &v, &len) != CKR_OK ||
            !ec_params(k, v, len)) {
            TM_RAISE(prov, TM_R_UNSUPPORTED,
                     "key '%s' on token %s: unsupported curve (P-256, P-384, P-521 and "
                     "Ed25519 are supported)",
                     k->label, prov_token_serial_text(tok));
            goto fail;
        }
        free(v);
        v = NULL;
        CK_OBJECT_HANDLE pub =
            klass == CKO_PUBLIC_KEY ? obj : find_partner(f, s, CKO_PUBLIC_KEY, k->id, k->id_len);
        int have = 0;
        if (pub != CK_INVALID_HANDLE &&
            prov_object_attr(f, s, pub, CKA_EC_POINT, &v, &len) == CKR_OK)
            have = set_point(k, v, len);
        free(v);
        v = NULL;
        if (!have) {
            CK_OBJECT_HANDLE cert = find_partner(f, s, CKO_CERTIFICATE, k->id, k->id_len);
            have = cert != CK_INVALID_HANDLE && point_from_cert(k, f, s, cert);
        }
        if (!have)
            goto nopub;
    }
    mark_issuing(prov, k);
    return k;

nopub:
    TM_RAISE(prov, TM_R_OBJECT_NOT_FOUND,
             "key '%s' on token %s: its public half is not readable (no public key object or "
             "certificate with the same CKA_ID)",
             k->label, prov_token_serial_text(tok));
fail:
    free(v);
    prov_key_free(k);
    return NULL;
}

int prov_key_sign(prov_key *k, CK_MECHANISM_TYPE mech, void *param, CK_ULONG param_len,
                  const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen,
                  size_t outmax)
{
    CK_MECHANISM m = {mech, param, param_len};
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_ULONG olen = outmax;
    CK_RV rv;

    if (!prov_key_has_private(k)) {
        TM_RAISE(k->prov, TM_R_SIGN, "this key has no private half on a token");
        return 0;
    }
    f = prov_module_fn(prov_token_module(k->tok));
    s = prov_session_get(k->prov, k->tok);
    if (s == CK_INVALID_HANDLE)
        return 0;
    ERR_set_mark(); /* see module_load: backend noise stays out of the queue */
    rv = f->C_SignInit(s, &m, __atomic_load_n(&k->priv, __ATOMIC_ACQUIRE));
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
        /* The module reloaded its objects (token re-inserted): find the key
         * again by its CKA_ID, once. */
        CK_OBJECT_HANDLE h = find_partner(f, s, CKO_PRIVATE_KEY, k->id, k->id_len);
        if (h != CK_INVALID_HANDLE) {
            __atomic_store_n(&k->priv, h, __ATOMIC_RELEASE);
            rv = f->C_SignInit(s, &m, h);
        }
    }
    if (rv == CKR_OK)
        rv = f->C_Sign(s, (CK_BYTE *)in, inlen, out, &olen);
    ERR_pop_to_mark();
    /* C_Sign ends the operation on every error but this one: a session with
     * an operation still active is not reused. */
    prov_session_put(k->tok, s, rv == CKR_BUFFER_TOO_SMALL ? CKR_SESSION_CLOSED : rv);
    if (rv != CKR_OK) {
        TM_RAISE(k->prov, TM_R_SIGN, "token %s could not sign with key '%s' (mechanism 0x%lx): %s",
                 prov_token_serial_text(k->tok), k->label, (unsigned long)mech, prov_ckr_str(rv));
        return 0;
    }
    *outlen = olen;
    return 1;
}

CK_OBJECT_HANDLE prov_key_refind(prov_key *k, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE h = find_partner(f, s, CKO_PRIVATE_KEY, k->id, k->id_len);

    if (h != CK_INVALID_HANDLE)
        __atomic_store_n(&k->priv, h, __ATOMIC_RELEASE);
    return h;
}
