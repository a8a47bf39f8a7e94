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

#include "p11c.h"

typedef struct mod_handles mod_handles;

mod_handles *mod_handles_new(void);
void mod_handles_free(mod_handles *h);

/* A new session handle for (slot, backend session); 0 when out of memory. */
CK_SESSION_HANDLE mod_handles_add_session(mod_handles *h, CK_SLOT_ID slot,
                                          CK_SESSION_HANDLE backend);
/* 1 and the mapping when the handle is open, else 0. */
int mod_handles_session(mod_handles *h, CK_SESSION_HANDLE s, CK_SLOT_ID *slot,
                        CK_SESSION_HANDLE *backend);
int mod_handles_remove_session(mod_handles *h, CK_SESSION_HANDLE s);
/* Drops every session of a slot (C_CloseAllSessions, token removed); returns how many. */
size_t mod_handles_remove_slot_sessions(mod_handles *h, CK_SLOT_ID slot);

/* The handle of a backend object on a slot: the same handle every time it is
 * asked for, a new one the first time; 0 when out of memory. */
CK_OBJECT_HANDLE mod_handles_object(mod_handles *h, CK_SLOT_ID slot, CK_OBJECT_HANDLE backend);
int mod_handles_lookup_object(mod_handles *h, CK_OBJECT_HANDLE o, CK_SLOT_ID *slot,
                              CK_OBJECT_HANDLE *backend);
void mod_handles_forget_object(mod_handles *h, CK_OBJECT_HANDLE o);
/* Forgets every object of a slot (token removed: its handles must not come back). */
void mod_handles_forget_slot_objects(mod_handles *h, CK_SLOT_ID slot);

#endif
