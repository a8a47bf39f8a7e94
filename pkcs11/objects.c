/*
 * Objects and keys, and the write policy on the way in: a certificate reaches
 * a token only through C_CreateObject and mod_policy_decide. C_CopyObject and
 * C_SetAttributeValue are closed as side doors for certificates.
 */
#include "module.h"

#include <stdio.h>
#include <string.h>

#include "debug.h"
#include "destroy.h"

/* Is the backend object a certificate? Unreadable class counts as "yes": the
 * safe answer for a gate. */
static int is_certificate(const mod_call *c, CK_OBJECT_HANDLE bo)
{
    CK_OBJECT_CLASS cls = 0;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};

    if (c->f->C_GetAttributeValue(c->bh, bo, &a, 1) != CKR_OK)
        return 1;
    return cls == CKO_CERTIFICATE;
}

CK_RV mod_C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                         CK_OBJECT_HANDLE_PTR phObject)
{
    mod_policy_decision d;
    mod_policy_token tok;
    char name[64], shared[64];
    CK_OBJECT_HANDLE bo;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (phObject == NULL || (pTemplate == NULL && ulCount > 0)) {
        mod_leave();
        return CKR_ARGUMENTS_BAD;
    }
    memset(&d, 0, sizeof(d));
    /* Held around decide + create: two writers must not both see "this key
     * has no certificate yet". Per token, so other tokens are not held up. */
    snprintf(name, sizeof(name), "'%s' (slot %lu)", c.slot->label, (unsigned long)c.slot->id);
    tok.serial = c.slot->serial;
    tok.serial_len = c.slot->serial_len;
    tok.name = name;
    tok.shared_with =
        mod_slots_serial_shared(mod_g.slots, c.slot, shared, sizeof(shared)) ? shared : NULL;
    pthread_mutex_lock(&c.slot->write_lock);
    mod_policy_decide_token(&mod_g.policy, c.f, c.bh, &tok, pTemplate, ulCount, &d);
    if (!d.is_certificate && d.rv != CKR_OK) {
        rv = d.rv; /* the policy could not even look (out of memory) */
    } else if (!d.is_certificate) {
        rv = c.f->C_CreateObject(c.bh, pTemplate, ulCount, &bo);
    } else if (d.rv != CKR_OK) {
        rv = d.rv;
        mod_audit_slot(c.slot, "certificate", "refused", d.reason);
    } else {
        rv = c.f->C_CreateObject(c.bh, d.templ, d.templ_count, &bo);
        if (rv == CKR_OK) {
            mod_audit_slot(c.slot, "certificate", "written", d.reason[0] ? d.reason : NULL);
        } else {
            char detail[600];
            snprintf(detail, sizeof(detail), "the token refused to store it: %s",
                     p11c_ckr_name(rv));
            mod_audit_slot(c.slot, "certificate", "failed", detail);
        }
    }
    pthread_mutex_unlock(&c.slot->write_lock);
    mod_policy_decision_clear(&d);
    if (rv == CKR_OK) {
        *phObject = mod_call_export(&c, bo);
        if (*phObject == 0)
            rv = CKR_HOST_MEMORY;
    }
    mod_leave();
    return rv;
}

/* Copying could put a certificate where the policy never looked (another
 * CKA_ID, a token object from a session object): refused for certificates. */
CK_RV mod_C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                       CK_OBJECT_HANDLE_PTR phNewObject)
{
    CK_OBJECT_HANDLE bo, bnew;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hObject, &bo, CKR_OBJECT_HANDLE_INVALID);
    if (rv != CKR_OK)
        goto out;
    if (phNewObject == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (is_certificate(&c, bo)) {
        rv = CKR_ACTION_PROHIBITED;
        mod_audit_slot(c.slot, "certificate", "refused",
                       "C_CopyObject of a certificate: certificates are written only through "
                       "C_CreateObject and the write policy");
        goto out;
    }
    rv = c.f->C_CopyObject(c.bh, bo, pTemplate, ulCount, &bnew);
    if (rv == CKR_OK && (*phNewObject = mod_call_export(&c, bnew)) == 0)
        rv = CKR_HOST_MEMORY;
out:
    mod_leave();
    return rv;
}

/*
 * Every destroy is audited, under the token's write lock (the policy lock:
 * a destroy cannot interleave with a certificate write's check and create).
 * With destroy_bound_certificates = refuse, a certificate bound to this token
 * stays: delete-then-write would otherwise undo "never overwrite".
 */
CK_RV mod_C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    mod_destroy_info info;
    CK_OBJECT_HANDLE bo;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hObject, &bo, CKR_OBJECT_HANDLE_INVALID);
    if (rv != CKR_OK)
        goto out;
    pthread_mutex_lock(&c.slot->write_lock);
    mod_destroy_describe(c.f, c.bh, bo, mod_g.profile, c.slot->serial, c.slot->serial_len, &info);
    if (info.bound && mod_g.cfg->destroy_bound_refuse) {
        char detail[600];
        rv = CKR_ACTION_PROHIBITED;
        snprintf(detail, sizeof(detail), "%s: destroy_bound_certificates = refuse", info.detail);
        mod_audit_slot(c.slot, "destroy", "refused", detail);
    } else {
        rv = c.f->C_DestroyObject(c.bh, bo);
        if (rv == CKR_OK) {
            mod_audit_slot(c.slot, "destroy", "destroyed", info.detail);
        } else {
            char detail[600];
            snprintf(detail, sizeof(detail), "%s: %s", info.detail, p11c_ckr_name(rv));
            mod_audit_slot(c.slot, "destroy", "failed", detail);
        }
    }
    pthread_mutex_unlock(&c.slot->write_lock);
    if (rv == CKR_OK)
        mod_handles_forget_object(mod_g.handles, hObject);
