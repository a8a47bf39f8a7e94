/*
 * Key management for token keys: RSA, RSA-PSS, EC and Ed25519 keys that live
 * on a token. The public half exports, so the default provider can encode and
 * verify; the private half never leaves the token, and an export that asks
 * for it fails. That failure is also what steers EVP_DigestSignInit to this
 * provider's signature implementation instead of the default provider's.
 * Import takes public keys only (what key matching, e.g. X509_check_private_key,
 * hands over); software private keys are refused so they stay with the
 * default provider.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/params.h>

#include "key.h"

static void *km_new(void *provctx, prov_key_type type, int pss)
{
    prov_key *k = prov_key_new(provctx, type);
    if (k != NULL)
        k->pss_only = pss;
    return k;
}

static void *rsa_new(void *provctx)
{
    return km_new(provctx, TM_KEY_RSA, 0);
}

static void *rsapss_new(void *provctx)
{
    return km_new(provctx, TM_KEY_RSA, 1);
}

static void *ec_new(void *provctx)
{
    return km_new(provctx, TM_KEY_EC, 0);
}

static void *ed25519_new(void *provctx)
{
    return km_new(provctx, TM_KEY_ED25519, 0);
}

static void km_free(void *keydata)
{
    prov_key_free(keydata);
}

static void *km_load(const void *reference, size_t reference_sz)
{
    prov_key *k;

    return_val_if_fail(reference != NULL && reference_sz == sizeof(k), NULL);
    memcpy(&k, reference, sizeof(k));
    return prov_key_up(k);
}

static int has_public(const prov_key *k)
{
    return k->type == TM_KEY_RSA ? k->n != NULL && k->e != NULL : k->pub_len > 0;
}

static int km_has(const void *keydata, int selection)
{
    const prov_key *k = keydata;

    if (k == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !prov_key_has_private(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && !has_public(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) && k->type == TM_KEY_EC &&
        k->curve_nid == 0)
        return 0;
    return 1;
}

static int km_match(const void *a, const void *b, int selection)
{
    const prov_key *x = a, *y = b;

    if (x->type != y->type)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) && x->type == TM_KEY_EC &&
        x->curve_nid != y->curve_nid)
        return 0;
    if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
        return prov_key_public_eq(x, y);
    return 1;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    prov_key *k = keydata;
    OSSL_PARAM *p;

    return_val_if_fail(k != NULL, 0);
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) != NULL &&
        !OSSL_PARAM_set_int(p, prov_key_bits(k)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) != NULL &&
        !OSSL_PARAM_set_int(p, prov_key_security_bits(k)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) != NULL &&
        !OSSL_PARAM_set_int(p, prov_key_max_sig(k)))
        return 0;
    if (k->type == TM_KEY_ED25519) {
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MANDATORY_DIGEST)) != NULL &&
            !OSSL_PARAM_set_utf8_string(p, ""))
            return 0;
    } else if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != NULL &&
               !OSSL_PARAM_set_utf8_string(p, prov_key_default_digest(k))) {
        return 0;
    }
    if (k->type == TM_KEY_RSA) {
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N)) != NULL &&
            (k->n == NULL || !OSSL_PARAM_set_BN(p, k->n)))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E)) != NULL &&
            (k->e == NULL || !OSSL_PARAM_set_BN(p, k->e)))
            return 0;
        return 1;
    }
    if (k->type == TM_KEY_EC &&
        (p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, k->group))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)) != NULL &&
        !OSSL_PARAM_set_octet_string(p, k->pub, k->pub_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY)) != NULL &&
        !OSSL_PARAM_set_octet_string(p, k->pub, k->pub_len))
        return 0;
    return 1;
}

static const OSSL_PARAM *rsa_gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static const OSSL_PARAM *ed_gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    prov_key *k = keydata;
    OSSL_PARAM *params;
    int ok;

    return_val_if_fail(k != NULL, 0);
    /* The private half stays on the token. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && prov_key_has_private(k))
        return 0;
    params = prov_key_public_params(k, selection);
    ok = params != NULL && cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ed_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rsa_io_types(int selection)
{
    return rsa_types;
}

static const OSSL_PARAM *ec_io_types(int selection)
{
    return ec_types;
}

static const OSSL_PARAM *ed_io_types(int selection)
{
    return ed_types;
}

/* Private material of any kind: a software key, not ours to hold. */
static int has_private_params(const OSSL_PARAM params[])
{
    static const char *const names[] = {OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1,
                                        OSSL_PKEY_PARAM_PRIV_KEY, NULL};
    for (const char *const *n = names; *n != NULL; n++) {
        if (OSSL_PARAM_locate_const(params, *n) != NULL)
            return 1;
    }
    return 0;
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    prov_key *k = keydata;
    const OSSL_PARAM *p;
    const void *pub = NULL;
    size_t pub_len = 0;

    return_val_if_fail(k != NULL && k->tok == NULL, 0);
    if (has_private_params(params))
        return 0;
    if (k->type == TM_KEY_RSA) {
        BIGNUM *n = NULL, *e = NULL;
        if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N)) == NULL ||
            !OSSL_PARAM_get_BN(p, &n) ||
            (p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) == NULL ||
            !OSSL_PARAM_get_BN(p, &e)) {
            BN_free(n);
            return 0;
        }
        BN_free(k->n);
        BN_free(k->e);
        k->n = n;
        k->e = e;
        return 1;
    }
    if (k->type == TM_KEY_EC) {
        const char *group = NULL;
        int nid;
        if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) == NULL ||
            !OSSL_PARAM_get_utf8_string_ptr(p, &group))
            return 0;
        nid = OBJ_txt2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
        if (!prov_key_set_curve(k, nid))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY)) == NULL ||
        !OSSL_PARAM_get_octet_string_ptr(p, &pub, &pub_len) || pub_len > sizeof(k->pub))
        return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0;
    memcpy(k->pub, pub, pub_len);
    k->pub_len = pub_len;
    return 1;
}

static const char *rsa_query(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *ec_query(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *ed_query(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

#define TM_KEYMGMT(prefix, newfn, gettable, types, query)                                          \
    const OSSL_DISPATCH prov_##prefix##_keymgmt_functions[] = {                                    \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))newfn},                                            \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                         \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},                                         \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                             \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))gettable},                             \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                                     \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))types},                                   \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))types},                                   \
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))query},                           \
        {0, NULL},                                                                                 \
    }

TM_KEYMGMT(rsa, rsa_new, rsa_gettable_params, rsa_io_types, rsa_query);
TM_KEYMGMT(rsapss, rsapss_new, rsa_gettable_params, rsa_io_types, rsa_query);
TM_KEYMGMT(ec, ec_new, ec_gettable_params, ec_io_types, ec_query);
TM_KEYMGMT(ed25519, ed25519_new, ed_gettable_params, ed_io_types, ed_query);
