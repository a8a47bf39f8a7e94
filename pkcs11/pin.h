/*
 * PINs derived from the token serial (patent claim 5):
 * PIN = render(HMAC-SHA256(station secret, raw serial bytes)) to fit the
 * token's ulMinPinLen..ulMaxPinLen. Every buffer holding a secret or a PIN is
 * cleansed after use.
 */
#ifndef TOKENMINT_PIN_H
#define TOKENMINT_PIN_H

#include <stddef.h>
#include "p11c.h"

#define TM_PIN_MAX 64

typedef struct mod_station_secret {
    unsigned char *bytes; /* owned; cleansed and freed by mod_station_secret_clear */
    size_t len;
} mod_station_secret;

/*
 * Loads the station secret file. Refuses (returns 0, message in err) unless the
 * file is a regular file of mode 0600 (no group/other bits) owned by the
 * running user, and holds at least 32 bytes.
 */
int mod_station_secret_load(const char *path, mod_station_secret *out, char *err, size_t errlen);
void mod_station_secret_clear(mod_station_secret *s);

/*
 * Derives a token's user PIN into pin (NUL-terminated, decimal digits, length
 * clamp(16, min_len, max_len) and never more than TM_PIN_MAX). Returns the
 * length, 0 on error.
 */
size_t mod_pin_derive(const mod_station_secret *secret, const unsigned char *serial,
                      size_t serial_len, CK_ULONG min_len, CK_ULONG max_len, char *pin,
                      size_t pin_max);

#endif
