/*
 * tokenmint pin derive: moves tokens from their factory user PIN to the PIN
 * the module derives from the station secret and the token serial (claim 5,
 * issue 10 item 6), through the module's C_SetPIN(factory, NULL). A token
 * the module already derives the PIN for (it reports a protected
 * authentication path) is left alone: sending it the factory PIN would cost
 * it a try. The factory PIN goes through the same PIN-try rules as a login
 * (station/pintries.c): one token at a time until one accepts it, never
 * again to a token that refused it, never the final try unasked.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

typedef struct derive_ctx {
    pthread_mutex_t mu;
    int json;
} derive_ctx;

static void derive_one(tool_run *run, tool_token *t, tool_result *res, void *user)
{
    derive_ctx *dc = user;
    char err[400] = "";
    CK_SESSION_HANDLE s;
    CK_RV rv;
    int have = 0;

    memset(res, 0, sizeof *res);
    snprintf(res->serial, sizeof res->serial, "%s", t->serial_text);
    snprintf(res->label, sizeof res->label, "%s", t->label);
    res->kind = TOOL_RES_FAILED;
    rv = tool_token_refresh(run->st, t);
    if (rv != CKR_OK) {
        snprintf(res->error, sizeof res->error, "token not present (%s)", p11c_ckr_name(rv));
        tool_pin_skip(run->pin, t);
        goto out;
    }
    if (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        res->kind = TOOL_RES_DONE;
        tool_pin_skip(run->pin, t);
        goto out;
    }
    if (!(t->info.flags & CKF_USER_PIN_INITIALIZED)) {
        snprintf(res->error, sizeof res->error, "token has no user PIN to replace");
        tool_pin_skip(run->pin, t);
        goto out;
    }
    rv = run->st->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        snprintf(res->error, sizeof res->error, "cannot open a session: %s", p11c_ckr_name(rv));
        tool_pin_skip(run->pin, t);
        goto out;
    }
    have = 1;
    if (!tool_token_set_derived_pin(run, t, s, err, sizeof err)) {
        snprintf(res->error, sizeof res->error, "%s", err);
        goto out;
    }
    tool_token_refresh(run->st, t);
    if (!(t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
        snprintf(res->error, sizeof res->error,
                 "the module set the PIN but does not report the token as derived; check its "
                 "station_secret");
        goto out;
    }
    res->kind = TOOL_RES_ISSUED;
out:
    if (have)
        run->st->f->C_CloseSession(s);
    tool_audit_line(run->cfg, t->serial_text, "pin derive",
                    res->kind == TOOL_RES_FAILED ? "failed"
                    : res->kind == TOOL_RES_DONE ? "already derived"
                                                 : "switched",
                    res->kind == TOOL_RES_FAILED ? res->error : NULL);
    pthread_mutex_lock(&dc->mu);
    if (dc->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "serial", json_object_new_string(t->serial_text));
        json_object_object_add(o, "label", json_object_new_string(t->label));
        json_object_object_add(o, "result",
                               json_object_new_string(res->kind == TOOL_RES_FAILED ? "failed"
                                                      : res->kind == TOOL_RES_DONE
                                                          ? "already derived"
                                                          : "switched"));
        if (res->kind == TOOL_RES_FAILED)
            json_object_object_add(o, "error", json_object_new_string(res->error));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("%-18s %-12s %s%s\n", t->serial_text, t->label,
               res->kind == TOOL_RES_FAILED ? "failed: "
               : res->kind == TOOL_RES_DONE ? "already takes its derived PIN"
                                            : "switched to its derived PIN",
               res->kind == TOOL_RES_FAILED ? res->error : "");
    }
    fflush(stdout);
    pthread_mutex_unlock(&dc->mu);
}

int tool_cmd_pin(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_token **tokens = NULL;
    derive_ctx dc;
    size_t n = 0;
    int rc;

    if (!tool_parse_command(argc - 1, argv + 1, "pin derive", &p, &rc))
        return rc;
    if (p.nargs || !p.c.pin_source) {
        tool_err("pin derive: %s", p.nargs ? "unexpected argument"
                                           : "--pin-source FACTORY (the current user PIN) is "
                                             "required");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    memset(&dc, 0, sizeof dc);
    pthread_mutex_init(&dc.mu, NULL);
    dc.json = p.c.json;
    rc = tool_session_open_tokens(&s, &p.c, TOOL_SESSION_OPERATOR, 0, &tokens, &n);
    if (rc != TOOL_EXIT_OK)
        goto out;
    rc = tool_session_precheck(&s, tokens, n, 0);
    if (rc != TOOL_EXIT_OK)
        goto out;
    tool_pin_expect(&s.pin, tokens, n);
    rc = tool_station_run_all(&s.run, tokens, n, p.c.jobs, derive_one, &dc, NULL);
    if (n == 0)
        tool_err("no tokens named");
out:
    pthread_mutex_destroy(&dc.mu);
    free(tokens);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}
