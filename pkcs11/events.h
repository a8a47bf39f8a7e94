/*
 * Slot events for C_WaitForSlotEvent. Many backends (SoftHSM2 among them)
 * have no C_WaitForSlotEvent, so the module watches every backend's slot list
 * itself: a watcher thread, started by the first blocking wait, rescans every
 * poll interval and queues the slot of each token that came or went.
 */
#ifndef TOKENMINT_EVENTS_H
#define TOKENMINT_EVENTS_H

#include "p11.h"

typedef struct tm_events tm_events;

/* rescan is called by the watcher thread, each interval_ms. */
tm_events *tm_events_new(void (*rescan)(void *ctx), void *ctx, unsigned interval_ms);

/* Stops and joins the watcher, wakes every waiter (they get
 * CKR_CRYPTOKI_NOT_INITIALIZED), then frees. Waiters must have left before
 * the free: the module waits for in-flight calls between stop and free. */
void tm_events_stop(tm_events *e);
void tm_events_free(tm_events *e);

/* Queues an event for a slot (once: a slot already queued is not added again). */
void tm_events_push(tm_events *e, CK_SLOT_ID slot);

/*
 * C_WaitForSlotEvent: with CKF_DONT_BLOCK returns CKR_NO_EVENT when nothing is
 * queued (the caller rescans first); else starts the watcher if needed and
 * blocks until an event or tm_events_stop.
 */
CK_RV tm_events_wait(tm_events *e, CK_FLAGS flags, CK_SLOT_ID *slot);

#endif
