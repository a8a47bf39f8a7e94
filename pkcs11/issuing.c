/* Issuing keys: which keys they are, and the signing they are allowed (issuing.h). */
#include "issuing.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/uri.h>

/* The same bound as the provider's guard: a certificate body is far smaller. */
#define SIGNOP_MAX (1024 * 1024)

struct mod_issuing {
    P11KitUri **uris;
    size_t n;
};

enum kind { ECDSA, RSA_PKCS, RSA_PSS, EDDSA };

typedef struct combo {
    CK_MECHANISM_TYPE mech, raw;
    const char *md; /* NULL: the token signs the whole message (EdDSA) */
    enum kind kind;
    unsigned char info[19]; /* DER DigestInfo prefix, RFC 8017 section 9.2 */
    size_t info_len;
} combo;

static const combo combos[] = {
    {CKM_ECDSA_SHA1, CKM_ECDSA, "SHA1", ECDSA, {0}, 0},
    {CKM_ECDSA_SHA224, CKM_ECDSA, "SHA224", ECDSA, {0}, 0},
    {CKM_ECDSA_SHA256, CKM_ECDSA, "SHA256", ECDSA, {0}, 0},
    {CKM_ECDSA_SHA384, CKM_ECDSA, "SHA384", ECDSA, {0}, 0},
    {CKM_ECDSA_SHA512, CKM_ECDSA, "SHA512", ECDSA, {0}, 0},
    {CKM_SHA1_RSA_PKCS,
     CKM_RSA_PKCS,
     "SHA1",
     RSA_PKCS,
     {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
     15},
    {CKM_SHA224_RSA_PKCS,
     CKM_RSA_PKCS,
     "SHA224",
     RSA_PKCS,
     {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
      0x05, 0x00, 0x04, 0x1c},
     19},
    {CKM_SHA256_RSA_PKCS,
     CKM_RSA_PKCS,
     "SHA256",
     RSA_PKCS,
     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
      0x05, 0x00, 0x04, 0x20},
     19},
    {CKM_SHA384_RSA_PKCS,
     CKM_RSA_PKCS,
     "SHA384",
     RSA_PKCS,
     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
      0x05, 0x00, 0x04, 0x30},
     19},
    {CKM_SHA512_RSA_PKCS,
     CKM_RSA_PKCS,
     "SHA512",
     RSA_PKCS,
     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
      0x05, 0x00, 0x04, 0x40},
     19},
    {CKM_SHA1_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS, "SHA1", RSA_PSS, {0}, 0},
    {CKM_SHA224_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS, "SHA224", RSA_PSS, {0}, 0},
    {CKM_SHA256_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS, "SHA256", RSA_PSS, {0}, 0},
    {CKM_SHA384_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS, "SHA384", RSA_PSS, {0}, 0},
    {CKM_SHA512_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS, "SHA512", RSA_PSS, {0}, 0},
    {CKM_EDDSA, CKM_EDDSA, NULL, EDDSA, {0}, 0},
};
#define N_COMBOS (sizeof(combos) / sizeof(combos[0]))

static const combo *combo_of(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < N_COMBOS; i++)
        if (combos[i].mech == m)
            return &combos[i];
    return NULL;
}

int mod_issuing_raw_mech(CK_MECHANISM_TYPE m)
{
    return m == CKM_ECDSA || m == CKM_RSA_PKCS || m == CKM_RSA_PKCS_PSS || m == CKM_RSA_X_509;
}

int mod_signop_supported(CK_MECHANISM_TYPE m)
{
    return combo_of(m) != NULL;
}

/* ---- which keys ------------------------------------------------------------- */

