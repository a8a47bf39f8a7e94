/*
 * Slots, tokens, sessions and login: the calls that pick a token, and the
 * derived-PIN logic (pin.h) on the way to the backend's C_Login / C_SetPIN /
 * C_InitPIN.
 */
#include "module.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "debug.h"
#include "modlog.h"
#include "pinmark.h"

CK_RV mod_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    CK_RV rv = mod_enter();

    (void)tokenPresent; /* only slots holding a selected token are exposed */
    if (rv != CKR_OK)
        return rv;
    if (pulCount == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    /* The list may only change on the call that asks for its size. */
    if (pSlotList == NULL)
        mod_rescan();
    rv = mod_slots_list(mod_g.slots, pSlotList, pulCount);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    mod_slot *slot;
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    if (pInfo == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    slot = mod_slots_get(mod_g.slots, slotID);
    if (slot == NULL) {
        rv = CKR_SLOT_ID_INVALID;
        goto out;
    }
    rv = mod_g.backends[slot->backend].funcs->C_GetSlotInfo(slot->bslot, pInfo);
    if (!mod_slot_present(slot)) {
        /* The slot ID names a token that went away: say so, whatever the
         * backend now has in that slot. */
        if (rv != CKR_OK) {
            memset(pInfo, 0, sizeof(*pInfo));
            memset(pInfo->slotDescription, ' ', sizeof(pInfo->slotDescription));
            memset(pInfo->manufacturerID, ' ', sizeof(pInfo->manufacturerID));
            memcpy(pInfo->slotDescription, "token removed", 13);
            rv = CKR_OK;
        }
        pInfo->flags = (pInfo->flags & ~CKF_TOKEN_PRESENT) | CKF_REMOVABLE_DEVICE;
    }
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    mod_call c;
    CK_RV rv = mod_enter_slot(slotID, &c);

    if (rv != CKR_OK)
        return rv;
    if (pInfo == NULL) {
        mod_leave();
        return CKR_ARGUMENTS_BAD;
    }
    /* The serial is the module's (token_serials may give it). */
    rv = mod_slot_token_info(c.slot, c.f, pInfo);
    /* The other change to token info: a token this station has switched to its
     * derived PIN (it carries our marker) takes a NULL PIN at C_Login, which
     * clients know as a protected path. No other token gets the flag, so no
     * client sends a NULL PIN that the module would have to refuse. */
    if (rv == CKR_OK && mod_derived_pins() &&
        mod_pinmark_read(c.f, c.slot->bslot, &mod_g.secret, c.slot->serial, c.slot->serial_len) ==
            MOD_PINMARK_OURS)
        pInfo->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
    mod_leave();
    return rv;
}

CK_RV mod_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList, CK_ULONG_PTR pulCount)
{
    mod_call c;
    CK_RV rv = mod_enter_slot(slotID, &c);

    if (rv != CKR_OK)
        return rv;
    if (mod_issuing_token(mod_g.issuing, c.f, c.slot))
        rv = mod_issuing_mech_list(c.f, c.slot->bslot, pList, pulCount);
    else
        rv = c.f->C_GetMechanismList(c.slot->bslot, pList, pulCount);
    mod_leave();
    return rv;
}

CK_RV mod_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    mod_call c;
    CK_RV rv = mod_enter_slot(slotID, &c);

    if (rv != CKR_OK)
        return rv;
    if (pInfo != NULL && mod_issuing_token(mod_g.issuing, c.f, c.slot))
        rv = mod_issuing_mech_info(c.f, c.slot->bslot, type, pInfo);
    else
        rv = c.f->C_GetMechanismInfo(c.slot->bslot, type, pInfo);
    mod_leave();
    return rv;
}

CK_RV mod_C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                      CK_UTF8CHAR_PTR pLabel)
{
    mod_call c;
    CK_RV rv = mod_enter_slot(slotID, &c);

    if (rv != CKR_OK)
        return rv;
    rv = c.f->C_InitToken(c.slot->bslot, pPin, ulPinLen, pLabel);
    mod_audit_slot(c.slot, "init-token", rv == CKR_OK ? "ok" : "failed",
                   rv == CKR_OK ? NULL : p11c_ckr_name(rv));
    mod_leave();
    return rv;
}

