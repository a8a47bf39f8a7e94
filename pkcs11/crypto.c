/*
 * The cryptographic calls: straight to the session's backend. A key handle is
 * translated, and refused when it belongs to another token.
 */
#include "module.h"

/* A call that takes only the session (and data): look up, forward. */
#define FORWARD(name, params, args)                                                                \
    static CK_RV tm_##name params                                                                  \
    {                                                                                              \
        mod_call c;                                                                                \
        CK_RV rv = mod_enter_session(hSession, &c);                                                \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        rv = c.f->name args;                                                                       \
        mod_leave();                                                                               \
        return rv;                                                                                 \
    }

/* An *Init call with a key: translate hKey to bkey first. */
#define FORWARD_KEY(name)                                                                          \
    static CK_RV tm_##name(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,                \
                           CK_OBJECT_HANDLE hKey)                                                  \
    {                                                                                              \
        CK_OBJECT_HANDLE bkey;                                                                     \
        mod_call c;                                                                                \
        CK_RV rv = mod_enter_session(hSession, &c);                                                \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        rv = mod_call_object(&c, hKey, &bkey, CKR_KEY_HANDLE_INVALID);                             \
        if (rv == CKR_OK)                                                                          \
            rv = c.f->name(c.bh, pMechanism, bkey);                                                \
        mod_leave();                                                                               \
        return rv;                                                                                 \
    }

#define DATA_IN CK_BYTE_PTR pIn, CK_ULONG ulIn
#define DATA_OUT CK_BYTE_PTR pOut, CK_ULONG_PTR pulOut

FORWARD_KEY(C_EncryptInit)
FORWARD(C_Encrypt, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT), (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_EncryptUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_EncryptFinal, (CK_SESSION_HANDLE hSession, DATA_OUT), (c.bh, pOut, pulOut))

FORWARD_KEY(C_DecryptInit)
FORWARD(C_Decrypt, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT), (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_DecryptUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_DecryptFinal, (CK_SESSION_HANDLE hSession, DATA_OUT), (c.bh, pOut, pulOut))

FORWARD(C_DigestInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism), (c.bh, pMechanism))
FORWARD(C_Digest, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT), (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_DigestUpdate, (CK_SESSION_HANDLE hSession, DATA_IN), (c.bh, pIn, ulIn))
FORWARD(C_DigestFinal, (CK_SESSION_HANDLE hSession, DATA_OUT), (c.bh, pOut, pulOut))

static CK_RV tm_C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    CK_OBJECT_HANDLE bkey;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hKey, &bkey, CKR_KEY_HANDLE_INVALID);
    if (rv == CKR_OK)
        rv = c.f->C_DigestKey(c.bh, bkey);
    mod_leave();
    return rv;
}

FORWARD_KEY(C_SignInit)
FORWARD(C_Sign, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT), (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_SignUpdate, (CK_SESSION_HANDLE hSession, DATA_IN), (c.bh, pIn, ulIn))
FORWARD(C_SignFinal, (CK_SESSION_HANDLE hSession, DATA_OUT), (c.bh, pOut, pulOut))
FORWARD_KEY(C_SignRecoverInit)
FORWARD(C_SignRecover, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))

FORWARD_KEY(C_VerifyInit)
FORWARD(C_Verify,
        (CK_SESSION_HANDLE hSession, DATA_IN, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),
        (c.bh, pIn, ulIn, pSignature, ulSignatureLen))
FORWARD(C_VerifyUpdate, (CK_SESSION_HANDLE hSession, DATA_IN), (c.bh, pIn, ulIn))
FORWARD(C_VerifyFinal, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulLen),
        (c.bh, pSignature, ulLen))
FORWARD_KEY(C_VerifyRecoverInit)
FORWARD(C_VerifyRecover, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))

FORWARD(C_DigestEncryptUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_DecryptDigestUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_SignEncryptUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))
FORWARD(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE hSession, DATA_IN, DATA_OUT),
        (c.bh, pIn, ulIn, pOut, pulOut))

FORWARD(C_SeedRandom, (CK_SESSION_HANDLE hSession, DATA_IN), (c.bh, pIn, ulIn))
FORWARD(C_GenerateRandom, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOut, CK_ULONG ulLen),
        (c.bh, pOut, ulLen))

void mod_fill_crypto(CK_FUNCTION_LIST *f)
{
    f->C_EncryptInit = tm_C_EncryptInit;
    f->C_Encrypt = tm_C_Encrypt;
    f->C_EncryptUpdate = tm_C_EncryptUpdate;
    f->C_EncryptFinal = tm_C_EncryptFinal;
    f->C_DecryptInit = tm_C_DecryptInit;
    f->C_Decrypt = tm_C_Decrypt;
    f->C_DecryptUpdate = tm_C_DecryptUpdate;
    f->C_DecryptFinal = tm_C_DecryptFinal;
    f->C_DigestInit = tm_C_DigestInit;
    f->C_Digest = tm_C_Digest;
    f->C_DigestUpdate = tm_C_DigestUpdate;
    f->C_DigestKey = tm_C_DigestKey;
    f->C_DigestFinal = tm_C_DigestFinal;
    f->C_SignInit = tm_C_SignInit;
    f->C_Sign = tm_C_Sign;
    f->C_SignUpdate = tm_C_SignUpdate;
    f->C_SignFinal = tm_C_SignFinal;
    f->C_SignRecoverInit = tm_C_SignRecoverInit;
    f->C_SignRecover = tm_C_SignRecover;
    f->C_VerifyInit = tm_C_VerifyInit;
    f->C_Verify = tm_C_Verify;
    f->C_VerifyUpdate = tm_C_VerifyUpdate;
    f->C_VerifyFinal = tm_C_VerifyFinal;
    f->C_VerifyRecoverInit = tm_C_VerifyRecoverInit;
    f->C_VerifyRecover = tm_C_VerifyRecover;
    f->C_DigestEncryptUpdate = tm_C_DigestEncryptUpdate;
    f->C_DecryptDigestUpdate = tm_C_DecryptDigestUpdate;
    f->C_SignEncryptUpdate = tm_C_SignEncryptUpdate;
    f->C_DecryptVerifyUpdate = tm_C_DecryptVerifyUpdate;
    f->C_SeedRandom = tm_C_SeedRandom;
    f->C_GenerateRandom = tm_C_GenerateRandom;
}
