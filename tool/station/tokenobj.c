/*
 * Reading a token's objects: its key pairs (as OpenSSL public keys) and its
 * certificates. The pipeline decides with these what is free and what is done.
 */
#include "station/station.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

static EVP_PKEY *rsa_pub(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = BN_bin2bn(n, nlen, NULL), *be = BN_bin2bn(e, elen, NULL);

    if (!b || !bn || !be || !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be))
        goto out;
    p = OSSL_PARAM_BLD_to_param(b);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!p || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
        goto out;
    if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p) <= 0)
        pk = NULL;
out:
    BN_free(bn);
    BN_free(be);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static EVP_PKEY *ec_pub(const unsigned char *params, size_t plen, const unsigned char *pt,
                        size_t ptlen, int edwards)
{
    const unsigned char *point[2];
    size_t point_len[2], i, n;
    EVP_PKEY *pk = NULL;
    int nid = p11c_ec_params_nid(params, plen);

    n = p11c_ec_point_readings(pt, ptlen, point, point_len);
    if (!edwards && nid == NID_undef)
        return NULL;
    /* The first reading that makes a key: a wrong one fails to decode, and
     * that failure stays off the error queue. */
    ERR_set_mark();
    for (i = 0; i < n && pk == NULL; i++) {
        if (edwards) {
            /* SoftHSM names the curve by OID; a printable "edwards25519" also occurs. */
            pk = EVP_PKEY_new_raw_public_key_ex(NULL, nid == NID_ED448 ? "ED448" : "ED25519", NULL,
                                                point[i], point_len[i]);
        } else {
            OSSL_PARAM p[3];
            EVP_PKEY_CTX *ctx;

            p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                    (char *)OBJ_nid2sn(nid), 0);
            p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point[i],
                                                     point_len[i]);
            p[2] = OSSL_PARAM_construct_end();
            ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
            if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
                EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p) <= 0)
                pk = NULL;
            EVP_PKEY_CTX_free(ctx);
        }
    }
    ERR_pop_to_mark();
    return pk;
}

/* Fixed-size buffers, all attributes in one call: each call costs SoftHSM2 a
 * re-read of the object file. RSA up to 8192 bits, EC points up to P-521. */
EVP_PKEY *tool_token_public_key(tool_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub)
{
    CK_KEY_TYPE kt = 0;
    unsigned char v1[1024], v2[1024];
    CK_ATTRIBUTE a[3] = {{CKA_KEY_TYPE, &kt, sizeof kt}, {0, v1, sizeof v1}, {0, v2, sizeof v2}};
    EVP_PKEY *pk = NULL;

    if (st->f->C_GetAttributeValue(s, pub, a, 1) != CKR_OK)
        return NULL;
    if (kt == CKK_RSA) {
        a[1].type = CKA_MODULUS;
        a[2].type = CKA_PUBLIC_EXPONENT;
    } else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
        a[1].type = CKA_EC_PARAMS;
        a[2].type = CKA_EC_POINT;
    } else {
        return NULL;
    }
    if (st->f->C_GetAttributeValue(s, pub, a + 1, 2) != CKR_OK ||
        a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return NULL;
    if (kt == CKK_RSA)
        pk = rsa_pub(v1, a[1].ulValueLen, v2, a[2].ulValueLen);
    else
        pk = ec_pub(v1, a[1].ulValueLen, v2, a[2].ulValueLen, kt == CKK_EC_EDWARDS);
    return pk;
}

/*
 * A private key is usable only when it is whole: a kill -9 during key
 * generation can leave a private key object holding only the template's
 * CKA_ID and label (SoftHSM2 stores the key material in a second write).
 * Such an object must never be taken as "the free key pair": every signature
 * would fail and the token would be stuck for good. Whole means: it signs,
 * and its key type and domain (EC parameters, RSA modulus) are those of its
 * public half.
 */
int tool_token_key_complete(tool_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
                            CK_OBJECT_HANDLE pub)
{
    CK_KEY_TYPE kv = (CK_KEY_TYPE)-1, kp = (CK_KEY_TYPE)-2;
    CK_BBOOL sign = CK_FALSE;
    CK_ATTRIBUTE_TYPE dom;
    unsigned char *dv = NULL, *dp = NULL;
    CK_ULONG lv = 0, lp = 0;
    CK_ATTRIBUTE a[2] = {{CKA_KEY_TYPE, &kv, sizeof kv}, {CKA_SIGN, &sign, sizeof sign}};
    CK_ATTRIBUTE b[1] = {{CKA_KEY_TYPE, &kp, sizeof kp}};
    int ok = 0;

    if (st->f->C_GetAttributeValue(s, priv, a, 2) != CKR_OK || sign != CK_TRUE ||
        st->f->C_GetAttributeValue(s, pub, b, 1) != CKR_OK || kv != kp)
        return 0;
    if (kv == CKK_RSA)
        dom = CKA_MODULUS;
    else if (kv == CKK_EC || kv == CKK_EC_EDWARDS)
        dom = CKA_EC_PARAMS;
    else
        return 0;
    if (p11c_attr_get(st->f, s, priv, dom, &dv, &lv) != CKR_OK ||
        p11c_attr_get(st->f, s, pub, dom, &dp, &lp) != CKR_OK)
        goto out;
    ok = lv > 0 && lv == lp && memcmp(dv, dp, lv) == 0;
out:
    free(dv);
    free(dp);
    return ok;
}

