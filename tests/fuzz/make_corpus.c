/*
 * Writes the fuzz seed corpus: DER of conforming and violating
 * TBSCertificates, CertificationRequestInfos, certificates and requests made
 * through the library, plus the default profile text.
 *   profile-fuzz-corpus OUTDIR
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tm_profile.h"

static const char *outdir;

static int put(const char *name, const unsigned char *der, int len)
{
    char path[4096];
    FILE *f;

    if (len <= 0)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(der, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f)
            fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

static const EVP_MD *md(EVP_PKEY *k)
{
    return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

static int seeds(const tm_profile *p, EVP_PKEY *ca_key, X509 *ca, EVP_PKEY *key, const char *tag,
                 const char *serial, const char *purpose, int add_cn)
{
    X509_REQ *req = X509_REQ_new();
    X509 *cert = X509_new();
    tm_violations *v = tm_violations_new();
    unsigned char *der = NULL;
    char name[128];
    int len, ok = 0;

    if (!X509_REQ_set_pubkey(req, key) ||
        !tm_profile_build_request(p, req, (const unsigned char *)serial, strlen(serial), NULL,
                                  purpose, v) ||
        !X509_REQ_sign(req, key, md(key)) || !X509_set_pubkey(cert, key) ||
        !tm_profile_issue(p, cert, req, ca, v))
        goto out;
    if (add_cn) {
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"Alice", -1, -1, 0);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"Alice", -1, -1, 0);
    }
    if (!X509_REQ_sign(req, key, md(key)) || !X509_sign(cert, ca_key, md(ca_key)))
        goto out;
#define PUT(kind, fn, obj)                                                                         \
    do {                                                                                           \
        snprintf(name, sizeof(name), "%s-%s.der", tag, kind);                                      \
        len = fn(obj, &der);                                                                       \
        if (!put(name, der, len))                                                                  \
            goto out;                                                                              \
        OPENSSL_free(der);                                                                         \
        der = NULL;                                                                                \
    } while (0)
    PUT("tbs", i2d_re_X509_tbs, cert);
    PUT("cri", i2d_re_X509_REQ_tbs, req);
    PUT("cert", i2d_X509, cert);
    PUT("req", i2d_X509_REQ, req);
    ok = 1;
out:
    if (!ok)
        fprintf(stderr, "cannot make seed %s\n", tag);
    OPENSSL_free(der);
    tm_violations_free(v);
    X509_free(cert);
    X509_REQ_free(req);
    return ok;
}

int main(int argc, char **argv)
{
    tm_profile *p;
    EVP_PKEY *ca_key, *ec, *ed, *rsa;
    X509 *ca = X509_new();
    X509_NAME *n = X509_NAME_new();
    ASN1_INTEGER *sn = tm_profile_random_serial();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    extern const char tm_profile_default_text[];
    int ok = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: profile-fuzz-corpus OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    p = tm_profile_load(NULL, NULL);
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    if (p == NULL || ca_key == NULL || ec == NULL || ed == NULL || rsa == NULL || ca == NULL)
        return 1;
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"seed CA", -1, -1, 0);
    X509_set_version(ca, X509_VERSION_3);
    X509_set_serialNumber(ca, sn);
    X509_set_subject_name(ca, n);
    X509_set_issuer_name(ca, n);
    X509_gmtime_adj(X509_getm_notBefore(ca), 0);
    X509_gmtime_adj(X509_getm_notAfter(ca), 86400);
    X509_set_pubkey(ca, ca_key);
    X509V3_set_ctx(&ctx, ca, ca, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(ca, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(ca, ca_key, EVP_sha256());

    ok &= seeds(p, ca_key, ca, ec, "ec-auth", "0A1B2C3D", "auth", 0);
    ok &= seeds(p, ca_key, ca, ed, "ed-sign", "AB?C\xff", "sign", 0);
    ok &= seeds(p, ca_key, ca, rsa, "rsa-encrypt", "TOKEN 1", "encrypt", 0);
    ok &= seeds(p, ca_key, ca, ec, "ec-alice", "0A1B2C3E", "auth", 1);
    ok &= put("profile.cnf", (const unsigned char *)tm_profile_default_text,
              (int)strlen(tm_profile_default_text));
    ok &= put("serial.txt", (const unsigned char *)"AB?3FC?FF", 9);

    ASN1_INTEGER_free(sn);
    X509_NAME_free(n);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
    tm_profile_free(p);
    return ok ? 0 : 1;
}
