/*
 * The serial-bound profile at the signing boundary: before a token key signs,
 * the data it is asked to sign is looked at. A CertificationRequestInfo must
 * name the serial of the token the key is on; a TBSCertificate signed by an
 * issuing key must conform to the profile. Anything else signs as usual.
 */
#ifndef TOKENMINT_PROVIDER_GUARD_H
#define TOKENMINT_PROVIDER_GUARD_H

#include "key.h"

/* 1: may be signed. 0: refused, one error raised per reason. */
int prov_guard_check(prov_ctx *prov, const prov_key *key, const unsigned char *data, size_t len);

/* Data longer than this is not buffered for the check (see signature.c). */
#define TM_GUARD_MAX (1024 * 1024)

/*
 * For data past TM_GUARD_MAX: does its start (head, at least 6 bytes) declare
 * a single DER SEQUENCE spanning exactly total bytes, i.e. could it be a
 * request or certificate body the check never saw? 1 when it could.
 */
int prov_guard_could_be_der(const unsigned char *head, size_t head_len, size_t total);

#endif
