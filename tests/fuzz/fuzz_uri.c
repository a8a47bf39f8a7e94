/*
 * Fuzz target: arbitrary bytes as a pkcs11: URI for the provider's parser
 * (provider/uri.c, prov_uri_parse_ex over p11-kit's p11_kit_uri_parse). The
 * working directory is a directory of this process's own while the input is
 * parsed, with PIN files a relative pin-source can name (a good one, one
 * others may read, an empty one, one with a NUL, a too long one, a FIFO, a
 * directory). "@P" in the input stands for a marker PIN, so a seed can
 * write pin-value=@P and the target know which bytes are the PIN.
 *
 * Besides crashes, leaks and sanitizer reports, it fails when a parse that
 * succeeded disagrees with p11-kit's own parse of the same text (class, id,
 * label, token fields, PIN), keeps a text attribute with a NUL, keeps both
 * pin-value and pin-source or an empty PIN, or does not survive a round trip
 * through p11_kit_uri_format; when a refusal says nothing, overruns its
 * buffer or does not say it is about the pkcs11 URI; when a PIN (the marker
 * pin-value or the content of a PIN file) appears in a message; when a
 * short message buffer changes the outcome.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <p11-kit/uri.h>

#include "fuzz_temp.h"
#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* provider.c's, which is not linked here */
int prov_debug_on;
void prov_debug(const char *fmt, ...)
{
    (void)fmt;
}

#define CANARY 0x5a

/* The working directory before the input moved it, so a failed check's
 * crash file is written where libFuzzer was asked to write it, not into the
 * scratch directory (ctest also passes an absolute -artifact_prefix, for the
 * sanitizers' reports). */
static int home = -1;

static void fail(void)
{
    if (home >= 0 && fchdir(home) != 0)
        home = -1;
    abort();
}
#define MARKER "Zq7Kx9Wm" /* what "@P" becomes: unreserved, kept as is by p11-kit */
#define FILE_PIN "Yr4Lp2Nc"

static void make_pin_files(void)
{
    static const struct {
        const char *name;
        const char *text;
        size_t len;
        mode_t mode;
    } files[] = {
        {"pin.txt", FILE_PIN "\n", sizeof(FILE_PIN), 0600},
        {"open.txt", FILE_PIN "\n", sizeof(FILE_PIN), 0644},
        {"empty.txt", "", 0, 0600},
        {"nul.txt", FILE_PIN "\0x\n", sizeof(FILE_PIN) + 2, 0600},
        {"crlf.txt", FILE_PIN "\r\nsecond line\n", sizeof(FILE_PIN) + 13, 0600},
    };
    char path[4200], longpin[300];
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *p =
            fuzz_temp_write(files[i].name, (const uint8_t *)files[i].text, files[i].len);
        if (chmod(p, files[i].mode) != 0)
            fail();
    }
    memset(longpin, 'L', sizeof(longpin));
    if (chmod(fuzz_temp_write("long.txt", (const uint8_t *)longpin, sizeof(longpin)), 0600) != 0)
        fail();
    fuzz_temp_mkdir("pin.d");
    snprintf(path, sizeof(path), "%s/pin.fifo", fuzz_temp_dir());
    if (mkfifo(path, 0600) != 0)
        fail(); /* a reader that opened it without O_NONBLOCK would hang here */
}

/* The input with every "@P" replaced by the marker PIN. */
static char *expand(const uint8_t *data, size_t size)
{
    char *out = malloc(size * 4 + 1), *o = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < size; i++) {
        if (data[i] == '@' && i + 1 < size && data[i + 1] == 'P') {
            memcpy(o, MARKER, strlen(MARKER));
            o += strlen(MARKER);
            i++;
        } else {
            *o++ = (char)data[i];
        }
    }
    *o = '\0';
    return out;
}

/*
 * 1 when the marker occurs in text and only inside pin-value values (the
 * attribute it stands in is named pin-value): then it is a PIN and nothing
 * else, and no message may hold it.
 */
