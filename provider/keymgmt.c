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

#include "forward.h"
#include "key.h"
#include "keygen.h"

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
    if (PROV_KEY_IS_SOFT(k)) {
        OSSL_FUNC_keymgmt_has_fn *fn = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_HAS, keymgmt_has);
        return fn != NULL && fn(k->soft_kd, selection);
    }
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

    if (PROV_KEY_IS_SOFT(x) && PROV_KEY_IS_SOFT(y) && x->fwd == y->fwd) {
        OSSL_FUNC_keymgmt_match_fn *fn =
            PROV_FWD_CALL(x->fwd, OSSL_FUNC_KEYMGMT_MATCH, keymgmt_match);
        return fn != NULL && fn(x->soft_kd, y->soft_kd, selection);
    }
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
    if (PROV_KEY_IS_SOFT(k)) {
        OSSL_FUNC_keymgmt_get_params_fn *fn =
            PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_GET_PARAMS, keymgmt_get_params);
        return fn != NULL && fn(k->soft_kd, params);
    }
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
    if (PROV_KEY_IS_SOFT(k)) {
        OSSL_FUNC_keymgmt_export_fn *fn =
            PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_EXPORT, keymgmt_export);
        return fn != NULL && fn(k->soft_kd, selection, cb, cbarg);
    }
    /* The private half stays on the token. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && prov_key_has_private(k))
        return 0;
    params = prov_key_public_params(k, selection);
    ok = params != NULL && cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

/* Private parameters too: software keys are imported and forwarded. */
static const OSSL_PARAM rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_D, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR1, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR2, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT1, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT2, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_COEFFICIENT1, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
    OSSL_PARAM_END,
};
static const OSSL_PARAM ed_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
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

/* The public half into k's own fields, for matching against token keys. */
static int public_fields_import(prov_key *k, int selection, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const void *pub = NULL;
    size_t pub_len = 0;

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

/*
 * Imports are software keys by definition (a token key comes from the store):
 * they go to the other provider's key manager, and the public half is also
 * kept here so a token key can be matched against it.
 */
static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    prov_key *k = keydata;
    const prov_fwd *f;
    OSSL_FUNC_keymgmt_new_fn *nw;
    OSSL_FUNC_keymgmt_import_fn *im;
    OSSL_FUNC_keymgmt_free_fn *fr;
    void *kd = NULL;

    return_val_if_fail(k != NULL && k->tok == NULL, 0);
    if (k->soft_kd == NULL) {
        if ((f = prov_fwd_find(k->prov, OSSL_OP_KEYMGMT, prov_key_type_name(k))) == NULL ||
            (nw = PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_NEW, keymgmt_new)) == NULL ||
            (kd = nw(f->provctx)) == NULL)
            return 0;
        k->fwd = f;
        k->soft_kd = kd;
    }
    im = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_IMPORT, keymgmt_import);
    if (im == NULL || !im(k->soft_kd, selection, params)) {
        if (kd != NULL && (fr = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_FREE, keymgmt_free)))
            fr(kd);
        if (kd != NULL)
            k->soft_kd = NULL;
        return 0;
    }
    (void)has_private_params;
    (void)public_fields_import(k, selection, params);
    return 1;
}

static int km_set_params(void *keydata, const OSSL_PARAM params[])
{
    prov_key *k = keydata;
    OSSL_FUNC_keymgmt_set_params_fn *fn;

    if (!PROV_KEY_IS_SOFT(k))
        return params == NULL || params[0].key == NULL; /* nothing to set on a token key */
    fn = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_SET_PARAMS, keymgmt_set_params);
    return fn != NULL && fn(k->soft_kd, params);
}

static int km_validate(const void *keydata, int selection, int checktype)
{
    const prov_key *k = keydata;
    OSSL_FUNC_keymgmt_validate_fn *fn;

    if (!PROV_KEY_IS_SOFT(k))
        return km_has(keydata, selection);
    fn = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_VALIDATE, keymgmt_validate);
    return fn == NULL || fn(k->soft_kd, selection, checktype);
}

static prov_key *wrap_soft(prov_ctx *prov, prov_key_type type, int pss, const prov_fwd *f, void *kd)
{
    prov_key *k;

    if (kd == NULL)
        return NULL;
    if ((k = km_new(prov, type, pss)) == NULL) {
        OSSL_FUNC_keymgmt_free_fn *fr = PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_FREE, keymgmt_free);
        if (fr != NULL)
            fr(kd);
        return NULL;
    }
    k->fwd = f;
    k->soft_kd = kd;
    return k;
}

