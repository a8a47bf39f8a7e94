/*
 * Signatures with token keys: RSA PKCS#1 v1.5 and PSS, ECDSA, EdDSA.
 *
 * Hashing happens here in software (child library context, default provider)
 * and the token signs the digest with the raw mechanism (CKM_RSA_PKCS,
 * CKM_RSA_PKCS_PSS, CKM_ECDSA); that works on every token, including
 * SoftHSM2 whose only EC mechanism is CKM_ECDSA. Where a token lacks the raw
 * mechanism the whole message is kept and the combined mechanism is used.
 * EdDSA always signs the whole message.
 *
 * With enforcement on, digest-sign also keeps the message (up to
 * TM_GUARD_MAX bytes) so profile_guard.c can look at it before the token
 * signs.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "forward.h"
#include "key.h"
#include "profile_guard.h"
#include "session.h"

#define SALT_DIGEST -1
#define SALT_MAX -2

typedef struct {
    const char *name;
    CK_MECHANISM_TYPE hash, rsa_combined, pss_combined, ecdsa_combined;
    CK_RSA_PKCS_MGF_TYPE mgf;
    size_t len;
    unsigned char info[19]; /* DER DigestInfo prefix (RFC 8017 section 9.2) */
    size_t info_len;
} hash_info;

static const hash_info hashes[] = {
    {"SHA1",
     CKM_SHA_1,
     CKM_SHA1_RSA_PKCS,
     CKM_SHA1_RSA_PKCS_PSS,
     CKM_ECDSA_SHA1,
     CKG_MGF1_SHA1,
     20,
     {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
     15},
    {"SHA224",
     CKM_SHA224,
     CKM_SHA224_RSA_PKCS,
     CKM_SHA224_RSA_PKCS_PSS,
     0x1043UL,
     CKG_MGF1_SHA224,
     28,
     {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
      0x05, 0x00, 0x04, 0x1c},
     19},
    {"SHA256",
     CKM_SHA256,
     CKM_SHA256_RSA_PKCS,
     CKM_SHA256_RSA_PKCS_PSS,
     0x1044UL,
     CKG_MGF1_SHA256,
     32,
     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
      0x05, 0x00, 0x04, 0x20},
     19},
    {"SHA384",
     CKM_SHA384,
     CKM_SHA384_RSA_PKCS,
     CKM_SHA384_RSA_PKCS_PSS,
     0x1045UL,
     CKG_MGF1_SHA384,
     48,
     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
      0x05, 0x00, 0x04, 0x30},
     19},
    {"SHA512",
     CKM_SHA512,
     CKM_SHA512_RSA_PKCS,
     CKM_SHA512_RSA_PKCS_PSS,
     0x1046UL,
     CKG_MGF1_SHA512,
     64,
     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
      0x05, 0x00, 0x04, 0x40},
     19},
};

static const hash_info *hash_by_md(const EVP_MD *md)
{
    for (size_t i = 0; md != NULL && i < sizeof(hashes) / sizeof(hashes[0]); i++) {
        if (EVP_MD_is_a(md, hashes[i].name))
            return &hashes[i];
    }
    return NULL;
}

typedef struct {
    prov_ctx *prov;
    prov_key *key;
    int pad;
    EVP_MD *md;
    const hash_info *hi;
    const hash_info *mgf1;
    int saltlen;
    int salt_set; /* verification: only an explicit salt length is enforced */

    int digest_mode;
    int md_started;
    int verify;
    EVP_MD_CTX *mdctx; /* running hash (digest-sign with a hash) */
    int keep_all;      /* the token needs the whole message */
    int keep_for_guard;
    unsigned char *buf;
    size_t len, cap, total;
    unsigned char head[8];
    size_t head_len;
    int overflow;

    /* a software key: the other provider's signature does everything */
    int fwd_on;
    const prov_fwd *fs;
    void *inner;
} sig_ctx;

static void *sig_newctx(void *provctx, const char *propq)
{
    sig_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = SALT_DIGEST;
    return c;
}

static void reset_data(sig_ctx *c)
{
    if (c->buf != NULL)
        OPENSSL_clear_free(c->buf, c->cap);
    c->buf = NULL;
    c->len = c->cap = c->total = c->head_len = 0;
    c->overflow = 0;
}

