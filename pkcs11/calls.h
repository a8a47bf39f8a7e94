/*
 * Every PKCS#11 2.40 function, in CK_FUNCTION_LIST order, once: the one
 * table the module's function list, its plain forwarding wrappers and its
 * debug trace are all made from (forward.c). Module-private.
 *
 * MOD_CALLS(X) expands X(kind, name, params, args) for each function:
 *   params  the C parameter list;
 *   args    the same names as a call, as the backend gets them: forward.c
 *           rebinds the handles named hSession, slotID, hKey and hObject to
 *           the backend's before the call, so no row spells a translation.
 *   kind    how the module implements it:
 *     OWN      hand-written, with logic of its own (PIN derivation, the write
 *              policy, handle bookkeeping, slot events); defined as mod_<name>
 *              in the file given in the comment on its row;
 *     SLOT     forwarded: slotID translated to the backend's slot;
 *     SESSION  forwarded: hSession translated to the backend's session;
 *     KEY      forwarded: hSession, and hKey refused (CKR_KEY_HANDLE_INVALID)
 *              unless it is an object of that session's token;
 *     OBJECT   the same for hObject (CKR_OBJECT_HANDLE_INVALID).
 * Adding a function: one row here; an OWN row also needs its mod_<name>.
 */
#ifndef TOKENMINT_CALLS_H
#define TOKENMINT_CALLS_H

#include "p11c.h"

#define MOD_SESSION CK_SESSION_HANDLE hSession

