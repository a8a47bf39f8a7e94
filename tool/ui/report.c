/*
 * What the operator sees: a line per token as it finishes (or one JSON
 * object per token with --json), a progress bar on a terminal, a summary
 * table at the end. Also the key type names the options and reports use.
 */
#include "ui/ui.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>

/* The first name of each type is the one the tool prints; the others are the
 * names pkcs11-tool --key-type, openssl and p11tool use for it. */
static const struct {
    const char *name;
    tool_keytype t;
} keytypes[] = {
    {"ec:P-256", TOOL_KEY_P256},
    {"EC:prime256v1", TOOL_KEY_P256},
    {"EC:secp256r1", TOOL_KEY_P256},
    {"EC:nistp256", TOOL_KEY_P256},
    {"EC:ansiX9p256r1", TOOL_KEY_P256},
    {"P-256", TOOL_KEY_P256},
    {"ec:P-384", TOOL_KEY_P384},
    {"EC:secp384r1", TOOL_KEY_P384},
    {"EC:prime384v1", TOOL_KEY_P384},
    {"EC:nistp384", TOOL_KEY_P384},
    {"EC:ansiX9p384r1", TOOL_KEY_P384},
    {"P-384", TOOL_KEY_P384},
    {"rsa:2048", TOOL_KEY_RSA2048},
    {"RSA-2048", TOOL_KEY_RSA2048},
    {"rsa:3072", TOOL_KEY_RSA3072},
    {"RSA-3072", TOOL_KEY_RSA3072},
    {"ed25519", TOOL_KEY_ED25519},
    {"EC:edwards25519", TOOL_KEY_ED25519},
    {"EC:Ed25519", TOOL_KEY_ED25519},
    {"EDDSA:Ed25519", TOOL_KEY_ED25519},
    {"EDDSA:edwards25519", TOOL_KEY_ED25519},
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
    case TOOL_RES_RENEW:
        return "needs renewal";
    }
    return "?";
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

/* Whole milliseconds: a person reads "845 ms", a script an integer. */
static long long round_ms(double ms)
{
    return ms <= 0 ? 0 : (long long)(ms + 0.5);
}