static int marker_is_pin(const char *text)
{
    const char *m = text, *start;
    int seen = 0;

    while ((m = strstr(m, MARKER)) != NULL) {
        for (start = m; start > text && !strchr("&?;", start[-1]); start--)
            ;
        if (strncmp(start, "pin-value=", 10) != 0 || start + 10 > m)
            return 0;
        seen = 1;
        m += strlen(MARKER);
    }
    return seen;
}

static void said(const char *err, size_t errlen)
{
    if (err[errlen] != CANARY)
        fail(); /* written past the size it was given */
    if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL)
        fail();
}

static void no_pin(const char *err, const char *text)
{
    if (marker_is_pin(text) && strstr(err, MARKER) != NULL)
        fail();
    if (strstr(text, FILE_PIN) == NULL && strstr(err, FILE_PIN) != NULL)
        fail(); /* a PIN file's content */
}

static void refused(const char *err, size_t errlen, const char *text)
{
    said(err, errlen);
    if (strncmp(err, "not a pkcs11 URI", 16) != 0 &&
        strncmp(err, "malformed pkcs11 URI", 20) != 0 && strncmp(err, "pkcs11 URI ", 11) != 0 &&
        strcmp(err, "out of memory") != 0)
        fail(); /* a message that does not say what it is about */
    no_pin(err, text);
}

static int attr_same(CK_ATTRIBUTE *a, const void *ptr, size_t len)
{
    if (a == NULL)
        return ptr == NULL;
    return ptr != NULL && a->ulValueLen == len && memcmp(a->pValue, ptr, len) == 0;
}

