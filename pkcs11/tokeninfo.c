/*
 * The token info the module reports for a slot: the backend's, with the
 * serial the slot list settled on (token_serials may give it, issue 13). On
 * its own so that whatever matches tokens (issuing_keys) links it alone.
 */
#include "slots.h"

#include <string.h>

#include "debug.h"

CK_RV mod_slot_token_info(const mod_slot *slot, CK_FUNCTION_LIST *f, CK_TOKEN_INFO *ti)
{
    CK_RV rv;

    mod_return_val_if_fail(slot != NULL && f != NULL && ti != NULL, CKR_ARGUMENTS_BAD);
    rv = f->C_GetTokenInfo(slot->bslot, ti);
    if (rv == CKR_OK && slot->serial_from_config) {
        memset(ti->serialNumber, ' ', sizeof(ti->serialNumber));
        memcpy(ti->serialNumber, slot->serial, slot->serial_len);
    }
    return rv;
}
