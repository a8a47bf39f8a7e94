/*
 * EC public keys as tokens hold them. CKA_EC_POINT is a DER OCTET STRING
 * around the point by PKCS#11 2.40, but some tokens hand out the bare point;
 * CKA_EC_PARAMS names the curve by OID, or (PKCS#11 3.0, Edwards curves) by a
 * PrintableString. Parsed by hand: a reading that does not fit is expected
 * here and must not leave anything on OpenSSL's error queue.
 */
#include "client_int.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

/* Length of a DER TLV with TAG that fills v[0..len) exactly: its content
 * offset in *off, or 0 when v is not such a TLV. Definite, minimal lengths
 * only (DER), up to 3 length bytes (far beyond any point or OID). */
static size_t der_exact(const unsigned char *v, size_t len, unsigned char tag, size_t *off)
{
    size_t n, k, i;

    if (len < 2 || v[0] != tag)
        return 0;
    if (v[1] < 0x80) {
        n = v[1];
        k = 0;
    } else {
        k = v[1] & 0x7f;
        if (k == 0 || k > 3 || len < 2 + k || v[2] == 0)
            return 0;
        for (n = 0, i = 0; i < k; i++)
            n = n << 8 | v[2 + i];
        if (n < 0x80)
            return 0;
    }
    if (2 + k + n != len)
        return 0;
    *off = 2 + k;
    return n;
}

size_t p11c_ec_point_readings(const unsigned char *v, size_t len, const unsigned char *point[2],
                              size_t point_len[2])
{
    size_t off = 0, n, count = 0;

    p11c_return_val_if_fail(point != NULL && point_len != NULL, 0);
    if (v == NULL || len == 0)
        return 0;
    /* Wrapped first (the standard's reading), then bare: a bare
     * uncompressed point starts with 0x04 too and can look wrapped. */
    n = der_exact(v, len, 0x04, &off);
    if (n > 0) {
        point[count] = v + off;
        point_len[count++] = n;
    }
    point[count] = v;
    point_len[count++] = len;
    return count;
}

int p11c_ec_params_nid(const unsigned char *params, size_t len)
{
    const unsigned char *p = params;
    ASN1_OBJECT *oid = NULL;
    size_t off = 0, n;
    char name[64];
    int nid = NID_undef;

    p11c_return_val_if_fail(params != NULL || len == 0, NID_undef);
    if (len == 0)
        return NID_undef;
    if ((n = der_exact(params, len, 0x06, &off)) > 0) {
        ERR_set_mark();
        oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
        if (oid != NULL && p == params + len)
            nid = OBJ_obj2nid(oid);
        ASN1_OBJECT_free(oid);
        ERR_pop_to_mark();
        return nid;
    }
    /* PKCS#11 3.0: curveName as PrintableString ("edwards25519"). */
    if ((n = der_exact(params, len, 0x13, &off)) > 0 && n < sizeof(name)) {
        memcpy(name, params + off, n);
        name[n] = '\0';
        if (strcmp(name, "edwards25519") == 0)
            return NID_ED25519;
        if (strcmp(name, "edwards448") == 0)
            return NID_ED448;
        if (strcmp(name, "curve25519") == 0)
            return NID_X25519;
        if (strcmp(name, "curve448") == 0)
            return NID_X448;
        ERR_set_mark();
        nid = OBJ_sn2nid(name);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(name);
        ERR_pop_to_mark();
        return nid;
    }
    return NID_undef;
}
