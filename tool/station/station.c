/*
 * The station: the PKCS#11 module and the tokens it shows.
 */
#include "station/station.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/uri.h>

#ifndef TM_BUILD_MODULE
#define TM_BUILD_MODULE ""
#endif
#ifndef TM_INSTALLED_MODULE
#define TM_INSTALLED_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/tokenmint-pkcs11.so"
#endif

const char *tool_default_module(const char *opt)
{
    const char *env;

    if (opt && *opt)
        return opt;
    env = getenv("TOKENMINT_MODULE");
    if (env && *env)
        return env;
    if (TM_BUILD_MODULE[0] && access(TM_BUILD_MODULE, R_OK) == 0)
        return TM_BUILD_MODULE;
    return TM_INSTALLED_MODULE;
}

static CK_RV create_mutex(void **m)
{
    pthread_mutex_t *p = malloc(sizeof *p);
    if (!p)
        return CKR_HOST_MEMORY;
    pthread_mutex_init(p, NULL);
    *m = p;
    return CKR_OK;
}

static CK_RV destroy_mutex(void *m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}

static CK_RV lock_mutex(void *m)
{
    return pthread_mutex_lock(m) ? CKR_GENERAL_ERROR : CKR_OK;
}

static CK_RV unlock_mutex(void *m)
{
    return pthread_mutex_unlock(m) ? CKR_GENERAL_ERROR : CKR_OK;
}

int tool_station_open(tool_station *st, const char *module, char *err, size_t errlen)
{
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;
    tool_return_val_if_fail(st != NULL && module != NULL && err != NULL, 0);

    memset(st, 0, sizeof *st);
    snprintf(st->module_path, sizeof st->module_path, "%s", module);
    st->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (!st->dl) {
        snprintf(err, errlen, "cannot load PKCS#11 module %s: %s", module, dlerror());
        return 0;
    }
    gfl = (CK_C_GetFunctionList)dlsym(st->dl, "C_GetFunctionList");
    if (!gfl || gfl(&st->f) != CKR_OK || !st->f) {
        snprintf(err, errlen, "%s is not a PKCS#11 module (no C_GetFunctionList)", module);
        goto fail;
    }
    /* Our own mutex callbacks plus CKF_OS_LOCKING_OK: the tokens are used
     * from several worker threads at once. */
    memset(&args, 0, sizeof args);
    args.CreateMutex = create_mutex;
    args.DestroyMutex = destroy_mutex;
    args.LockMutex = lock_mutex;
    args.UnlockMutex = unlock_mutex;
    args.flags = CKF_OS_LOCKING_OK;
    rv = st->f->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        st->we_initialized = 0;
    } else if (rv != CKR_OK) {
        snprintf(err, errlen, "C_Initialize of %s failed: %s (set TOKENMINT_DEBUG=1 for details)",
                 module, p11c_ckr_name(rv));
        goto fail;
    } else {
        st->we_initialized = 1;
    }
    tool_debug("module %s initialised (ours: %d)", module, st->we_initialized);
    return tool_station_scan(st, err, errlen);
fail:
    dlclose(st->dl);
    st->dl = NULL;
    st->f = NULL;
    return 0;
}

int tool_token_fill(tool_token *t)
{
    size_t n;
    P11KitUri *u;
    char *s = NULL;

    memcpy(t->label, t->info.label, 32);
    t->label[32] = 0;
    for (n = 32; n > 0 && (t->label[n - 1] == ' ' || t->label[n - 1] == 0); n--)
        t->label[n - 1] = 0;
    memcpy(t->model, t->info.model, 16);
    t->model[16] = 0;
    for (n = 16; n > 0 && (t->model[n - 1] == ' ' || t->model[n - 1] == 0); n--)
        t->model[n - 1] = 0;
    t->serial_len = tm_serial_trim(t->info.serialNumber, sizeof t->info.serialNumber, t->serial,
                                   sizeof t->serial);
    t->serial_text[0] = 0;
    if (t->serial_len)
        tm_serial_encode(t->serial, t->serial_len, t->serial_text, sizeof t->serial_text);
    t->uri[0] = 0;
    u = p11_kit_uri_new();
    if (u) {
        memcpy(p11_kit_uri_get_token_info(u)->serialNumber, t->info.serialNumber, 16);
        if (p11_kit_uri_format(u, P11_KIT_URI_FOR_TOKEN, &s) == P11_KIT_URI_OK) {
            snprintf(t->uri, sizeof t->uri, "%s", s);
            free(s);
        }
        p11_kit_uri_free(u);
    }
    return t->serial_len > 0;
}

