/*
 * Made from the one table in calls.h: the plain forwarding wrappers, the
 * function list and the debug trace. Nothing here is written per function;
 * functions with logic of their own are the table's OWN rows.
 */
#include "module.h"

#include <stddef.h>

#include "calls.h"
#include "debug.h"

/* The forwarding wrappers. Each rebinds the client's handle names to the
 * backend's in an inner scope (deliberate shadowing), so the table's
 * argument list serves both sides. */
#define MOD_FWD_OWN(name, params, args)

#define MOD_FWD_SLOT(name, params, args)                                                           \
    CK_RV mod_##name params                                                                        \
    {                                                                                              \
        mod_call c;                                                                                \
        CK_RV rv = mod_enter_slot(slotID, &c);                                                     \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        {                                                                                          \
            CK_SLOT_ID slotID = c.slot->bslot;                                                     \
            rv = c.f->name args;                                                                   \
        }                                                                                          \
        mod_leave();                                                                               \
        return rv;                                                                                 \
    }

#define MOD_FWD_SESSION(name, params, args)                                                        \
    CK_RV mod_##name params                                                                        \
    {                                                                                              \
        mod_call c;                                                                                \
        CK_RV rv = mod_enter_session(hSession, &c);                                                \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        {                                                                                          \
            CK_SESSION_HANDLE hSession = c.bh;                                                     \
            rv = c.f->name args;                                                                   \
        }                                                                                          \
        mod_leave();                                                                               \
        return rv;                                                                                 \
    }

#define MOD_FWD_HANDLE(name, params, args, handle, invalid)                                        \
    CK_RV mod_##name params                                                                        \
    {                                                                                              \
        CK_OBJECT_HANDLE bobj;                                                                     \
        mod_call c;                                                                                \
        CK_RV rv = mod_enter_session(hSession, &c);                                                \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        rv = mod_call_object(&c, handle, &bobj, invalid);                                          \
        if (rv == CKR_OK) {                                                                        \
            CK_SESSION_HANDLE hSession = c.bh;                                                     \
            CK_OBJECT_HANDLE handle = bobj;                                                        \
            rv = c.f->name args;                                                                   \
        }                                                                                          \
        mod_leave();                                                                               \
        return rv;                                                                                 \
    }
#define MOD_FWD_KEY(name, params, args)                                                            \
    MOD_FWD_HANDLE(name, params, args, hKey, CKR_KEY_HANDLE_INVALID)
#define MOD_FWD_OBJECT(name, params, args)                                                         \
    MOD_FWD_HANDLE(name, params, args, hObject, CKR_OBJECT_HANDLE_INVALID)

#define MOD_FWD(kind, name, params, args) MOD_FWD_##kind(name, params, args)
MOD_CALLS(MOD_FWD)

/* The trace: one line per call and its result with TOKENMINT_DEBUG, never an
 * argument (a PIN is one). The switch is read when the list is made and at
 * every C_Initialize, not on every call: signing stays as fast as without. */
static int trace_on;

static void trace(const char *name, CK_RV rv)
{
    if (__atomic_load_n(&trace_on, __ATOMIC_RELAXED))
        mod_debug("%s: %s", name, p11c_ckr_name(rv));
}

#define MOD_ENTRY(kind, name, params, args)                                                        \
    static CK_RV entry_##name params                                                               \
    {                                                                                              \
        CK_RV rv;                                                                                  \
        if (__builtin_strcmp(#name, "C_Initialize") == 0)                                          \
            __atomic_store_n(&trace_on, mod_debug_enabled(), __ATOMIC_RELAXED);                    \
        rv = mod_##name args;                                                                      \
        trace(#name, rv);                                                                          \
        return rv;                                                                                 \
    }
MOD_CALLS(MOD_ENTRY)

#define MOD_COUNT(kind, name, params, args) +1
/* The table is complete: one row per entry of the 2.40 function list. */
_Static_assert(offsetof(CK_FUNCTION_LIST, C_Initialize) +
                       (0 MOD_CALLS(MOD_COUNT)) * sizeof(CK_C_Initialize) ==
                   sizeof(CK_FUNCTION_LIST),
               "calls.h must list every PKCS#11 2.40 function");

void mod_fill_functions(CK_FUNCTION_LIST *f)
{
    __atomic_store_n(&trace_on, mod_debug_enabled(), __ATOMIC_RELAXED);
    f->version.major = 2;
    f->version.minor = 40;
#define MOD_FILL(kind, name, params, args) f->name = entry_##name;
    MOD_CALLS(MOD_FILL)
#undef MOD_FILL
}
