/*
 * `tokenmint ca serve DIR --listen ADDR:PORT`: the CA directory of
 * `tokenmint ca init` as a CMP server. Requests are issued through the same
 * tm_ca code as `tokenmint issue --ca DIR` (same flock on DIR/db.lock, same
 * records), so the tool, stock `openssl ca` and this server can share a CA.
 * Concurrent requests reach the CA through its group commit: every request
 * ready at one moment is issued under one lock and one sync, and no response
 * leaves before its certificate is on disk.
 */
#include "cmp.h"
#include "cmp_crmf.h"
#include "tool.h"

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

static const char *serve_help =
    "usage: tokenmint ca serve DIR --listen ADDR:PORT [--secret-source FILE [--ref REF]]\n"
    "                          [--trusted FILE --srv-cert FILE --srv-key FILE]\n"
    "                          [--deferred [--defer-ms MS]] [--max-body BYTES] [--port-file F]\n"
    "\n"
    "Serves the CA directory DIR (made by `tokenmint ca init`) over CMP (RFC 4210/9483)\n"
    "on HTTP POST, Content-Type application/pkixcmp, any path. Accepts p10cr (the\n"
    "token's PKCS#10 request), ir and cr; issues per the serial-bound profile with the\n"
    "same database and locking as `tokenmint issue --ca DIR`. Every certificate is on\n"
    "disk (synced) before its response is sent.\n"
    "\n"
    "  --listen ADDR:PORT      where to listen, e.g. 127.0.0.1:8080 (port 0: any free port)\n"
    "  --port-file F           write the port we listen on to F (for scripts)\n"
    "  --secret-source FILE    accept PBMAC protection with the shared secret in FILE\n"
    "                          (first line); responses are PBMAC-protected with it\n"
    "  --ref REF               our senderKID in PBMAC-protected responses\n"
    "  --trusted FILE          accept signature protection by certificates chaining to\n"
    "                          the PEM certificates in FILE\n"
    "  --srv-cert FILE         our CMP signer certificate (signed responses)\n"
    "  --srv-key FILE          its PEM private key\n"
    "  --deferred              answer \"waiting\"; the certificate is issued after approval\n"
    "                          and handed out on the client's next pollReq\n"
    "  --defer-ms MS           approval delay in deferred mode (default 500)\n"
    "  --max-body BYTES        largest request body (default 65536; larger: HTTP 413)\n"
    "  --profile FILE          certificate profile (default: built in)\n"
    "  --module PATH           PKCS#11 module, when the CA key is a token key\n"
    "\n"
    "Runs until SIGINT or SIGTERM. Exit: 0 stopped cleanly, 2 usage or setup error.\n";

enum {
    S_LISTEN = 2000,
    S_PORTFILE,
    S_SECRET,
    S_REF,
    S_TRUSTED,
    S_SRVCERT,
    S_SRVKEY,
    S_DEFERRED,
    S_DEFERMS,
    S_MAXBODY,
    S_PROFILE,
    S_MODULE,
    S_HELP,
};

static const struct option serve_opts[] = {
    {"listen", required_argument, 0, S_LISTEN},
    {"port-file", required_argument, 0, S_PORTFILE},
    {"secret-source", required_argument, 0, S_SECRET},
    {"ref", required_argument, 0, S_REF},
    {"trusted", required_argument, 0, S_TRUSTED},
    {"srv-cert", required_argument, 0, S_SRVCERT},
    {"srv-key", required_argument, 0, S_SRVKEY},
    {"deferred", no_argument, 0, S_DEFERRED},
    {"defer-ms", required_argument, 0, S_DEFERMS},
    {"max-body", required_argument, 0, S_MAXBODY},
    {"profile", required_argument, 0, S_PROFILE},
    {"module", required_argument, 0, S_MODULE},
    {"help", no_argument, 0, S_HELP},
    {0, 0, 0, 0},
};

typedef struct serve_be {
    tm_ca *ca;
    tm_cmp_crmf *crmf; /* ir/cr */
    const tm_profile *prof;
} serve_be;

/* The CA's refusal text, mapped to the CMP failInfo that says the same. */
static int failinfo_of(const char *error)
{
    if (strstr(error, "signature does not verify"))
        return OSSL_CMP_PKIFAILUREINFO_badPOP;
    if (strstr(error, "profile") || strstr(error, "cannot issue"))
        return OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    return OSSL_CMP_PKIFAILUREINFO_systemFailure;
}

