/*
 * Modules, tokens, session pools and login.
 *
 * Lifetime: a module, once loaded, stays loaded and initialised until the
 * process exits, even when every provider instance using it is gone. The
 * reason is teardown order: OpenSSL tears providers down inside
 * OPENSSL_cleanup, and a backend that itself uses libcrypto (SoftHSM2) can
 * crash when its sessions are closed or it is finalised at that point. So
 * the provider finalises a module it initialised from an exit handler
 * registered after C_Initialize: that handler runs before OPENSSL_cleanup frees
 * anything and before any exit-time destructor the module registered while
 * loading (see finalize_at_exit). The
 * provider is linked with -z nodelete so the handler cannot outlive its code.
 * A module somebody else in the process initialised (C_Initialize returned
 * CKR_CRYPTOKI_ALREADY_INITIALIZED) is shared and never finalised by us.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "session.h"

struct prov_token {
    prov_module *mod;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
    unsigned char serial[TM_SERIAL_MAX];
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1];
    int present;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* a session went back to the pool or was closed */
    int logged_in;
    size_t open_sessions;
    size_t max_sessions; /* 0: no bound known */
    CK_SESSION_HANDLE *idle;
    size_t n_idle, cap_idle;
    unsigned char (*failed)[32]; /* SHA-256 of PINs the token refused */
    size_t n_failed, cap_failed;
    int pins_blocked; /* a refusal could not be remembered: send no PIN at all */
    CK_MECHANISM_TYPE *mechs;
    CK_ULONG n_mechs;
    int mechs_loaded;
};

struct prov_module {
    prov_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST *f;
    int owned; /* we called C_Initialize, so we finalise */
    int dead;  /* finalised at exit: no more calls */
    unsigned refs;
    pthread_mutex_t lock; /* guards tokens, login_calls */
    prov_token **tokens;
    size_t n_tokens;
    unsigned long login_calls;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static prov_module *registry;
static int atexit_registered;

/*
 * Registered twice: with atexit (runs before OPENSSL_cleanup at a normal
 * exit) and with OPENSSL_atexit (runs first thing in OPENSSL_cleanup when an
 * application calls it explicitly before exiting). Whichever comes first
 * finalises while libcrypto is still whole; the second finds nothing to do.
 */
static void finalize_at_exit(void)
{
    pthread_mutex_lock(&reg_lock);
    for (prov_module *m = registry; m != NULL; m = m->next) {
        if (m->owned && !m->dead) {
            CK_RV rv = m->f->C_Finalize(NULL);
            TM_DBG("exit: C_Finalize %s -> %s", m->path, prov_ckr_str(rv));
        }
        m->dead = 1;
    }
    pthread_mutex_unlock(&reg_lock);
}

static prov_module *module_load(prov_ctx *prov, const char *path)
{
    prov_module *m = calloc(1, sizeof(*m));
    CK_C_GetFunctionList get_list;
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    if (m == NULL || (m->path = strdup(path)) == NULL)
        goto fail;
    pthread_mutex_init(&m->lock, NULL);
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        TM_RAISE(prov, TM_R_MODULE,
                 "cannot load PKCS#11 module %s: %s (set the provider's "
                 "'pkcs11-module' option or TOKENMINT_MODULE)",
                 path, dlerror());
        goto fail;
    }
    get_list = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&m->f) != CKR_OK || m->f == NULL) {
        TM_RAISE(prov, TM_R_MODULE, "%s is not a PKCS#11 module (no usable C_GetFunctionList)",
                 path);
        goto fail;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    /* A backend built on the same libcrypto (SoftHSM2) leaves its own noise
     * in this thread's error queue; only our message should reach the user. */
    ERR_set_mark();
    rv = m->f->C_Initialize(&args);
    ERR_pop_to_mark();
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        TM_DBG("module %s already initialised in this process: sharing it", path);
    } else if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_MODULE, "C_Initialize of %s failed: %s", path, prov_ckr_str(rv));
        goto fail;
    } else {
        m->owned = 1;
    }
    TM_DBG("loaded module %s (%s)", path, m->owned ? "initialised by us" : "shared");
    return m;

fail:
    /* A module that failed to initialise holds nothing; a dlclose is safe. */
    if (m != NULL && m->dl != NULL)
        dlclose(m->dl);
    if (m != NULL) {
        free(m->path);
        free(m);
    }
    return NULL;
}

