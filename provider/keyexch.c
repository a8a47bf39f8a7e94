/*
 * ECDH with token keys (P-256, P-384, P-521): the token derives the shared
 * secret (CKM_ECDH1_DERIVE, CKD_NULL) into a session object that lives only
 * for the call; its value is read and the object destroyed. An X9.63 KDF on
 * top (what CMS key agreement asks for) runs in software on that secret.
 *
 * Software keys that reach this implementation (tokenmint loaded first: TLS
 * key shares, file keys) are forwarded unchanged to the other provider's ECDH
 * (forward.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "forward.h"
#include "key.h"
#include "session.h"

typedef struct {
    prov_ctx *prov;
    prov_key *key;
    prov_key *peer;
    int cofactor_mode;
    int kdf_x963;
    char kdf_md[32];
    size_t kdf_outlen;
    unsigned char *ukm;
    size_t ukm_len;

    /* a software key: the other provider's ECDH does everything */
    int fwd_on;
    const prov_fwd *fs;
    void *inner;
} kx_ctx;

static void *kx_newctx(void *provctx)
{
    kx_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->cofactor_mode = -1;
    return c;
}

static void kx_freectx(void *vctx)
{
    kx_ctx *c = vctx;

    if (c == NULL)
        return;
    if (c->inner != NULL) {
        OSSL_FUNC_keyexch_freectx_fn *fr =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_KEYEXCH_FREECTX, keyexch_freectx);
        if (fr != NULL)
            fr(c->inner);
    }
    prov_key_free(c->key);
    prov_key_free(c->peer);
    OPENSSL_free(c->ukm);
    free(c);
}

static void *kx_dupctx(void *vctx)
{
    kx_ctx *c = vctx, *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *c;
    d->inner = NULL;
    d->ukm = NULL;
    if (c->inner != NULL) {
        OSSL_FUNC_keyexch_dupctx_fn *dup =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_KEYEXCH_DUPCTX, keyexch_dupctx);
        if (dup == NULL || (d->inner = dup(c->inner)) == NULL) {
            free(d);
            return NULL;
        }
    }
    prov_key_up(d->key);
    prov_key_up(d->peer);
    if (c->ukm != NULL && (d->ukm = OPENSSL_memdup(c->ukm, c->ukm_len)) == NULL) {
        kx_freectx(d);
        return NULL;
    }
    return d;
}

static int kx_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    const OSSL_PARAM *p;
    const char *s = NULL;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL) {
        int mode;
        if (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1)
            return 0;
        c->cofactor_mode = mode; /* the NIST curves have cofactor 1: both modes agree */
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
            return 0;
        if (s[0] == '\0') {
            c->kdf_x963 = 0;
        } else if (strcasecmp(s, OSSL_KDF_NAME_X963KDF) == 0) {
            c->kdf_x963 = 1;
        } else {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                     "ECDH KDF '%s' is not supported for token keys (none or X963KDF)", s);
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || strlen(s) >= sizeof(c->kdf_md))
            return 0;
        strcpy(c->kdf_md, s);
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN)) != NULL &&
        !OSSL_PARAM_get_size_t(p, &c->kdf_outlen))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_UKM)) != NULL) {
        void *v = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &v, 0, &len))
            return 0;
        OPENSSL_free(c->ukm);
        c->ukm = v;
        c->ukm_len = len;
    }
    return 1;
}

static int kx_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL &&
        !OSSL_PARAM_set_int(p, c->cofactor_mode == 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->kdf_x963 ? OSSL_KDF_NAME_X963KDF : ""))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->kdf_md))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN)) != NULL &&
        !OSSL_PARAM_set_size_t(p, c->kdf_outlen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_UKM)) != NULL &&
        !OSSL_PARAM_set_octet_ptr(p, c->ukm, c->ukm_len))
        return 0;
    return 1;
}

static const OSSL_PARAM kx_params[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
    OSSL_PARAM_octet_string(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *kx_settable_ctx_params(void *vctx, void *provctx)
{
    return kx_params;
}

static const OSSL_PARAM *kx_gettable_ctx_params(void *vctx, void *provctx)
{
    return kx_params;
}

static int kx_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    prov_key *k = vkey;

    if (k == NULL || k->type != TM_KEY_EC) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED, "ECDH needs an EC key (P-256, P-384, P-521)");
        return 0;
    }
    if (!prov_key_has_private(k)) {
        TM_RAISE(c->prov, TM_R_DERIVE, "this key has no private half on a token");
        return 0;
    }
    prov_key_free(c->key);
    c->key = prov_key_up(k);
    c->kdf_x963 = 0;
    c->kdf_md[0] = '\0';
    c->kdf_outlen = 0;
    OPENSSL_free(c->ukm);
    c->ukm = NULL;
    c->ukm_len = 0;
    return kx_set_ctx_params(c, params);
}

/* The peer's uncompressed point; a generated software key keeps it only in
 * the other provider's key data. */
