#include "slots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

typedef struct hidden {
    size_t backend;
    CK_SLOT_ID bslot;
} hidden;

struct mod_slots {
    pthread_mutex_t refresh_lock; /* serializes refreshes; the only writer */
    pthread_rwlock_t lock;        /* guards the arrays against growth */
    mod_slot **slots;             /* slots[i]->id == i + 1 */
    size_t n, cap;
    hidden *hidden; /* present slots the URI does not select: not asked again */
    size_t n_hidden, cap_hidden;
    int scanned; /* the first scan reports no changes: those tokens were there at start */
};

mod_slots *mod_slots_new(void)
{
    mod_slots *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->refresh_lock, NULL);
    pthread_rwlock_init(&s->lock, NULL);
    return s;
}

void mod_slots_free(mod_slots *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        pthread_mutex_destroy(&s->slots[i]->write_lock);
        free(s->slots[i]);
    }
    free(s->slots);
    free(s->hidden);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->refresh_lock);
    free(s);
}

int mod_slot_present(const mod_slot *slot)
{
    return __atomic_load_n(&slot->present, __ATOMIC_ACQUIRE);
}

mod_slot *mod_slots_get(mod_slots *s, CK_SLOT_ID id)
{
    mod_slot *slot = NULL;

    pthread_rwlock_rdlock(&s->lock);
    if (id >= 1 && id <= s->n)
        slot = s->slots[id - 1];
    pthread_rwlock_unlock(&s->lock);
    return slot;
}

CK_RV mod_slots_list(mod_slots *s, CK_SLOT_ID *list, CK_ULONG *count)
{
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    size_t i;

    mod_return_val_if_fail(s != NULL && count != NULL, CKR_ARGUMENTS_BAD);
    pthread_rwlock_rdlock(&s->lock);
    for (i = 0; i < s->n; i++) {
        if (!mod_slot_present(s->slots[i]))
            continue;
        if (list != NULL && n < *count)
            list[n] = s->slots[i]->id;
        n++;
    }
    pthread_rwlock_unlock(&s->lock);
    if (list != NULL && n > *count)
        rv = CKR_BUFFER_TOO_SMALL;
    *count = n;
    return rv;
}

int mod_slots_serial_shared(mod_slots *s, const mod_slot *slot, char *who, size_t wholen)
{
    int found = 0;
    size_t i;

    mod_return_val_if_fail(s != NULL && slot != NULL && who != NULL, 0);
    who[0] = '\0';
    if (slot->serial_len == 0)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    for (i = 0; i < s->n && !found; i++) {
        const mod_slot *o = s->slots[i];
        if (o == slot || !mod_slot_present(o) || o->serial_len != slot->serial_len ||
            memcmp(o->serial, slot->serial, slot->serial_len) != 0)
            continue;
        snprintf(who, wholen, "'%s' (slot %lu)", o->label, (unsigned long)o->id);
        found = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    return found;
}

/* Present entry for (backend, bslot), called under refresh_lock only. */
static mod_slot *find_present(mod_slots *s, size_t backend, CK_SLOT_ID bslot)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        mod_slot *t = s->slots[i];
        if (t->backend == backend && t->bslot == bslot && mod_slot_present(t))
            return t;
    }
    return NULL;
}

static hidden *find_hidden(mod_slots *s, size_t backend, CK_SLOT_ID bslot)
{
    size_t i;

    for (i = 0; i < s->n_hidden; i++)
        if (s->hidden[i].backend == backend && s->hidden[i].bslot == bslot)
            return &s->hidden[i];
    return NULL;
}

/* The backend's token_serials entry for this label, or NULL. */
static const mod_token_serial *configured_serial(const mod_backend *b, const char *label)
{
    size_t i;

    for (i = 0; i < b->n_token_serials; i++)
        if (strcmp(b->token_serials[i].label, label) == 0)
            return &b->token_serials[i];
    return NULL;
}

static mod_slot *add_slot(mod_slots *s, const mod_backend *b, size_t backend, CK_SLOT_ID bslot,
                          const CK_TOKEN_INFO *ti)
{
    mod_slot *t = calloc(1, sizeof(*t));
    const mod_token_serial *conf;
    size_t n;

    if (t == NULL)
        return NULL;
    t->backend = backend;
    t->bslot = bslot;
    memcpy(t->label, ti->label, sizeof(ti->label));
    t->label[sizeof(ti->label)] = '\0';
    for (n = sizeof(ti->label); n > 0 && (t->label[n - 1] == ' ' || t->label[n - 1] == '\0'); n--)
        t->label[n - 1] = '\0';
    t->serial_len =
        tm_serial_trim(ti->serialNumber, sizeof(ti->serialNumber), t->serial, sizeof(t->serial));
    if (t->serial_len == 0 ||
        tm_serial_encode(t->serial, t->serial_len, t->bserial_text, sizeof(t->bserial_text)) == 0)
        t->bserial_text[0] = '\0';
    /* Only a placeholder is replaced: a token's own serial is what its
     * certificates and derived PIN are bound to, and a config line must not
     * move them to another. */
    conf = configured_serial(b, t->label);
    if (conf != NULL && tm_serial_unusable(t->serial, t->serial_len) != NULL) {
        t->serial_len = strlen(conf->serial); /* config checked: 1..16 literal characters */
        memcpy(t->serial, conf->serial, t->serial_len);
        t->serial_from_config = 1;
    } else if (conf != NULL) {
        t->ignored_serial = conf->serial;
    }
    if (t->serial_len == 0 ||
        tm_serial_encode(t->serial, t->serial_len, t->serial_text, sizeof(t->serial_text)) == 0)
        t->serial_text[0] = '\0';
    t->min_pin = ti->ulMinPinLen;
    t->max_pin = ti->ulMaxPinLen;
    pthread_mutex_init(&t->write_lock, NULL);
    t->present = 1;

    pthread_rwlock_wrlock(&s->lock);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        mod_slot **ns = realloc(s->slots, cap * sizeof(*ns));
        if (ns == NULL) {
            pthread_rwlock_unlock(&s->lock);
            pthread_mutex_destroy(&t->write_lock);
            free(t);
            return NULL;
        }
        s->slots = ns;
        s->cap = cap;
    }
    t->id = s->n + 1;
    s->slots[s->n++] = t;
    pthread_rwlock_unlock(&s->lock);
    return t;
}