CK_RV mod_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    if (pSlot == NULL || pReserved != NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (flags & CKF_DONT_BLOCK)
        mod_rescan();
    rv = mod_events_wait(mod_g.events, flags, pSlot);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                        CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    CK_SESSION_HANDLE bh;
    mod_call c;
    CK_RV rv = mod_enter_slot(slotID, &c);

    (void)Notify; /* callbacks would carry backend handles: not offered */
    if (rv != CKR_OK)
        return rv;
    if (phSession == NULL) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = c.f->C_OpenSession(c.slot->bslot, flags, pApplication, NULL, &bh);
    if (rv != CKR_OK)
        goto out;
    *phSession = mod_handles_add_session(mod_g.handles, c.slot->id, bh);
    if (*phSession == 0) {
        c.f->C_CloseSession(bh);
        rv = CKR_HOST_MEMORY;
    }
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_CloseSession(CK_SESSION_HANDLE hSession)
{
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = c.f->C_CloseSession(c.bh);
    if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
        rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT) {
        mod_handles_remove_session(mod_g.handles, hSession);
        mod_signop_drop(hSession);
    }
    mod_leave();
    return rv;
}

CK_RV mod_C_CloseAllSessions(CK_SLOT_ID slotID)
{
    mod_slot *slot;
    CK_RV rv = mod_enter();

    if (rv != CKR_OK)
        return rv;
    slot = mod_slots_get(mod_g.slots, slotID);
    if (slot == NULL) {
        rv = CKR_SLOT_ID_INVALID;
        goto out;
    }
    if (mod_slot_present(slot))
        rv = mod_g.backends[slot->backend].funcs->C_CloseAllSessions(slot->bslot);
    mod_handles_remove_slot_sessions(mod_g.handles, slot->id);
    mod_signop_drop_slot(slot->id);
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    rv = c.f->C_GetSessionInfo(c.bh, pInfo);
    if (rv == CKR_OK)
        pInfo->slotID = c.slot->id;
    mod_leave();
    return rv;
}

/* The token's derived PIN; 0 with the reason in why when there is none. */
static size_t derive_pin(const mod_slot *slot, char *pin, size_t max, char *why, size_t whylen)
{
    size_t n = mod_pin_derive(&mod_g.secret, slot->serial, slot->serial_len, slot->min_pin,
                              slot->max_pin, pin, max);

    if (n == 0 && slot->serial_len == 0)
        snprintf(why, whylen, "no PIN can be derived (token has no serial)");
    else if (n == 0)
        snprintf(why, whylen, "no PIN can be derived for the token's PIN lengths %lu..%lu",
                 (unsigned long)slot->min_pin, (unsigned long)slot->max_pin);
    return n;
}

static const char *user_name(CK_USER_TYPE t)
{
    return t == CKU_SO ? "so" : t == CKU_USER ? "user" : "context-specific";
}

CK_RV mod_C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                  CK_ULONG ulPinLen)
{
    char pin[TM_PIN_MAX + 1], detail[400];
    int derived = 0;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (pPin == NULL && mod_derived_pins() && userType != CKU_SO) {
        char why[96];
        size_t n;
        mod_pinmark_state st =
            mod_pinmark_read(c.f, c.slot->bslot, &mod_g.secret, c.slot->serial, c.slot->serial_len);
        if (st != MOD_PINMARK_OURS) {
            /* Never a derived PIN to a token not switched to it: each one
             * would cost the token a try. The token is not called. */
            rv = CKR_FUNCTION_REJECTED;
            snprintf(detail, sizeof(detail),
                     "%s, NULL PIN: the token is not on its derived PIN (%s); give its PIN, or "
                     "switch it with C_SetPIN(its PIN, NULL)",
                     user_name(userType), mod_pinmark_state_name(st));
            mod_audit_slot(c.slot, "login", "refused", detail);
            goto out;
        }
        n = derive_pin(c.slot, pin, sizeof(pin), why, sizeof(why));
        if (n == 0) {
            rv = CKR_FUNCTION_FAILED;
            snprintf(detail, sizeof(detail), "%s: %s", user_name(userType), why);
            mod_audit_slot(c.slot, "login", "failed", detail);
            goto out;
        }
        derived = 1;
        /* Tried exactly once: a wrong derived PIN must not lock the token. */
        rv = c.f->C_Login(c.bh, userType, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n);
        OPENSSL_cleanse(pin, sizeof(pin));
    } else {
        rv = c.f->C_Login(c.bh, userType, pPin, ulPinLen);
    }
    snprintf(detail, sizeof(detail), "%s, %s PIN%s%s", user_name(userType),
             derived        ? "derived"
             : pPin == NULL ? "no"
                            : "given",
             rv == CKR_OK ? "" : ": ", rv == CKR_OK ? "" : p11c_ckr_name(rv));
    mod_audit_slot(c.slot, "login",
                   rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? "ok" : "failed", detail);
out:
    mod_leave();
    return rv;
}

