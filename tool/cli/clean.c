/*
 * tokenmint clean: crash leftovers among tokenmint's own objects on each
 * token (station/leftovers.c), listed; destroyed only with --remove. Every
 * leftover found and every object destroyed goes to the audit log.
 */
#include "cli/cli.h"
#include "ca/ca.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

typedef struct clean_ctx {
    pthread_mutex_t mu;
    int remove;
    int json;
    size_t found, removed, failed;
} clean_ctx;

static void report(clean_ctx *cc, const tool_token *t, const tool_leftover *l, const char *state)
{
    if (cc->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "serial", json_object_new_string(t->serial_text));
        json_object_object_add(o, "object", json_object_new_string(l->what));
        json_object_object_add(o, "id", json_object_new_string(l->id));
        json_object_object_add(o, "label", json_object_new_string(l->label));
        json_object_object_add(o, "reason", json_object_new_string(l->why));
        json_object_object_add(o, "state", json_object_new_string(state));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("%-18s %-12s id=%-18s %-10s %s (%s)\n", t->serial_text, l->what, l->id, state,
               l->label, l->why);
    }
}

static void clean_one(tool_run *run, tool_token *t, tool_result *res, void *user)
{
    clean_ctx *cc = user;
    tool_station *st = run->st;
    tool_leftover *lv = NULL;
    CK_SESSION_HANDLE s;
    size_t n = 0, i, k;
    char err[300], detail[900];
    int have = 0;

    memset(res, 0, sizeof *res);
    snprintf(res->serial, sizeof res->serial, "%s", t->serial_text);
    res->kind = TOOL_RES_DONE;
    if (st->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) !=
        CKR_OK) {
        snprintf(res->error, sizeof res->error, "cannot open a session");
        goto fail;
    }
    have = 1;
    if (!tool_token_login(run, t, s, err, sizeof err)) {
        snprintf(res->error, sizeof res->error, "%s", err);
        goto fail;
    }
    if (!tool_leftovers_find(run, s, &lv, &n)) {
        snprintf(res->error, sizeof res->error, "cannot read the token's objects");
        goto fail;
    }
    for (i = 0; i < n; i++) {
        const char *state = "found";
        int gone = 1;
        if (cc->remove && lv[i].removable) {
            for (k = 0; k < lv[i].nh; k++)
                gone &= st->f->C_DestroyObject(s, lv[i].h[k]) == CKR_OK;
            state = gone ? "removed" : "not removed";
        }
        snprintf(detail, sizeof detail, "%s id=%s label=%s: %s", lv[i].what, lv[i].id, lv[i].label,
                 lv[i].why);
        tool_audit_line(run->cfg, t->serial_text, "clean", state, detail);
        pthread_mutex_lock(&cc->mu);
        report(cc, t, &lv[i], state);
        cc->found++;
        if (cc->remove)
            gone ? cc->removed++ : cc->failed++;
        pthread_mutex_unlock(&cc->mu);
        if (cc->remove && !gone)
            res->kind = TOOL_RES_FAILED;
    }
    goto out;
fail:
    res->kind = TOOL_RES_FAILED;
    tool_audit_line(run->cfg, t->serial_text, "clean", "failed", res->error);
    pthread_mutex_lock(&cc->mu);
    tool_err("%s: %s", t->serial_text, res->error);
    pthread_mutex_unlock(&cc->mu);
out:
    free(lv);
    if (have)
        st->f->C_CloseSession(s);
}

int tool_cmd_clean(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_token **tokens = NULL;
    clean_ctx cc;
    char err[600];
    size_t n = 0;
    int rc;

    if (!tool_parse_command(argc, argv, "clean", &p, &rc))
        return rc;
    if (p.nargs) {
        tool_err("clean: unexpected argument \"%s\"", p.args[0]);
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    memset(&cc, 0, sizeof cc);
    pthread_mutex_init(&cc.mu, NULL);
    cc.remove = p.remove;
    cc.json = p.c.json;
    rc = tool_session_open_tokens(&s, &p.c, TOOL_SESSION_OPERATOR, 0, &tokens, &n);
    if (rc != TOOL_EXIT_OK)
        goto out;
    if (p.c.ca_dir) {
        s.run.ca = tool_ca_open_records(p.c.ca_dir, NULL, s.prof, &s.crypto, err, sizeof err);
        if (!s.run.ca) {
            tool_err("%s", err);
            rc = TOOL_EXIT_USAGE;
            goto out;
        }
    }
    rc = tool_station_run_all(&s.run, tokens, n, p.c.jobs, clean_one, &cc, NULL);
    if (!cc.json) {
        if (cc.remove)
            printf("%zu leftover%s on %zu token%s, %zu removed%s\n", cc.found,
                   cc.found == 1 ? "" : "s", n, n == 1 ? "" : "s", cc.removed,
                   cc.failed ? ", some could not be" : "");
        else
            printf("%zu leftover%s on %zu token%s (dry run: --remove destroys them)\n", cc.found,
                   cc.found == 1 ? "" : "s", n, n == 1 ? "" : "s");
    }
out:
    pthread_mutex_destroy(&cc.mu);
    free(tokens);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}
