/*
 * The relay's serial range rule. When both serials are hexadecimal digit
 * strings they compare as unsigned numbers (leading zeros and case ignored),
 * so "00ff" < "100" and "0A" == "a"; otherwise they compare byte by byte as
 * text. SoftHSM2 and most tokens report hex serials, so a range written the
 * way the tokens print their serials means what it says.
 */
#include "cmp/cmp.h"

#include <ctype.h>
#include <string.h>

static int all_hex(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

int tool_cmp_serial_cmp(const char *a, const char *b)
{
    size_t la, lb, i;
    int c;

    if (!all_hex(a) || !all_hex(b)) {
        c = strcmp(a, b);
        return (c > 0) - (c < 0);
    }
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    la = strlen(a);
    lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    for (i = 0; i < la; i++) {
        int ca = tolower((unsigned char)a[i]), cb = tolower((unsigned char)b[i]);
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return 0;
}
