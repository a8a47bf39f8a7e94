/*
 * tokenmint-pkcs11.so: lifecycle, function list and interfaces.
 *
 * C_Initialize reads the config, opens the audit log, loads the station
 * secret, profile and trusted roots, loads and initialises the backends and
 * takes the first slot scan. C_Finalize undoes it in reverse, after every call
 * in flight has returned.
 */
#include "module.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "debug.h"
#include "modlog.h"

#ifndef TOKENMINT_CONF_DEFAULT
#define TOKENMINT_CONF_DEFAULT "/etc/tokenmint/tokenmint.conf"
#endif
#define TM_EXPORT __attribute__((visibility("default")))
#define TM_POLL_MS 200

mod_state mod_g;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized; /* atomic */
static long inflight;   /* atomic: calls between mod_enter and mod_leave */
/* The process is exiting: libcrypto's cleanup or our own exit handler (which
 * runs before the exit handlers and destructors of every backend loaded before
 * it) has run, so backends and libcrypto may already be torn down. */
static int exiting;
static int atexit_registered, openssl_atexit_registered;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST functions;
static STACK_OF(X509) *volatile abandoned_roots; /* see teardown */
static tm_profile *volatile abandoned_profile;
static CK_INTERFACE interfaces[1];

CK_RV mod_enter(void)
{
    /* Dekker-style with C_Finalize: either we see initialized == 0, or it
     * sees our increment and waits for our mod_leave. */
    __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&initialized, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    return CKR_OK;
}

void mod_leave(void)
{
    __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
}

CK_RV mod_enter_session(CK_SESSION_HANDLE h, mod_call *c)
{
    CK_SLOT_ID id;
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    if (!mod_handles_session(mod_g.handles, h, &id, &c->bh) ||
        (c->slot = mod_slots_get(mod_g.slots, id)) == NULL) {
        mod_leave();
        return CKR_SESSION_HANDLE_INVALID;
    }
    c->backend = &mod_g.backends[c->slot->backend];
    c->f = c->backend->funcs;
    return CKR_OK;
}

CK_RV mod_enter_slot(CK_SLOT_ID id, mod_call *c)
{
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    c->slot = mod_slots_get(mod_g.slots, id);
    if (c->slot == NULL || !mod_slot_present(c->slot)) {
        mod_leave();
        return c->slot == NULL ? CKR_SLOT_ID_INVALID : CKR_TOKEN_NOT_PRESENT;
    }
    c->backend = &mod_g.backends[c->slot->backend];
    c->f = c->backend->funcs;
    c->bh = CK_INVALID_HANDLE;
    return CKR_OK;
}

CK_RV mod_call_object(const mod_call *c, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE *bo, CK_RV invalid)
{
    CK_SLOT_ID id;

    if (!mod_handles_lookup_object(mod_g.handles, o, &id, bo) || id != c->slot->id)
        return invalid;
    return CKR_OK;
}

CK_OBJECT_HANDLE mod_call_export(const mod_call *c, CK_OBJECT_HANDLE bo)
{
    return mod_handles_object(mod_g.handles, c->slot->id, bo);
}

void mod_audit_slot(const mod_slot *slot, const char *op, const char *outcome, const char *detail)
{
    const char *serial = slot != NULL && slot->serial_text[0] ? slot->serial_text : NULL;

    /* A refusal reaches a person even without an audit log: the application
     * only sees a CKR. */
    if (strcmp(outcome, "refused") == 0)
        mod_log(LOG_WARNING, "token %s: %s refused: %s", serial ? serial : "(no serial)", op,
                detail ? detail : "(no reason given)");
    else
        mod_debug("audit: %s %s %s%s%s", serial ? serial : "-", op, outcome, detail ? ": " : "",
                  detail ? detail : "");
    if (mod_g.audit != NULL)
        p11c_audit_event(mod_g.audit, serial, op, outcome, detail);
}

/* token_serials at work, said once per slot: where the reported serial
 * comes from, or that a config entry does nothing (never silently). */