prov_module *prov_module_get(prov_ctx *prov, const char *path)
{
    prov_module *m;

    return_val_if_fail(path != NULL, NULL);
    pthread_mutex_lock(&reg_lock);
    for (m = registry; m != NULL; m = m->next) {
        if (strcmp(m->path, path) == 0 && !m->dead)
            break;
    }
    if (m == NULL) {
        m = module_load(prov, path);
        if (m != NULL) {
            m->next = registry;
            registry = m;
            /* Registered after C_Initialize, so it runs before anything the
             * module registered while initialising. */
            if (!atexit_registered && atexit(finalize_at_exit) == 0 &&
                OPENSSL_atexit(finalize_at_exit))
                atexit_registered = 1;
        }
    }
    if (m != NULL)
        m->refs++;
    pthread_mutex_unlock(&reg_lock);
    return m;
}

void prov_module_put(prov_module *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    if (m->refs > 0)
        m->refs--;
    pthread_mutex_unlock(&reg_lock);
}

CK_FUNCTION_LIST *prov_module_fn(const prov_module *m)
{
    return m->f;
}

unsigned long prov_module_login_calls(const prov_module *m)
{
    unsigned long n;
    pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    n = m->login_calls;
    pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return n;
}

static prov_token *token_new(prov_module *m, CK_SLOT_ID slot, const CK_TOKEN_INFO *info)
{
    prov_token *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->mod = m;
    t->slot = slot;
    t->info = *info;
    t->present = 1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the deadlines below */
    pthread_cond_init(&t->freed, &ca);
    pthread_condattr_destroy(&ca);
    /* Real tokens allow a few sessions; the pool stays within what the token
     * says. 0 is CK_EFFECTIVELY_INFINITE. */
    if (info->ulMaxSessionCount != CK_EFFECTIVELY_INFINITE &&
        info->ulMaxSessionCount != CK_UNAVAILABLE_INFORMATION)
        t->max_sessions = info->ulMaxSessionCount;
    t->serial_len = tm_serial_trim(info->serialNumber, sizeof(info->serialNumber), t->serial,
                                   sizeof(t->serial));
    if (t->serial_len == 0 ||
        tm_serial_encode(t->serial, t->serial_len, t->serial_text, sizeof(t->serial_text)) == 0)
        snprintf(t->serial_text, sizeof(t->serial_text), "(no serial)");
    return t;
}

/*
 * Hands the refused PINs of an earlier appearance of the token to its new
 * one. When that cannot be remembered, the new one sends no PIN at all:
 * forgetting would let a refused PIN cost the token another retry.
 */
static void failed_copy(prov_token *t, const prov_token *old)
{
    t->pins_blocked |= old->pins_blocked;
    if (old->n_failed == 0)
        return;
    unsigned char(*copy)[32] = malloc(old->n_failed * sizeof(*copy));
    if (copy == NULL) {
        t->pins_blocked = 1;
        return;
    }
    memcpy(copy, old->failed, old->n_failed * sizeof(*copy));
    OPENSSL_clear_free(t->failed, t->cap_failed * sizeof(*t->failed));
    t->failed = copy;
    t->n_failed = t->cap_failed = old->n_failed;
}

/* Room for one more refused PIN, made before the PIN goes to the token. */
static int failed_reserve_locked(prov_token *t)
{
    if (t->n_failed < t->cap_failed)
        return 1;
    size_t cap = t->cap_failed != 0 ? t->cap_failed * 2 : 8;
    unsigned char(*grown)[32] = realloc(t->failed, cap * sizeof(*grown));
    if (grown == NULL)
        return 0;
    t->failed = grown;
    t->cap_failed = cap;
    return 1;
}

static void scan(prov_module *m)
{
    CK_FUNCTION_LIST *f = m->f;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_RV rv;

    rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK)
        goto out;
    slots = calloc(n + 1, sizeof(*slots));
    if (slots == NULL)
        goto out;
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        goto out;
    for (size_t i = 0; i < m->n_tokens; i++)
        m->tokens[i]->present = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        prov_token *t = NULL;
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        for (size_t j = 0; j < m->n_tokens; j++) {
            prov_token *c = m->tokens[j];
            if (c->slot == slots[i] &&
                memcmp(c->info.serialNumber, info.serialNumber, sizeof(info.serialNumber)) == 0) {
                t = c;
                break;
            }
        }
        if (t != NULL) {
            t->present = 1;
            t->info = info;
            continue;
        }
        prov_token **grown = realloc(m->tokens, (m->n_tokens + 1) * sizeof(*grown));
        if (grown == NULL)
            break;
        m->tokens = grown;
        if ((t = token_new(m, slots[i], &info)) == NULL)
            break;
        /* Refused PINs follow the serial, not the slot: a token plugged in
         * again under a new slot ID must not get them a second time. */
        for (size_t j = 0; j < m->n_tokens; j++) {
            prov_token *old = m->tokens[j];
            if (memcmp(old->info.serialNumber, info.serialNumber, sizeof(info.serialNumber)) != 0)
                continue;
            pthread_mutex_lock(&old->lock);
            failed_copy(t, old);
            pthread_mutex_unlock(&old->lock);
        }
        m->tokens[m->n_tokens++] = t;
    }
    TM_DBG("module %s: %lu token(s)", m->path, (unsigned long)n);
