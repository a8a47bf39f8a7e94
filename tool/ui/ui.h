/*
 * What the tool prints: per-token results and the summary (text, JSON,
 * progress), certificates in words (show, verify), the trust store verify
 * and write check against.
 */
#ifndef TOKENMINT_TOOL_UI_H
#define TOKENMINT_TOOL_UI_H

#include <pthread.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "station/station.h"
#include "tm_profile.h"

/* ---- reporting ------------------------------------------------------------------ */

typedef struct tool_report {
    pthread_mutex_t mu;
    int json;
    int tty;    /* progress bar */
    int sorted; /* results listed at the end, sorted by label */
    size_t total, done, failed, issued, written, already, signed_, renew;
    double t0;
    pthread_t tick; /* redraws the status line while a run is quiet */
    int ticking, stop;
} tool_report;

void tool_report_init(tool_report *r, int json, size_t total);
/* A batch run (issue): a status line on a terminal from the start, a line per
 * token as it finishes each phase, the results sorted by label at the end
 * (tool_report_summary, which must then be called). */
void tool_report_sorted(tool_report *r);
/* A token finished a phase ("request signed", "certificate issued"). */
void tool_report_step(tool_report *r, const tool_result *res, const char *what);
void tool_report_token(tool_report *r, const tool_result *res);
void tool_report_phase(tool_report *r, const char *what, size_t done, size_t total);
void tool_report_summary(tool_report *r, const tool_result *results, size_t n);

/* A certificate in words (show, verify). */
void tool_describe_cert(FILE *out, const tm_profile *prof, X509 *x);

/* The root of --root FILE, else of --ca DIR (DIR/ca.pem), as a trust store.
 * NULL after saying why. */
X509_STORE *tool_root_store(const char *root, const char *ca_dir);

/* verify --ocsp (ui/ocsp_check.c). The URL is usable (http://): 0 with err.
 * The certificate's status from the responder: 1 good; 0 not, with msg
 * saying why (*revoked set when the answer is "revoked": msg has its date
 * and reason). Only an answer signed by the issuer or its delegated
 * responder, with our nonce, current, counts. */
int tool_ocsp_url_check(const char *url, char *err, size_t errlen);
int tool_ocsp_check(const char *url, X509 *cert, X509_STORE *roots, int *revoked, char *msg,
                    size_t msglen);

#endif
