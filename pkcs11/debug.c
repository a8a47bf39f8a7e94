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

const char *mod_ckr_name(unsigned long rv)
{
    static const struct {
        unsigned long rv;
        const char *name;
    } names[] = {
        {0x000, "CKR_OK"},
        {0x005, "CKR_GENERAL_ERROR"},
        {0x006, "CKR_FUNCTION_FAILED"},
        {0x007, "CKR_ARGUMENTS_BAD"},
        {0x01B, "CKR_ACTION_PROHIBITED"},
        {0x010, "CKR_ATTRIBUTE_READ_ONLY"},
        {0x013, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {0x020, "CKR_DATA_INVALID"},
        {0x030, "CKR_DEVICE_ERROR"},
        {0x032, "CKR_DEVICE_REMOVED"},
        {0x060, "CKR_KEY_HANDLE_INVALID"},
        {0x0A0, "CKR_PIN_INCORRECT"},
        {0x0A1, "CKR_PIN_INVALID"},
        {0x0A2, "CKR_PIN_LEN_RANGE"},
        {0x0A4, "CKR_PIN_LOCKED"},
        {0x0B3, "CKR_SESSION_HANDLE_INVALID"},
        {0x0C0, "CKR_SIGNATURE_INVALID"},
        {0x0D1, "CKR_TEMPLATE_INCONSISTENT"},
        {0x0E0, "CKR_TOKEN_NOT_PRESENT"},
        {0x100, "CKR_USER_ALREADY_LOGGED_IN"},
        {0x101, "CKR_USER_NOT_LOGGED_IN"},
        {0x102, "CKR_USER_PIN_NOT_INITIALIZED"},
        {0x103, "CKR_USER_TYPE_INVALID"},
    };
    static __thread char buf[32];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].rv == rv)
            return names[i].name;
    snprintf(buf, sizeof(buf), "CKR_0x%lX", rv);
    return buf;
}
