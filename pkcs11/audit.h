/*
 * The audit trail: append-only JSON lines, one object per event, written with
 * json-c and a single write(2) on an O_APPEND descriptor so that lines from
 * concurrent threads and processes never interleave. Never a PIN.
 *
 * {"time":"2026-11-25T16:49:15.123Z","pid":123,"serial":"...","op":"login",
 *  "outcome":"ok"|"failed"|"refused"|..., "detail":"..."}
 */
#ifndef TOKENMINT_AUDIT_H
#define TOKENMINT_AUDIT_H

#include <stddef.h>

typedef struct mod_audit mod_audit;

/* NULL path or "" gives a log that discards (still safe to call). */
mod_audit *mod_audit_open(const char *path, char *err, size_t errlen);
void mod_audit_close(mod_audit *a);

/* serial: raw serial bytes as text (already PrintableString-escaped); may be NULL.
 * detail may be NULL. Thread-safe. */
void mod_audit_event(mod_audit *a, const char *serial, const char *op, const char *outcome,
                     const char *detail);

#endif
