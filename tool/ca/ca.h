/*
 * The CA a station issues from, as one interface (tool_ca + tool_ca_ops) with
 * two backends: the local CA (ca/local.c: its records in a database
 * (castore.h), an openssl-ca-compatible directory written from them, batch
 * issuance in one transaction) and a CMP server (cmp/station.c: `issue
 * --cmp URL`, `watch --cmp URL`). Callers hold a tool_ca * and never ask which
 * backend it is.
 *
 * A new CA operation (revoke, renew, ...) plugs in as one more member of
 * tool_ca_ops, a tool_ca_<op>() wrapper in ca/ca.c that refuses cleanly when a
 * backend leaves it NULL, and an implementation in each backend that can do it.
 */
#ifndef TOKENMINT_TOOL_CA_H
#define TOKENMINT_TOOL_CA_H

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "station/station.h"
#include "tm_profile.h"

typedef struct tool_ca tool_ca;

/* One request to certify, and its outcome. */
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
    /* set by tool_ca_submit while ops->prepare's cert (signed, not yet
     * stored) waits for its batch; 0 for callers */
    int prepared;
    /* Same-key renewal (issue 12): the certificate (serial hex) this one
     * renews, for the same key, purpose and token. The CA records it
     * superseded in the transaction that stores the new one (a key has one
     * valid certificate per purpose at any time). */
    const char *replaces;
    /* Only a certificate the CA already holds for this key and purpose (and
     * binding) is answered; nothing new is issued. */
    int known_only;
    /* Renewal over CMP (kur, RFC 9483 4.1.3): the certificate being
     * updated and its key, which protects the request, and the new key
     * pair's private key for the proof of possession (the same key for a
     * same-key renewal). Borrowed; NULL for a first certificate. */
    X509 *old_cert;
    EVP_PKEY *old_key;
    EVP_PKEY *new_key;
} tool_ca_item;

/* ---- the interface: what every backend implements ------------------------- */

typedef struct tool_ca_ops {
    const char *name; /* "local CA", "CMP": for messages */
    /* Everything that can be checked before a token is touched (files, keys,
     * credentials, URL). 0 with the reason in err: the command exits 2. */
    int (*check)(tool_ca *ca, char *err, size_t errlen);
    /* Steps 9-10 for a batch: fills every item's cert or error. Returns the
     * number issued. Thread-safe. */
    size_t (*issue_batch)(tool_ca *ca, tool_ca_item *items, size_t n);
    /* Optional: the part of issue_batch that needs no database (checks,
     * signing) for one item, run by tool_ca_submit in the caller's thread so
     * that requests are signed in parallel, not one after another inside the
     * batch: fills cert or error. tool_ca_submit then marks the item
     * prepared, and issue_batch stores that cert instead of making one. */
    void (*prepare)(tool_ca *ca, tool_ca_item *item);
    /* The root the station verifies certificates against (step 11). Borrowed. */
    X509 *(*root)(tool_ca *ca);
    /* A certificate issued earlier for this public key and purpose (an
     * interrupted run never wrote it), or NULL. Caller frees. NULL member: the
     * backend keeps no record the station can read. */
    X509 *(*find_by_key)(tool_ca *ca, EVP_PKEY *pub, const char *purpose);
    /* One process at a time per token: a flock somewhere every run that
     * issues from this CA sees. The fd, -2 when another process holds the
     * token, -1 with a message in err. */
    int (*token_lock)(tool_ca *ca, const unsigned char *serial, size_t len, char *err,
                      size_t errlen);
    /* Issue 12, revocation. NULL member: the backend cannot do it (yet).
     * revoke: every valid certificate of token (serial text), or the one
     * certificate with serial cert_serial (hex), with CRLReason reason.
     * Idempotent: one already revoked is counted in *already. 0 with err
     * (unknown token or certificate, database). */
    int (*revoke)(tool_ca *ca, const char *token, const char *cert_serial, int reason,
                  size_t *revoked, size_t *already, char *err, size_t errlen);
    /* What the CA knows of the certificate issuer/serial: 1 with status (V,
     * R, E, S), revocation time and reason filled; 0 not one the CA issued;
     * -1 error. Thread-safe (the OCSP responder). */
    int (*status)(tool_ca *ca, const X509_NAME *issuer, const ASN1_INTEGER *serial, char *status,
                  int64_t *revoked_at, int *reason, char *err, size_t errlen);
    /* A new full CRL (numbered; nextUpdate from the CA's configuration),
     * also kept as the CA's current CRL. Caller frees. NULL with err. */
    X509_CRL *(*crl)(tool_ca *ca, size_t *entries, char *err, size_t errlen);
    /* Renewal: the valid certificate old_serial (hex) is replaced by
     * new_serial, which is on its token. 1 done (or old_serial was no longer
     * valid), -1 with err. NULL member: the backend keeps no status. */
    int (*supersede)(tool_ca *ca, const char *old_serial, const char *new_serial, char *err,
                     size_t errlen);
    void (*close)(tool_ca *ca); /* frees ca */
    /* A renewal reaches this CA as a request signed with the renewed
     * certificate's key (CMP kur): items carry old_cert/old_key/new_key. */
    int renews_by_signature;
} tool_ca_ops;

