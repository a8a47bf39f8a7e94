/*
 * bench_cmp: load and probe `tokenmint ca serve` / `tokenmint relay` over CMP.
 *
 *   bench_cmp load --url URL --secret-source FILE --root CA.pem
 *                  [--clients N] [--requests M] [--ref REF] [--check]
 *       N client threads each send M p10cr (fresh P-256 key and a profile
 *       request naming a made-up token serial each; every message built and
 *       protected before the clock starts, implicit confirmation asked, so
 *       one round trip each). Prints certificates per second. With --check,
 *       every answer must be a certificate that verifies against CA.pem and
 *       names its request's serial, and all certificate serials must be
 *       distinct (exit 1 otherwise): the load test uses this.
 *       --retry-ms MS: a request answered without a certificate (or not at
 *       all) is sent again, as a new message, for up to MS. --acked FILE:
 *       "CERT-SERIAL<TAB>TOKEN-SERIAL" per certificate received. --tolerate:
 *       exit 0 even when some requests got no certificate (kill tests).
 *
 *   bench_cmp post URL FILE [--type CONTENT-TYPE] [--method M] [--out RESPONSE]
 *       POSTs (or M) FILE's bytes as they are (malformed input on purpose) and prints
 *       "HTTP <status> <bytes>"; with a CMP response, also "body <type>".
 *
 *   bench_cmp reuse-nonce OLD.der CSR.pem OUT.der --secret-source FILE [--ref REF]
 *       a new p10cr for CSR (new transactionID) carrying OLD's senderNonce,
 *       its PBMAC recomputed: a replayed nonce the server must refuse.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "tm_profile.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- load ------------------------------------------------------------------------ */

/*
 * The clients must not eat the CPU the server is being measured on (both run
 * on one machine). So every request message is built before the clock starts:
 * OpenSSL's client makes each p10cr (own transactionID, nonce, PBMAC,
 * implicitConfirm asked) and hands it to a transfer callback that keeps it.
 * Timed: N threads POST their messages over plain HTTP/1.0 one after another.
 * After the clock: each answer must be a cp whose certificate verifies
 * against the root and names the request's serial (--check).
 */
typedef struct job {
    EVP_PKEY *key;
    X509_REQ *req;
    char serial[24];
    unsigned char *msg, *rsp;
    size_t msglen, rsplen;
    int status;
    int retries;
    X509 *cert;
} job;

static char *g_host, *g_path;
static const char *g_ref = "bench";
static int g_port;
static unsigned char g_secret[256];
static size_t g_secret_len;
static tm_profile *g_prof;

static int quiet_log(const char *func, const char *file, int line, OSSL_CMP_severity level,
                     const char *msg)
{
    (void)func;
    (void)file;
    (void)line;
    (void)level;
    (void)msg;
    return 1;
}

static OSSL_CMP_MSG *keep_request(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
    job *j = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    unsigned char *der = NULL;
    int len = i2d_OSSL_CMP_MSG(req, &der);

    if (len > 0) {
        j->msg = malloc((size_t)len);
        if (j->msg) {
            memcpy(j->msg, der, (size_t)len);
            j->msglen = (size_t)len;
        }
    }
    OPENSSL_free(der);
    return NULL; /* the exchange stops here: we only wanted the message */
}

/* A p10cr message (new transactionID and nonce) for the job's request. */
static char *tm_test_serial_hex(const X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    return h;
}

static int make_msg(job *j)
{
    OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
    int ok;

    free(j->msg);
    j->msg = NULL;
    ok = ctx && OSSL_CMP_CTX_set_log_cb(ctx, quiet_log) &&
         OSSL_CMP_CTX_set_transfer_cb(ctx, keep_request) &&
         OSSL_CMP_CTX_set_transfer_cb_arg(ctx, j) &&
         OSSL_CMP_CTX_set1_secretValue(ctx, g_secret, (int)g_secret_len) &&
         OSSL_CMP_CTX_set1_referenceValue(ctx, (const unsigned char *)g_ref, (int)strlen(g_ref)) &&
         OSSL_CMP_CTX_set1_p10CSR(ctx, j->req) &&
         OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM, 1);
    if (ok)
        OSSL_CMP_exec_P10CR_ses(ctx);
    ERR_clear_error();
    OSSL_CMP_CTX_free(ctx);
    return ok && j->msg;
}