static void sig_freectx(void *vctx)
{
    sig_ctx *c = vctx;
    if (c == NULL)
        return;
    if (c->inner != NULL) {
        OSSL_FUNC_signature_freectx_fn *fr =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_SIGNATURE_FREECTX, signature_freectx);
        if (fr != NULL)
            fr(c->inner);
    }
    reset_data(c);
    EVP_MD_CTX_free(c->mdctx);
    EVP_MD_free(c->md);
    prov_key_free(c->key);
    free(c);
}

static void *sig_dupctx(void *vctx)
{
    sig_ctx *c = vctx, *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *c;
    d->buf = NULL;
    d->mdctx = NULL;
    d->inner = NULL;
    if (c->inner != NULL) {
        OSSL_FUNC_signature_dupctx_fn *dup =
            PROV_FWD_CALL(c->fs, OSSL_FUNC_SIGNATURE_DUPCTX, signature_dupctx);
        if (dup == NULL || (d->inner = dup(c->inner)) == NULL) {
            free(d);
            return NULL;
        }
    }
    prov_key_up(d->key);
    if (d->md != NULL)
        EVP_MD_up_ref(d->md);
    if (c->buf != NULL) {
        if ((d->buf = malloc(c->cap)) == NULL)
            goto fail;
        memcpy(d->buf, c->buf, c->len);
    }
    if (c->mdctx != NULL &&
        ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)))
        goto fail;
    return d;
fail:
    sig_freectx(d);
    return NULL;
}

static int set_md(sig_ctx *c, const char *name)
{
    EVP_MD *md;
    const hash_info *hi;

    if (name == NULL || name[0] == '\0')
        return 1;
    if (c->key != NULL && c->key->type == TM_KEY_ED25519) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED, "Ed25519 takes no digest (asked for %s)", name);
        return 0;
    }
    /* Fetched once per provider: a fetch per signature is measurable. */
    md = prov_md(c->prov, name);
    hi = hash_by_md(md);
    if (hi == NULL) {
        EVP_MD_free(md);
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "digest %s is not supported for token signatures (SHA-1, SHA-224, SHA-256, "
                 "SHA-384, SHA-512 are)",
                 name);
        return 0;
    }
    EVP_MD_free(c->md);
    c->md = md;
    c->hi = hi;
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int init_common(sig_ctx *c, void *vkey, const OSSL_PARAM params[])
{
    prov_key *k = vkey;

    if (k == NULL || (!c->verify && !prov_key_has_private(k))) {
        TM_RAISE(c->prov, TM_R_SIGN, "this key has no private half on a token");
        return 0;
    }
    prov_key_free(c->key);
    c->key = prov_key_up(k);
    c->pad = k->pss_only ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
    c->saltlen = SALT_DIGEST;
    c->salt_set = 0;
    c->mgf1 = NULL;
    reset_data(c);
    return sig_set_ctx_params(c, params);
}

static int sig_sign_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    c->digest_mode = 0;
    c->verify = 0;
    return init_common(c, vkey, params);
}

static CK_MECHANISM_TYPE raw_mech(const sig_ctx *c)
{
    switch (c->key->type) {
    case TM_KEY_RSA:
        return c->pad == RSA_PKCS1_PSS_PADDING ? CKM_RSA_PKCS_PSS : CKM_RSA_PKCS;
    case TM_KEY_EC:
        return CKM_ECDSA;
    case TM_KEY_ED25519:
        return CKM_EDDSA;
    }
    return CKM_VENDOR_DEFINED;
}

/*
 * Does the token get the whole message: always for EdDSA, and when it lacks
 * the raw mechanism for the key and padding (then *combined is set: a
 * hash-and-sign mechanism is used). The padding may change after init, so
 * this is asked again when signing.
 */
static int signs_whole_message(const sig_ctx *c, int *combined)
{
    *combined = c->key->type != TM_KEY_ED25519 && !prov_token_has_mech(c->key->tok, raw_mech(c));
    return c->key->type == TM_KEY_ED25519 || *combined;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *vkey,
                                const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    prov_key *k = vkey;
    int combined;

    c->digest_mode = 1;
    c->verify = 0;
    if (!init_common(c, vkey, params))
        return 0;
    if (k->type != TM_KEY_ED25519) {
        if (!set_md(c, mdname != NULL && mdname[0] != '\0' ? mdname
                       : c->md != NULL                     ? EVP_MD_get0_name(c->md)
                                                           : prov_key_default_digest(k)))
            return 0;
        c->md_started = 0; /* the running hash starts at the first update */
    }
    c->keep_for_guard = c->prov->enforce;
    c->keep_all = signs_whole_message(c, &combined);
    return 1;
}