/* clang-format off */
#define MOD_CALLS(X)                                                                               \
    /* module.c */                                                                                 \
    X(OWN, C_Initialize, (CK_VOID_PTR pInitArgs), (pInitArgs))                                     \
    X(OWN, C_Finalize, (CK_VOID_PTR pReserved), (pReserved))                                       \
    X(OWN, C_GetInfo, (CK_INFO_PTR pInfo), (pInfo))                                                \
    X(OWN, C_GetFunctionList, (CK_FUNCTION_LIST_PTR_PTR ppFunctionList), (ppFunctionList))         \
    /* slotcalls.c */                                                                              \
    X(OWN, C_GetSlotList, (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount),\
      (tokenPresent, pSlotList, pulCount))                                                         \
    X(OWN, C_GetSlotInfo, (CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo), (slotID, pInfo))            \
    X(OWN, C_GetTokenInfo, (CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo), (slotID, pInfo))          \
    X(OWN, C_GetMechanismList,                                                                    \
      (CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount),            \
      (slotID, pMechanismList, pulCount))                                                          \
    X(OWN, C_GetMechanismInfo,                                                                    \
      (CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo),                    \
      (slotID, type, pInfo))                                                                       \
    X(OWN, C_InitToken,                                                                            \
      (CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel),        \
      (slotID, pPin, ulPinLen, pLabel))                                                            \
    X(OWN, C_InitPIN, (MOD_SESSION, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen),                      \
      (hSession, pPin, ulPinLen))                                                                  \
    X(OWN, C_SetPIN,                                                                               \
      (MOD_SESSION, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,           \
       CK_ULONG ulNewLen),                                                                         \
      (hSession, pOldPin, ulOldLen, pNewPin, ulNewLen))                                            \
    X(OWN, C_OpenSession,                                                                          \
      (CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,              \
       CK_SESSION_HANDLE_PTR phSession),                                                           \
      (slotID, flags, pApplication, Notify, phSession))                                            \
    X(OWN, C_CloseSession, (MOD_SESSION), (hSession))                                              \
    X(OWN, C_CloseAllSessions, (CK_SLOT_ID slotID), (slotID))                                      \
    X(OWN, C_GetSessionInfo, (MOD_SESSION, CK_SESSION_INFO_PTR pInfo), (hSession, pInfo))          \
    X(SESSION, C_GetOperationState,                                                                \
      (MOD_SESSION, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen),               \
      (hSession, pOperationState, pulOperationStateLen))                                           \
    X(OWN, C_SetOperationState,                                                                    \
      (MOD_SESSION, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,                     \
       CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey),                      \
      (hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey))        \
    X(OWN, C_Login, (MOD_SESSION, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), \
      (hSession, userType, pPin, ulPinLen))                                                        \
    X(SESSION, C_Logout, (MOD_SESSION), (hSession))                                                \
    /* objects.c */                                                                                \
    X(OWN, C_CreateObject,                                                                         \
      (MOD_SESSION, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject),  \
      (hSession, pTemplate, ulCount, phObject))                                                    \
    X(OWN, C_CopyObject,                                                                           \
      (MOD_SESSION, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,        \
       CK_OBJECT_HANDLE_PTR phNewObject),                                                          \
      (hSession, hObject, pTemplate, ulCount, phNewObject))                                        \
    X(OWN, C_DestroyObject, (MOD_SESSION, CK_OBJECT_HANDLE hObject), (hSession, hObject))          \
    X(OBJECT, C_GetObjectSize, (MOD_SESSION, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize),      \
      (hSession, hObject, pulSize))                                                                \
    X(OBJECT, C_GetAttributeValue,                                                                 \
      (MOD_SESSION, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),       \
      (hSession, hObject, pTemplate, ulCount))                                                     \
    X(OWN, C_SetAttributeValue,                                                                    \
      (MOD_SESSION, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),       \
      (hSession, hObject, pTemplate, ulCount))                                                     \
    X(SESSION, C_FindObjectsInit, (MOD_SESSION, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),     \
      (hSession, pTemplate, ulCount))                                                              \
    X(OWN, C_FindObjects,                                                                          \
      (MOD_SESSION, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,                      \
       CK_ULONG_PTR pulObjectCount),                                                               \
      (hSession, phObject, ulMaxObjectCount, pulObjectCount))                                      \
    X(SESSION, C_FindObjectsFinal, (MOD_SESSION), (hSession))                                      \
    /* forwarded */                                                                                \
    X(KEY, C_EncryptInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),       \
      (hSession, pMechanism, hKey))                                                                \
    X(SESSION, C_Encrypt,                                                                          \
      (MOD_SESSION, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,             \
       CK_ULONG_PTR pulEncryptedDataLen),                                                          \
      (hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen))                           \
    X(SESSION, C_EncryptUpdate,                                                                    \
      (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,             \
       CK_ULONG_PTR pulEncryptedPartLen),                                                          \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                           \
    X(SESSION, C_EncryptFinal,                                                                     \
      (MOD_SESSION, CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen),         \
      (hSession, pLastEncryptedPart, pulLastEncryptedPartLen))                                     \
    /* signguard.c */                                                                              \
    X(OWN, C_DecryptInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),       \
      (hSession, pMechanism, hKey))                                                                \
    X(SESSION, C_Decrypt,                                                                          \
      (MOD_SESSION, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData,    \
       CK_ULONG_PTR pulDataLen),                                                                   \
      (hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen))                           \
    X(SESSION, C_DecryptUpdate,                                                                    \
      (MOD_SESSION, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,    \
       CK_ULONG_PTR pulPartLen),                                                                   \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                           \
    X(SESSION, C_DecryptFinal, (MOD_SESSION, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen),  \
      (hSession, pLastPart, pulLastPartLen))                                                       \
    X(SESSION, C_DigestInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism), (hSession, pMechanism))   \
    X(SESSION, C_Digest,                                                                           \
      (MOD_SESSION, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,                    \
       CK_ULONG_PTR pulDigestLen),                                                                 \
      (hSession, pData, ulDataLen, pDigest, pulDigestLen))                                         \
    X(SESSION, C_DigestUpdate, (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),               \
      (hSession, pPart, ulPartLen))                                                                \
    X(KEY, C_DigestKey, (MOD_SESSION, CK_OBJECT_HANDLE hKey), (hSession, hKey))                    \
    X(SESSION, C_DigestFinal, (MOD_SESSION, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen),       \
      (hSession, pDigest, pulDigestLen))                                                           \
    /* signguard.c: C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, */                              \
    /* C_SignRecoverInit, C_DecryptInit (issuing keys) */                                          \
    X(OWN, C_SignInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),          \
      (hSession, pMechanism, hKey))                                                                \
    /* forwarded */                                                                                \
    X(OWN, C_Sign,                                                                             \
      (MOD_SESSION, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,                 \
       CK_ULONG_PTR pulSignatureLen),                                                              \
      (hSession, pData, ulDataLen, pSignature, pulSignatureLen))                                   \
    X(OWN, C_SignUpdate, (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),                 \
      (hSession, pPart, ulPartLen))                                                                \
    X(OWN, C_SignFinal, (MOD_SESSION, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),   \
      (hSession, pSignature, pulSignatureLen))                                                     \
    X(OWN, C_SignRecoverInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),   \
      (hSession, pMechanism, hKey))                                                                \
    X(SESSION, C_SignRecover,                                                                      \
      (MOD_SESSION, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,                 \
       CK_ULONG_PTR pulSignatureLen),                                                              \
      (hSession, pData, ulDataLen, pSignature, pulSignatureLen))                                   \
    X(KEY, C_VerifyInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey),        \
      (hSession, pMechanism, hKey))                                                                \
    X(SESSION, C_Verify,                                                                           \
      (MOD_SESSION, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,                 \
       CK_ULONG ulSignatureLen),                                                                   \
      (hSession, pData, ulDataLen, pSignature, ulSignatureLen))                                    \
    X(SESSION, C_VerifyUpdate, (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen),               \
      (hSession, pPart, ulPartLen))                                                                \
    X(SESSION, C_VerifyFinal, (MOD_SESSION, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),      \
      (hSession, pSignature, ulSignatureLen))                                                      \
    X(KEY, C_VerifyRecoverInit, (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey))                                                                \
    X(SESSION, C_VerifyRecover,                                                                    \
      (MOD_SESSION, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, CK_BYTE_PTR pData,            \
       CK_ULONG_PTR pulDataLen),                                                                   \
      (hSession, pSignature, ulSignatureLen, pData, pulDataLen))                                   \
    X(SESSION, C_DigestEncryptUpdate,                                                              \
      (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,             \
       CK_ULONG_PTR pulEncryptedPartLen),                                                          \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                           \
    X(SESSION, C_DecryptDigestUpdate,                                                              \
      (MOD_SESSION, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,    \
       CK_ULONG_PTR pulPartLen),                                                                   \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                           \
    X(SESSION, C_SignEncryptUpdate,                                                                \
      (MOD_SESSION, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart,             \
       CK_ULONG_PTR pulEncryptedPartLen),                                                          \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                           \
    X(SESSION, C_DecryptVerifyUpdate,                                                              \
      (MOD_SESSION, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart,    \
       CK_ULONG_PTR pulPartLen),                                                                   \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                           \
    /* objects.c */                                                                                \
    X(OWN, C_GenerateKey,                                                                          \
      (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,     \
       CK_OBJECT_HANDLE_PTR phKey),                                                                \
      (hSession, pMechanism, pTemplate, ulCount, phKey))                                           \
    X(OWN, C_GenerateKeyPair,                                                                      \
      (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate,              \
       CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE_PTR pPrivateKeyTemplate,                   \
       CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey,                      \
       CK_OBJECT_HANDLE_PTR phPrivateKey),                                                         \
      (hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate,   \
       ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey))                                     \
    X(OWN, C_WrapKey,                                                                              \
      (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,                    \
       CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen),             \
      (hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen))                   \
    X(OWN, C_UnwrapKey,                                                                            \
      (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,                  \
       CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,              \
       CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),                                     \
      (hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,              \
       ulAttributeCount, phKey))                                                                   \
    X(OWN, C_DeriveKey,                                                                            \
      (MOD_SESSION, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,                        \
       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),         \
      (hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey))                        \
    /* forwarded */                                                                                \
    X(SESSION, C_SeedRandom, (MOD_SESSION, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen),                 \
      (hSession, pSeed, ulSeedLen))                                                                \
    X(SESSION, C_GenerateRandom, (MOD_SESSION, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen),      \
      (hSession, RandomData, ulRandomLen))                                                         \
    X(SESSION, C_GetFunctionStatus, (MOD_SESSION), (hSession))                                     \
    X(SESSION, C_CancelFunction, (MOD_SESSION), (hSession))                                        \
    /* slotcalls.c */                                                                              \
    X(OWN, C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved),      \
      (flags, pSlot, pReserved))
/* clang-format on */

/* Every implementation, hand-written or generated: mod_C_Initialize, ... */
#define MOD_CALL_PROTOTYPE(kind, name, params, args) CK_RV mod_##name params;
MOD_CALLS(MOD_CALL_PROTOTYPE)
#undef MOD_CALL_PROTOTYPE

/* Fills every entry of f (version 2.40) from the table, each through the
 * debug trace. */
void mod_fill_functions(CK_FUNCTION_LIST *f);

#endif
