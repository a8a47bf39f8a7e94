/*
 * RSA encryption and decryption with token keys: PKCS#1 v1.5, OAEP, no
 * padding, and the TLS 1.2 RSA key exchange padding libssl asks for.
 *
 * Decryption runs on the token (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP,
 * CKM_RSA_X_509) on a pooled session with the key's kept handle.
 * Encryption needs only the public half and is the default provider's work.
 * Software keys that reach this implementation (tokenmint loaded first) are
 * forwarded unchanged to the other provider's RSA cipher (forward.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "forward.h"
#include "key.h"
#include "session.h"

#define TLS_PREMASTER_LEN 48
/* token_decrypt got no session; prov_session_get has said why */
#define NO_SESSION ((CK_RV)-1)

typedef struct {
    const char *name;
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
} oaep_hash;

static const oaep_hash oaep_hashes[] = {
    {"SHA1", CKM_SHA_1, CKG_MGF1_SHA1},      {"SHA224", CKM_SHA224, CKG_MGF1_SHA224},
    {"SHA256", CKM_SHA256, CKG_MGF1_SHA256}, {"SHA384", CKM_SHA384, CKG_MGF1_SHA384},
    {"SHA512", CKM_SHA512, CKG_MGF1_SHA512},
};

typedef struct {
    prov_ctx *prov;
    prov_key *key;
    int decrypt;
    int pad;
    const oaep_hash *oaep_md; /* NULL: SHA-1, OpenSSL's default */
    const oaep_hash *mgf1_md; /* NULL: the OAEP digest */
    unsigned char *label;
    size_t label_len;
    unsigned int tls_client_version;
    unsigned int tls_alt_version;

    /* a software key: the other provider's cipher does everything */
    int fwd_on;
    const prov_fwd *fs;
    void *inner;
} ac_ctx;

static void *ac_newctx(void *provctx)
{
    ac_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->pad = RSA_PKCS1_PADDING;
    return c;
}

static void ac_freectx(void *vctx)
{
    ac_ctx *c = vctx;

    if (c == NULL)
        return;
    if (c->inner != NULL) {
        OSSL_FUNC_asym_cipher_freectx_fn *fr =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_ASYM_CIPHER_FREECTX, asym_cipher_freectx);
        if (fr != NULL)
            fr(c->inner);
    }
    prov_key_free(c->key);
    OPENSSL_free(c->label);
    free(c);
}

static void *ac_dupctx(void *vctx)
{
    ac_ctx *c = vctx, *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *c;
    d->inner = NULL;
    d->label = NULL;
    if (c->inner != NULL) {
        OSSL_FUNC_asym_cipher_dupctx_fn *dup =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_ASYM_CIPHER_DUPCTX, asym_cipher_dupctx);
        if (dup == NULL || (d->inner = dup(c->inner)) == NULL) {
            free(d);
            return NULL;
        }
    }
    prov_key_up(d->key);
    if (c->label != NULL && (d->label = OPENSSL_memdup(c->label, c->label_len)) == NULL) {
        ac_freectx(d);
        return NULL;
    }
    return d;
}

static const oaep_hash *oaep_hash_named(ac_ctx *c, const char *name)
{
    EVP_MD *md = prov_md(c->prov, name);
    const oaep_hash *found = NULL;

    for (size_t i = 0; md != NULL && i < sizeof(oaep_hashes) / sizeof(oaep_hashes[0]); i++) {
        if (EVP_MD_is_a(md, oaep_hashes[i].name))
            found = &oaep_hashes[i];
    }
    EVP_MD_free(md);
    if (found == NULL)
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "OAEP digest '%s' is not supported for token keys (SHA1, SHA224, SHA256, SHA384, "
                 "SHA512)",
                 name);
    return found;
}

static int pad_from_text(const char *s, int *pad)
{
    static const struct {
        const char *name;
        int pad;
    } modes[] = {{"pkcs1", RSA_PKCS1_PADDING},
                 {"oaep", RSA_PKCS1_OAEP_PADDING},
                 {"oeap", RSA_PKCS1_OAEP_PADDING},
                 {"none", RSA_NO_PADDING}};

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcasecmp(s, modes[i].name) == 0) {
            *pad = modes[i].pad;
            return 1;
        }
    }
    return 0;
}

