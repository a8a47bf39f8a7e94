/*
 * The PKCS#11 side of the provider: modules (loaded once per process and
 * shared by every provider instance), their tokens, a session pool per token,
 * and login (once per token per process; a PIN that failed is never sent to
 * that token again).
 */
#ifndef TOKENMINT_PROVIDER_SESSION_H
#define TOKENMINT_PROVIDER_SESSION_H

#include "provider.h"

/* Loads and initialises path, or shares it when already loaded. Refcounted.
 * NULL with an error raised. */
prov_module *prov_module_get(prov_ctx *prov, const char *path);
void prov_module_put(prov_module *m);
CK_FUNCTION_LIST *prov_module_fn(const prov_module *m);

/*
 * Tokens present now (the slot list is re-read when rescan is set: a token
 * named by a URI may have been plugged in since). The returned array is owned
 * by the module and stays valid until the module is freed; *n its length.
 */
prov_token **prov_module_tokens(prov_module *m, int rescan, size_t *n);
/* How often C_Login was called through this module in this process. */
unsigned long prov_module_login_calls(const prov_module *m);

prov_module *prov_token_module(const prov_token *t);
const CK_TOKEN_INFO *prov_token_info(const prov_token *t);
/* The hardware serial, trimmed (raw bytes) and as subject text. */
const unsigned char *prov_token_serial(const prov_token *t, size_t *len);
const char *prov_token_serial_text(const prov_token *t);
int prov_token_has_mech(prov_token *t, CK_MECHANISM_TYPE mech);

/* A session from the pool (opened when none is idle); CK_INVALID_HANDLE with
 * an error raised. Give it back with prov_session_put and the last CK_RV seen,
 * so a session that died is dropped instead of reused. */
CK_SESSION_HANDLE prov_session_get(prov_ctx *prov, prov_token *t);
void prov_session_put(prov_token *t, CK_SESSION_HANDLE s, CK_RV last);
/* A read-write session (key generation); give it back with prov_session_put. */
CK_SESSION_HANDLE prov_session_get_rw(prov_ctx *prov, prov_token *t);
/* Sessions open on t now, and the bound the pool keeps (0: none known). */
size_t prov_token_session_stats(prov_token *t, size_t *max_sessions);

/* Reads one attribute of an object into a fresh buffer (one byte more than
 * the value, so text can be terminated); caller frees *val. */
CK_RV prov_object_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                       CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len);

int prov_token_logged_in(prov_token *t);
/*
 * Logs the user in, once. pin NULL means the protected authentication path
 * (pinpad or the module's derived PIN). A PIN that failed before on this token
 * is refused here without reaching the token. Returns 1, or 0 with an error.
 */
int prov_token_login(prov_ctx *prov, prov_token *t, const char *pin, size_t pin_len);

#endif
