/*
 * CMP (RFC 4210 / 9480, lightweight profile RFC 9483) for tokenmint: the CA
 * as a CMP server (`tokenmint ca serve`), the patent's relay as a CMP RA
 * (`tokenmint relay`) and the station as a CMP client (`tokenmint issue
 * --cmp URL`). Built on OpenSSL's CMP server and client code; HTTP through
 * libmicrohttpd.
 *
 * Layers, one file each:
 *   server.c      the request handler: one OSSL_CMP_SRV_CTX per transaction,
 *                 replay refusal, deferred issuance (waiting + pollReq). It
 *                 knows no CA: a backend issues.
 *   http.c        POST application/pkixcmp over libmicrohttpd, body limit.
 *   serve.c       `ca serve`: the backend is the CA directory (ca/ca.h).
 *   relay.c       `relay`: the backend checks POP and the serial range, then
 *                 forwards upstream with the relay's own credentials.
 *   serial.c      the relay's serial comparison.
 *   client.c      the client: many requests in flight, one OSSL_CMP_CTX each.
 *
 * TOKENMINT_DEBUG=1 shows OpenSSL's CMP log and every refusal on stderr.
 *
 * Ownership: as in tool/tool.h; a function returning a pointer says who frees it.
 */
#ifndef TOKENMINT_CMP_H
#define TOKENMINT_CMP_H

#include <limits.h>
#include <stddef.h>

#include <openssl/cmp.h>
#include <openssl/x509.h>

/* The largest HTTP body `ca serve` and `relay` read (a PKIMessage with a
 * PKCS#10 request and a few extra certificates is 2-8 KiB). Larger bodies get
 * HTTP 413 before anything is parsed. */
#define TOOL_CMP_MAX_BODY_DEFAULT (64 * 1024)
/* Transactions open at once (waiting for certConf or a poll); more are
 * refused with failInfo systemUnavail until some finish or expire. */
#define TOOL_CMP_MAX_TXNS 4096
/* An open transaction nobody continues is forgotten after this. */
#define TOOL_CMP_TXN_IDLE_SECONDS 300
/* transactionIDs remembered to refuse a replayed request. */
#define TOOL_CMP_SEEN_TIDS 200000

/* PKIBody choice numbers (RFC 4210 section 5.1.2); OpenSSL 3.0 keeps its
 * names for them internal. */
enum {
    TOOL_CMP_BODY_IR = 0,
    TOOL_CMP_BODY_IP = 1,
    TOOL_CMP_BODY_CR = 2,
    TOOL_CMP_BODY_CP = 3,
    TOOL_CMP_BODY_P10CR = 4,
    TOOL_CMP_BODY_KUR = 7,
    TOOL_CMP_BODY_KUP = 8,
    TOOL_CMP_BODY_RR = 11,
    TOOL_CMP_BODY_GENM = 21,
    TOOL_CMP_BODY_ERROR = 23,
    TOOL_CMP_BODY_CERTCONF = 24,
    TOOL_CMP_BODY_POLLREQ = 25,
    TOOL_CMP_BODY_POLLREP = 26,
};

/* ---- the handler's view of a request and the backend's answer ------------- */

typedef struct tool_cmp_req {
    int bodytype;         /* TOOL_CMP_BODY_P10CR, _IR, _CR or _KUR */
    const X509_REQ *p10;  /* p10cr: the token's signed PKCS#10 request */
    const X509_REQ *tmpl; /* ir/cr: the CRMF template as an unsigned request (subject,
                             public key, extensions); its POP was checked by OpenSSL */
    EVP_PKEY *pub;        /* the requested key (borrowed) */
    const char *peer;     /* sender name as text, for messages */
    const char *addr;     /* the client's network address, for the access log */
    /* kur (issue 12): the certificate being updated; its key signed the
     * request and it chains to --trusted (checked by the handler). Borrowed. */
    X509 *old_cert;
} tool_cmp_req;

typedef struct tool_cmp_answer {
    X509 *cert;       /* owned: the certificate on success */
    int failinfo;     /* bit number (OSSL_CMP_PKIFAILUREINFO_*) when refused */
    char text[512];   /* why it was refused: becomes the statusString */
    char token[200];  /* issued: the token serial it is bound to, for the access log */
    char purpose[32]; /* issued: its purpose, likewise */
} tool_cmp_answer;