static int ac_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    const OSSL_PARAM *p;
    const char *s = NULL;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE)) != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || !pad_from_text(s, &pad)) {
                TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                         "RSA padding '%s' is not supported for token keys (pkcs1, oaep, none)",
                         s != NULL ? s : "?");
                return 0;
            }
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING && pad != RSA_NO_PADDING &&
            pad != RSA_PKCS1_WITH_TLS_PADDING) {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                     "RSA padding mode %d is not supported for token keys (PKCS#1 v1.5, OAEP, "
                     "none)",
                     pad);
            return 0;
        }
        c->pad = pad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || (c->oaep_md = oaep_hash_named(c, s)) == NULL)
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || (c->mgf1_md = oaep_hash_named(c, s)) == NULL)
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL)) != NULL) {
        void *v = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &v, 0, &len))
            return 0;
        OPENSSL_free(c->label);
        c->label = v;
        c->label_len = len;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION)) != NULL &&
        !OSSL_PARAM_get_uint(p, &c->tls_client_version))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION)) !=
            NULL &&
        !OSSL_PARAM_get_uint(p, &c->tls_alt_version))
        return 0;
    return 1;
}

static const OSSL_PARAM *ac_settable_ctx_params(void *vctx, void *provctx);
static const OSSL_PARAM *ac_gettable_ctx_params(void *vctx, void *provctx);

static int ac_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = c->pad == RSA_PKCS1_OAEP_PADDING ? "oaep"
                            : c->pad == RSA_NO_PADDING       ? "none"
                                                             : "pkcs1";
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->oaep_md != NULL ? c->oaep_md->name : "SHA1"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->mgf1_md != NULL   ? c->mgf1_md->name
                                       : c->oaep_md != NULL ? c->oaep_md->name
                                                            : "SHA1"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL)) != NULL &&
        !OSSL_PARAM_set_octet_ptr(p, c->label, c->label_len))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION)) != NULL &&
        !OSSL_PARAM_set_uint(p, c->tls_client_version))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION)) != NULL &&
        !OSSL_PARAM_set_uint(p, c->tls_alt_version))
        return 0;
    return 1;
}

static const OSSL_PARAM ac_params[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ac_settable_ctx_params(void *vctx, void *provctx)
{
    return ac_params;
}

static const OSSL_PARAM *ac_gettable_ctx_params(void *vctx, void *provctx)
{
    return ac_params;
}

static int init_common(ac_ctx *c, prov_key *k, int decrypt, const OSSL_PARAM params[])
{
    if (k == NULL || k->type != TM_KEY_RSA || k->pss_only) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED, "only RSA keys (not RSA-PSS) encrypt and decrypt");
        return 0;
    }
    if (decrypt && !prov_key_has_private(k)) {
        TM_RAISE(c->prov, TM_R_DECRYPT, "this key has no private half on a token");
        return 0;
    }
    prov_key_free(c->key);
    c->key = prov_key_up(k);
    c->decrypt = decrypt;
    c->pad = RSA_PKCS1_PADDING;
    c->oaep_md = c->mgf1_md = NULL;
    OPENSSL_free(c->label);
    c->label = NULL;
    c->label_len = 0;
    c->tls_client_version = c->tls_alt_version = 0;
    return ac_set_ctx_params(c, params);
}

/* ---- encryption: the public half, in software ------------------------------ */

static int soft_encrypt(ac_ctx *c, unsigned char *out, size_t *outlen, size_t outsize,
                        const unsigned char *in, size_t inlen)
{
    OSSL_LIB_CTX *libctx = prov_libctx(c->prov);
    EVP_PKEY *pub = prov_key_soft_public(c->key);
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM p[5];
    int n = 0, pad = c->pad, ok = 0;
    size_t len = outsize;

    if (pad == RSA_PKCS1_WITH_TLS_PADDING)
        pad = RSA_PKCS1_PADDING;
    p[n++] = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &pad);
    if (pad == RSA_PKCS1_OAEP_PADDING) {
        const char *md = c->oaep_md != NULL ? c->oaep_md->name : "SHA1";
        const char *mgf = c->mgf1_md != NULL ? c->mgf1_md->name : md;
        p[n++] =
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, (char *)md, 0);
        p[n++] =
            OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, (char *)mgf, 0);
        if (c->label != NULL)
            p[n++] = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, c->label,
                                                       c->label_len);
    }
    p[n] = OSSL_PARAM_construct_end();
    if (libctx == NULL || pub == NULL ||
        (pctx = EVP_PKEY_CTX_new_from_pkey(libctx, pub, TM_NOT_US)) == NULL ||
        EVP_PKEY_encrypt_init_ex(pctx, p) <= 0 || EVP_PKEY_encrypt(pctx, out, &len, in, inlen) <= 0)
        goto out;
    *outlen = len;
    ok = 1;
