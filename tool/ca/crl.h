/*
 * CRLs of the local CA (ca/crl.c). Ownership: the CRL returned is the
 * caller's; everything in the parameters is borrowed.
 */
#ifndef TOKENMINT_CA_CRL_H
#define TOKENMINT_CA_CRL_H

#include "ca/castore.h"
#include "tool.h"

#include <openssl/x509.h>

typedef struct tool_crl_params {
    tool_castore *db;
    X509 *root;
    EVP_PKEY *key;
    OSSL_LIB_CTX *libctx;
    long days;               /* nextUpdate = thisUpdate + days (ca.cnf default_crl_days) */
    const char *number_path; /* DIR/crlnumber: read, used, the next one written back */
    size_t *count;           /* out, optional: revoked entries */
} tool_crl_params;

/* A full CRL of every revoked record, signed by key. NULL with err. */
X509_CRL *tool_crl_build(const tool_crl_params *p, char *err, size_t errlen);

#endif