/* A software key of the other provider with k's domain parameters only. */
static prov_key *soft_params_of(const prov_key *k)
{
    const prov_fwd *f = prov_fwd_find(k->prov, OSSL_OP_KEYMGMT, prov_key_type_name(k));
    OSSL_FUNC_keymgmt_new_fn *nw = PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_NEW, keymgmt_new);
    OSSL_FUNC_keymgmt_import_fn *im = PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_IMPORT, keymgmt_import);
    OSSL_FUNC_keymgmt_free_fn *fr = PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_FREE, keymgmt_free);
    OSSL_PARAM *params = prov_key_public_params(k, OSSL_KEYMGMT_SELECT_ALL_PARAMETERS);
    void *kd = NULL;

    if (nw == NULL || im == NULL || fr == NULL || params == NULL || (kd = nw(f->provctx)) == NULL)
        goto out;
    if (!im(kd, OSSL_KEYMGMT_SELECT_ALL_PARAMETERS, params)) {
        fr(kd);
        kd = NULL;
    }
out:
    OSSL_PARAM_free(params);
    return wrap_soft(k->prov, k->type, k->pss_only, f, kd);
}

static void *km_dup(const void *keydata, int selection)
{
    const prov_key *k = keydata;
    prov_key *d;

    if (PROV_KEY_IS_SOFT(k)) {
        OSSL_FUNC_keymgmt_dup_fn *fn = PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_DUP, keymgmt_dup);
        return fn != NULL
                   ? wrap_soft(k->prov, k->type, k->pss_only, k->fwd, fn(k->soft_kd, selection))
                   : NULL;
    }
    /* Only the curve of a token key: a software key on that curve, which takes
     * a public point next (CMS key agreement builds the originator's key so). */
    if (k->type == TM_KEY_EC && (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return soft_params_of(k);
    /* A token key: the same token object, its public half copied. */
    if ((d = km_new(k->prov, k->type, k->pss_only)) == NULL)
        return NULL;
    d->tok = k->tok;
    d->priv = (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? k->priv : CK_INVALID_HANDLE;
    memcpy(d->id, k->id, sizeof(d->id));
    d->id_len = k->id_len;
    memcpy(d->label, k->label, sizeof(d->label));
    d->issuing = k->issuing;
    memcpy(d->group, k->group, sizeof(d->group));
    d->curve_nid = k->curve_nid;
    d->field_len = k->field_len;
    memcpy(d->pub, k->pub, sizeof(d->pub));
    d->pub_len = k->pub_len;
    if ((k->n != NULL && (d->n = BN_dup(k->n)) == NULL) ||
        (k->e != NULL && (d->e = BN_dup(k->e)) == NULL)) {
        prov_key_free(d);
        return NULL;
    }
    return d;
}

/*
 * Key generation is the other provider's (see forward.h), unless the
 * parameters carry pkcs11_uri: then the pair is made on that token
 * (keygen.c). The curve, size and exponent are read here as well as
 * forwarded, so either path sees them.
 */
#define TM_GEN_PARAM_URI "pkcs11_uri"
#define TM_GEN_PARAM_USAGE "pkcs11_key_usage"

typedef struct {
    prov_ctx *prov;
    prov_key_type type;
    int pss;
    const prov_fwd *f;
    void *inner;
    char *uri; /* may hold a pin-value: cleansed */
    char *usage;
    char group[32];
    size_t bits;
    BIGNUM *e;
} km_gen_ctx;

static void free_secret_str(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

static int set_str(char **dst, const OSSL_PARAM *p)
{
    const char *v = NULL;
    char *copy;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &v) || (copy = OPENSSL_strdup(v)) == NULL)
        return 0;
    free_secret_str(*dst);
    *dst = copy;
    return 1;
}

static int own_gen_params(km_gen_ctx *g, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *v = NULL;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, TM_GEN_PARAM_URI)) != NULL && !set_str(&g->uri, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, TM_GEN_PARAM_USAGE)) != NULL && !set_str(&g->usage, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v) || strlen(v) >= sizeof(g->group))
            return 0;
        strcpy(g->group, v);
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS)) != NULL &&
        !OSSL_PARAM_get_size_t(p, &g->bits))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) != NULL &&
        !OSSL_PARAM_get_BN(p, &g->e))
        return 0;
    return 1;
}

