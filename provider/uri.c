/* pkcs11: URI glue over p11-kit's parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "uri.h"

/* Path attributes p11-kit understands with P11_KIT_URI_FOR_ANY. */
static const char *const known_path[] = {
    "token",
    "serial",
    "manufacturer",
    "model",
    "object",
    "id",
    "type",
    "slot-id",
    "slot-description",
    "slot-manufacturer",
    "library-description",
    "library-manufacturer",
    "library-version",
    NULL,
};
static const char *const known_query[] = {"pin-value", "pin-source", "module-name", "module-path",
                                          NULL};

static int in_list(const char *const *list, const char *name, size_t len)
{
    for (; *list != NULL; list++) {
        if (strlen(*list) == len && strncmp(*list, name, len) == 0)
            return 1;
    }
    return 0;
}

/* Bytes a fixed-size PKCS#11 info field holds, for the URI attributes that name one. */
static size_t field_max(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t max;
    } fields[] = {
        {"token", 32},
        {"manufacturer", 32},
        {"model", 16},
        {"serial", 16},
        {"slot-description", 64},
        {"slot-manufacturer", 32},
        {"library-description", 32},
        {"library-manufacturer", 32},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0)
            return fields[i].max;
    }
    return 0;
}

/* Length of a percent-encoded value once decoded; *nul set when it holds a %00. */
static size_t decoded_len(const char *v, int *nul)
{
    size_t n = 0;

    *nul = 0;
    for (; *v != '\0'; n++) {
        if (v[0] == '%' && v[1] != '\0' && v[2] != '\0') {
            if (v[1] == '0' && v[2] == '0')
                *nul = 1;
            v += 3;
        } else {
            v++;
        }
    }
    return n;
}

/*
 * p11-kit reports only "bad syntax" or "bad encoding"; to say which part is
 * wrong, re-parse each attribute on its own and report the first that fails.
 * Also run on URIs p11-kit accepted (code P11_KIT_URI_OK), for what it lets
 * through: a NUL byte inside a text attribute. Returns 1 when err names a
 * problem.
 */
static int name_bad_part(const char *text, int code, char *err, size_t errlen)
{
    const char *rest = text + strlen("pkcs11:");
    char *copy = strdup(rest), *seg, *save = NULL;
    int in_query = 0, refused = code != P11_KIT_URI_OK, found = refused;

    if (found)
        snprintf(err, errlen, "malformed pkcs11 URI: %s", p11_kit_uri_message(code));
    if (copy == NULL)
        return found;
    char *q = strchr(copy, '?');
    for (int pass = 0; pass < 2; pass++) {
        char *part = pass == 0 ? copy : (q != NULL ? q + 1 : NULL);
        if (pass == 0 && q != NULL)
            *q = '\0';
        if (part == NULL)
            break;
        in_query = pass;
        for (seg = strtok_r(part, in_query ? "&" : ";", &save); seg != NULL;
             seg = strtok_r(NULL, in_query ? "&" : ";", &save)) {
            char *eq = strchr(seg, '=');
            size_t nlen = eq != NULL ? (size_t)(eq - seg) : strlen(seg);
            if (eq == NULL) {
                snprintf(err, errlen, "malformed pkcs11 URI: attribute '%.*s' has no '='",
                         (int)nlen, seg);
                found = 1;
                goto out;
            }
            /* A separator of the other part inside a value: p11-kit reads
             * "token=a&pin-value=1234" as one token label and
             * "?pin-source=/x;pin-value=1234" as one path, and a message
             * (or a log line) naming that value showed the PIN. Encoded
             * (%26, %3B, %3F) it is a plain byte of the value. */
            const char *sep = strpbrk(eq + 1, in_query ? ";?" : "&");
            if (sep != NULL) {
                snprintf(err, errlen,
                         "malformed pkcs11 URI: the %.*s value holds '%c' (attributes are "
                         "separated by ';' in the path and by '&' in the query; in a value "
                         "write it as %s)",
                         (int)nlen, seg, *sep,
                         *sep == '&'   ? "%26"
                         : *sep == ';' ? "%3B"
                                       : "%3F");
                found = 1;
                goto out;
            }
            int nul = 0;
            size_t vlen = decoded_len(eq + 1, &nul), max = in_query ? 0 : field_max(seg, nlen);
            /* an id is binary and may hold any byte; the others are text */
            if (nul && !(nlen == 2 && strncmp(seg, "id", 2) == 0)) {
                snprintf(err, errlen,
                         "malformed pkcs11 URI: the %.*s value holds a NUL byte (%%00), which a "
                         "text attribute cannot",
                         (int)nlen, seg);
                found = 1;
                goto out;
            }
            if (max != 0 && vlen > max) {
                snprintf(err, errlen,
                         "malformed pkcs11 URI: the %.*s value is %zu bytes; PKCS#11 holds at "
                         "most %zu",
                         (int)nlen, seg, vlen, max);
                found = 1;
                goto out;
            }
            if (refused && !in_list(in_query ? known_query : known_path, seg, nlen)) {
                snprintf(err, errlen, "malformed pkcs11 URI: unknown %s attribute '%.*s'",
                         in_query ? "query" : "path", (int)nlen, seg);
                found = 1;
                goto out;
            }
            static const char *const types[] = {"private",    "public", "cert",
                                                "secret-key", "data",   NULL};
            if (refused && !in_query && nlen == 4 && strncmp(seg, "type", 4) == 0 &&
                !in_list(types, eq + 1, strlen(eq + 1))) {
                snprintf(err, errlen,
                         "malformed pkcs11 URI: bad type value '%s' (private, public, cert, "
                         "secret-key or data)",
                         eq + 1);
                found = 1;
                goto out;
            }
            if (!refused)
                continue; /* p11-kit took the whole URI: no need to re-parse the parts */
            /* sized to the part: a long value must not be cut (and then blamed) */
            size_t one_len = strlen(seg) + sizeof("pkcs11:?");
            char *one = malloc(one_len);
            if (one == NULL)
                goto out;
            snprintf(one, one_len, "pkcs11:%s%s", in_query ? "?" : "", seg);
            P11KitUri *u = p11_kit_uri_new();
            int rc = u != NULL ? p11_kit_uri_parse(one, P11_KIT_URI_FOR_ANY, u) : P11_KIT_URI_OK;
            p11_kit_uri_free(u);
            OPENSSL_clear_free(one, one_len);
            if (rc != P11_KIT_URI_OK) {
                /* Never echo a pin-value back. */
                if (strncmp(seg, "pin-value", nlen) == 0)
                    snprintf(err, errlen, "malformed pkcs11 URI: bad pin-value (%s)",
                             p11_kit_uri_message(rc));
                else
                    snprintf(err, errlen, "malformed pkcs11 URI: bad %.*s value '%s' (%s)",
                             (int)nlen, seg, eq + 1, p11_kit_uri_message(rc));
                goto out;
            }
        }
    }
out:
    OPENSSL_clear_free(copy, strlen(rest));
    return found;
}