mod_issuing *mod_issuing_new(const char *list, char *err, size_t errlen)
{
    mod_issuing *is = calloc(1, sizeof(*is));
    char *copy = list != NULL ? strdup(list) : NULL, *tok, *save = NULL;

    if (is == NULL || copy == NULL) {
        snprintf(err, errlen, "issuing_keys: out of memory");
        goto fail;
    }
    for (tok = strtok_r(copy, " \t\n", &save); tok != NULL; tok = strtok_r(NULL, " \t\n", &save)) {
        P11KitUri *u = p11_kit_uri_new(), **grown;
        CK_ULONG n = 0;
        CK_ATTRIBUTE *attrs;
        int r, names_object = 0;

        if (u == NULL) {
            snprintf(err, errlen, "issuing_keys: out of memory");
            goto fail;
        }
        r = p11_kit_uri_parse(tok, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, u);
        if (r != P11_KIT_URI_OK || p11_kit_uri_any_unrecognized(u)) {
            snprintf(err, errlen, "issuing_keys: '%s' is not a PKCS#11 URI of a key: %s", tok,
                     r != P11_KIT_URI_OK ? p11_kit_uri_message(r) : "unrecognised attributes");
            p11_kit_uri_free(u);
            goto fail;
        }
        attrs = p11_kit_uri_get_attributes(u, &n);
        for (CK_ULONG i = 0; i < n; i++)
            names_object |= attrs[i].type == CKA_ID || attrs[i].type == CKA_LABEL;
        if (!names_object) {
            snprintf(err, errlen,
                     "issuing_keys: '%s' names no key (give id=... or object=...): it would "
                     "make every key an issuing key",
                     tok);
            p11_kit_uri_free(u);
            goto fail;
        }
        grown = realloc(is->uris, (is->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            p11_kit_uri_free(u);
            snprintf(err, errlen, "issuing_keys: out of memory");
            goto fail;
        }
        is->uris = grown;
        is->uris[is->n++] = u;
    }
    if (is->n == 0) {
        snprintf(err, errlen, "issuing_keys lists no key");
        goto fail;
    }
    free(copy);
    return is;
fail:
    free(copy);
    mod_issuing_free(is);
    return NULL;
}

void mod_issuing_free(mod_issuing *is)
{
    if (is == NULL)
        return;
    for (size_t i = 0; i < is->n; i++)
        p11_kit_uri_free(is->uris[i]);
    free(is->uris);
    free(is);
}

int mod_issuing_token(const mod_issuing *is, CK_FUNCTION_LIST *f, const mod_slot *slot)
{
    CK_TOKEN_INFO ti;

    if (is == NULL || mod_slot_token_info(slot, f, &ti) != CKR_OK)
        return 0;
    for (size_t i = 0; i < is->n; i++)
        if (p11_kit_uri_match_token_info(is->uris[i], &ti))
            return 1;
    return 0;
}

int mod_issuing_key(const mod_issuing *is, CK_FUNCTION_LIST *f, const mod_slot *slot,
                    CK_SESSION_HANDLE bs, CK_OBJECT_HANDLE bkey)
{
    CK_OBJECT_CLASS cls = 0;
    unsigned char id[256], label[256];
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, id, sizeof(id)},
        {CKA_LABEL, label, sizeof(label)},
    };
    CK_TOKEN_INFO ti;
    CK_ULONG n = 0;

    if (is == NULL || mod_slot_token_info(slot, f, &ti) != CKR_OK)
        return 0;
    /* One by one: a missing attribute must not hide the others. */
    for (size_t k = 0; k < 3; k++) {
        CK_ATTRIBUTE one = a[k];
        if (f->C_GetAttributeValue(bs, bkey, &one, 1) == CKR_OK &&
            one.ulValueLen != CK_UNAVAILABLE_INFORMATION)
            a[n++] = one;
    }
    for (size_t i = 0; i < is->n; i++)
        if (p11_kit_uri_match_token_info(is->uris[i], &ti) &&
            p11_kit_uri_match_attributes(is->uris[i], a, n))
            return 1;
    return 0;
}

/* ---- the mechanism list on an issuing token ----------------------------------- */

static int in(const CK_MECHANISM_TYPE *l, CK_ULONG n, CK_MECHANISM_TYPE m)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (l[i] == m)
            return 1;
    return 0;
}