static int make_job(job *j)
{
    unsigned char rnd[8];
    tm_violations *v = tm_violations_new();
    int ok;

    RAND_bytes(rnd, sizeof rnd);
    snprintf(j->serial, sizeof j->serial, "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    j->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    j->req = X509_REQ_new();
    ok = j->key && j->req && X509_REQ_set_version(j->req, 0) &&
         X509_REQ_set_pubkey(j->req, j->key) &&
         tm_profile_build_request(g_prof, j->req, (unsigned char *)j->serial, strlen(j->serial),
                                  NULL, NULL, v) &&
         X509_REQ_sign(j->req, j->key, EVP_sha256()) > 0 && make_msg(j);
    tm_violations_free(v);
    return ok;
}

/* One HTTP/1.0 POST; the answer's body into j->rsp. */
static void post_job(job *j)
{
    struct sockaddr_in a;
    char hdr[512], *buf = NULL, *body;
    size_t got = 0, cap = 16384;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)g_port);
    inet_pton(AF_INET, !strcmp(g_host, "localhost") ? "127.0.0.1" : g_host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    snprintf(hdr, sizeof hdr,
             "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/pkixcmp\r\n"
             "Content-Length: %zu\r\n\r\n",
             g_path, g_host, j->msglen);
    if (send(fd, hdr, strlen(hdr), MSG_NOSIGNAL) < 0 ||
        send(fd, j->msg, j->msglen, MSG_NOSIGNAL) != (ssize_t)j->msglen)
        goto out;
    buf = malloc(cap);
    for (;;) {
        ssize_t r;
        if (got == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                goto out;
            buf = nb;
        }
        r = read(fd, buf + got, cap - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < 12 || sscanf(buf, "HTTP/%*s %d", &j->status) != 1)
        goto out;
    body = memmem(buf, got, "\r\n\r\n", 4);
    if (body) {
        body += 4;
        j->rsplen = got - (size_t)(body - buf);
        j->rsp = malloc(j->rsplen ? j->rsplen : 1);
        if (j->rsp)
            memcpy(j->rsp, body, j->rsplen);
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
}

typedef struct worker {
    job *jobs;
    int n;
} worker;

static X509 *cert_of_cp(const unsigned char *der, size_t len);
static int g_retry_ms; /* --retry-ms: a request without a certificate is sent again */

static int has_cert(job *j)
{
    const unsigned char *p = j->rsp;
    OSSL_CMP_MSG *m =
        j->rsp && j->status == 200 ? d2i_OSSL_CMP_MSG(NULL, &p, (long)j->rsplen) : NULL;
    X509 *x = m && OSSL_CMP_MSG_get_bodytype(m) == 3 ? cert_of_cp(j->rsp, j->rsplen) : NULL;
    int ok = x != NULL;

    OSSL_CMP_MSG_free(m);
    X509_free(x);
    ERR_clear_error();
    return ok;
}

static void *work(void *arg)
{
    worker *w = arg;
    int i;
    for (i = 0; i < w->n; i++) {
        job *j = &w->jobs[i];
        double until = now_s() + g_retry_ms / 1000.0;
        post_job(j);
        /* retry (a server told us to, or is not there) with a new message */
        while (g_retry_ms > 0 && !has_cert(j) && now_s() < until) {
            free(j->rsp);
            j->rsp = NULL;
            j->rsplen = 0;
            j->status = 0;
            j->retries++;
            usleep(100000);
            if (make_msg(j))
                post_job(j);
        }
    }
    return NULL;
}

/* DER walk: the element at *p, its content in [*c, *c + *l). */
static int der_next(const unsigned char **p, const unsigned char *end, int *tag, int *cls,
                    const unsigned char **c, long *l)
{
    const unsigned char *q = *p;
    if (q >= end || ASN1_get_object(&q, l, tag, cls, end - q) & 0x80)
        return 0;
    *c = q;
    *p = q + *l;
    return 1;
}

/* The certificate in a cp: PKIMessage { header, [3] CertRepMessage { [1] caPubs?,
 * SEQUENCE OF CertResponse { certReqId, status, certifiedKeyPair { [0] cert } } } }.
 * OpenSSL 3.0 has no getter for it. */
static X509 *cert_of_cp(const unsigned char *der, size_t len)
{
    const unsigned char *p = der, *end = der + len, *c, *body, *rep, *resp, *cr, *ckp, *cert;
    long l;
    int tag, cls;

    if (!der_next(&p, end, &tag, &cls, &c, &l))
        return NULL;
    p = c;
    end = c + l;
    if (!der_next(&p, end, &tag, &cls, &c, &l)) /* header */
        return NULL;
    if (!der_next(&p, end, &tag, &cls, &body, &l) || cls != V_ASN1_CONTEXT_SPECIFIC || tag != 3)
        return NULL;
    p = body;
    if (!der_next(&p, body + l, &tag, &cls, &rep, &l)) /* CertRepMessage */
        return NULL;
    end = rep + l;
    p = rep;
    if (!der_next(&p, end, &tag, &cls, &resp, &l))
        return NULL;
    if (cls == V_ASN1_CONTEXT_SPECIFIC && !der_next(&p, end, &tag, &cls, &resp, &l))
        return NULL; /* skipped caPubs */
    p = resp;        /* SEQUENCE OF CertResponse: the first */
    if (!der_next(&p, resp + l, &tag, &cls, &cr, &l))
        return NULL;
    end = cr + l;
    p = cr;
    if (!der_next(&p, end, &tag, &cls, &c, &l) || /* certReqId */
        !der_next(&p, end, &tag, &cls, &c, &l) || /* status */
        !der_next(&p, end, &tag, &cls, &ckp, &l)) /* certifiedKeyPair */
        return NULL;
    p = ckp;
    if (!der_next(&p, ckp + l, &tag, &cls, &cert, &l) || cls != V_ASN1_CONTEXT_SPECIFIC || tag != 0)
        return NULL;
    return d2i_X509(NULL, &cert, l);
}

static int read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[300];
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    g_secret_len = strlen(line);
    memcpy(g_secret, line, g_secret_len);
    OPENSSL_cleanse(line, sizeof line);
    return g_secret_len > 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int do_load(int argc, char **argv)
{
    const char *secret = NULL, *rootp = NULL, *url = NULL, *acked = NULL;
    int clients = 1, requests = 100, check = 0, i, bad = 0, total, answered = 0, tolerate = 0,
        retries = 0;
    FILE *af = NULL;
    job *jobs;
    worker *ws;
    pthread_t *th;
    X509 *root = NULL;
    X509_STORE *st = NULL;
    char **serials;
    double t0, t1;
    FILE *f;

    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--secret-source") && i + 1 < argc)
            secret = argv[++i];
        else if (!strcmp(argv[i], "--root") && i + 1 < argc)
            rootp = argv[++i];
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
            requests = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ref") && i + 1 < argc)
            g_ref = argv[++i];
        else if (!strcmp(argv[i], "--check"))
            check = 1;
        else if (!strcmp(argv[i], "--acked") && i + 1 < argc)
            acked = argv[++i];
        else if (!strcmp(argv[i], "--tolerate"))
            tolerate = 1;
        else if (!strcmp(argv[i], "--retry-ms") && i + 1 < argc)
            g_retry_ms = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_cmp load: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!url || !secret || !rootp || clients < 1 || clients > 256 || requests < 1) {
        fprintf(stderr, "bench_cmp load: --url, --secret-source and --root are required\n");
        return 2;
    }
    if (!OSSL_HTTP_parse_url(url, NULL, NULL, &g_host, NULL, &g_port, &g_path, NULL, NULL) ||
        !read_secret(secret)) {
        fprintf(stderr, "bench_cmp: bad --url or empty --secret-source\n");
        return 2;
    }
    f = fopen(rootp, "r");
    root = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    st = X509_STORE_new();
    if (!root || !st || !X509_STORE_add_cert(st, root)) {
        fprintf(stderr, "bench_cmp: --root %s: not a PEM certificate\n", rootp);
        return 2;
    }
    g_prof = tm_profile_load(NULL, NULL);
    total = clients * requests;
    jobs = calloc((size_t)total, sizeof *jobs);
    ws = calloc((size_t)clients, sizeof *ws);
    th = calloc((size_t)clients, sizeof *th);
    serials = calloc((size_t)total, sizeof *serials);
    if (!g_prof || !jobs || !ws || !th || !serials)
        return 2;
    for (i = 0; i < total; i++)
        if (!make_job(&jobs[i])) {
            fprintf(stderr, "bench_cmp: cannot build request %d\n", i);
            return 2;
        }
    /* for tests that act during the load (kill -9 at a random point) */
    fprintf(stderr, "sending\n");
    fflush(stderr);
    t0 = now_s();
    for (i = 0; i < clients; i++) {
        ws[i].jobs = jobs + (size_t)i * requests;
        ws[i].n = requests;
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    t1 = now_s();
    if (acked && !(af = fopen(acked, "w"))) {
        fprintf(stderr, "bench_cmp: --acked %s: cannot write\n", acked);
        return 2;
    }
    for (i = 0; i < total; i++) {
        job *j = &jobs[i];
        retries += j->retries;
        const unsigned char *p = j->rsp;
        OSSL_CMP_MSG *m =
            j->rsp && j->status == 200 ? d2i_OSSL_CMP_MSG(NULL, &p, (long)j->rsplen) : NULL;
        if (m && OSSL_CMP_MSG_get_bodytype(m) == 3) /* cp */
            j->cert = cert_of_cp(j->rsp, j->rsplen);
        OSSL_CMP_MSG_free(m);
        if (!j->cert) {
            if (bad++ < 5)
                fprintf(stderr, "request %d: HTTP %d, no certificate in the answer\n", i,
                        j->status);
            continue;
        }
        answered++;
        if (af) { /* acknowledged: certificate serial and the token serial asked for */
            char *h = tm_test_serial_hex(j->cert);
            fprintf(af, "%s\t%s\n", h ? h : "?", j->serial);
            OPENSSL_free(h);
        }
        if (check) {
            X509_STORE_CTX *vc = X509_STORE_CTX_new();
            tm_binding b;
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(j->cert), NULL);
            int ok = vc && X509_STORE_CTX_init(vc, st, j->cert, NULL) &&
                     X509_verify_cert(vc) == 1 && tm_binding_from_cert(g_prof, j->cert, &b, NULL) &&
                     strcmp(b.serial_text, j->serial) == 0 &&
                     X509_check_private_key(j->cert, j->key) == 1;
            X509_STORE_CTX_free(vc);
            serials[i] = bn ? BN_bn2hex(bn) : NULL;
            BN_free(bn);
            if (!ok && bad++ < 5)
                fprintf(stderr,
                        "request %d: certificate does not verify or names another "
                        "token\n",
                        i);
        }
    }
    if (check) {
        int n = 0;
        for (i = 0; i < total; i++)
            if (serials[i])
                serials[n++] = serials[i];
        qsort(serials, (size_t)n, sizeof *serials, cmp_str);
        for (i = 1; i < n; i++)
            if (!strcmp(serials[i - 1], serials[i])) {
                fprintf(stderr, "certificate serial %s issued twice\n", serials[i]);
                bad++;
            }
        for (i = 0; i < n; i++)
            OPENSSL_free(serials[i]);
    }
    if (af)
        fclose(af);
    printf("clients %d requests %d answered %d in %.3f s: %.1f certificates/s%s (retries %d)\n",
           clients, total, answered, t1 - t0, answered / (t1 - t0), bad ? " (with FAILURES)" : "",
           retries);
    for (i = 0; i < total; i++) {
        EVP_PKEY_free(jobs[i].key);
        X509_REQ_free(jobs[i].req);
        X509_free(jobs[i].cert);
        free(jobs[i].msg);
        free(jobs[i].rsp);
    }
    free(jobs);
    free(ws);
    free(th);
    free(serials);
    X509_free(root);
    X509_STORE_free(st);
    tm_profile_free(g_prof);
    OPENSSL_free(g_host);
    OPENSSL_free(g_path);
    return bad && !tolerate ? 1 : 0;
}

/* ---- post: raw bytes over a plain HTTP/1.0 POST ---------------------------------- */

static int do_post(int argc, char **argv)
{
    const char *type = "application/pkixcmp", *outp = NULL, *method = "POST";
    char *host = NULL, *path = NULL, hdr[1024], rsp[1 << 16];
    int port = 0, fd = -1, i, status = 0;
    unsigned char *body = NULL;
    long len = 0;
    size_t got = 0;
    FILE *f;
    struct sockaddr_in a;

    if (argc < 2)
        return 2;
    for (i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outp = argv[++i];
        else if (!strcmp(argv[i], "--method") && i + 1 < argc)
            method = argv[++i];
    }
    if (!OSSL_HTTP_parse_url(argv[0], NULL, NULL, &host, NULL, &port, &path, NULL, NULL))
        return 2;
    f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    body = malloc(len ? (size_t)len : 1);
    if (!body || fread(body, 1, (size_t)len, f) != (size_t)len)
        return 2;
    fclose(f);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, &a.sin_addr) != 1)
        return 2;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "bench_cmp post: connect: %s\n", strerror(errno));
        return 2;
    }
    snprintf(hdr, sizeof hdr,
             "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %ld\r\n\r\n",
             method, path, host, type, len);
    if (write(fd, hdr, strlen(hdr)) < 0)
        return 2;
    /* the server may answer (413) before reading everything: ignore EPIPE */
    {
        long off = 0;
        while (off < len) {
            ssize_t w = send(fd, body + off, (size_t)(len - off), MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += w;
        }
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t r = read(fd, rsp + got, sizeof rsp - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof rsp - 1)
            break;
    }
    close(fd);
    rsp[got] = 0;
    if (sscanf(rsp, "HTTP/%*s %d", &status) != 1) {
        printf("HTTP none (connection closed)\n");
        return 1;
    }
    {
        char *b = strstr(rsp, "\r\n\r\n");
        size_t blen = b ? got - (size_t)(b + 4 - rsp) : 0;
        printf("HTTP %d %zu\n", status, blen);
        if (b && outp) {
            FILE *o = fopen(outp, "wb");
            if (o) {
                fwrite(b + 4, 1, blen, o);
                fclose(o);
            }
        }
        if (b && status == 200) {
            const unsigned char *p = (unsigned char *)b + 4;
            OSSL_CMP_MSG *m = d2i_OSSL_CMP_MSG(NULL, &p, (long)blen);
            if (m)
                printf("body %d\n", OSSL_CMP_MSG_get_bodytype(m));
            OSSL_CMP_MSG_free(m);
        }
    }
    free(body);
    OPENSSL_free(host);
    OPENSSL_free(path);
    return 0;
}

