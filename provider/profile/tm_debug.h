/*
 * The one TOKENMINT_DEBUG switch for the parts that link the profile library
 * (the provider, the tool, the profile library itself): set, non-empty and
 * not "0" means on. Each part keeps its own prefix so a line says who wrote
 * it. Debug lines never carry a PIN or a secret.
 */
#ifndef TOKENMINT_TM_DEBUG_H
#define TOKENMINT_TM_DEBUG_H

#include <stdarg.h>

/* Read on every call: tests switch it between runs in one process, and
 * there is no cached state for threads to race on. */
int tm_debug_enabled(void);
/* "PREFIX: message\n" on stderr when enabled. */
void tm_debug_prefixed(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
