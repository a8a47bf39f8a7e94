/*
 * ir/cr issuance for `tokenmint ca serve` (see cmp_crmf.c): a CRMF request
 * whose proof of possession OpenSSL verified, issued from the CA directory.
 */
#ifndef TOKENMINT_CMP_CRMF_H
#define TOKENMINT_CMP_CRMF_H

#include "tool.h"

typedef struct tm_cmp_crmf tm_cmp_crmf;

/* ca is the server's open CA (borrowed); loads the CA key of DIR/ca.cnf. */
tm_cmp_crmf *tm_cmp_crmf_open(const char *dir, tm_ca *ca, const tm_profile *prof, tm_crypto *crypto,
                              char *err, size_t errlen);
void tm_cmp_crmf_close(tm_cmp_crmf *c);
/* The certificate (caller frees), recorded in the CA directory; or NULL with
 * the CMP failInfo bit number and the reason. */
X509 *tm_cmp_crmf_issue(tm_cmp_crmf *c, const X509_REQ *tmpl, const char *purpose, int *failinfo,
                        char *err, size_t errlen);

#endif
