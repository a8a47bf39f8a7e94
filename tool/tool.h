/*
 * The tokenmint tool's internal contracts. One header for the tool's small
 * files: the station (module + tokens), the pipeline (SUMMARY steps 3..12),
 * the local CA, operator authentication and reporting.
 *
 * Ownership: a function returning a pointer says who frees it; structs
 * handed in are borrowed unless a comment says "owned".
 */
#ifndef TOKENMINT_TOOL_H
#define TOKENMINT_TOOL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "p11.h"
#include "tm_profile.h"

/* Exit codes, documented in the README. */
#define TM_EXIT_OK 0
#define TM_EXIT_SOME_FAILED 1
#define TM_EXIT_USAGE 2

/* ---- debug and guards ----------------------------------------------------- */

/* API-edge checks: a broken caller gets a debug line and a failure, not a crash. */
#define tm_return_val_if_fail(expr, val)                                                           \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tool_debug("%s: '%s' not true", __func__, #expr);                                      \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)
#define tm_return_if_fail(expr)                                                                    \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tool_debug("%s: '%s' not true", __func__, #expr);                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

void tool_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Last OpenSSL error as text into buf (empties the queue). */
const char *tm_ossl_err(char *buf, size_t len);
const char *tm_ckr_name(CK_RV rv);

/* ---- key types ------------------------------------------------------------ */

typedef enum {
    TM_KEY_P256,
    TM_KEY_P384,
    TM_KEY_RSA2048,
    TM_KEY_RSA3072,
    TM_KEY_ED25519
} tm_keytype;

/* "ec:P-256" ... ; returns 0 when the name is not one we know. */
int tm_keytype_parse(const char *s, tm_keytype *out);
const char *tm_keytype_name(tm_keytype t);

/* ---- the station: the PKCS#11 module and its tokens ----------------------- */

typedef struct tm_token {
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
    unsigned char serial[TM_SERIAL_MAX];
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1]; /* profile encoding, printable */
    char label[33];
    char model[17];
    char uri[512]; /* pkcs11:token URI (serial + label), for messages */
} tm_token;

typedef struct tm_station {
    void *dl;
    CK_FUNCTION_LIST *f;
    char module_path[4096];
    int we_initialized;
    tm_token *tokens; /* owned */
    size_t ntokens;
} tm_station;

/* The module path: --module, else TOKENMINT_MODULE, else the build tree's
 * module when it exists, else the installed one. Borrowed static string. */
const char *tm_default_module(const char *opt);

/* dlopen + C_Initialize (OS locking). Returns 1, or 0 with a message in err. */
int tm_station_open(tm_station *st, const char *module, char *err, size_t errlen);
/* Re-reads the slot list (tokens present). */
int tm_station_scan(tm_station *st, char *err, size_t errlen);
void tm_station_close(tm_station *st);
/* Refreshes one token's CK_TOKEN_INFO; returns the CKR. */
CK_RV tm_token_refresh(tm_station *st, tm_token *t);
/* Fills the derived fields of t from t->info. Returns 0 when the token has no serial. */
int tm_token_fill(tm_token *t);

/* Selects tokens by pkcs11: URIs (RFC 7512, parsed by p11-kit). Sets sel[i]=1
 * for every token that matches any URI. Returns 0 with err when a URI is
 * malformed or matches no token. */
int tm_station_select(tm_station *st, char **uris, size_t nuris, unsigned char *sel, char *err,
                      size_t errlen);

/* "pkcs11:serial=..;id=..;type=private" for a key; id may be NULL. */
int tm_key_uri(const tm_token *t, const unsigned char *id, size_t idlen, const char *type,
               char *out, size_t outlen);

/* ---- the provider: token keys for OpenSSL ---------------------------------- */

typedef struct tm_crypto {
    OSSL_LIB_CTX *libctx;             /* owned; NULL until tm_crypto_open */
    OSSL_PROVIDER *deflt, *tokenmint; /* owned; unloaded by tm_crypto_close */
    int have_provider;                /* the tokenmint provider is loaded */
    char err[256];                    /* why the provider could not be loaded */
} tm_crypto;

