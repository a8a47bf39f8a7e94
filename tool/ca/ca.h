/*
 * The local CA: an openssl-ca-compatible directory (index.txt, serial,
 * newcerts/), batch issuance under one DB lock, and its per-token locks.
 */
#ifndef TOKENMINT_TOOL_CA_H
#define TOKENMINT_TOOL_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "station/station.h"
#include "tm_profile.h"

/* ---- local CA (openssl-ca-compatible directory) ---------------------------- */

typedef struct tool_ca tool_ca;

typedef struct tool_ca_item {
    X509_REQ *req;          /* borrowed */
    const char *token_text; /* token serial (text), recorded */
    const char *purpose;
    X509 *cert;      /* out, owned by the item; NULL on failure */
    char error[512]; /* out */
    int done;        /* set by the CA queue */
    /* The caller verified the proof of possession (the CMP server: OpenSSL
     * checks a p10cr's signature or a CRMF POP): the CA does not check the
     * request's signature again. req may then be an unsigned template. */
    int pop_verified;
} tool_ca_item;

/* Creates DIR as a CA: keys, self-signed root, index, serial, newcerts/, ca.cnf. */
int tool_ca_init(const char *dir, const char *key_uri, const char *key_file, const char *subject,
                 tool_crypto *crypto, char *err, size_t errlen);
tool_ca *tool_ca_open(const char *dir, const tm_profile *prof, tool_crypto *crypto,
                      const char *operator_id, char *err, size_t errlen);
void tool_ca_close(tool_ca *ca);
X509 *tool_ca_root(tool_ca *ca); /* borrowed */
/* Claims 9/16 (steps 9, 10): verifies and issues a batch under one DB lock.
 * Each certificate file is on disk (fsync) before its index line. Returns the
 * number issued. */
size_t tool_ca_issue_batch(tool_ca *ca, tool_ca_item *items, size_t n);
/* A certificate issued earlier for this public key (never written to its
 * token?), or NULL. Caller frees. */
X509 *tool_ca_find_by_key(tool_ca *ca, EVP_PKEY *pub, const char *purpose);
/* Group commit: requests ready at the same time reach the CA as one batch. */
void tool_ca_submit(tool_ca *ca, tool_ca_item *item);

/* One process at a time per token (two `issue` runs on one station): a
 * flock on DIR/locks/<serial hex>. Returns the fd, -2 when another process
 * holds the token, -1 on error. */
int tool_ca_token_lock(tool_ca *ca, const unsigned char *serial, size_t len);
void tool_ca_token_unlock(int fd);

/* SHA-256 of a key's SubjectPublicKeyInfo, hex. */
int tool_spki_hash(EVP_PKEY *pub, char hex[65]);

#endif
