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

const char *tool_ckr_name(CK_RV rv)
{
    static __thread char other[32];
    switch (rv) {
#define N(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        N(CKR_OK)
        N(CKR_HOST_MEMORY)
        N(CKR_SLOT_ID_INVALID)
        N(CKR_GENERAL_ERROR)
        N(CKR_FUNCTION_FAILED)
        N(CKR_ARGUMENTS_BAD)
        N(CKR_ATTRIBUTE_VALUE_INVALID)
        N(CKR_ATTRIBUTE_TYPE_INVALID)
        N(CKR_DATA_INVALID)
        N(CKR_DEVICE_ERROR)
        N(CKR_DEVICE_MEMORY)
        N(CKR_DEVICE_REMOVED)
        N(CKR_KEY_HANDLE_INVALID)
        N(CKR_MECHANISM_INVALID)
        N(CKR_OBJECT_HANDLE_INVALID)
        N(CKR_PIN_INCORRECT)
        N(CKR_PIN_LOCKED)
        N(CKR_SESSION_CLOSED)
        N(CKR_SESSION_HANDLE_INVALID)
        N(CKR_SIGNATURE_INVALID)
        N(CKR_TEMPLATE_INCOMPLETE)
        N(CKR_TEMPLATE_INCONSISTENT)
        N(CKR_TOKEN_NOT_PRESENT)
        N(CKR_TOKEN_NOT_RECOGNIZED)
        N(CKR_TOKEN_WRITE_PROTECTED)
        N(CKR_USER_ALREADY_LOGGED_IN)
        N(CKR_USER_NOT_LOGGED_IN)
        N(CKR_USER_PIN_NOT_INITIALIZED)
        N(CKR_CRYPTOKI_NOT_INITIALIZED)
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        N(CKR_FUNCTION_NOT_SUPPORTED)
        N(CKR_CANT_LOCK)
#undef N
    }
    snprintf(other, sizeof other, "CKR 0x%lx", (unsigned long)rv);
    return other;
}