/* ---- reuse-nonce: a fresh, correctly protected request with an old nonce ---- */

/* Element i (0-based) of the SEQUENCE at der: its whole TLV. */
static int tlv_at(const unsigned char *der, size_t len, int i, const unsigned char **start,
                  size_t *tlvlen)
{
    const unsigned char *p = der, *end, *c, *s0;
    long l;
    int tag, cls;

    if (!der_next(&p, der + len, &tag, &cls, &c, &l))
        return 0;
    end = c + l;
    p = c;
    for (; p < end; i--) {
        s0 = p;
        if (!der_next(&p, end, &tag, &cls, &c, &l))
            return 0;
        if (i == 0) {
            *start = s0;
            *tlvlen = (size_t)(p - s0);
            return 1;
        }
    }
    return 0;
}

/* Inside the header TLV: the content of context tag [t] (its inner TLV). */
static int header_field(const unsigned char *hdr, size_t len, int t, const unsigned char **in,
                        long *inlen)
{
    const unsigned char *p = hdr, *end, *c;
    long l;
    int tag, cls;

    if (!der_next(&p, hdr + len, &tag, &cls, &c, &l))
        return 0;
    end = c + l;
    p = c;
    while (p < end) {
        if (!der_next(&p, end, &tag, &cls, &c, &l))
            return 0;
        if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == t) {
            *in = c;
            *inlen = l;
            return 1;
        }
    }
    return 0;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    long l;
    if (!f || fseek(f, 0, SEEK_END) || (l = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
        !(b = malloc((size_t)l)) || fread(b, 1, (size_t)l, f) != (size_t)l) {
        free(b);
        b = NULL;
    } else {
        *len = (size_t)l;
    }
    if (f)
        fclose(f);
    return b;
}

