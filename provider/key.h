/*
 * A key as the provider holds it: a reference to a token object (private key
 * handle, kept for the life of the process, so signing needs no search) plus
 * the public half read once from the token. A key without a token is a
 * public key imported from another provider, used only for key matching.
 */
#ifndef TOKENMINT_PROVIDER_KEY_H
#define TOKENMINT_PROVIDER_KEY_H

#include <openssl/bn.h>
#include "provider.h"

typedef enum { TM_KEY_RSA, TM_KEY_EC, TM_KEY_ED25519 } prov_key_type;

struct prov_key {
    int refs;
    prov_ctx *prov;
    prov_key_type type;
    int pss_only; /* an RSA-PSS typed key (imported) */

    prov_token *tok;       /* NULL: public key only, not on a token */
    CK_OBJECT_HANDLE priv; /* CK_INVALID_HANDLE when only the public half is known */
    unsigned char id[64];
    size_t id_len;
    char label[128];
    int issuing; /* configured as an issuing key */

    /* public half */
    BIGNUM *n, *e;          /* RSA */
    char group[32];         /* EC: OpenSSL group name */
    int curve_nid;          /* EC */
    size_t field_len;       /* EC: bytes per coordinate */
    unsigned char pub[160]; /* EC uncompressed point / Ed25519 key */
    size_t pub_len;

    EVP_PKEY *soft; /* the public half in the default provider, made on demand */

    /* A software key (not on a token) that came to this key manager: the
     * other provider's key manager and its key data, which do all the work
     * (forward.h). NULL for token keys. */
    const struct prov_fwd *fwd;
    void *soft_kd;
};

/* A software key: everything about it is forwarded. */
#define PROV_KEY_IS_SOFT(k) ((k) != NULL && (k)->soft_kd != NULL)
/* The name of its algorithm for operation op (OSSL_OP_SIGNATURE: "ECDSA"...). */
const char *prov_key_op_name(const prov_key *k, int op);

prov_key *prov_key_new(prov_ctx *prov, prov_key_type type);
prov_key *prov_key_up(prov_key *k);
void prov_key_free(prov_key *k);

/*
 * Builds a key from a token object (private or public key) found on session
 * s. For a private key the public half comes from the matching public key
 * object or certificate (same CKA_ID). NULL with an error raised.
 */
prov_key *prov_key_from_object(prov_ctx *prov, prov_token *tok, CK_SESSION_HANDLE s,
                               CK_OBJECT_HANDLE obj, CK_OBJECT_CLASS klass);

/* Sets the named curve (P-256, P-384, P-521) of an EC key; 0 for any other. */
int prov_key_set_curve(prov_key *k, int nid);
/*
 * The public half as OSSL_PARAMs, as much as selection asks for
 * (OSSL_KEYMGMT_SELECT_PUBLIC_KEY, _ALL_PARAMETERS: an EC key's curve name).
 * NULL on failure; free with OSSL_PARAM_free.
 */
OSSL_PARAM *prov_key_public_params(const prov_key *k, int selection);

/* "RSA", "EC", "ED25519". */
const char *prov_key_type_name(const prov_key *k);
int prov_key_bits(const prov_key *k);
int prov_key_security_bits(const prov_key *k);
/* Largest signature this key makes, in bytes (DER for ECDSA). */
int prov_key_max_sig(const prov_key *k);
/* The digest a signature uses when the caller names none: matched to the
 * curve for EC, SHA-256 for RSA, "" (none) for Ed25519. */
const char *prov_key_default_digest(const prov_key *k);
int prov_key_has_private(const prov_key *k);
/* Same public key? */
int prov_key_public_eq(const prov_key *a, const prov_key *b);

/*
 * The public half as a default-provider key (verification is not done on the
 * token). Borrowed, cached in the key; NULL on failure.
 */
EVP_PKEY *prov_key_soft_public(prov_key *k);
/* Property query that keeps lookups away from this provider. */
#define TM_NOT_US "provider!=tokenmint"

/*
 * Signs in on the token with mechanism mech (param may be NULL). out must
 * hold outmax bytes. Returns 1, or 0 with an error naming the token.
 */
int prov_key_sign(prov_key *k, CK_MECHANISM_TYPE mech, void *param, CK_ULONG param_len,
                  const unsigned char *in, size_t inlen, unsigned char *out, size_t *outlen,
                  size_t outmax);

/*
 * The module reloaded its objects (token re-inserted: CKR_KEY_HANDLE_INVALID):
 * finds the private key again by its CKA_ID on session s and keeps the new
 * handle. CK_INVALID_HANDLE when it is gone.
 */
CK_OBJECT_HANDLE prov_key_refind(prov_key *k, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s);

#endif
