/*
 * hardwareModuleName (RFC 4108 section 5), the SAN otherName that carries the
 * token serial:
 *   id-on-hardwareModuleName OBJECT IDENTIFIER ::= { id-on 4 }  -- 1.3.6.1.5.5.7.8.4
 *   HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER,
 *                                     hwSerialNum OCTET STRING }
 * OpenSSL 3.0 has no ASN.1 template for it, so it is encoded and decoded here,
 * strictly as DER (definite, minimal lengths; nothing trailing).
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>
#include <openssl/objects.h>

/* Reads one TLV with the given tag; lengths up to 0xffff are plenty here. */
static int der_take(const unsigned char **p, size_t *left, unsigned char tag,
                    const unsigned char **tlv, size_t *tlv_len, const unsigned char **content,
                    size_t *clen, char *why, size_t why_len)
{
    const unsigned char *s = *p;
    size_t hdr, n;

    if (*left < 2) {
        snprintf(why, why_len, "truncated");
        return 0;
    }
    if (s[0] != tag) {
        snprintf(why, why_len, "expected tag 0x%02X, found 0x%02X", tag, s[0]);
        return 0;
    }
    if (s[1] < 0x80) {
        n = s[1];
        hdr = 2;
    } else if (s[1] == 0x81 && *left >= 3 && s[2] >= 0x80) {
        n = s[2];
        hdr = 3;
    } else if (s[1] == 0x82 && *left >= 4 && s[2] != 0) {
        n = (size_t)s[2] << 8 | s[3];
        hdr = 4;
    } else {
        snprintf(why, why_len, "bad or non-minimal DER length");
        return 0;
    }
    if (n > *left - hdr) {
        snprintf(why, why_len, "length %zu runs past the end", n);
        return 0;
    }
    *tlv = s;
    *tlv_len = hdr + n;
    *content = s + hdr;
    *clen = n;
    *p = s + hdr + n;
    *left -= hdr + n;
    return 1;
}

static size_t der_put_len(unsigned char *out, size_t n)
{
    if (n < 0x80) {
        out[0] = (unsigned char)n;
        return 1;
    }
    if (n < 0x100) {
        out[0] = 0x81;
        out[1] = (unsigned char)n;
        return 2;
    }
    out[0] = 0x82;
    out[1] = (unsigned char)(n >> 8);
    out[2] = (unsigned char)n;
    return 3;
}

int tm_gn_is_hwmn(const GENERAL_NAME *gn)
{
    char oid[32];

    if (gn == NULL || gn->type != GEN_OTHERNAME || gn->d.otherName == NULL ||
        gn->d.otherName->type_id == NULL)
        return 0;
    if (OBJ_obj2txt(oid, sizeof(oid), gn->d.otherName->type_id, 1) <= 0)
        return 0;
    return strcmp(oid, TM_OID_HWMN) == 0;
}

int tm_hwmn_decode(const GENERAL_NAME *gn, char *hw_type, size_t hw_type_len, unsigned char *serial,
                   size_t *serial_len, char *why, size_t why_len)
{
    const ASN1_TYPE *value;
    const unsigned char *p, *tlv, *content, *inner;
    size_t left, tlv_len, clen, inner_left;
    ASN1_OBJECT *oid = NULL;
    int ok = 0;

    why[0] = '\0';
    return_val_if_fail(tm_gn_is_hwmn(gn), 0);
    value = gn->d.otherName->value;
    if (value == NULL || value->type != V_ASN1_SEQUENCE || value->value.sequence == NULL) {
        snprintf(why, why_len, "the otherName value is not a SEQUENCE");
        goto out;
    }
    p = value->value.sequence->data;
    left = (size_t)value->value.sequence->length;
    if (!der_take(&p, &left, 0x30, &tlv, &tlv_len, &inner, &inner_left, why, why_len))
        goto out;
    if (left != 0) {
        snprintf(why, why_len, "%zu bytes after the SEQUENCE", left);
        goto out;
    }
    /* hwType: let libcrypto judge the OID content (sub-identifier encoding) */
    p = inner;
    if (!der_take(&p, &inner_left, 0x06, &tlv, &tlv_len, &content, &clen, why, why_len))
        goto out;
    {
        const unsigned char *q = tlv;
        oid = d2i_ASN1_OBJECT(NULL, &q, (long)tlv_len);
    }
    if (oid == NULL || clen == 0) {
        snprintf(why, why_len, "hwType is not a valid OBJECT IDENTIFIER");
        goto out;
    }
    if (OBJ_obj2txt(NULL, 0, oid, 1) >= (int)hw_type_len) {
        snprintf(why, why_len, "hwType OID is longer than %zu characters", hw_type_len - 1);
        goto out;
    }
    OBJ_obj2txt(hw_type, (int)hw_type_len, oid, 1);
    if (!der_take(&p, &inner_left, 0x04, &tlv, &tlv_len, &content, &clen, why, why_len)) {
        char tmp[96];
        snprintf(tmp, sizeof(tmp), "hwSerialNum: %s", why);
        snprintf(why, why_len, "%s", tmp);
        goto out;
    }
    if (inner_left != 0) {
        snprintf(why, why_len, "%zu bytes after hwSerialNum", inner_left);
        goto out;
    }
    if (clen == 0 || clen > TM_SERIAL_MAX) {
        snprintf(why, why_len, "hwSerialNum has %zu bytes: the profile wants 1 to %d", clen,
                 TM_SERIAL_MAX);
        goto out;
    }
    memcpy(serial, content, clen);
    *serial_len = clen;
    ok = 1;
out:
    ASN1_OBJECT_free(oid);
    return ok;
}

int tm_hwmn_encode(const char *hw_type, const unsigned char *serial, size_t serial_len,
                   GENERAL_NAME **out)
{
    ASN1_OBJECT *type = NULL, *on = NULL;
    ASN1_STRING *seq = NULL;
    ASN1_TYPE *value = NULL;
    GENERAL_NAME *gn = NULL;
    unsigned char *oid_der = NULL, der[512];
    size_t body, n = 0;
    int oid_len;

    return_val_if_fail(hw_type != NULL && serial != NULL && out != NULL, 0);
    return_val_if_fail(serial_len > 0 && serial_len <= TM_SERIAL_MAX, 0);
    *out = NULL;
    type = OBJ_txt2obj(hw_type, 1);
    if (type == NULL)
        goto out;
    oid_len = i2d_ASN1_OBJECT(type, &oid_der);
    if (oid_len <= 0 || (size_t)oid_len > 200)
        goto out;
    body = (size_t)oid_len + 2 + serial_len; /* serial_len <= 64: short length form */
    der[n++] = 0x30;
    n += der_put_len(der + n, body);
    memcpy(der + n, oid_der, (size_t)oid_len);
    n += (size_t)oid_len;
    der[n++] = 0x04;
    der[n++] = (unsigned char)serial_len;
    memcpy(der + n, serial, serial_len);
    n += serial_len;

    seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    value = ASN1_TYPE_new();
    on = OBJ_txt2obj(TM_OID_HWMN, 1);
    gn = GENERAL_NAME_new();
    if (seq == NULL || value == NULL || on == NULL || gn == NULL ||
        !ASN1_STRING_set(seq, der, (int)n))
        goto out;
    ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    if (!GENERAL_NAME_set0_othername(gn, on, value))
        goto out;
    on = NULL;
    value = NULL;
    *out = gn;
    gn = NULL;
out:
    OPENSSL_free(oid_der);
    ASN1_OBJECT_free(type);
    ASN1_OBJECT_free(on);
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(value);
    GENERAL_NAME_free(gn);
    return *out != NULL;
}
