/*
 * `tokenmint relay`: the patent's secure relay (claim 18) as a CMP RA. It
 * serves CMP to stations like `ca serve` does, and for each request:
 *
 *   1. proof of possession: the PKCS#10 signature verifies with the public
 *      key the request carries (checked in server.c before any backend
 *      runs; refused with failInfo badPOP),
 *   2. the token serial the request names (the profile binding) lies in
 *      --serial-range LO-HI (else failInfo badRequest, the statusString
 *      naming the serial and the range),
 *   3. forwards the request upstream as a new CMP transaction protected with
 *      the relay's own credentials, and hands the CA's answer back.
 *
 * Serials compare with tool_cmp_serial_cmp (serial.c).
 */
#include "cli/cli.h"
#include "cmp/cmp.h"
#include "ca/castore.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>

typedef struct relay_be {
    const tm_profile *prof;
    char lo[TM_SERIAL_TEXT_MAX + 1], hi[TM_SERIAL_TEXT_MAX + 1];
    tool_cmp_client_opts up;
} relay_be;

static int relay_issue(void *ctx, const tool_cmp_req *r, tool_cmp_answer *ans)
{
    relay_be *be = ctx;
    tm_violations *v = tm_violations_new();
    tm_binding b;
    char why[400];
    int fi = -1, ok = 0;

    if (!v) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
        snprintf(ans->text, sizeof ans->text, "out of memory");
        return 0;
    }
    if (!r->p10) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badRequest;
        snprintf(ans->text, sizeof ans->text,
                 "the relay forwards PKCS#10 requests (p10cr) only: it must check the "
                 "token's own signature");
        goto out;
    }
    /* Belt and braces: server.c has verified the signature already. */
    if (X509_REQ_verify((X509_REQ *)r->p10, r->pub) != 1) {
        ERR_clear_error();
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badPOP;
        snprintf(ans->text, sizeof ans->text,
                 "relay: the request's signature does not verify with its public key");
        goto out;
    }
    memset(&b, 0, sizeof b);
    if (!tm_binding_from_req(be->prof, r->p10, &b, v)) {
        tm_violations_join(v, why, sizeof why);
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badRequest;
        snprintf(ans->text, sizeof ans->text, "relay: the request names no token serial: %s", why);
        goto out;
    }
    if (tool_cmp_serial_cmp(b.serial_text, be->lo) < 0 ||
        tool_cmp_serial_cmp(b.serial_text, be->hi) > 0) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badRequest;
        snprintf(ans->text, sizeof ans->text,
                 "relay: token serial %.140s is outside the serial range %.140s-%.140s",
                 b.serial_text, be->lo, be->hi);
        goto out;
    }
    ans->cert = tool_cmp_client_p10cr(&be->up, r->p10, &fi, ans->text, sizeof ans->text);
    if (!ans->cert) {
        ans->failinfo = fi >= 0 ? fi : OSSL_CMP_PKIFAILUREINFO_systemUnavail;
        goto out;
    }
    snprintf(ans->token, sizeof ans->token, "%s", b.serial_text);
    snprintf(ans->purpose, sizeof ans->purpose, "%s", b.purpose[0] ? b.purpose : "-");
    ok = 1;
out:
    tm_violations_free(v);
    return ok;
}

/* rr (issue 12): the same checks as for p10cr, on the certificate that
 * signed the rr (server.c made sure it is the one revoked and chains to
 * --trusted): it names a token in the serial range. Then the relay asks
 * the CA itself. A PBMAC rr (no token signature to check) is refused. */
