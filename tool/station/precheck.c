/*
 * Checks done before the first token is touched. Usage checks that need the
 * profile (issue 10, item 7): can the profile certify a key of this type for
 * this purpose? The profile's own request builder answers, on an ephemeral
 * software key of the same type and a made-up serial, so every rule the
 * profile has is applied here exactly as it is on the token at step 7.
 * Per token (issue 13): does its serial name it alone?
 */
#include "station/station.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

static EVP_PKEY *ephemeral_key(tool_keytype kt)
{
    switch (kt) {
    case TOOL_KEY_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case TOOL_KEY_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case TOOL_KEY_RSA2048:
    case TOOL_KEY_RSA3072:
        /* The profile looks at the key's algorithm, not its size: the small
         * key keeps this check fast; the size is the token's business. */
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    case TOOL_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    return NULL;
}

int tool_profile_can_certify(const tm_profile *prof, const char *purpose, tool_keytype kt,
                             char *why, size_t whylen)
{
    static const unsigned char serial[] = {'0', '0', '0', '1'};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    tm_violations *v = NULL;
    char msg[512];
    int ok = 0;

    tool_return_val_if_fail(prof != NULL && purpose != NULL && why != NULL, 0);
    why[0] = 0;
    key = ephemeral_key(kt);
    req = X509_REQ_new();
    v = tm_violations_new();
    if (!key || !req || !v || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key)) {
        snprintf(why, whylen, "out of memory checking the profile");
        goto out;
    }
    if (!tm_profile_build_request(prof, req, serial, sizeof serial, "precheck", purpose, v)) {
        tm_violations_join(v, msg, sizeof msg);
        snprintf(why, whylen, "%s", msg);
        goto out;
    }
    ok = 1;
out:
    tm_violations_free(v);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return ok;
}

int tool_token_serial_usable(const tool_station *st, const tool_token *t, char *why, size_t whylen)
{
    const char *bad;
    size_t i;

    tool_return_val_if_fail(st != NULL && t != NULL && why != NULL, 0);
    why[0] = 0;
    bad = tm_serial_unusable(t->serial, t->serial_len);
    if (bad) {
        snprintf(why, whylen,
                 "token '%s' (slot %lu) reports the serial '%s' (%s): it names no one token, so "
                 "no certificate can be bound to it (name one with token_serials in the module "
                 "config; nothing was done to this token)",
                 t->label, (unsigned long)t->slot, t->serial_text, bad);
        return 0;
    }
    /* Every token present, selected or not: a certificate naming this serial
     * would fit the other one just as well. */
    for (i = 0; i < st->ntokens; i++) {
        const tool_token *o = &st->tokens[i];
        if (o == t || o->slot == t->slot || o->serial_len != t->serial_len ||
            memcmp(o->serial, t->serial, t->serial_len) != 0)
            continue;
        snprintf(why, whylen,
                 "token '%s' (slot %lu) has the serial %s, and so has token '%s' (slot %lu): a "
                 "serial two tokens share binds a certificate to neither (nothing was done to "
                 "this token)",
                 t->label, (unsigned long)t->slot, t->serial_text, o->label,
                 (unsigned long)o->slot);
        return 0;
    }
    return 1;
}
