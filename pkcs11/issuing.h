/*
 * The signing boundary for issuing keys (issue 10 item 13). A key listed in
 * the module config's issuing_keys signs only through a hash-and-sign
 * mechanism the module carries out itself: it keeps the whole message, checks
 * it with the profile library (a TBSCertificate must conform to the profile),
 * hashes it and only then has the token sign the digest. A raw mechanism
 * (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_RSA_X_509) over a
 * precomputed digest is refused for such a key, whatever the application: the
 * module never sees what a digest stands for, so it cannot check it.
 *
 * On a token holding an issuing key the module's mechanism list shows the
 * hash-and-sign mechanisms (carried out by the module where the token lacks
 * them) instead of the raw ones, so a client that picks mechanisms from the
 * list (the tokenmint provider does) signs the whole message there.
 */
#ifndef TOKENMINT_ISSUING_H
#define TOKENMINT_ISSUING_H

#include <stddef.h>

#include "p11c.h"
#include "slots.h"
#include "tm_profile.h"

typedef struct mod_issuing mod_issuing;

/* White-space separated pkcs11: URIs; each must name an object (id or object
 * label). NULL with a reason in err for a bad list. */
mod_issuing *mod_issuing_new(const char *list, char *err, size_t errlen);
void mod_issuing_free(mod_issuing *is);

/* Does the token match any issuing-key URI's token part? Matched on the
 * token info the module reports (mod_slot_token_info: token_serials' serial). */
int mod_issuing_token(const mod_issuing *is, CK_FUNCTION_LIST *f, const mod_slot *slot);
/* Is the backend object an issuing key? */
int mod_issuing_key(const mod_issuing *is, CK_FUNCTION_LIST *f, const mod_slot *slot,
                    CK_SESSION_HANDLE bs, CK_OBJECT_HANDLE bkey);

/* Raw signing mechanisms an issuing key never uses. */
int mod_issuing_raw_mech(CK_MECHANISM_TYPE m);

/* The token's mechanism list as the module shows it on an issuing token. */
CK_RV mod_issuing_mech_list(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, CK_MECHANISM_TYPE *list,
                            CK_ULONG *count);
CK_RV mod_issuing_mech_info(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, CK_MECHANISM_TYPE type,
                            CK_MECHANISM_INFO *info);

/* ---- signing operations the module carries out (one per session) ---------- */

/* Does the module carry out this mechanism itself (a hash-and-sign one)? */
int mod_signop_supported(CK_MECHANISM_TYPE m);
/* Starts one on session h (module handle) of slot; lint: check the message
 * with the profile before signing. */
CK_RV mod_signop_start(CK_SESSION_HANDLE h, CK_SLOT_ID slot, const CK_MECHANISM *m,
                       CK_OBJECT_HANDLE bkey, int lint);
int mod_signop_active(CK_SESSION_HANDLE h);
CK_RV mod_signop_update(CK_SESSION_HANDLE h, const unsigned char *data, CK_ULONG len, char *why,
                        size_t whylen);
/* Finishes: lints (reason in why on refusal), hashes, signs through the backend
 * session bs; size-query semantics of C_Sign/C_SignFinal. */
CK_RV mod_signop_final(CK_SESSION_HANDLE h, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE bs,
                       const tm_profile *profile, unsigned char *sig, CK_ULONG *sig_len, char *why,
                       size_t whylen, char *done, size_t donelen);
/* Ends what is left of the operations of a closed session, or of a slot. */
void mod_signop_drop(CK_SESSION_HANDLE h);
void mod_signop_drop_slot(CK_SLOT_ID slot);
void mod_signop_drop_all(void);

#endif