static int keep(sig_ctx *c, const unsigned char *data, size_t len)
{
    if (c->head_len < sizeof(c->head)) {
        size_t n = len < sizeof(c->head) - c->head_len ? len : sizeof(c->head) - c->head_len;
        memcpy(c->head + c->head_len, data, n);
        c->head_len += n;
    }
    c->total += len;
    if (c->overflow)
        return 1;
    if (!c->keep_all && c->len + len > TM_GUARD_MAX) {
        c->overflow = 1;
        return 1;
    }
    if (c->len + len > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + len)
            cap *= 2;
        unsigned char *grown = OPENSSL_clear_realloc(c->buf, c->cap, cap);
        if (grown == NULL)
            return 0;
        c->buf = grown;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return 1;
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *c = vctx;

    return_val_if_fail(c != NULL && c->key != NULL && c->digest_mode, 0);
    if (c->md != NULL && !c->md_started) {
        if ((c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL) ||
            !EVP_DigestInit_ex(c->mdctx, c->md, NULL))
            return 0;
        c->md_started = 1;
    }
    if (c->md != NULL && !EVP_DigestUpdate(c->mdctx, data, len))
        return 0;
    if (c->keep_all || c->keep_for_guard)
        return keep(c, data, len);
    return 1;
}

/* r||s from the token -> DER ECDSA-Sig-Value. */
static int ecdsa_to_der(sig_ctx *c, const unsigned char *raw, size_t raw_len, unsigned char *sig,
                        size_t *siglen, size_t sigsize)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
    BIGNUM *s = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
    unsigned char *p = sig;
    int n, ok = 0;

    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
        goto out;
    r = s = NULL;
    n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0 || (size_t)n > sigsize) {
        TM_RAISE(c->prov, TM_R_SIGN, "signature buffer too small");
        goto out;
    }
    i2d_ECDSA_SIG(es, &p);
    *siglen = (size_t)n;
    ok = 1;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ok;
}

static int pss_salt(const sig_ctx *c, const hash_info *hi)
{
    if (c->saltlen >= 0)
        return c->saltlen;
    if (c->saltlen == SALT_MAX) {
        int em_len = (prov_key_bits(c->key) - 1 + 7) / 8;
        return em_len - (int)hi->len - 2;
    }
    return (int)hi->len;
}

/*
 * Signs msg with the token. With combined set, msg is the whole message and
 * the combined mechanism is used; otherwise msg is the digest (or, for RSA
 * without a digest, the caller's already-encoded block; for EdDSA, the message).
 */