static void serial_note(const mod_slot *slot)
{
    const mod_backend *b = &mod_g.backends[slot->backend];
    char detail[600];

    if (slot->serial_from_config) {
        snprintf(detail, sizeof(detail),
                 "slot %lu, token '%s' on backend '%s': the backend reports the placeholder "
                 "serial '%s'; the module reports %s from token_serials",
                 (unsigned long)slot->id, slot->label, b->name, slot->bserial_text,
                 slot->serial_text);
        mod_log(LOG_NOTICE, "%s", detail);
        mod_audit_slot(slot, "token", "serial", detail);
    } else if (slot->ignored_serial != NULL) {
        snprintf(detail, sizeof(detail),
                 "slot %lu, token '%s' on backend '%s': the backend reports its own serial %s; "
                 "token_serials '%s:%s' is ignored",
                 (unsigned long)slot->id, slot->label, b->name, slot->bserial_text, slot->label,
                 slot->ignored_serial);
        mod_log(LOG_WARNING, "%s", detail);
        mod_audit_slot(slot, "token", "serial_ignored", detail);
    }
}

static void slot_changed(void *ctx, const mod_slot *slot, int what)
{
    int inserted = what == MOD_SLOT_INSERTED;
    char detail[128];

    (void)ctx;
    if (what == MOD_SLOT_SERIAL_NOTE) {
        serial_note(slot);
        return;
    }
    snprintf(detail, sizeof(detail), "slot %lu", (unsigned long)slot->id);
    if (!inserted) {
        /* The token's sessions and object handles died with it. */
        mod_handles_remove_slot_sessions(mod_g.handles, slot->id);
        mod_handles_forget_slot_objects(mod_g.handles, slot->id);
        mod_signop_drop_slot(slot->id);
    }
    mod_audit_slot(slot, "token", inserted ? "inserted" : "removed", detail);
    mod_events_push(mod_g.events, slot->id);
}

void mod_rescan(void)
{
    mod_slots_refresh(mod_g.slots, mod_g.backends, mod_g.n_backends, slot_changed, NULL);
}

static void watcher_rescan(void *ctx)
{
    (void)ctx;
    mod_rescan();
}

static void note_exiting(void)
{
    __atomic_store_n(&exiting, 1, __ATOMIC_SEQ_CST);
}

static int load_roots(const char *path, STACK_OF(X509) * *out, char *err, size_t errlen)
{
    STACK_OF(X509) *roots = NULL;
    BIO *bio;
    X509 *x;
    int ok = 0;

    /* The application's own errors stay on its queue; only ours are dropped. */
    ERR_set_mark();
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        snprintf(err, errlen, "trusted_roots: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    roots = sk_X509_new_null();
    if (roots == NULL)
        goto out;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(roots, x)) {
            X509_free(x);
            goto out;
        }
    }
    if (sk_X509_num(roots) == 0) {
        snprintf(err, errlen, "trusted_roots: %s holds no PEM certificate", path);
        goto out;
    }
    *out = roots;
    roots = NULL;
    ok = 1;
out:
    ERR_pop_to_mark();
    sk_X509_pop_free(roots, X509_free);
    BIO_free(bio);
    return ok;
}

/* Frees everything in mod_g; the backends are finalized here, once. */
static void teardown(void)
{
    mod_events_stop(mod_g.events);
    if (__atomic_load_n(&exiting, __ATOMIC_SEQ_CST) && mod_g.backends != NULL) {
        /* A C_Finalize from an exit handler: the backends' own static state
         * (SoftHSM2's, for one) may be gone already, and calling their
         * C_Finalize would crash. The process is ending: leave them be. */
        mod_debug("C_Finalize during process exit: backends are not finalized");
        mod_backends_abandon(mod_g.backends, mod_g.n_backends);
        mod_g.backends = NULL;
    }
    mod_backends_unload(mod_g.backends, mod_g.n_backends);
    mod_events_free(mod_g.events);
    mod_slots_free(mod_g.slots);
    mod_handles_free(mod_g.handles);
    mod_station_secret_clear(&mod_g.secret);
    mod_signop_drop_all();
    mod_issuing_free(mod_g.issuing);
    /* After libcrypto's atexit cleanup its objects cannot be freed safely;
     * the process is ending anyway. */
    if (!__atomic_load_n(&exiting, __ATOMIC_SEQ_CST)) {
        sk_X509_pop_free(mod_g.roots, X509_free);
        if (mod_g.profile != NULL)
            tm_profile_free(mod_g.profile);
    } else {
        /* Kept on purpose, and kept reachable: a leak checker at exit then
         * sees memory still in use, not memory lost. */
        abandoned_roots = mod_g.roots;
        abandoned_profile = mod_g.profile;
    }
    if (mod_g.audit != NULL)
        p11c_audit_close(mod_g.audit);
    mod_config_free(mod_g.cfg);
    memset(&mod_g, 0, sizeof(mod_g));
}

