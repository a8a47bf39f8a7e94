#include "debug.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mod_debug_enabled(void)
{
    /* Read every time: the value is tiny to fetch and tests flip it between runs
     * in one process (C_Initialize/C_Finalize cycles). "0" is off, as in the
     * provider. */
    const char *v = getenv("TOKENMINT_DEBUG");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

void mod_debug(const char *fmt, ...)
{
    va_list ap;

    if (!mod_debug_enabled())
        return;
    va_start(ap, fmt);
    fputs("tokenmint-pkcs11: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
