/*
 * The station: the PKCS#11 module and its tokens, token keys through the
 * provider, PINs, the operator and audit, the pipeline (SUMMARY steps
 * 3..12), token objects and locks, and the workers that run the pipeline
 * over many tokens.
 */
#ifndef TOKENMINT_TOOL_STATION_H
#define TOKENMINT_TOOL_STATION_H

#include <pthread.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "tm_profile.h"
#include "tool.h"

/* ---- the station: the PKCS#11 module and its tokens ----------------------- */

typedef struct tool_token {
    CK_SLOT_ID slot;
    CK_TOKEN_INFO info;
    unsigned char serial[TM_SERIAL_MAX];
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1]; /* profile encoding, printable */
    char label[33];
    char model[17];
    char uri[512]; /* pkcs11:token URI (serial + label), for messages */
} tool_token;

typedef struct tool_station {
    void *dl;
    CK_FUNCTION_LIST *f;
    char module_path[4096];
    int we_initialized;
    tool_token *tokens; /* owned */
    size_t ntokens;
} tool_station;

/* The module path: --module, else TOKENMINT_MODULE, else the build tree's
 * module when it exists, else the installed one. Borrowed static string. */
const char *tool_default_module(const char *opt);

/* dlopen + C_Initialize (OS locking). Returns 1, or 0 with a message in err. */
int tool_station_open(tool_station *st, const char *module, char *err, size_t errlen);
/* Re-reads the slot list (tokens present). */
int tool_station_scan(tool_station *st, char *err, size_t errlen);
void tool_station_close(tool_station *st);
/* Refreshes one token's CK_TOKEN_INFO; returns the CKR. */
CK_RV tool_token_refresh(tool_station *st, tool_token *t);
/* Fills the derived fields of t from t->info. Returns 0 when the token has no serial. */
int tool_token_fill(tool_token *t);

/* Selects tokens by pkcs11: URIs (RFC 7512, parsed by p11-kit). Sets sel[i]=1
 * for every token that matches any URI. Returns 0 with err when a URI is
 * malformed or matches no token. */
int tool_station_select(tool_station *st, char **uris, size_t nuris, unsigned char *sel, char *err,
                        size_t errlen);

/* "pkcs11:serial=..;id=..;type=private" for a key; id may be NULL. */
int tool_key_uri(const tool_token *t, const unsigned char *id, size_t idlen, const char *type,
                 char *out, size_t outlen);

/* ---- the provider: token keys for OpenSSL ---------------------------------- */

typedef struct tool_crypto {
    OSSL_LIB_CTX *libctx;             /* owned; NULL until tool_crypto_open */
    OSSL_PROVIDER *deflt, *tokenmint; /* owned; unloaded by tool_crypto_close */
    int have_provider;                /* the tokenmint provider is loaded */
    char err[256];                    /* why the provider could not be loaded */
} tool_crypto;

/* Loads "tokenmint" + "default" into a fresh library context. Returns 1 even
 * when the provider is missing (then have_provider=0 and err says why). */
int tool_crypto_open(tool_crypto *c, const char *module_path);
void tool_crypto_close(tool_crypto *c);
/* A private key by pkcs11: URI through the provider's store. Caller frees. */
typedef struct tool_pin tool_pin;
EVP_PKEY *tool_crypto_load_key(tool_crypto *c, const char *uri, tool_pin *pin, char *err,
                               size_t errlen);

/* ---- per-token locks ---------------------------------------------------------- */

/* The same flock on DIR/<serial hex> (DIR made if missing), for runs without
 * a CA directory (issue --cmp). Same returns. */
int tool_token_lock(const char *dir, const unsigned char *serial, size_t len);
void tool_token_unlock(int fd);

/* The CA a run issues from (ca/ca.h); NULL for csr-only runs. */
typedef struct tool_ca tool_ca;

/* ---- operator (claim 6) ----------------------------------------------------- */

typedef struct tool_config {
    char *path;
    int require_operator;
    char *scrypt; /* "scrypt:N=..,r=..,p=..:salt:hash" (base64) */
    char *operator_name;
    char *operator_ca;
    char *audit;
    char *profile;
    char *state_dir; /* [tokenmint] state_dir: the refused-PIN record lives here */
} tool_config;