static CK_RV backend_list(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, CK_MECHANISM_TYPE **out,
                          CK_ULONG *n)
{
    CK_RV rv = f->C_GetMechanismList(bslot, NULL, n);

    *out = NULL;
    if (rv != CKR_OK)
        return rv;
    *out = calloc(*n + 1, sizeof(**out));
    if (*out == NULL)
        return CKR_HOST_MEMORY;
    rv = f->C_GetMechanismList(bslot, *out, n);
    if (rv != CKR_OK) {
        free(*out);
        *out = NULL;
    }
    return rv;
}

CK_RV mod_issuing_mech_list(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, CK_MECHANISM_TYPE *list,
                            CK_ULONG *count)
{
    CK_MECHANISM_TYPE *b = NULL, *shown = NULL;
    CK_ULONG nb = 0, ns = 0, i;
    CK_RV rv;

    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    rv = backend_list(f, bslot, &b, &nb);
    if (rv != CKR_OK)
        return rv;
    shown = calloc(nb + N_COMBOS + 1, sizeof(*shown));
    if (shown == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (i = 0; i < nb; i++)
        if (!mod_issuing_raw_mech(b[i]))
            shown[ns++] = b[i];
    for (i = 0; i < N_COMBOS; i++)
        if (in(b, nb, combos[i].raw) && !in(shown, ns, combos[i].mech))
            shown[ns++] = combos[i].mech;
    if (list == NULL) {
        *count = ns;
    } else if (*count < ns) {
        *count = ns;
        rv = CKR_BUFFER_TOO_SMALL;
    } else {
        memcpy(list, shown, ns * sizeof(*shown));
        *count = ns;
    }
out:
    free(b);
    free(shown);
    return rv;
}

CK_RV mod_issuing_mech_info(CK_FUNCTION_LIST *f, CK_SLOT_ID bslot, CK_MECHANISM_TYPE type,
                            CK_MECHANISM_INFO *info)
{
    const combo *co = combo_of(type);
    CK_RV rv;

    if (mod_issuing_raw_mech(type))
        return CKR_MECHANISM_INVALID;
    rv = f->C_GetMechanismInfo(bslot, type, info);
    if (rv == CKR_OK || co == NULL)
        return rv;
    /* carried out by the module over the token's raw mechanism */
    rv = f->C_GetMechanismInfo(bslot, co->raw, info);
    if (rv == CKR_OK)
        info->flags &= ~(CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP |
                         CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER);
    return rv;
}

/* ---- signing operations ---------------------------------------------------------- */

typedef struct signop {
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
    const combo *co;
    CK_OBJECT_HANDLE bkey;
    CK_RSA_PKCS_PSS_PARAMS pss;
    int lint;
    unsigned char *buf;
    size_t len, cap;
    unsigned char sig[2048]; /* made at the first final call; kept for a size query */
    CK_ULONG sig_len;
    int have_sig;
    struct signop *next;
} signop;

static pthread_mutex_t ops_lock = PTHREAD_MUTEX_INITIALIZER;
static signop *ops;

static void op_free(signop *o)
{
    if (o == NULL)
        return;
    if (o->buf != NULL)
        OPENSSL_clear_free(o->buf, o->cap);
    free(o);
}

/* Unlinks and returns the session's operation (caller owns it), or NULL. */
static signop *take(CK_SESSION_HANDLE h)
{
    signop **p, *o = NULL;

    pthread_mutex_lock(&ops_lock);
    for (p = &ops; *p != NULL; p = &(*p)->next)
        if ((*p)->h == h) {
            o = *p;
            *p = o->next;
            o->next = NULL;
            break;
        }
    pthread_mutex_unlock(&ops_lock);
    return o;
}

static void put(signop *o)
{
    pthread_mutex_lock(&ops_lock);
    o->next = ops;
    ops = o;
    pthread_mutex_unlock(&ops_lock);
}

CK_RV mod_signop_start(CK_SESSION_HANDLE h, CK_SLOT_ID slot, const CK_MECHANISM *m,
                       CK_OBJECT_HANDLE bkey, int lint)
{
    const combo *co = m != NULL ? combo_of(m->mechanism) : NULL;
    signop *o, *old;

    if (co == NULL)
        return CKR_MECHANISM_INVALID;
    if (co->kind == RSA_PSS &&
        (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS)))
        return CKR_MECHANISM_PARAM_INVALID;
    old = take(h);
    if (old != NULL) {
        put(old);
        return CKR_OPERATION_ACTIVE;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return CKR_HOST_MEMORY;
    o->h = h;
    o->slot = slot;
    o->co = co;
    o->bkey = bkey;
    o->lint = lint;
    if (co->kind == RSA_PSS)
        memcpy(&o->pss, m->pParameter, sizeof(o->pss));
    put(o);
    return CKR_OK;
}

int mod_signop_active(CK_SESSION_HANDLE h)
{
    int yes = 0;

    pthread_mutex_lock(&ops_lock);
    for (signop *o = ops; o != NULL && !yes; o = o->next)
        yes = o->h == h;
    pthread_mutex_unlock(&ops_lock);
    return yes;
}

CK_RV mod_signop_update(CK_SESSION_HANDLE h, const unsigned char *data, CK_ULONG len, char *why,
                        size_t whylen)
{
    signop *o = take(h);

    if (o == NULL)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (data == NULL && len > 0) {
        op_free(o);
        return CKR_ARGUMENTS_BAD;
    }
    if (o->have_sig) { /* a size query happened: the signature is made, no more data */
        put(o);
        return CKR_OPERATION_ACTIVE;
    }
    if (o->len + len > SIGNOP_MAX) {
        snprintf(why, whylen,
                 "refusing to sign %lu+ bytes: too large for the profile check (at most %d)",
                 (unsigned long)(o->len + len), SIGNOP_MAX);
        op_free(o);
        return CKR_DATA_LEN_RANGE;
    }
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        unsigned char *grown;
        while (cap < o->len + len)
            cap *= 2;
        grown = OPENSSL_clear_realloc(o->buf, o->cap, cap);
        if (grown == NULL) {
            op_free(o);
            return CKR_HOST_MEMORY;
        }
        o->buf = grown;
        o->cap = cap;
    }
    if (len > 0)
        memcpy(o->buf + o->len, data, len);
    o->len += len;
    put(o);
    return CKR_OK;
}