static int token_sign(sig_ctx *c, const unsigned char *msg, size_t msg_len, int combined,
                      unsigned char *sig, size_t *siglen, size_t sigsize)
{
    prov_key *k = c->key;
    unsigned char in[EVP_MAX_MD_SIZE + 32], raw[512];
    const unsigned char *data = msg;
    size_t data_len = msg_len, raw_len = 0;
    CK_MECHANISM_TYPE mech = raw_mech(c);
    CK_RSA_PKCS_PSS_PARAMS pss;
    void *param = NULL;
    CK_ULONG param_len = 0;
    size_t need = (size_t)prov_key_max_sig(k);

    if (sigsize < need && k->type != TM_KEY_EC) {
        TM_RAISE(c->prov, TM_R_SIGN, "signature buffer of %zu bytes is too small (need %zu)",
                 sigsize, need);
        return 0;
    }
    if (k->type == TM_KEY_RSA && c->pad == RSA_PKCS1_PSS_PADDING) {
        const hash_info *mg = c->mgf1 != NULL ? c->mgf1 : c->hi;
        if (c->hi == NULL) {
            TM_RAISE(c->prov, TM_R_SIGN, "RSA-PSS needs a digest");
            return 0;
        }
        pss.hashAlg = c->hi->hash;
        pss.mgf = mg->mgf;
        pss.sLen = (CK_ULONG)pss_salt(c, c->hi);
        param = &pss;
        param_len = sizeof(pss);
        if (combined)
            mech = c->hi->pss_combined;
    } else if (k->type == TM_KEY_RSA && c->hi != NULL) {
        if (combined) {
            mech = c->hi->rsa_combined;
        } else {
            if (msg_len != c->hi->len) {
                TM_RAISE(c->prov, TM_R_SIGN, "input is %zu bytes, not a %s digest", msg_len,
                         c->hi->name);
                return 0;
            }
            memcpy(in, c->hi->info, c->hi->info_len);
            memcpy(in + c->hi->info_len, msg, msg_len);
            data = in;
            data_len = c->hi->info_len + msg_len;
        }
    } else if (k->type == TM_KEY_EC && combined) {
        mech = c->hi->ecdsa_combined;
    }
    if (!prov_key_sign(k, mech, param, param_len, data, data_len, raw, &raw_len, sizeof(raw)))
        return 0;
    if (k->type == TM_KEY_EC)
        return ecdsa_to_der(c, raw, raw_len, sig, siglen, sigsize);
    memcpy(sig, raw, raw_len);
    *siglen = raw_len;
    OPENSSL_cleanse(in, sizeof(in));
    return 1;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;

    return_val_if_fail(c != NULL && c->key != NULL, 0);
    if (sig == NULL) {
        *siglen = (size_t)prov_key_max_sig(c->key);
        return 1;
    }
    if (c->key->type == TM_KEY_ED25519) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "Ed25519 signs whole messages: use digest-sign "
                 "(pkeyutl -rawin)");
        return 0;
    }
    return token_sign(c, tbs, tbslen, 0, sig, siglen, sigsize);
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok = 0, combined;

    return_val_if_fail(c != NULL && c->key != NULL && c->digest_mode, 0);
    if (sig == NULL) {
        *siglen = (size_t)prov_key_max_sig(c->key);
        return 1;
    }
    if (c->keep_for_guard) {
        if (c->overflow) {
            if (prov_guard_could_be_der(c->head, c->head_len, c->total)) {
                TM_RAISE(c->prov, TM_R_PROFILE,
                         "refusing to sign a %zu-byte DER structure too large for the profile "
                         "check",
                         c->total);
                goto out;
            }
        } else if (!prov_guard_check(c->prov, c->key, c->buf, c->len)) {
            goto out;
        }
    }
    if (signs_whole_message(c, &combined)) {
        if (c->overflow || c->buf == NULL) {
            TM_RAISE(c->prov, TM_R_SIGN, "the message was not kept; cannot sign it");
            goto out;
        }
        ok = token_sign(c, c->buf, c->len, combined, sig, siglen, sigsize);
        goto out;
    }
    if (!c->md_started) {
        if (!EVP_Digest("", 0, dgst, &dlen, c->md, NULL))
            goto out;
    } else if (!EVP_DigestFinal_ex(c->mdctx, dgst, &dlen)) {
        goto out;
    }
    c->md_started = 0;
    ok = token_sign(c, dgst, dlen, 0, sig, siglen, sigsize);
out:
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ok;
}

/*
 * One shot: the message is all here, so nothing is copied and the context is
 * left as it was (EVP_DigestSign may be called again on it).
 */
static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int combined;

    return_val_if_fail(c != NULL && c->key != NULL && c->digest_mode, 0);
    if (sig == NULL) {
        *siglen = (size_t)prov_key_max_sig(c->key);
        return 1;
    }
    if (c->total > 0 || c->md_started) /* updates came first: finish those */
        return sig_digest_sign_update(c, tbs, tbslen) &&
               sig_digest_sign_final(c, sig, siglen, sigsize);
    if (c->keep_for_guard && !prov_guard_check(c->prov, c->key, tbs, tbslen))
        return 0;
    if (signs_whole_message(c, &combined))
        return token_sign(c, tbs, tbslen, combined, sig, siglen, sigsize);
    if (!EVP_Digest(tbs, tbslen, dgst, &dlen, c->md, NULL))
        return 0;
    return token_sign(c, dgst, dlen, 0, sig, siglen, sigsize);
}