int tool_token_list_keys(tool_station *st, CK_SESSION_HANDLE s, int public_only,
                         tool_token_key **out, size_t *n)
{
    /* Without a login only the public halves are visible; they name the pairs. */
    CK_OBJECT_CLASS cls = public_only ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY, pcls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_OBJECT_HANDLE *privs = NULL, *pubs = NULL;
    CK_ULONG np = 0, i, npub;
    tool_token_key *keys = NULL;
    size_t count = 0;
    int ok = 0;

    *out = NULL;
    *n = 0;
    if (p11c_find_all(st->f, s, tmpl, 1, &privs, &np) != CKR_OK)
        goto out;
    keys = calloc(np ? np : 1, sizeof *keys);
    if (!keys)
        goto out;
    for (i = 0; i < np; i++) {
        tool_token_key *k = &keys[count];
        unsigned char *id = NULL, *label = NULL;
        CK_ULONG idlen = 0, llen = 0;
        if (p11c_attr_get(st->f, s, privs[i], CKA_ID, &id, &idlen) != CKR_OK || idlen == 0 ||
            idlen > sizeof k->id) {
            free(id);
            continue;
        }
        memcpy(k->id, id, idlen);
        k->idlen = idlen;
        free(id);
        if (p11c_attr_get(st->f, s, privs[i], CKA_LABEL, &label, &llen) == CKR_OK) {
            if (llen >= sizeof k->label)
                llen = sizeof k->label - 1;
            memcpy(k->label, label, llen);
            k->label[llen] = 0;
        }
        free(label);
        if (public_only) {
            k->pub = tool_token_public_key(st, s, privs[i]);
        } else {
            CK_ATTRIBUTE pt[] = {{CKA_CLASS, &pcls, sizeof pcls}, {CKA_ID, k->id, k->idlen}};
            if (p11c_find_all(st->f, s, pt, 2, &pubs, &npub) == CKR_OK && npub > 0 &&
                tool_token_key_complete(st, s, privs[i], pubs[0]))
                k->pub = tool_token_public_key(st, s, pubs[0]);
            free(pubs);
            pubs = NULL;
        }
        /* A private key without a readable public half cannot be certified;
         * an incomplete one cannot sign. Both are left to `tokenmint clean`. */
        if (!k->pub) {
            memset(k, 0, sizeof *k);
            continue;
        }
        count++;
    }
    ok = 1;
out:
    free(privs);
    if (!ok) {
        tool_token_keys_free(keys, count);
        return 0;
    }
    *out = keys;
    *n = count;
    return 1;
}

void tool_token_keys_free(tool_token_key *k, size_t n)
{
    size_t i;
    for (i = 0; k && i < n; i++)
        EVP_PKEY_free(k[i].pub);
    free(k);
}

int tool_token_list_certs(tool_station *st, CK_SESSION_HANDLE s, tool_token_cert **out, size_t *n)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_CERTIFICATE_TYPE, &ct, sizeof ct}};
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG no = 0, i;
    tool_token_cert *certs = NULL;
    size_t count = 0;

    *out = NULL;
    *n = 0;
    if (p11c_find_all(st->f, s, tmpl, 2, &objs, &no) != CKR_OK)
        return 0;
    certs = calloc(no ? no : 1, sizeof *certs);
    if (!certs) {
        free(objs);
        return 0;
    }
    for (i = 0; i < no; i++) {
        unsigned char *v = NULL, *id = NULL;
        const unsigned char *q;
        CK_ULONG vl = 0, il = 0;
        if (p11c_attr_get(st->f, s, objs[i], CKA_VALUE, &v, &vl) != CKR_OK) {
            free(v);
            continue;
        }
        q = v;
        certs[count].cert = d2i_X509(NULL, &q, vl);
        free(v);
        if (!certs[count].cert)
            continue;
        if (p11c_attr_get(st->f, s, objs[i], CKA_ID, &id, &il) == CKR_OK &&
            il <= sizeof certs[0].id) {
            memcpy(certs[count].id, id, il);
            certs[count].idlen = il;
        }
        free(id);
        count++;
    }
    free(objs);
    *out = certs;
    *n = count;
    return 1;
}

void tool_token_certs_free(tool_token_cert *c, size_t n)
{
    size_t i;
    for (i = 0; c && i < n; i++)
        X509_free(c[i].cert);
    free(c);
}
