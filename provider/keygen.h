/* Key pairs made on a token (keygen.c), for the key managers' gen functions. */
#ifndef TOKENMINT_PROVIDER_KEYGEN_H
#define TOKENMINT_PROVIDER_KEYGEN_H

#include <openssl/bn.h>
#include "key.h"

typedef struct prov_keygen_req {
    prov_key_type type;
    int pss;           /* an RSA-PSS typed key */
    char group[32];    /* EC: the curve (OpenSSL or NIST name) */
    size_t bits;       /* RSA: 0 for 2048 */
    const BIGNUM *e;   /* RSA: NULL for 65537 */
    const char *uri;   /* pkcs11_uri: the token, and the key's label and id */
    const char *usage; /* pkcs11_key_usage: "sign", "decrypt", "derive"; NULL: sign */
} prov_keygen_req;

/* Generates the pair on the one token the URI names; NULL with an error. */
prov_key *prov_keygen_on_token(prov_ctx *prov, const prov_keygen_req *req);

#endif
