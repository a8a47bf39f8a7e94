/* The violation list: messages a person can act on, and a count that an
 * allocation failure cannot lower. */
#include "profile_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <openssl/crypto.h>

struct tm_violations {
    char **msgs;
    size_t stored;
    size_t count; /* may exceed stored when an entry could not be kept */
};

/* Atomic: a part may install its sink while another thread of the same
 * program already checks a request. */
static _Atomic(tm_debug_sink) debug_sink;

void tm_profile_set_debug_sink(tm_debug_sink sink)
{
    atomic_store(&debug_sink, sink);
}

void tm_debug(const char *fmt, ...)
{
    tm_debug_sink sink = atomic_load(&debug_sink);
    va_list ap;

    if (sink == NULL)
        return;
    va_start(ap, fmt);
    sink("tokenmint-profile", fmt, ap);
    va_end(ap);
}

tm_violations *tm_violations_new(void)
{
    return OPENSSL_zalloc(sizeof(tm_violations));
}

void tm_violations_free(tm_violations *v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < v->stored; i++)
        OPENSSL_free(v->msgs[i]);
    OPENSSL_free(v->msgs);
    OPENSSL_free(v);
}

void tm_violations_add(tm_violations *v, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL, **grown;
    int n;

    if (v == NULL)
        return;
    v->count++;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    msg = OPENSSL_malloc((size_t)n + 1);
    if (msg == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    grown = OPENSSL_realloc(v->msgs, (v->stored + 1) * sizeof(*grown));
    if (grown == NULL) {
        OPENSSL_free(msg);
        return;
    }
    v->msgs = grown;
    v->msgs[v->stored++] = msg;
    tm_debug("violation: %s", msg);
}

size_t tm_violations_count(const tm_violations *v)
{
    return v == NULL ? 0 : v->count;
}

const char *tm_violations_get(const tm_violations *v, size_t i)
{
    if (v == NULL || i >= v->stored)
        return NULL;
    return v->msgs[i];
}

void tm_violations_join(const tm_violations *v, char *buf, size_t buflen)
{
    size_t i, used = 0;

    if (buf == NULL || buflen == 0)
        return;
    buf[0] = '\0';
    if (v == NULL)
        return;
    for (i = 0; i < v->stored && used + 1 < buflen; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%s", i ? "; " : "", v->msgs[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= buflen)
        buf[buflen - 1] = '\0';
    if (v->count > v->stored && used + 1 < buflen)
        snprintf(buf + used, buflen - used, "%s(%zu more not recorded: out of memory)",
                 used ? "; " : "", v->count - v->stored);
}