/* After the token's user PIN became something other than the derived PIN:
 * a marker left behind would make the module send the derived PIN. */
static CK_RV drop_marker(const mod_call *c)
{
    CK_RV rv;

    if (mod_pinmark_read(c->f, c->slot->bslot, NULL, NULL, 0) == MOD_PINMARK_NONE)
        return CKR_OK;
    rv = mod_pinmark_remove(c->f, c->slot->bslot);
    mod_audit_slot(c->slot, "pin-marker", rv == CKR_OK ? "removed" : "failed",
                   rv == CKR_OK ? "the user PIN is no longer the derived PIN"
                                : "cannot remove the derived-PIN marker");
    return rv;
}

CK_RV mod_C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    char pin[TM_PIN_MAX + 1], why[96] = "";
    int derived = 0;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (pPin == NULL && mod_derived_pins()) {
        size_t n = derive_pin(c.slot, pin, sizeof(pin), why, sizeof(why));
        if (n == 0) {
            rv = CKR_FUNCTION_FAILED;
            goto audit;
        }
        derived = 1;
        rv = c.f->C_InitPIN(c.bh, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n);
        OPENSSL_cleanse(pin, sizeof(pin));
        if (rv == CKR_OK) {
            rv = mod_pinmark_write(c.f, c.slot->bslot, &mod_g.secret, c.slot->serial,
                                   c.slot->serial_len);
            if (rv != CKR_OK)
                snprintf(why, sizeof(why),
                         "user PIN set, but the derived-PIN marker could not "
                         "be written: %s",
                         p11c_ckr_name(rv));
        }
    } else {
        rv = c.f->C_InitPIN(c.bh, pPin, ulPinLen);
        if (rv == CKR_OK)
            drop_marker(&c);
    }
audit:
    mod_audit_slot(c.slot, "init-pin", rv == CKR_OK ? "ok" : "failed",
                   rv == CKR_OK ? (derived ? "user PIN set to the derived PIN" : "user PIN set")
                   : why[0]     ? why
                                : p11c_ckr_name(rv));
    mod_leave();
    return rv;
}

/* Refuses a PIN change that would send a PIN known to be wrong: nothing is
 * sent to the token, so no try is spent. */
static CK_RV refuse_pin(const mod_call *c, const char *why, mod_pinmark_state st)
{
    char detail[300];

    snprintf(detail, sizeof(detail), "%s (%s)", why, mod_pinmark_state_name(st));
    mod_audit_slot(c->slot, "set-pin", "refused", detail);
    return CKR_FUNCTION_REJECTED;
}

/*
 * With a station secret, a NULL new PIN means "the derived PIN" (how a token
 * moves from its factory PIN to its derived one) and a NULL old PIN means
 * "the derived PIN" too (how it leaves it again); both NULL re-adopts a token
 * that is on its derived PIN but lost its marker (one try when it is not).
 * The marker follows every change. Never for the SO PIN.
 */