static void add_hidden(mod_slots *s, size_t backend, CK_SLOT_ID bslot)
{
    if (s->n_hidden == s->cap_hidden) {
        size_t cap = s->cap_hidden ? s->cap_hidden * 2 : 8;
        hidden *nh = realloc(s->hidden, cap * sizeof(*nh));
        if (nh == NULL)
            return; /* asked again next time; harmless */
        s->hidden = nh;
        s->cap_hidden = cap;
    }
    s->hidden[s->n_hidden++] = (hidden){backend, bslot};
}

static CK_SLOT_ID *backend_slots(mod_backend *b, CK_ULONG *n)
{
    CK_SLOT_ID *list = NULL;
    int tries;

    for (tries = 0; tries < 4; tries++) {
        CK_ULONG count = 0;
        CK_SLOT_ID *nl;
        CK_RV rv = b->funcs->C_GetSlotList(CK_TRUE, NULL, &count);
        if (rv != CKR_OK)
            break;
        nl = realloc(list, (count ? count : 1) * sizeof(*list));
        if (nl == NULL)
            break;
        list = nl;
        rv = b->funcs->C_GetSlotList(CK_TRUE, list, &count);
        if (rv == CKR_OK) {
            *n = count;
            return list;
        }
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
    free(list);
    return NULL;
}

static void refresh_backend(mod_slots *s, mod_backend *backends, size_t bi,
                            mod_slot_change_fn change, void *ctx)
{
    mod_backend *b = &backends[bi];
    CK_ULONG n = 0, j;
    CK_SLOT_ID *list;
    size_t i;

    if (!b->initialized)
        return;
    list = backend_slots(b, &n);
    if (list == NULL) {
        mod_debug("backend '%s': C_GetSlotList failed, keeping its slots as they were", b->name);
        return;
    }
    for (j = 0; j < n; j++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        mod_slot *t;

        if (find_present(s, bi, list[j]) != NULL || find_hidden(s, bi, list[j]) != NULL)
            continue;
        if (b->funcs->C_GetSlotInfo(list[j], &si) != CKR_OK || !(si.flags & CKF_TOKEN_PRESENT) ||
            b->funcs->C_GetTokenInfo(list[j], &ti) != CKR_OK)
            continue; /* not ready: looked at again on the next scan */
        if (!mod_backend_selects(b, &si, &ti)) {
            add_hidden(s, bi, list[j]);
            continue;
        }
        t = add_slot(s, b, bi, list[j], &ti);
        if (t == NULL)
            continue;
        mod_debug("slot %lu: token '%s' on backend '%s' slot %lu", (unsigned long)t->id,
                  t->serial_text, b->name, (unsigned long)t->bslot);
        if ((t->serial_from_config || t->ignored_serial != NULL) && change != NULL)
            change(ctx, t, MOD_SLOT_SERIAL_NOTE);
        if (s->scanned && change != NULL)
            change(ctx, t, MOD_SLOT_INSERTED);
    }
    for (i = 0; i < s->n; i++) {
        mod_slot *t = s->slots[i];
        int seen = 0;
        if (t->backend != bi || !mod_slot_present(t))
            continue;
        for (j = 0; j < n && !seen; j++)
            seen = (list[j] == t->bslot);
        if (!seen) {
            __atomic_store_n(&t->present, 0, __ATOMIC_RELEASE);
            mod_debug("slot %lu: token '%s' removed", (unsigned long)t->id, t->serial_text);
            if (change != NULL)
                change(ctx, t, MOD_SLOT_REMOVED);
        }
    }
    for (i = 0; i < s->n_hidden;) {
        int seen = 0;
        if (s->hidden[i].backend == bi)
            for (j = 0; j < n && !seen; j++)
                seen = (list[j] == s->hidden[i].bslot);
        else
            seen = 1;
        if (!seen)
            s->hidden[i] = s->hidden[--s->n_hidden];
        else
            i++;
    }
    free(list);
}

void mod_slots_refresh(mod_slots *s, mod_backend *backends, size_t n, mod_slot_change_fn change,
                       void *ctx)
{
    size_t i;

    mod_return_if_fail(s != NULL && (backends != NULL || n == 0));
    pthread_mutex_lock(&s->refresh_lock);
    for (i = 0; i < n; i++)
        refresh_backend(s, backends, i, change, ctx);
    s->scanned = 1;
    pthread_mutex_unlock(&s->refresh_lock);
}