int tool_config_load(const char *path, tool_config *cfg, char *err, size_t errlen);
/* tool_config_load without the audit destination's check (which creates the
 * file): the checks of tool_config_check(path, NULL), then the values. */
int tool_config_read(const char *path, tool_config *cfg, char *err, size_t errlen);
/* Fails closed (station/config.c): path and every include are regular files
 * that exist, every section and key is known; then audit (may be NULL) can be
 * appended to. 0 with "FILE line N: problem" in err. */
int tool_config_check(const char *path, const char *audit, char *err, size_t errlen);
void tool_config_clear(tool_config *cfg);
/* Authenticates the operator as the config asks. Returns 1 with the identity in
 * id, 0 with the reason in err. */
int tool_operator_auth(const tool_config *cfg, tool_station *st, tool_crypto *crypto,
                       const char *pass_source, const char *op_token, const char *op_pin_source,
                       char *id, size_t idlen, char *err, size_t errlen);
int tool_operator_hash(const char *pass, char *out, size_t outlen);
void tool_audit_line(const tool_config *cfg, const char *serial, const char *op,
                     const char *outcome, const char *detail);

/* ---- PIN ------------------------------------------------------------------- */

enum { TOOL_PIN_UNTRIED, TOOL_PIN_TRYING, TOOL_PIN_ACCEPTED, TOOL_PIN_REFUSED };

struct tool_pin {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* state changes (station/pintries.c) */
    const char *source; /* --pin-source SRC or NULL */
    const char *prompt; /* NULL: the token user PIN prompt */
    int loaded;
    int failed; /* no PIN available */
    char pin[256];
    size_t len;
    /* PIN tries (station/pintries.c) */
    int state;                               /* TOOL_PIN_* for this run */
    char refused_by[TM_SERIAL_TEXT_MAX + 1]; /* first token that refused it */
    tool_token **order;                      /* the run's tokens, borrowed (tool_pin_expect) */
    unsigned char *passed;                   /* owned: order[i] tried, or will not */
    size_t norder, pos;                      /* order[pos]: the next that may test a new PIN */
    int allow_final_try;                     /* --allow-final-try */
    char record[4096];                       /* refused-PIN record file; "" = none */
};

void tool_pin_init(tool_pin *p, const char *source);
void tool_pin_clear(tool_pin *p);
/* The PIN from the source (p11c_secret_read syntax: PATH, file:PATH, "%s"
 * for the token serial), or ONE prompt on the terminal for the whole run.
 * serial: the token's serial text, NULL where no token is known. */
int tool_pin_get(tool_pin *p, const char *serial, char *out, size_t outlen, size_t *len, char *err,
                 size_t errlen);
int tool_prompt_secret(const char *prompt, char *out, size_t outlen, size_t *len);

/* PIN tries (station/pintries.c). The station state directory: TOKENMINT_STATE_DIR,
 * else the config's state_dir, else /var/lib/tokenmint (root) or the user's
 * XDG state directory. Borrowed string. */
const char *tool_state_dir(const tool_config *cfg);
/* Opens (makes) DIR/refused-pins: mode 0600, ours, a regular file. 0 with err. */
int tool_pin_record_open(tool_pin *p, const char *dir, char *err, size_t errlen);
/* The run's tokens in the order an untested PIN may go to them (count-low
 * tokens last); each must then pass through tool_pin_try_end or
 * tool_pin_skip exactly once, or the tokens after it wait. Without it the
 * first token to ask tests the PIN. */
void tool_pin_expect(tool_pin *p, tool_token **order, size_t n);
/* Before a C_Login with the PIN: 1 with the PIN in out, or 0 with why not
 * ("not tried: ..."): final try, refused before (record), refused by another
 * token of this run. After it, tool_pin_try_end with the CKR. A token of the
 * run that never reaches a login calls tool_pin_skip once. */
int tool_pin_try_begin(tool_pin *p, const tool_token *t, char *out, size_t outlen, size_t *len,
                       char *err, size_t errlen);
