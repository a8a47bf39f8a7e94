#include "modlog.h"

#include <stdarg.h>
#include <stdio.h>

#include "debug.h"

void mod_log(int prio, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* "%s": the message holds serials and paths, never a format */
    syslog(LOG_AUTH | prio, "tokenmint-pkcs11: %s", msg);
    mod_debug("%s", msg);
}
