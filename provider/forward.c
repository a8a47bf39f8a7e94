/* Finding the other provider's implementations (see forward.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/provider.h>

#include "forward.h"

typedef struct fwd_entry {
    struct fwd_entry *next;
    int op;
    char name[32];
    prov_fwd fwd;
} fwd_entry;

/* Is name one of the colon-separated names of an algorithm? */
static int names_have(const char *names, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = names; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ':');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == len && strncasecmp(p, name, n) == 0)
            return 1;
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

typedef struct {
    int op;
    const char *name;
    prov_fwd found;
} find_arg;

static int find_in(OSSL_PROVIDER *p, void *varg)
{
    find_arg *a = varg;
    int no_cache = 0;
    const OSSL_ALGORITHM *algs;

    /* The child context holds a copy of this provider too: never ourselves. */
    if (prov_algorithms_are_ours(OSSL_PROVIDER_query_operation(p, a->op, &no_cache)))
        return 1;
    algs = OSSL_PROVIDER_query_operation(p, a->op, &no_cache);
    for (; algs != NULL && algs->algorithm_names != NULL; algs++) {
        if (names_have(algs->algorithm_names, a->name)) {
            a->found.provctx = OSSL_PROVIDER_get0_provider_ctx(p);
            a->found.fns = algs->implementation;
            return 0; /* stop: the first other provider wins, as a fetch would */
        }
    }
    return 1;
}

const prov_fwd *prov_fwd_find(prov_ctx *prov, int op, const char *name)
{
    OSSL_LIB_CTX *child = prov_libctx(prov);
    fwd_entry *e;
    find_arg a = {op, name, {NULL, NULL}};

    return_val_if_fail(name != NULL && strlen(name) < sizeof(e->name), NULL);
    pthread_mutex_lock(&prov->lock);
    for (e = prov->fwd_cache; e != NULL; e = e->next) {
        if (e->op == op && strcasecmp(e->name, name) == 0)
            break;
    }
    pthread_mutex_unlock(&prov->lock);
    if (e != NULL)
        return &e->fwd;
    if (child != NULL)
        OSSL_PROVIDER_do_all(child, find_in, &a);
    if (a.found.fns == NULL) {
        TM_RAISE(prov, TM_R_UNSUPPORTED,
                 "%s is not a token key, and no other provider (load the default provider) "
                 "offers %s",
                 name, name);
        return NULL;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->op = op;
    strcpy(e->name, name);
    e->fwd = a.found;
    pthread_mutex_lock(&prov->lock);
    e->next = prov->fwd_cache;
    prov->fwd_cache = e;
    pthread_mutex_unlock(&prov->lock);
    return &e->fwd;
}

void (*prov_fwd_fn(const prov_fwd *f, int id))(void)
{
    if (f == NULL)
        return NULL;
    for (const OSSL_DISPATCH *d = f->fns; d->function_id != 0; d++) {
        if (d->function_id == id)
            return d->function;
    }
    return NULL;
}

void prov_fwd_cache_free(prov_ctx *prov)
{
    fwd_entry *e = prov->fwd_cache, *next;

    for (; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    prov->fwd_cache = NULL;
}

typedef struct {
    OSSL_CALLBACK *cb;
    void *arg;
} groups_arg;

static int group_filter(const OSSL_PARAM params[], void *varg)
{
    groups_arg *g = varg;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_CAPABILITY_TLS_GROUP_ALG);
    const char *alg = NULL;

    /* Only the key types this provider shadows; others stay with their owner. */
    if (p == NULL || !OSSL_PARAM_get_utf8_string_ptr(p, &alg) || strcasecmp(alg, "EC") != 0)
        return 1;
    return g->cb(params, g->arg);
}

static int groups_of(OSSL_PROVIDER *p, void *varg)
{
    int no_cache = 0;

    if (prov_algorithms_are_ours(OSSL_PROVIDER_query_operation(p, OSSL_OP_KEYMGMT, &no_cache)))
        return 1;
    return OSSL_PROVIDER_get_capabilities(p, "TLS-GROUP", group_filter, varg);
}

int prov_fwd_tls_groups(prov_ctx *prov, OSSL_CALLBACK *cb, void *arg)
{
    OSSL_LIB_CTX *child = prov_libctx(prov);
    groups_arg g = {cb, arg};

    if (child == NULL)
        return 1; /* no groups from us: libssl keeps the others' */
    return OSSL_PROVIDER_do_all(child, groups_of, &g);
}
