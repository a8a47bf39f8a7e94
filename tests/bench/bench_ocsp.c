/*
 * bench_ocsp: signed OCSP responses per second from `tokenmint ca serve`
 * (issue 12 goal: at least 2,000/s on a 2-core machine).
 *
 *   bench_ocsp --port P --issuer CA.pem --cert C.pem [--clients N]
 *              [--seconds S] [--path /ocsp]
 *
 * Every request (each with its own nonce) is built before the clock
 * starts; N client threads then POST them over kept-alive HTTP/1.1
 * connections to 127.0.0.1:P for S seconds (at most 60). Prints responses
 * per second. Every response must be HTTP 200; the first of each thread is
 * decoded: successful, signature verifying with CA.pem, status good or
 * revoked for C.pem, and its nonce the request's (exit 1 otherwise).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ocsp.h>
#include <openssl/pem.h>

#define PER_THREAD 4096 /* distinct requests per thread, reused in turn */

static int g_port;
static double g_seconds = 5;
static const char *g_path = "/ocsp";
static X509 *g_issuer, *g_cert;
static volatile int g_stop;

typedef struct worker {
    pthread_t th;
    unsigned char **req;
    int *reqlen;
    OCSP_REQUEST *first;
    long done;
    int failed;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_response(int fd, char *buf, size_t cap, size_t *bodyoff, size_t *bodylen,
                         int *status)
{
    size_t got = 0;
    char *hdr_end = NULL;
    long cl = -1;

    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            return 0;
        got += (size_t)r;
        buf[got] = 0;
        if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
            char *p = strcasestr(buf, "\r\nContent-Length:");
            if (!p || sscanf(buf, "HTTP/%*s %d", status) != 1)
                return 0;
            cl = strtol(p + 17, NULL, 10);
            *bodyoff = (size_t)(hdr_end + 4 - buf);
        }
        if (hdr_end && got >= *bodyoff + (size_t)cl) {
            *bodylen = (size_t)cl;
            return 1;
        }
        if (got >= cap - 1)
            return 0;
    }
}

static int check_first(const unsigned char *der, size_t len, OCSP_REQUEST *req)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = rsp ? OCSP_response_get1_basic(rsp) : NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509_STORE *st = X509_STORE_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, g_cert, g_issuer);
    int ok = 0, status = -1, reason;

    if (!rsp || OCSP_response_status(rsp) != OCSP_RESPONSE_STATUS_SUCCESSFUL || !bs || !st ||
        !certs || !id)
        goto out;
    sk_X509_push(certs, g_issuer);
    X509_STORE_add_cert(st, g_issuer);
    if (OCSP_basic_verify(bs, certs, st, 0) != 1 || OCSP_check_nonce(req, bs) != 1)
        goto out;
    if (!OCSP_resp_find_status(bs, id, &status, &reason, NULL, NULL, NULL))
        goto out;
    ok = status == V_OCSP_CERTSTATUS_GOOD || status == V_OCSP_CERTSTATUS_REVOKED;
out:
    OCSP_RESPONSE_free(rsp);
    OCSP_BASICRESP_free(bs);
    sk_X509_free(certs);
    X509_STORE_free(st);
    OCSP_CERTID_free(id);
    return ok;
}

static void *run(void *arg)
{
    worker *w = arg;
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, i = 0;
    char hdr[256], *buf = malloc(1 << 16);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)g_port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || !buf || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        w->failed = 1;
        goto out;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (!g_stop) {
        size_t off = 0, blen = 0;
        int st = 0, hl = snprintf(hdr, sizeof hdr,
                                  "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                  "application/ocsp-request\r\nContent-Length: %d\r\n\r\n",
                                  g_path, w->reqlen[i]);
        if (write(fd, hdr, (size_t)hl) != hl ||
            write(fd, w->req[i], (size_t)w->reqlen[i]) != w->reqlen[i] ||
            !read_response(fd, buf, 1 << 16, &off, &blen, &st) || st != 200) {
            w->failed = 1;
            break;
        }
        if (w->done == 0 && !check_first((unsigned char *)buf + off, blen, w->first)) {
            fprintf(stderr, "bench_ocsp: the first response is not a good signed answer\n");
            w->failed = 1;
            break;
        }
        w->done++;
        i = (i + 1) % PER_THREAD;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static X509 *load(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

int main(int argc, char **argv)
{
    int clients = 8, i, j, failed = 0;
    const char *issuer = NULL, *cert = NULL;
    worker *w;
    double t0, t1;
    long total = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            g_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--issuer") && i + 1 < argc)
            issuer = argv[++i];
        else if (!strcmp(argv[i], "--cert") && i + 1 < argc)
            cert = argv[++i];
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            g_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            g_path = argv[++i];
        else {
            fprintf(stderr, "bench_ocsp: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!g_port || !issuer || !cert || clients < 1 || clients > 64 || g_seconds <= 0 ||
        g_seconds > 60) {
        fprintf(stderr, "usage: bench_ocsp --port P --issuer CA.pem --cert C.pem [--clients N] "
                        "[--seconds S (<= 60)]\n");
        return 2;
    }
    g_issuer = load(issuer);
    g_cert = load(cert);
    if (!g_issuer || !g_cert)
        return 2;
    w = calloc((size_t)clients, sizeof *w);
    for (i = 0; i < clients; i++) {
        w[i].req = calloc(PER_THREAD, sizeof *w[i].req);
        w[i].reqlen = calloc(PER_THREAD, sizeof *w[i].reqlen);
        for (j = 0; j < PER_THREAD; j++) {
            OCSP_REQUEST *r = OCSP_REQUEST_new();
            OCSP_CERTID *id = OCSP_cert_to_id(NULL, g_cert, g_issuer);
            if (!r || !id || !OCSP_request_add0_id(r, id) || !OCSP_request_add1_nonce(r, NULL, -1))
                return 1;
            w[i].reqlen[j] = i2d_OCSP_REQUEST(r, &w[i].req[j]);
            if (j == 0)
                w[i].first = r;
            else
                OCSP_REQUEST_free(r);
        }
    }
    t0 = now_s();
    for (i = 0; i < clients; i++)
        pthread_create(&w[i].th, NULL, run, &w[i]);
    while (now_s() - t0 < g_seconds)
        usleep(20000);
    g_stop = 1;
    for (i = 0; i < clients; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].done;
        failed |= w[i].failed;
    }
    t1 = now_s();
    printf("%ld signed OCSP responses in %.2f s with %d clients: %.0f/s (goal >= 2,000)\n", total,
           t1 - t0, clients, total / (t1 - t0));
    return failed ? 1 : 0;
}
