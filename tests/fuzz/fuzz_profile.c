/*
 * Fuzz target over everything in the profile library that reads untrusted
 * bytes: the TBSCertificate / CertificationRequestInfo decoders the provider
 * calls at signing time, whole certificates and requests, the serial text
 * decoder and the config loader. Any crash, leak or sanitizer report fails;
 * so does a check whose count disagrees with the messages it recorded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tm_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void agree(size_t n, tm_violations *v)
{
    size_t i;

    if (n != tm_violations_count(v))
        abort();
    for (i = 0; i < n; i++)
        if (tm_violations_get(v, i) == NULL || tm_violations_get(v, i)[0] == '\0')
            abort();
}

static void run(const tm_profile *p, const uint8_t *data, size_t size)
{
    tm_violations *v;
    tm_binding b;
    const unsigned char *q;
    X509 *cert;
    X509_REQ *req;

    v = tm_violations_new();
    agree(tm_profile_check_tbs(p, data, size, v), v);
    tm_violations_free(v);
    v = tm_violations_new();
    agree(tm_profile_check_req_info(p, data, size, v), v);
    tm_violations_free(v);
    if (tm_binding_from_tbs(p, data, size, &b, NULL) && b.serial_len == 0)
        abort();
    if (tm_binding_from_req_info(p, data, size, &b, NULL) && b.serial_len == 0)
        abort();

    q = data;
    cert = d2i_X509(NULL, &q, (long)size);
    if (cert != NULL) {
        v = tm_violations_new();
        agree(tm_profile_check_cert(p, cert, v), v);
        tm_violations_free(v);
        (void)tm_binding_from_cert(p, cert, &b, NULL);
        X509_free(cert);
    }
    q = data;
    req = d2i_X509_REQ(NULL, &q, (long)size);
    if (req != NULL) {
        v = tm_violations_new();
        agree(tm_profile_check_req(p, req, v), v);
        tm_violations_free(v);
        (void)tm_binding_from_req(p, req, &b, NULL);
        X509_REQ_free(req);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tm_profile *p;
    unsigned char raw[TM_SERIAL_MAX];
    char text[TM_SERIAL_TEXT_MAX + 1];
    size_t n;

    if (p == NULL) {
        p = tm_profile_load(NULL, NULL);
        if (p == NULL)
            abort();
    }
    run(p, data, size);

    /* the serial text: whatever decodes must encode back to the same text */
    n = tm_serial_decode((const char *)data, size, raw, sizeof(raw));
    if (n > 0 &&
        (tm_serial_encode(raw, n, text, sizeof(text)) != size || memcmp(text, data, size) != 0))
        abort();

    /* the .include scanner every config loader runs first (it may say no,
     * never crash, and always says why) */
    {
        char why[512];
        if (!tm_conf_check_includes((const char *)data, size, "(fuzz)", why, sizeof(why)) &&
            why[0] == '\0')
            abort();
    }
    /* the config loader, on text-sized inputs */
    if (size < 8192) {
        char *conf = malloc(size + 1);
        tm_violations *v = tm_violations_new();
        tm_profile *q;
        if (conf != NULL) {
            memcpy(conf, data, size);
            conf[size] = '\0';
            q = tm_profile_load_string(conf, v);
            if (q == NULL && tm_violations_count(v) == 0)
                abort(); /* refused without saying why */
            if (q != NULL)
                run(q, data, size > 64 ? 64 : size);
            tm_profile_free(q);
            free(conf);
        }
        tm_violations_free(v);
    }
    ERR_clear_error();
    return 0;
}
