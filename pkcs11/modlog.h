/*
 * Where a person finds why the module refused something: a PKCS#11
 * application (pkcs11-tool, NSS, p11tool) shows only a bare CKR. Every
 * refusal and every failed C_Initialize goes to syslog (facility LOG_AUTH:
 * these are security decisions), and with TOKENMINT_DEBUG also to stderr,
 * whether or not an audit log is configured. The application's own syslog
 * identity is left alone (no openlog): each line starts "tokenmint-pkcs11:".
 * Never given a PIN or secret.
 */
#ifndef TOKENMINT_MODLOG_H
#define TOKENMINT_MODLOG_H

#include <syslog.h>

/* prio: LOG_ERR, LOG_WARNING, LOG_NOTICE. */
void mod_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