static int relay_revoke(void *ctx, const X509_NAME *issuer, const ASN1_INTEGER *serial,
                        X509 *signer, tool_cmp_answer *ans)
{
    relay_be *be = ctx;
    tm_binding b;
    int fi = -1;

    ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badRequest;
    memset(&b, 0, sizeof b);
    if (!signer || !tool_cmp_cert_is(signer, issuer, serial)) {
        snprintf(ans->text, sizeof ans->text,
                 "relay: an rr is forwarded only when signed with the certificate it revokes");
        return 0;
    }
    if (!tm_binding_from_cert(be->prof, signer, &b, NULL)) {
        snprintf(ans->text, sizeof ans->text, "relay: the certificate names no token serial");
        return 0;
    }
    if (tool_cmp_serial_cmp(b.serial_text, be->lo) < 0 ||
        tool_cmp_serial_cmp(b.serial_text, be->hi) > 0) {
        snprintf(ans->text, sizeof ans->text,
                 "relay: token serial %.140s is outside the serial range %.140s-%.140s",
                 b.serial_text, be->lo, be->hi);
        return 0;
    }
    if (!tool_cmp_client_rr(&be->up, signer, &fi, ans->text, sizeof ans->text)) {
        ans->failinfo = fi >= 0 ? fi : OSSL_CMP_PKIFAILUREINFO_systemUnavail;
        return 0;
    }
    {
        char *sn = tool_cs_serial_hex(serial);
        snprintf(ans->token, sizeof ans->token, "%.80s (token %.100s)", sn ? sn : "?",
                 b.serial_text);
        OPENSSL_free(sn);
    }
    return 1;
}

/* kur (issue 12): the same checks as for p10cr, on the certificate that
 * signed the kur (the handler made sure it is the one oldCertID names and
 * that it chains to --trusted): it names a token in the serial range, and
 * the new certificate's template names that same token. The request then
 * goes to the CA unchanged (relay_forward): the relay has not the token's
 * old key to sign a kur of its own. */
static int relay_kur_check(void *ctx, const tool_cmp_req *r, tool_cmp_answer *ans)
{
    relay_be *be = ctx;
    tm_binding ob, nb;

    ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badRequest;
    memset(&ob, 0, sizeof ob);
    memset(&nb, 0, sizeof nb);
    if (!r->old_cert || !tm_binding_from_cert(be->prof, r->old_cert, &ob, NULL)) {
        snprintf(ans->text, sizeof ans->text,
                 "relay: the certificate that signed the kur names no token serial");
        return 0;
    }
    if (tool_cmp_serial_cmp(ob.serial_text, be->lo) < 0 ||
        tool_cmp_serial_cmp(ob.serial_text, be->hi) > 0) {
        snprintf(ans->text, sizeof ans->text,
                 "relay: token serial %.140s is outside the serial range %.140s-%.140s",
                 ob.serial_text, be->lo, be->hi);
        return 0;
    }
    if (!r->tmpl || !tm_binding_from_req(be->prof, r->tmpl, &nb, NULL) ||
        !tm_binding_names_serial(&nb, ob.serial, ob.serial_len)) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        snprintf(ans->text, sizeof ans->text,
                 "relay: the kur's new certificate must name the token of the one it updates "
                 "(%.140s)",
                 ob.serial_text);
        return 0;
    }
    snprintf(ans->token, sizeof ans->token, "%s", ob.serial_text);
    return 1;
}

/* One DER PKIMessage to the CA and its answer's DER back, unchanged. */
static int relay_forward(void *ctx, const unsigned char *der, size_t len, unsigned char **out,
                         size_t *outlen, char *err, size_t errlen)
{
    relay_be *be = ctx;
    char *host = NULL, *port = NULL, *path = NULL, e[256];
    BIO *req = NULL, *rsp = NULL;
    BUF_MEM *bm = NULL;
    int ssl = 0, ok = 0;

    *out = NULL;
    *outlen = 0;
    if (!OSSL_HTTP_parse_url(be->up.url, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL) ||
        ssl) {
        snprintf(err, errlen, "relay: upstream %s: not an http:// URL", be->up.url);
        goto out;
    }
    req = BIO_new_mem_buf(der, (int)len);
    if (!req) {
        snprintf(err, errlen, "relay: out of memory");
        goto out;
    }
    rsp = OSSL_HTTP_transfer(NULL, host, port, path, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL,
                             "application/pkixcmp", req, "application/pkixcmp", 1,
                             TOOL_CMP_MAX_BODY_DEFAULT * 4, be->up.timeout, 0);
    if (!rsp || BIO_get_mem_ptr(rsp, &bm) <= 0 || !bm || !bm->length) {
        snprintf(err, errlen, "relay: forwarding the kur to %s failed: %s", be->up.url,
                 tool_ossl_err(e, sizeof e));
        goto out;
    }
    *out = malloc(bm->length);
    if (!*out) {
        snprintf(err, errlen, "relay: out of memory");
        goto out;
    }
    memcpy(*out, bm->data, bm->length);
    *outlen = bm->length;
    ok = 1;
out:
    ERR_clear_error();
    BIO_free(req);
    BIO_free(rsp);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return ok;
}

