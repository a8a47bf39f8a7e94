#include "handles.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

/* Open addressing with linear probing over (k1, k2) -> (v1, v2). */
enum { SLOT_EMPTY = 0, SLOT_USED, SLOT_DELETED };

typedef struct entry {
    CK_ULONG k1, k2, v1, v2;
    unsigned char state;
} entry;

typedef struct table {
    entry *e;
    size_t cap; /* power of two */
    size_t used, deleted;
} table;

struct mod_handles {
    pthread_rwlock_t sessions_lock; /* lookups share it: no waiting between signers */
    table sessions;                 /* (handle, 0) -> (slot, backend session) */
    CK_ULONG next_session;

    pthread_rwlock_t objects_lock;
    table objects; /* (handle, 0) -> (slot, backend object) */
    table reverse; /* (slot, backend object) -> (handle, 0) */
    CK_ULONG next_object;
};

static size_t mix(CK_ULONG k1, CK_ULONG k2)
{
    uint64_t x = (uint64_t)k1 * 0x9E3779B97F4A7C15ULL ^ (uint64_t)k2;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return (size_t)x;
}

static entry *find(const table *t, CK_ULONG k1, CK_ULONG k2)
{
    size_t i;

    if (t->cap == 0)
        return NULL;
    for (i = mix(k1, k2) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        entry *e = &t->e[i];
        if (e->state == SLOT_EMPTY)
            return NULL;
        if (e->state == SLOT_USED && e->k1 == k1 && e->k2 == k2)
            return e;
    }
}

static int resize(table *t, size_t cap)
{
    entry *old = t->e;
    size_t oldcap = t->cap, i;

    t->e = calloc(cap, sizeof(*t->e));
    if (t->e == NULL) {
        t->e = old;
        return 0;
    }
    t->cap = cap;
    t->used = t->deleted = 0;
    for (i = 0; i < oldcap; i++) {
        if (old[i].state == SLOT_USED) {
            size_t j = mix(old[i].k1, old[i].k2) & (cap - 1);
            while (t->e[j].state != SLOT_EMPTY)
                j = (j + 1) & (cap - 1);
            t->e[j] = old[i];
            t->used++;
        }
    }
    free(old);
    return 1;
}

static int put(table *t, CK_ULONG k1, CK_ULONG k2, CK_ULONG v1, CK_ULONG v2)
{
    size_t i;

    /* Keep at most half full (tombstones included) so probes stay short. */
    if ((t->used + t->deleted + 1) * 2 > t->cap) {
        size_t cap = 16;
        while (cap < (t->used + 1) * 4)
            cap *= 2;
        if (!resize(t, cap))
            return 0;
    }
    for (i = mix(k1, k2) & (t->cap - 1); t->e[i].state == SLOT_USED; i = (i + 1) & (t->cap - 1))
        ;
    if (t->e[i].state == SLOT_DELETED)
        t->deleted--;
    t->e[i] = (entry){k1, k2, v1, v2, SLOT_USED};
    t->used++;
    return 1;
}

static void del(table *t, entry *e)
{
    e->state = SLOT_DELETED;
    t->used--;
    t->deleted++;
}

mod_handles *mod_handles_new(void)
{
    mod_handles *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    pthread_rwlock_init(&h->sessions_lock, NULL);
    pthread_rwlock_init(&h->objects_lock, NULL);
    h->next_session = 1;
    h->next_object = 1;
    return h;
}

void mod_handles_free(mod_handles *h)
{
    if (h == NULL)
        return;
    free(h->sessions.e);
    free(h->objects.e);
    free(h->reverse.e);
    pthread_rwlock_destroy(&h->sessions_lock);
    pthread_rwlock_destroy(&h->objects_lock);
    free(h);
}

CK_SESSION_HANDLE mod_handles_add_session(mod_handles *h, CK_SLOT_ID slot,
                                          CK_SESSION_HANDLE backend)
{
    CK_SESSION_HANDLE s = 0;

    mod_return_val_if_fail(h != NULL, 0);
    pthread_rwlock_wrlock(&h->sessions_lock);
    if (put(&h->sessions, h->next_session, 0, slot, backend))
        s = h->next_session++;
    pthread_rwlock_unlock(&h->sessions_lock);
    return s;
}