/* Loads "tokenmint" + "default" into a fresh library context. Returns 1 even
 * when the provider is missing (then have_provider=0 and err says why). */
int tm_crypto_open(tm_crypto *c, const char *module_path);
void tm_crypto_close(tm_crypto *c);
/* A private key by pkcs11: URI through the provider's store. Caller frees. */
typedef struct tm_pin tm_pin;
EVP_PKEY *tm_crypto_load_key(tm_crypto *c, const char *uri, tm_pin *pin, char *err, size_t errlen);

/* ---- local CA (openssl-ca-compatible directory) ---------------------------- */

typedef struct tm_ca tm_ca;

typedef struct tm_ca_item {
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
} tm_ca_item;

/* Creates DIR as a CA: keys, self-signed root, index, serial, newcerts/, ca.cnf. */
int tm_ca_init(const char *dir, const char *key_uri, const char *key_file, const char *subject,
               tm_crypto *crypto, char *err, size_t errlen);
tm_ca *tm_ca_open(const char *dir, const tm_profile *prof, tm_crypto *crypto,
                  const char *operator_id, char *err, size_t errlen);
void tm_ca_close(tm_ca *ca);
X509 *tm_ca_root(tm_ca *ca); /* borrowed */
/* Claims 9/16 (steps 9, 10): verifies and issues a batch under one DB lock.
 * Each certificate file is on disk (fsync) before its index line. Returns the
 * number issued. */
size_t tm_ca_issue_batch(tm_ca *ca, tm_ca_item *items, size_t n);
/* A certificate issued earlier for this public key (never written to its
 * token?), or NULL. Caller frees. */
X509 *tm_ca_find_by_key(tm_ca *ca, EVP_PKEY *pub, const char *purpose);
/* Group commit: requests ready at the same time reach the CA as one batch. */
void tm_ca_submit(tm_ca *ca, tm_ca_item *item);

/* One process at a time per token (two `issue` runs on one station): a
 * flock on DIR/locks/<serial hex>. Returns the fd, -2 when another process
 * holds the token, -1 on error. */
int tm_ca_token_lock(tm_ca *ca, const unsigned char *serial, size_t len);
void tm_ca_token_unlock(int fd);
/* The same flock on DIR/<serial hex> (DIR made if missing), for runs without
 * a CA directory (issue --cmp). Same returns. */
int tm_token_lock(const char *dir, const unsigned char *serial, size_t len);
void tm_token_unlock(int fd);

/* SHA-256 of a key's SubjectPublicKeyInfo, hex. */
int tm_spki_hash(EVP_PKEY *pub, char hex[65]);

/* ---- operator (claim 6) ----------------------------------------------------- */

typedef struct tm_config {
    char *path;
    int require_operator;
    char *scrypt; /* "scrypt:N=..,r=..,p=..:salt:hash" (base64) */
    char *operator_name;
    char *operator_ca;
    char *audit;
    char *profile;
} tm_config;

int tm_config_load(const char *path, tm_config *cfg, char *err, size_t errlen);
void tm_config_clear(tm_config *cfg);
/* Authenticates the operator as the config asks. Returns 1 with the identity in
 * id, 0 with the reason in err. */
int tm_operator_auth(const tm_config *cfg, tm_station *st, tm_crypto *crypto,
                     const char *pass_source, const char *op_token, const char *op_pin_source,
                     char *id, size_t idlen, char *err, size_t errlen);
int tm_operator_hash(const char *pass, char *out, size_t outlen);
void tm_audit_line(const tm_config *cfg, const char *serial, const char *op, const char *outcome,
                   const char *detail);

/* ---- PIN ------------------------------------------------------------------- */

struct tm_pin {
    pthread_mutex_t mu;
    const char *source; /* --pin-source FILE or NULL */
    const char *prompt; /* NULL: the token user PIN prompt */
    int loaded;
    int failed; /* no PIN available */
    char pin[256];
    size_t len;
};