void tool_pin_try_end(tool_pin *p, const tool_token *t, const char *pin, size_t len, CK_RV rv);
void tool_pin_skip(tool_pin *p, const tool_token *t);

/* ---- the pipeline ------------------------------------------------------------ */

typedef enum {
    TOOL_RES_ISSUED,  /* a new certificate went onto the token */
    TOOL_RES_WRITTEN, /* an issued-but-unwritten certificate was found and written */
    TOOL_RES_DONE,    /* already had a certificate for the purpose */
    TOOL_RES_FAILED,
    TOOL_RES_RENEW, /* issue: its certificate expired, was revoked or superseded */
} tool_result_kind;

typedef struct tool_result {
    tool_result_kind kind;
    int step; /* SUMMARY step that failed, 0 if none */
    char serial[TM_SERIAL_TEXT_MAX + 1];
    char label[33];
    char cert_serial[80]; /* hex */
    char key_id[80];      /* hex */
    int key_generated;
    int key_reused;
    int key_retried; /* key generation failed without a cause and was asked once more */
    double ms;
    char error[600];    /* why it failed; for TOOL_RES_RENEW, why it needs renewal */
    char replaces[200]; /* renew: the certificate serial(s) the new one supersedes */
    int retired;        /* renew --retire-old: old certificates removed from the token */
} tool_result;

typedef struct tool_run {
    tool_station *st;
    tool_crypto *crypto;
    const tm_profile *prof;
    tool_ca *ca; /* NULL for csr-only runs */
    tool_pin *pin;
    const tool_config *cfg;
    const char *purpose;
    tool_keytype keytype;
    const char *operator_id;
    /* renew (issue 12): a token is done only with a certificate for the
     * purpose that is valid, not revoked or superseded at the CA, and not
     * expiring within renew_within seconds; the ones it replaces are marked
     * superseded at the CA once the new one is on the token. */
    int renew;
    long long renew_within;
    /* renew --retire-old: once the new certificate is verified and on the
     * token, the token's other certificates for the purpose are removed,
     * with their key pairs when no certificate left uses them. */
    int retire_old;
    /* renew --rekey: a new key pair even for a certificate that was not
     * revoked (renewal keeps the key pair by default; a revoked
     * certificate's key is never certified again) */
    int rekey;
} tool_run;

/* Steps 3..12 for one token; its request joins whatever else is ready (watch). */
void tool_pipeline_issue(tool_run *run, tool_token *t, tool_result *res);

/* The same in batch mode (claims 9, 16): prepare every token (steps 3-7),
 * issue every request in one CA batch (8-10), finish every token (11-12). */
typedef struct tool_job tool_job;
tool_job *tool_job_new(tool_run *run, tool_token *t, tool_result *res);
/* Returns 1 when the job goes on (a request to issue, or a certificate found
 * in the CA for this key), 0 when it failed or the token is already done. */
int tool_job_prepare(tool_job *j);
X509_REQ *tool_job_request(tool_job *j); /* NULL when nothing needs issuing */
/* What the CA gets for the job: 1 with item filled (the request, and for a
 * renewal the certificate it renews; pointers borrowed from the job), 0 when
 * nothing needs issuing. */
struct tool_ca_item;
int tool_job_item(tool_job *j, struct tool_ca_item *item);
void tool_job_set_cert(tool_job *j, X509 *cert, const char *ca_error); /* takes cert */
void tool_job_finish(tool_job *j);
void tool_job_free(tool_job *j);
/* Steps 3..7 only: a signed request for the token (csr command). Caller frees. */
X509_REQ *tool_pipeline_request(tool_run *run, tool_token *t, tool_result *res);
/* Step 11 + 12 alone for a certificate from elsewhere (write command). */
int tool_pipeline_write(tool_run *run, X509 *cert, X509_STORE *roots, tool_result *res);

/* Token state for `tokens` and `verify`. */
typedef struct tool_token_state {
    const char *state; /* "not initialised", "PIN locked", "no key", "free key pair", "issued" */
    int ncerts;
    int nkeys;
    int nfree;
    int nkeyless; /* certificates whose key pair is not on the token */
} tool_token_state;
int tool_token_state_read(tool_run *run, tool_token *t, tool_token_state *s);