/* A module handle's (slot, backend handle), read under a shared lock. */
static int lookup(pthread_rwlock_t *lock, const table *t, CK_ULONG handle, CK_SLOT_ID *slot,
                  CK_ULONG *backend)
{
    entry *e;
    int found = 0;

    pthread_rwlock_rdlock(lock);
    e = find(t, handle, 0);
    if (e != NULL) {
        *slot = e->v1;
        *backend = e->v2;
        found = 1;
    }
    pthread_rwlock_unlock(lock);
    return found;
}

int mod_handles_session(mod_handles *h, CK_SESSION_HANDLE s, CK_SLOT_ID *slot,
                        CK_SESSION_HANDLE *backend)
{
    mod_return_val_if_fail(h != NULL && slot != NULL && backend != NULL, 0);
    return lookup(&h->sessions_lock, &h->sessions, s, slot, backend);
}

int mod_handles_remove_session(mod_handles *h, CK_SESSION_HANDLE s)
{
    entry *e;

    pthread_rwlock_wrlock(&h->sessions_lock);
    e = find(&h->sessions, s, 0);
    if (e != NULL)
        del(&h->sessions, e);
    pthread_rwlock_unlock(&h->sessions_lock);
    return e != NULL;
}

size_t mod_handles_remove_slot_sessions(mod_handles *h, CK_SLOT_ID slot)
{
    size_t i, n = 0;

    pthread_rwlock_wrlock(&h->sessions_lock);
    for (i = 0; i < h->sessions.cap; i++) {
        entry *e = &h->sessions.e[i];
        if (e->state == SLOT_USED && e->v1 == slot) {
            del(&h->sessions, e);
            n++;
        }
    }
    pthread_rwlock_unlock(&h->sessions_lock);
    return n;
}

CK_OBJECT_HANDLE mod_handles_object(mod_handles *h, CK_SLOT_ID slot, CK_OBJECT_HANDLE backend)
{
    CK_OBJECT_HANDLE o = 0;
    entry *e;

    mod_return_val_if_fail(h != NULL, 0);
    /* Most objects were seen before (C_FindObjects again): a shared lookup. */
    pthread_rwlock_rdlock(&h->objects_lock);
    e = find(&h->reverse, slot, backend);
    if (e != NULL)
        o = e->v1;
    pthread_rwlock_unlock(&h->objects_lock);
    if (o != 0)
        return o;

    pthread_rwlock_wrlock(&h->objects_lock);
    e = find(&h->reverse, slot, backend);
    if (e != NULL) {
        o = e->v1;
    } else if (put(&h->objects, h->next_object, 0, slot, backend)) {
        if (put(&h->reverse, slot, backend, h->next_object, 0))
            o = h->next_object++;
        else
            del(&h->objects, find(&h->objects, h->next_object, 0));
    }
    pthread_rwlock_unlock(&h->objects_lock);
    return o;
}

int mod_handles_lookup_object(mod_handles *h, CK_OBJECT_HANDLE o, CK_SLOT_ID *slot,
                              CK_OBJECT_HANDLE *backend)
{
    mod_return_val_if_fail(h != NULL && slot != NULL && backend != NULL, 0);
    return lookup(&h->objects_lock, &h->objects, o, slot, backend);
}

/* An object entry and its reverse entry; objects_lock held for writing. */
static void forget(mod_handles *h, entry *e)
{
    entry *r = find(&h->reverse, e->v1, e->v2);

    if (r != NULL)
        del(&h->reverse, r);
    del(&h->objects, e);
}

void mod_handles_forget_object(mod_handles *h, CK_OBJECT_HANDLE o)
{
    entry *e;

    pthread_rwlock_wrlock(&h->objects_lock);
    if ((e = find(&h->objects, o, 0)) != NULL)
        forget(h, e);
    pthread_rwlock_unlock(&h->objects_lock);
}

void mod_handles_forget_slot_objects(mod_handles *h, CK_SLOT_ID slot)
{
    size_t i;

    pthread_rwlock_wrlock(&h->objects_lock);
    for (i = 0; i < h->objects.cap; i++) {
        if (h->objects.e[i].state == SLOT_USED && h->objects.e[i].v1 == slot)
            forget(h, &h->objects.e[i]);
    }
    pthread_rwlock_unlock(&h->objects_lock);
}
