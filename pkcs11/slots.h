/*
 * One slot list over every backend. Each token the backends' URIs select gets
 * a slot ID of its own from one counter: IDs never collide across backends,
 * and a token keeps its ID while it stays present. A token that is removed
 * and comes back gets a fresh ID (it may be another token in the same reader).
 *
 * A mod_slot never changes after it is made except for its present flag, and
 * lives until mod_slots_free, so a pointer to it may be used without a lock.
 */
#ifndef TOKENMINT_SLOTS_H
#define TOKENMINT_SLOTS_H

#include <pthread.h>
#include <stddef.h>

#include "backends.h"
#include "p11c.h"
#include "tm_profile.h"

typedef struct mod_slot {
    CK_SLOT_ID id;                       /* the module's slot ID */
    size_t backend;                      /* index into the backend array */
    CK_SLOT_ID bslot;                    /* the backend's slot ID */
    int present;                         /* read with mod_slot_present */
    unsigned char serial[TM_SERIAL_MAX]; /* trimmed raw CK_TOKEN_INFO.serialNumber */
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1]; /* tm_serial_encode of it; "" if none */
    char label[33];                           /* CK_TOKEN_INFO.label, trimmed, for messages */
    /* token_serials (issue 13): the serial above is the config's for this
     * label, because the backend's own (bserial_text) is a placeholder ... */
    int serial_from_config;
    /* ... or the backend's serial is real and this config serial is ignored */
    const char *ignored_serial;
    char bserial_text[TM_SERIAL_TEXT_MAX + 1]; /* the backend's own serial; "" if none */
    CK_ULONG min_pin, max_pin;
    pthread_mutex_t write_lock; /* held around write-policy decision + create */
} mod_slot;

typedef struct mod_slots mod_slots;

/* Told about every token that appeared (MOD_SLOT_INSERTED) or went away
 * (MOD_SLOT_REMOVED), except on the first scan; and, on every scan, about
 * each new slot whose serial token_serials gives or whose token_serials entry
 * is ignored (MOD_SLOT_SERIAL_NOTE), once per slot. */
enum { MOD_SLOT_REMOVED = 0, MOD_SLOT_INSERTED = 1, MOD_SLOT_SERIAL_NOTE = 2 };
typedef void (*mod_slot_change_fn)(void *ctx, const mod_slot *slot, int what);

mod_slots *mod_slots_new(void);
void mod_slots_free(mod_slots *s);

/*
 * Rescans the backends' slot lists. Only refreshes serialize with each other;
 * no lock that a token call needs is held around the backend calls.
 */
void mod_slots_refresh(mod_slots *s, mod_backend *backends, size_t n, mod_slot_change_fn change,
                       void *ctx);

/* The slot with this ID (present or not), or NULL if the ID was never given out. */
mod_slot *mod_slots_get(mod_slots *s, CK_SLOT_ID id);
int mod_slot_present(const mod_slot *slot);

/* Another present slot whose token reports the same serial as this one's:
 * 1 with "'label' (slot N)" of the first in who, else 0 (also for no serial). */
int mod_slots_serial_shared(mod_slots *s, const mod_slot *slot, char *who, size_t wholen);

/* The backend's C_GetTokenInfo for the slot, with the serial the module
 * reports (token_serials' when it gives one): every caller that matches or
 * shows a token sees one serial (pkcs11/tokeninfo.c). */
CK_RV mod_slot_token_info(const mod_slot *slot, CK_FUNCTION_LIST *f, CK_TOKEN_INFO *ti);

/* C_GetSlotList semantics over the present slots (NULL list: count only). */
CK_RV mod_slots_list(mod_slots *s, CK_SLOT_ID *list, CK_ULONG *count);

#endif
