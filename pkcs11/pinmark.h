/*
 * Which tokens take the derived PIN (issue 10 item 6). When C_SetPIN(factory,
 * NULL) or C_InitPIN(NULL) moves a token to its derived PIN, the module writes
 * a public marker object onto the token:
 *
 *   CKA_CLASS CKO_DATA, CKA_TOKEN true, CKA_PRIVATE false, CKA_MODIFIABLE false,
 *   CKA_APPLICATION "tokenmint", CKA_LABEL "tokenmint derived PIN",
 *   CKA_VALUE "tmpin1:" || HMAC-SHA256(station secret,
 *                                      "tokenmint derived-PIN marker v1" || serial)
 *
 * Why on the token and not a station-side list: the token carries its state
 * to every station and every process, it is readable before any login (no
 * PIN try), and it is gone when the token is re-initialised. Why a MAC: only
 * a station holding the secret can make a marker that verifies for that
 * token's serial, so a copied, hand-made or other station's marker is seen
 * as "not ours" and the module then sends no derived PIN (it refuses the NULL
 * PIN login without calling the token). The MAC input is domain-separated
 * from the PIN derivation, so the marker says nothing about the PIN. Deleting
 * the marker fails safe: the token then just needs its PIN given.
 */
#ifndef TOKENMINT_PINMARK_H
#define TOKENMINT_PINMARK_H

#include <stddef.h>

#include "p11c.h"
#include "pin.h"

#define MOD_PINMARK_APPLICATION "tokenmint"
#define MOD_PINMARK_LABEL "tokenmint derived PIN"

typedef enum {
    MOD_PINMARK_NONE = 0, /* no marker: the token takes its own PIN */
    MOD_PINMARK_OURS,     /* a marker that verifies with this station's secret */
    MOD_PINMARK_FOREIGN,  /* a marker that does not (other secret, copied, forged) */
    MOD_PINMARK_UNKNOWN,  /* the token could not be read */
} mod_pinmark_state;

/* Looks on the token (through a backend session of its own, public objects
 * only). secret may be NULL: then any marker is FOREIGN. */
mod_pinmark_state mod_pinmark_read(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot,
                                   const mod_station_secret *secret, const unsigned char *serial,
                                   size_t serial_len);

/* Writes the marker (replacing any earlier one). */
CK_RV mod_pinmark_write(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, const mod_station_secret *secret,
                        const unsigned char *serial, size_t serial_len);

/* Removes every marker (the token's PIN is no longer the derived one). */
CK_RV mod_pinmark_remove(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot);

const char *mod_pinmark_state_name(mod_pinmark_state s);

#endif
