/*
 * What the operator sees: a line per token as it finishes (or one JSON
 * object per token with --json), a progress bar on a terminal, a summary
 * table at the end. Also the tool's debug switch (TOKENMINT_DEBUG) and names
 * for PKCS#11 return values.
 */
#include "tool.h"
#include "tm_debug.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>

void tool_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tm_debug_prefixed("tokenmint: debug", fmt, ap);
    va_end(ap);
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

const char *tm_ossl_err(char *buf, size_t len)
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

const char *tm_ckr_name(CK_RV rv)
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

static const struct {
    const char *name;
    tm_keytype t;
} keytypes[] = {
    {"ec:P-256", TM_KEY_P256},    {"ec:P-384", TM_KEY_P384},   {"rsa:2048", TM_KEY_RSA2048},
    {"rsa:3072", TM_KEY_RSA3072}, {"ed25519", TM_KEY_ED25519},
};

int tm_keytype_parse(const char *s, tm_keytype *out)
{
    size_t i;
    for (i = 0; i < sizeof keytypes / sizeof keytypes[0]; i++)
        if (strcasecmp(s, keytypes[i].name) == 0) {
            *out = keytypes[i].t;
            return 1;
        }
    return 0;
}

const char *tm_keytype_name(tm_keytype t)
{
    size_t i;
    for (i = 0; i < sizeof keytypes / sizeof keytypes[0]; i++)
        if (keytypes[i].t == t)
            return keytypes[i].name;
    return "?";
}

double tm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *kind_word(tm_result_kind k)
{
    switch (k) {
    case TM_RES_ISSUED:
        return "issued";
    case TM_RES_WRITTEN:
        return "written";
    case TM_RES_DONE:
        return "done";
    case TM_RES_FAILED:
        return "failed";
    }
    return "?";
}

void tm_report_init(tm_report *r, int json, size_t total)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->json = json;
    r->total = total;
    r->tty = !json && isatty(STDERR_FILENO);
    r->t0 = tm_now_ms();
}

static void progress(tm_report *r)
{
    int width = 30, fill = r->total ? (int)(width * r->done / r->total) : width, i;
    char bar[64];

    for (i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu  %zu failed ", bar, r->done, r->total, r->failed);
    if (r->done == r->total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Batch mode, before any token finishes: how many requests are ready. */
void tm_report_phase(tm_report *r, const char *what, size_t done, size_t total)
{
    int width = 30, fill = total ? (int)(width * done / total) : width, i;
    char bar[64];

    if (!r->tty)
        return;
    pthread_mutex_lock(&r->mu);
    for (i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[K[%s] %s %zu/%zu", bar, what, done, total);
    fflush(stderr);
    pthread_mutex_unlock(&r->mu);
}

static json_object *result_json(const tm_result *res)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "serial", json_object_new_string(res->serial));
    json_object_object_add(o, "label", json_object_new_string(res->label));
    json_object_object_add(o, "result", json_object_new_string(kind_word(res->kind)));
    json_object_object_add(o, "ok", json_object_new_boolean(res->kind != TM_RES_FAILED));
    if (res->cert_serial[0])
        json_object_object_add(o, "certificate_serial", json_object_new_string(res->cert_serial));
    if (res->key_id[0])
        json_object_object_add(o, "key_id", json_object_new_string(res->key_id));
    json_object_object_add(o, "key_generated", json_object_new_boolean(res->key_generated));
    json_object_object_add(o, "key_reused", json_object_new_boolean(res->key_reused));
    json_object_object_add(o, "ms", json_object_new_double(res->ms));
    if (res->kind == TM_RES_FAILED) {
        json_object_object_add(o, "step", json_object_new_int(res->step));
        json_object_object_add(o, "error", json_object_new_string(res->error));
    }
    return o;
}

void tm_report_token(tm_report *r, const tm_result *res)
{
    pthread_mutex_lock(&r->mu);
    r->done++;
    switch (res->kind) {
    case TM_RES_ISSUED:
        r->issued++;
        break;
    case TM_RES_WRITTEN:
        r->written++;
        break;
    case TM_RES_DONE:
        r->already++;
        break;
    case TM_RES_FAILED:
        r->failed++;
        break;
    }
    if (r->tty)
        fputs("\r\033[K", stderr);
    if (r->json) {
        json_object *o = result_json(res);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (res->kind == TM_RES_FAILED) {
        printf("FAIL  %-16s %-10s step %d: %s\n", res->serial, res->label, res->step, res->error);
    } else {
        printf("OK    %-16s %-10s %-7s cert %s%s\n", res->serial, res->label, kind_word(res->kind),
               res->cert_serial,
               res->kind == TM_RES_WRITTEN ? " (found in CA, was not on the token)" : "");
    }
    fflush(stdout);
    if (r->tty)
        progress(r);
    pthread_mutex_unlock(&r->mu);
}

void tm_report_summary(tm_report *r, const tm_result *results, size_t n)
{
    double secs = (tm_now_ms() - r->t0) / 1e3;
    size_t i;

    (void)results;
    (void)n;
    if (r->json)
        return;
    printf("\n  %-28s %6s\n", "tokens", "count");
    printf("  %-28s %6zu\n", "issued (new certificate)", r->issued);
    printf("  %-28s %6zu\n", "written (found in CA)", r->written);
    printf("  %-28s %6zu\n", "already done", r->already);
    printf("  %-28s %6zu\n", "failed", r->failed);
    printf("  %-28s %6zu   in %.2f s (%.1f tokens/s)\n", "total", r->done, secs,
           secs > 0 ? r->done / secs : 0.0);
    if (r->failed) {
        printf("\n  failed tokens:\n");
        for (i = 0; i < n; i++)
            if (results[i].kind == TM_RES_FAILED)
                printf("    %-16s step %d: %s\n", results[i].serial, results[i].step,
                       results[i].error);
    }
    fflush(stdout);
}