static void km_gen_cleanup(void *genctx);

static void *gen_init(void *provctx, prov_key_type type, int pss, const char *name, int selection,
                      const OSSL_PARAM params[])
{
    km_gen_ctx *g = calloc(1, sizeof(*g));
    OSSL_FUNC_keymgmt_gen_init_fn *fn;

    if (g == NULL)
        return NULL;
    g->prov = provctx;
    g->type = type;
    g->pss = pss;
    if ((g->f = prov_fwd_find(provctx, OSSL_OP_KEYMGMT, name)) == NULL ||
        (fn = PROV_FWD_CALL(g->f, OSSL_FUNC_KEYMGMT_GEN_INIT, keymgmt_gen_init)) == NULL ||
        (g->inner = fn(g->f->provctx, selection, params)) == NULL) {
        free(g);
        return NULL;
    }
    /* A parameter this provider cannot read only matters for a token key;
     * a software key is the other provider's to judge. */
    if (!own_gen_params(g, params) && g->uri != NULL) {
        km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

static int km_gen_set_template(void *genctx, void *templ)
{
    km_gen_ctx *g = genctx;
    prov_key *t = templ;
    OSSL_FUNC_keymgmt_gen_set_template_fn *fn =
        PROV_FWD_CALL(g->f, OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, keymgmt_gen_set_template);

    if (!PROV_KEY_IS_SOFT(t) || t->fwd != g->f) {
        TM_RAISE(g->prov, TM_R_UNSUPPORTED, "a token key cannot be a key generation template");
        return 0;
    }
    return fn != NULL && fn(g->inner, t->soft_kd);
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    km_gen_ctx *g = genctx;
    OSSL_FUNC_keymgmt_gen_set_params_fn *fn =
        PROV_FWD_CALL(g->f, OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, keymgmt_gen_set_params);
    if (!own_gen_params(g, params) && g->uri != NULL)
        return 0;
    return fn != NULL ? fn(g->inner, params) : params == NULL || params[0].key == NULL;
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    km_gen_ctx *g = genctx;
    OSSL_FUNC_keymgmt_gen_fn *fn = PROV_FWD_CALL(g->f, OSSL_FUNC_KEYMGMT_GEN, keymgmt_gen);

    if (g->uri != NULL) {
        prov_keygen_req req = {g->type, g->pss, "", g->bits, g->e, g->uri, g->usage};
        memcpy(req.group, g->group, sizeof(req.group));
        return prov_keygen_on_token(g->prov, &req);
    }
    return fn != NULL ? wrap_soft(g->prov, g->type, g->pss, g->f, fn(g->inner, cb, cbarg)) : NULL;
}

static void km_gen_cleanup(void *genctx)
{
    km_gen_ctx *g = genctx;
    OSSL_FUNC_keymgmt_gen_cleanup_fn *fn;

    if (g == NULL)
        return;
    if ((fn = PROV_FWD_CALL(g->f, OSSL_FUNC_KEYMGMT_GEN_CLEANUP, keymgmt_gen_cleanup)) != NULL)
        fn(g->inner);
    free_secret_str(g->uri);
    free_secret_str(g->usage);
    BN_free(g->e);
    free(g);
}

/*
 * The other provider's settable generation parameters plus this provider's
 * own, made once per key manager and provider instance (slot) and kept until
 * teardown.
 */
static const OSSL_PARAM *gen_settable_with_ours(prov_ctx *prov, int slot, const OSSL_PARAM *theirs)
{
    static const OSSL_PARAM ours[] = {
        OSSL_PARAM_utf8_string(TM_GEN_PARAM_URI, NULL, 0),
        OSSL_PARAM_utf8_string(TM_GEN_PARAM_USAGE, NULL, 0),
    };
    size_t n = 0;
    OSSL_PARAM *all;

    pthread_mutex_lock(&prov->lock);
    if ((all = prov->gen_settable[slot]) != NULL)
        goto out;
    while (theirs != NULL && theirs[n].key != NULL)
        n++;
    if ((all = calloc(n + 3, sizeof(*all))) == NULL)
        goto out;
    if (n > 0)
        memcpy(all, theirs, n * sizeof(*all));
    memcpy(all + n, ours, sizeof(ours));
    prov->gen_settable[slot] = all;
out:
    pthread_mutex_unlock(&prov->lock);
    return all != NULL ? all : theirs;
}

/*
 * Per key type: the functions that get no key data and so must know which
 * of the other provider's key managers to ask. The parameter lists are the
 * other provider's: a superset of what a token key answers.
 */
#define TM_KM_TYPED(prefix, TYPE, PSS, NAME, own_gettable, SLOT)                                   \
    static void *prefix##_gen_init(void *provctx, int selection, const OSSL_PARAM params[])        \
    {                                                                                              \
        return gen_init(provctx, TYPE, PSS, NAME, selection, params);                              \
    }                                                                                              \
    static const OSSL_PARAM *prefix##_gen_settable(void *genctx, void *provctx)                    \
    {                                                                                              \
        km_gen_ctx *g = genctx;                                                                    \
        const prov_fwd *f = prov_fwd_find(provctx, OSSL_OP_KEYMGMT, NAME);                         \
        OSSL_FUNC_keymgmt_gen_settable_params_fn *fn =                                             \
            PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, keymgmt_gen_settable_params);  \
        return gen_settable_with_ours(                                                             \
            provctx, SLOT, fn != NULL ? fn(g != NULL ? g->inner : NULL, f->provctx) : NULL);       \
    }                                                                                              \
    static const OSSL_PARAM *prefix##_gettable(void *provctx)                                      \
    {                                                                                              \
        const prov_fwd *f = prov_fwd_find(provctx, OSSL_OP_KEYMGMT, NAME);                         \
        OSSL_FUNC_keymgmt_gettable_params_fn *fn =                                                 \
            PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, keymgmt_gettable_params);          \
        return fn != NULL ? fn(f->provctx) : own_gettable(provctx);                                \
    }                                                                                              \
    static const OSSL_PARAM *prefix##_settable(void *provctx)                                      \
    {                                                                                              \
        const prov_fwd *f = prov_fwd_find(provctx, OSSL_OP_KEYMGMT, NAME);                         \
        OSSL_FUNC_keymgmt_settable_params_fn *fn =                                                 \
            PROV_FWD_CALL(f, OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, keymgmt_settable_params);          \
        return fn != NULL ? fn(f->provctx) : NULL;                                                 \
    }

