/*
 * The OCSP responder and CRL download of `ca serve` (ca/ocsp.c).
 * Ownership: tool_ocsp_new's result is the caller's (tool_ocsp_free); the
 * CA is borrowed and must outlive it.
 */
#ifndef TOKENMINT_CA_OCSP_H
#define TOKENMINT_CA_OCSP_H

#include "ca/ca.h"
#include "ca/castore.h"

typedef struct tool_ocsp tool_ocsp;

/* Answers for the local CA ca (directory dir), signed by the CA key, or
 * by the delegated signer in cert_path/key_path (both or neither). NULL
 * with err when the signer is unusable. */
tool_ocsp *tool_ocsp_new(tool_ca *ca, const char *dir, const char *cert_path, const char *key_path,
                         OSSL_LIB_CTX *libctx, const char *log_name, char *err, size_t errlen);
void tool_ocsp_free(tool_ocsp *o);

/* An HTTP request that is not CMP: 0 when it is not ours (the caller
 * goes on with CMP), else the HTTP status with the body in *out (malloc'd)
 * and its Content-Type in *out_type. Thread-safe. */
int tool_ocsp_http(void *ctx, const char *method, const char *url, const char *ctype,
                   const unsigned char *body, size_t len, unsigned char **out, size_t *outlen,
                   const char **out_type);

#endif