/* Every certificate on the token: callback per cert. Needs a session. */
typedef struct tool_token_cert {
    X509 *cert;
    unsigned char id[64];
    size_t idlen;
} tool_token_cert;
int tool_token_list_certs(tool_station *st, CK_SESSION_HANDLE s, tool_token_cert **out, size_t *n);
void tool_token_certs_free(tool_token_cert *c, size_t n);
/* Public keys of the token's private keys (any type). */
typedef struct tool_token_key {
    EVP_PKEY *pub;
    unsigned char id[64];
    size_t idlen;
    char label[64];
} tool_token_key;
int tool_token_list_keys(tool_station *st, CK_SESSION_HANDLE s, int public_only,
                         tool_token_key **out, size_t *n);
void tool_token_keys_free(tool_token_key *k, size_t n);
EVP_PKEY *tool_token_public_key(tool_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub);
/* 1 when the private key is whole and usable (signs, same key type and domain
 * as its public half); a kill -9 during generation can leave less. */
int tool_token_key_complete(tool_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                            CK_OBJECT_HANDLE pub);
int tool_token_login(tool_run *run, tool_token *t, CK_SESSION_HANDLE s, char *err, size_t errlen);
/* C_SetPIN(factory PIN, NULL) through the module: the token takes its derived
 * PIN from now on (pin derive). The factory PIN follows the PIN-try rules. */
int tool_token_set_derived_pin(tool_run *run, tool_token *t, CK_SESSION_HANDLE s, char *err,
                               size_t errlen);

/* Can the profile certify a key of this type for this purpose? Checked with
 * the profile's own request builder on an ephemeral software key, before any
 * token is touched (station/precheck.c). 0 with the profile's reason. */
int tool_profile_can_certify(const tm_profile *prof, const char *purpose, tool_keytype kt,
                             char *why, size_t whylen);

/* Can the token's serial bind a certificate (station/precheck.c)? Not when
 * it is blank or all zeros (a backend's placeholder) or when another token
 * present at the station reports the same serial: the certificate would name
 * no one token. Decided from the slot list alone, before the token is
 * touched. 1, or 0 with the reason naming the token (label, slot). */
int tool_token_serial_usable(const tool_station *st, const tool_token *t, char *why, size_t whylen);

/* Crash leftovers among the token's tokenmint objects (station/leftovers.c).
 * Needs a logged-in session (private keys). Caller frees *out. */
typedef struct tool_leftover {
    CK_OBJECT_HANDLE h[2]; /* the objects `clean --remove` destroys */
    size_t nh;
    int removable;
    char what[32]; /* "key pair", "private key", "public key", "certificate" */
    char id[132];  /* CKA_ID, hex */
    char label[64];
    char why[600];
} tool_leftover;
int tool_leftovers_find(tool_run *run, CK_SESSION_HANDLE s, tool_leftover **out, size_t *n);

/* ---- station workers ---------------------------------------------------------- */

typedef void (*tool_work_fn)(tool_run *run, tool_token *t, tool_result *res, void *user);
/* Runs fn over the selected tokens with n workers; results[i] per token. */
void tool_station_run(tool_run *run, tool_token **tokens, size_t n, int jobs, tool_work_fn fn,
                      void *user, tool_result *results, void (*done)(tool_result *res, void *user));
int tool_default_jobs(size_t ntokens);
/* What every per-token command does: results for n tokens (calloc'd, the
 * caller frees *results; NULL: not kept), fn over them with jobs workers
 * (0: tool_default_jobs), then the exit code of tool_results_rc
 * (TOOL_EXIT_SOME_FAILED too when there was no memory for the results). */
int tool_station_run_all(tool_run *run, tool_token **tokens, size_t n, int jobs, tool_work_fn fn,
                         void *user, tool_result **results);
/* TOOL_EXIT_SOME_FAILED when one of the n results failed or needs renewal
 * (not done either way), else TOOL_EXIT_OK. */
int tool_results_rc(const tool_result *results, size_t n);

#endif
