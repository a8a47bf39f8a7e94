/*
 * tokenmint: the issuing station's command line. git-style subcommands, each
 * with --help. Exit codes: 0 all done, 1 some tokens failed, 2 usage or
 * config error.
 */
#include "ca/ca.h"
#include "cli/cli.h"
#include "cmp/cmp.h"
#include "ui/ui.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdatomic.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define TOOL_CONF_DEFAULT "/etc/tokenmint/tool.conf"

/* ---- session: what every token-touching command sets up ---------------------------- */

/* The CA before anything touches a token: a CMP CA is wholly checked here
 * (it needs nothing from the station); a local CA is opened after the
 * operator, since its key may be a token key and it records the operator. */
static int session_cmp_ca(tool_session *s, tool_common *c)
{
    char err[600];

    if (c->cmp.any && !c->cmp.url[0]) {
        tool_err("--cmp-* options need --cmp URL");
        return 0;
    }
    if (c->cmp.url[0] && c->ca_dir) {
        tool_err("--ca DIR and --cmp URL: issue from one CA, not both");
        return 0;
    }
    if (!c->cmp.url[0] && !c->ca_dir) {
        tool_err("--ca DIR is required (or --cmp URL for a CMP CA)");
        return 0;
    }
    if (!c->cmp.url[0])
        return 1;
    s->run.ca = tool_cmp_ca_open(&c->cmp, err, sizeof err);
    if (!s->run.ca || !tool_ca_check(s->run.ca, err, sizeof err)) {
        tool_err("%s", err);
        return 0;
    }
    return 1;
}

static int session_local_ca(tool_session *s, tool_common *c)
{
    char err[600];

    if (s->run.ca)
        return 1;
    s->run.ca = tool_ca_open(c->ca_dir, s->prof, &s->crypto, s->operator_id, err, sizeof err);
    if (!s->run.ca || !tool_ca_check(s->run.ca, err, sizeof err)) {
        tool_err("%s", err);
        return 0;
    }
    return 1;
}

int tool_session_open(tool_session *s, tool_common *c, int flags)
{
    char err[600];
    const char *conf = c->config ? c->config : getenv("TOKENMINT_TOOL_CONF");
    const char *profile;
    tm_violations *v;
    size_t i;
    int found;

    memset(s, 0, sizeof *s);
    tool_pin_init(&s->pin, c->pin_source);
    if (!conf && access(TOOL_CONF_DEFAULT, R_OK) == 0)
        conf = TOOL_CONF_DEFAULT;
    if (conf && *conf && !tool_config_load(conf, &s->cfg, err, sizeof err)) {
        tool_err("%s", err);
        return TOOL_EXIT_USAGE;
    }
    profile = c->profile ? c->profile : s->cfg.profile;
    v = tm_violations_new();
    s->prof = tm_profile_load(profile, v);
    if (!s->prof) {
        tm_violations_join(v, err, sizeof err);
        tool_err("profile %s: %s", profile ? profile : "(built in)", err);
        tm_violations_free(v);
        return TOOL_EXIT_USAGE;
    }
    tm_violations_free(v);
    tm_profile_register_oids(s->prof);

    s->run.purpose = c->purpose ? c->purpose : tm_profile_default_purpose(s->prof);
    for (found = 0, i = 0; i < tm_profile_purpose_count(s->prof); i++)
        found |= strcmp(tm_profile_purpose_name(s->prof, i), s->run.purpose) == 0;
    if (!found) {
        tool_err("--purpose %s: the profile has no such purpose", s->run.purpose);
        return TOOL_EXIT_USAGE;
    }
    s->run.keytype = TOOL_KEY_P256;
    if (c->keytype && !tool_keytype_parse(c->keytype, &s->run.keytype)) {
        tool_err("--key-type %s: one of ec:P-256, ec:P-384, rsa:2048, rsa:3072, ed25519",
                 c->keytype);
        return TOOL_EXIT_USAGE;
    }
    if (c->cmp.any && !(flags & TOOL_SESSION_CA)) {
        tool_err("--cmp-* options need a command that issues");
        return TOOL_EXIT_USAGE;
    }
    if ((flags & TOOL_SESSION_CA) && !session_cmp_ca(s, c))
        return TOOL_EXIT_USAGE;
    /* Step 2: station initialisation. The tool initialises the module first;
     * the provider then shares that initialisation. */
    if (!tool_station_open(&s->st, tool_default_module(c->module), err, sizeof err)) {
        tool_err("%s", err);
        return TOOL_EXIT_USAGE;
    }
    tool_crypto_open(&s->crypto, s->st.module_path);
    /* Step 1 (claim 6): the operator, before anything touches a token. */
    if ((flags & TOOL_SESSION_OPERATOR) &&
        !tool_operator_auth(&s->cfg, &s->st, &s->crypto, c->operator_pass, c->operator_token,
                            c->operator_pin, s->operator_id, sizeof s->operator_id, err,
                            sizeof err)) {
        tool_err("operator authentication refused: %s", err);
        return TOOL_EXIT_USAGE;
    }
    if ((flags & TOOL_SESSION_CA) && !session_local_ca(s, c))
        return TOOL_EXIT_USAGE;
    /* A command that may log in keeps the station's record of refused PINs:
     * without it a refused PIN could be sent again on the next run. */
    if ((flags & TOOL_SESSION_OPERATOR) &&
        !tool_pin_record_open(&s->pin, tool_state_dir(&s->cfg), err, sizeof err)) {
        tool_err("%s", err);
        return TOOL_EXIT_USAGE;
    }
    s->pin.allow_final_try = c->allow_final_try;
    s->run.st = &s->st;
    s->run.crypto = &s->crypto;
    s->run.prof = s->prof;
    s->run.pin = &s->pin;
    s->run.cfg = &s->cfg;
    s->run.operator_id = s->operator_id;
    return TOOL_EXIT_OK;
}