typedef struct tool_cmp_backend {
    void *ctx;
    /* Issues (blocking). Returns 1 with ans->cert set, or 0 with failinfo/text. */
    int (*issue)(void *ctx, const tool_cmp_req *req, tool_cmp_answer *ans);
    /* rr (issue 12): revokes issuer/serial; signer is the certificate that
     * signed the rr (it chains to --trusted), NULL for PBMAC: the backend
     * decides what it may revoke. 1 done; 0 with failinfo/text
     * (certRevoked when it already was, badCertId when unknown). NULL: rr
     * is refused. */
    int (*revoke)(void *ctx, const X509_NAME *issuer, const ASN1_INTEGER *serial, X509 *signer,
                  tool_cmp_answer *ans);
    /* kur (issue 12): like issue, for req->old_cert's token, which it
     * supersedes. NULL: kur is refused. */
    int (*kur)(void *ctx, const tool_cmp_req *req, tool_cmp_answer *ans);
    /* kur passed through (the relay, issue 12): the relay holds no token key
     * to protect a kur of its own, so a kur whose protection, signer (the
     * certificate oldCertID names, chaining to --trusted) and template the
     * handler checked goes to kur_check: 1 to forward the request's DER
     * unchanged; 0 refused with failinfo/text. forward posts one DER
     * PKIMessage upstream and hands back the answer's DER (malloc'd): the
     * kur, then the certConf/pollReq of that transaction when signed by the
     * same certificate. 1 done; 0 with err. Both NULL: no pass-through. */
    int (*kur_check)(void *ctx, const tool_cmp_req *req, tool_cmp_answer *ans);
    int (*forward)(void *ctx, const unsigned char *der, size_t len, unsigned char **out,
                   size_t *outlen, char *err, size_t errlen);
} tool_cmp_backend;

typedef struct tool_cmp_srv_opts {
    OSSL_LIB_CTX *libctx;
    /* PBMAC (shared secret): accepted when secret is set. Borrowed, copied. */
    const unsigned char *secret;
    size_t secret_len;
    const char *ref; /* our senderKID in PBMAC responses; NULL: none */
    /* Signature: responses signed with cert/key; client signatures checked
     * against trusted. Either may be NULL. Borrowed (up-ref'd). */
    X509 *cert;
    EVP_PKEY *key;
    X509_STORE *trusted;
    STACK_OF(X509) * extra; /* chain sent with signed responses */
    const X509_NAME *name;  /* our sender name when there is no cert */
    int accept_raverified;  /* trust raVerified POPO (only behind an RA) */
    /* Deferred approval: answer "waiting", issue after defer_ms, serve the
     * certificate on a later pollReq. */
    int deferred;
    long defer_ms;
    int check_after;      /* seconds, told to polling clients */
    const char *log_name; /* refusals go to stderr under this name; NULL: debug only */
    /* genm (RFC 9483 4.3.1): the CA certificate answered to id-it-caCerts.
     * Borrowed; NULL: genm gets an empty genp. */
    X509 *ca_cert;
} tool_cmp_srv_opts;

typedef struct tool_cmp_srv tool_cmp_srv;

/* Who protected a message (cmp/protection.c): PBMAC with this secret, or a
 * signature by the first extraCerts certificate (returned in *signer, the
 * caller's; its chain is not checked here), or neither. */
enum { TOOL_CMP_PROT_NONE, TOOL_CMP_PROT_PBMAC, TOOL_CMP_PROT_SIGNATURE };
int tool_cmp_msg_protector(const OSSL_CMP_MSG *msg, const unsigned char *secret, size_t secret_len,
                           OSSL_LIB_CTX *libctx, X509 **signer);
/* 1 when cert chains to the store. */
int tool_cmp_cert_trusted(X509 *cert, X509_STORE *trusted);
/* 1 when cert is the certificate issuer/serial names. */
int tool_cmp_cert_is(X509 *cert, const X509_NAME *issuer, const ASN1_INTEGER *serial);

tool_cmp_srv *tool_cmp_srv_new(const tool_cmp_srv_opts *o, const tool_cmp_backend *be, char *err,
                               size_t errlen);
void tool_cmp_srv_free(tool_cmp_srv *s);

/*
 * One HTTP body in, one response out. Returns the HTTP status: 200 with a DER
 * PKIMessage in *out (malloc'd, caller frees), or 4xx/5xx with a line of text
 * in *out when the body is no PKIMessage at all. Thread-safe: concurrent
 * calls for different transactions run in parallel.
 */
int tool_cmp_srv_handle(tool_cmp_srv *s, const unsigned char *body, size_t len, unsigned char **out,
                        size_t *outlen);
