/*
 * The CMP handler set-up shared by the fuzz target and its seed generator: a
 * fixed PBMAC secret and a backend that issues through the profile library
 * with a throwaway CA (made once per process).
 */
#ifndef TOKENMINT_CMP_FUZZ_COMMON_H
#define TOKENMINT_CMP_FUZZ_COMMON_H

#include <string.h>

#include <openssl/x509v3.h>

#include "cmp/cmp.h"
#include "tm_profile.h"

#define TM_FUZZ_CMP_SECRET "fuzz-cmp-secret"

typedef struct tm_fuzz_ca {
    EVP_PKEY *key;
    X509 *root;
    tm_profile *prof;
} tm_fuzz_ca;

static tm_fuzz_ca *tm_fuzz_ca_get(void)
{
    static tm_fuzz_ca ca;
    if (!ca.key) {
        X509_NAME *n = X509_NAME_new();
        ca.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ca.root = X509_new();
        ca.prof = tm_profile_load(NULL, NULL);
        if (!ca.key || !ca.root || !n || !ca.prof ||
            !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"fuzz CA",
                                        -1, -1, 0) ||
            !X509_set_version(ca.root, 2) || !X509_set_subject_name(ca.root, n) ||
            !X509_set_issuer_name(ca.root, n) || !X509_set_pubkey(ca.root, ca.key) ||
            !X509_gmtime_adj(X509_getm_notBefore(ca.root), 0) ||
            !X509_gmtime_adj(X509_getm_notAfter(ca.root), 86400) ||
            !X509_sign(ca.root, ca.key, EVP_sha256()))
            abort();
        X509_NAME_free(n);
    }
    return &ca;
}

static int tm_fuzz_issue(void *ctx, const tool_cmp_req *r, tool_cmp_answer *ans)
{
    tm_fuzz_ca *ca = ctx;
    const X509_REQ *req = r->p10 ? r->p10 : r->tmpl;
    X509 *cert = X509_new();
    tm_violations *v = tm_violations_new();

    if (cert && v && X509_set_version(cert, 2) && X509_set_pubkey(cert, r->pub) &&
        tm_profile_issue(ca->prof, cert, req, ca->root, v) &&
        X509_sign(cert, ca->key, EVP_sha256())) {
        ans->cert = cert;
        tm_violations_free(v);
        return 1;
    }
    if (v)
        tm_violations_join(v, ans->text, sizeof ans->text);
    ans->failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
    tm_violations_free(v);
    X509_free(cert);
    return 0;
}

static tool_cmp_srv *tm_fuzz_cmp_server(int deferred)
{
    tm_fuzz_ca *ca = tm_fuzz_ca_get();
    tool_cmp_srv_opts o;
    tool_cmp_backend be = {ca, tm_fuzz_issue, NULL, NULL, NULL, NULL};
    char err[256];

    memset(&o, 0, sizeof o);
    o.secret = (const unsigned char *)TM_FUZZ_CMP_SECRET;
    o.secret_len = strlen(TM_FUZZ_CMP_SECRET);
    o.name = X509_get_subject_name(ca->root);
    o.deferred = deferred;
    return tool_cmp_srv_new(&o, &be, err, sizeof err);
}

#endif
