/*
 * `tokenmint ca serve DIR --listen ADDR:PORT`: the CA directory of
 * `tokenmint ca init` as a CMP server. Requests are issued through the same
 * tool_ca code as `tokenmint issue --ca DIR` (same flock on DIR/db.lock, same
 * records), so the tool, stock `openssl ca` and this server can share a CA.
 * Concurrent requests reach the CA through its group commit: every request
 * ready at one moment is issued under one lock and one sync, and no response
 * leaves before its certificate is on disk.
 */
#include "ca/ca.h"
#include "cli/cli.h"
#include "ca/castore.h"
#include "ca/ocsp.h"
#include "cmp/cmp.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

typedef struct serve_be {
    tool_ca *ca;
    const tm_profile *prof;
} serve_be;

/* The CA's refusal text, mapped to the CMP failInfo that says the same. */
static int failinfo_of(const char *error)
{
    if (strstr(error, "signature does not verify"))
        return OSSL_CMP_PKIFAILUREINFO_badPOP;
    if (strstr(error, "never bound twice"))
        return OSSL_CMP_PKIFAILUREINFO_duplicateCertReq;
    if (strstr(error, "profile") || strstr(error, "cannot issue"))
        return OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    return OSSL_CMP_PKIFAILUREINFO_systemFailure;
}

/* replaces: the certificate a same-key kur renews (superseded in the insert's
 * transaction); known_only: answer only with a certificate already issued
 * for this key and binding (a kur repeated after its answer was lost). */
static int issue_item(serve_be *be, const tool_cmp_req *r, const char *replaces, int known_only,
                      tool_cmp_answer *ans)
{
    tm_violations *v = tm_violations_new();
    tm_binding b;
    tool_ca_item item;
    char why[400];
    int ok = 0;

    if (!v) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
        snprintf(ans->text, sizeof ans->text, "out of memory");
        return 0;
    }
    /* p10cr: the PKCS#10 request; ir/cr: the CRMF template as an unsigned
     * request. Either way OpenSSL's server code has checked the proof of
     * possession before this callback runs. */
    memset(&b, 0, sizeof b);
    if (!tm_binding_from_req(be->prof, r->p10 ? r->p10 : r->tmpl, &b, v)) {
        tm_violations_join(v, why, sizeof why);
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        snprintf(ans->text, sizeof ans->text, "the %s names no token: %s",
                 r->p10 ? "request" : "certificate template", why);
        goto out;
    }
    memset(&item, 0, sizeof item);
    item.req = (X509_REQ *)(r->p10 ? r->p10 : r->tmpl);
    item.pop_verified = 1;
    item.token_text = b.serial_text;
    item.purpose = b.purpose[0] ? b.purpose : tm_profile_default_purpose(be->prof);
    item.replaces = replaces;
    item.known_only = known_only;
    tool_ca_submit(be->ca, &item);
    if (!item.cert) {
        ans->failinfo =
            item.unavailable ? OSSL_CMP_PKIFAILUREINFO_systemUnavail : failinfo_of(item.error);
        snprintf(ans->text, sizeof ans->text, "%s", item.error[0] ? item.error : "not issued");
        goto out;
    }
    snprintf(ans->token, sizeof ans->token, "%s", b.serial_text);
    snprintf(ans->purpose, sizeof ans->purpose, "%s", item.purpose);
    ans->cert = item.cert;
    ok = 1;
out:
    tm_violations_free(v);
    return ok;
}

static int item_unavailable(const tool_cmp_answer *ans)
{
    return ans->failinfo == OSSL_CMP_PKIFAILUREINFO_systemUnavail;
}

static int serve_issue(void *ctx, const tool_cmp_req *r, tool_cmp_answer *ans)
{
    return issue_item(ctx, r, NULL, 0, ans);
}

/* kur (RFC 9483 4.1.3): a certificate for the token of the one the request
 * updates (the handler checked that certificate signed it), never for
 * another token. A new key: once stored, the old certificate is superseded.
 * The same key (a renewal): the old one is superseded in the transaction
 * that stores the new one, so the key never has two valid certificates.
 * Only a valid certificate is updated; one superseded already gets the
 * certificate that superseded it when the request is for that one's key and
 * token (the answer to an earlier kur was lost), and nothing new. */
