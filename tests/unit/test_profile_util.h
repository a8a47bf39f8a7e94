/* Helpers shared by the profile's unit tests: keys, a throw-away CA, and
 * requests/certificates made through the library and signed with stock EVP. */
#ifndef TEST_PROFILE_UTIL_H
#define TEST_PROFILE_UTIL_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tm_profile.h"

/* "P-256", "P-384", "RSA-2048", "ED25519" */
EVP_PKEY *tpu_key(const char *kind);
/* A self-signed CA certificate with SKI (key EC P-256). */
void tpu_ca(EVP_PKEY **key, X509 **cert);
/* A signed request for serial/purpose built by tm_profile_build_request. */
X509_REQ *tpu_request(const tm_profile *p, EVP_PKEY *key, const char *serial, const char *purpose);
/* tm_profile_issue + X509_sign by the CA. */
X509 *tpu_issue(const tm_profile *p, const X509_REQ *req, EVP_PKEY *ca_key, X509 *ca_cert);
/* Re-signs after a test changed a request / certificate. */
void tpu_sign_req(X509_REQ *req, EVP_PKEY *key);
void tpu_sign_cert(X509 *cert, EVP_PKEY *ca_key);
/* Replaces (or adds) an extension given in OpenSSL's config syntax. */
void tpu_cert_set_ext(X509 *cert, X509 *ca, int nid, const char *value);
/* Sets the request's extensions to exactly these (NULL-terminated nid/value pairs). */
void tpu_req_set_exts(X509_REQ *req, const int *nids, const char *const *values);
/* Asserts that some message of v contains needle, and prints them on failure. */
void tpu_expect(const tm_violations *v, const char *needle);
/* Asserts exactly n violations. */
void tpu_expect_count(const tm_violations *v, size_t n);
/* The profile under test: conf/profile.cnf from the source tree. */
tm_profile *tpu_profile(void);
tm_profile *tpu_profile_text(const char *text);

#endif
