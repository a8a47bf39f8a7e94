/* The module's debug lines: the client layer's one TOKENMINT_DEBUG switch,
 * under the module's own prefix. */
#include "debug.h"

#include <stdarg.h>

#include "p11c.h"

int mod_debug_enabled(void)
{
    return p11c_debug_enabled();
}

void mod_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    p11c_debug_prefixed("tokenmint-pkcs11", fmt, ap);
    va_end(ap);
}
