/*
 * Backend modules: the vendor PKCS#11 modules the station fronts. Loaded by
 * path or by p11-kit registered name, initialised with CKF_OS_LOCKING_OK (and
 * the configured init_args in pReserved), finalized exactly once.
 */
#ifndef TOKENMINT_BACKENDS_H
#define TOKENMINT_BACKENDS_H

#include <stddef.h>

#include "config.h"
#include "p11c.h"

typedef struct p11_kit_uri P11KitUri;

typedef struct mod_backend {
    char *name;              /* from the config, for messages */
    char *where;             /* path or p11-kit name, for messages */
    CK_FUNCTION_LIST *funcs; /* the backend's own function list */
    P11KitUri *uri;          /* token selection; NULL: every token */
    int selects_nothing;     /* the URI's library attributes do not match this module */
    int borrowed;            /* was already initialised by someone else: not ours to finalize */
    int initialized;         /* C_Initialize succeeded and C_Finalize not yet called */
    char *init_args;         /* owned copy handed to C_Initialize */
    /* token_serials from the config (not owned: the config outlives the backends) */
    const mod_token_serial *token_serials;
    size_t n_token_serials;
} mod_backend;

/*
 * Loads and initialises every backend of cfg. self is the module's own
 * function list: a backend resolving to it (same function list, or the same
 * file) is refused. On failure everything loaded so far is finalized and
 * released, and err says which backend and why.
 */
int mod_backends_load(const mod_config *cfg, CK_FUNCTION_LIST *self, mod_backend **out, size_t *n,
                      char *err, size_t errlen);

/* Finalizes (once) and releases every backend, then frees the array. */
void mod_backends_unload(mod_backend *b, size_t n);

/* Frees the array without calling into any backend (C_Finalize at process
 * exit, when the backends may already have torn themselves down). */
void mod_backends_abandon(mod_backend *b, size_t n);

/* Does the backend's URI select this slot/token? */
int mod_backend_selects(const mod_backend *b, const CK_SLOT_INFO *slot, const CK_TOKEN_INFO *token);

#endif