static void report_init_error(const char *msg)
{
    /* A module must not write to an application's stderr unasked: the
     * message goes there only with TOKENMINT_DEBUG; always to syslog, and to
     * the audit log when the config got far enough to name one. */
    mod_log(LOG_ERR, "C_Initialize failed: %s", msg);
    if (mod_g.audit != NULL)
        p11c_audit_event(mod_g.audit, NULL, "config", "error", msg);
    else if (mod_g.cfg != NULL && mod_g.cfg->audit_log != NULL) {
        char aerr[256];
        p11c_audit *a = p11c_audit_open(mod_g.cfg->audit_log, 0600, aerr, sizeof(aerr));
        if (a != NULL) {
            p11c_audit_event(a, NULL, "config", "error", msg);
            p11c_audit_close(a);
        }
    }
}

static CK_RV check_init_args(CK_VOID_PTR p)
{
    CK_C_INITIALIZE_ARGS *a = p;
    int fns;

    if (a == NULL)
        return CKR_OK;
    if (a->pReserved != NULL)
        return CKR_ARGUMENTS_BAD;
    fns = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
          (a->UnlockMutex != NULL);
    if (fns != 0 && fns != 4)
        return CKR_ARGUMENTS_BAD;
    /* Only the OS's own locking is used; application mutexes are not needed. */
    if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK))
        return CKR_CANT_LOCK;
    return CKR_OK;
}

static void child_after_fork(void)
{
    /* The child has no watcher thread and may have copied locks held by other
     * threads: abandon the parent's state (not freed: its locks are not safe to
     * touch) and let the child C_Initialize afresh. */
    __atomic_store_n(&initialized, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&inflight, 0, __ATOMIC_SEQ_CST);
    memset(&mod_g, 0, sizeof(mod_g));
    pthread_mutex_init(&init_lock, NULL);
}

CK_RV mod_C_Initialize(CK_VOID_PTR pInitArgs)
{
    char err[1024] = "";
    CK_RV rv;

    rv = check_init_args(pInitArgs);
    if (rv != CKR_OK)
        return rv;
    /* What we and the backends (SoftHSM2 looks for engines) queue on the
     * application's OpenSSL error queue while starting is dropped at unlock;
     * the application's own errors stay. */
    ERR_set_mark();
    pthread_mutex_lock(&init_lock);
    if (__atomic_load_n(&initialized, __ATOMIC_SEQ_CST)) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto unlock;
    }
    rv = CKR_GENERAL_ERROR;
    if (!openssl_atexit_registered)
        openssl_atexit_registered = OPENSSL_atexit(note_exiting);
    tm_profile_set_debug_sink(p11c_debug_prefixed);
    if (!mod_config_load_env(TOKENMINT_CONF_DEFAULT, &mod_g.cfg, err, sizeof(err)))
        goto fail;
    if (mod_g.cfg->audit_log != NULL) {
        char aerr[512];
        mod_g.audit = p11c_audit_open(mod_g.cfg->audit_log, 0600, aerr, sizeof(aerr));
        if (mod_g.audit == NULL) {
            snprintf(err, sizeof(err), "%s: audit_log: %s", mod_g.cfg->path, aerr);
            goto fail;
        }
    }
    if (mod_g.cfg->station_secret != NULL) {
        char serr[512];
        if (!mod_station_secret_load(mod_g.cfg->station_secret, &mod_g.secret, serr,
                                     sizeof(serr))) {
            snprintf(err, sizeof(err), "%s: station_secret: %s", mod_g.cfg->path, serr);
            goto fail;
        }
    }
    {
        tm_violations *v = tm_violations_new();
        mod_g.profile = tm_profile_load(mod_g.cfg->profile, v);
        if (mod_g.profile == NULL) {
            char why[768] = "";
            if (v != NULL)
                tm_violations_join(v, why, sizeof(why));
            snprintf(err, sizeof(err), "profile: %s", why[0] ? why : "cannot load");
        }
        tm_violations_free(v);
        if (mod_g.profile == NULL)
            goto fail;
    }
    if (mod_g.cfg->trusted_roots != NULL &&
        !load_roots(mod_g.cfg->trusted_roots, &mod_g.roots, err, sizeof(err)))
        goto fail;
    if (mod_g.cfg->issuing_keys != NULL) {
        char ierr[512];
        mod_g.issuing = mod_issuing_new(mod_g.cfg->issuing_keys, ierr, sizeof(ierr));
        if (mod_g.issuing == NULL) {
            snprintf(err, sizeof(err), "%s: %s", mod_g.cfg->path ? mod_g.cfg->path : "config",
                     ierr);
            goto fail;
        }
    }
    mod_g.policy.profile = mod_g.profile;
    mod_g.policy.trusted_roots = mod_g.roots;
    mod_g.policy.outside_profile =
        mod_g.cfg->outside_profile_allow ? TM_OUTSIDE_PROFILE_ALLOW : TM_OUTSIDE_PROFILE_REFUSE;

    mod_g.slots = mod_slots_new();
    mod_g.handles = mod_handles_new();
    mod_g.events = mod_events_new(watcher_rescan, NULL, TM_POLL_MS);
    if (mod_g.slots == NULL || mod_g.handles == NULL || mod_g.events == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        rv = CKR_HOST_MEMORY;
        goto fail;
    }
    if (!mod_backends_load(mod_g.cfg, &functions, &mod_g.backends, &mod_g.n_backends, err,
                           sizeof(err)))
        goto fail;
    /* Registered after the backends were loaded, so it runs before their exit
     * handlers; the module is linked nodelete, so the handler stays mapped. */
    if (!atexit_registered)
        atexit_registered = (atexit(note_exiting) == 0);
    mod_rescan();
    __atomic_store_n(&initialized, 1, __ATOMIC_SEQ_CST);
    mod_debug("initialised with %zu backend(s)", mod_g.n_backends);
    rv = CKR_OK;
    goto unlock;