prov_uri *prov_uri_parse(const char *text, char *err, size_t errlen)
{
    return prov_uri_parse_ex(text, 0, err, errlen);
}

prov_uri *prov_uri_parse_ex(const char *text, unsigned int secret_flags, char *err, size_t errlen)
{
    prov_uri *u = NULL;
    char dummy[8];
    int rc;

    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    return_val_if_fail(text != NULL, NULL);
    if (strncasecmp(text, "pkcs11:", 7) != 0) {
        snprintf(err, errlen, "not a pkcs11 URI (must start with 'pkcs11:')");
        return NULL;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL || (u->p11 = p11_kit_uri_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, u->p11);
    if (rc != P11_KIT_URI_OK) {
        name_bad_part(text, rc, err, errlen);
        goto fail;
    }
    if (p11_kit_uri_any_unrecognized(u->p11)) {
        name_bad_part(text, P11_KIT_URI_BAD_SYNTAX, err, errlen);
        goto fail;
    }
    if (name_bad_part(text, P11_KIT_URI_OK, err, errlen))
        goto fail;

    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(u->p11, CKA_CLASS);
    if (a != NULL && a->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
        u->has_class = 1;
        memcpy(&u->klass, a->pValue, sizeof(CK_OBJECT_CLASS));
    }
    a = p11_kit_uri_get_attribute(u->p11, CKA_ID);
    if (a != NULL) {
        u->id = a->pValue;
        u->id_len = a->ulValueLen;
    }
    a = p11_kit_uri_get_attribute(u->p11, CKA_LABEL);
    if (a != NULL) {
        u->label_ptr = a->pValue;
        u->label_len = a->ulValueLen;
    }

    const char *pv = p11_kit_uri_get_pin_value(u->p11);
    const char *ps = p11_kit_uri_get_pin_source(u->p11);
    if (pv != NULL && ps != NULL) {
        snprintf(err, errlen, "pkcs11 URI has both pin-value and pin-source; give one of them");
        goto fail;
    }
    if (pv != NULL) {
        size_t n = strlen(pv);
        if (n == 0) {
            /* C_Login with an empty PIN would cost the token a try */
            snprintf(err, errlen,
                     "pkcs11 URI pin-value is empty: give the PIN, or leave pin-value out");
            goto fail;
        }
        if (n >= sizeof(u->pin)) {
            snprintf(err, errlen, "pkcs11 URI pin-value is longer than %zu bytes",
                     sizeof(u->pin) - 1);
            goto fail;
        }
        memcpy(u->pin, pv, n);
        u->pin_len = n;
        u->has_pin = 1;
        /* p11-kit keeps its own copy; drop it so only ours (cleansed) remains. */
        p11_kit_uri_set_pin_value(u->p11, NULL);
    } else if (ps != NULL) {
        char perr[256];
        if (!p11c_secret_read_ex(ps, NULL, "PIN", secret_flags, u->pin, sizeof(u->pin), &u->pin_len,
                                 perr, sizeof(perr))) {
            snprintf(err, errlen, "pkcs11 URI pin-source: %s", perr);
            goto fail;
        }
        u->has_pin = 1;
    }
    return u;

fail:
    prov_uri_free(u);
    return NULL;
}

void prov_uri_free(prov_uri *u)
{
    if (u == NULL)
        return;
    p11_kit_uri_free(u->p11);
    OPENSSL_cleanse(u->pin, sizeof(u->pin));
    free(u);
}

int prov_uri_match_token(const prov_uri *u, const CK_TOKEN_INFO *info)
{
    return_val_if_fail(u != NULL && info != NULL, 0);
    return p11_kit_uri_match_token_info(u->p11, (CK_TOKEN_INFO *)info);
}

int prov_uri_match_object(const prov_uri *u, CK_OBJECT_CLASS klass, const unsigned char *id,
                          size_t id_len, const char *label, size_t label_len)
{
    return_val_if_fail(u != NULL, 0);
    if (u->has_class && u->klass != klass)
        return 0;
    if (u->id != NULL && (u->id_len != id_len || memcmp(u->id, id, id_len) != 0))
        return 0;
    if (u->label_ptr != NULL &&
        (u->label_len != label_len || memcmp(u->label_ptr, label, label_len) != 0))
        return 0;
    return 1;
}
