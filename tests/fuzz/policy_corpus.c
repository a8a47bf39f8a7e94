/*
 * Writes the write policy's fuzz seeds: DER certificates made through the
 * profile library for the fuzz target's token serial (EC, RSA, Ed25519), one
 * for another serial, and a CA certificate outside the profile.
 *   policy-fuzz-corpus OUTDIR
 */
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tm_profile.h"

static int write_cert(const char *dir, const char *name, X509 *c)
{
    char path[4096];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    ok = f != NULL && i2d_X509_fp(f, c) == 1;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "cannot write %s\n", path);
    return ok;
}

static X509 *issue(const tm_profile *p, EVP_PKEY *key, const char *serial, X509 *ca,
                   EVP_PKEY *ca_key)
{
    X509_REQ *req = X509_REQ_new();
    X509 *c = X509_new();
    int ok =
        req != NULL && c != NULL && X509_REQ_set_pubkey(req, key) &&
        tm_profile_build_request(p, req, (const unsigned char *)serial, 16, NULL, NULL, NULL) &&
        X509_set_pubkey(c, key) && tm_profile_issue(p, c, req, ca, NULL) &&
        X509_sign(c, ca_key, EVP_sha256()) > 0;
    X509_REQ_free(req);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

int main(int argc, char **argv)
{
    tm_profile *p = tm_profile_load(NULL, NULL);
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *keys[3] = {EVP_EC_gen("P-256"), EVP_RSA_gen(1024),
                         EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
    const char *names[3] = {"ec.der", "rsa.der", "ed25519.der"};
    X509 *ca = X509_new(), *c;
    X509_NAME *n = X509_NAME_new();
    int i, ok = 1;

    if (argc != 2 || p == NULL || ca_key == NULL || ca == NULL || n == NULL) {
        fprintf(stderr, "usage: policy-fuzz-corpus OUTDIR\n");
        return 1;
    }
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz CA", -1, -1, 0);
    X509_set_version(ca, 2);
    X509_set_subject_name(ca, n);
    X509_set_issuer_name(ca, n);
    X509_gmtime_adj(X509_getm_notBefore(ca), 0);
    X509_gmtime_adj(X509_getm_notAfter(ca), 86400);
    X509_set_pubkey(ca, ca_key);
    X509_sign(ca, ca_key, EVP_sha256());
    ok &= write_cert(argv[1], "ca.der", ca);
    for (i = 0; i < 3; i++) {
        c = issue(p, keys[i], "5a1f0c3e9b2d4411", ca, ca_key);
        ok &= c != NULL && write_cert(argv[1], names[i], c);
        X509_free(c);
    }
    c = issue(p, keys[0], "77aa00bb11cc22dd", ca, ca_key);
    ok &= c != NULL && write_cert(argv[1], "other-serial.der", c);
    X509_free(c);
    for (i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
    X509_NAME_free(n);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    tm_profile_free(p);
    return ok ? 0 : 1;
}
