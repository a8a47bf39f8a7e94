/*
 * What a crash leaves on a token (issue 10, item 8), for `tokenmint clean`.
 * Only tokenmint's own objects (label "tokenmint:<purpose>") are looked at:
 *   - a private key that is not whole (kill -9 inside key generation), or
 *     whose public half is missing, and a public key whose private half is;
 *   - a certificate object whose value is not a certificate;
 *   - an orphan: a whole key pair with no certificate that no run can ever
 *     certify (its purpose is not in the profile, or the profile does not
 *     allow its key type for that purpose), unless the CA issued one for it.
 * A whole key pair the next `issue` would reuse is never a leftover.
 */
#include "station/station.h"
#include "ca/ca.h"

#include <stdlib.h>
#include <string.h>

#define LABEL_PREFIX "tokenmint:"

typedef struct obj {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    unsigned char id[64];
    CK_ULONG idlen;
    char label[64];
    int used; /* matched with its other half */
} obj;

/* Every tokenmint-labelled key and certificate object on the token. */
static int read_objects(tool_station *st, CK_SESSION_HANDLE s, obj **out, size_t *n)
{
    CK_OBJECT_HANDLE *hs = NULL;
    CK_ULONG got = 0, i;
    obj *all = NULL;
    size_t count = 0;
    int ok = 0;

    *out = NULL;
    *n = 0;
    /* All handles first: reading attributes inside an active search is not
     * allowed by every module. */
    if (p11c_find_all(st->f, s, NULL, 0, &hs, &got) != CKR_OK)
        goto out;
    if (got > 0 && (all = calloc(got, sizeof *all)) == NULL)
        goto out;
    for (i = 0; i < got; i++) {
        obj *o = &all[count];
        CK_ATTRIBUTE a[3] = {{CKA_CLASS, &o->cls, sizeof o->cls},
                             {CKA_ID, o->id, sizeof o->id},
                             {CKA_LABEL, o->label, sizeof o->label - 1}};
        memset(o, 0, sizeof *o);
        o->h = hs[i];
        /* A label or ID too long for us is not one tokenmint wrote. */
        if (st->f->C_GetAttributeValue(s, o->h, a, 3) != CKR_OK ||
            a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION)
            continue;
        o->label[a[2].ulValueLen] = 0;
        o->idlen = a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a[1].ulValueLen;
        if (strncmp(o->label, LABEL_PREFIX, strlen(LABEL_PREFIX)) != 0)
            continue;
        if (o->cls != CKO_PRIVATE_KEY && o->cls != CKO_PUBLIC_KEY && o->cls != CKO_CERTIFICATE)
            continue;
        count++;
    }
    *out = all;
    *n = count;
    all = NULL;
    ok = 1;
out:
    free(all);
    free(hs);
    return ok;
}

static int add(tool_leftover **v, size_t *n, const obj *a, const obj *b, const char *what,
               const char *why)
{
    tool_leftover *tmp = realloc(*v, (*n + 1) * sizeof **v), *l;

    if (!tmp)
        return 0;
    *v = tmp;
    l = &tmp[(*n)++];
    memset(l, 0, sizeof *l);
    l->h[l->nh++] = a->h;
    if (b)
        l->h[l->nh++] = b->h;
    snprintf(l->what, sizeof l->what, "%s", what);
    p11c_hex_encode(a->id, a->idlen, l->id, sizeof l->id);
    snprintf(l->label, sizeof l->label, "%s", a->label);
    snprintf(l->why, sizeof l->why, "%s", why);
    l->removable = 1;
    return 1;
}

static int cert_parses(tool_station *st, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, X509 **out)
{
    const unsigned char *q;
    unsigned char *v = NULL;
    CK_ULONG len = 0;
    X509 *x = NULL;

    if (p11c_attr_get(st->f, s, h, CKA_VALUE, &v, &len) == CKR_OK && len > 0) {
        q = v;
        x = d2i_X509(NULL, &q, (long)len);
    }
    free(v);
    *out = x;
    return x != NULL;
}

static int keytype_of(EVP_PKEY *pk, tool_keytype *kt)
{
    char group[64] = "";
    size_t gl = 0;

    if (EVP_PKEY_is_a(pk, "ED25519"))
        *kt = TOOL_KEY_ED25519;
    else if (EVP_PKEY_is_a(pk, "RSA"))
        *kt = EVP_PKEY_get_bits(pk) >= 3072 ? TOOL_KEY_RSA3072 : TOOL_KEY_RSA2048;
    else if (EVP_PKEY_is_a(pk, "EC") &&
             EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &gl))
        *kt = strcmp(group, "secp384r1") == 0 ? TOOL_KEY_P384 : TOOL_KEY_P256;
    else
        return 0;
    return 1;
}