/* The same, naming the client's address in the log lines of refusals. */
int tool_cmp_srv_handle_from(tool_cmp_srv *s, const char *addr, const unsigned char *body,
                             size_t len, unsigned char **out, size_t *outlen);

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct tool_cmp_http tool_cmp_http;

/* What one client (source address) or all of them may hold, and how long a
 * request may take to arrive. Defaults below; --max-connections,
 * --max-per-client, --header-timeout, --body-timeout, --idle-timeout. */
#define TOOL_CMP_MAX_CONNS_DEFAULT 1024
#define TOOL_CMP_PER_CLIENT_DEFAULT 32
#define TOOL_CMP_HEADER_TIMEOUT_DEFAULT 5 /* seconds from connect to the end of the headers */
#define TOOL_CMP_BODY_TIMEOUT_DEFAULT 10  /* seconds from the headers to the end of the body */
#define TOOL_CMP_IDLE_TIMEOUT_DEFAULT 15  /* seconds a kept-alive connection may idle */
typedef struct tool_cmp_http_limits {
    size_t max_body;
    unsigned max_conns, per_client, header_s, body_s, idle_s;
    const char *log_name; /* dropped connections are logged to stderr under it */
    /* What is not CMP (`ca serve`: OCSP, the CRL over GET): asked first for
     * every GET and every POST of application/ocsp-request. Returns the
     * HTTP status with a malloc'd body and its type, or 0: not handled. */
    int (*extra)(void *ctx, const char *method, const char *url, const char *ctype,
                 const unsigned char *body, size_t len, unsigned char **out, size_t *outlen,
                 const char **out_type);
    void *extra_ctx;
} tool_cmp_http_limits;
void tool_cmp_http_limits_init(tool_cmp_http_limits *l);

/* "127.0.0.1:PORT" or "[::1]:PORT" (port 0: any free port). lim NULL: defaults. */
tool_cmp_http *tool_cmp_http_start(const char *listen, const tool_cmp_http_limits *lim,
                                   tool_cmp_srv *srv, char *err, size_t errlen);
void tool_cmp_http_stop(tool_cmp_http *h);
/* Prints where we listen (stdout and --port-file), then waits for SIGINT/SIGTERM. */
int tool_cmp_http_serve_until_signal(tool_cmp_http *h, const char *port_file);

/* ---- the serving side of `ca serve` and `relay` (cmp_front.c) --------------- */

/* getopt codes of the options both servers take; each command's own start
 * above them. */
enum {
    TOOL_FRONT_LISTEN = 4000,
    TOOL_FRONT_PORTFILE,
    TOOL_FRONT_SECRET,
    TOOL_FRONT_REF,
    TOOL_FRONT_TRUSTED,
    TOOL_FRONT_SRVCERT,
    TOOL_FRONT_SRVKEY,
    TOOL_FRONT_MAXBODY,
    TOOL_FRONT_PROFILE,
    TOOL_FRONT_MAXCONNS,
    TOOL_FRONT_PERCLIENT,
    TOOL_FRONT_HDRTIMEOUT,
    TOOL_FRONT_BODYTIMEOUT,
    TOOL_FRONT_IDLETIMEOUT,
};

typedef struct tool_cmp_front {
    const char *name; /* "ca serve", "relay": prefixes every message */
    const char *listen, *port_file, *secret_src, *ref, *trusted_src, *srvcert, *srvkey, *profile;
    unsigned long long max_body;
    tool_cmp_http_limits lim; /* max_body copied in at run */
    /* loaded by tool_cmp_front_load, owned */
    char secret[256];
    size_t secret_len;
    X509 *cert;
    EVP_PKEY *key;
    X509_STORE *trusted;
    struct tm_profile *prof; /* the certificate profile (--profile) */
    struct tm_violations *violations;
} tool_cmp_front;

void tool_cmp_front_init(tool_cmp_front *f, const char *name);
/* One of the shared options: 1 taken, 0 not one of them, -1 bad value (said). */
int tool_cmp_front_opt(tool_cmp_front *f, int code, const char *arg);
/* --listen given, stations authenticated somehow, --srv-cert with --srv-key:
 * then blocks SIGINT/SIGTERM (call it before anything starts a thread).
 * 0 after saying what is missing. */
int tool_cmp_front_check(const tool_cmp_front *f);
/* Reads the secret, profile, signer and trust store and fills so's
 * protection fields (borrowed from f). 0 after saying why. */
int tool_cmp_front_load(tool_cmp_front *f, OSSL_LIB_CTX *libctx, tool_cmp_srv_opts *so);
/* Serves until SIGINT/SIGTERM. TOOL_EXIT_OK after a clean stop, else TOOL_EXIT_USAGE. */
int tool_cmp_front_run(tool_cmp_front *f, const tool_cmp_srv_opts *so, const tool_cmp_backend *be);
void tool_cmp_front_clear(tool_cmp_front *f);

