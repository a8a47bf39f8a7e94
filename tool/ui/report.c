/*
 * What the operator sees: a line per token as it finishes (or one JSON
 * object per token with --json), a progress bar on a terminal, a summary
 * table at the end. Also the key type names the options and reports use.
 */
#include "ui/ui.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>

static const struct {
    const char *name;
    tool_keytype t;
} keytypes[] = {
    {"ec:P-256", TOOL_KEY_P256},    {"ec:P-384", TOOL_KEY_P384},   {"rsa:2048", TOOL_KEY_RSA2048},
    {"rsa:3072", TOOL_KEY_RSA3072}, {"ed25519", TOOL_KEY_ED25519},
};

int tool_keytype_parse(const char *s, tool_keytype *out)
{
    size_t i;
    for (i = 0; i < sizeof keytypes / sizeof keytypes[0]; i++)
        if (strcasecmp(s, keytypes[i].name) == 0) {
            *out = keytypes[i].t;
            return 1;
        }
    return 0;
}

const char *tool_keytype_name(tool_keytype t)
{
    size_t i;
    for (i = 0; i < sizeof keytypes / sizeof keytypes[0]; i++)
        if (keytypes[i].t == t)
            return keytypes[i].name;
    return "?";
}

double tool_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *kind_word(tool_result_kind k)
{
    switch (k) {
    case TOOL_RES_ISSUED:
        return "issued";
    case TOOL_RES_WRITTEN:
        return "written";
    case TOOL_RES_DONE:
        return "done";
    case TOOL_RES_FAILED:
        return "failed";
    }
    return "?";
}

void tool_report_init(tool_report *r, int json, size_t total)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->json = json;
    r->total = total;
    r->tty = !json && isatty(STDERR_FILENO);
    r->t0 = tool_now_ms();
}

static void progress(tool_report *r)
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
void tool_report_phase(tool_report *r, const char *what, size_t done, size_t total)
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

static json_object *result_json(const tool_result *res)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "serial", json_object_new_string(res->serial));
    json_object_object_add(o, "label", json_object_new_string(res->label));
    json_object_object_add(o, "result", json_object_new_string(kind_word(res->kind)));
    json_object_object_add(o, "ok", json_object_new_boolean(res->kind != TOOL_RES_FAILED));
    if (res->cert_serial[0])
        json_object_object_add(o, "certificate_serial", json_object_new_string(res->cert_serial));
    if (res->key_id[0])
        json_object_object_add(o, "key_id", json_object_new_string(res->key_id));
    json_object_object_add(o, "key_generated", json_object_new_boolean(res->key_generated));
    json_object_object_add(o, "key_reused", json_object_new_boolean(res->key_reused));
    json_object_object_add(o, "ms", json_object_new_double(res->ms));
    if (res->kind == TOOL_RES_FAILED) {
        json_object_object_add(o, "step", json_object_new_int(res->step));
        json_object_object_add(o, "error", json_object_new_string(res->error));
    }
    return o;
}

void tool_report_token(tool_report *r, const tool_result *res)
{
    pthread_mutex_lock(&r->mu);
    r->done++;
    switch (res->kind) {
    case TOOL_RES_ISSUED:
        r->issued++;
        break;
    case TOOL_RES_WRITTEN:
        r->written++;
        break;
    case TOOL_RES_DONE:
        r->already++;
        break;
    case TOOL_RES_FAILED:
        r->failed++;
        break;
    }
    if (r->tty)
        fputs("\r\033[K", stderr);
    if (r->json) {
        json_object *o = result_json(res);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (res->kind == TOOL_RES_FAILED) {
        printf("FAIL  %-16s %-10s step %d: %s\n", res->serial, res->label, res->step, res->error);
    } else {
        printf("OK    %-16s %-10s %-7s cert %s%s\n", res->serial, res->label, kind_word(res->kind),
               res->cert_serial,
               res->kind == TOOL_RES_WRITTEN ? " (found in CA, was not on the token)" : "");
    }
    fflush(stdout);
    if (r->tty)
        progress(r);
    pthread_mutex_unlock(&r->mu);
}

void tool_report_summary(tool_report *r, const tool_result *results, size_t n)
{
    double secs = (tool_now_ms() - r->t0) / 1e3;
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
            if (results[i].kind == TOOL_RES_FAILED)
                printf("    %-16s step %d: %s\n", results[i].serial, results[i].step,
                       results[i].error);
    }
    fflush(stdout);
}
