/*
 * Internal to the module: the state shared by the files implementing the
 * function list (module.c: lifecycle; slotcalls.c: slots, sessions, login;
 * objects.c: objects and the write policy; crypto.c: the rest).
 *
 * Every entry point brackets its work with tm_enter/tm_leave (or
 * tm_enter_session/tm_leave): C_Finalize waits until no call is in flight
 * before it finalizes the backends, so no backend is called after its
 * C_Finalize. No global lock is held around a backend call.
 */
#ifndef TOKENMINT_MODULE_H
#define TOKENMINT_MODULE_H

#include <openssl/x509.h>

#include "audit.h"
#include "backends.h"
#include "config.h"
#include "events.h"
#include "handles.h"
#include "issuing.h"
#include "p11.h"
#include "pin.h"
#include "policy.h"
#include "slots.h"

typedef struct tm_state {
    tm_config *cfg;
    tm_backend *backends;
    size_t n_backends;
    tm_slots *slots;
    tm_handles *handles;
    tm_events *events;
    tm_audit *audit;
    tm_profile *profile;
    STACK_OF(X509) * roots;
    tm_policy policy;
    tm_station_secret secret;
    mod_issuing *issuing; /* NULL: no issuing keys configured */
} tm_state;

/* Valid between tm_enter and tm_leave. */
extern tm_state tm_g;

/* A station secret is loaded: a NULL PIN means the token's derived PIN. */
static inline int tm_derived_pins(void)
{
    return tm_g.secret.bytes != NULL;
}

CK_RV tm_enter(void);
void tm_leave(void);

/* What a call on one session needs, looked up once. */
typedef struct tm_call {
    tm_slot *slot;
    tm_backend *backend;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE bh; /* the backend's session handle */
} tm_call;

/* tm_enter plus session lookup; on error nothing is left entered. */
CK_RV tm_enter_session(CK_SESSION_HANDLE h, tm_call *c);
/* tm_enter plus slot lookup (the slot must be present); same contract. */
CK_RV tm_enter_slot(CK_SLOT_ID id, tm_call *c);

/* Module object handle -> backend handle, on the call's token only. */
CK_RV tm_call_object(const tm_call *c, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE *bo, CK_RV invalid);
/* Backend object handle -> module handle (0 when out of memory). */
CK_OBJECT_HANDLE tm_call_export(const tm_call *c, CK_OBJECT_HANDLE bo);

/* Audit an event on a token (slot may be NULL). */
void tm_audit_slot(const tm_slot *slot, const char *op, const char *outcome, const char *detail);

/* Re-reads every backend's slot list, queueing events and audit records. */
void tm_rescan(void);

/* Each file fills its part of the function list. */
void tm_fill_slotcalls(CK_FUNCTION_LIST *f);
void tm_fill_objects(CK_FUNCTION_LIST *f);
void tm_fill_crypto(CK_FUNCTION_LIST *f);
void mod_fill_signguard(CK_FUNCTION_LIST *f);

#endif