out:
    mod_leave();
    return rv;
}

/* Changing a stored certificate's value or its key binding would undo what the
 * policy checked: those attributes are read-only on certificates. */
CK_RV mod_C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    CK_OBJECT_HANDLE bo;
    CK_ULONG i;
    int binding = 0;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hObject, &bo, CKR_OBJECT_HANDLE_INVALID);
    if (rv != CKR_OK)
        goto out;
    if (pTemplate == NULL && ulCount > 0) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    for (i = 0; i < ulCount; i++)
        if (pTemplate[i].type == CKA_VALUE || pTemplate[i].type == CKA_ID ||
            pTemplate[i].type == CKA_SUBJECT || pTemplate[i].type == CKA_CLASS ||
            pTemplate[i].type == CKA_CERTIFICATE_TYPE)
            binding = 1;
    if (binding && is_certificate(&c, bo)) {
        rv = CKR_ATTRIBUTE_READ_ONLY;
        mod_audit_slot(c.slot, "certificate", "refused",
                       "C_SetAttributeValue of a certificate's value, subject or CKA_ID: these "
                       "are fixed by the write policy");
        goto out;
    }
    rv = c.f->C_SetAttributeValue(c.bh, bo, pTemplate, ulCount);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                        CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    CK_ULONG i;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = c.f->C_FindObjects(c.bh, phObject, ulMaxObjectCount, pulObjectCount);
    for (i = 0; rv == CKR_OK && i < *pulObjectCount; i++) {
        phObject[i] = mod_call_export(&c, phObject[i]);
        if (phObject[i] == 0)
            rv = CKR_HOST_MEMORY;
    }
    mod_leave();
    return rv;
}

CK_RV mod_C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    CK_OBJECT_HANDLE bk;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (phKey == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = c.f->C_GenerateKey(c.bh, pMechanism, pTemplate, ulCount, &bk);
    if (rv == CKR_OK && (*phKey = mod_call_export(&c, bk)) == 0)
        rv = CKR_HOST_MEMORY;
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                            CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
                            CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey,
                            CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    CK_OBJECT_HANDLE bpub, bpriv;
    char detail[64];
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (phPublicKey == NULL || phPrivateKey == NULL || pMechanism == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = c.f->C_GenerateKeyPair(c.bh, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount,
                                pPrivateKeyTemplate, ulPrivateKeyAttributeCount, &bpub, &bpriv);
    snprintf(detail, sizeof(detail), "mechanism 0x%lx%s%s", (unsigned long)pMechanism->mechanism,
             rv == CKR_OK ? "" : ": ", rv == CKR_OK ? "" : p11c_ckr_name(rv));
    mod_audit_slot(c.slot, "keypair", rv == CKR_OK ? "generated" : "failed", detail);
    if (rv == CKR_OK) {
        *phPublicKey = mod_call_export(&c, bpub);
        *phPrivateKey = mod_call_export(&c, bpriv);
        if (*phPublicKey == 0 || *phPrivateKey == 0) {
            /* The caller is told the generation failed and gets no handles,
             * so nothing could ever use or remove the pair: a token object
             * left behind would be an orphan key taking a key slot. */
            if (*phPublicKey != 0)
                mod_handles_forget_object(mod_g.handles, *phPublicKey);
            if (*phPrivateKey != 0)
                mod_handles_forget_object(mod_g.handles, *phPrivateKey);
            c.f->C_DestroyObject(c.bh, bpub);
            c.f->C_DestroyObject(c.bh, bpriv);
            *phPublicKey = *phPrivateKey = CK_INVALID_HANDLE;
            mod_audit_slot(c.slot, "keypair", "discarded",
                           "out of memory for the new handles; the key pair was destroyed");
            rv = CKR_HOST_MEMORY;
        }
    }
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey,
                    CK_ULONG_PTR pulWrappedKeyLen)
{
    CK_OBJECT_HANDLE bw, bk;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hWrappingKey, &bw, CKR_WRAPPING_KEY_HANDLE_INVALID);
    if (rv == CKR_OK)
        rv = mod_call_object(&c, hKey, &bk, CKR_KEY_HANDLE_INVALID);
    if (rv == CKR_OK)
        rv = c.f->C_WrapKey(c.bh, pMechanism, bw, bk, pWrappedKey, pulWrappedKeyLen);
    mod_leave();
    return rv;
}

CK_RV mod_C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                      CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                      CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                      CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    CK_OBJECT_HANDLE bu, bk;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hUnwrappingKey, &bu, CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    if (rv == CKR_OK && phKey == NULL)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        rv = c.f->C_UnwrapKey(c.bh, pMechanism, bu, pWrappedKey, ulWrappedKeyLen, pTemplate,
                              ulAttributeCount, &bk);
    if (rv == CKR_OK && (*phKey = mod_call_export(&c, bk)) == 0)
        rv = CKR_HOST_MEMORY;
    mod_leave();
    return rv;
}

CK_RV mod_C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                      CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
                      CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    CK_OBJECT_HANDLE bb, bk;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = mod_call_object(&c, hBaseKey, &bb, CKR_KEY_HANDLE_INVALID);
    if (rv == CKR_OK && phKey == NULL)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        rv = c.f->C_DeriveKey(c.bh, pMechanism, bb, pTemplate, ulAttributeCount, &bk);
    if (rv == CKR_OK && (*phKey = mod_call_export(&c, bk)) == 0)
        rv = CKR_HOST_MEMORY;
    mod_leave();
    return rv;
}