CK_RV mod_C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                   CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    char pin[TM_PIN_MAX + 1], why[160];
    const char *done = NULL;
    CK_SESSION_INFO si;
    mod_pinmark_state st;
    size_t n = 0;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (!mod_derived_pins() || (pOldPin != NULL && pNewPin != NULL)) {
        rv = c.f->C_SetPIN(c.bh, pOldPin, ulOldLen, pNewPin, ulNewLen);
        if (rv == CKR_OK && pNewPin != NULL)
            drop_marker(&c);
        mod_audit_slot(c.slot, "set-pin", rv == CKR_OK ? "ok" : "failed",
                       rv == CKR_OK ? NULL : p11c_ckr_name(rv));
        goto out;
    }
    rv = c.f->C_GetSessionInfo(c.bh, &si);
    if (rv != CKR_OK)
        goto out;
    if (si.state == CKS_RW_SO_FUNCTIONS) {
        mod_debug("C_SetPIN: a derived PIN is for the user, not for the SO");
        rv = CKR_USER_TYPE_INVALID;
        goto out;
    }
    st = mod_pinmark_read(c.f, c.slot->bslot, &mod_g.secret, c.slot->serial, c.slot->serial_len);
    if (st == MOD_PINMARK_UNKNOWN) {
        rv = refuse_pin(&c, "cannot tell which PIN the token is on", st);
        goto out;
    }
    if (pNewPin == NULL && pOldPin != NULL && st == MOD_PINMARK_OURS) {
        rv = refuse_pin(&c,
                        "the token is on its derived PIN already; the given old PIN would be "
                        "wrong",
                        st);
        goto out;
    }
    if (pOldPin == NULL && pNewPin != NULL && st != MOD_PINMARK_OURS) {
        rv = refuse_pin(&c, "the token is not on its derived PIN; give its PIN as the old PIN", st);
        goto out;
    }
    if (pOldPin == NULL && pNewPin == NULL && st == MOD_PINMARK_OURS) {
        mod_audit_slot(c.slot, "set-pin", "ok", "already on the derived PIN");
        goto out;
    }
    n = derive_pin(c.slot, pin, sizeof(pin), why, sizeof(why));
    if (n == 0) {
        rv = CKR_FUNCTION_FAILED;
        mod_audit_slot(c.slot, "set-pin", "failed", why);
        goto out;
    }
    if (pNewPin == NULL) {
        /* factory -> derived (or, both NULL: derived -> derived, which checks
         * that the token is on it); the marker only after the token agreed */
        CK_UTF8CHAR_PTR old = pOldPin != NULL ? pOldPin : (CK_UTF8CHAR_PTR)pin;
        CK_ULONG old_len = pOldPin != NULL ? ulOldLen : (CK_ULONG)n;
        rv = c.f->C_SetPIN(c.bh, old, old_len, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n);
        if (rv == CKR_OK) {
            rv = mod_pinmark_write(c.f, c.slot->bslot, &mod_g.secret, c.slot->serial,
                                   c.slot->serial_len);
            /* No marker: put the old PIN back, so the token is never on a PIN
             * nobody knows it is on. The backend's reason is named: tpm2-pkcs11
             * 1.9 makes no public data object (CKR_SESSION_READ_ONLY before a
             * login), so no token of it can take a derived PIN. */
            if (rv != CKR_OK) {
                int back = pOldPin != NULL && c.f->C_SetPIN(c.bh, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n,
                                                            pOldPin, ulOldLen) == CKR_OK;
                snprintf(why, sizeof(why), "the derived-PIN marker could not be written (%s)%s",
                         p11c_ckr_name(rv), back ? "; the old PIN was put back" : "");
                done = why;
            } else
                done = pOldPin != NULL ? "user PIN set to the derived PIN"
                                       : "the token is on its derived PIN: marker written";
        }
    } else {
        rv = c.f->C_SetPIN(c.bh, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n, pNewPin, ulNewLen);
        if (rv == CKR_OK && drop_marker(&c) != CKR_OK &&
            c.f->C_SetPIN(c.bh, pNewPin, ulNewLen, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)n) == CKR_OK) {
            rv = CKR_FUNCTION_FAILED;
            done = "the derived-PIN marker could not be removed; the derived PIN was put back";
        } else if (rv == CKR_OK) {
            done = "user PIN changed from the derived PIN";
        }
    }
    OPENSSL_cleanse(pin, sizeof(pin));
    mod_audit_slot(c.slot, "set-pin", rv == CKR_OK ? "ok" : "failed",
                   done != NULL ? done : p11c_ckr_name(rv));
out:
    mod_leave();
    return rv;
}

CK_RV mod_C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState, CK_ULONG ulLen,
                              CK_OBJECT_HANDLE hEnc, CK_OBJECT_HANDLE hAuth)
{
    CK_OBJECT_HANDLE benc = CK_INVALID_HANDLE, bauth = CK_INVALID_HANDLE;
    mod_call c;
    CK_RV rv = mod_enter_session(hSession, &c);

    if (rv != CKR_OK)
        return rv;
    if (hEnc != CK_INVALID_HANDLE)
        rv = mod_call_object(&c, hEnc, &benc, CKR_KEY_HANDLE_INVALID);
    if (rv == CKR_OK && hAuth != CK_INVALID_HANDLE)
        rv = mod_call_object(&c, hAuth, &bauth, CKR_KEY_HANDLE_INVALID);
    if (rv == CKR_OK)
        rv = c.f->C_SetOperationState(c.bh, pState, ulLen, benc, bauth);
    mod_leave();
    return rv;
}
