/*
 * Software keys are the default provider's business. OpenSSL picks the first
 * provider that offers a key type when a fetch names no provider, so with
 * tokenmint loaded first every EC, RSA and Ed25519 key of the process (file
 * keys, TLS key shares, genpkey) comes to this provider's key managers. Those
 * keys are handed on, unchanged, to the implementation another provider
 * (normally default) offers under the same name, in the child library
 * context: its dispatch functions are called with its own provider context
 * and key data, so the key behaves exactly as it would without tokenmint.
 */
#ifndef TOKENMINT_PROVIDER_FORWARD_H
#define TOKENMINT_PROVIDER_FORWARD_H

#include "provider.h"

/* Another provider's implementation of one algorithm. */
typedef struct prov_fwd {
    void *provctx; /* that provider's context */
    const OSSL_DISPATCH *fns;
} prov_fwd;

/*
 * The implementation of operation op (OSSL_OP_*) named name offered by a
 * provider other than this one in the child context; NULL with an error
 * raised when none offers it. Found once per provider instance and kept.
 */
const prov_fwd *prov_fwd_find(prov_ctx *prov, int op, const char *name);
/* One function of it, or NULL when it has none. */
void (*prov_fwd_fn(const prov_fwd *f, int id))(void);
/* Frees the cache of prov (teardown). */
void prov_fwd_cache_free(prov_ctx *prov);

/*
 * The TLS groups other providers declare for key types this provider also
 * manages (EC): libssl keeps a group only when the provider that declares it
 * is the one a plain fetch of its key type returns, which is tokenmint when
 * it is loaded first. Forwarded to cb unchanged.
 */
int prov_fwd_tls_groups(prov_ctx *prov, OSSL_CALLBACK *cb, void *arg);

#define PROV_FWD_CALL(f, ID, TYPE) ((OSSL_FUNC_##TYPE##_fn *)prov_fwd_fn((f), (ID)))

#endif