fail:
    report_init_error(err);
    teardown();
unlock:
    pthread_mutex_unlock(&init_lock);
    ERR_pop_to_mark();
    return rv;
}

CK_RV mod_C_Finalize(CK_VOID_PTR pReserved)
{
    CK_RV rv = CKR_OK;

    if (pReserved != NULL)
        return CKR_ARGUMENTS_BAD;
    ERR_set_mark(); /* as in C_Initialize: the backends' noise is dropped */
    pthread_mutex_lock(&init_lock);
    if (!__atomic_load_n(&initialized, __ATOMIC_SEQ_CST)) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    __atomic_store_n(&initialized, 0, __ATOMIC_SEQ_CST);
    /* Wake blocked C_WaitForSlotEvent callers, then wait for every call in
     * flight to return before the backends are finalized. */
    mod_events_stop(mod_g.events);
    while (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) > 0) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    teardown();
    mod_debug("finalized");
out:
    pthread_mutex_unlock(&init_lock);
    ERR_pop_to_mark();
    return rv;
}

static void pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    memset(dst, ' ', n);
    memcpy(dst, src, l < n ? l : n);
}

CK_RV mod_C_GetInfo(CK_INFO_PTR pInfo)
{
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    if (pInfo == NULL) {
        mod_leave();
        return CKR_ARGUMENTS_BAD;
    }
    memset(pInfo, 0, sizeof(*pInfo));
    pInfo->cryptokiVersion.major = 2;
    pInfo->cryptokiVersion.minor = 40;
    pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "tokenmint");
    pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription), "tokenmint issuing station");
    pInfo->libraryVersion.major = 0;
    pInfo->libraryVersion.minor = 1;
    mod_leave();
    return CKR_OK;
}

static void fill(void)
{
    mod_fill_functions(&functions);
    interfaces[0].pInterfaceName = (CK_CHAR *)"PKCS 11";
    interfaces[0].pFunctionList = &functions;
    interfaces[0].flags = 0;
    pthread_atfork(NULL, NULL, child_after_fork);
}

CK_RV mod_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
    if (pp == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&once, fill);
    *pp = &functions;
    return CKR_OK;
}

TM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
    return mod_C_GetFunctionList(pp);
}

/* 3.0 interfaces: only "PKCS 11" 2.40, the function list really implemented. */
TM_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    if (pulCount == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&once, fill);
    if (pInterfacesList == NULL) {
        *pulCount = 1;
        return CKR_OK;
    }
    if (*pulCount < 1) {
        *pulCount = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    pInterfacesList[0] = interfaces[0];
    *pulCount = 1;
    return CKR_OK;
}

TM_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                               CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    if (ppInterface == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&once, fill);
    if (pInterfaceName != NULL && strcmp((const char *)pInterfaceName, "PKCS 11") != 0)
        return CKR_ARGUMENTS_BAD;
    if (pVersion != NULL && (pVersion->major != 2 || pVersion->minor != 40))
        return CKR_ARGUMENTS_BAD;
    if ((flags & interfaces[0].flags) != flags)
        return CKR_ARGUMENTS_BAD;
    *ppInterface = &interfaces[0];
    return CKR_OK;
}
