/*
 * Who protected a CMP message (issue 12: rr and kur). OpenSSL 3.0's server
 * checks a message's protection before our callbacks run, but does not tell
 * them whose it was: a PBMAC with our secret (a station or RA we share it
 * with), or a signature by some certificate that chains to --trusted. An rr
 * signed by one token's certificate must not revoke another token's, so the
 * callbacks ask again here, with the public OSSL_CMP_validate_msg: once
 * with the shared secret, once pinned to the first extraCerts certificate
 * (RFC 4210 5.1.1: the protecting certificate comes first).
 */
#include "cmp/cmp.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

/* The first certificate of the message's extraCerts, read from its DER
 * (PKIMessage ::= SEQUENCE { header, body, [0] protection, [1] extraCerts }). */
static X509 *first_extra_cert(const OSSL_CMP_MSG *msg)
{
    unsigned char *der = NULL;
    const unsigned char *p, *end;
    long len;
    int tag, xclass, n, inf;
    X509 *x = NULL;

    n = i2d_OSSL_CMP_MSG((OSSL_CMP_MSG *)msg, &der);
    if (n <= 0)
        return NULL;
    p = der;
    inf = ASN1_get_object(&p, &len, &tag, &xclass, n);
    if ((inf & 0x80) || inf != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE)
        goto out;
    end = p + len;
    while (p < end) {
        const unsigned char *start = p;
        inf = ASN1_get_object(&p, &len, &tag, &xclass, end - p);
        if ((inf & 0x80) || (inf & 1))
            goto out;
        if (xclass == V_ASN1_CONTEXT_SPECIFIC && tag == 1 && p != start) {
            /* [1] EXPLICIT SEQUENCE SIZE (1..MAX) OF CMPCertificate */
            const unsigned char *q = p;
            long l2;
            int t2, c2;
            inf = ASN1_get_object(&q, &l2, &t2, &c2, len);
            if (!(inf & 0x80) && t2 == V_ASN1_SEQUENCE)
                x = d2i_X509(NULL, &q, l2);
            goto out;
        }
        p += len;
    }
out:
    OPENSSL_free(der);
    return x;
}

/* 1 when msg's protection verifies with ctx's settings (secret, or a pinned
 * certificate), quietly: a failure is an answer here, not an error. */
static int validates(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *msg)
{
    int ok;
    ERR_set_mark();
    OSSL_CMP_CTX_set_log_cb(ctx, NULL);
    OSSL_CMP_CTX_set_log_verbosity(ctx, OSSL_CMP_LOG_EMERG);
    ok = OSSL_CMP_validate_msg(ctx, msg) == 1;
    ERR_pop_to_mark();
    return ok;
}

int tool_cmp_msg_protector(const OSSL_CMP_MSG *msg, const unsigned char *secret, size_t secret_len,
                           OSSL_LIB_CTX *libctx, X509 **signer)
{
    OSSL_CMP_CTX *ctx = NULL;
    X509 *x = NULL;
    int rc = TOOL_CMP_PROT_NONE;

    /* guard by hand: the fuzz targets link the handler without tool.c */
    if (msg == NULL || signer == NULL)
        return TOOL_CMP_PROT_NONE;
    *signer = NULL;
    if (secret && secret_len) {
        ctx = OSSL_CMP_CTX_new(libctx, NULL);
        if (ctx && OSSL_CMP_CTX_set1_secretValue(ctx, secret, (int)secret_len) &&
            validates(ctx, msg)) {
            rc = TOOL_CMP_PROT_PBMAC;
            goto out;
        }
        OSSL_CMP_CTX_free(ctx);
        ctx = NULL;
    }
    x = first_extra_cert(msg);
    if (!x)
        goto out;
    /* pinned: only this certificate's key may have signed (no chain
     * building; the caller checks the certificate itself) */
    ctx = OSSL_CMP_CTX_new(libctx, NULL);
    if (ctx && OSSL_CMP_CTX_set1_srvCert(ctx, x) && validates(ctx, msg)) {
        rc = TOOL_CMP_PROT_SIGNATURE;
        *signer = x;
        x = NULL;
    }
out:
    X509_free(x);
    OSSL_CMP_CTX_free(ctx);
    return rc;
}

int tool_cmp_cert_trusted(X509 *cert, X509_STORE *trusted)
{
    X509_STORE_CTX *ctx;
    int ok;

    if (!cert || !trusted)
        return 0;
    ctx = X509_STORE_CTX_new();
    ok = ctx && X509_STORE_CTX_init(ctx, trusted, cert, NULL) && X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    return ok;
}

int tool_cmp_cert_is(X509 *cert, const X509_NAME *issuer, const ASN1_INTEGER *serial)
{
    return cert && issuer && serial && X509_NAME_cmp(X509_get_issuer_name(cert), issuer) == 0 &&
           ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), serial) == 0;
}