static int serve_issue(void *ctx, const tm_cmp_req *r, tm_cmp_answer *ans)
{
    serve_be *be = ctx;
    tm_violations *v = tm_violations_new();
    tm_binding b;
    tm_ca_item item;
    char why[400];
    int ok = 0;

    if (!v) {
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
        snprintf(ans->text, sizeof ans->text, "out of memory");
        return 0;
    }
    if (!r->p10) {
        /* ir/cr: OpenSSL checked the CRMF proof of possession */
        memset(&b, 0, sizeof b);
        if (!tm_binding_from_req(be->prof, r->tmpl, &b, v)) {
            tm_violations_join(v, why, sizeof why);
            ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
            snprintf(ans->text, sizeof ans->text, "the certificate template names no token: %s",
                     why);
            goto out;
        }
        ans->cert = tm_cmp_crmf_issue(
            be->crmf, r->tmpl, b.purpose[0] ? b.purpose : tm_profile_default_purpose(be->prof),
            &ans->failinfo, ans->text, sizeof ans->text);
        ok = ans->cert != NULL;
        goto out;
    }
    memset(&b, 0, sizeof b);
    if (!tm_binding_from_req(be->prof, r->p10, &b, v)) {
        tm_violations_join(v, why, sizeof why);
        ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        snprintf(ans->text, sizeof ans->text, "the request names no token: %s", why);
        goto out;
    }
    memset(&item, 0, sizeof item);
    item.req = (X509_REQ *)r->p10;
    item.token_text = b.serial_text;
    item.purpose = b.purpose[0] ? b.purpose : tm_profile_default_purpose(be->prof);
    tm_ca_submit(be->ca, &item);
    if (!item.cert) {
        ans->failinfo = failinfo_of(item.error);
        snprintf(ans->text, sizeof ans->text, "%s", item.error[0] ? item.error : "not issued");
        goto out;
    }
    tm_cmp_debug("issued for token %s (%s)", b.serial_text, item.purpose);
    ans->cert = item.cert;
    ok = 1;
out:
    tm_violations_free(v);
    return ok;
}

static X509 *load_cert(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!x)
        snprintf(err, errlen, "%s: not a readable PEM certificate", path);
    return x;
}

static EVP_PKEY *load_key(const char *path, OSSL_LIB_CTX *libctx, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, libctx, NULL) : NULL;
    if (f)
        fclose(f);
    if (!k)
        snprintf(err, errlen, "%s: not a readable unencrypted PEM private key", path);
    return k;
}

static X509_STORE *load_store(const char *path, char *err, size_t errlen)
{
    X509_STORE *st = X509_STORE_new();
    if (!st || X509_STORE_load_file(st, path) != 1) {
        snprintf(err, errlen, "%s: no PEM certificates to trust", path);
        X509_STORE_free(st);
        ERR_clear_error();
        return NULL;
    }
    return st;
}