void tool_session_close(tool_session *s)
{
    if (s->run.ca)
        tool_ca_close(s->run.ca);
    s->run.ca = NULL;
    tool_crypto_close(&s->crypto);
    if (s->st.f)
        tool_station_close(&s->st);
    tm_profile_free(s->prof);
    tool_config_clear(&s->cfg);
    tool_pin_clear(&s->pin);
}

int tool_session_tokens(tool_session *s, const tool_common *c, int default_all, tool_token ***out,
                        size_t *n)
{
    unsigned char *sel = calloc(s->st.ntokens ? s->st.ntokens : 1, 1), *op = NULL;
    tool_token **v = calloc(s->st.ntokens ? s->st.ntokens : 1, sizeof *v);
    char err[600];
    size_t i, cnt = 0;

    *out = NULL;
    *n = 0;
    if (!sel || !v)
        goto bad;
    if (c->nuris) {
        if (!tool_station_select(&s->st, c->uris, c->nuris, sel, err, sizeof err)) {
            tool_err("%s", err);
            goto bad;
        }
    } else if (c->all || default_all) {
        memset(sel, 1, s->st.ntokens);
    } else {
        tool_err("name the tokens: --all or --token URI");
        goto bad;
    }
    /* The operator's own token is never issued to. */
    if (c->operator_token) {
        op = calloc(s->st.ntokens ? s->st.ntokens : 1, 1);
        if (op && tool_station_select(&s->st, (char **)&c->operator_token, 1, op, err, sizeof err))
            for (i = 0; i < s->st.ntokens; i++)
                if (op[i])
                    sel[i] = 0;
        free(op);
    }
    for (i = 0; i < s->st.ntokens; i++) {
        tool_token *t = &s->st.tokens[i];
        /* --all means every token that can be issued to: an empty slot's
         * uninitialised token (SoftHSM always shows one) is noted, not failed.
         * A token named by URI is always tried, and fails when it cannot be. */
        if (sel[i] && !c->nuris && !(t->info.flags & CKF_TOKEN_INITIALIZED)) {
            tool_debug("skipping uninitialised token in slot %lu", (unsigned long)t->slot);
            continue;
        }
        if (sel[i])
            v[cnt++] = t;
    }
    free(sel);
    *out = v;
    *n = cnt;
    return 1;
bad:
    free(sel);
    free(v);
    return 0;
}

int tool_session_open_tokens(tool_session *s, tool_common *c, int flags, int default_all,
                             tool_token ***out, size_t *n)
{
    int rc;

    tool_return_val_if_fail(out != NULL && n != NULL, TOOL_EXIT_USAGE);
    *out = NULL;
    *n = 0;
    rc = tool_session_open(s, c, flags);
    if (rc != TOOL_EXIT_OK)
        return rc;
    return tool_session_tokens(s, c, default_all, out, n) ? TOOL_EXIT_OK : TOOL_EXIT_USAGE;
}

