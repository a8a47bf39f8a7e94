/*
 * One slot list over every backend. Each token the backends' URIs select gets
 * a slot ID of its own from one counter: IDs never collide across backends,
 * and a token keeps its ID while it stays present. A token that is removed
 * and comes back gets a fresh ID (it may be another token in the same reader).
 *
 * A tm_slot never changes after it is made except for its present flag, and
 * lives until tm_slots_free, so a pointer to it may be used without a lock.
 */
#ifndef TOKENMINT_SLOTS_H
#define TOKENMINT_SLOTS_H

#include <pthread.h>
#include <stddef.h>

#include "backends.h"
#include "p11.h"
#include "tm_profile.h"

typedef struct tm_slot {
    CK_SLOT_ID id;                       /* the module's slot ID */
    size_t backend;                      /* index into the backend array */
    CK_SLOT_ID bslot;                    /* the backend's slot ID */
    int present;                         /* read with tm_slot_present */
    unsigned char serial[TM_SERIAL_MAX]; /* trimmed raw CK_TOKEN_INFO.serialNumber */
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1]; /* tm_serial_encode of it; "" if none */
    CK_ULONG min_pin, max_pin;
    pthread_mutex_t write_lock; /* held around write-policy decision + create */
} tm_slot;

typedef struct tm_slots tm_slots;

/* Told about every token that appeared (inserted 1) or went away (0). */
typedef void (*tm_slot_change_fn)(void *ctx, const tm_slot *slot, int inserted);

tm_slots *tm_slots_new(void);
void tm_slots_free(tm_slots *s);

/*
 * Rescans the backends' slot lists. Only refreshes serialize with each other;
 * no lock that a token call needs is held around the backend calls.
 */
void tm_slots_refresh(tm_slots *s, tm_backend *backends, size_t n, tm_slot_change_fn change,
                      void *ctx);

/* The slot with this ID (present or not), or NULL if the ID was never given out. */
tm_slot *tm_slots_get(tm_slots *s, CK_SLOT_ID id);
int tm_slot_present(const tm_slot *slot);

/* C_GetSlotList semantics over the present slots (NULL list: count only). */
CK_RV tm_slots_list(tm_slots *s, CK_SLOT_ID *list, CK_ULONG *count);

#endif
