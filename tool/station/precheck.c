/*
 * Usage checks that need the profile, done before the first token is
 * touched (issue 10, item 7): can the profile certify a key of this type for
 * this purpose? The profile's own request builder answers, on an ephemeral
 * software key of the same type and a made-up serial, so every rule the
 * profile has is applied here exactly as it is on the token at step 7.
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
