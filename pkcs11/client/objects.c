/*
 * Finding objects and reading their attributes: the loops every PKCS#11
 * caller in tokenmint needs, written once.
 */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

/* Handles asked for per C_FindObjects call. */
#define FIND_BATCH 64

CK_RV p11c_find_all(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE **objs, CK_ULONG *count)
{
    CK_OBJECT_HANDLE batch[FIND_BATCH];
    CK_OBJECT_HANDLE *all = NULL;
    CK_ULONG got = 0, have = 0;
    CK_RV rv, rv2;

    p11c_return_val_if_fail(objs != NULL && count != NULL, CKR_ARGUMENTS_BAD);
    *objs = NULL;
    *count = 0;
    p11c_return_val_if_fail(f != NULL && (tmpl != NULL || n == 0), CKR_ARGUMENTS_BAD);

    rv = f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    /*
     * Every handle is collected before the caller reads any attribute: not
     * every module allows other calls inside an active search. Asked in
     * batches until the module has no more (a short batch is not taken as
     * the end: some modules hand out fewer than asked for mid-search).
     */
    for (;;) {
        CK_OBJECT_HANDLE *grown;

        got = 0;
        rv = f->C_FindObjects(s, batch, FIND_BATCH, &got);
        if (rv != CKR_OK || got == 0)
            break;
        if (got > FIND_BATCH) {
            rv = CKR_GENERAL_ERROR;
            break;
        }
        grown = realloc(all, (have + got) * sizeof(*all));
        if (grown == NULL) {
            rv = CKR_HOST_MEMORY;
            break;
        }
        all = grown;
        memcpy(all + have, batch, got * sizeof(*all));
        have += got;
    }
    /* Always ended, so the session stays usable for the next search. */
    rv2 = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK)
        goto out;
    *objs = all;
    *count = have;
    all = NULL;
out:
    free(all);
    return rv;
}

CK_RV p11c_find_first(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *obj)
{
    CK_ULONG got = 0;
    CK_RV rv, rv2;

    p11c_return_val_if_fail(obj != NULL, CKR_ARGUMENTS_BAD);
    *obj = CK_INVALID_HANDLE;
    p11c_return_val_if_fail(f != NULL && (tmpl != NULL || n == 0), CKR_ARGUMENTS_BAD);

    rv = f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjects(s, obj, 1, &got);
    if (rv != CKR_OK || got == 0)
        *obj = CK_INVALID_HANDLE;
    rv2 = f->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK)
        *obj = CK_INVALID_HANDLE;
    return rv;
}

CK_RV p11c_attr_get(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    unsigned char *buf = NULL;
    CK_ULONG want;
    CK_RV rv;

    p11c_return_val_if_fail(val != NULL && len != NULL, CKR_ARGUMENTS_BAD);
    *val = NULL;
    *len = 0;
    p11c_return_val_if_fail(f != NULL, CKR_ARGUMENTS_BAD);

    rv = f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK)
        goto out;
    /* CKR_OK with no length is against the standard (a sensitive or unknown
     * attribute has its own CKR): read as "this object has no such value". */
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        rv = CKR_ATTRIBUTE_TYPE_INVALID;
        goto out;
    }
    /* One byte more, always NUL: a label or URI part can be used as text,
     * and an empty value is still a buffer the caller owns and frees. */
    buf = malloc(a.ulValueLen + 1);
    if (buf == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    a.pValue = buf;
    want = a.ulValueLen;
    rv = f->C_GetAttributeValue(s, obj, &a, 1);
    if (rv != CKR_OK)
        goto out;
    /* The value grew between the calls without the module saying so. */
    if (a.ulValueLen > want) {
        rv = CKR_GENERAL_ERROR;
        goto out;
    }
    buf[a.ulValueLen] = '\0';
    *val = buf;
    *len = a.ulValueLen;
    buf = NULL;
out:
    free(buf);
    return rv;
}