out:
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static int ac_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    ac_ctx *c = vctx;
    size_t k;

    return_val_if_fail(c != NULL && c->key != NULL && !c->decrypt, 0);
    k = (size_t)(prov_key_bits(c->key) + 7) / 8;
    if (out == NULL) {
        *outlen = k;
        return 1;
    }
    return soft_encrypt(c, out, outlen, outsize, in, inlen);
}

/* ---- decryption: on the token ---------------------------------------------- */

/* One C_Decrypt with mech into out (room for the modulus); the CK_RV. */
static CK_RV token_decrypt(ac_ctx *c, CK_MECHANISM *m, const unsigned char *in, size_t inlen,
                           unsigned char *out, CK_ULONG *outlen)
{
    prov_key *k = c->key;
    CK_FUNCTION_LIST *f = prov_module_fn(prov_token_module(k->tok));
    CK_SESSION_HANDLE s = prov_session_get(c->prov, k->tok);
    CK_RV rv;

    if (s == CK_INVALID_HANDLE)
        return NO_SESSION;
    ERR_set_mark(); /* backend noise (SoftHSM2's "bad decrypt") stays out of the queue */
    rv = f->C_DecryptInit(s, m, __atomic_load_n(&k->priv, __ATOMIC_ACQUIRE));
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
        CK_OBJECT_HANDLE h = prov_key_refind(k, f, s);
        if (h != CK_INVALID_HANDLE)
            rv = f->C_DecryptInit(s, m, h);
    }
    if (rv == CKR_OK)
        rv = f->C_Decrypt(s, (CK_BYTE *)in, inlen, out, outlen);
    ERR_pop_to_mark();
    /* C_Decrypt ends the operation on every error but this one. */
    prov_session_put(k->tok, s, rv == CKR_BUFFER_TOO_SMALL ? CKR_SESSION_CLOSED : rv);
    return rv;
}

static void raise_decrypt(ac_ctx *c, const char *what, CK_RV rv)
{
    if (rv == NO_SESSION)
        return;
    TM_RAISE(c->prov, TM_R_DECRYPT, "token %s could not decrypt with key '%s' (%s): %s",
             prov_token_serial_text(c->key->tok), c->key->label, what, prov_ckr_str(rv));
}

/*
 * The TLS 1.2 RSA key exchange (RFC 5246 7.4.7.1): whatever happens, the
 * answer is 48 bytes, the real premaster secret only when the padding and
 * the client version are right, random bytes otherwise, so the peer learns
 * nothing about the padding. The token decrypts raw (CKM_RSA_X_509) and the
 * check below runs in constant time; only where the token refuses raw RSA
 * does it unpad itself (CKM_RSA_PKCS), and then its error timing is the
 * token's.
 */
