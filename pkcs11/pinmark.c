/* The derived-PIN marker object on a token (see pinmark.h). */
#include "pinmark.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PREFIX "tmpin1:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define DOMAIN "tokenmint derived-PIN marker v1"
#define MAC_LEN 32
#define VALUE_LEN (PREFIX_LEN + MAC_LEN)

static int marker_value(const mod_station_secret *secret, const unsigned char *serial,
                        size_t serial_len, unsigned char out[VALUE_LEN])
{
    unsigned char msg[sizeof(DOMAIN) + 256];
    unsigned int mdlen = 0;
    int ok;

    if (secret == NULL || secret->bytes == NULL || serial_len == 0 || serial_len > 256)
        return 0;
    memcpy(msg, DOMAIN, sizeof(DOMAIN)); /* with its NUL: no serial can shift into it */
    memcpy(msg + sizeof(DOMAIN), serial, serial_len);
    memcpy(out, PREFIX, PREFIX_LEN);
    ERR_set_mark();
    ok = HMAC(EVP_sha256(), secret->bytes, (int)secret->len, msg, sizeof(DOMAIN) + serial_len,
              out + PREFIX_LEN, &mdlen) != NULL &&
         mdlen == MAC_LEN;
    ERR_pop_to_mark();
    return ok;
}

/* Handles of every marker object on the token; the caller frees *objs. */
static CK_RV find_markers(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE **objs,
                          CK_ULONG *n)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_APPLICATION, (void *)MOD_PINMARK_APPLICATION, sizeof(MOD_PINMARK_APPLICATION) - 1},
        {CKA_LABEL, (void *)MOD_PINMARK_LABEL, sizeof(MOD_PINMARK_LABEL) - 1},
    };

    return p11c_find_all(f, s, t, 3, objs, n);
}

mod_pinmark_state mod_pinmark_read(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot,
                                   const mod_station_secret *secret, const unsigned char *serial,
                                   size_t serial_len)
{
    CK_OBJECT_HANDLE *objs = NULL;
    unsigned char want[VALUE_LEN], got[VALUE_LEN + 1];
    CK_SESSION_HANDLE s;
    mod_pinmark_state st = MOD_PINMARK_UNKNOWN;
    int have_want;
    CK_ULONG n = 0, i;

    if (f->C_OpenSession(bslot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return MOD_PINMARK_UNKNOWN;
    if (find_markers(f, s, &objs, &n) != CKR_OK)
        goto out;
    st = n > 0 ? MOD_PINMARK_FOREIGN : MOD_PINMARK_NONE;
    have_want = marker_value(secret, serial, serial_len, want);
    for (i = 0; i < n && have_want; i++) {
        CK_ATTRIBUTE a = {CKA_VALUE, got, sizeof(got)};
        if (f->C_GetAttributeValue(s, objs[i], &a, 1) == CKR_OK && a.ulValueLen == VALUE_LEN &&
            CRYPTO_memcmp(got, want, VALUE_LEN) == 0)
            st = MOD_PINMARK_OURS;
    }
out:
    f->C_CloseSession(s);
    free(objs);
    OPENSSL_cleanse(want, sizeof(want));
    return st;
}

static CK_RV destroy_all(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv = find_markers(f, s, &objs, &n);

    for (i = 0; rv == CKR_OK && i < n; i++)
        rv = f->C_DestroyObject(s, objs[i]);
    free(objs);
    return rv;
}

CK_RV mod_pinmark_write(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, const mod_station_secret *secret,
                        const unsigned char *serial, size_t serial_len)
{
    unsigned char value[VALUE_LEN];
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_APPLICATION, (void *)MOD_PINMARK_APPLICATION, sizeof(MOD_PINMARK_APPLICATION) - 1},
        {CKA_LABEL, (void *)MOD_PINMARK_LABEL, sizeof(MOD_PINMARK_LABEL) - 1},
        {CKA_VALUE, value, sizeof(value)},
    };
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE o;
    CK_RV rv;

    if (!marker_value(secret, serial, serial_len, value))
        return CKR_FUNCTION_FAILED;
    rv = f->C_OpenSession(bslot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return rv;
    rv = destroy_all(f, s);
    if (rv == CKR_OK)
        rv = f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &o);
    f->C_CloseSession(s);
    return rv;
}

CK_RV mod_pinmark_remove(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = f->C_OpenSession(bslot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);

    if (rv != CKR_OK)
        return rv;
    rv = destroy_all(f, s);
    f->C_CloseSession(s);
    return rv;
}

const char *mod_pinmark_state_name(mod_pinmark_state s)
{
    switch (s) {
    case MOD_PINMARK_NONE:
        return "no derived-PIN marker";
    case MOD_PINMARK_OURS:
        return "derived-PIN marker of this station";
    case MOD_PINMARK_FOREIGN:
        return "a derived-PIN marker that does not verify with this station's secret";
    case MOD_PINMARK_UNKNOWN:
        break;
    }
    return "the token's public objects could not be read";
}
