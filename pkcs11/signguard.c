/*
 * The signing calls, hand-written because of issuing keys (issuing.h): on a
 * session where the module carries out a hash-and-sign mechanism itself,
 * C_Sign/C_SignUpdate/C_SignFinal go to that operation; elsewhere they go to
 * the backend as every other call does. An issuing key never gets a raw
 * mechanism, a sign-recover or a raw RSA decryption (which is a signature).
 */
#include "module.h"

#include <stdio.h>
#include <string.h>

#include "debug.h"

static CK_RV refuse(const mod_call *c, CK_RV rv, const char *op, const char *why)
{
    mod_audit_slot(c->slot, op, "refused", why);
    return rv;
}

static int is_issuing(const mod_call *c, CK_OBJECT_HANDLE bkey)
{
    return mod_g.issuing != NULL && mod_issuing_key(mod_g.issuing, c->f, c->slot, c->bh, bkey);
}

CK_RV mod_C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    CK_OBJECT_HANDLE bkey;
    char why[256];
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hKey, &bkey, CKR_KEY_HANDLE_INVALID);
    if (rv != CKR_OK)
        goto out;
    if (pMechanism == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (mod_g.issuing == NULL) {
        rv = c.f->C_SignInit(c.bh, pMechanism, bkey);
        goto out;
    }
    if (is_issuing(&c, bkey)) {
        if (!mod_signop_supported(pMechanism->mechanism)) {
            snprintf(why, sizeof(why),
                     "issuing key: mechanism 0x%lx signs data the module cannot check (a "
                     "precomputed digest); use a hash-and-sign mechanism such as "
                     "CKM_ECDSA_SHA256 or CKM_SHA256_RSA_PKCS",
                     (unsigned long)pMechanism->mechanism);
            rv = refuse(&c, CKR_MECHANISM_INVALID, "sign", why);
            goto out;
        }
        rv = mod_signop_start(hSession, c.slot->id, pMechanism, bkey, 1);
        goto out;
    }
    /* Another key on a token with an issuing key: the module's list shows
     * its hash-and-sign mechanisms there, so it carries them out when the
     * token lacks them. */
    if (mod_signop_supported(pMechanism->mechanism) && pMechanism->mechanism != CKM_EDDSA &&
        mod_issuing_token(mod_g.issuing, c.f, c.slot)) {
        rv = c.f->C_SignInit(c.bh, pMechanism, bkey);
        if (rv == CKR_MECHANISM_INVALID)
            rv = mod_signop_start(hSession, c.slot->id, pMechanism, bkey, 0);
        goto out;
    }
    rv = c.f->C_SignInit(c.bh, pMechanism, bkey);
out:
    mod_leave();
    return rv;
}

static void finished(const mod_call *c, CK_RV rv, const char *why, const char *done)
{
    if (rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE)
        mod_audit_slot(c->slot, "sign", "refused", why);
    else if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && why[0])
        mod_audit_slot(c->slot, "sign", "failed", why);
    else if (rv == CKR_OK && done[0])
        mod_audit_slot(c->slot, "sign", "ok", done);
}

CK_RV mod_C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                 CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    char why[512] = "", done[256] = "";
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (!mod_signop_active(hSession)) {
        rv = c.f->C_Sign(c.bh, pData, ulDataLen, pSignature, pulSignatureLen);
        goto out;
    }
    rv = mod_signop_update(hSession, pData, ulDataLen, why, sizeof(why));
    if (rv == CKR_OPERATION_ACTIVE) /* a size query was made: the data is in already */
        rv = CKR_OK;
    if (rv == CKR_OK)
        rv = mod_signop_final(hSession, c.f, c.bh, mod_g.profile, pSignature, pulSignatureLen, why,
                              sizeof(why), done, sizeof(done));
    finished(&c, rv, why, done);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    char why[512] = "";
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (!mod_signop_active(hSession))
        rv = c.f->C_SignUpdate(c.bh, pPart, ulPartLen);
    else
        rv = mod_signop_update(hSession, pPart, ulPartLen, why, sizeof(why));
    finished(&c, rv, why, "");
    mod_leave();
    return rv;
}

CK_RV mod_C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
                      CK_ULONG_PTR pulSignatureLen)
{
    char why[512] = "", done[256] = "";
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (!mod_signop_active(hSession)) {
        rv = c.f->C_SignFinal(c.bh, pSignature, pulSignatureLen);
    } else {
        rv = mod_signop_final(hSession, c.f, c.bh, mod_g.profile, pSignature, pulSignatureLen, why,
                              sizeof(why), done, sizeof(done));
        finished(&c, rv, why, done);
    }
    mod_leave();
    return rv;
}

/* Key operations whose result the module cannot check against the profile:
 * signing with recovery (always), and raw RSA decryption with the private key
 * (a signature on whatever the caller padded). Refused for an issuing key,
 * forwarded for any other. */
typedef enum { GUARD_SIGN_RECOVER, GUARD_DECRYPT } guard_op;

static CK_RV guarded_init(guard_op op, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_OBJECT_HANDLE hKey)
{
    CK_OBJECT_HANDLE bkey;
    mod_call c;
    int unchecked;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hKey, &bkey, CKR_KEY_HANDLE_INVALID);
    if (rv != CKR_OK)
        goto out;
    unchecked =
        op == GUARD_SIGN_RECOVER || (pMechanism != NULL && pMechanism->mechanism == CKM_RSA_X_509);
    if (unchecked && is_issuing(&c, bkey))
        rv = refuse(&c, CKR_MECHANISM_INVALID, op == GUARD_SIGN_RECOVER ? "sign" : "decrypt",
                    op == GUARD_SIGN_RECOVER
                        ? "issuing key: C_SignRecoverInit signs data the module cannot check"
                        : "issuing key: raw RSA (CKM_RSA_X_509) decryption is a signature the "
                          "module cannot check");
    else if (op == GUARD_SIGN_RECOVER)
        rv = c.f->C_SignRecoverInit(c.bh, pMechanism, bkey);
    else
        rv = c.f->C_DecryptInit(c.bh, pMechanism, bkey);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hKey)
{
    return guarded_init(GUARD_SIGN_RECOVER, hSession, pMechanism, hKey);
}

CK_RV mod_C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_OBJECT_HANDLE hKey)
{
    return guarded_init(GUARD_DECRYPT, hSession, pMechanism, hKey);
}
