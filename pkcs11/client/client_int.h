/* Private to the client layer: its guard macros and debug line. */
#ifndef TOKENMINT_P11C_INT_H
#define TOKENMINT_P11C_INT_H

#include "p11c.h"

void p11c_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A broken precondition is a bug in the caller: a debug line and a failure
 * value, never a crash inside somebody else's process. */
#define p11c_return_val_if_fail(expr, val)                                                         \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            p11c_debug("%s: '%s' not true", __func__, #expr);                                      \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)
#define p11c_return_if_fail(expr)                                                                  \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            p11c_debug("%s: '%s' not true", __func__, #expr);                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
