#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "debug.h"

struct mod_events {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* an event was queued, or stopping */
    pthread_cond_t tick;    /* wakes the watcher early when stopping */
    CK_SLOT_ID *queue;
    size_t n, cap;
    int stopping;
    int watching;
    pthread_t watcher;
    void (*rescan)(void *ctx);
    void *ctx;
    unsigned interval_ms;
};

mod_events *mod_events_new(void (*rescan)(void *ctx), void *ctx, unsigned interval_ms)
{
    mod_events *e = calloc(1, sizeof(*e));
    pthread_condattr_t attr;

    if (e == NULL)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->changed, NULL);
    pthread_cond_init(&e->tick, &attr);
    pthread_condattr_destroy(&attr);
    e->rescan = rescan;
    e->ctx = ctx;
    e->interval_ms = interval_ms;
    return e;
}

static void *watch(void *arg)
{
    mod_events *e = arg;
    struct timespec until;

    pthread_mutex_lock(&e->lock);
    while (!e->stopping) {
        pthread_mutex_unlock(&e->lock);
        e->rescan(e->ctx); /* no events lock held: rescan pushes events */
        pthread_mutex_lock(&e->lock);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(e->interval_ms % 1000) * 1000000L;
        until.tv_sec += e->interval_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!e->stopping && pthread_cond_timedwait(&e->tick, &e->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

void mod_events_stop(mod_events *e)
{
    int joining;

    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    joining = e->watching;
    e->watching = 0;
    pthread_cond_broadcast(&e->tick);
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
    if (joining)
        pthread_join(e->watcher, NULL);
}

void mod_events_free(mod_events *e)
{
    if (e == NULL)
        return;
    pthread_cond_destroy(&e->changed);
    pthread_cond_destroy(&e->tick);
    pthread_mutex_destroy(&e->lock);
    free(e->queue);
    free(e);
}

void mod_events_push(mod_events *e, CK_SLOT_ID slot)
{
    size_t i;

    pthread_mutex_lock(&e->lock);
    for (i = 0; i < e->n; i++)
        if (e->queue[i] == slot)
            goto out;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        CK_SLOT_ID *nq = realloc(e->queue, cap * sizeof(*nq));
        if (nq == NULL)
            goto out;
        e->queue = nq;
        e->cap = cap;
    }
    e->queue[e->n++] = slot;
    pthread_cond_broadcast(&e->changed);
out:
    pthread_mutex_unlock(&e->lock);
}

static int pop(mod_events *e, CK_SLOT_ID *slot)
{
    if (e->n == 0)
        return 0;
    *slot = e->queue[0];
    memmove(e->queue, e->queue + 1, (e->n - 1) * sizeof(*e->queue));
    e->n--;
    return 1;
}

CK_RV mod_events_wait(mod_events *e, CK_FLAGS flags, CK_SLOT_ID *slot)
{
    CK_RV rv = CKR_OK;

    mod_return_val_if_fail(e != NULL && slot != NULL, CKR_ARGUMENTS_BAD);
    pthread_mutex_lock(&e->lock);
    if (e->stopping) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    if (pop(e, slot))
        goto out;
    if (flags & CKF_DONT_BLOCK) {
        rv = CKR_NO_EVENT;
        goto out;
    }
    if (!e->watching) {
        if (pthread_create(&e->watcher, NULL, watch, e) != 0) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        e->watching = 1;
        mod_debug("slot watcher started (every %u ms)", e->interval_ms);
    }
    while (!e->stopping && !pop(e, slot))
        pthread_cond_wait(&e->changed, &e->lock);
    if (e->stopping)
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
out:
    pthread_mutex_unlock(&e->lock);
    return rv;
}