void tm_pin_init(tm_pin *p, const char *source);
void tm_pin_clear(tm_pin *p);
/* The PIN from the file, or ONE prompt on the terminal for the whole run. */
int tm_pin_get(tm_pin *p, char *out, size_t outlen, size_t *len, char *err, size_t errlen);
/* Reads a secret from a file (first line); cleansed by the caller. */
int tm_read_secret_file(const char *path, char *out, size_t outlen, size_t *len, char *err,
                        size_t errlen);
int tm_prompt_secret(const char *prompt, char *out, size_t outlen, size_t *len);

/* ---- the pipeline ------------------------------------------------------------ */

typedef enum {
    TM_RES_ISSUED,  /* a new certificate went onto the token */
    TM_RES_WRITTEN, /* an issued-but-unwritten certificate was found and written */
    TM_RES_DONE,    /* already had a certificate for the purpose */
    TM_RES_FAILED,
} tm_result_kind;

typedef struct tm_result {
    tm_result_kind kind;
    int step; /* SUMMARY step that failed, 0 if none */
    char serial[TM_SERIAL_TEXT_MAX + 1];
    char label[33];
    char cert_serial[80]; /* hex */
    char key_id[80];      /* hex */
    int key_generated;
    int key_reused;
    double ms;
    char error[600];
} tm_result;

typedef struct tm_run {
    tm_station *st;
    tm_crypto *crypto;
    const tm_profile *prof;
    tm_ca *ca; /* NULL for csr-only runs */
    tm_pin *pin;
    const tm_config *cfg;
    const char *purpose;
    tm_keytype keytype;
    const char *operator_id;
} tm_run;

/* Steps 3..12 for one token; its request joins whatever else is ready (watch). */
void tm_pipeline_issue(tm_run *run, tm_token *t, tm_result *res);

/* The same in batch mode (claims 9, 16): prepare every token (steps 3-7),
 * issue every request in one CA batch (8-10), finish every token (11-12). */
typedef struct tm_job tm_job;
tm_job *tm_job_new(tm_run *run, tm_token *t, tm_result *res);
/* Returns 1 when the job goes on (a request to issue, or a certificate found
 * in the CA for this key), 0 when it failed or the token is already done. */
int tm_job_prepare(tm_job *j);
X509_REQ *tm_job_request(tm_job *j); /* NULL when nothing needs issuing */
void tm_job_set_cert(tm_job *j, X509 *cert, const char *ca_error); /* takes cert */
void tm_job_finish(tm_job *j);
void tm_job_free(tm_job *j);
/* Steps 3..7 only: a signed request for the token (csr command). Caller frees. */
X509_REQ *tm_pipeline_request(tm_run *run, tm_token *t, tm_result *res);
/* Step 11 + 12 alone for a certificate from elsewhere (write command). */
int tm_pipeline_write(tm_run *run, X509 *cert, X509_STORE *roots, tm_result *res);

/* Token state for `tokens` and `verify`. */
typedef struct tm_token_state {
    const char *state; /* "not initialised", "PIN locked", "no key", "free key pair", "issued" */
    int ncerts;
    int nkeys;
    int nfree;
} tm_token_state;
int tm_token_state_read(tm_run *run, tm_token *t, tm_token_state *s);

/* Every certificate on the token: callback per cert. Needs a session. */
typedef struct tm_token_cert {
    X509 *cert;
    unsigned char id[64];
    size_t idlen;
} tm_token_cert;
int tm_token_list_certs(tm_station *st, CK_SESSION_HANDLE s, tm_token_cert **out, size_t *n);
void tm_token_certs_free(tm_token_cert *c, size_t n);
/* Public keys of the token's private keys (any type). */
typedef struct tm_token_key {
    EVP_PKEY *pub;
    unsigned char id[64];
    size_t idlen;
    char label[64];
} tm_token_key;
int tm_token_list_keys(tm_station *st, CK_SESSION_HANDLE s, int public_only, tm_token_key **out,
                       size_t *n);
