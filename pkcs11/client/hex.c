/*
 * Hex text for IDs, serials, hashes and records: one encoder (lower case,
 * what every log line, path and record of tokenmint uses) and one strict
 * decoder.
 */
#include "client_int.h"

static const char digits[] = "0123456789abcdef";

size_t p11c_hex_encode(const unsigned char *bin, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0;

    p11c_return_val_if_fail(out != NULL && outlen > 0, 0);
    out[0] = '\0';
    p11c_return_val_if_fail(bin != NULL || n == 0, 0);
    /* Whole bytes only: a cut ID reads as a shorter ID, never as a half digit. */
    for (i = 0; i < n && o + 3 <= outlen; i++) {
        out[o++] = digits[bin[i] >> 4];
        out[o++] = digits[bin[i] & 15];
    }
    out[o] = '\0';
    return o;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int p11c_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t outlen, size_t *n)
{
    size_t i;

    p11c_return_val_if_fail(hex != NULL && out != NULL && n != NULL, 0);
    *n = 0;
    if (hexlen % 2 != 0 || hexlen / 2 > outlen)
        return 0;
    for (i = 0; i < hexlen / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *n = hexlen / 2;
    return 1;
}