TM_KM_TYPED(rsa, TM_KEY_RSA, 0, "RSA", rsa_gettable_params, 0)
TM_KM_TYPED(rsapss, TM_KEY_RSA, 1, "RSA-PSS", rsa_gettable_params, 1)
TM_KM_TYPED(ec, TM_KEY_EC, 0, "EC", ec_gettable_params, 2)
TM_KM_TYPED(ed25519, TM_KEY_ED25519, 0, "ED25519", ed_gettable_params, 3)

static const char *rsa_query(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static const char *ec_query(int operation_id)
{
    /* ECDH as the default provider names it: an EC key's key exchange */
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA"
           : operation_id == OSSL_OP_KEYEXCH ? "ECDH"
                                             : NULL;
}

static const char *ed_query(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

#define TM_KEYMGMT(prefix, newfn, types, query)                                                    \
    const OSSL_DISPATCH prov_##prefix##_keymgmt_functions[] = {                                    \
        {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))newfn},                                            \
        {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},                                         \
        {OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},                                         \
        {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))prefix##_gen_init},                           \
        {OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))km_gen_set_template},                 \
        {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))km_gen_set_params},                     \
        {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))prefix##_gen_settable},            \
        {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))km_gen},                                           \
        {OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))km_gen_cleanup},                           \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},                                           \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},                                       \
        {OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))km_validate},                                 \
        {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},                                           \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                             \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))prefix##_gettable},                    \
        {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))km_set_params},                             \
        {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))prefix##_settable},                    \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},                                     \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))types},                                   \
        {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},                                     \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))types},                                   \
        {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))query},                           \
        {0, NULL},                                                                                 \
    }

TM_KEYMGMT(rsa, rsa_new, rsa_io_types, rsa_query);
TM_KEYMGMT(rsapss, rsapss_new, rsa_io_types, rsa_query);
TM_KEYMGMT(ec, ec_new, ec_io_types, ec_query);
TM_KEYMGMT(ed25519, ed25519_new, ed_io_types, ed_query);