/* DER AlgorithmIdentifier of the signature this context makes. */
static int algorithm_id(sig_ctx *c, unsigned char **der)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    int len = -1, nid = NID_undef;

    if (alg == NULL)
        return -1;
    if (c->key->type == TM_KEY_ED25519) {
        X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL);
    } else if (c->key->type == TM_KEY_RSA && c->pad == RSA_PKCS1_PSS_PADDING) {
        RSA_PSS_PARAMS *pp = RSA_PSS_PARAMS_new();
        X509_ALGOR *mgf_md = X509_ALGOR_new();
        ASN1_STRING *mgf_der = NULL, *pp_der = NULL;
        const hash_info *mg = c->mgf1 != NULL ? c->mgf1 : c->hi;
        int salt = c->hi != NULL ? pss_salt(c, c->hi) : -1;
        int ok = pp != NULL && mgf_md != NULL && c->hi != NULL && salt >= 0;

        /* SHA-1 and salt 20 are the DEFAULTs and are left out (DER). */
        if (ok && strcmp(c->hi->name, "SHA1") != 0) {
            ok = (pp->hashAlgorithm = X509_ALGOR_new()) != NULL;
            if (ok)
                X509_ALGOR_set0(pp->hashAlgorithm, OBJ_txt2obj(c->hi->name, 0), V_ASN1_UNDEF, NULL);
        }
        if (ok && strcmp(mg->name, "SHA1") != 0) {
            X509_ALGOR_set0(mgf_md, OBJ_txt2obj(mg->name, 0), V_ASN1_UNDEF, NULL);
            ok = (mgf_der = ASN1_item_pack(mgf_md, ASN1_ITEM_rptr(X509_ALGOR), NULL)) != NULL &&
                 (pp->maskGenAlgorithm = X509_ALGOR_new()) != NULL;
            if (ok) {
                X509_ALGOR_set0(pp->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
                                mgf_der);
                mgf_der = NULL;
            }
        }
        if (ok && salt != 20)
            ok = (pp->saltLength = ASN1_INTEGER_new()) != NULL &&
                 ASN1_INTEGER_set(pp->saltLength, salt);
        if (ok)
            ok = (pp_der = ASN1_item_pack(pp, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL)) != NULL;
        if (ok)
            X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, pp_der);
        ASN1_STRING_free(mgf_der);
        X509_ALGOR_free(mgf_md);
        RSA_PSS_PARAMS_free(pp);
        if (!ok) {
            ASN1_STRING_free(pp_der);
            goto out;
        }
    } else {
        int md_nid = c->hi != NULL ? OBJ_txt2nid(c->hi->name) : NID_undef;
        if (md_nid == NID_undef || c->hi == NULL ||
            !OBJ_find_sigid_by_algs(&nid, md_nid,
                                    c->key->type == TM_KEY_RSA ? NID_rsaEncryption
                                                               : NID_X9_62_id_ecPublicKey))
            goto out;
        X509_ALGOR_set0(alg, OBJ_nid2obj(nid),
                        c->key->type == TM_KEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL);
    }
    len = i2d_X509_ALGOR(alg, der);
out:
    X509_ALGOR_free(alg);
    return len;
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    OSSL_PARAM *p;

    return_val_if_fail(c != NULL, 0);
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL) {
        unsigned char *der = NULL;
        int len = c->key != NULL ? algorithm_id(c, &der) : -1;
        int ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);
        OPENSSL_free(der);
        if (!ok)
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
        !OSSL_PARAM_set_utf8_string(p, c->hi != NULL ? c->hi->name : ""))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, c->pad))
                return 0;
        } else if (!OSSL_PARAM_set_utf8_string(p,
                                               c->pad == RSA_PKCS1_PSS_PADDING ? "pss" : "pkcs1")) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL &&
        p->data_type == OSSL_PARAM_INTEGER &&
        !OSSL_PARAM_set_int(p, c->hi != NULL ? pss_salt(c, c->hi) : c->saltlen))
        return 0;
    return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL),
        OSSL_PARAM_END,
    };
    return t;
}

