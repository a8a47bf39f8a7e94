/*
 * `tokenmint revoke` and `tokenmint ca crl` (issue 12): revocation through
 * the CA interface (ca/ca.h), so the same commands work on any backend that
 * offers it. Revoking is idempotent: a certificate already revoked is
 * reported, not an error; an unknown token or certificate is (exit 1). Each
 * revocation is an audit record when the tool config names an audit log.
 */
#include "ca/ca.h"
#include "ca/castore.h"
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

/* serial= of a pkcs11: URI, percent-decoded, as the profile writes token
 * serials. 0 when the URI names none. */
static int uri_serial(const char *uri, char *out, size_t outlen)
{
    const char *p, *end;
    unsigned char raw[256], trimmed[256];
    size_t n = 0, tl;

    if (strncmp(uri, "pkcs11:", 7) != 0)
        return 0;
    p = uri + 7;
    end = p + strcspn(p, "?");
    while (p < end) {
        size_t l = strcspn(p, ";?");
        if (l > 7 && strncmp(p, "serial=", 7) == 0) {
            const char *v = p + 7, *ve = p + l;
            while (v < ve && n < sizeof raw) {
                if (*v == '%' && ve - v >= 3) {
                    char h[3] = {v[1], v[2], 0};
                    raw[n++] = (unsigned char)strtoul(h, NULL, 16);
                    v += 3;
                } else {
                    raw[n++] = (unsigned char)*v++;
                }
            }
            tl = tm_serial_trim(raw, n, trimmed, sizeof trimmed);
            return tl > 0 && tm_serial_encode(trimmed, tl, out, outlen) > 0;
        }
        p += l + (p[l] == ';');
    }
    return 0;
}

static int open_ca(const char *dir, const char *db, const char *module, tool_crypto *cr,
                   tool_ca **ca, tm_profile **prof, tm_violations **v)
{
    char err[600];

    tool_crypto_open(cr, module ? module : getenv("TOKENMINT_MODULE"));
    *v = tm_violations_new();
    *prof = *v ? tm_profile_load(NULL, *v) : NULL;
    if (!*prof) {
        tool_err("profile: cannot load the built-in profile");
        return 0;
    }
    *ca = tool_ca_open_db(dir, db, *prof, cr, "revoke", err, sizeof err);
    if (!*ca) {
        tool_err("--ca %s: %s", dir, err);
        return 0;
    }
    return 1;
}

int tool_cmd_revoke(int argc, char **argv)
{
    const char *dir = NULL, *db = NULL, *module = NULL, *conf = NULL, *reason_s = NULL;
    const char **tokens = calloc((size_t)argc + 1, sizeof *tokens);
    size_t ntok = 0, i, total = 0, unknown = 0;
    int reason = -1, rc = TOOL_EXIT_USAGE, have_cr = 0, have_p = 0;
    tool_parsed p;
    tool_crypto cr;
    tool_ca *ca = NULL;
    tm_profile *prof = NULL;
    tm_violations *v = NULL;
    tool_config cfg;
    char err[600], serial[TM_SERIAL_TEXT_MAX + 1];

    memset(&cfg, 0, sizeof cfg);
    if (!tokens)
        return TOOL_EXIT_USAGE;
    if (!tool_parse(argc, argv, "revoke", &p))
        goto out;
    have_p = 1;
    if (p.help) {
        rc = TOOL_EXIT_OK;
        goto out;
    }
    for (i = 0; i < p.ngiven; i++) {
        const char *val = p.given[i].value;
        switch (p.given[i].code) {
        case O_TOKEN:
            if (!uri_serial(val, serial, sizeof serial)) {
                tool_err("revoke: --token %s: the URI must name the token by serial= (a lost "
                         "token is not here to be found by other attributes)",
                         val);
                goto out;
            }
            tokens[ntok++] = strdup(serial);
            break;
        case O_SERIAL:
            tokens[ntok++] = strdup(val);
            break;
        case O_CA:
            dir = val;
            break;
        case O_REASON:
            reason_s = val;
            break;
        case O_DB:
            db = val;
            break;
        case O_CONFIG:
            conf = val;
            break;
        case O_MODULE:
            module = val;
            break;
        }
    }
    if (!dir || !reason_s || (ntok == 0) == (p.nargs == 0)) {
        tool_err("revoke: give --ca DIR, --reason R, and either --token/--serial or certificate "
                 "files (see tokenmint help revoke)");
        goto out;
    }
    reason = tool_cs_reason_code(reason_s);
    if (reason < 0 || reason == 8 /* removeFromCRL is for delta CRLs */) {
        tool_err("revoke: --reason %s: not a CRLReason (see tokenmint help revoke)", reason_s);
        goto out;
    }
    if (!conf)
        conf = getenv("TOKENMINT_TOOL_CONF");
    if (conf && *conf && !tool_config_load(conf, &cfg, err, sizeof err)) {
        tool_err("revoke: %s", err);
        goto out;
    }
    have_cr = 1;
    if (!open_ca(dir, db, module, &cr, &ca, &prof, &v))
        goto out;
    rc = TOOL_EXIT_OK;
    /* certificate files: each checked to come from this CA before anything */
    for (i = 0; i < (size_t)p.nargs; i++) {
        const char *path = p.args[i];
        FILE *f = fopen(path, "r");
        X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        char *sn = c ? tool_cs_serial_hex(X509_get0_serialNumber(c)) : NULL;
        size_t done = 0, already = 0;
        if (f)
            fclose(f);
        if (!c) {
            tool_err("revoke: %s: not a PEM certificate", path);
            rc = TOOL_EXIT_USAGE;
        } else if (X509_NAME_cmp(X509_get_issuer_name(c),
                                 X509_get_subject_name(tool_ca_root(ca))) != 0) {
            printf("UNKNOWN  %s: not issued by this CA\n", path);
            unknown++;
        } else if (!tool_ca_revoke(ca, NULL, sn, reason, &done, &already, err, sizeof err)) {
            printf("UNKNOWN  %s: %s\n", path, err);
            unknown++;
        } else {
            printf("%s  certificate %s (%s)\n", done ? "REVOKED" : "ALREADY", sn, reason_s);
            tool_audit_line(&cfg, NULL, "revoke", done ? "revoked" : "already revoked", sn);
            total += done;
        }
        OPENSSL_free(sn);
        X509_free(c);
    }
    for (i = 0; i < ntok; i++) {
        size_t done = 0, already = 0;
        if (!tool_ca_revoke(ca, tokens[i], NULL, reason, &done, &already, err, sizeof err)) {
            printf("UNKNOWN  token %s: %s\n", tokens[i], err);
            unknown++;
            continue;
        }
        printf("%s  token %s: %zu certificate%s revoked (%s), %zu already revoked\n",
               done ? "REVOKED" : "ALREADY", tokens[i], done, done == 1 ? "" : "s", reason_s,
               already);
        snprintf(err, sizeof err, "%zu revoked, %zu already, reason %s", done, already, reason_s);
        tool_audit_line(&cfg, tokens[i], "revoke", done ? "revoked" : "already revoked", err);
        total += done;
    }
    if (rc == TOOL_EXIT_OK && unknown)
        rc = TOOL_EXIT_SOME_FAILED;
out:
    tool_ca_close(ca);
    tm_profile_free(prof);
    tm_violations_free(v);
    tool_config_clear(&cfg);
    if (have_cr)
        tool_crypto_close(&cr);
    for (i = 0; i < ntok; i++)
        free((void *)tokens[i]);
    free(tokens);
    if (have_p)
        tool_parsed_free(&p);
    (void)total;
    return rc;
}

