/*
 * How much the profile costs at the signing boundary: checks per second of a
 * TBSCertificate and a CertificationRequestInfo (what the provider does for
 * every signature), plus building and issuing. Not a test: run it by hand.
 *   bench_profile [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tm_profile.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, int n, double secs)
{
    printf("%-34s %8d in %7.3f s  %10.0f /s  %8.1f us each\n", what, n, secs, n / secs,
           secs * 1e6 / n);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000, i;
    tm_profile *p = tm_profile_load(NULL, NULL);
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ca = X509_new(), *cert = NULL;
    X509_REQ *req = NULL;
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    unsigned char *tbs = NULL, *cri = NULL;
    int tbs_len, cri_len;
    double t;

    if (p == NULL || ca_key == NULL || key == NULL || n <= 0)
        return 1;
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bench CA", -1, -1,
                               0);
    X509_set_version(ca, X509_VERSION_3);
    X509_set_subject_name(ca, name);
    X509_set_issuer_name(ca, name);
    X509_set_pubkey(ca, ca_key);
    X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(ca, ext, -1);
    X509_EXTENSION_free(ext);

    t = now();
    for (i = 0; i < n; i++) {
        X509_REQ_free(req);
        req = X509_REQ_new();
        X509_REQ_set_pubkey(req, key);
        if (!tm_profile_build_request(p, req, (const unsigned char *)"0A1B2C3D", 8, NULL, "auth",
                                      NULL))
            return 1;
    }
    report("tm_profile_build_request", n, now() - t);
    X509_REQ_sign(req, key, EVP_sha256());

    t = now();
    for (i = 0; i < n; i++) {
        X509_free(cert);
        cert = X509_new();
        X509_set_pubkey(cert, key);
        if (!tm_profile_issue(p, cert, req, ca, NULL))
            return 1;
    }
    report("tm_profile_issue", n, now() - t);
    X509_sign(cert, ca_key, EVP_sha256());

    tbs_len = i2d_re_X509_tbs(cert, &tbs);
    cri_len = i2d_re_X509_REQ_tbs(req, &cri);
    t = now();
    for (i = 0; i < n; i++)
        if (tm_profile_check_tbs(p, tbs, (size_t)tbs_len, NULL) != 0)
            return 1;
    report("tm_profile_check_tbs", n, now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (tm_profile_check_req_info(p, cri, (size_t)cri_len, NULL) != 0)
            return 1;
    report("tm_profile_check_req_info", n, now() - t);
    t = now();
    for (i = 0; i < n; i++)
        if (tm_profile_check_cert(p, cert, NULL) != 0)
            return 1;
    report("tm_profile_check_cert (parsed)", n, now() - t);

    OPENSSL_free(tbs);
    OPENSSL_free(cri);
    X509_free(cert);
    X509_REQ_free(req);
    X509_NAME_free(name);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tm_profile_free(p);
    return 0;
}
