/* Naming the profile's OIDs in libcrypto's object table, for text output. */
#include "profile_int.h"

#include <openssl/err.h>
#include <openssl/objects.h>

static void create(const char *oid, const char *sn, const char *ln)
{
    if (OBJ_txt2nid(oid) != NID_undef || OBJ_sn2nid(sn) != NID_undef || OBJ_ln2nid(ln) != NID_undef)
        return; /* already known: registering twice would fail anyway */
    if (OBJ_create(oid, sn, ln) == NID_undef)
        tm_debug("cannot register %s as %s", oid, sn);
}

static void tm_profile_register_oids_impl(const tm_profile *p)
{
    size_t i;

    create(TM_OID_HWMN, "hardwareModuleName", "Hardware Module Name");
    for (i = 0; p != NULL && i < p->hwtype_count; i++)
        if (p->hwtypes[i].name[0] != '\0')
            create(p->hwtypes[i].oid, p->hwtypes[i].name, p->hwtypes[i].name);
}

/* Public entry points: libcrypto errors raised inside stay inside, and the
 * caller's own error queue is left as it was. */
void tm_profile_register_oids(const tm_profile *p)
{
    ERR_set_mark();
    tm_profile_register_oids_impl(p);
    ERR_pop_to_mark();
}