/* A DER SEQUENCE whose first element is [0] EXPLICIT: the start of a v2/v3
 * TBSCertificate. Such data that does not parse is refused, not signed
 * unchecked (another parser might accept what OpenSSL's does not). */
static int looks_like_tbs(const unsigned char *d, size_t n)
{
    size_t hdr;

    if (n < 3 || d[0] != 0x30)
        return 0;
    hdr = d[1] < 0x80 ? 2 : 2 + (size_t)(d[1] & 0x7f);
    return n > hdr && d[hdr] == 0xa0;
}

/* 1: may be signed; 0: refused with the reason in why. done says what it was. */
static int lint(const signop *o, const tm_profile *profile, char *why, size_t whylen, char *done,
                size_t donelen)
{
    X509 *tbs;
    int ok = 1;

    snprintf(done, donelen, "signed %zu bytes that are not a TBSCertificate", o->len);
    if (!o->lint || o->len == 0 || o->buf[0] != 0x30)
        return 1;
    ERR_set_mark();
    tbs = tm_tbs_parse(o->buf, o->len, NULL);
    if (tbs != NULL) {
        tm_violations *v = tm_violations_new();
        size_t n = tm_profile_check_cert(profile, tbs, v);
        if (n > 0 || v == NULL) {
            char reasons[400] = "out of memory";
            if (v != NULL)
                tm_violations_join(v, reasons, sizeof(reasons));
            snprintf(why, whylen,
                     "issuing key refuses to sign a certificate outside the profile: %s", reasons);
            ok = 0;
        } else {
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(tbs), NULL);
            char *h = bn != NULL ? BN_bn2hex(bn) : NULL;
            snprintf(done, donelen, "issuing key signed certificate serial %s (profile checked)",
                     h != NULL ? h : "unreadable");
            OPENSSL_free(h);
            BN_free(bn);
        }
        tm_violations_free(v);
        X509_free(tbs);
    } else if (looks_like_tbs(o->buf, o->len)) {
        snprintf(why, whylen,
                 "issuing key refuses to sign: the data starts like a TBSCertificate but does "
                 "not parse as one");
        ok = 0;
    }
    ERR_pop_to_mark();
    return ok;
}

