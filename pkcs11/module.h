/*
 * Internal to the module: the state shared by the files implementing the
 * function list (module.c: lifecycle; slotcalls.c: slots, sessions, login;
 * objects.c: objects and the write policy; signguard.c: signing; forward.c:
 * everything else, generated from the table in calls.h).
 *
 * Every entry point brackets its work with mod_enter/mod_leave (or
 * mod_enter_session/mod_leave): C_Finalize waits until no call is in flight
 * before it finalizes the backends, so no backend is called after its
 * C_Finalize. No global lock is held around a backend call.
 */
#ifndef TOKENMINT_MODULE_H
#define TOKENMINT_MODULE_H

#include <openssl/x509.h>

#include "calls.h"
#include "backends.h"
#include "config.h"
#include "events.h"
#include "handles.h"
#include "issuing.h"
#include "p11c.h"
#include "pin.h"
#include "policy.h"
#include "slots.h"

typedef struct mod_state {
    mod_config *cfg;
    mod_backend *backends;
    size_t n_backends;
    mod_slots *slots;
    mod_handles *handles;
    mod_events *events;
    p11c_audit *audit;
    tm_profile *profile;
    STACK_OF(X509) * roots;
    mod_policy policy;
    mod_station_secret secret;
    mod_issuing *issuing; /* NULL: no issuing keys configured */
} mod_state;

/* Valid between mod_enter and mod_leave. */
extern mod_state mod_g;

/* A station secret is loaded: a NULL PIN means the token's derived PIN. */
static inline int mod_derived_pins(void)
{
    return mod_g.secret.bytes != NULL;
}

CK_RV mod_enter(void);
void mod_leave(void);

/* What a call on one session needs, looked up once. */
typedef struct mod_call {
    mod_slot *slot;
    mod_backend *backend;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE bh; /* the backend's session handle */
} mod_call;

/* mod_enter plus session lookup; on error nothing is left entered. */
CK_RV mod_enter_session(CK_SESSION_HANDLE h, mod_call *c);
/* mod_enter plus slot lookup (the slot must be present); same contract. */
CK_RV mod_enter_slot(CK_SLOT_ID id, mod_call *c);

/* Module object handle -> backend handle, on the call's token only. */
CK_RV mod_call_object(const mod_call *c, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE *bo, CK_RV invalid);
/* Backend object handle -> module handle (0 when out of memory). */
CK_OBJECT_HANDLE mod_call_export(const mod_call *c, CK_OBJECT_HANDLE bo);

/* Audit an event on a token (slot may be NULL). */
void mod_audit_slot(const mod_slot *slot, const char *op, const char *outcome, const char *detail);

/* Re-reads every backend's slot list, queueing events and audit records. */
void mod_rescan(void);

#endif
