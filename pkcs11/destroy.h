/*
 * What C_DestroyObject is about to remove, for the audit record and for the
 * policy option that keeps bound certificates (issue 10 item 9): without it,
 * "certificates never overwrite one another" could be worked around by
 * delete-then-write, leaving no trace.
 */
#ifndef TOKENMINT_DESTROY_H
#define TOKENMINT_DESTROY_H

#include <stddef.h>

#include "p11c.h"
#include "tm_profile.h"

typedef struct mod_destroy_info {
    int is_certificate;
    int bound;        /* a certificate in the profile that names this token's serial */
    char detail[400]; /* "certificate serial 1F.. for token X on key pair 01ab, label 'l'" */
} mod_destroy_info;

/* Reads the object (class, CKA_ID, label; for a certificate its value) through
 * the backend. Never fails: what cannot be read is said so in detail. */
void mod_destroy_describe(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE bs, CK_OBJECT_HANDLE bo,
                          const tm_profile *profile, const unsigned char *serial, size_t serial_len,
                          mod_destroy_info *out);

#endif