static int purpose_known(const tm_profile *prof, const char *purpose)
{
    size_t i;
    for (i = 0; i < tm_profile_purpose_count(prof); i++)
        if (strcmp(tm_profile_purpose_name(prof, i), purpose) == 0)
            return 1;
    return 0;
}

/* A whole pair without a certificate: an orphan when no run can certify it. */
static int check_uncertified(tool_run *run, CK_SESSION_HANDLE s, const obj *priv, const obj *pub,
                             X509 **certs, size_t ncerts, tool_leftover **v, size_t *n)
{
    const char *purpose = priv->label + strlen(LABEL_PREFIX);
    EVP_PKEY *pk = tool_token_public_key(run->st, s, pub->h);
    tool_keytype kt;
    char why[400], msg[512];
    X509 *issued = NULL;
    size_t i;
    int ok = 1;

    if (!pk)
        return add(v, n, priv, pub, "key pair", "its public key cannot be read");
    for (i = 0; i < ncerts; i++)
        if (EVP_PKEY_eq(X509_get0_pubkey(certs[i]), pk) == 1)
            goto out; /* certified: not a leftover */
    if (!purpose_known(run->prof, purpose)) {
        snprintf(msg, sizeof msg, "no certificate, and the profile has no purpose \"%s\"", purpose);
    } else if (!keytype_of(pk, &kt)) {
        snprintf(msg, sizeof msg, "no certificate, and its key type is not one tokenmint makes");
    } else if (!tool_profile_can_certify(run->prof, purpose, kt, why, sizeof why)) {
        snprintf(msg, sizeof msg, "no certificate, and the profile cannot certify it: %s", why);
    } else {
        goto out; /* a free key pair: the next issue reuses it */
    }
    /* Whatever the profile says now, a certificate the CA issued for the key
     * must reach the token: never remove that key. */
    if (run->ca && (issued = tool_ca_find_by_key(run->ca, pk, purpose)) != NULL) {
        X509_free(issued);
        goto out;
    }
    ok = add(v, n, priv, pub, "key pair", msg);
out:
    EVP_PKEY_free(pk);
    return ok;
}

int tool_leftovers_find(tool_run *run, CK_SESSION_HANDLE s, tool_leftover **out, size_t *n)
{
    tool_station *st;
    obj *objs = NULL;
    size_t nobj = 0, i, j, ncerts = 0;
    X509 **certs = NULL;
    int ok = 0;

    tool_return_val_if_fail(run != NULL && out != NULL && n != NULL, 0);
    st = run->st;
    *out = NULL;
    *n = 0;
    if (!read_objects(st, s, &objs, &nobj))
        return 0;
    certs = calloc(nobj ? nobj : 1, sizeof *certs);
    if (!certs)
        goto out;
    for (i = 0; i < nobj; i++) {
        X509 *x = NULL;
        if (objs[i].cls != CKO_CERTIFICATE)
            continue;
        if (cert_parses(st, s, objs[i].h, &x))
            certs[ncerts++] = x;
        else if (!add(out, n, &objs[i], NULL, "certificate", "its value is not a certificate"))
            goto out;
    }
    for (i = 0; i < nobj; i++) {
        obj *p = &objs[i], *pub = NULL;
        if (p->cls != CKO_PRIVATE_KEY)
            continue;
        for (j = 0; j < nobj && !pub; j++)
            if (objs[j].cls == CKO_PUBLIC_KEY && objs[j].idlen == p->idlen &&
                memcmp(objs[j].id, p->id, p->idlen) == 0)
                pub = &objs[j];
        if (pub)
            pub->used = 1;
        if (!pub) {
            if (!add(out, n, p, NULL, "private key", "its public half is missing"))
                goto out;
        } else if (!tool_token_key_complete(st, s, p->h, pub->h)) {
            if (!add(out, n, p, pub, "key pair",
                     "the private key is not whole (no usable key material)"))
                goto out;
        } else if (!check_uncertified(run, s, p, pub, certs, ncerts, out, n)) {
            goto out;
        }
    }
    for (i = 0; i < nobj; i++)
        if (objs[i].cls == CKO_PUBLIC_KEY && !objs[i].used &&
            !add(out, n, &objs[i], NULL, "public key", "its private half is missing"))
            goto out;
    ok = 1;
out:
    for (i = 0; certs && i < ncerts; i++)
        X509_free(certs[i]);
    free(certs);
    free(objs);
    if (!ok) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ok;
}