static size_t peer_point(kx_ctx *c, prov_key *peer, unsigned char *buf, size_t max)
{
    if (peer->pub_len > 0 && peer->pub_len <= max) {
        memcpy(buf, peer->pub, peer->pub_len);
        return peer->pub_len;
    }
    if (PROV_KEY_IS_SOFT(peer)) {
        OSSL_FUNC_keymgmt_get_params_fn *gp =
            PROV_FWD_CALL(peer->fwd, OSSL_FUNC_KEYMGMT_GET_PARAMS, keymgmt_get_params);
        OSSL_PARAM p[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, buf, max),
                          OSSL_PARAM_END};
        if (gp != NULL && gp(peer->soft_kd, p) && OSSL_PARAM_modified(&p[0]))
            return p[0].return_size;
    }
    return 0;
}

static int kx_set_peer(void *vctx, void *vpeer)
{
    kx_ctx *c = vctx;
    prov_key *peer = vpeer;

    return_val_if_fail(c != NULL && c->key != NULL && peer != NULL, 0);
    if (peer->type != TM_KEY_EC || (peer->curve_nid != 0 && peer->curve_nid != c->key->curve_nid)) {
        TM_RAISE(c->prov, TM_R_DERIVE, "the peer key is not on the curve of key '%s' (%s)",
                 c->key->label, c->key->group);
        return 0;
    }
    prov_key_free(c->peer);
    c->peer = prov_key_up(peer);
    return 1;
}

/* Z, the shared x coordinate (field_len bytes), from the token. */
static int token_derive(kx_ctx *c, unsigned char *z, size_t zlen)
{
    prov_key *k = c->key;
    CK_FUNCTION_LIST *f = prov_module_fn(prov_token_module(k->tok));
    unsigned char point[1 + 2 * 66];
    size_t plen = peer_point(c, c->peer, point, sizeof(point));
    CK_ECDH1_DERIVE_PARAMS ep = {CKD_NULL, 0, NULL, plen, point};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &ep, sizeof(ep)};
    CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ULONG vlen = zlen;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &klass, sizeof(klass)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_ATTRIBUTE val = {CKA_VALUE, z, zlen};
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (plen != 1 + 2 * k->field_len || point[0] != 0x04) {
        TM_RAISE(c->prov, TM_R_DERIVE, "the peer key has no uncompressed %s point", k->group);
        return 0;
    }
    if (!prov_token_has_mech(k->tok, CKM_ECDH1_DERIVE)) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "token %s has no ECDH (CKM_ECDH1_DERIVE): key '%s' cannot derive",
                 prov_token_serial_text(k->tok), k->label);
        return 0;
    }
    if ((s = prov_session_get(c->prov, k->tok)) == CK_INVALID_HANDLE)
        return 0;
    ERR_set_mark(); /* backend noise stays out of the queue */
    rv = f->C_DeriveKey(s, &m, __atomic_load_n(&k->priv, __ATOMIC_ACQUIRE), tmpl,
                        sizeof(tmpl) / sizeof(tmpl[0]), &secret);
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
        CK_OBJECT_HANDLE h = prov_key_refind(k, f, s);
        if (h != CK_INVALID_HANDLE)
            rv = f->C_DeriveKey(s, &m, h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &secret);
    }
    if (rv == CKR_OK) {
        rv = f->C_GetAttributeValue(s, secret, &val, 1);
        (void)f->C_DestroyObject(s, secret);
        if (rv == CKR_OK && val.ulValueLen != zlen)
            rv = CKR_KEY_SIZE_RANGE;
    }
    ERR_pop_to_mark();
    prov_session_put(k->tok, s, rv);
    if (rv == CKR_FUNCTION_NOT_SUPPORTED) {
        OPENSSL_cleanse(z, zlen);
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "token %s: its PKCS#11 module does not implement C_DeriveKey, so key '%s' "
                 "cannot derive (CKR_FUNCTION_NOT_SUPPORTED)",
                 prov_token_serial_text(k->tok), k->label);
        return 0;
    }
    if (rv != CKR_OK) {
        OPENSSL_cleanse(z, zlen);
        TM_RAISE(c->prov, TM_R_DERIVE,
                 "token %s could not derive an ECDH secret with key '%s' (CKM_ECDH1_DERIVE): %s",
                 prov_token_serial_text(k->tok), k->label, prov_ckr_str(rv));
        return 0;
    }
    return 1;
}

static int x963(kx_ctx *c, const unsigned char *z, size_t zlen, unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(prov_libctx(c->prov), OSSL_KDF_NAME_X963KDF, TM_NOT_US);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[4];
    int n = 0, ok;

    p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, c->kdf_md, 0);
    p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zlen);
    if (c->ukm != NULL)
        p[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, c->ukm, c->ukm_len);
    p[n] = OSSL_PARAM_construct_end();
    ok = kctx != NULL && EVP_KDF_derive(kctx, out, outlen, p) > 0;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok;
}