/* The part every backend shares; a backend's struct starts with it. */
struct tool_ca {
    const tool_ca_ops *ops;
    /* group commit (tool_ca_submit) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tool_ca_item **pending;
    size_t npending, cap;
    int busy;
};
void tool_ca_base_init(tool_ca *ca, const tool_ca_ops *ops);
void tool_ca_base_clear(tool_ca *ca);

/* ---- what callers use (ca/ca.c), whatever the backend ---------------------- */

const char *tool_ca_name(const tool_ca *ca);
int tool_ca_check(tool_ca *ca, char *err, size_t errlen);
/* Claims 9/16 (steps 9, 10): verifies and issues a batch. */
size_t tool_ca_issue_batch(tool_ca *ca, tool_ca_item *items, size_t n);
/* Group commit: requests ready at the same time reach the CA as one batch
 * (watch: one token at a time, each joining whatever else is ready). Blocks
 * until item->done. */
void tool_ca_submit(tool_ca *ca, tool_ca_item *item);
X509 *tool_ca_root(tool_ca *ca); /* borrowed */
X509 *tool_ca_find_by_key(tool_ca *ca, EVP_PKEY *pub, const char *purpose);
int tool_ca_token_lock(tool_ca *ca, const unsigned char *serial, size_t len, char *err,
                       size_t errlen);
void tool_ca_token_unlock(int fd);
int tool_ca_revoke(tool_ca *ca, const char *token, const char *cert_serial, int reason,
                   size_t *revoked, size_t *already, char *err, size_t errlen);
int tool_ca_status(tool_ca *ca, const X509_NAME *issuer, const ASN1_INTEGER *serial, char *status,
                   int64_t *revoked_at, int *reason, char *err, size_t errlen);
X509_CRL *tool_ca_crl(tool_ca *ca, size_t *entries, char *err, size_t errlen);
/* 1 done, 0 the backend cannot (nothing done), -1 error with err. */
int tool_ca_supersede(tool_ca *ca, const char *old_serial, const char *new_serial, char *err,
                      size_t errlen);
/* 1 when a renewal needs the renewed certificate's key (tool_ca_ops). */
int tool_ca_renews_by_signature(const tool_ca *ca);
/* 1 when the backend tells certificate status (tool_ca_status works). */
int tool_ca_has_status(const tool_ca *ca);
void tool_ca_close(tool_ca *ca);
int tool_cmd_revoke(int argc, char **argv); /* tokenmint revoke (ca/cmd_revoke.c) */
int tool_cmd_ca_crl(int argc, char **argv); /* tokenmint ca crl DIR */

/* ---- the local CA (ca/local.c) ---------------------------------------------- */

/* Creates DIR as a CA: keys, self-signed root, index, serial, newcerts/, ca.cnf. */
int tool_ca_init(const char *dir, const char *key_uri, const char *key_file, const char *subject,
                 tool_crypto *crypto, char *err, size_t errlen);
/* The same with the records in a given database: conninfo NULL or "" is
 * DIR/ca.db (SQLite), else a PostgreSQL connection string, written into
 * DIR/ca.cnf ([ tokenmint ] database). */
int tool_ca_init_db(const char *dir, const char *conninfo, const char *key_uri,
                    const char *key_file, const char *subject, tool_crypto *crypto, char *err,
                    size_t errlen);
/* Opens DIR as a tool_ca: its records in conninfo when given, else the
 * database DIR/ca.cnf names, else DIR/ca.db. Takes in what stock openssl ca
 * or an old-format directory left (reported on stderr) and rewrites
 * index.txt. Every certificate returned by a batch is durable in the
 * database; its token locks are DIR/locks/<serial hex>. */
tool_ca *tool_ca_open(const char *dir, const tm_profile *prof, tool_crypto *crypto,
                      const char *operator_id, char *err, size_t errlen);
tool_ca *tool_ca_open_db(const char *dir, const char *conninfo, const tm_profile *prof,
                         tool_crypto *crypto, const char *operator_id, char *err, size_t errlen);
/* The records alone, without the CA key (ca list, show): cannot issue. */
tool_ca *tool_ca_open_records(const char *dir, const char *conninfo, const tm_profile *prof,
                              tool_crypto *crypto, char *err, size_t errlen);
int tool_cmd_ca_list(int argc, char **argv); /* ca list, ca show */
/* Local-CA only (NULL / no-op for another backend). The CA's record store
 * (ca/castore.h), borrowed: use it from one thread at a time, not while a
 * batch runs. */
struct tool_castore *tool_ca_store(tool_ca *ca);
/* Local-CA only: its root and key (borrowed), for OCSP responses. 0 for
 * another backend or a CA opened without its key. */
int tool_ca_local_signer(tool_ca *ca, X509 **root, EVP_PKEY **key);
/* A server's choice: index.txt rewritten every ~250 ms (and at close)
 * instead of after every batch. The database is durable either way. */
void tool_ca_set_lazy_view(tool_ca *ca, int lazy);

/* SHA-256 of a key's SubjectPublicKeyInfo, hex. */
int tool_spki_hash(EVP_PKEY *pub, char hex[65]);

#endif