/* The text forms of the PSS salt length, as the integer form has them. */
static int salt_from_text(const char *s, int *v)
{
    char *end;
    long n;

    if (strcmp(s, "digest") == 0) {
        *v = RSA_PSS_SALTLEN_DIGEST;
        return 1;
    }
    if (strcmp(s, "max") == 0 || strcmp(s, "auto") == 0) {
        *v = RSA_PSS_SALTLEN_MAX;
        return 1;
    }
    n = strtol(s, &end, 10);
    if (end == s || *end != '\0' || n < INT_MIN || n > INT_MAX)
        return 0;
    *v = (int)n;
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    const OSSL_PARAM *p;
    const char *s = NULL;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || !set_md(c, s))
            return 0;
        if (c->digest_mode && c->mdctx != NULL && !EVP_DigestInit_ex(c->mdctx, c->md, NULL))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        int pad = 0;
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_get_int(p, &pad))
                return 0;
        } else if (OSSL_PARAM_get_utf8_string_ptr(p, &s)) {
            pad = strcmp(s, "pss") == 0     ? RSA_PKCS1_PSS_PADDING
                  : strcmp(s, "pkcs1") == 0 ? RSA_PKCS1_PADDING
                                            : 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                     "RSA padding mode not supported for token keys (pkcs1 and pss are)");
            return 0;
        }
        if (c->key != NULL && c->key->type != TM_KEY_RSA) {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED, "a padding mode applies to RSA keys only, not %s",
                     prov_key_type_name(c->key));
            return 0;
        }
        c->pad = pad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        const char *text = NULL;
        int v;
        if (p->data_type != OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_get_int(p, &v))
                return 0;
        } else if (!OSSL_PARAM_get_utf8_string_ptr(p, &text) || !salt_from_text(text, &v)) {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                     "PSS salt length \"%s\" is not digest, max, auto or a number",
                     text != NULL ? text : "");
            return 0;
        }
        c->salt_set = 1;
        c->saltlen = v == RSA_PSS_SALTLEN_DIGEST ? SALT_DIGEST : v < 0 ? SALT_MAX : v;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
        EVP_MD *md;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
            return 0;
        md = prov_md(c->prov, s);
        c->mgf1 = hash_by_md(md);
        EVP_MD_free(md);
        if (c->mgf1 == NULL) {
            TM_RAISE(c->prov, TM_R_UNSUPPORTED, "MGF1 digest %s is not supported", s);
            return 0;
        }
    }
    return 1;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

/*
 * Verification is software work: it is handed to the default provider with
 * the key's public half. It is here at all because OpenSSL may pick this
 * provider's signature implementation for any key of a matching type (the
 * public key of a request, say) once it can import that key.
 */
static EVP_PKEY_CTX *soft_ctx(sig_ctx *c, EVP_PKEY *pkey, EVP_MD_CTX *mctx)
{
    OSSL_LIB_CTX *libctx = prov_libctx(c->prov);
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM p[5];
    int n = 0, salt = c->saltlen;
    const char *md = c->hi != NULL ? c->hi->name : NULL;

    if (libctx == NULL || pkey == NULL)
        return NULL;
    if (mctx != NULL) {
        if (EVP_DigestVerifyInit_ex(mctx, &pctx, c->key->type == TM_KEY_ED25519 ? NULL : md, libctx,
                                    TM_NOT_US, pkey, NULL) <= 0)
            return NULL;
    } else {
        if ((pctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, TM_NOT_US)) == NULL ||
            EVP_PKEY_verify_init(pctx) <= 0) {
            EVP_PKEY_CTX_free(pctx);
            return NULL;
        }
        if (md != NULL)
            p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)md, 0);
    }
    if (c->key->type == TM_KEY_RSA) {
        p[n++] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, &c->pad);
        if (c->pad == RSA_PKCS1_PSS_PADDING && c->salt_set) {
            if (c->saltlen == SALT_DIGEST)
                salt = RSA_PSS_SALTLEN_DIGEST;
            else if (c->saltlen == SALT_MAX)
                salt = RSA_PSS_SALTLEN_AUTO;
            p[n++] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &salt);
        }
        if (c->pad == RSA_PKCS1_PSS_PADDING && c->mgf1 != NULL)
            p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                      (char *)c->mgf1->name, 0);
    }
    p[n] = OSSL_PARAM_construct_end();
    if (n > 0 && EVP_PKEY_CTX_set_params(pctx, p) <= 0) {
        if (mctx == NULL)
            EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    return pctx;
}

