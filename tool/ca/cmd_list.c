/*
 * `tokenmint ca list DIR` and `tokenmint ca show DIR SERIAL`: the CA's
 * records, read from its database (after taking in what stock openssl ca
 * added to the directory, as every open of the CA does).
 */
#include "ca/ca.h"
#include "ca/castore.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/pem.h>
#include <p11-kit/uri.h>

static const struct {
    char code;
    const char *name;
} statuses[] = {{'V', "valid"}, {'R', "revoked"}, {'E', "expired"}, {'S', "superseded"}};

static const char *status_name(char c)
{
    size_t i;
    for (i = 0; i < sizeof statuses / sizeof *statuses; i++)
        if (statuses[i].code == c)
            return statuses[i].name;
    return "unknown";
}

static void iso(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tmv;
    gmtime_r(&tt, &tmv);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* The token serial, in the records' text form, of a pkcs11: token URI. */
static int token_of_uri(const char *uri, char *out, size_t outlen)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_TOKEN_INFO *ti;
    unsigned char raw[TM_SERIAL_MAX];
    size_t n;
    int ok = 0;

    if (u && p11_kit_uri_parse(uri, P11_KIT_URI_FOR_TOKEN, u) == P11_KIT_URI_OK &&
        (ti = p11_kit_uri_get_token_info(u)) != NULL) {
        n = tm_serial_trim(ti->serialNumber, sizeof ti->serialNumber, raw, sizeof raw);
        ok = n > 0 && tm_serial_encode(raw, n, out, outlen) > 0;
    }
    p11_kit_uri_free(u);
    return ok;
}

typedef struct lctx {
    int json;
    size_t n;
} lctx;

static json_object *record_json(const tool_cs_record *r)
{
    json_object *o = json_object_new_object();
    char t[32];

    json_object_object_add(o, "serial", json_object_new_string(r->serial));
    json_object_object_add(o, "status", json_object_new_string(status_name(r->status)));
    json_object_object_add(o, "token", json_object_new_string(r->token));
    json_object_object_add(o, "purpose", json_object_new_string(r->purpose));
    json_object_object_add(o, "operator", json_object_new_string(r->operator_id));
    json_object_object_add(o, "origin", json_object_new_string(r->origin));
    json_object_object_add(o, "subject", json_object_new_string(r->subject));
    json_object_object_add(o, "spki_sha256", json_object_new_string(r->spki));
    iso(r->issued_at, t);
    json_object_object_add(o, "issued_at", json_object_new_string(t));
    iso(r->not_after, t);
    json_object_object_add(o, "not_after", json_object_new_string(t));
    if (r->status == TOOL_CS_REVOKED) {
        iso(r->revoked_at, t);
        json_object_object_add(o, "revoked_at", json_object_new_string(t));
        if (tool_cs_reason_name(r->reason))
            json_object_object_add(o, "reason",
                                   json_object_new_string(tool_cs_reason_name(r->reason)));
    }
    if (r->status == TOOL_CS_SUPERSEDED)
        json_object_object_add(o, "superseded_by", json_object_new_string(r->superseded_by));
    return o;
}

static int print_one(const tool_cs_record *r, void *user)
{
    lctx *c = user;
    char na[32];

    c->n++;
    if (c->json) {
        json_object *o = record_json(r);
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return 1;
    }
    iso(r->not_after, na);
    printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->serial, status_name(r->status), r->token,
           r->purpose, r->operator_id, r->origin, na, r->subject);
    return 1;
}

static int show_one(const tool_cs_record *r, int json)
{
    X509 *x = tool_cs_record_cert(r);
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL, t[32];
    long l = 0;

    if (x && b && PEM_write_bio_X509(b, x))
        l = BIO_get_mem_data(b, &pem);
    if (json) {
        json_object *o = record_json(r);
        json_object_object_add(o, "certificate",
                               json_object_new_string_len(pem ? pem : "", (int)l));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
        json_object_put(o);
    } else {
        printf("serial:      %s\nstatus:      %s\n", r->serial, status_name(r->status));
        if (r->status == TOOL_CS_REVOKED) {
            iso(r->revoked_at, t);
            printf("revoked:     %s%s%s\n", t, tool_cs_reason_name(r->reason) ? ", " : "",
                   tool_cs_reason_name(r->reason) ? tool_cs_reason_name(r->reason) : "");
        }
        if (r->status == TOOL_CS_SUPERSEDED)
            printf("superseded by: %s\n", r->superseded_by);
        printf("token:       %s\npurpose:     %s\noperator:    %s\norigin:      %s\n", r->token,
               r->purpose, r->operator_id, r->origin);
        printf("subject:     %s\nkey SHA-256: %s\n", r->subject, r->spki);
        iso(r->issued_at, t);
        printf("issued:      %s\n", t);
        iso(r->not_after, t);
        printf("not after:   %s\n%.*s", t, (int)l, pem ? pem : "");
    }
    BIO_free(b);
    X509_free(x);
    return x ? 1 : 0;
}

