/*
 * bench_crl: time to make the local CA's full CRL with N revoked entries
 * (issue 12 goal: 100,000 entries in under 2 s).
 *
 *   bench_crl [--entries N] [--runs R] [--dir DIR]
 *
 * Sets up a throw-away SQLite CA store in DIR (default: a new directory
 * under $TMPDIR) holding N revoked records (one real certificate's DER
 * under N distinct serials: the CRL reads serial, time and reason only),
 * with a P-256 root, then times tool_crl_build (list the revoked records,
 * build, sort, sign, number) R times and prints each run and the median.
 * Wall and CPU time are printed. The setup is not timed. The output's CRL is checked: N entries,
 * and its signature verifies with the root.
 */
#include "ca/castore.h"
#include "ca/crl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static X509 *make_root(EVP_PKEY *key)
{
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *e;

    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"bench CA", -1, -1,
                               0);
    X509_set_subject_name(c, n);
    X509_set_issuer_name(c, n);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, key);
    X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
    X509_add_ext(c, e, -1);
    X509_EXTENSION_free(e);
    X509_sign(c, key, EVP_sha256());
    X509_NAME_free(n);
    return c;
}

int main(int argc, char **argv)
{
    long entries = 100000, runs = 3, i;
    const char *dir = NULL;
    char tmpl[] = "/tmp/bench_crl.XXXXXX", err[600], numpath[4200];
    tool_castore *db;
    tool_cs_record r;
    EVP_PKEY *key;
    X509 *root;
    double *t;
    size_t count = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--entries") && i + 1 < argc)
            entries = atol(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: bench_crl [--entries N] [--runs R] [--dir DIR]\n");
            return 2;
        }
    }
    if (entries < 1 || runs < 1 || runs > 50)
        return 2;
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 2;
    }
    key = EVP_EC_gen("P-256");
    root = key ? make_root(key) : NULL;
    db = root ? tool_castore_open(dir, NULL, err, sizeof err) : NULL;
    if (!db) {
        fprintf(stderr, "bench_crl: setup: %s\n", root ? err : "key/root");
        return 1;
    }
    memset(&r, 0, sizeof r);
    if (!tool_cs_record_from_cert(&r, root, "bench", "auth", "bench", "tokenmint"))
        return 1;
    {
        double t0 = now_s();
        if (tool_castore_begin(db) != TOOL_CS_OK)
            return 1;
        for (i = 0; i < entries; i++) {
            snprintf(r.serial, sizeof r.serial, "%016lX%08lX", 0x5eed0000ul + (unsigned long)i,
                     (unsigned long)i * 2654435761ul & 0xfffffffful);
            r.status = TOOL_CS_REVOKED;
            r.revoked_at = (int64_t)time(NULL) - i;
            r.reason = (int)(i % 6);
            if (tool_castore_insert(db, &r) != TOOL_CS_OK) {
                fprintf(stderr, "bench_crl: insert %ld: %s\n", i, tool_castore_error(db));
                return 1;
            }
        }
        if (tool_castore_commit(db) != TOOL_CS_OK)
            return 1;
        printf("setup: %ld revoked records in %.2f s (not timed below)\n", entries, now_s() - t0);
    }
    snprintf(numpath, sizeof numpath, "%s/crlnumber", dir);
    t = calloc((size_t)runs, sizeof *t);
    for (i = 0; i < runs; i++) {
        tool_crl_params p;
        X509_CRL *crl;
        double t0, c0;

        memset(&p, 0, sizeof p);
        p.db = db;
        p.root = root;
        p.key = key;
        p.days = 7;
        p.number_path = numpath;
        p.count = &count;
        t0 = now_s();
        c0 = cpu_s();
        crl = tool_crl_build(&p, err, sizeof err);
        t[i] = now_s() - t0;
        c0 = cpu_s() - c0;
        if (!crl) {
            fprintf(stderr, "bench_crl: %s\n", err);
            return 1;
        }
        if ((long)count != entries ||
            sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) != (int)entries ||
            X509_CRL_verify(crl, key) != 1) {
            fprintf(stderr, "bench_crl: the CRL is wrong (%zu entries)\n", count);
            return 1;
        }
        {
            int der = i2d_X509_CRL(crl, NULL);
            /* CPU time too: on a shared machine the wall clock says more about
             * the neighbours than about us */
            printf("run %ld: %.3f s wall, %.3f s CPU, %zu entries, %d bytes DER\n", i + 1, t[i], c0,
                   count, der);
        }
        X509_CRL_free(crl);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_d);
    printf("median: %.3f s to make a CRL with %ld revoked entries (goal < 2 s)\n", t[runs / 2],
           entries);
    tool_castore_close(db);
    if (dir == tmpl) { /* ours: leave nothing behind */
        static const char *const files[] = {"ca.db", "ca.db-wal", "ca.db-shm", "crlnumber"};
        size_t k;
        for (k = 0; k < sizeof files / sizeof files[0]; k++) {
            snprintf(numpath, sizeof numpath, "%s/%s", dir, files[k]);
            unlink(numpath);
        }
        rmdir(dir);
    }
    tool_cs_record_clear(&r);
    X509_free(root);
    EVP_PKEY_free(key);
    free(t);
    return 0;
}