static int sig_verify_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    c->digest_mode = 0;
    c->verify = 1;
    return init_common(c, vkey, params);
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen)
{
    sig_ctx *c = vctx;
    EVP_PKEY_CTX *pctx;
    int r;

    return_val_if_fail(c != NULL && c->key != NULL && c->verify, 0);
    pctx = soft_ctx(c, prov_key_soft_public(c->key), NULL);
    r = pctx != NULL && EVP_PKEY_verify(pctx, sig, siglen, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(pctx);
    return r;
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *vkey,
                                  const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;

    c->digest_mode = 1;
    c->verify = 1;
    if (!init_common(c, vkey, params))
        return 0;
    if (c->key->type != TM_KEY_ED25519 && mdname != NULL && mdname[0] != '\0' && !set_md(c, mdname))
        return 0;
    c->keep_all = 1;
    c->keep_for_guard = 0;
    return 1;
}

static int sig_digest_verify_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *c = vctx;
    return_val_if_fail(c != NULL && c->verify, 0);
    return keep(c, data, len);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sig_ctx *c = vctx;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int r = 0;

    return_val_if_fail(c != NULL && c->verify, 0);
    if (mctx != NULL && soft_ctx(c, prov_key_soft_public(c->key), mctx) != NULL)
        r = EVP_DigestVerify(mctx, sig, siglen, c->buf != NULL ? c->buf : (unsigned char *)"",
                             c->len) == 1;
    EVP_MD_CTX_free(mctx);
    return r;
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    return sig_digest_verify_update(vctx, tbs, tbslen) &&
           sig_digest_verify_final(vctx, sig, siglen);
}

/* ---- software keys: forwarded (forward.h) ---------------------------------- */

/* Points c at the other provider's signature for k; 1 when k is a software key. */
static int fwd_begin(sig_ctx *c, const prov_key *k, int *ok)
{
    OSSL_FUNC_signature_newctx_fn *nw;

    c->fwd_on = 0;
    *ok = 1;
    if (!PROV_KEY_IS_SOFT(k))
        return 0;
    if (c->inner == NULL) {
        c->fs = prov_fwd_find(c->prov, OSSL_OP_SIGNATURE, prov_key_op_name(k, OSSL_OP_SIGNATURE));
        nw = PROV_FWD_CALL(c->fs, OSSL_FUNC_SIGNATURE_NEWCTX, signature_newctx);
        if (nw == NULL || (c->inner = nw(c->fs->provctx, NULL)) == NULL) {
            *ok = 0;
            return 1;
        }
    }
    c->fwd_on = 1;
    return 1;
}

#define FWD_FN(c, ID, TYPE) PROV_FWD_CALL((c)->fs, OSSL_FUNC_SIGNATURE_##ID, signature_##TYPE)

static int fw_sign_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return sig_sign_init(vctx, vkey, params);
    OSSL_FUNC_signature_sign_init_fn *fn = ok ? FWD_FN(c, SIGN_INIT, sign_init) : NULL;
    return fn != NULL && fn(c->inner, k->soft_kd, params);
}

static int fw_verify_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return sig_verify_init(vctx, vkey, params);
    OSSL_FUNC_signature_verify_init_fn *fn = ok ? FWD_FN(c, VERIFY_INIT, verify_init) : NULL;
    return fn != NULL && fn(c->inner, k->soft_kd, params);
}

static int fw_digest_sign_init(void *vctx, const char *mdname, void *vkey,
                               const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return sig_digest_sign_init(vctx, mdname, vkey, params);
    OSSL_FUNC_signature_digest_sign_init_fn *fn =
        ok ? FWD_FN(c, DIGEST_SIGN_INIT, digest_sign_init) : NULL;
    return fn != NULL && fn(c->inner, mdname, k->soft_kd, params);
}

static int fw_digest_verify_init(void *vctx, const char *mdname, void *vkey,
                                 const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    prov_key *k = vkey;
    int ok;

    if (!fwd_begin(c, k, &ok))
        return sig_digest_verify_init(vctx, mdname, vkey, params);
    OSSL_FUNC_signature_digest_verify_init_fn *fn =
        ok ? FWD_FN(c, DIGEST_VERIFY_INIT, digest_verify_init) : NULL;
    return fn != NULL && fn(c->inner, mdname, k->soft_kd, params);
}

static int fw_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                   const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_sign_fn *fn;

    if (!c->fwd_on)
        return sig_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
    fn = FWD_FN(c, SIGN, sign);
    return fn != NULL && fn(c->inner, sig, siglen, sigsize, tbs, tbslen);
}

static int fw_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                     size_t tbslen)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_verify_fn *fn;

    if (!c->fwd_on)
        return sig_verify(vctx, sig, siglen, tbs, tbslen);
    fn = FWD_FN(c, VERIFY, verify);
    return fn != NULL && fn(c->inner, sig, siglen, tbs, tbslen);
}

static int fw_digest_sign_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_sign_update_fn *fn;

    if (!c->fwd_on)
        return sig_digest_sign_update(vctx, data, len);
    fn = FWD_FN(c, DIGEST_SIGN_UPDATE, digest_sign_update);
    return fn != NULL && fn(c->inner, data, len);
}

