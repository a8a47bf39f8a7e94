/*
 * The tool's shared basics: the debug switch (TOKENMINT_DEBUG), error lines,
 * OpenSSL errors and PKCS#11 return values as text, the secret-file reader.
 */
#include "tool.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

void tool_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    p11c_debug_prefixed("tokenmint: debug", fmt, ap);
    va_end(ap);
}

unsigned int tool_secret_flags;

int tool_secret_read(const char *source, const char *serial, const char *what, char *out,
                     size_t outlen, size_t *len, char *err, size_t errlen)
{
    return p11c_secret_read_ex(source, serial, what, tool_secret_flags, out, outlen, len, err,
                               errlen);
}

void tool_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tokenmint: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *tool_ossl_err(char *buf, size_t len)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    size_t used = 0;

    buf[0] = 0;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        int has_data = (flags & ERR_TXT_STRING) && data && *data;
        used += snprintf(buf + used, used < len ? len - used : 0, "%s%s%s%s", used ? "; " : "",
                         reason ? reason : "error", has_data ? ": " : "", has_data ? data : "");
        if (used >= len)
            break;
    }
    if (!buf[0])
        snprintf(buf, len, "no detail from OpenSSL");
    return buf;
}
