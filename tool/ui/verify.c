/*
 * tokenmint verify: every certificate on every token names its token's
 * serial, matches a key pair there, chains to the root and is inside its
 * validity period.
 */
#include "cli/cli.h"
#include "ui/ui.h"
#include "ca/ca.h"
#include "ca/castore.h"

#include <time.h>

#include <string.h>

#include <json-c/json.h>
#include <openssl/pem.h>

typedef struct verdict {
    int ok;
    int revoked;
    char why[600];
} verdict;

static void add_why(verdict *v, const char *s);

/* Revocation (issue 12): what the CA's records say of the certificate. */
static void check_revocation(tool_ca *ca, X509 *cert, verdict *v)
{
    char st = 0, err[300], msg[400], when[32] = "?";
    int64_t at = 0;
    int reason = -1, known;
    time_t tt;
    struct tm tmv;

    if (!ca)
        return;
    known = tool_ca_status(ca, X509_get_issuer_name(cert), X509_get0_serialNumber(cert), &st, &at,
                           &reason, err, sizeof err);
    if (known < 0) {
        snprintf(msg, sizeof msg, "revocation status unknown: %s", err);
        add_why(v, msg);
        return;
    }
    if (known == 0 || st != TOOL_CS_REVOKED)
        return;
    tt = (time_t)at;
    if (gmtime_r(&tt, &tmv))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    snprintf(msg, sizeof msg, "revoked on %s, reason %s", when,
             reason >= 0 && tool_cs_reason_name(reason) ? tool_cs_reason_name(reason)
                                                        : "unspecified");
    add_why(v, msg);
    v->revoked = 1;
}

static void add_why(verdict *v, const char *s)
{
    size_t l = strlen(v->why), n = strlen(s);
    v->ok = 0;
    if (l && l + 2 < sizeof v->why) {
        memcpy(v->why + l, "; ", 2);
        l += 2;
    }
    if (n > sizeof v->why - 1 - l)
        n = sizeof v->why - 1 - l; /* cut, never overrun */
    memcpy(v->why + l, s, n);
    v->why[l + n] = 0;
}

static void check_cert(tool_session *s, tool_token *t, tool_token_cert *c, tool_token_key *keys,
                       size_t nkeys, X509_STORE *roots, verdict *v)
{
    tm_binding b;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    tm_violations *pv = tm_violations_new();
    char msg[700];
    size_t k;

    v->ok = 1;
    v->revoked = 0;
    v->why[0] = 0;
    if (!tm_binding_from_cert(s->prof, c->cert, &b, NULL)) {
        add_why(v, "names no token serial");
    } else {
        if (!tm_binding_names_serial(&b, t->serial, t->serial_len)) {
            snprintf(msg, sizeof msg, "names serial %s, not this token's", b.serial_text);
            add_why(v, msg);
        }
        /* the same profile checks as the CA and the write path */
        if (pv && tm_profile_check_cert(s->prof, c->cert, pv) > 0) {
            char why[400];
            tm_violations_join(pv, why, sizeof why);
            snprintf(msg, sizeof msg, "outside the profile: %s", why);
            add_why(v, msg);
        }
    }
    tm_violations_free(pv);
    for (k = 0; k < nkeys; k++)
        if (EVP_PKEY_eq(keys[k].pub, X509_get0_pubkey(c->cert)) == 1)
            break;
    if (k == nkeys)
        add_why(v, "matches no key pair on the token");
    /* X509_verify_cert checks the validity period too; say which check failed. */
    if (!ctx || !X509_STORE_CTX_init(ctx, roots, c->cert, NULL) || X509_verify_cert(ctx) != 1) {
        int e = ctx ? X509_STORE_CTX_get_error(ctx) : 0;
        snprintf(msg, sizeof msg, "%s: %s",
                 e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID
                     ? "outside its validity period"
                     : "does not chain to the root",
                 X509_verify_cert_error_string(e));
        add_why(v, msg);
    }
    X509_STORE_CTX_free(ctx);
}

