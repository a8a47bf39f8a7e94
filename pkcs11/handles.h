/*
 * Session and object handles. Every backend numbers its own sessions and
 * objects from small integers, so the module hands out its own handles from
 * one counter each and maps them to (slot, backend handle): two tokens never
 * share a handle, and a handle used on the wrong token is refused.
 *
 * Thread-safe; lookups cost one hash probe under a shared (read) lock, whatever
 * the number of tokens.
 */
#ifndef TOKENMINT_HANDLES_H
#define TOKENMINT_HANDLES_H

#include <stddef.h>

#include "p11.h"

typedef struct tm_handles tm_handles;

tm_handles *tm_handles_new(void);
void tm_handles_free(tm_handles *h);

/* A new session handle for (slot, backend session); 0 when out of memory. */
CK_SESSION_HANDLE tm_handles_add_session(tm_handles *h, CK_SLOT_ID slot, CK_SESSION_HANDLE backend);
/* 1 and the mapping when the handle is open, else 0. */
int tm_handles_session(tm_handles *h, CK_SESSION_HANDLE s, CK_SLOT_ID *slot,
                       CK_SESSION_HANDLE *backend);
int tm_handles_remove_session(tm_handles *h, CK_SESSION_HANDLE s);
/* Drops every session of a slot (C_CloseAllSessions, token removed); returns how many. */
size_t tm_handles_remove_slot_sessions(tm_handles *h, CK_SLOT_ID slot);
size_t tm_handles_session_count(tm_handles *h);

/* The handle of a backend object on a slot: the same handle every time it is
 * asked for, a new one the first time; 0 when out of memory. */
CK_OBJECT_HANDLE tm_handles_object(tm_handles *h, CK_SLOT_ID slot, CK_OBJECT_HANDLE backend);
int tm_handles_lookup_object(tm_handles *h, CK_OBJECT_HANDLE o, CK_SLOT_ID *slot,
                             CK_OBJECT_HANDLE *backend);
void tm_handles_forget_object(tm_handles *h, CK_OBJECT_HANDLE o);
/* Forgets every object of a slot (token removed: its handles must not come back). */
void tm_handles_forget_slot_objects(tm_handles *h, CK_SLOT_ID slot);

#endif
