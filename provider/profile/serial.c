/*
 * The token serial in its three forms: the padded CK_TOKEN_INFO field, the raw
 * trimmed bytes (hwSerialNum) and the PrintableString text (subject
 * serialNumber). The text form is canonical: exactly one text per serial, so
 * comparing decoded bytes is the same as comparing texts.
 */
#include "profile_int.h"

#include <string.h>

static const char hexdigits[] = "0123456789ABCDEF";

/* X.680 PrintableString, minus '?' which introduces an escape. */
static int literal_char(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr(" '()+,-./:=", c) != NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not canonical */
}

size_t tm_serial_trim(const unsigned char *field, size_t field_len, unsigned char *out,
                      size_t out_max)
{
    size_t len = field_len;

    return_val_if_fail(field != NULL || field_len == 0, 0);
    return_val_if_fail(out != NULL, 0);
    while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\0'))
        len--;
    if (len == 0 || len > out_max)
        return 0;
    memcpy(out, field, len);
    return len;
}

const char *tm_serial_unusable(const unsigned char *raw, size_t raw_len)
{
    size_t a = 0, b = raw_len, i;

    if (raw == NULL)
        return "blank";
    while (a < b && (raw[a] == ' ' || raw[a] == '\0'))
        a++;
    while (b > a && (raw[b - 1] == ' ' || raw[b - 1] == '\0'))
        b--;
    if (a == b)
        return "blank";
    for (i = a; i < b && raw[i] == '0'; i++)
        ;
    /* a placeholder: every token of the kind reports it */
    return i == b ? "all zeros" : NULL;
}

size_t tm_serial_encode(const unsigned char *raw, size_t raw_len, char *text, size_t text_max)
{
    size_t i, n = 0;

    return_val_if_fail(raw != NULL && text != NULL, 0);
    if (raw_len == 0)
        return 0;
    for (i = 0; i < raw_len; i++) {
        if (literal_char(raw[i])) {
            if (n + 1 >= text_max)
                return 0;
            text[n++] = (char)raw[i];
        } else {
            if (n + 3 >= text_max)
                return 0;
            text[n++] = '?';
            text[n++] = hexdigits[raw[i] >> 4];
            text[n++] = hexdigits[raw[i] & 0x0f];
        }
    }
    text[n] = '\0';
    return n;
}

size_t tm_serial_decode(const char *text, size_t text_len, unsigned char *raw, size_t raw_max)
{
    size_t i = 0, n = 0;

    return_val_if_fail(text != NULL && raw != NULL, 0);
    if (text_len == 0)
        return 0;
    while (i < text_len) {
        unsigned char c = (unsigned char)text[i];
        if (n >= raw_max)
            return 0;
        if (c == '?') {
            int hi, lo;
            if (i + 2 >= text_len)
                return 0;
            hi = hex_value(text[i + 1]);
            lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = (unsigned char)(hi << 4 | lo);
            /* an escaped literal would give a second text for one serial */
            if (literal_char(c))
                return 0;
            i += 3;
        } else if (literal_char(c)) {
            i++;
        } else {
            return 0;
        }
        raw[n++] = c;
    }
    return n;
}