/* Label, then serial: the order a person looks for a token in. */
static int token_by_label(const void *a, const void *b)
{
    const tool_token *x = *(tool_token *const *)a, *y = *(tool_token *const *)b;
    int c = strcmp(x->label, y->label);
    return c ? c : strcmp(x->serial_text, y->serial_text);
}

int tool_session_precheck(tool_session *s, tool_token **tokens, size_t n, int makes_keys)
{
    char why[600], pin[256];
    size_t len = 0, i, k;
    int need_pin = 0;
    tool_token *tmp;

    if (makes_keys &&
        !tool_profile_can_certify(s->prof, s->run.purpose, s->run.keytype, why, sizeof why)) {
        tool_err("--purpose %s with --key-type %s: %s (nothing was done to any token)",
                 s->run.purpose, tool_keytype_name(s->run.keytype), why);
        return TOOL_EXIT_USAGE;
    }
    for (i = 0; i < n; i++)
        need_pin |= !(tokens[i]->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH);
    if (s->pin.source) {
        /* Read now: a missing or bad PIN file is one usage error, not a failure per token;
         * a per-token source ("%s") has every token's file read before the first is touched. */
        int per_token = p11c_secret_per_token(s->pin.source);
        for (k = 0; k < (per_token ? n : 1); k++) {
            if (per_token && (tokens[k]->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH))
                continue;
            /* a token the pipeline fails for its serial needs no PIN file */
            if (per_token && makes_keys && (tokens[k]->info.flags & CKF_TOKEN_INITIALIZED) &&
                !tool_token_serial_usable(&s->st, tokens[k], why, sizeof why))
                continue;
            if (!tool_pin_get(&s->pin, per_token ? tokens[k]->serial_text : NULL, pin, sizeof pin,
                              &len, why, sizeof why)) {
                OPENSSL_cleanse(pin, sizeof pin);
                tool_err("--pin-source: %s (nothing was done to any token)", why);
                return TOOL_EXIT_USAGE;
            }
            OPENSSL_cleanse(pin, sizeof pin);
        }
    } else if (need_pin) {
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            tool_err("no PIN: a token needs its user PIN and there is no terminal to ask on (%s); "
                     "give --pin-source SRC (nothing was done to any token)",
                     strerror(errno));
            return TOOL_EXIT_USAGE;
        }
        close(fd);
    }
    /* An untested PIN goes to the tokens one at a time in this order
     * (tool_pin_expect): by label, so which token tests it does not depend on
     * the backend's slot order, and count-low tokens last. The workers take
     * tokens in order, so a token waiting for its turn only ever waits for
     * tokens under way. */
    if (n > 1) /* qsort's base must not be NULL, even for no tokens (watch) */
        qsort(tokens, n, sizeof *tokens, token_by_label);
    for (i = 0, k = 0; i < n; i++)
        if (!(tokens[i]->info.flags & CKF_USER_PIN_COUNT_LOW)) {
            tmp = tokens[i];
            memmove(tokens + k + 1, tokens + k, (i - k) * sizeof *tokens);
            tokens[k++] = tmp;
        }
    return TOOL_EXIT_OK;
}

/* ---- tokens ---------------------------------------------------------------------------- */