static CK_RV sign_now(signop *o, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE bs)
{
    unsigned char in[EVP_MAX_MD_SIZE + 32];
    const unsigned char *data = in;
    CK_ULONG data_len = 0, sig_len = 0;
    CK_MECHANISM m = {o->co->raw, NULL, 0};
    CK_RV rv;

    if (o->co->kind == EDDSA) {
        data = o->buf != NULL ? o->buf : in;
        data_len = (CK_ULONG)o->len;
    } else {
        const EVP_MD *md;
        unsigned int dlen = 0;
        int ok;
        ERR_set_mark();
        md = EVP_get_digestbyname(o->co->md);
        memcpy(in, o->co->info, o->co->info_len);
        ok = md != NULL && EVP_Digest(o->buf != NULL ? o->buf : in, o->len, in + o->co->info_len,
                                      &dlen, md, NULL) == 1;
        ERR_pop_to_mark();
        if (!ok)
            return CKR_FUNCTION_FAILED;
        data_len = (CK_ULONG)(o->co->info_len + dlen);
        if (o->co->kind == RSA_PSS) {
            m.pParameter = &o->pss;
            m.ulParameterLen = sizeof(o->pss);
        }
    }
    rv = f->C_SignInit(bs, &m, o->bkey);
    if (rv != CKR_OK)
        return rv;
    /* one call with room for any signature (RSA-16384): the backend's
     * operation ends with it, whatever the outcome */
    sig_len = sizeof(o->sig);
    rv = f->C_Sign(bs, (CK_BYTE_PTR)data, data_len, o->sig, &sig_len);
    if (rv != CKR_OK)
        return rv;
    o->sig_len = sig_len;
    o->have_sig = 1;
    return CKR_OK;
}

CK_RV mod_signop_final(CK_SESSION_HANDLE h, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE bs,
                       const tm_profile *profile, unsigned char *sig, CK_ULONG *sig_len, char *why,
                       size_t whylen, char *done, size_t donelen)
{
    signop *o = take(h);
    CK_RV rv;

    why[0] = done[0] = '\0';
    if (o == NULL)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (sig_len == NULL) {
        op_free(o);
        return CKR_ARGUMENTS_BAD;
    }
    if (!o->have_sig) {
        if (!lint(o, profile, why, whylen, done, donelen)) {
            op_free(o);
            return CKR_DATA_INVALID;
        }
        rv = sign_now(o, f, bs);
        if (rv != CKR_OK) {
            snprintf(why, whylen, "the token could not sign");
            op_free(o);
            return rv;
        }
    }
    if (sig == NULL) {
        *sig_len = o->sig_len;
        put(o);
        done[0] = '\0'; /* said when the signature is handed out */
        return CKR_OK;
    }
    if (*sig_len < o->sig_len) {
        *sig_len = o->sig_len;
        put(o);
        done[0] = '\0';
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(sig, o->sig, o->sig_len);
    *sig_len = o->sig_len;
    if (done[0] == '\0')
        snprintf(done, donelen, "%s", o->lint ? "issuing key signed (size queried first)" : "");
    op_free(o);
    return CKR_OK;
}

void mod_signop_drop(CK_SESSION_HANDLE h)
{
    op_free(take(h));
}

void mod_signop_drop_slot(CK_SLOT_ID slot)
{
    signop **p, *dead = NULL;

    pthread_mutex_lock(&ops_lock);
    for (p = &ops; *p != NULL;) {
        if ((*p)->slot == slot) {
            signop *o = *p;
            *p = o->next;
            o->next = dead;
            dead = o;
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&ops_lock);
    while (dead != NULL) {
        signop *n = dead->next;
        op_free(dead);
        dead = n;
    }
}

void mod_signop_drop_all(void)
{
    signop *o;

    pthread_mutex_lock(&ops_lock);
    o = ops;
    ops = NULL;
    pthread_mutex_unlock(&ops_lock);
    while (o != NULL) {
        signop *n = o->next;
        op_free(o);
        o = n;
    }
}
