/*
 * Debug output of the module, switched on by the TOKENMINT_DEBUG environment
 * variable (any non-empty value), to stderr. Never given a PIN or secret.
 */
#ifndef TOKENMINT_DEBUG_H
#define TOKENMINT_DEBUG_H

int mod_debug_enabled(void);

/* Guards at the edge of an internal API: a broken precondition is a bug in
 * the caller, reported (with TOKENMINT_DEBUG) instead of crashing. */
#define mod_return_val_if_fail(expr, val)                                                          \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            mod_debug("%s: assertion '%s' failed", __func__, #expr);                               \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)
#define mod_return_if_fail(expr)                                                                   \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            mod_debug("%s: assertion '%s' failed", __func__, #expr);                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)
void mod_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