static int fw_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_sign_final_fn *fn;

    if (!c->fwd_on)
        return sig_digest_sign_final(vctx, sig, siglen, sigsize);
    fn = FWD_FN(c, DIGEST_SIGN_FINAL, digest_sign_final);
    return fn != NULL && fn(c->inner, sig, siglen, sigsize);
}

/* The other provider may stream only (RSA, ECDSA) or be one-shot only (EdDSA). */
static int fw_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                          const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_sign_fn *fn;

    if (!c->fwd_on)
        return sig_digest_sign(vctx, sig, siglen, sigsize, tbs, tbslen);
    if ((fn = FWD_FN(c, DIGEST_SIGN, digest_sign)) != NULL)
        return fn(c->inner, sig, siglen, sigsize, tbs, tbslen);
    if (sig == NULL) /* a size query must not feed the hash */
        return fw_digest_sign_final(vctx, NULL, siglen, 0);
    return fw_digest_sign_update(vctx, tbs, tbslen) &&
           fw_digest_sign_final(vctx, sig, siglen, sigsize);
}

static int fw_digest_verify_update(void *vctx, const unsigned char *data, size_t len)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_verify_update_fn *fn;

    if (!c->fwd_on)
        return sig_digest_verify_update(vctx, data, len);
    fn = FWD_FN(c, DIGEST_VERIFY_UPDATE, digest_verify_update);
    return fn != NULL && fn(c->inner, data, len);
}

static int fw_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_verify_final_fn *fn;

    if (!c->fwd_on)
        return sig_digest_verify_final(vctx, sig, siglen);
    fn = FWD_FN(c, DIGEST_VERIFY_FINAL, digest_verify_final);
    return fn != NULL && fn(c->inner, sig, siglen);
}

static int fw_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                            const unsigned char *tbs, size_t tbslen)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_digest_verify_fn *fn;

    if (!c->fwd_on)
        return sig_digest_verify(vctx, sig, siglen, tbs, tbslen);
    if ((fn = FWD_FN(c, DIGEST_VERIFY, digest_verify)) != NULL)
        return fn(c->inner, sig, siglen, tbs, tbslen);
    return fw_digest_verify_update(vctx, tbs, tbslen) && fw_digest_verify_final(vctx, sig, siglen);
}

static int fw_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_get_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return sig_get_ctx_params(vctx, params);
    fn = FWD_FN(c, GET_CTX_PARAMS, get_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static int fw_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_set_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return sig_set_ctx_params(vctx, params);
    fn = FWD_FN(c, SET_CTX_PARAMS, set_ctx_params);
    return fn != NULL && fn(c->inner, params);
}

static const OSSL_PARAM *fw_gettable_ctx_params(void *vctx, void *provctx)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_gettable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return sig_gettable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, GETTABLE_CTX_PARAMS, gettable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

static const OSSL_PARAM *fw_settable_ctx_params(void *vctx, void *provctx)
{
    sig_ctx *c = vctx;
    OSSL_FUNC_signature_settable_ctx_params_fn *fn;

    if (c == NULL || !c->fwd_on)
        return sig_settable_ctx_params(vctx, provctx);
    fn = FWD_FN(c, SETTABLE_CTX_PARAMS, settable_ctx_params);
    return fn != NULL ? fn(c->inner, c->fs->provctx) : NULL;
}

#define TM_SIGNATURE(prefix)                                                                       \
    const OSSL_DISPATCH prov_##prefix##_signature_functions[] = {                                  \
        {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},                                  \
        {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},                                \
        {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},                                  \
        {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))fw_sign_init},                             \
        {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))fw_sign},                                       \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))fw_digest_sign_init},               \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))fw_digest_sign_update},           \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))fw_digest_sign_final},             \
        {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))fw_digest_sign},                         \
        {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))fw_verify_init},                         \
        {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))fw_verify},                                   \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))fw_digest_verify_init},           \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))fw_digest_verify_update},       \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))fw_digest_verify_final},         \
        {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))fw_digest_verify},                     \
        {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))fw_get_ctx_params},                   \
        {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))fw_gettable_ctx_params},         \
        {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))fw_set_ctx_params},                   \
        {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))fw_settable_ctx_params},         \
        {0, NULL},                                                                                 \
    }

TM_SIGNATURE(rsa);
TM_SIGNATURE(ecdsa);
TM_SIGNATURE(eddsa);