int tool_cmd_tokens(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_token **order = NULL;
    size_t i, n = 0;
    int rc;

    if (!tool_parse_command(argc, argv, "tokens", &p, &rc))
        return rc;
    rc = tool_session_open(&s, &p.c, 0);
    if (rc != TOOL_EXIT_OK)
        goto out;
    order = calloc(s.st.ntokens ? s.st.ntokens : 1, sizeof *order);
    if (order == NULL) {
        tool_err("out of memory");
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    /* A slot with a blank token that has no serial (SoftHSM2's spare slot,
     * always there) is no token of the station: not listed, not counted. */
    for (i = 0; i < s.st.ntokens; i++)
        if ((s.st.tokens[i].info.flags & CKF_TOKEN_INITIALIZED) || s.st.tokens[i].serial_text[0])
            order[n++] = &s.st.tokens[i];
    qsort(order, n, sizeof *order, token_by_label);
    if (!p.c.json)
        printf("%-18s %-12s %-16s %-8s %s\n", "SERIAL", "LABEL", "MODEL", "PIN", "STATE");
    for (i = 0; i < n; i++) {
        tool_token *t = order[i];
        tool_token_state ts;
        char state[64];
        /* Which PIN the token takes: the module reports a protected path for
         * a token it derives the PIN for (switched by `pin derive`). */
        const char *pin = !(t->info.flags & CKF_USER_PIN_INITIALIZED)         ? "-"
                          : t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH ? "derived"
                                                                              : "user";
        tool_token_state_read(&s.run, t, &ts);
        if (!strcmp(ts.state, "issued"))
            snprintf(state, sizeof state, "issued: %d certificate%s%s", ts.ncerts,
                     ts.ncerts == 1 ? "" : "s", ts.nfree ? ", free key pair" : "");
        else
            snprintf(state, sizeof state, "%s", ts.state);
        if (p.c.json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "serial", json_object_new_string(t->serial_text));
            json_object_object_add(o, "label", json_object_new_string(t->label));
            json_object_object_add(o, "model", json_object_new_string(t->model));
            json_object_object_add(o, "uri", json_object_new_string(t->uri));
            json_object_object_add(o, "state", json_object_new_string(ts.state));
            json_object_object_add(o, "pin", json_object_new_string(pin));
            json_object_object_add(o, "certificates", json_object_new_int(ts.ncerts));
            json_object_object_add(o, "key_pairs", json_object_new_int(ts.nkeys));
            json_object_object_add(o, "free_key_pairs", json_object_new_int(ts.nfree));
            json_object_object_add(o, "keyless_certificates", json_object_new_int(ts.nkeyless));
            puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            json_object_put(o);
        } else {
            printf("%-18s %-12s %-16s %-8s %s\n", t->serial_text, t->label, t->model, pin, state);
        }
    }
    {
        size_t blank = 0;
        for (i = 0; i < n; i++)
            blank += !(order[i]->info.flags & CKF_TOKEN_INITIALIZED);
        if (!p.c.json && blank)
            printf("%zu token%s, %zu not initialised\n", n - blank, n - blank == 1 ? "" : "s",
                   blank);
        else if (!p.c.json)
            printf("%zu token%s\n", n, n == 1 ? "" : "s");
    }
out:
    free(order);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}

/* ---- ca init --------------------------------------------------------------------------- */

int tool_cmd_ca_init(int argc, char **argv)
{
    tool_parsed p;
    tool_station st;
    tool_crypto cr;
    char err[600];
    int rc = TOOL_EXIT_USAGE, have_st = 0;

    if (!tool_parse_command(argc - 1, argv + 1, "ca init", &p, &rc))
        return rc;
    if (p.nargs != 1 || (p.key && p.key_file)) {
        tool_err("usage: tokenmint ca init DIR [--key pkcs11:URI | --key-file F]");
        goto out;
    }
    if (p.key) {
        if (!tool_station_open(&st, tool_default_module(p.c.module), err, sizeof err)) {
            tool_err("%s", err);
            goto out;
        }
        have_st = 1;
    }
    tool_crypto_open(&cr, have_st ? st.module_path : NULL);
    if (!tool_ca_init_db(p.args[0], p.db, p.key, p.key_file, p.subject, &cr, err, sizeof err)) {
        tool_err("ca init: %s", err);
    } else {
        printf("CA ready in %s (root %s/ca.pem)\n", p.args[0], p.args[0]);
        rc = TOOL_EXIT_OK;
    }
    tool_crypto_close(&cr);
    if (have_st)
        tool_station_close(&st);
out:
    tool_parsed_free(&p);
    return rc;
}

/* ---- issue ------------------------------------------------------------------------------ */

/* Batch mode (claims 9, 16): all requests first, one CA batch, then all writes. */
typedef struct batch {
    tool_report *rep;
    tool_job **jobs;
    tool_token **tokens;
    tool_result *results;
    unsigned char *going; /* job goes on to the CA / the write */
    atomic_size_t nprepared;
} batch;

static size_t token_index(batch *b, tool_token *t)
{
    size_t i = 0;
    while (b->tokens[i] != t)
        i++;
    return i;
}