static int tls_decrypt(ac_ctx *c, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen, size_t klen)
{
    unsigned char rnd[TLS_PREMASTER_LEN], *em = NULL;
    CK_MECHANISM m = {CKM_RSA_X_509, NULL, 0};
    CK_ULONG len = klen;
    unsigned int good = 0;
    CK_RV rv;
    int ok = 0;

    if (outsize < TLS_PREMASTER_LEN || klen < TLS_PREMASTER_LEN + 11 ||
        (em = OPENSSL_zalloc(klen)) == NULL)
        return 0;
    if (RAND_priv_bytes_ex(prov_libctx(c->prov), rnd, sizeof(rnd), 0) <= 0)
        goto out;
    rv = prov_token_has_mech(c->key->tok, CKM_RSA_X_509) ? token_decrypt(c, &m, in, inlen, em, &len)
                                                         : CKR_MECHANISM_INVALID;
    if (rv == CKR_OK && len == klen) {
        size_t msg = klen - TLS_PREMASTER_LEN;
        unsigned int bad = em[0] | (em[1] ^ 2u) | em[msg - 1];
        for (size_t i = 2; i < msg - 1; i++)
            bad |= (unsigned int)((em[i] - 1u) >> 8) & 1u; /* a zero in the padding string */
        good = ((bad - 1u) >> 8) & 1u;
        memmove(em, em + msg, TLS_PREMASTER_LEN);
    } else if (rv == CKR_MECHANISM_INVALID || rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
        m.mechanism = CKM_RSA_PKCS;
        len = klen;
        rv = token_decrypt(c, &m, in, inlen, em, &len);
        good = rv == CKR_OK && len == TLS_PREMASTER_LEN;
    } else if (rv != CKR_OK && rv != CKR_ENCRYPTED_DATA_INVALID &&
               rv != CKR_ENCRYPTED_DATA_LEN_RANGE) {
        raise_decrypt(c, "TLS premaster secret", rv);
        goto out;
    }
    {
        unsigned int v = ((unsigned int)em[0] << 8) | em[1];
        unsigned int vok = ((((v ^ c->tls_client_version) & 0xffffu) - 1u) >> 16) & 1u;
        if (c->tls_alt_version != 0)
            vok |= ((((v ^ c->tls_alt_version) & 0xffffu) - 1u) >> 16) & 1u;
        unsigned char mask = (unsigned char)(0u - (good & vok));
        for (size_t i = 0; i < TLS_PREMASTER_LEN; i++)
            out[i] = (unsigned char)((em[i] & mask) | (rnd[i] & ~mask));
    }
    *outlen = TLS_PREMASTER_LEN;
    ok = 1;
out:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    OPENSSL_clear_free(em, klen);
    return ok;
}

static int ac_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    ac_ctx *c = vctx;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    unsigned char *buf = NULL;
    size_t klen;
    CK_ULONG len;
    CK_RV rv;
    int ok = 0;

    return_val_if_fail(c != NULL && c->key != NULL && c->decrypt, 0);
    klen = (size_t)(prov_key_bits(c->key) + 7) / 8;
    if (out == NULL) {
        *outlen = c->pad == RSA_PKCS1_WITH_TLS_PADDING ? TLS_PREMASTER_LEN : klen;
        return 1;
    }
    if (c->pad == RSA_PKCS1_WITH_TLS_PADDING)
        return tls_decrypt(c, out, outlen, outsize, in, inlen, klen);
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        const oaep_hash *md = c->oaep_md != NULL ? c->oaep_md : &oaep_hashes[0];
        const oaep_hash *mgf = c->mgf1_md != NULL ? c->mgf1_md : md;
        oaep.hashAlg = md->hash;
        oaep.mgf = mgf->mgf;
        oaep.source = CKZ_DATA_SPECIFIED;
        oaep.pSourceData = c->label_len > 0 ? c->label : NULL;
        oaep.ulSourceDataLen = c->label_len;
        m.mechanism = CKM_RSA_PKCS_OAEP;
        m.pParameter = &oaep;
        m.ulParameterLen = sizeof(oaep);
    } else if (c->pad == RSA_NO_PADDING) {
        m.mechanism = CKM_RSA_X_509;
    }
    /* The token writes up to the modulus length, whatever the caller's buffer. */
    if ((buf = OPENSSL_malloc(klen)) == NULL)
        return 0;
    len = klen;
    rv = token_decrypt(c, &m, in, inlen, buf, &len);
    if (rv != CKR_OK && m.mechanism == CKM_RSA_PKCS_OAEP &&
        (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID) &&
        (oaep.hashAlg != CKM_SHA_1 || oaep.mgf != CKG_MGF1_SHA1 || c->label_len > 0)) {
        TM_RAISE(c->prov, TM_R_DECRYPT,
                 "token %s refused RSA OAEP with %s, MGF1 %s%s for key '%s' (%s); this token may "
                 "know OAEP with SHA-1 and no label only",
                 prov_token_serial_text(c->key->tok),
                 c->oaep_md != NULL ? c->oaep_md->name : "SHA1",
                 c->mgf1_md != NULL   ? c->mgf1_md->name
                 : c->oaep_md != NULL ? c->oaep_md->name
                                      : "SHA1",
                 c->label_len > 0 ? " and a label" : "", c->key->label, prov_ckr_str(rv));
        goto out;
    }
    if (rv != CKR_OK) {
        raise_decrypt(c,
                      m.mechanism == CKM_RSA_PKCS_OAEP ? "RSA OAEP"
                      : m.mechanism == CKM_RSA_X_509   ? "raw RSA"
                                                       : "RSA PKCS#1 v1.5",
                      rv);
        goto out;
    }
    if (len > outsize) {
        TM_RAISE(c->prov, TM_R_DECRYPT, "decrypted message (%lu bytes) does not fit in %zu bytes",
                 (unsigned long)len, outsize);
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    ok = 1;
out:
    OPENSSL_clear_free(buf, klen);
    return ok;
}

