/*
 * profile-check: a test-only command that runs the profile library over PEM
 * or DER certificates and requests, so shell tests can call it.
 *   profile-check [--profile FILE] FILE...
 * Prints one line per violation; exit 0 when all conform, 1 when any
 * violation was found, 2 on usage or I/O errors.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "tm_profile.h"

static int check_file(const tm_profile *p, const char *path)
{
    BIO *in = BIO_new_file(path, "rb");
    X509 *cert = NULL;
    X509_REQ *req = NULL;
    tm_violations *v = tm_violations_new();
    tm_binding b;
    size_t i, n;
    int rc = 2, bound;

    if (in == NULL || v == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        goto out;
    }
    cert = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (cert == NULL) {
        (void)BIO_reset(in);
        req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
    }
    if (cert == NULL && req == NULL) {
        (void)BIO_reset(in);
        cert = d2i_X509_bio(in, NULL);
    }
    if (cert == NULL && req == NULL) {
        (void)BIO_reset(in);
        req = d2i_X509_REQ_bio(in, NULL);
    }
    ERR_clear_error();
    if (cert == NULL && req == NULL) {
        fprintf(stderr, "%s: neither a certificate nor a request (PEM or DER)\n", path);
        goto out;
    }
    n = cert ? tm_profile_check_cert(p, cert, v) : tm_profile_check_req(p, req, v);
    bound = cert ? tm_binding_from_cert(p, cert, &b, NULL) : tm_binding_from_req(p, req, &b, NULL);
    for (i = 0; i < tm_violations_count(v); i++)
        printf("%s: %s\n", path, tm_violations_get(v, i));
    if (n == 0)
        printf("%s: conforms: serialNumber=%s hwType=%s purpose=%s\n", path, b.serial_text,
               b.hw_type, b.purpose);
    else if (bound)
        printf("%s: names token serialNumber=%s\n", path, b.serial_text);
    rc = n == 0 ? 0 : 1;
out:
    X509_free(cert);
    X509_REQ_free(req);
    BIO_free(in);
    tm_violations_free(v);
    return rc;
}

int main(int argc, char **argv)
{
    const char *profile = NULL;
    tm_violations *errors = tm_violations_new();
    tm_profile *p;
    int i = 1, rc = 0;
    size_t k;

    if (argc > 2 && strcmp(argv[1], "--profile") == 0) {
        profile = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: profile-check [--profile FILE] CERT-OR-REQUEST...\n");
        return 2;
    }
    p = tm_profile_load(profile, errors);
    if (p == NULL) {
        for (k = 0; k < tm_violations_count(errors); k++)
            fprintf(stderr, "profile: %s\n", tm_violations_get(errors, k));
        tm_violations_free(errors);
        return 2;
    }
    for (; i < argc; i++) {
        int r = check_file(p, argv[i]);
        if (r > rc)
            rc = r;
    }
    tm_profile_free(p);
    tm_violations_free(errors);
    return rc;
}