out:
    if (rv != CKR_OK)
        TM_DBG("C_GetSlotList on %s: %s", m->path, prov_ckr_str(rv));
    free(slots);
}

prov_token **prov_module_tokens(prov_module *m, int rescan, size_t *n)
{
    prov_token **out = NULL;
    size_t k = 0;

    *n = 0;
    pthread_mutex_lock(&m->lock);
    if (m->dead)
        goto out;
    if (rescan || m->n_tokens == 0)
        scan(m);
    out = calloc(m->n_tokens + 1, sizeof(*out));
    if (out == NULL)
        goto out;
    for (size_t i = 0; i < m->n_tokens; i++) {
        if (m->tokens[i]->present)
            out[k++] = m->tokens[i];
    }
    *n = k;
out:
    pthread_mutex_unlock(&m->lock);
    return out;
}

prov_module *prov_token_module(const prov_token *t)
{
    return t->mod;
}

const CK_TOKEN_INFO *prov_token_info(const prov_token *t)
{
    return &t->info;
}

const unsigned char *prov_token_serial(const prov_token *t, size_t *len)
{
    *len = t->serial_len;
    return t->serial;
}

const char *prov_token_serial_text(const prov_token *t)
{
    return t->serial_text;
}

int prov_token_has_mech(prov_token *t, CK_MECHANISM_TYPE mech)
{
    CK_FUNCTION_LIST *f = t->mod->f;
    int found = 0;

    pthread_mutex_lock(&t->lock);
    if (!t->mechs_loaded && !t->mod->dead) {
        CK_ULONG n = 0;
        if (f->C_GetMechanismList(t->slot, NULL, &n) == CKR_OK && n > 0 &&
            (t->mechs = calloc(n, sizeof(*t->mechs))) != NULL &&
            f->C_GetMechanismList(t->slot, t->mechs, &n) == CKR_OK)
            t->n_mechs = n;
        t->mechs_loaded = 1;
    }
    for (CK_ULONG i = 0; i < t->n_mechs; i++) {
        if (t->mechs[i] == mech) {
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

/* How long a caller waits for a session when the token has none left. */
#define TM_SESSION_WAIT_MS 10000
#define TM_SESSION_BACKOFF_MAX_MS 200

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Token lock held. An idle session, else a new one while the token has room
 * (max_sessions, as the token reports it or as CKR_SESSION_COUNT taught it).
 * A full token makes the caller wait for a session to come back, or, when
 * other processes hold the token's sessions, retry the open with a growing
 * pause, up to TM_SESSION_WAIT_MS. rw: a read-write session (key
 * generation), never one from the pool, made room for by closing an idle
 * read-only one.
 */
static CK_RV session_open_flags_locked(prov_token *t, int rw, CK_SESSION_HANDLE *s)
{
    struct timespec deadline, now, wake;
    long pause_ms = 5;
    CK_RV rv;

    deadline_after(&deadline, TM_SESSION_WAIT_MS);
    for (;;) {
        if (!rw && t->n_idle > 0) {
            *s = t->idle[--t->n_idle];
            return CKR_OK;
        }
        if (t->mod->dead)
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        if (rw && t->n_idle > 0 && t->max_sessions != 0 && t->open_sessions >= t->max_sessions) {
            (void)t->mod->f->C_CloseSession(t->idle[--t->n_idle]);
            t->open_sessions--; /* the others stay open: so does the login */
        }
        if (t->max_sessions == 0 || t->open_sessions < t->max_sessions) {
            rv = t->mod->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
                                          NULL, NULL, s);
            if (rv == CKR_OK) {
                t->open_sessions++;
                return CKR_OK;
            }
            if (rv != CKR_SESSION_COUNT)
                return rv;
            /* The token is full: it holds no more than this process has now
             * (fewer if other processes hold some). */
            if (t->open_sessions > 0)
                t->max_sessions = t->open_sessions;
            TM_DBG("token %s: CKR_SESSION_COUNT with %zu session(s) open here; waiting",
                   t->serial_text, t->open_sessions);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, &deadline))
            return CKR_SESSION_COUNT;
        /* Woken by a session coming back; the pause bounds the wait for
         * sessions other processes give back, which nobody signals. */
        deadline_after(&wake, pause_ms);
        if (before(&deadline, &wake))
            wake = deadline;
        (void)pthread_cond_timedwait(&t->freed, &t->lock, &wake);
        if (pause_ms < TM_SESSION_BACKOFF_MAX_MS)
            pause_ms *= 2;
    }
}

static CK_RV session_open_locked(prov_token *t, CK_SESSION_HANDLE *s)
{
    return session_open_flags_locked(t, 0, s);
}

/* Token lock held. */
static void session_close_locked(prov_token *t, CK_SESSION_HANDLE s, CK_RV last)
{
    int dead = last == CKR_SESSION_HANDLE_INVALID || last == CKR_SESSION_CLOSED ||
               last == CKR_DEVICE_REMOVED || last == CKR_TOKEN_NOT_PRESENT ||
               last == CKR_DEVICE_ERROR;

    if (!dead && t->n_idle == t->cap_idle) {
        size_t cap = t->cap_idle ? t->cap_idle * 2 : 4;
        CK_SESSION_HANDLE *grown = realloc(t->idle, cap * sizeof(*grown));
        if (grown == NULL) {
            dead = 1;
        } else {
            t->idle = grown;
            t->cap_idle = cap;
        }
    }
    if (!dead) {
        t->idle[t->n_idle++] = s;
        return;
    }
    if (!t->mod->dead)
        (void)t->mod->f->C_CloseSession(s);
    if (t->open_sessions > 0)
        t->open_sessions--;
    /* Login state lives as long as one session is open on the token. */
    if (t->open_sessions == 0 || last == CKR_DEVICE_REMOVED || last == CKR_TOKEN_NOT_PRESENT)
        t->logged_in = 0;
}

CK_SESSION_HANDLE prov_session_get(prov_ctx *prov, prov_token *t)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv;

    pthread_mutex_lock(&t->lock);
    rv = session_open_locked(t, &s);
    pthread_mutex_unlock(&t->lock);
    if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_MODULE, "cannot open a session on token %s: %s", t->serial_text,
                 prov_ckr_str(rv));
        return CK_INVALID_HANDLE;
    }
    return s;
}