/* Blocks SIGINT/SIGTERM in every thread we start; the main thread sigwait()s. */
static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int tm_cmd_ca_serve(int argc, char **argv)
{
    const char *listen = NULL, *port_file = NULL, *secret_src = NULL, *ref = NULL, *trusted = NULL,
               *srvcert = NULL, *srvkey = NULL, *profile = NULL, *module = NULL;
    int deferred = 0, o, rc = TM_EXIT_USAGE;
    long defer_ms = 500;
    unsigned long long max_body = TM_CMP_MAX_BODY_DEFAULT;
    char err[600], secret[256], *end;
    size_t secret_len = 0;
    tm_crypto cr;
    int have_cr = 0;
    tm_profile *prof = NULL;
    tm_violations *v = NULL;
    serve_be be = {0};
    tm_cmp_backend backend;
    tm_cmp_srv_opts so;
    tm_cmp_srv *srv = NULL;
    tm_cmp_http *http = NULL;

    /* argv[0] is "ca", argv[1] "serve" */
    argc--;
    argv++;
    memset(&so, 0, sizeof so);
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", serve_opts, NULL)) != -1) {
        switch (o) {
        case S_LISTEN:
            listen = optarg;
            break;
        case S_PORTFILE:
            port_file = optarg;
            break;
        case S_SECRET:
            secret_src = optarg;
            break;
        case S_REF:
            ref = optarg;
            break;
        case S_TRUSTED:
            trusted = optarg;
            break;
        case S_SRVCERT:
            srvcert = optarg;
            break;
        case S_SRVKEY:
            srvkey = optarg;
            break;
        case S_DEFERRED:
            deferred = 1;
            break;
        case S_DEFERMS:
            defer_ms = strtol(optarg, &end, 10);
            if (*end || defer_ms < 0 || defer_ms > 3600000) {
                tool_err("ca serve: --defer-ms %s: a number of milliseconds", optarg);
                return TM_EXIT_USAGE;
            }
            break;
        case S_MAXBODY:
            max_body = strtoull(optarg, &end, 10);
            if (*end || max_body < 1024 || max_body > 16u * 1024 * 1024) {
                tool_err("ca serve: --max-body %s: 1024 to 16777216 bytes", optarg);
                return TM_EXIT_USAGE;
            }
            break;
        case S_PROFILE:
            profile = optarg;
            break;
        case S_MODULE:
            module = optarg;
            break;
        case 'h':
        case S_HELP:
            fputs(serve_help, stdout);
            return TM_EXIT_OK;
        default:
            tool_err("ca serve: unknown option or missing value: %s (see --help)",
                     argv[optind - 1]);
            return TM_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !listen) {
        tool_err("ca serve: %s\n%s",
                 optind != argc - 1 ? "one CA directory expected"
                                    : "--listen ADDR:PORT is required",
                 serve_help);
        return TM_EXIT_USAGE;
    }
    if (!secret_src && !trusted) {
        tool_err("ca serve: give --secret-source FILE (PBMAC) and/or --trusted FILE with "
                 "--srv-cert/--srv-key (signatures): unauthenticated requests are never served");
        return TM_EXIT_USAGE;
    }
    if ((srvcert || srvkey || trusted) && !(srvcert && srvkey)) {
        tool_err("ca serve: signature protection needs --srv-cert and --srv-key together");
        return TM_EXIT_USAGE;
    }
    block_signals();
    if (secret_src &&
        !tm_read_secret_file(secret_src, secret, sizeof secret, &secret_len, err, sizeof err)) {
        tool_err("ca serve: --secret-source: %s", err);
        goto out;
    }
    if (secret_src && secret_len == 0) {
        tool_err("ca serve: --secret-source %s: the secret is empty", secret_src);
        goto out;
    }
    tm_crypto_open(&cr, module ? module : getenv("TOKENMINT_MODULE"));
    have_cr = 1;
    v = tm_violations_new();
    prof = tm_profile_load(profile, v);
    if (!prof) {
        tm_violations_join(v, err, sizeof err);
        tool_err("profile %s: %s", profile ? profile : "(built in)", err);
        goto out;
    }
    tm_profile_register_oids(prof);
    be.prof = prof;
    be.ca = tm_ca_open(argv[optind], prof, &cr, "cmp", err, sizeof err);
    if (!be.ca) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    be.crmf = tm_cmp_crmf_open(argv[optind], be.ca, prof, &cr, err, sizeof err);
    if (!be.crmf) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    so.libctx = cr.libctx;
    so.secret = (unsigned char *)secret;
    so.secret_len = secret_len;
    so.log_name = "tokenmint ca serve";
    so.ref = ref;
    so.name = X509_get_subject_name(tm_ca_root(be.ca));
    so.deferred = deferred;
    so.defer_ms = defer_ms;
    so.check_after = 1;
    if (srvcert) {
        so.cert = load_cert(srvcert, err, sizeof err);
        so.key = so.cert ? load_key(srvkey, cr.libctx, err, sizeof err) : NULL;
        if (!so.key) {
            tool_err("ca serve: %s", err);
            goto out;
        }
        if (X509_check_private_key(so.cert, so.key) != 1) {
            tool_err("ca serve: --srv-key does not match --srv-cert");
            goto out;
        }
    }
    if (trusted && !(so.trusted = load_store(trusted, err, sizeof err))) {
        tool_err("ca serve: --trusted %s", err);
        goto out;
    }
    backend.ctx = &be;
    backend.issue = serve_issue;
    srv = tm_cmp_srv_new(&so, &backend, err, sizeof err);
    if (!srv) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    http = tm_cmp_http_start(listen, (size_t)max_body, srv, err, sizeof err);
    if (!http) {
        tool_err("ca serve: %s", err);
        goto out;
    }
    if (tm_cmp_http_serve_until_signal(http, port_file))
        rc = TM_EXIT_OK;
out:
    tm_cmp_http_stop(http);
    tm_cmp_srv_free(srv);
    OPENSSL_cleanse(secret, sizeof secret);
    X509_free(so.cert);
    EVP_PKEY_free(so.key);
    X509_STORE_free(so.trusted);
    tm_cmp_crmf_close(be.crmf);
    tm_ca_close(be.ca);
    tm_profile_free(prof);
    tm_violations_free(v);
    if (have_cr)
        tm_crypto_close(&cr);
    return rc;
}