CK_RV tool_token_refresh(tool_station *st, tool_token *t)
{
    CK_RV rv = st->f->C_GetTokenInfo(t->slot, &t->info);
    if (rv == CKR_OK)
        tool_token_fill(t);
    return rv;
}

int tool_station_scan(tool_station *st, char *err, size_t errlen)
{
    CK_ULONG n = 0, i;
    CK_SLOT_ID *slots = NULL;
    CK_RV rv;
    int ok = 0;

    free(st->tokens);
    st->tokens = NULL;
    st->ntokens = 0;
    rv = st->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        snprintf(err, errlen, "C_GetSlotList: %s", p11c_ckr_name(rv));
        goto out;
    }
    slots = calloc(n ? n : 1, sizeof *slots);
    st->tokens = calloc(n ? n : 1, sizeof *st->tokens);
    if (!slots || !st->tokens) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rv = st->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        snprintf(err, errlen, "C_GetSlotList: %s", p11c_ckr_name(rv));
        goto out;
    }
    for (i = 0; i < n; i++) {
        tool_token *t = &st->tokens[st->ntokens];
        t->slot = slots[i];
        /* A token pulled between the two calls is simply not there. */
        if (st->f->C_GetTokenInfo(slots[i], &t->info) != CKR_OK)
            continue;
        tool_token_fill(t);
        st->ntokens++;
    }
    ok = 1;
out:
    free(slots);
    return ok;
}

void tool_station_close(tool_station *st)
{
    if (st->f && st->we_initialized)
        st->f->C_Finalize(NULL);
    /* The module stays mapped: OpenSSL's atexit teardown of the provider may
     * still call into it. */
    free(st->tokens);
    st->tokens = NULL;
    st->ntokens = 0;
    st->f = NULL;
}

int tool_station_select(tool_station *st, char **uris, size_t nuris, unsigned char *sel, char *err,
                        size_t errlen)
{
    size_t i, j;
    tool_return_val_if_fail(st != NULL && sel != NULL && err != NULL, 0);

    for (i = 0; i < nuris; i++) {
        P11KitUri *u = p11_kit_uri_new();
        int rc, hit = 0;
        if (!u) {
            snprintf(err, errlen, "out of memory");
            return 0;
        }
        rc = p11_kit_uri_parse(uris[i], P11_KIT_URI_FOR_TOKEN, u);
        if (rc != P11_KIT_URI_OK) {
            snprintf(err, errlen, "--token %s: not a pkcs11: token URI (%s)", uris[i],
                     p11_kit_uri_message(rc));
            p11_kit_uri_free(u);
            return 0;
        }
        for (j = 0; j < st->ntokens; j++) {
            if (p11_kit_uri_match_token_info(u, &st->tokens[j].info)) {
                sel[j] = 1;
                hit = 1;
            }
        }
        p11_kit_uri_free(u);
        if (!hit) {
            snprintf(err, errlen, "--token %s: no token at this station matches", uris[i]);
            return 0;
        }
    }
    return 1;
}

int tool_key_uri(const tool_token *t, const unsigned char *id, size_t idlen, const char *type,
                 char *out, size_t outlen)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE a;
    char *s = NULL;
    int ok = 0;

    if (!u)
        return 0;
    memcpy(p11_kit_uri_get_token_info(u)->serialNumber, t->info.serialNumber, 16);
    if (id) {
        a.type = CKA_ID;
        a.pValue = (void *)id;
        a.ulValueLen = idlen;
        p11_kit_uri_set_attribute(u, &a);
    }
    if (type && strcmp(type, "cert") == 0)
        cls = CKO_CERTIFICATE;
    else if (type && strcmp(type, "public") == 0)
        cls = CKO_PUBLIC_KEY;
    a.type = CKA_CLASS;
    a.pValue = &cls;
    a.ulValueLen = sizeof cls;
    p11_kit_uri_set_attribute(u, &a);
    if (p11_kit_uri_format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s) == P11_KIT_URI_OK) {
        ok = (size_t)snprintf(out, outlen, "%s", s) < outlen;
        free(s);
    }
    p11_kit_uri_free(u);
    return ok;
}