void prov_session_put(prov_token *t, CK_SESSION_HANDLE s, CK_RV last)
{
    if (s == CK_INVALID_HANDLE)
        return;
    pthread_mutex_lock(&t->lock);
    session_close_locked(t, s, last);
    if (last == CKR_USER_NOT_LOGGED_IN)
        t->logged_in = 0;
    pthread_cond_broadcast(&t->freed);
    pthread_mutex_unlock(&t->lock);
}

CK_SESSION_HANDLE prov_session_get_rw(prov_ctx *prov, prov_token *t)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv;

    pthread_mutex_lock(&t->lock);
    rv = session_open_flags_locked(t, 1, &s);
    pthread_mutex_unlock(&t->lock);
    if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_MODULE, "cannot open a read-write session on token %s: %s",
                 t->serial_text, prov_ckr_str(rv));
        return CK_INVALID_HANDLE;
    }
    return s;
}

size_t prov_token_session_stats(prov_token *t, size_t *max_sessions)
{
    size_t n;

    pthread_mutex_lock(&t->lock);
    n = t->open_sessions;
    if (max_sessions != NULL)
        *max_sessions = t->max_sessions;
    pthread_mutex_unlock(&t->lock);
    return n;
}

CK_RV prov_object_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                       CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = f->C_GetAttributeValue(s, o, &a, 1);

    *val = NULL;
    *len = 0;
    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_ATTRIBUTE_TYPE_INVALID;
    a.pValue = malloc(a.ulValueLen + 1);
    if (a.pValue == NULL)
        return CKR_HOST_MEMORY;
    rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return rv;
    }
    *val = a.pValue;
    *len = a.ulValueLen;
    return CKR_OK;
}

/*
 * Token lock held. Login state is per token in PKCS#11, so somebody else in
 * the process (the tool, another provider instance) may have logged in
 * already: then the token needs no PIN from us, and asking for one would make
 * a caller that holds none fail.
 */
static int session_shows_login_locked(prov_token *t, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;

    if (t->mod->f->C_GetSessionInfo(s, &si) == CKR_OK &&
        (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS))
        t->logged_in = 1;
    return t->logged_in;
}

int prov_token_logged_in(prov_token *t)
{
    CK_SESSION_HANDLE s;
    CK_RV rv;
    int v;

    pthread_mutex_lock(&t->lock);
    v = t->logged_in;
    if (!v && (rv = session_open_locked(t, &s)) == CKR_OK) {
        v = session_shows_login_locked(t, s);
        session_close_locked(t, s, rv);
    }
    pthread_mutex_unlock(&t->lock);
    return v;
}

