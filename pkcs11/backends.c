/*
 * Loading goes through p11-kit in unmanaged mode: p11-kit does the dlopen and
 * C_GetFunctionList (and knows the registered module names), while the module
 * keeps control of C_Initialize so it can pass init_args and OS locking.
 */
#define _GNU_SOURCE
#include "backends.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "debug.h"

static int same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];

    if (a == NULL || b == NULL || realpath(a, ra) == NULL || realpath(b, rb) == NULL)
        return 0;
    return strcmp(ra, rb) == 0;
}

/* The file this module was loaded from. */
static const char *self_path(CK_FUNCTION_LIST *self)
{
    Dl_info info;

    if (self != NULL && dladdr((void *)self->C_GetFunctionList, &info) != 0)
        return info.dli_fname;
    return NULL;
}

static int is_self(CK_FUNCTION_LIST *self, CK_FUNCTION_LIST *funcs)
{
    Dl_info info;

    if (funcs == self || funcs->C_GetFunctionList == self->C_GetFunctionList)
        return 1;
    if (dladdr((void *)funcs->C_GetFunctionList, &info) != 0 &&
        same_file(info.dli_fname, self_path(self)))
        return 1;
    return 0;
}

static CK_FUNCTION_LIST *load_registered(const char *name, char *err, size_t errlen)
{
    CK_FUNCTION_LIST **all = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
    CK_FUNCTION_LIST *found = NULL;
    size_t i;

    if (all == NULL) {
        snprintf(err, errlen, "cannot load the p11-kit module registry: %s", p11_kit_message());
        return NULL;
    }
    for (i = 0; all[i] != NULL; i++) {
        char *n = p11_kit_module_get_name(all[i]);
        if (found == NULL && n != NULL && strcmp(n, name) == 0)
            found = all[i];
        else
            p11_kit_module_release(all[i]);
        free(n);
    }
    free(all);
    if (found == NULL)
        snprintf(err, errlen, "no module named '%s' is registered with p11-kit", name);
    return found;
}

static int load_one(const mod_backend_conf *bc, CK_FUNCTION_LIST *self, mod_backend *b, char *err,
                    size_t errlen)
{
    char why[256] = "";
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    b->name = strdup(bc->name);
    b->where = strdup(bc->module != NULL ? bc->module : bc->p11kit_module);
    if (b->name == NULL || b->where == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    if (bc->module != NULL && same_file(bc->module, self_path(self))) {
        snprintf(err, errlen, "backend '%s' (%s) is tokenmint itself", bc->name, bc->module);
        return 0;
    }
    if (bc->module != NULL) {
        b->funcs = p11_kit_module_load(bc->module, P11_KIT_MODULE_UNMANAGED);
        if (b->funcs == NULL)
            snprintf(why, sizeof(why), "%s", p11_kit_message() ? p11_kit_message() : "not found");
    } else {
        b->funcs = load_registered(bc->p11kit_module, why, sizeof(why));
    }
    if (b->funcs == NULL) {
        snprintf(err, errlen, "backend '%s': cannot load %s: %s", bc->name, b->where, why);
        return 0;
    }
    if (is_self(self, b->funcs)) {
        snprintf(err, errlen, "backend '%s' (%s) is tokenmint itself", bc->name, b->where);
        return 0;
    }
    if (bc->uri != NULL) {
        b->uri = p11_kit_uri_new();
        if (b->uri == NULL ||
            p11_kit_uri_parse(bc->uri, P11_KIT_URI_FOR_ANY, b->uri) != P11_KIT_URI_OK) {
            snprintf(err, errlen, "backend '%s': bad uri '%s'", bc->name, bc->uri);
            return 0;
        }
    }
    b->token_serials = bc->token_serials;
    b->n_token_serials = bc->n_token_serials;
    if (bc->init_args != NULL && (b->init_args = strdup(bc->init_args)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = b->init_args;
    rv = b->funcs->C_Initialize(&args);
    /* Someone else in this process (p11-kit's registry, the application, a
     * forked parent) initialised it: use it, and leave its C_Finalize to them. */
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        mod_debug("backend '%s' was already initialised in this process: shared, not "
                  "finalized by tokenmint",
                  bc->name);
        b->borrowed = 1;
        rv = CKR_OK;
    }
    if (rv != CKR_OK) {
        snprintf(err, errlen, "backend '%s' (%s): C_Initialize failed: CKR 0x%lx", bc->name,
                 b->where, (unsigned long)rv);
        return 0;
    }
    b->initialized = 1;
    if (b->uri != NULL) {
        CK_INFO info;
        if (b->funcs->C_GetInfo(&info) == CKR_OK && !p11_kit_uri_match_module_info(b->uri, &info)) {
            b->selects_nothing = 1;
            mod_debug("backend '%s': its uri does not match the module, no token selected",
                      b->name);
        }
    }
    mod_debug("backend '%s' loaded from %s", b->name, b->where);
    return 1;
}

static void unload_one(mod_backend *b)
{
    if (b->initialized && !b->borrowed)
        b->funcs->C_Finalize(NULL);
    b->initialized = 0;
    if (b->funcs != NULL)
        p11_kit_module_release(b->funcs);
    if (b->uri != NULL)
        p11_kit_uri_free(b->uri);
    free(b->init_args);
    free(b->name);
    free(b->where);
    memset(b, 0, sizeof(*b));
}

int mod_backends_load(const mod_config *cfg, CK_FUNCTION_LIST *self, mod_backend **out, size_t *n,
                      char *err, size_t errlen)
{
    mod_backend *b = calloc(cfg->n_backends > 0 ? cfg->n_backends : 1, sizeof(*b));
    size_t i;

    mod_return_val_if_fail(cfg != NULL && self != NULL && out != NULL && n != NULL, 0);
    *out = NULL;
    *n = 0;
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    for (i = 0; i < cfg->n_backends; i++) {
        if (!load_one(&cfg->backends[i], self, &b[i], err, errlen)) {
            mod_backends_unload(b, i + 1);
            return 0;
        }
    }
    *out = b;
    *n = cfg->n_backends;
    return 1;
}

void mod_backends_abandon(mod_backend *b, size_t n)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < n; i++) {
        if (b[i].uri != NULL)
            p11_kit_uri_free(b[i].uri);
        free(b[i].init_args);
        free(b[i].name);
        free(b[i].where);
    }
    free(b);
}

void mod_backends_unload(mod_backend *b, size_t n)
{
    size_t i;

    if (b == NULL)
        return;
    /* Reverse order: a backend loaded later may depend on an earlier one. */
    for (i = n; i > 0; i--)
        unload_one(&b[i - 1]);
    free(b);
}

int mod_backend_selects(const mod_backend *b, const CK_SLOT_INFO *slot, const CK_TOKEN_INFO *token)
{
    if (b->selects_nothing)
        return 0;
    if (b->uri == NULL)
        return 1;
    return p11_kit_uri_match_slot_info(b->uri, slot) && p11_kit_uri_match_token_info(b->uri, token);
}
