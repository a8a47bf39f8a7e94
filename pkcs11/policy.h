/*
 * The station's write policy: a certificate goes only to the token whose
 * serial it names, onto a key pair that has none yet.
 *
 * The policy reads the token through the backend's own function list and a
 * backend session, so it can be unit-tested against a mock function list.
 * The caller (module.c) holds the token's write lock around check + create so
 * that two writers cannot both see "no certificate yet".
 */
#ifndef TOKENMINT_POLICY_H
#define TOKENMINT_POLICY_H

#include "p11c.h"
#include "tm_profile.h"
#include <openssl/x509.h>

typedef enum {
    TM_OUTSIDE_PROFILE_REFUSE = 0, /* default: only serial-bound certificates */
    TM_OUTSIDE_PROFILE_ALLOW,      /* e.g. CA certificates: stored as they come */
} mod_outside_profile;

typedef struct mod_policy {
    const tm_profile *profile;      /* borrowed; never NULL */
    STACK_OF(X509) * trusted_roots; /* borrowed; NULL or empty: no chain check */
    mod_outside_profile outside_profile;
} mod_policy;

/* What the policy decided for one C_CreateObject template. */
typedef struct mod_policy_decision {
    int is_certificate;  /* 0: not an X.509 certificate object, policy does not apply;
                            1 also for a malformed or repeated CKA_CLASS /
                            CKA_CERTIFICATE_TYPE (then refused) */
    CK_RV rv;            /* CKR_OK to proceed, else the CKR to return */
    char reason[512];    /* why it was refused (or what was done), for the audit log */
    CK_ATTRIBUTE *templ; /* template to pass to the backend: the caller's plus CKA_ID /
                            CKA_LABEL set from the matching key; owned, free with
                            mod_policy_decision_clear */
    CK_ULONG templ_count;
    tm_binding binding; /* valid when the certificate was in the profile */
} mod_policy_decision;

/*
 * Decides a C_CreateObject on a token. token_serial is the trimmed raw serial
 * of the token the session is on. When is_certificate is 0 the policy does
 * not apply (rv is CKR_OK, or CKR_HOST_MEMORY) and the caller's template may
 * go to the backend as it is; otherwise the caller returns rv, or on CKR_OK
 * passes out->templ to the backend.
 * A certificate object is one with CKA_CLASS CKO_CERTIFICATE and
 * CKA_CERTIFICATE_TYPE CKC_X_509 or absent. Checks run in this order and the
 * first failure decides (documented in README):
 *   CKR_ACTION_PROHIBITED         the token's serial names no one token: blank, all
 *                                  zeros (a backend's placeholder), or shared with
 *                                  another token present (mod_policy_decide_token)
 *   CKR_TEMPLATE_INCONSISTENT     CKA_VALUE missing or not exactly one DER certificate;
 *                                  CKA_CLASS / CKA_CERTIFICATE_TYPE / CKA_VALUE repeated;
 *                                  certificate outside the profile under "refuse"
 *   CKR_ATTRIBUTE_VALUE_INVALID   it names another token's serial (also: CKA_CLASS or
 *                                  CKA_CERTIFICATE_TYPE not a CK_ULONG)
 *   CKR_KEY_HANDLE_INVALID        no key pair on the token matches its public key
 *   CKR_DATA_INVALID              that key pair already has a certificate
 *   CKR_SIGNATURE_INVALID         it does not chain to a configured trusted root
 * A backend error while searching the token is returned as the backend gave it.
 * Outside the profile under "allow", the template is passed on unchanged.
 */
void mod_policy_decide(const mod_policy *policy, CK_FUNCTION_LIST *backend,
                       CK_SESSION_HANDLE backend_session, const unsigned char *token_serial,
                       size_t token_serial_len, const CK_ATTRIBUTE *templ, CK_ULONG count,
                       mod_policy_decision *out);

/* The token a decision is for, as the slot list knows it. */
typedef struct mod_policy_token {
    const unsigned char *serial; /* trimmed raw serial (the one the module reports) */
    size_t serial_len;
    const char *name;        /* "'label' (slot N)" for reasons; NULL: the serial only */
    const char *shared_with; /* another present token with this serial, or NULL */
} mod_policy_token;

/* mod_policy_decide with what the slot list knows about the token: a
 * certificate for a token whose serial is shared is refused too. */
void mod_policy_decide_token(const mod_policy *policy, CK_FUNCTION_LIST *backend,
                             CK_SESSION_HANDLE backend_session, const mod_policy_token *token,
                             const CK_ATTRIBUTE *templ, CK_ULONG count, mod_policy_decision *out);
void mod_policy_decision_clear(mod_policy_decision *d);

#endif
