/* The TOKENMINT_DEBUG switch shared by every part that links the client
 * layer. */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int p11c_debug_enabled(void)
{
    const char *env = getenv("TOKENMINT_DEBUG");
    return env != NULL && *env != '\0' && strcmp(env, "0") != 0;
}

void p11c_debug_prefixed(const char *prefix, const char *fmt, va_list ap)
{
    if (!p11c_debug_enabled())
        return;
    fprintf(stderr, "%s: ", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void p11c_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    p11c_debug_prefixed("tokenmint-p11c", fmt, ap);
    va_end(ap);
}