/* A PIN's fingerprint for the "never again" list; salted with the serial. */
static int pin_fingerprint(prov_ctx *prov, const prov_token *t, const char *pin, size_t pin_len,
                           unsigned char out[32])
{
    OSSL_LIB_CTX *libctx = prov_libctx(prov);
    EVP_MD *md = libctx != NULL ? EVP_MD_fetch(libctx, "SHA256", NULL) : NULL;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md != NULL && c != NULL && EVP_DigestInit_ex(c, md, NULL) &&
             EVP_DigestUpdate(c, "tokenmint-pin", 13) &&
             EVP_DigestUpdate(c, t->serial, t->serial_len) &&
             EVP_DigestUpdate(c, pin != NULL ? "P" : "N", 1) &&
             (pin == NULL || EVP_DigestUpdate(c, pin, pin_len)) && EVP_DigestFinal_ex(c, out, &len);
    EVP_MD_CTX_free(c);
    EVP_MD_free(md);
    return ok && len == 32;
}

int prov_token_login(prov_ctx *prov, prov_token *t, const char *pin, size_t pin_len)
{
    CK_FUNCTION_LIST *f = t->mod->f;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    unsigned char fp[32];
    CK_RV rv = CKR_OK;
    int ok = 0;

    if (!pin_fingerprint(prov, t, pin, pin_len, fp)) {
        TM_RAISE(prov, TM_R_LOGIN,
                 "cannot log in to token %s: SHA-256 unavailable (load the "
                 "default provider)",
                 t->serial_text);
        return 0;
    }
    pthread_mutex_lock(&t->lock);
    if (t->logged_in) {
        ok = 1;
        goto out;
    }
    /* Room for this PIN's refusal is made first: a refusal that could
     * not be remembered would let the PIN be sent again later. */
    if (t->pins_blocked || !failed_reserve_locked(t)) {
        t->pins_blocked = 1;
        TM_RAISE(prov, TM_R_LOGIN,
                 "token %s: out of memory for the list of refused PINs; not sending any PIN to "
                 "it in this process",
                 t->serial_text);
        goto out;
    }
    for (size_t i = 0; i < t->n_failed; i++) {
        if (CRYPTO_memcmp(t->failed[i], fp, sizeof(fp)) == 0) {
            TM_RAISE(prov, TM_R_LOGIN,
                     "token %s already refused this PIN in this process; not sending it again "
                     "(each try costs the token a retry)",
                     t->serial_text);
            goto out;
        }
    }
    rv = session_open_locked(t, &s);
    if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_MODULE, "cannot open a session on token %s: %s", t->serial_text,
                 prov_ckr_str(rv));
        goto out;
    }
    if (session_shows_login_locked(t, s)) {
        ok = 1;
        goto out;
    }
    pthread_mutex_lock(&t->mod->lock);
    t->mod->login_calls++;
    pthread_mutex_unlock(&t->mod->lock);
    ERR_set_mark();
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, pin != NULL ? pin_len : 0);
    ERR_pop_to_mark();
    TM_DBG("C_Login token %s (%s) -> %s", t->serial_text, pin != NULL ? "PIN" : "protected path",
           prov_ckr_str(rv));
    switch (rv) {
    case CKR_OK:
    case CKR_USER_ALREADY_LOGGED_IN:
        t->logged_in = 1;
        ok = 1;
        break;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
        memcpy(t->failed[t->n_failed++], fp, sizeof(fp)); /* room reserved above */
        TM_RAISE(prov, TM_R_LOGIN,
                 "token %s refused the %s (%s); this process will not try it again", t->serial_text,
                 pin != NULL ? "PIN" : "protected-path login", prov_ckr_str(rv));
        rv = CKR_OK; /* the session itself is fine */
        break;
    case CKR_PIN_LOCKED:
        TM_RAISE(prov, TM_R_LOGIN, "token %s: the user PIN is locked; unblock it with the SO PIN",
                 t->serial_text);
        rv = CKR_OK;
        break;
    default:
        TM_RAISE(prov, TM_R_LOGIN, "login to token %s failed: %s", t->serial_text,
                 prov_ckr_str(rv));
        break;
    }
out:
    if (s != CK_INVALID_HANDLE)
        session_close_locked(t, s, rv);
    pthread_mutex_unlock(&t->lock);
    OPENSSL_cleanse(fp, sizeof(fp));
    return ok;
}