/* argv[0] "ca", argv[1] "list" or "show" */
int tool_cmd_ca_list(int argc, char **argv)
{
    int show = strcmp(argv[1], "show") == 0, rc = TOOL_EXIT_USAGE, code;
    tool_parsed p;
    size_t k;
    const char *db = NULL;
    char tok[TM_SERIAL_TEXT_MAX + 1], err[700];
    tool_cs_filter f;
    lctx c = {0, 0};
    tm_profile *prof = NULL;
    tool_crypto cr;
    tool_ca *ca = NULL;
    size_t i;

    memset(&f, 0, sizeof f);
    argc--;
    argv++;
    if (!tool_parse_command(argc, argv, show ? "ca show" : "ca list", &p, &rc))
        return rc;
    for (k = 0; k < p.ngiven; k++) {
        const char *optarg = p.given[k].value;
        switch (p.given[k].code) {
        case O_TOKEN:
            if (show || !token_of_uri(optarg, tok, sizeof tok)) {
                tool_err("ca %s: --token %s: %s", argv[0], optarg,
                         show ? "does not apply to show"
                              : "not a pkcs11: token URI with a serial (pkcs11:serial=...)");
                tool_parsed_free(&p);
                return TOOL_EXIT_USAGE;
            }
            f.token = tok;
            break;
        case O_SERIAL:
            f.serial = optarg;
            break;
        case O_STATUS:
            for (i = 0; i < sizeof statuses / sizeof *statuses; i++)
                if (strcmp(optarg, statuses[i].name) == 0)
                    f.status = statuses[i].code;
            if (!f.status) {
                tool_err("ca list: --status %s: one of valid, revoked, expired, superseded",
                         optarg);
                tool_parsed_free(&p);
                return TOOL_EXIT_USAGE;
            }
            break;
        case O_JSON:
            c.json = 1;
            break;
        case O_DB:
            db = optarg;
            break;
        }
    }
    /* show: SERIAL or --serial S, the same thing; two different ones is a
     * mistake, not a choice to make for the user. */
    if (show && p.nargs == 2 && f.serial && strcmp(f.serial, p.args[1]) != 0) {
        tool_err("ca show: SERIAL %s and --serial %s differ: give one", p.args[1], f.serial);
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    if (show ? !(p.nargs == 2 || (p.nargs == 1 && f.serial)) : p.nargs != 1) {
        tool_err("ca %s: %s (see tokenmint help ca %s)", argv[0],
                 show ? "a CA directory and a serial (SERIAL or --serial S) expected"
                      : "one CA directory expected",
                 argv[0]);
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    prof = tm_profile_load(NULL, NULL);
    tool_crypto_open(&cr, NULL);
    ca = prof ? tool_ca_open_records(p.args[0], db, prof, &cr, err, sizeof err) : NULL;
    if (!ca) {
        tool_err("ca %s: %s", argv[0], prof ? err : "the default profile does not load");
        rc = 1;
        goto out;
    }
    if (show) {
        tool_cs_record r;
        memset(&r, 0, sizeof r);
        code = tool_castore_find_serial(tool_ca_store(ca), p.nargs == 2 ? p.args[1] : f.serial, &r);
        if (code == TOOL_CS_OK && show_one(&r, c.json)) {
            rc = TOOL_EXIT_OK;
        } else {
            tool_err("ca show: %s",
                     code == TOOL_CS_NOTFOUND &&
                             !strstr(tool_castore_error(tool_ca_store(ca)), "hexadecimal")
                         ? "no certificate with that serial"
                         : tool_castore_error(tool_ca_store(ca)));
            rc = 1;
        }
        tool_cs_record_clear(&r);
        goto out;
    }
    code = tool_castore_list(tool_ca_store(ca), &f, print_one, &c);
    if (code != TOOL_CS_OK) {
        tool_err("ca list: %s", tool_castore_error(tool_ca_store(ca)));
        rc = 1;
        goto out;
    }
    rc = TOOL_EXIT_OK;
out:
    tool_parsed_free(&p);
    tool_ca_close(ca);
    tool_crypto_close(&cr);
    tm_profile_free(prof);
    return rc;
}