static int serve_kur(void *ctx, const tool_cmp_req *r, tool_cmp_answer *ans)
{
    serve_be *be = ctx;
    tm_violations *v = tm_violations_new();
    tm_binding ob, nb;
    char st = 0, err[400], *old_sn = tool_cs_serial_hex(X509_get0_serialNumber(r->old_cert));
    char *new_sn = NULL;
    int64_t at = 0;
    int reason = -1, known, again, same_key, ok = 0;

    ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    memset(&ob, 0, sizeof ob);
    memset(&nb, 0, sizeof nb);
    if (!v || !old_sn) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
        snprintf(ans->text, sizeof ans->text, "out of memory");
        goto out;
    }
    known = tool_ca_status(be->ca, X509_get_issuer_name(r->old_cert),
                           X509_get0_serialNumber(r->old_cert), &st, &at, &reason, err, sizeof err);
    again = known == 1 && st == TOOL_CS_SUPERSEDED;
    if (known != 1 || (st != TOOL_CS_VALID && !again)) {
        ans->failinfo = known == 1 && st == TOOL_CS_REVOKED ? OSSL_CMP_PKIFAILUREINFO_certRevoked
                                                            : OSSL_CMP_PKIFAILUREINFO_badCertId;
        snprintf(ans->text, sizeof ans->text, "certificate %s %s: only a valid one is updated",
                 old_sn,
                 known < 0               ? "has no status here"
                 : known == 0            ? "was not issued by this CA"
                 : st == TOOL_CS_REVOKED ? "is revoked"
                                         : "has expired");
        goto out;
    }
    if (!tm_binding_from_cert(be->prof, r->old_cert, &ob, v) ||
        !tm_binding_from_req(be->prof, r->tmpl, &nb, v) ||
        !tm_binding_names_serial(&nb, ob.serial, ob.serial_len)) {
        snprintf(ans->text, sizeof ans->text,
                 "the new certificate must name the token of the one it updates (%s)",
                 ob.serial_text[0] ? ob.serial_text : "?");
        goto out;
    }
    same_key = r->pub && EVP_PKEY_eq(r->pub, X509_get0_pubkey(r->old_cert)) == 1;
    ans->failinfo = -1;
    if (!issue_item(be, r, same_key ? old_sn : NULL, again, ans)) {
        if (again && !item_unavailable(ans))
            ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertId;
        goto out;
    }
    ok = 1;
    if (same_key || again)
        goto out;
    new_sn = tool_cs_serial_hex(X509_get0_serialNumber(ans->cert));
    if (!new_sn || tool_ca_supersede(be->ca, old_sn, new_sn, err, sizeof err) < 0)
        fprintf(stderr, "tokenmint ca serve: kur: %s issued, but %s not recorded superseded: %s\n",
                new_sn ? new_sn : "?", old_sn, new_sn ? err : "out of memory");
out:
    OPENSSL_free(old_sn);
    OPENSSL_free(new_sn);
    tm_violations_free(v);
    return ok;
}

/* rr: the certificate's own key or the shared secret protected the request
 * (OpenSSL checked that before this). RFC 9483 4.2: one already revoked is
 * refused with certRevoked. */
static int serve_revoke(void *ctx, const X509_NAME *issuer, const ASN1_INTEGER *serial,
                        X509 *signer, tool_cmp_answer *ans)
{
    serve_be *be = ctx;
    char *sn = tool_cs_serial_hex(serial), err[400];
    size_t done = 0, already = 0;
    tm_binding sb;
    int ok = 0;

    if (!sn) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
        snprintf(ans->text, sizeof ans->text, "out of memory");
        return 0;
    }
    /* A token's certificate may revoke itself and nothing else; a trusted
     * certificate bound to no token (an RA's, an operator's) may revoke any. */
    if (signer && !tool_cmp_cert_is(signer, issuer, serial) &&
        tm_binding_from_cert(be->prof, signer, &sb, NULL)) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_notAuthorized;
        snprintf(ans->text, sizeof ans->text,
                 "an rr signed with a token's certificate may revoke only that certificate, "
                 "not %s",
                 sn);
        OPENSSL_free(sn);
        return 0;
    }
    if (X509_NAME_cmp(issuer, X509_get_subject_name(tool_ca_root(be->ca))) != 0) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertId;
        snprintf(ans->text, sizeof ans->text, "certificate %s is not issued by this CA", sn);
    } else if (!tool_ca_revoke(be->ca, NULL, sn, 0, &done, &already, err, sizeof err)) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertId;
        snprintf(ans->text, sizeof ans->text, "%s", err);
    } else if (!done) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_certRevoked;
        snprintf(ans->text, sizeof ans->text, "certificate %s is already revoked", sn);
    } else {
        snprintf(ans->token, sizeof ans->token, "%s", sn);
        ok = 1;
    }
    OPENSSL_free(sn);
    return ok;
}

