/*
 * Slot events for C_WaitForSlotEvent. Many backends (SoftHSM2 among them)
 * have no C_WaitForSlotEvent, so the module watches every backend's slot list
 * itself: a watcher thread, started by the first blocking wait, rescans every
 * poll interval and queues the slot of each token that came or went.
 */
#ifndef TOKENMINT_EVENTS_H
#define TOKENMINT_EVENTS_H

#include "p11c.h"

typedef struct mod_events mod_events;

/* rescan is called by the watcher thread, each interval_ms. */
mod_events *mod_events_new(void (*rescan)(void *ctx), void *ctx, unsigned interval_ms);

/* Stops and joins the watcher, wakes every waiter (they get
 * CKR_CRYPTOKI_NOT_INITIALIZED), then frees. Waiters must have left before
 * the free: the module waits for in-flight calls between stop and free. */
void mod_events_stop(mod_events *e);
void mod_events_free(mod_events *e);

/* Queues an event for a slot (once: a slot already queued is not added again). */
void mod_events_push(mod_events *e, CK_SLOT_ID slot);

/*
 * C_WaitForSlotEvent: with CKF_DONT_BLOCK returns CKR_NO_EVENT when nothing is
 * queued (the caller rescans first); else starts the watcher if needed and
 * blocks until an event or mod_events_stop.
 */
CK_RV mod_events_wait(mod_events *e, CK_FLAGS flags, CK_SLOT_ID *slot);

#endif
