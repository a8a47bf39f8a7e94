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

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static const char *relay_help =
    "usage: tokenmint relay --listen ADDR:PORT --upstream URL --serial-range LO-HI\n"
    "                       [--secret-source FILE [--ref REF]] [--trusted FILE --srv-cert F "
    "--srv-key F]\n"
    "                       [--upstream-secret-source FILE --upstream-ref REF |\n"
    "                        --upstream-cert F --upstream-key F] [--upstream-srvcert F]\n"
    "                       [--upstream-trusted F] [--max-body BYTES] [--port-file F]\n"
    "\n"
    "The patent's relay as a CMP registration authority. Stations send p10cr here\n"
    "(`tokenmint issue --cmp URL`); the relay verifies each request's signature with\n"
    "the public key inside it and that the token serial it names lies in LO-HI,\n"
    "refuses the rest with a CMP error (rejection, failInfo badPOP or badRequest, a\n"
    "statusString saying why), and forwards the rest to the upstream CA as its own\n"
    "CMP transaction, protected with the relay's own credentials.\n"
    "\n"
    "Serials compare as unsigned hex numbers when both are hex digit strings,\n"
    "else as text. Downstream protection options as for `tokenmint ca serve`.\n"
    "  --upstream URL          http://HOST:PORT/PATH of the CA (`tokenmint ca serve`)\n"
    "  --upstream-secret-source FILE, --upstream-ref REF   PBMAC towards the CA\n"
    "  --upstream-cert F, --upstream-key F                 or signature towards the CA\n"
    "  --upstream-srvcert F, --upstream-trusted F          to check the CA's signatures\n"
    "  --profile FILE          certificate profile (to read the serial; default: built "
    "in)\n" TOOL_CMP_LIMITS_HELP;

enum {
    R_UPSTREAM = 3000,
    R_RANGE,
    R_UP_SECRET,
    R_UP_REF,
    R_UP_CERT,
    R_UP_KEY,
    R_UP_SRVCERT,
    R_UP_TRUSTED,
    R_HELP,
};

static const struct option relay_opts[] = {
    TOOL_CMP_FRONT_OPTIONS,
    {"upstream", required_argument, 0, R_UPSTREAM},
    {"serial-range", required_argument, 0, R_RANGE},
    {"upstream-secret-source", required_argument, 0, R_UP_SECRET},
    {"upstream-ref", required_argument, 0, R_UP_REF},
    {"upstream-cert", required_argument, 0, R_UP_CERT},
    {"upstream-key", required_argument, 0, R_UP_KEY},
    {"upstream-srvcert", required_argument, 0, R_UP_SRVCERT},
    {"upstream-trusted", required_argument, 0, R_UP_TRUSTED},
    {"help", no_argument, 0, R_HELP},
    {0, 0, 0, 0},
};

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
    int o, taken, rc = TOOL_EXIT_USAGE;
    relay_be be;
    tool_cmp_backend backend;
    tool_cmp_srv_opts so;
    tool_cmp_front f;
    X509_NAME *name = NULL;

    memset(&be, 0, sizeof be);
    memset(&so, 0, sizeof so);
    tool_cmp_front_init(&f, "relay");
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", relay_opts, NULL)) != -1) {
        const char *upname = NULL;
        if ((taken = tool_cmp_front_opt(&f, o, optarg)) != 0) {
            if (taken < 0)
                goto out;
            continue;
        }
        switch (o) {
        case R_UPSTREAM:
            upstream = optarg;
            break;
        case R_RANGE:
            range = optarg;
            break;
        case R_UP_SECRET:
            upname = "secret-source";
            break;
        case R_UP_REF:
            upname = "ref";
            break;
        case R_UP_CERT:
            upname = "cert";
            break;
        case R_UP_KEY:
            upname = "key";
            break;
        case R_UP_SRVCERT:
            upname = "srvcert";
            break;
        case R_UP_TRUSTED:
            upname = "trusted";
            break;
        case 'h':
        case R_HELP:
            fputs(relay_help, stdout);
            rc = TOOL_EXIT_OK;
            goto out;
        default:
            tool_err("relay: unknown option or missing value: %s (see --help)", argv[optind - 1]);
            goto out;
        }
        if (upname && !tool_cmp_client_opt(&be.up, upname, optarg, err, sizeof err)) {
            tool_err("relay: --upstream-%s: %s", upname, err);
            goto out;
        }
    }
    if (optind != argc || !f.listen || !upstream || !range) {
        tool_err("relay: --listen, --upstream and --serial-range are required\n%s", relay_help);
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
    rc = tool_cmp_front_run(&f, &so, &backend);
out:
    X509_NAME_free(name);
    tool_cmp_client_opts_clear(&be.up);
    tool_cmp_front_clear(&f);
    return rc;
}
