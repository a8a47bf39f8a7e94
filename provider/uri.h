/*
 * pkcs11: URIs (RFC 7512) as the provider uses them: parsed by p11-kit, with
 * errors that name the offending part, and the PIN (pin-value or pin-source)
 * resolved into a buffer this struct owns and cleanses.
 */
#ifndef TOKENMINT_PROVIDER_URI_H
#define TOKENMINT_PROVIDER_URI_H

#include <p11-kit/uri.h>
#include "provider.h"

#define TM_PIN_MAX 256

struct prov_uri {
    P11KitUri *p11;
    int has_class;
    CK_OBJECT_CLASS klass;
    const unsigned char *id; /* borrowed from p11 */
    size_t id_len;
    const char *label_ptr; /* borrowed from p11, not NUL-terminated */
    size_t label_len;
    int has_pin;
    char pin[TM_PIN_MAX];
    size_t pin_len;
};

/*
 * Parses text; on failure returns NULL and writes a message naming the part
 * that is wrong into err (if not NULL). The PIN never appears in err.
 */
prov_uri *prov_uri_parse(const char *text, char *err, size_t errlen);
/* The same; secret_flags (P11C_SECRET_*) apply to a pin-source file. */
prov_uri *prov_uri_parse_ex(const char *text, unsigned int secret_flags, char *err, size_t errlen);
void prov_uri_free(prov_uri *u);

/* Does the URI's token part (token, serial, manufacturer, model) match? */
int prov_uri_match_token(const prov_uri *u, const CK_TOKEN_INFO *info);
/* Does the URI's object part (id, object, type) match these attributes? */
int prov_uri_match_object(const prov_uri *u, CK_OBJECT_CLASS klass, const unsigned char *id,
                          size_t id_len, const char *label, size_t label_len);

/* store.c: logs in to t for u the way the store does (the URI's PIN, the
 * provider's pin-source, the protected path), without a prompt. */
int prov_uri_login(prov_ctx *prov, prov_uri *u, prov_token *t);

#endif