int tool_cmd_ca_serve(int argc, char **argv)
{
    const char *module = NULL, *db = NULL, *ocsp_cert = NULL, *ocsp_key = NULL, *dir;
    tool_ocsp *ocsp = NULL;
    int deferred = 0, taken, rc = TOOL_EXIT_USAGE;
    tool_parsed p;
    size_t i;
    long defer_ms = 500;
    char err[600], *end;
    tool_crypto cr;
    int have_cr = 0;
    serve_be be = {0};
    tool_cmp_backend backend;
    tool_cmp_srv_opts so;
    tool_cmp_front f;

    /* argv[0] is "ca", argv[1] "serve" */
    argc--;
    argv++;
    memset(&so, 0, sizeof so);
    tool_cmp_front_init(&f, "ca serve");
    if (!tool_parse_command(argc, argv, "ca serve", &p, &rc))
        return rc;
    for (i = 0; i < p.ngiven; i++) {
        int o = p.given[i].code == O_PROFILE ? TOOL_FRONT_PROFILE : p.given[i].code;
        const char *v = p.given[i].value;
        if ((taken = tool_cmp_front_opt(&f, o, v)) != 0) {
            if (taken < 0)
                goto usage;
            continue;
        }
        switch (o) {
        case O_DEFERRED:
            deferred = 1;
            break;
        case O_DEFERMS:
            defer_ms = strtol(v, &end, 10);
            if (!*v || *end || defer_ms < 0 || defer_ms > 3600000) {
                tool_err("ca serve: --defer-ms %s: a number of milliseconds", v);
                goto usage;
            }
            break;
        case O_DB:
            db = v;
            break;
        case O_OCSPCERT:
            ocsp_cert = v;
            break;
        case O_OCSPKEY:
            ocsp_key = v;
            break;
        case O_MODULE:
            module = v;
            break;
        }
    }
    if (p.nargs != 1) {
        tool_err("ca serve: one CA directory expected (see tokenmint help ca serve)");
        goto usage;
    }
    dir = p.args[0];
    tool_parsed_free(&p);
    if (!tool_cmp_front_check(&f))
        return TOOL_EXIT_USAGE;
    tool_crypto_open(&cr, module ? module : getenv("TOKENMINT_MODULE"));
    have_cr = 1;
    if (!tool_cmp_front_load(&f, cr.libctx, &so))
        goto out;
    be.prof = f.prof;
    be.ca = tool_ca_open_db(dir, db, f.prof, &cr, "cmp", err, sizeof err);
    if (!be.ca) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    tool_ca_set_lazy_view(be.ca, 1);
    ocsp = tool_ocsp_new(be.ca, dir, ocsp_cert, ocsp_key, cr.libctx, "tokenmint ca serve", err,
                         sizeof err);
    if (!ocsp) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    f.lim.extra = tool_ocsp_http;
    f.lim.extra_ctx = ocsp;
    so.log_name = "tokenmint ca serve";
    so.name = X509_get_subject_name(tool_ca_root(be.ca));
    so.ca_cert = tool_ca_root(be.ca);
    so.deferred = deferred;
    so.defer_ms = defer_ms;
    so.check_after = 1;
    memset(&backend, 0, sizeof backend);
    backend.ctx = &be;
    backend.issue = serve_issue;
    backend.revoke = serve_revoke;
    backend.kur = serve_kur;
    rc = tool_cmp_front_run(&f, &so, &backend);
out:
    tool_ocsp_free(ocsp);
    tool_ca_close(be.ca);
    tool_cmp_front_clear(&f);
    if (have_cr)
        tool_crypto_close(&cr);
    return rc;
usage:
    tool_parsed_free(&p);
    tool_cmp_front_clear(&f);
    return TOOL_EXIT_USAGE;
}