static int str_same(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

/* The URI p11-kit makes of u is read back the same (the PIN aside). */
static void round_trip(prov_uri *u, unsigned int flags)
{
    char *s = NULL, err[512];
    prov_uri *v;

    if (p11_kit_uri_format(u->p11, P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK || s == NULL)
        fail();
    memset(err, CANARY, sizeof(err));
    v = prov_uri_parse_ex(s, flags, err, sizeof(err) - 1);
    if (v == NULL)
        fail(); /* p11-kit wrote what we refuse to read */
    if (v->has_class != u->has_class || (u->has_class && v->klass != u->klass) ||
        v->id_len != u->id_len || (u->id != NULL) != (v->id != NULL) ||
        (u->id != NULL && memcmp(u->id, v->id, u->id_len) != 0) || v->label_len != u->label_len ||
        (u->label_ptr != NULL) != (v->label_ptr != NULL) ||
        (u->label_ptr != NULL && memcmp(u->label_ptr, v->label_ptr, u->label_len) != 0))
        fail();
    if (memcmp(p11_kit_uri_get_token_info(u->p11), p11_kit_uri_get_token_info(v->p11),
               sizeof(CK_TOKEN_INFO)) != 0 ||
        memcmp(p11_kit_uri_get_slot_info(u->p11), p11_kit_uri_get_slot_info(v->p11),
               sizeof(CK_SLOT_INFO)) != 0 ||
        memcmp(p11_kit_uri_get_module_info(u->p11), p11_kit_uri_get_module_info(v->p11),
               sizeof(CK_INFO)) != 0 ||
        !str_same(p11_kit_uri_get_module_name(u->p11), p11_kit_uri_get_module_name(v->p11)) ||
        !str_same(p11_kit_uri_get_module_path(u->p11), p11_kit_uri_get_module_path(v->p11)))
        fail();
    prov_uri_free(v);
    free(s);
}

static void check_parsed(prov_uri *u, const char *text, unsigned int flags)
{
    P11KitUri *k = p11_kit_uri_new();
    const char *pv, *ps;

    if (k == NULL || p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, k) != P11_KIT_URI_OK ||
        p11_kit_uri_any_unrecognized(k))
        fail(); /* accepted what p11-kit refuses or does not know */
    if (!attr_same(p11_kit_uri_get_attribute(k, CKA_ID), u->id, u->id_len) ||
        !attr_same(p11_kit_uri_get_attribute(k, CKA_LABEL), u->label_ptr, u->label_len))
        fail();
    {
        CK_ATTRIBUTE *c = p11_kit_uri_get_attribute(k, CKA_CLASS);
        CK_OBJECT_CLASS klass;
        if ((c != NULL) != u->has_class)
            fail();
        if (c != NULL && (c->ulValueLen != sizeof(klass) ||
                          (memcpy(&klass, c->pValue, sizeof(klass)), klass != u->klass)))
            fail();
    }
    if (u->label_ptr != NULL && memchr(u->label_ptr, '\0', u->label_len) != NULL)
        fail(); /* a NUL in a label: refused */
    if (memcmp(p11_kit_uri_get_token_info(k), p11_kit_uri_get_token_info(u->p11),
               sizeof(CK_TOKEN_INFO)) != 0)
        fail();
    /* the URI's object matches its own attributes */
    if (!prov_uri_match_object(u, u->has_class ? u->klass : CKO_DATA, u->id, u->id_len,
                               (const char *)u->label_ptr, u->label_len))
        fail();
    if (u->has_class && prov_uri_match_object(u, u->klass + 1, u->id, u->id_len,
                                              (const char *)u->label_ptr, u->label_len))
        fail();

    pv = p11_kit_uri_get_pin_value(k);
    ps = p11_kit_uri_get_pin_source(k);
    if (pv != NULL && ps != NULL)
        fail(); /* both: refused */
    if (p11_kit_uri_get_pin_value(u->p11) != NULL)
        fail(); /* only our cleansed copy is kept */
    if (u->has_pin != (pv != NULL || ps != NULL))
        fail();
    if (u->has_pin && (u->pin_len == 0 || u->pin_len >= sizeof(u->pin) || u->pin[u->pin_len] != 0 ||
                       memchr(u->pin, '\0', u->pin_len) != NULL))
        fail(); /* an empty PIN would cost the token a try */
    if (pv != NULL && (strlen(pv) != u->pin_len || memcmp(pv, u->pin, u->pin_len) != 0))
        fail();
    if (ps != NULL && (memchr(u->pin, '\n', u->pin_len) || memchr(u->pin, '\r', u->pin_len)))
        fail(); /* a file's first line only */
    p11_kit_uri_free(k);
    round_trip(u, flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* odd sizes with allow-open-secrets, so both ways of judging a file run */
    unsigned int flags = size % 2 ? P11C_SECRET_ALLOW_OPEN : 0;
    char err[1024], shortmsg[9], *text;
    prov_uri *u;
    int files = 0, ok;

    if (size > 16 * 1024 || (text = expand(data, size)) == NULL)
        return 0;
    if (strstr(text, "pin-source") != NULL) {
        /* relative pin-source paths name the PIN files here */
        make_pin_files();
        home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (home < 0 || chdir(fuzz_temp_dir()) != 0)
            fail();
        files = 1;
    }

    memset(err, CANARY, sizeof(err));
    u = prov_uri_parse_ex(text, flags, err, sizeof(err) - 1);
    ok = u != NULL;
    if (u != NULL)
        check_parsed(u, text, flags);
    else
        refused(err, sizeof(err) - 1, text);
    prov_uri_free(u);

    /* a message cut short changes nothing else */
    memset(shortmsg, CANARY, sizeof(shortmsg));
    u = prov_uri_parse_ex(text, flags, shortmsg, sizeof(shortmsg) - 1);
    if ((u != NULL) != ok)
        fail();
    if (u == NULL)
        said(shortmsg, sizeof(shortmsg) - 1);
    prov_uri_free(u);
    /* no message buffer at all */
    u = prov_uri_parse_ex(text, flags, NULL, 0);
    if ((u != NULL) != ok)
        fail();
    prov_uri_free(u);

    if (files) {
        if (fchdir(home) != 0)
            fail();
        close(home);
        home = -1;
        fuzz_temp_done();
    }
    free(text);
    return 0;
}