int tool_cmd_ca_crl(int argc, char **argv)
{
    const char *db = NULL, *module = NULL, *outp = NULL, *dir;
    int rc = TOOL_EXIT_USAGE, have_cr = 0;
    tool_parsed p;
    size_t i;
    tool_crypto cr;
    tool_ca *ca = NULL;
    tm_profile *prof = NULL;
    tm_violations *v = NULL;
    X509_CRL *crl = NULL;
    size_t n = 0;
    char err[600];

    /* argv[0] is "ca", argv[1] "crl" */
    if (!tool_parse_command(argc - 1, argv + 1, "ca crl", &p, &rc))
        return rc;
    for (i = 0; i < p.ngiven; i++) {
        const char *val = p.given[i].value;
        switch (p.given[i].code) {
        case O_DB:
            db = val;
            break;
        case O_MODULE:
            module = val;
            break;
        case O_OUT:
            outp = val;
            break;
        }
    }
    if (p.nargs != 1) {
        tool_err("ca crl: one CA directory expected (see tokenmint help ca crl)");
        tool_parsed_free(&p);
        return TOOL_EXIT_USAGE;
    }
    dir = p.args[0];
    have_cr = 1;
    if (!open_ca(dir, db, module, &cr, &ca, &prof, &v))
        goto out;
    crl = tool_ca_crl(ca, &n, err, sizeof err);
    if (!crl) {
        tool_err("ca crl: %s", err);
        goto out;
    }
    if (outp) {
        FILE *f = fopen(outp, "w");
        int ok = f && PEM_write_X509_CRL(f, crl);
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok) {
            tool_err("ca crl: cannot write --out %s", outp);
            goto out;
        }
    }
    {
        const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
        ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        BIGNUM *bn = num ? ASN1_INTEGER_to_BN(num, NULL) : NULL;
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        BIO *b = BIO_new(BIO_s_mem());
        char when[64] = "?";
        if (b && nu && ASN1_TIME_print(b, nu) > 0) {
            int l = BIO_read(b, when, sizeof when - 1);
            when[l > 0 ? l : 0] = 0;
        }
        printf("CRL %s: %zu revoked, next update %s, in %s/crl.pem\n", hex ? hex : "?", n, when,
               dir);
        BIO_free(b);
        OPENSSL_free(hex);
        BN_free(bn);
        ASN1_INTEGER_free(num);
    }
    rc = TOOL_EXIT_OK;
out:
    tool_parsed_free(&p);
    X509_CRL_free(crl);
    tool_ca_close(ca);
    tm_profile_free(prof);
    tm_violations_free(v);
    if (have_cr)
        tool_crypto_close(&cr);
    return rc;
}
