/*
 * Internal API shared by the tokenmint provider's files. Nothing here is
 * exported from tokenmint.so: the only public symbol is OSSL_provider_init.
 */
#ifndef TOKENMINT_PROVIDER_H
#define TOKENMINT_PROVIDER_H

#include <pthread.h>
#include <stddef.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/types.h>

#include "p11c.h"
#include "tm_profile.h"

#define TM_PROV_NAME "tokenmint"
#define TM_PROV_PROPS "provider=tokenmint"

/* Reason codes of the provider's errors (strings in provider.c). */
enum {
    TM_R_BAD_URI = 1,
    TM_R_MODULE,
    TM_R_TOKEN_NOT_FOUND,
    TM_R_OBJECT_NOT_FOUND,
    TM_R_LOGIN,
    TM_R_PIN_NEEDED,
    TM_R_SIGN,
    TM_R_PROFILE,
    TM_R_CONFIG,
    TM_R_UNSUPPORTED,
    TM_R_DECRYPT,
    TM_R_DERIVE,
    TM_R_KEYGEN,
};

typedef struct prov_uri prov_uri;
typedef struct prov_module prov_module;
typedef struct prov_token prov_token;
typedef struct prov_key prov_key;

/* One provider instance (one per library context that loads it). */
typedef struct prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    const OSSL_DISPATCH *core_in; /* the core's functions, for the child context */
    pthread_mutex_t lock;
    OSSL_LIB_CTX *child; /* made on first use: software digests */
    char *module_path;
    char *pin_source;
    char *profile_path;
    int enforce;
    unsigned int secret_flags; /* P11C_SECRET_ALLOW_OPEN with allow-open-secrets = on */
    prov_uri **issuing;
    size_t n_issuing;
    tm_profile *profile;
    prov_module *module; /* loaded on first use, shared process-wide */
    EVP_MD *mds[8];      /* digests fetched so far */
    size_t n_mds;
    void *fwd_cache;             /* forward.c: other providers' implementations */
    OSSL_PARAM *gen_settable[4]; /* keymgmt.c: per key manager, made on first use */
} prov_ctx;

/* ---- provider.c ---------------------------------------------------------- */

/* Raises an error for the core's error queue; fmt is the person-readable part. */
void prov_raise(prov_ctx *prov, int reason, const char *file, int line, const char *func,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define TM_RAISE(prov, reason, ...)                                                                \
    prov_raise((prov), (reason), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* The module, loaded and initialised on first call; NULL with an error raised. */
prov_module *prov_module_of(prov_ctx *prov);
/* The child library context for software digests; NULL on failure. */
OSSL_LIB_CTX *prov_libctx(prov_ctx *prov);

/* A digest from the child context, fetched once per provider; borrowed, with
 * a reference the caller owns (EVP_MD_free it). NULL when unknown. */
EVP_MD *prov_md(prov_ctx *prov, const char *name);

/* TOKENMINT_DEBUG or the provider's debug option: lines to stderr. */
extern int prov_debug_on;
void prov_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define TM_DBG(...)                                                                                \
    do {                                                                                           \
        if (prov_debug_on)                                                                         \
            prov_debug(__VA_ARGS__);                                                               \
    } while (0)

#define return_val_if_fail(expr, val)                                                              \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            TM_DBG("%s: check failed: %s", __func__, #expr);                                       \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)

/* Is algs one of this provider's own algorithm tables (of any instance)? */
int prov_algorithms_are_ours(const OSSL_ALGORITHM *algs);

/* CKR_* as text for messages. */
const char *prov_ckr_str(CK_RV rv);

/* ---- dispatch tables (one file each) -------------------------------------- */

extern const OSSL_DISPATCH prov_store_functions[];
extern const OSSL_DISPATCH prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsapss_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsa_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_signature_functions[];
extern const OSSL_DISPATCH prov_eddsa_signature_functions[];
extern const OSSL_DISPATCH prov_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH prov_ecdh_keyexch_functions[];
extern const OSSL_DISPATCH prov_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH prov_uri_der_encoder_functions[];

#endif
