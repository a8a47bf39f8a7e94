/*
 * The local CA: its records in a database (castore.h), an
 * openssl-ca-compatible directory (index.txt, serial, newcerts/) written
 * from them, batch issuance in one transaction, and its per-token locks.
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
    /* out: refused because the CA database cannot be reached now; the
     * request may be sent again (CMP systemUnavail) */
    int unavailable;
} tool_ca_item;

/* Creates DIR as a CA: keys, self-signed root, index, serial, newcerts/, ca.cnf. */
int tool_ca_init(const char *dir, const char *key_uri, const char *key_file, const char *subject,
                 tool_crypto *crypto, char *err, size_t errlen);
/* The same with the records in a given database: conninfo NULL or "" is
 * DIR/ca.db (SQLite), else a PostgreSQL connection string, written into
 * DIR/ca.cnf ([ tokenmint ] database). */
int tool_ca_init_db(const char *dir, const char *conninfo, const char *key_uri,
                    const char *key_file, const char *subject, tool_crypto *crypto, char *err,
                    size_t errlen);
/* Opens the CA: its records in conninfo when given, else the database
 * DIR/ca.cnf names, else DIR/ca.db. Takes in what stock openssl ca or an
 * old-format directory left (reported on stderr) and rewrites index.txt. */
tool_ca *tool_ca_open(const char *dir, const tm_profile *prof, tool_crypto *crypto,
                      const char *operator_id, char *err, size_t errlen);
tool_ca *tool_ca_open_db(const char *dir, const char *conninfo, const tm_profile *prof,
                         tool_crypto *crypto, const char *operator_id, char *err, size_t errlen);
/* The records alone, without the CA key (ca list, show): cannot issue. */
tool_ca *tool_ca_open_records(const char *dir, const char *conninfo, const tm_profile *prof,
                              tool_crypto *crypto, char *err, size_t errlen);
int tool_cmd_ca_list(int argc, char **argv); /* ca list, ca show */
/* The CA's record store (ca/castore.h), borrowed. Use it from one thread
 * at a time, not while a batch runs. */
struct tool_castore *tool_ca_store(tool_ca *ca);
/* A server's choice: index.txt rewritten every ~250 ms (and at close)
 * instead of after every batch. The database is durable either way. */
void tool_ca_set_lazy_view(tool_ca *ca, int lazy);
void tool_ca_close(tool_ca *ca);
X509 *tool_ca_root(tool_ca *ca); /* borrowed */
/* Claims 9/16 (steps 9, 10): verifies and issues a batch in one database
 * transaction; every certificate returned is durable in the database.
 * Returns the number issued. */
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