/* ---- client ------------------------------------------------------------------ */

typedef struct tool_cmp_client_opts {
    const char *url; /* http://host:port/path */
    unsigned char secret[256];
    size_t secret_len; /* 0: signature protection */
    char ref[256];
    X509 *cert; /* owned: our signer certificate (signature protection) */
    EVP_PKEY *key;
    STACK_OF(X509) * extra;
    X509 *srvcert;     /* owned: pinned server certificate, or NULL */
    X509_STORE *trust; /* owned: to check server signatures, or NULL */
    X509 *root;        /* owned: the CA root the station verifies against (step 11) */
    int jobs;          /* requests in flight */
    int timeout;       /* seconds per transaction, polling included */
    OSSL_LIB_CTX *libctx;
} tool_cmp_client_opts;

/* One p10cr transaction. Returns the certificate, or NULL with the server's
 * status (or the transport error) in err. */
X509 *tool_cmp_client_p10cr(const tool_cmp_client_opts *o, const X509_REQ *req, int *failinfo,
                            char *err, size_t errlen);
/* kur (issue 12, renew --cmp): the certificate req asks for, for new_key
 * (the old certificate's key for a same-key renewal), signed with old_cert
 * and old_key, its proof of possession made with new_key. Both keys may be
 * token keys. Returns the certificate, or NULL with err. */
X509 *tool_cmp_client_kur(const tool_cmp_client_opts *o, X509 *old_cert, EVP_PKEY *old_key,
                          EVP_PKEY *new_key, const X509_REQ *req, int *failinfo, char *err,
                          size_t errlen);
/* rr (issue 12): asks the server to revoke cert, protected with the relay's
 * own credentials. 1 revoked; 0 with err (and *failinfo when the server
 * said why). */
int tool_cmp_client_rr(const tool_cmp_client_opts *o, X509 *cert, int *failinfo, char *err,
                       size_t errlen);
void tool_cmp_client_opts_clear(tool_cmp_client_opts *o);
/* Reads the client options shared by `issue --cmp` and `relay --upstream`:
 * PREFIX-secret-source, PREFIX-ref, PREFIX-cert, PREFIX-key, PREFIX-srvcert,
 * PREFIX-trusted. Returns 1, or 0 with err. */
int tool_cmp_client_opt(tool_cmp_client_opts *o, const char *name, const char *value, char *err,
                        size_t errlen);

/* Checks what can be checked before the first transaction: the URL (http
 * only), protection (a secret with its reference, or a certificate with its
 * key). prefix names the options in messages ("--cmp", "--upstream").
 * Returns 1, or 0 with err. */
int tool_cmp_client_check(const tool_cmp_client_opts *o, const char *prefix, char *err,
                          size_t errlen);

/* ---- the station's CMP client as a CA backend (cmp/station.c) ----------------- */

/* `issue --cmp URL`, `watch --cmp URL`: the --cmp* options as given. */
typedef struct tool_cmp_station {
    tool_cmp_client_opts o;  /* o.url points at url */
    char url[2048];          /* --cmp; empty: not given */
    char lock_dir[PATH_MAX]; /* --cmp-lock-dir; empty: the default */
    int any;                 /* some --cmp* option was given */
} tool_cmp_station;

/* One option by its long name without dashes ("cmp", "cmp-root", "cmp-jobs",
 * ...). Files are read here. Returns 1, or 0 with err naming the option. */
int tool_cmp_station_opt(tool_cmp_station *s, const char *name, const char *value, char *err,
                         size_t errlen);
void tool_cmp_station_clear(tool_cmp_station *s);
/* A CA (ca/ca.h) that issues over CMP. Takes what s holds (s is emptied).
 * tool_ca_check then checks the whole configuration. */
struct tool_ca;
struct tool_ca *tool_cmp_ca_open(tool_cmp_station *s, char *err, size_t errlen);
extern const char *tool_cmp_issue_help;

/* ---- shared helpers -------------------------------------------------------------- */

void tool_cmp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* OSSL_CMP log callback that goes to stderr only with TOKENMINT_DEBUG. */
int tool_cmp_log_cb(const char *func, const char *file, int line, OSSL_CMP_severity level,
                    const char *msg);
/* Compares token serials for the relay's range: documented in cmp_relay.c. */
int tool_cmp_serial_cmp(const char *a, const char *b);

#endif
