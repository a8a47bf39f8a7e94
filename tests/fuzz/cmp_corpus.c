/*
 * cmp-fuzz-corpus DIR: seed messages for fuzz_cmp, made by OpenSSL's CMP
 * client talking to the handler in-process (a transfer callback instead of
 * HTTP): p10cr with and without implicit confirmation, certConf, ir, cr,
 * pollReq (deferred mode), genm, rr, and a p10cr with a broken signature.
 * Every request the client sends is saved as DIR/seed-NN.der.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cmp.h>
#include <openssl/err.h>

#include "cmp/cmp.h"
#include "cmp_fuzz_common.h"

static const char *outdir;
static int nseed;

static OSSL_CMP_MSG *transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *req)
{
    tool_cmp_srv *srv = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
    unsigned char *der = NULL, *out = NULL;
    const unsigned char *p;
    size_t outlen = 0;
    int len = i2d_OSSL_CMP_MSG(req, &der);
    OSSL_CMP_MSG *rsp = NULL;
    char path[4096];
    FILE *f;

    if (len <= 0)
        return NULL;
    snprintf(path, sizeof path, "%s/seed-%02d.der", outdir, nseed++);
    f = fopen(path, "wb");
    if (!f || fwrite(der, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    if (tool_cmp_srv_handle(srv, der, (size_t)len, &out, &outlen) == 200) {
        p = out;
        rsp = d2i_OSSL_CMP_MSG(NULL, &p, (long)outlen);
    }
    free(out);
    OPENSSL_free(der);
    return rsp;
}

static OSSL_CMP_CTX *client(tool_cmp_srv *srv, int implicit)
{
    OSSL_CMP_CTX *c = OSSL_CMP_CTX_new(NULL, NULL);
    if (!c || !OSSL_CMP_CTX_set_transfer_cb(c, transfer) ||
        !OSSL_CMP_CTX_set_transfer_cb_arg(c, srv) ||
        !OSSL_CMP_CTX_set1_secretValue(c, (const unsigned char *)TM_FUZZ_CMP_SECRET,
                                       (int)strlen(TM_FUZZ_CMP_SECRET)) ||
        !OSSL_CMP_CTX_set1_referenceValue(c, (const unsigned char *)"seed", 4) ||
        !OSSL_CMP_CTX_set_option(c, OSSL_CMP_OPT_IMPLICIT_CONFIRM, implicit) ||
        !OSSL_CMP_CTX_set_option(c, OSSL_CMP_OPT_TOTAL_TIMEOUT, 20))
        exit(1);
    OSSL_CMP_CTX_set_log_cb(c, tool_cmp_log_cb);
    return c;
}

static X509_REQ *profile_request(EVP_PKEY *key, int break_signature)
{
    X509_REQ *r = X509_REQ_new();
    tm_violations *v = tm_violations_new();
    const unsigned char serial[] = "00c0ffee42";

    if (!r || !v || !X509_REQ_set_version(r, 0) || !X509_REQ_set_pubkey(r, key) ||
        !tm_profile_build_request(tm_fuzz_ca_get()->prof, r, serial, sizeof serial - 1, NULL, NULL,
                                  v) ||
        !X509_REQ_sign(r, key, EVP_sha256()))
        exit(1);
    if (break_signature) {
        const ASN1_BIT_STRING *sig = NULL;
        X509_REQ_get0_signature(r, &sig, NULL);
        ((unsigned char *)ASN1_STRING_get0_data(sig))[4] ^= 1;
    }
    tm_violations_free(v);
    return r;
}

int main(int argc, char **argv)
{
    tool_cmp_srv *srv, *deferred;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req, *bad;
    OSSL_CMP_CTX *c;
    X509 *cert;

    if (argc != 2 || !key)
        return 2;
    outdir = argv[1];
    srv = tm_fuzz_cmp_server(0);
    deferred = tm_fuzz_cmp_server(1);
    req = profile_request(key, 0);
    bad = profile_request(key, 1);
    if (!srv || !deferred)
        return 1;

    c = client(srv, 0); /* p10cr + certConf */
    OSSL_CMP_CTX_set1_p10CSR(c, req);
    cert = X509_dup(OSSL_CMP_exec_P10CR_ses(c));
    OSSL_CMP_CTX_free(c);
    if (!cert) {
        fprintf(stderr, "cmp-fuzz-corpus: the handler issued nothing\n");
        return 1;
    }
    c = client(srv, 1); /* p10cr, implicit confirmation */
    OSSL_CMP_CTX_set1_p10CSR(c, req);
    OSSL_CMP_exec_P10CR_ses(c);
    OSSL_CMP_CTX_free(c);
    c = client(srv, 1); /* broken signature */
    OSSL_CMP_CTX_set1_p10CSR(c, bad);
    OSSL_CMP_exec_P10CR_ses(c);
    OSSL_CMP_CTX_free(c);
    {
        int type;
        for (type = 0; type < 2; type++) { /* ir, cr */
            c = client(srv, 0);
            EVP_PKEY_up_ref(key);
            OSSL_CMP_CTX_set0_newPkey(c, 1, key);
            OSSL_CMP_CTX_set1_subjectName(c, X509_REQ_get_subject_name(req));
            OSSL_CMP_CTX_set0_reqExtensions(c, X509_REQ_get_extensions(req));
            if (type == 0)
                OSSL_CMP_exec_IR_ses(c);
            else
                OSSL_CMP_exec_CR_ses(c);
            OSSL_CMP_CTX_free(c);
        }
    }
    c = client(deferred, 0); /* waiting, pollReq, certConf */
    OSSL_CMP_CTX_set1_p10CSR(c, req);
    OSSL_CMP_exec_P10CR_ses(c);
    OSSL_CMP_CTX_free(c);
    c = client(srv, 0); /* genm */
    sk_OSSL_CMP_ITAV_pop_free(OSSL_CMP_exec_GENM_ses(c), OSSL_CMP_ITAV_free);
    OSSL_CMP_CTX_free(c);
    c = client(srv, 0); /* rr */
    OSSL_CMP_CTX_set1_oldCert(c, cert);
    OSSL_CMP_exec_RR_ses(c);
    OSSL_CMP_CTX_free(c);
    ERR_clear_error();
    printf("cmp-fuzz-corpus: %d seed messages in %s\n", nseed, outdir);
    X509_free(cert);
    X509_REQ_free(req);
    X509_REQ_free(bad);
    EVP_PKEY_free(key);
    tool_cmp_srv_free(srv);
    tool_cmp_srv_free(deferred);
    return nseed >= 8 ? 0 : 1;
}