/*
 * bench_cmp reuse-nonce OLD.der CSR.pem OUT.der --secret-source F [--ref R]
 * Builds a new p10cr for CSR (new transactionID), puts OLD's senderNonce
 * into its header and recomputes its PBMAC, so only the nonce is replayed.
 */
static int do_reuse_nonce(int argc, char **argv)
{
    unsigned char *old = NULL, *prot_part = NULL, *mac = NULL;
    size_t oldlen = 0, hlen, blen, plen, maclen = 0;
    const unsigned char *oh, *nh, *nb, *on, *nn, *alg, *pp;
    long onl, nnl, algl;
    job j;
    FILE *f;
    X509_REQ *csr;
    OSSL_CRMF_PBMPARAMETER *pbm = NULL;
    int i, rc = 1;

    if (argc < 3)
        return 2;
    for (i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--secret-source") && i + 1 < argc)
            read_secret(argv[++i]);
        else if (!strcmp(argv[i], "--ref") && i + 1 < argc)
            g_ref = argv[++i];
    }
    old = read_all(argv[0], &oldlen);
    f = fopen(argv[1], "r");
    csr = f ? PEM_read_X509_REQ(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    memset(&j, 0, sizeof j);
    if (!old || !csr || !g_secret_len) {
        fprintf(stderr, "bench_cmp reuse-nonce: unreadable input or no secret\n");
        return 2;
    }
    j.req = csr;
    g_prof = tm_profile_load(NULL, NULL);
    {
        OSSL_CMP_CTX *ctx = OSSL_CMP_CTX_new(NULL, NULL);
        if (ctx && OSSL_CMP_CTX_set_log_cb(ctx, quiet_log) &&
            OSSL_CMP_CTX_set_transfer_cb(ctx, keep_request) &&
            OSSL_CMP_CTX_set_transfer_cb_arg(ctx, &j) &&
            OSSL_CMP_CTX_set1_secretValue(ctx, g_secret, (int)g_secret_len) &&
            OSSL_CMP_CTX_set1_referenceValue(ctx, (const unsigned char *)g_ref,
                                             (int)strlen(g_ref)) &&
            OSSL_CMP_CTX_set1_p10CSR(ctx, csr))
            OSSL_CMP_exec_P10CR_ses(ctx);
        ERR_clear_error();
        OSSL_CMP_CTX_free(ctx);
    }
    if (!j.msg || !tlv_at(old, oldlen, 0, &oh, &hlen) || !header_field(oh, hlen, 5, &on, &onl) ||
        !tlv_at(j.msg, j.msglen, 0, &nh, &hlen) || !header_field(nh, hlen, 5, &nn, &nnl) ||
        onl != nnl || !tlv_at(j.msg, j.msglen, 1, &nb, &blen) ||
        !header_field(nh, hlen, 1, &alg, &algl)) {
        fprintf(stderr, "bench_cmp reuse-nonce: cannot find the nonces\n");
        goto out;
    }
    memcpy((unsigned char *)nn, on, (size_t)onl); /* same length: DER stays valid */
    {
        /* protectionAlg: AlgorithmIdentifier { OID, PBMParameter } */
        const unsigned char *p = alg, *c;
        long l;
        int tag, cls;
        if (!der_next(&p, alg + algl, &tag, &cls, &c, &l))
            goto out;
        p = c;
        if (!der_next(&p, c + l, &tag, &cls, &c, &l)) /* the OID */
            goto out;
        pp = p;
        pbm = d2i_OSSL_CRMF_PBMPARAMETER(NULL, &pp, (long)(alg + algl - p));
    }
    /* ProtectedPart ::= SEQUENCE { header, body } */
    {
        unsigned char lenhdr[8];
        size_t inner = hlen + blen, n = 0;
        if (inner < 128) {
            lenhdr[n++] = (unsigned char)inner;
        } else if (inner < 256) {
            lenhdr[n++] = 0x81;
            lenhdr[n++] = (unsigned char)inner;
        } else {
            lenhdr[n++] = 0x82;
            lenhdr[n++] = (unsigned char)(inner >> 8);
            lenhdr[n++] = (unsigned char)inner;
        }
        plen = 1 + n + inner;
        prot_part = malloc(plen);
        if (!prot_part || !pbm)
            goto out;
        prot_part[0] = 0x30;
        memcpy(prot_part + 1, lenhdr, n);
        memcpy(prot_part + 1 + n, nh, hlen);
        memcpy(prot_part + 1 + n + hlen, nb, blen);
    }
    if (!OSSL_CRMF_pbm_new(NULL, NULL, pbm, prot_part, plen, g_secret, g_secret_len, &mac,
                           &maclen)) {
        fprintf(stderr, "bench_cmp reuse-nonce: PBMAC failed\n");
        goto out;
    }
    {
        /* protection [0] BIT STRING: the last maclen bytes of that element */
        const unsigned char *pt;
        size_t ptlen;
        if (!tlv_at(j.msg, j.msglen, 2, &pt, &ptlen) || ptlen < maclen)
            goto out;
        memcpy((unsigned char *)pt + ptlen - maclen, mac, maclen);
    }
    f = fopen(argv[2], "wb");
    if (f && fwrite(j.msg, 1, j.msglen, f) == j.msglen && fclose(f) == 0)
        rc = 0;
out:
    free(old);
    free(prot_part);
    OPENSSL_free(mac);
    OSSL_CRMF_PBMPARAMETER_free(pbm);
    free(j.msg);
    X509_REQ_free(csr);
    tm_profile_free(g_prof);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "reuse-nonce"))
        return do_reuse_nonce(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "load"))
        return do_load(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "post"))
        return do_post(argc - 2, argv + 2);
    fprintf(stderr,
            "usage: bench_cmp load --url URL --secret-source FILE --root CA.pem "
            "[--clients N] [--requests M] [--check]\n"
            "       bench_cmp post URL FILE [--type CONTENT-TYPE] [--method M] [--out FILE]\n"
            "       bench_cmp reuse-nonce OLD.der CSR.pem OUT.der --secret-source F\n");
    return 2;
}