static int parse_range(const char *s, relay_be *be)
{
    const char *dash = strchr(s, '-');
    size_t l;
    if (!dash || dash == s || !dash[1] || strchr(dash + 1, '-'))
        return 0;
    l = (size_t)(dash - s);
    if (l > TM_SERIAL_TEXT_MAX || strlen(dash + 1) > TM_SERIAL_TEXT_MAX)
        return 0;
    memcpy(be->lo, s, l);
    be->lo[l] = 0;
    snprintf(be->hi, sizeof be->hi, "%s", dash + 1);
    return tool_cmp_serial_cmp(be->lo, be->hi) <= 0;
}

int tool_cmd_relay(int argc, char **argv)
{
    const char *range = NULL, *upstream = NULL;
    char err[600];
    int taken, rc = TOOL_EXIT_USAGE, parsed = 0;
    tool_parsed p;
    size_t i;
    relay_be be;
    tool_cmp_backend backend;
    tool_cmp_srv_opts so;
    tool_cmp_front f;
    X509_NAME *name = NULL;

    memset(&be, 0, sizeof be);
    memset(&so, 0, sizeof so);
    tool_cmp_front_init(&f, "relay");
    if (!tool_parse(argc, argv, "relay", &p))
        goto out;
    parsed = 1;
    if (p.help) {
        rc = TOOL_EXIT_OK;
        goto out;
    }
    for (i = 0; i < p.ngiven; i++) {
        const char *upname = NULL, *optarg = p.given[i].value;
        int o = p.given[i].code == O_PROFILE ? TOOL_FRONT_PROFILE : p.given[i].code;
        if ((taken = tool_cmp_front_opt(&f, o, optarg)) != 0) {
            if (taken < 0)
                goto out;
            continue;
        }
        switch (o) {
        case O_UPSTREAM:
            upstream = optarg;
            break;
        case O_RANGE:
            range = optarg;
            break;
        case O_UP_SECRET:
            upname = "secret-source";
            break;
        case O_UP_REF:
            upname = "ref";
            break;
        case O_UP_CERT:
            upname = "cert";
            break;
        case O_UP_KEY:
            upname = "key";
            break;
        case O_UP_SRVCERT:
            upname = "srvcert";
            break;
        case O_UP_TRUSTED:
            upname = "trusted";
            break;
        }
        if (upname && !tool_cmp_client_opt(&be.up, upname, optarg, err, sizeof err)) {
            tool_err("relay: --upstream-%s: %s", upname, err);
            goto out;
        }
    }
    if (p.nargs || !f.listen || !upstream || !range) {
        tool_err("relay: --listen, --upstream and --serial-range are required (see tokenmint "
                 "help relay)");
        goto out;
    }
    if (!parse_range(range, &be)) {
        tool_err("relay: --serial-range %s: expected LO-HI with LO <= HI", range);
        goto out;
    }
    if (!be.up.secret_len && !(be.up.cert && be.up.key)) {
        tool_err("relay: protect upstream messages with --upstream-secret-source or "
                 "--upstream-cert/--upstream-key");
        goto out;
    }
    if (!tool_cmp_front_check(&f) || !tool_cmp_front_load(&f, NULL, &so))
        goto out;
    be.up.url = upstream;
    be.up.timeout = 120;
    be.prof = f.prof;
    so.log_name = "tokenmint relay";
    name = X509_NAME_new();
    if (name)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)"tokenmint relay", -1, -1, 0);
    so.name = name;
    memset(&backend, 0, sizeof backend);
    backend.ctx = &be;
    backend.issue = relay_issue;
    backend.revoke = relay_revoke;
    backend.kur_check = relay_kur_check;
    backend.forward = relay_forward;
    rc = tool_cmp_front_run(&f, &so, &backend);
out:
    if (parsed)
        tool_parsed_free(&p);
    X509_NAME_free(name);
    tool_cmp_client_opts_clear(&be.up);
    tool_cmp_front_clear(&f);
    return rc;
}