static int kx_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    kx_ctx *c = vctx;
    unsigned char z[66];
    size_t zlen;
    int ok = 0;

    return_val_if_fail(c != NULL && c->key != NULL, 0);
    zlen = c->key->field_len;
    if (c->peer == NULL) {
        TM_RAISE(c->prov, TM_R_DERIVE, "ECDH with key '%s': no peer key set", c->key->label);
        return 0;
    }
    if (c->kdf_x963 && (c->kdf_outlen == 0 || c->kdf_md[0] == '\0')) {
        TM_RAISE(c->prov, TM_R_DERIVE, "X9.63 KDF needs a digest and an output length");
        return 0;
    }
    if (secret == NULL) {
        *secretlen = c->kdf_x963 ? c->kdf_outlen : zlen;
        return 1;
    }
    if (zlen == 0 || zlen > sizeof(z) || !token_derive(c, z, zlen))
        goto out;
    if (c->kdf_x963) {
        if (outlen < c->kdf_outlen || !x963(c, z, zlen, secret, c->kdf_outlen))
            goto out;
        *secretlen = c->kdf_outlen;
    } else {
        /* like the default provider: a shorter buffer takes the leading bytes */
        size_t n = outlen < zlen ? outlen : zlen;
        memcpy(secret, z, n);
        *secretlen = n;
    }
    ok = 1;
out:
    OPENSSL_cleanse(z, sizeof(z));
    return ok;
}

/* ---- software keys: forwarded (forward.h) ---------------------------------- */

static int fwd_begin(kx_ctx *c, const prov_key *k, int *ok)
{
    OSSL_FUNC_keyexch_newctx_fn *nw;

    c->fwd_on = 0;
    *ok = 1;
    if (!PROV_KEY_IS_SOFT(k))
        return 0;
    if (c->inner == NULL) {
        c->fs = prov_fwd_find(c->prov, OSSL_OP_KEYEXCH, "ECDH");
        nw = PROV_FWD_CALL(c->fs, OSSL_FUNC_KEYEXCH_NEWCTX, keyexch_newctx);
        if (nw == NULL || (c->inner = nw(c->fs->provctx)) == NULL) {
            *ok = 0;
            return 1;
        }
    }
    c->fwd_on = 1;
    return 1;
}

#define FWD_FN(c, ID, TYPE) PROV_FWD_CALL((c)->fs, OSSL_FUNC_KEYEXCH_##ID, keyexch_##TYPE)

static int fw_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return kx_init(vctx, vkey, params);
    OSSL_FUNC_keyexch_init_fn *fn = ok ? FWD_FN(c, INIT, init) : NULL;
    return fn != NULL && fn(c->inner, k->soft_kd, params);
}

static int fw_set_peer(void *vctx, void *vpeer)
{
    kx_ctx *c = vctx;
    prov_key *peer = vpeer;
    OSSL_FUNC_keyexch_set_peer_fn *fn;

    if (!c->fwd_on)
        return kx_set_peer(vctx, vpeer);
    if (!PROV_KEY_IS_SOFT(peer) || peer->fwd == NULL || peer->fwd->provctx != c->fs->provctx) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "ECDH between a software key and a token public key is not supported; load the "
                 "peer key from a file");
        return 0;
    }
    fn = FWD_FN(c, SET_PEER, set_peer);
    return fn != NULL && fn(c->inner, peer->soft_kd);
}

static int fw_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    kx_ctx *c = vctx;
    OSSL_FUNC_keyexch_derive_fn *fn;

    if (!c->fwd_on)
        return kx_derive(vctx, secret, secretlen, outlen);
    fn = FWD_FN(c, DERIVE, derive);
    return fn != NULL && fn(c->inner, secret, secretlen, outlen);
}

static int fw_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    OSSL_FUNC_keyexch_get_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return kx_get_ctx_params(vctx, params);
    fn = FWD_FN(c, GET_CTX_PARAMS, get_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static int fw_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    kx_ctx *c = vctx;
    OSSL_FUNC_keyexch_set_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return kx_set_ctx_params(vctx, params);
    fn = FWD_FN(c, SET_CTX_PARAMS, set_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static const OSSL_PARAM *fw_gettable_ctx_params(void *vctx, void *provctx)
{
    kx_ctx *c = vctx;
    OSSL_FUNC_keyexch_gettable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return kx_gettable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, GETTABLE_CTX_PARAMS, gettable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

static const OSSL_PARAM *fw_settable_ctx_params(void *vctx, void *provctx)
{
    kx_ctx *c = vctx;
    OSSL_FUNC_keyexch_settable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return kx_settable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, SETTABLE_CTX_PARAMS, settable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

const OSSL_DISPATCH prov_ecdh_keyexch_functions[] = {
    {OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))kx_newctx},
    {OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kx_freectx},
    {OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kx_dupctx},
    {OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))fw_init},
    {OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))fw_set_peer},
    {OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))fw_derive},
    {OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))fw_get_ctx_params},
    {OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS, (void (*)(void))fw_gettable_ctx_params},
    {OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))fw_set_ctx_params},
    {OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))fw_settable_ctx_params},
    {0, NULL},
};