static int ac_encrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return init_common(vctx, vkey, 0, params);
}

static int ac_decrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return init_common(vctx, vkey, 1, params);
}

/* ---- software keys: forwarded (forward.h) ---------------------------------- */

/* Points c at the other provider's RSA cipher for k; 1 when k is a software key. */
static int fwd_begin(ac_ctx *c, const prov_key *k, int *ok)
{
    OSSL_FUNC_asym_cipher_newctx_fn *nw;

    c->fwd_on = 0;
    *ok = 1;
    if (!PROV_KEY_IS_SOFT(k))
        return 0;
    if (c->inner == NULL) {
        c->fs = prov_fwd_find(c->prov, OSSL_OP_ASYM_CIPHER, "RSA");
        nw = PROV_FWD_CALL(c->fs, OSSL_FUNC_ASYM_CIPHER_NEWCTX, asym_cipher_newctx);
        if (nw == NULL || (c->inner = nw(c->fs->provctx)) == NULL) {
            *ok = 0;
            return 1;
        }
    }
    c->fwd_on = 1;
    return 1;
}

#define FWD_FN(c, ID, TYPE) PROV_FWD_CALL((c)->fs, OSSL_FUNC_ASYM_CIPHER_##ID, asym_cipher_##TYPE)

static int fw_encrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return ac_encrypt_init(vctx, vkey, params);
    OSSL_FUNC_asym_cipher_encrypt_init_fn *fn = ok ? FWD_FN(c, ENCRYPT_INIT, encrypt_init) : NULL;
    return fn != NULL && fn(c->inner, k->soft_kd, params);
}

static int fw_decrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return ac_decrypt_init(vctx, vkey, params);
    OSSL_FUNC_asym_cipher_decrypt_init_fn *fn = ok ? FWD_FN(c, DECRYPT_INIT, decrypt_init) : NULL;
    return fn != NULL && fn(c->inner, k->soft_kd, params);
}

static int fw_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_encrypt_fn *fn;

    if (!c->fwd_on)
        return ac_encrypt(vctx, out, outlen, outsize, in, inlen);
    fn = FWD_FN(c, ENCRYPT, encrypt);
    return fn != NULL && fn(c->inner, out, outlen, outsize, in, inlen);
}

static int fw_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_decrypt_fn *fn;

    if (!c->fwd_on)
        return ac_decrypt(vctx, out, outlen, outsize, in, inlen);
    fn = FWD_FN(c, DECRYPT, decrypt);
    return fn != NULL && fn(c->inner, out, outlen, outsize, in, inlen);
}

static int fw_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_get_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return ac_get_ctx_params(vctx, params);
    fn = FWD_FN(c, GET_CTX_PARAMS, get_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static int fw_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_set_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return ac_set_ctx_params(vctx, params);
    fn = FWD_FN(c, SET_CTX_PARAMS, set_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static const OSSL_PARAM *fw_gettable_ctx_params(void *vctx, void *provctx)
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_gettable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return ac_gettable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, GETTABLE_CTX_PARAMS, gettable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

static const OSSL_PARAM *fw_settable_ctx_params(void *vctx, void *provctx)
{
    ac_ctx *c = vctx;
    OSSL_FUNC_asym_cipher_settable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return ac_settable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, SETTABLE_CTX_PARAMS, settable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

const OSSL_DISPATCH prov_rsa_asym_cipher_functions[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))ac_newctx},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))ac_freectx},
    {OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))ac_dupctx},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))fw_encrypt_init},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))fw_encrypt},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))fw_decrypt_init},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))fw_decrypt},
    {OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))fw_get_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))fw_gettable_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))fw_set_ctx_params},
    {OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))fw_settable_ctx_params},
    {0, NULL},
};
