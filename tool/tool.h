/*
 * What every part of the tokenmint tool shares: exit codes, API-edge guards,
 * debug and error output, key types. Each role has its own header with its
 * API: station/station.h (tokens, pipeline, workers, watch), ca/ca.h (the
 * local CA), cmp/cmp.h (CMP server, relay, client), ui/ui.h (reports, show,
 * describe, verify), cli/cli.h (options, sessions, commands).
 *
 * Ownership: a function returning a pointer says who frees it; structs
 * handed in are borrowed unless a comment says "owned".
 */
#ifndef TOKENMINT_TOOL_H
#define TOKENMINT_TOOL_H

#include <stdarg.h>
#include <stddef.h>

#include "p11c.h"

/* Exit codes, documented in the README. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_SOME_FAILED 1
#define TOOL_EXIT_USAGE 2

/* ---- debug and guards ----------------------------------------------------- */

/* API-edge checks: a broken caller gets a debug line and a failure, not a crash. */
#define tool_return_val_if_fail(expr, val)                                                         \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tool_debug("%s: '%s' not true", __func__, #expr);                                      \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)
#define tool_return_if_fail(expr)                                                                  \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tool_debug("%s: '%s' not true", __func__, #expr);                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

void tool_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Last OpenSSL error as text into buf (empties the queue). */
const char *tool_ossl_err(char *buf, size_t len);
const char *tool_ckr_name(CK_RV rv);

/* ---- secret files ------------------------------------------------------- */

/* Flags for every secret file the tool reads: P11C_SECRET_ALLOW_OPEN when the
 * command line says --allow-open-secrets, else 0. Set once by the parser,
 * before any secret is read. */
extern unsigned int tool_secret_flags;
/* p11c_secret_read_ex with tool_secret_flags: the one way the tool reads a
 * PIN, passphrase or shared secret from a file. */
int tool_secret_read(const char *source, const char *serial, const char *what, char *out,
                     size_t outlen, size_t *len, char *err, size_t errlen);

/* ---- key types ------------------------------------------------------------ */

typedef enum {
    TOOL_KEY_P256,
    TOOL_KEY_P384,
    TOOL_KEY_RSA2048,
    TOOL_KEY_RSA3072,
    TOOL_KEY_ED25519
} tool_keytype;

/* "ec:P-256" ... ; returns 0 when the name is not one we know (ui/report.c). */
int tool_keytype_parse(const char *s, tool_keytype *out);
const char *tool_keytype_name(tool_keytype t);

/* Monotonic milliseconds, for timings in reports (ui/report.c). */
double tool_now_ms(void);

#endif