static void prepare_one(tool_run *run, tool_token *t, tool_result *res, void *user)
{
    batch *b = user;
    size_t i = token_index(b, t);

    b->jobs[i] = tool_job_new(run, t, res);
    if (!b->jobs[i]) {
        res->kind = TOOL_RES_FAILED;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    b->going[i] = (unsigned char)tool_job_prepare(b->jobs[i]);
}

/* Tokens that stop before the CA (failed, already done) are reported at once;
 * the others show as requests ready. */
static void prepared(tool_result *res, void *user)
{
    batch *b = user;
    size_t i = (size_t)(res - b->results);
    if (!b->going[i]) {
        tool_report_token(b->rep, res);
        return;
    }
    tool_report_step(b->rep, res, "request signed");
    tool_report_phase(b->rep, "requests signed", atomic_fetch_add(&b->nprepared, 1) + 1,
                      b->rep->total);
}

static void finish_one(tool_run *run, tool_token *t, tool_result *scratch, void *user)
{
    batch *b = user;
    size_t i = token_index(b, t);
    double t0 = tool_now_ms();

    (void)run;
    (void)scratch;
    tool_job_finish(b->jobs[i]);
    b->results[i].ms += tool_now_ms() - t0;
    tool_report_token(b->rep, &b->results[i]);
}

static void issue_batch(tool_session *s, tool_token **tokens, size_t n, int jobs,
                        tool_result *results, tool_report *rep)
{
    batch b = {.rep = rep, .tokens = tokens, .results = results};
    atomic_init(&b.nprepared, 0);
    tool_token **next = calloc(n ? n : 1, sizeof *next);
    tool_result *scratch = calloc(n ? n : 1, sizeof *scratch);
    tool_ca_item *items = calloc(n ? n : 1, sizeof *items);
    size_t *who = calloc(n ? n : 1, sizeof *who);
    size_t i, k = 0, m = 0;

    b.jobs = calloc(n ? n : 1, sizeof *b.jobs);
    b.going = calloc(n ? n : 1, 1);
    if (!next || !scratch || !items || !who || !b.jobs || !b.going) {
        tool_err("out of memory");
        goto out;
    }
    /* Steps 3-7 on every token, in parallel. */
    tool_station_run(&s->run, tokens, n, jobs, prepare_one, &b, results, prepared);
    /* Steps 8-10: every request to the CA together. */
    for (i = 0; i < n; i++) {
        if (!b.going[i] || !tool_job_item(b.jobs[i], &items[k]))
            continue;
        who[k++] = i;
    }
    if (k)
        tool_ca_issue_batch(s->run.ca, items, k);
    for (i = 0; i < k; i++) {
        if (items[i].cert)
            tool_report_step(rep, &results[who[i]], "certificate issued");
        tool_job_set_cert(b.jobs[who[i]], items[i].cert, items[i].error);
        items[i].cert = NULL;
    }
    /* Steps 11-12 on every token that has a certificate to take. */
    for (i = 0; i < n; i++)
        if (b.going[i])
            next[m++] = tokens[i];
    tool_station_run(&s->run, next, m, jobs, finish_one, &b, scratch, NULL);
out:
    for (i = 0; b.jobs && i < n; i++)
        tool_job_free(b.jobs[i]);
    free(b.jobs);
    free(b.going);
    free(next);
    free(scratch);
    free(items);
    free(who);
}

/* issue and renew: the same batch; renew counts only certificates that do
 * not run out within the window, and marks the ones it replaces superseded. */
static int issue_or_renew(int argc, char **argv, const char *command)
{
    int renew = strcmp(command, "renew") == 0;
    tool_parsed p;
    tool_session s;
    tool_token **tokens = NULL;
    tool_result *results = NULL;
    tool_report rep;
    size_t n = 0;
    int rc;

    if (!tool_parse_command(argc, argv, command, &p, &rc))
        return rc;
    if (p.nargs) {
        tool_err("%s: unexpected argument %s", command, p.args[0]);
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    if (renew && !p.c.all && !p.c.nuris) {
        tool_err("renew: which tokens? --all or --token URI (see tokenmint help renew)");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    rc =
        tool_session_open_tokens(&s, &p.c, TOOL_SESSION_OPERATOR | TOOL_SESSION_CA, 0, &tokens, &n);
    if (rc != TOOL_EXIT_OK)
        goto out;
    s.run.renew = renew;
    s.run.renew_within = (p.within < 0 ? 30LL : (long long)p.within) * 86400LL;
    s.run.retire_old = p.retire_old;
    s.run.rekey = p.rekey;
    rc = tool_session_precheck(&s, tokens, n, 1);
    if (rc != TOOL_EXIT_OK)
        goto out;
    /* Batch mode: every token's prepare ends in tool_job_prepare, which
     * passes it on, so an untested PIN may go to the tokens in order. */
    tool_pin_expect(&s.pin, tokens, n);
    results = calloc(n ? n : 1, sizeof *results);
    tool_report_init(&rep, p.c.json, n);
    tool_report_sorted(&rep);
    issue_batch(&s, tokens, n, p.c.jobs ? p.c.jobs : tool_default_jobs(n), results, &rep);
    tool_report_summary(&rep, results, n);
    rc = tool_results_rc(results, n);
    if (n == 0)
        tool_err("no tokens to %s", command);
out:
    free(results);
    free(tokens);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}

int tool_cmd_issue(int argc, char **argv)
{
    return issue_or_renew(argc, argv, "issue");
}

int tool_cmd_renew(int argc, char **argv)
{
    return issue_or_renew(argc, argv, "renew");
}

/* ---- csr / write ------------------------------------------------------------------------- */

typedef struct csr_out {
    pthread_mutex_t mu;
} csr_out;

static void csr_one(tool_run *run, tool_token *t, tool_result *res, void *user)
{
    csr_out *o = user;
    X509_REQ *req = tool_pipeline_request(run, t, res);

    if (req) {
        pthread_mutex_lock(&o->mu);
        PEM_write_X509_REQ(stdout, req);
        fflush(stdout);
        pthread_mutex_unlock(&o->mu);
        X509_REQ_free(req);
    } else {
        tool_err("%s: step %d: %s", res->serial, res->step, res->error);
    }
}

int tool_cmd_csr(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_token **tokens = NULL;
    csr_out o;
    size_t n = 0;
    int rc;

    if (!tool_parse_command(argc, argv, "csr", &p, &rc))
        return rc;
    rc = tool_session_open_tokens(&s, &p.c, TOOL_SESSION_OPERATOR, 1, &tokens, &n);
    if (rc != TOOL_EXIT_OK)
        goto out;
    rc = tool_session_precheck(&s, tokens, n, 1);
    if (rc != TOOL_EXIT_OK)
        goto out;
    pthread_mutex_init(&o.mu, NULL);
    rc = tool_station_run_all(&s.run, tokens, n, p.c.jobs, csr_one, &o, NULL);
    pthread_mutex_destroy(&o.mu);
out:
    free(tokens);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}

static int load_certs(const char *path, STACK_OF(X509) * out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    X509 *x;
    int n = 0;

    if (!f) {
        tool_err("%s: cannot open", path);
        return -1;
    }
    /* PEM reading skips text around the blocks (`openssl ca` output has some). */
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(out, x);
        n++;
    }
    ERR_clear_error();
    if (n == 0) {
        /* maybe one DER certificate */
        rewind(f);
        x = d2i_X509_fp(f, NULL);
        if (x) {
            sk_X509_push(out, x);
            n++;
        }
    }
    if (f != stdin)
        fclose(f);
    if (n == 0)
        tool_err("%s: no certificate (PEM or DER) found", path);
    return n ? n : -1;
}

int tool_cmd_write(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    STACK_OF(X509) *certs = NULL;
    X509_STORE *roots = NULL;
    tool_report rep;
    int rc, i;

    /* the stack only once it is needed: --help and usage errors return early */
    if (!tool_parse_command(argc, argv, "write", &p, &rc))
        return rc;
    if (p.nargs == 0) {
        tool_err("write: name certificate files (or - for stdin)");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    if ((certs = sk_X509_new_null()) == NULL) {
        tool_err("out of memory");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    for (i = 0; i < p.nargs; i++)
        if (load_certs(p.args[i], certs) < 0) {
            tool_parsed_free(&p);
            sk_X509_pop_free(certs, X509_free);
            return TOOL_EXIT_USAGE;
        }
    rc = tool_session_open(&s, &p.c, TOOL_SESSION_OPERATOR);
    if (rc != TOOL_EXIT_OK)
        goto out;
    if ((p.root || p.c.ca_dir) && !(roots = tool_root_store(p.root, p.c.ca_dir))) {
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    tool_report_init(&rep, p.c.json, sk_X509_num(certs));
    for (i = 0; i < sk_X509_num(certs); i++) {
        tool_result res;
        double t0 = tool_now_ms();
        if (!tool_pipeline_write(&s.run, sk_X509_value(certs, i), roots, &res))
            rc = TOOL_EXIT_SOME_FAILED;
        res.ms = tool_now_ms() - t0;
        tool_report_token(&rep, &res);
    }
out:
    X509_STORE_free(roots);
    sk_X509_pop_free(certs, X509_free);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}

/* ---- operator hash -------------------------------------------------------------------------- */

int tool_cmd_operator_hash(int argc, char **argv)
{
    char pass[256], out[300], err[300];
    size_t len = 0;
    tool_parsed p;
    int ok, rc;

    if (!tool_parse_command(argc - 1, argv + 1, "operator hash", &p, &rc))
        return rc;
    ok = p.c.operator_pass
             ? tool_secret_read(p.c.operator_pass, NULL, "passphrase", pass, sizeof pass, &len, err,
                                sizeof err)
             : tool_prompt_secret("New operator passphrase: ", pass, sizeof pass, &len);
    tool_parsed_free(&p);
    if (!ok) {
        tool_err("%s", p.c.operator_pass ? err : "no passphrase (no terminal?)");
        return TOOL_EXIT_USAGE;
    }
    ok = tool_operator_hash(pass, out, sizeof out);
    OPENSSL_cleanse(pass, sizeof pass);
    if (!ok) {
        tool_err("scrypt failed");
        return TOOL_EXIT_USAGE;
    }
    printf("passphrase = %s\n", out);
    return 0;
}

/* `tokenmint help [COMMAND]` */
int tool_cmd_help(int argc, char **argv)
{
    const tool_command *cmd;
    tool_parsed p;
    char name[128];
    int rc = TOOL_EXIT_OK;

    if (!tool_parse_command(argc, argv, "help", &p, &rc))
        return rc;
    if (p.nargs == 0) {
        tool_usage(stdout);
        goto out;
    }
    snprintf(name, sizeof name, "%s%s%s", p.args[0], p.nargs > 1 ? " " : "",
             p.nargs > 1 ? p.args[1] : "");
    cmd = p.nargs <= 2 ? tool_command_find(name) : NULL;
    if (!cmd) {
        tool_err("help: no command \"%s\" (see tokenmint help)", name);
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    tool_command_help(stdout, cmd);
out:
    tool_parsed_free(&p);
    return rc;
}

int tool_cmd_completion(int argc, char **argv)
{
    tool_parsed p;
    int rc;

    if (!tool_parse(argc, argv, "completion", &p))
        return TOOL_EXIT_USAGE;
    if (p.help)
        rc = TOOL_EXIT_OK;
    else if (p.nargs != 1 || strcmp(p.args[0], "bash") != 0) {
        tool_err("completion: say which shell: tokenmint completion bash");
        rc = TOOL_EXIT_USAGE;
    } else {
        rc = tool_completion_bash(stdout);
    }
    tool_parsed_free(&p);
    return rc;
}

int main(int argc, char **argv)
{
    const tool_command *cmd = NULL;
    char name[128];

    /* `tokenmint csr | head` must end with EPIPE between tokens, not a kill mid-token. */
    signal(SIGPIPE, SIG_IGN);
    tm_profile_set_debug_sink(p11c_debug_prefixed);
    if (argc < 2) {
        tool_usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tool_usage(stdout);
        return TOOL_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tokenmint %s\n", TOOL_VERSION);
        return TOOL_EXIT_OK;
    }
    /* two-word commands first ("ca init"), then one word */
    if (argc > 2) {
        snprintf(name, sizeof name, "%s %s", argv[1], argv[2]);
        cmd = tool_command_find(name);
    }
    if (!cmd && (cmd = tool_command_find(argv[1])) == NULL) {
        const tool_command *c;
        size_t n = strlen(argv[1]);
        for (c = tool_commands; c->name; c++)
            if (strncmp(c->name, argv[1], n) == 0 && c->name[n] == ' ') {
                tool_err("%s: which one? (see tokenmint help)", argv[1]);
                tool_usage(stderr);
                return TOOL_EXIT_USAGE;
            }
        tool_err("unknown command \"%s\"", argv[1]);
        tool_usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