X509_STORE *tool_root_store(const char *root, const char *ca_dir)
{
    char path[4200];
    X509_STORE *st = NULL;
    X509 *r = NULL;
    FILE *f;

    snprintf(path, sizeof path, "%s%s", root ? root : ca_dir, root ? "" : "/ca.pem");
    f = fopen(path, "r");
    if (f) {
        r = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (!r) {
        tool_err("%s: not a PEM certificate", path);
        return NULL;
    }
    st = X509_STORE_new();
    if (st && !X509_STORE_add_cert(st, r)) {
        X509_STORE_free(st);
        st = NULL;
    }
    if (!st)
        tool_err("%s: cannot make a trust store of it", path);
    X509_free(r);
    return st;
}

int tool_cmd_verify(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_token **tokens = NULL;
    X509_STORE *roots = NULL;
    tool_ca *ca = NULL;
    size_t n = 0, i, c, good = 0, bad = 0, bare = 0;
    int rc;

    if (!tool_parse(argc, argv, "verify", &p))
        return TOOL_EXIT_USAGE;
    if (p.help) {
        tool_parsed_free(&p);
        return 0;
    }
    if (!p.root && !p.c.ca_dir) {
        tool_err("verify: name the root with --ca DIR or --root CA.pem");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    if (p.ocsp) {
        char err[600];
        if (!tool_ocsp_url_check(p.ocsp, err, sizeof err)) {
            tool_err("verify: %s", err);
            tool_parsed_free(&p);
            return TOOL_EXIT_USAGE;
        }
    }
    rc = tool_session_open(&s, &p.c, 0);
    if (rc != TOOL_EXIT_OK)
        goto out;
    roots = tool_root_store(p.root, p.c.ca_dir);
    if (!roots) {
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    if (p.c.ca_dir && !p.ocsp) {
        /* the CA's records say what is revoked (tokenmint revoke, openssl ca -revoke) */
        char err[600];
        ca = tool_ca_open_records(p.c.ca_dir, NULL, s.prof, NULL, err, sizeof err);
        if (!ca) {
            tool_err("verify: --ca %s: %s", p.c.ca_dir, err);
            rc = TOOL_EXIT_USAGE;
            goto out;
        }
    }
    if (!tool_session_tokens(&s, &p.c, 1, &tokens, &n)) {
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    for (i = 0; i < n; i++) {
        tool_token *t = tokens[i];
        tool_token_cert *certs = NULL;
        tool_token_key *keys = NULL;
        size_t ncerts = 0, nkeys = 0;
        CK_SESSION_HANDLE h;

        if (s.st.f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
            !tool_token_list_certs(&s.st, h, &certs, &ncerts) ||
            !tool_token_list_keys(&s.st, h, 1, &keys, &nkeys)) {
            printf("BAD   %-16s cannot read the token\n", t->serial_text);
            bad++;
            continue;
        }
        if (ncerts == 0) {
            bare++;
            if (!p.c.json)
                printf("--    %-16s %-10s no certificate\n", t->serial_text, t->label);
        }
        for (c = 0; c < ncerts; c++) {
            verdict v;
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certs[c].cert), NULL);
            char *sn = bn ? BN_bn2hex(bn) : NULL;
            check_cert(&s, t, &certs[c], keys, nkeys, roots, &v);
            if (p.ocsp) {
                char msg[500];
                int revoked = 0;
                /* asked only of a certificate that chains to the root: the
                 * request names its issuer */
                if (v.ok &&
                    !tool_ocsp_check(p.ocsp, certs[c].cert, roots, &revoked, msg, sizeof msg)) {
                    add_why(&v, msg);
                    v.revoked = revoked;
                }
            } else {
                check_revocation(ca, certs[c].cert, &v);
            }
            if (v.ok)
                good++;
            else
                bad++;
            if (p.c.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "serial", json_object_new_string(t->serial_text));
                json_object_object_add(o, "label", json_object_new_string(t->label));
                json_object_object_add(o, "certificate_serial",
                                       json_object_new_string(sn ? sn : ""));
                json_object_object_add(o, "ok", json_object_new_boolean(v.ok));
                json_object_object_add(o, "revoked", json_object_new_boolean(v.revoked));
                if (!v.ok)
                    json_object_object_add(o, "problems", json_object_new_string(v.why));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
            } else {
                printf("%-5s %-16s %-10s cert %s%s%s\n",
                       v.ok        ? "OK"
                       : v.revoked ? "REVOKED"
                                   : "BAD",
                       t->serial_text, t->label, sn ? sn : "?", v.ok ? "" : ": ", v.why);
            }
            OPENSSL_free(sn);
            BN_free(bn);
        }
        tool_token_certs_free(certs, ncerts);
        tool_token_keys_free(keys, nkeys);
        s.st.f->C_CloseSession(h);
    }
    if (!p.c.json)
        printf("\n%zu certificate%s verified, %zu bad, %zu token%s without a certificate\n", good,
               good == 1 ? "" : "s", bad, bare, bare == 1 ? "" : "s");
    if (bad)
        rc = TOOL_EXIT_SOME_FAILED;
out:
    tool_ca_close(ca);
    X509_STORE_free(roots);
    free(tokens);
    tool_session_close(&s);
    tool_parsed_free(&p);
    return rc;
}