void tm_token_keys_free(tm_token_key *k, size_t n);
EVP_PKEY *tm_token_public_key(tm_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub);
/* 1 when the private key is whole and usable (signs, same key type and domain
 * as its public half); a kill -9 during generation can leave less. */
int tm_token_key_complete(tm_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                          CK_OBJECT_HANDLE pub);
int tm_token_login(tm_run *run, tm_token *t, CK_SESSION_HANDLE s, char *err, size_t errlen);

/* ---- station workers ---------------------------------------------------------- */

typedef void (*tm_work_fn)(tm_run *run, tm_token *t, tm_result *res, void *user);
/* Runs fn over the selected tokens with n workers; results[i] per token. */
void tm_station_run(tm_run *run, tm_token **tokens, size_t n, int jobs, tm_work_fn fn, void *user,
                    tm_result *results, void (*done)(tm_result *res, void *user));
int tm_default_jobs(size_t ntokens);

/* ---- reporting ------------------------------------------------------------------ */

typedef struct tm_report {
    pthread_mutex_t mu;
    int json;
    int tty; /* progress bar */
    size_t total, done, failed, issued, written, already;
    double t0;
} tm_report;

void tm_report_init(tm_report *r, int json, size_t total);
void tm_report_token(tm_report *r, const tm_result *res);
void tm_report_phase(tm_report *r, const char *what, size_t done, size_t total);
void tm_report_summary(tm_report *r, const tm_result *results, size_t n);
double tm_now_ms(void);

/* A certificate in words (show, verify). */
void tm_describe_cert(FILE *out, const tm_profile *prof, X509 *x);

/* ---- subcommands ------------------------------------------------------------------ */

int tm_cmd_show(int argc, char **argv);
int tm_cmd_verify(int argc, char **argv);
/* The root of --root FILE, else of --ca DIR (DIR/ca.pem), as a trust store.
 * NULL after saying why. */
X509_STORE *tm_root_store(const char *root, const char *ca_dir);
int tm_cmd_watch(int argc, char **argv);

/* Shared option handling for the subcommands. */
typedef struct tm_common {
    const char *module;
    const char *config;
    const char *profile;
    const char *pin_source;
    const char *purpose;
    const char *keytype;
    const char *ca_dir;
    const char *operator_pass;
    const char *operator_token;
    const char *operator_pin;
    int json;
    int all;
    int jobs;
    char **uris;
    size_t nuris;
} tm_common;

/* Command-line options, shared by the subcommands (main.c). */
enum {
    O_MODULE = 1000,
    O_CONFIG,
    O_PROFILE,
    O_PIN,
    O_PURPOSE,
    O_KEYTYPE,
    O_CA,
    O_JOBS,
    O_JSON,
    O_ALL,
    O_TOKEN,
    O_OPPASS,
    O_OPTOKEN,
    O_OPPIN,
    O_KEY,
    O_KEYFILE,
    O_SUBJECT,
    O_ROOT,
    O_COUNT,
    O_HELP,
};

typedef struct tm_parsed {
    tm_common c;
    const char *key, *key_file, *subject, *root;
    long count;
    int help;
    char **args; /* positional */
    int nargs;
} tm_parsed;

int tm_parse(int argc, char **argv, const int *allowed, tm_parsed *p);
void tm_parsed_free(tm_parsed *p);
extern const char *tm_common_help;
extern const char *tm_token_help;

/* Sets up station, crypto, profile, config, operator for a command that
 * touches tokens. Returns TM_EXIT_OK or an exit code. */
typedef struct tm_session {
    tm_station st;
    tm_crypto crypto;
    tm_profile *prof;
    tm_config cfg;
    tm_pin pin;
    char operator_id[256];
    tm_run run;
} tm_session;
int tm_session_open(tm_session *s, const tm_common *c, int need_operator);
void tm_session_close(tm_session *s);
/* Tokens selected by --all / --token, as pointers into s->st.tokens (caller frees array). */
int tm_session_tokens(tm_session *s, const tm_common *c, int default_all, tm_token ***out,
                      size_t *n);

#endif