static void status_line(tool_report *r)
{
    int width = 30, fill, i;
    size_t shown = r->done;
    char bar[64];
    long long secs = round_ms(tool_now_ms() - r->t0) / 1000;

    fill = r->total ? (int)(width * (r->signed_ + r->done) / (2 * r->total)) : width;
    for (i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[K[%s] %zu/%zu signed, %zu/%zu done, %zu failed  %llds", bar, r->signed_,
            r->total, shown, r->total, r->failed, secs);
    fflush(stderr);
}

/* Redraws the status line every quarter second, so that a run whose first
 * phase is slow (RSA key generation on 32 tokens) shows it is alive. */
static void *ticker(void *arg)
{
    tool_report *r = arg;
    struct timespec ts = {0, 250 * 1000 * 1000};

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        status_line(r);
        pthread_mutex_unlock(&r->mu);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
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

void tool_report_sorted(tool_report *r)
{
    r->sorted = 1;
    if (r->tty && r->total > 0) {
        pthread_mutex_lock(&r->mu);
        status_line(r);
        pthread_mutex_unlock(&r->mu);
        r->ticking = pthread_create(&r->tick, NULL, ticker, r) == 0;
    }
}

static void stop_ticker(tool_report *r)
{
    if (!r->ticking)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->tick, NULL);
    r->ticking = 0;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* A token finished a phase: one line above the status line (terminal only). */
static void step_line(tool_report *r, const tool_result *res, const char *what)
{
    long long at = round_ms(tool_now_ms() - r->t0);
    fprintf(stderr, "\r\033[K%4lld.%01llds  %-12s %-18s %s\n", at / 1000, at % 1000 / 100,
            res->label, res->serial, what);
    status_line(r);
}

void tool_report_step(tool_report *r, const tool_result *res, const char *what)
{
    pthread_mutex_lock(&r->mu);
    if (!strcmp(what, "request signed"))
        r->signed_++;
    if (r->tty && r->sorted)
        step_line(r, res,
                  res->key_generated && !strcmp(what, "request signed")
                      ? "key pair generated, request signed"
                      : what);
    pthread_mutex_unlock(&r->mu);
}

/* Batch mode, before any token finishes: how many requests are ready. */
void tool_report_phase(tool_report *r, const char *what, size_t done, size_t total)
{
    int width = 30, fill = total ? (int)(width * done / total) : width, i;
    char bar[64];

    if (!r->tty || r->sorted)
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
    json_object_object_add(
        o, "ok",
        json_object_new_boolean(res->kind != TOOL_RES_FAILED && res->kind != TOOL_RES_RENEW));
    if (res->cert_serial[0])
        json_object_object_add(o, "certificate_serial", json_object_new_string(res->cert_serial));
    if (res->key_id[0])
        json_object_object_add(o, "key_id", json_object_new_string(res->key_id));
    json_object_object_add(o, "key_generated", json_object_new_boolean(res->key_generated));
    json_object_object_add(o, "key_reused", json_object_new_boolean(res->key_reused));
    if (res->key_retried)
        json_object_object_add(o, "key_retried", json_object_new_boolean(1));
    json_object_object_add(o, "ms", json_object_new_int64(round_ms(res->ms)));
    if (res->kind == TOOL_RES_FAILED) {
        json_object_object_add(o, "step", json_object_new_int(res->step));
        json_object_object_add(o, "error", json_object_new_string(res->error));
    }
    if (res->kind == TOOL_RES_RENEW)
        json_object_object_add(o, "renewal", json_object_new_string(res->error));
    if (res->replaces[0])
        json_object_object_add(o, "supersedes", json_object_new_string(res->replaces));
    return o;
}

/* One line (or JSON object) per token; a failure is said here and only here. */
static void result_line(const tool_report *r, const tool_result *res)
{
    if (r->json) {
        json_object *o = result_json(res);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (res->kind == TOOL_RES_FAILED) {
        printf("FAIL  %-16s %-10s step %d: %s\n", res->serial, res->label, res->step, res->error);
    } else if (res->kind == TOOL_RES_RENEW) {
        printf("RENEW %-16s %-10s %s\n", res->serial, res->label, res->error);
    } else {
        printf("OK    %-16s %-10s %-7s cert %s%s%s%s\n", res->serial, res->label,
               kind_word(res->kind), res->cert_serial,
               res->kind == TOOL_RES_WRITTEN ? " (found in CA, was not on the token)" : "",
               res->replaces[0] ? " supersedes " : "", res->replaces);
    }
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
    case TOOL_RES_RENEW:
        r->renew++;
        break;
    }
    if (r->sorted) {
        /* The list comes sorted at the end; on a terminal the token's last
         * phase shows now. */
        if (r->tty)
            step_line(r, res,
                      res->kind == TOOL_RES_FAILED  ? "failed (reason in the list below)"
                      : res->kind == TOOL_RES_DONE  ? "already done"
                      : res->kind == TOOL_RES_RENEW ? "needs renewal (tokenmint renew)"
                                                    : "verified, written to the token");
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (r->tty)
        fputs("\r\033[K", stderr);
    result_line(r, res);
    fflush(stdout);
    if (r->tty)
        progress(r);
    pthread_mutex_unlock(&r->mu);
}

/* Label, then serial: the order a person finds a token in. */
static int by_label(const void *a, const void *b)
{
    const tool_result *x = *(const tool_result *const *)a, *y = *(const tool_result *const *)b;
    int c = strcmp(x->label, y->label);
    return c ? c : strcmp(x->serial, y->serial);
}

void tool_report_summary(tool_report *r, const tool_result *results, size_t n)
{
    double secs = (tool_now_ms() - r->t0) / 1e3;
    const tool_result **order = NULL;
    size_t i;

    stop_ticker(r);
    if (r->sorted && n > 0 && (order = calloc(n, sizeof *order)) != NULL) {
        for (i = 0; i < n; i++)
            order[i] = &results[i];
        qsort(order, n, sizeof *order, by_label);
        for (i = 0; i < n; i++)
            result_line(r, order[i]);
        free(order);
    } else if (r->sorted) {
        for (i = 0; i < n; i++)
            result_line(r, &results[i]);
    }
    if (r->json) {
        fflush(stdout);
        return;
    }
    printf("\n  %-28s %6s\n", "tokens", "count");
    printf("  %-28s %6zu\n", "issued (new certificate)", r->issued);
    printf("  %-28s %6zu\n", "written (found in CA)", r->written);
    printf("  %-28s %6zu\n", "already done", r->already);
    if (r->renew)
        printf("  %-28s %6zu   (tokenmint renew)\n", "needs renewal", r->renew);
    printf("  %-28s %6zu\n", "failed", r->failed);
    printf("  %-28s %6zu   in %.1f s (%.1f tokens/s)\n", "total", r->done, secs,
           secs > 0 ? r->done / secs : 0.0);
    fflush(stdout);
}
