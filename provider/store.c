/*
 * OSSL_STORE loader for the "pkcs11" scheme: private keys, public keys and
 * certificates on the tokens a pkcs11: URI selects.
 *
 * The search runs once, on the first load call (that is when the core hands
 * over the passphrase callback for a PIN prompt); every later call hands out
 * one object found.
 *
 * Search criteria (openssl storeutl -subject, -issuer/-serial, -fingerprint,
 * -alias): an alias is the CKA_LABEL and goes into the token search; the
 * others pick certificates (compared decoded, not byte for byte, since a
 * token's CKA_SUBJECT may be encoded otherwise), and with them the keys that
 * share a picked certificate's CKA_ID.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "key.h"
#include "session.h"
#include "uri.h"

typedef struct {
    int is_key;
    prov_key *key;
    unsigned char *der; /* certificate */
    size_t der_len;
    unsigned char cert_id[64]; /* certificate: its CKA_ID */
    size_t cert_id_len;
    char desc[160];
} found_obj;

/* OSSL_STORE search criteria (all optional). */
typedef struct {
    X509_NAME *subject;
    X509_NAME *issuer;
    ASN1_INTEGER *serial;
    char digest[32];
    unsigned char *fingerprint;
    size_t fingerprint_len;
    char *alias;
} store_search;

typedef struct {
    prov_ctx *prov;
    prov_uri *uri;
    char *uri_text_safe; /* for messages: without pin-value */
    int expect;          /* OSSL_STORE_INFO_* or 0 */
    store_search crit;
    int searched;
    int failed;
    found_obj *objs;
    size_t n_objs, next;
} store_ctx;

/* The URI for messages: every pin-value (not just the first) shown as ***.
 * Written to a fresh buffer, since an empty value grows by three bytes. */
static char *safe_uri(const char *uri)
{
    static const char key[] = "pin-value=";
    const size_t klen = sizeof(key) - 1;
    const char *p, *q;
    size_t count = 0;
    char *s, *o;

    for (p = uri; (p = strstr(p, key)) != NULL; p += klen)
        count++;
    if ((s = malloc(strlen(uri) + 3 * count + 1)) == NULL)
        return NULL;
    for (p = uri, o = s; (q = strstr(p, key)) != NULL; p = q + strcspn(q, "&;")) {
        q += klen;
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, "***", 3);
        o += 3;
    }
    strcpy(o, p);
    return s;
}

static void *st_open(void *provctx, const char *uri)
{
    prov_ctx *prov = provctx;
    store_ctx *c;
    char err[512];

    if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = prov;
    c->uri_text_safe = safe_uri(uri);
    c->uri = prov_uri_parse_ex(uri, prov->secret_flags, err, sizeof(err));
    if (c->uri == NULL) {
        TM_RAISE(prov, TM_R_BAD_URI, "%s (URI %s)", err,
                 c->uri_text_safe != NULL ? c->uri_text_safe : "?");
        free(c->uri_text_safe);
        free(c);
        return NULL;
    }
    return c;
}

static int crit_certs(const store_search *q)
{
    return q->subject != NULL || q->issuer != NULL || q->serial != NULL || q->fingerprint != NULL;
}

static void crit_free(store_search *q)
{
    X509_NAME_free(q->subject);
    X509_NAME_free(q->issuer);
    ASN1_INTEGER_free(q->serial);
    OPENSSL_free(q->fingerprint);
    OPENSSL_free(q->alias);
    memset(q, 0, sizeof(*q));
}

static X509_NAME *name_param(const OSSL_PARAM *p)
{
    const void *der = NULL;
    const unsigned char *q;
    size_t len = 0;

    if (!OSSL_PARAM_get_octet_string_ptr(p, &der, &len))
        return NULL;
    q = der;
    return d2i_X509_NAME(NULL, &q, (long)len);
}

static int st_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    store_ctx *c = loaderctx;
    store_search *q = &c->crit;
    const OSSL_PARAM *p;
    const char *v = NULL;

    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT)) != NULL &&
        !OSSL_PARAM_get_int(p, &c->expect))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SUBJECT)) != NULL) {
        X509_NAME_free(q->subject);
        if ((q->subject = name_param(p)) == NULL)
            goto bad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ISSUER)) != NULL) {
        X509_NAME_free(q->issuer);
        if ((q->issuer = name_param(p)) == NULL)
            goto bad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SERIAL)) != NULL) {
        BIGNUM *bn = NULL;
        if (!OSSL_PARAM_get_BN(p, &bn))
            goto bad;
        ASN1_INTEGER_free(q->serial);
        q->serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        if (q->serial == NULL)
            goto bad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v) || strlen(v) >= sizeof(q->digest))
            goto bad;
        strcpy(q->digest, v);
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_FINGERPRINT)) != NULL) {
        void *fp = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &fp, 0, &len) || len == 0) {
            OPENSSL_free(fp);
            goto bad;
        }
        OPENSSL_free(q->fingerprint);
        q->fingerprint = fp;
        q->fingerprint_len = len;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ALIAS)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v))
            goto bad;
        OPENSSL_free(q->alias);
        if ((q->alias = OPENSSL_strdup(v)) == NULL)
            return 0;
    }
    return 1;
bad:
    TM_RAISE(c->prov, TM_R_BAD_URI, "bad search criterion for %s", c->uri_text_safe);
    return 0;
}

static const OSSL_PARAM *st_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_octet_string(OSSL_STORE_PARAM_SUBJECT, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_STORE_PARAM_ISSUER, NULL, 0),
        OSSL_PARAM_BN(OSSL_STORE_PARAM_SERIAL, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_STORE_PARAM_FINGERPRINT, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_ALIAS, NULL, 0),
        OSSL_PARAM_END,
    };
    return t;
}

/* Does the certificate meet the subject, issuer+serial and fingerprint criteria? */
static int cert_matches(store_ctx *c, const unsigned char *der, size_t len)
{
    const store_search *q = &c->crit;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    int ok = x != NULL;

    if (ok && q->subject != NULL)
        ok = X509_NAME_cmp(X509_get_subject_name(x), q->subject) == 0;
    if (ok && q->issuer != NULL)
        ok = X509_NAME_cmp(X509_get_issuer_name(x), q->issuer) == 0;
    if (ok && q->serial != NULL)
        ok = ASN1_INTEGER_cmp(X509_get0_serialNumber(x), q->serial) == 0;
    if (ok && q->fingerprint != NULL) {
        /* no digest named: the one whose length the fingerprint has */
        const char *name = q->digest[0] != '\0'       ? q->digest
                           : q->fingerprint_len == 20 ? "SHA1"
                           : q->fingerprint_len == 32 ? "SHA256"
                           : q->fingerprint_len == 48 ? "SHA384"
                                                      : "SHA512";
        EVP_MD *md = prov_md(c->prov, name);
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int dl = 0;
        ok = md != NULL && X509_digest(x, md, d, &dl) && dl == q->fingerprint_len &&
             memcmp(d, q->fingerprint, dl) == 0;
        EVP_MD_free(md);
    }
    X509_free(x);
    return ok;
}

/* Keeps the certificates that meet the criteria and the keys that share a kept
 * certificate's CKA_ID; certificates go when the caller wanted none. */
static void apply_cert_criteria(store_ctx *c, int want_certs)
{
    size_t i, j, n = 0;
    char *keep = calloc(c->n_objs + 1, 1);

    if (keep == NULL) {
        c->failed = 1;
        return;
    }
    for (i = 0; i < c->n_objs; i++)
        keep[i] = !c->objs[i].is_key && cert_matches(c, c->objs[i].der, c->objs[i].der_len);
    for (i = 0; i < c->n_objs; i++) {
        const found_obj *o = &c->objs[i];
        if (!o->is_key)
            continue;
        for (j = 0; j < c->n_objs && !keep[i]; j++) {
            const found_obj *x = &c->objs[j];
            keep[i] = !x->is_key && keep[j] && x->cert_id_len > 0 &&
                      x->cert_id_len == o->key->id_len &&
                      memcmp(x->cert_id, o->key->id, x->cert_id_len) == 0;
        }
    }
    for (i = 0; i < c->n_objs; i++) {
        found_obj *o = &c->objs[i];
        if (keep[i] && (o->is_key || want_certs)) {
            c->objs[n++] = *o;
            continue;
        }
        prov_key_free(o->key);
        free(o->der);
    }
    c->n_objs = n;
    free(keep);
}

static int push(store_ctx *c, found_obj *o)
{
    found_obj *grown = realloc(c->objs, (c->n_objs + 1) * sizeof(*grown));
    if (grown == NULL)
        return 0;
    c->objs = grown;
    c->objs[c->n_objs++] = *o;
    return 1;
}

/* Which object classes the caller wants: from the URI's type, else the
 * expectation the application set, else all three. */
static void wanted(const store_ctx *c, int *priv, int *pub, int *cert)
{
    if (c->uri->has_class) {
        *priv = c->uri->klass == CKO_PRIVATE_KEY;
        *pub = c->uri->klass == CKO_PUBLIC_KEY;
        *cert = c->uri->klass == CKO_CERTIFICATE;
        return;
    }
    *priv = c->expect == 0 || c->expect == OSSL_STORE_INFO_PKEY;
    *pub = c->expect == 0 || c->expect == OSSL_STORE_INFO_PUBKEY;
    *cert = c->expect == 0 || c->expect == OSSL_STORE_INFO_CERT;
}

static int obtain_pin_and_login(store_ctx *c, prov_token *t, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                                void *pw_cbarg)
{
    char pin[TM_PIN_MAX], err[512];
    size_t pin_len = 0;
    int ok = 0;

    if (prov_token_logged_in(t))
        return 1;
    if (c->uri->has_pin)
        return prov_token_login(c->prov, t, c->uri->pin, c->uri->pin_len);
    if (c->prov->pin_source != NULL) {
        if (!p11c_secret_read_ex(c->prov->pin_source, prov_token_serial_text(t), "PIN",
                                 c->prov->secret_flags, pin, sizeof(pin), &pin_len, err,
                                 sizeof(err))) {
            TM_RAISE(c->prov, TM_R_PIN_NEEDED, "provider pin-source: %s", err);
            return 0;
        }
        ok = prov_token_login(c->prov, t, pin, pin_len);
        goto out;
    }
    if (prov_token_info(t)->flags & CKF_PROTECTED_AUTHENTICATION_PATH)
        return prov_token_login(c->prov, t, NULL, 0);
    if (pw_cb != NULL) {
        char info[128];
        OSSL_PARAM pp[2];
        snprintf(info, sizeof(info), "PIN for token %s", prov_token_serial_text(t));
        pp[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
        pp[1] = OSSL_PARAM_construct_end();
        if (pw_cb(pin, sizeof(pin) - 1, &pin_len, pp, pw_cbarg) && pin_len > 0) {
            ok = prov_token_login(c->prov, t, pin, pin_len);
            goto out;
        }
    }
    TM_RAISE(c->prov, TM_R_PIN_NEEDED,
             "token %s needs a PIN to reach its private keys: add pin-value or pin-source to "
             "the URI, or set the provider's pin-source",
             prov_token_serial_text(t));
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

int prov_uri_login(prov_ctx *prov, prov_uri *u, prov_token *t)
{
    store_ctx c;

    memset(&c, 0, sizeof(c));
    c.prov = prov;
    c.uri = u;
    return obtain_pin_and_login(&c, t, NULL, NULL);
}

/* Handles asked for per C_FindObjects call. */
#define TM_FIND_CHUNK 64

static void take_object(store_ctx *c, prov_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                        CK_OBJECT_CLASS klass)
{
    CK_FUNCTION_LIST *f = prov_module_fn(prov_token_module(t));
    found_obj o;

    memset(&o, 0, sizeof(o));
    if (klass == CKO_CERTIFICATE) {
        CK_ULONG len = 0;
        if (prov_object_attr(f, s, h, CKA_VALUE, &o.der, &len) != CKR_OK || len == 0) {
            free(o.der);
            return;
        }
        o.der_len = len;
        unsigned char *id = NULL;
        if (prov_object_attr(f, s, h, CKA_ID, &id, &len) == CKR_OK && len <= sizeof(o.cert_id)) {
            memcpy(o.cert_id, id, len);
            o.cert_id_len = len;
        }
        free(id);
    } else {
        o.key = prov_key_from_object(c->prov, t, s, h, klass);
        if (o.key == NULL)
            return;
        o.is_key = 1;
    }
    snprintf(o.desc, sizeof(o.desc), "%s on token %s",
             klass == CKO_PRIVATE_KEY  ? "private key"
             : klass == CKO_PUBLIC_KEY ? "public key"
                                       : "certificate",
             prov_token_serial_text(t));
    if (!push(c, &o)) {
        prov_key_free(o.key);
        free(o.der);
    }
}

static void search_token(store_ctx *c, prov_token *t, CK_OBJECT_CLASS klass)
{
    CK_FUNCTION_LIST *f = prov_module_fn(prov_token_module(t));
    CK_ATTRIBUTE tmpl[4];
    CK_ULONG nt = 0, n = 0, total = 0;
    CK_OBJECT_HANDLE *hs = NULL;
    size_t cap = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &klass, sizeof(klass)};
    if (c->uri->id != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)c->uri->id, c->uri->id_len};
    if (c->uri->label_ptr != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)c->uri->label_ptr, c->uri->label_len};
    /* an alias is a label too; beside the URI's object it must be that one */
    if (c->crit.alias != NULL && c->uri->label_ptr != NULL &&
        (strlen(c->crit.alias) != c->uri->label_len ||
         memcmp(c->crit.alias, c->uri->label_ptr, c->uri->label_len) != 0))
        return;
    if (c->crit.alias != NULL && c->uri->label_ptr == NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, c->crit.alias, strlen(c->crit.alias)};
    if ((s = prov_session_get(c->prov, t)) == CK_INVALID_HANDLE)
        return;
    /*
     * All handles are collected before any attribute is read: reading
     * attributes (and building keys) inside an active search is not allowed
     * by every module. A token may hold any number of matching objects, so
     * ask in chunks until the module hands back fewer than asked for.
     */
    rv = f->C_FindObjectsInit(s, tmpl, nt);
    if (rv == CKR_OK) {
        do {
            if (total + TM_FIND_CHUNK > cap) {
                size_t want = cap != 0 ? cap * 2 : TM_FIND_CHUNK;
                CK_OBJECT_HANDLE *grown;
                if (want < total + TM_FIND_CHUNK)
                    want = total + TM_FIND_CHUNK;
                grown = realloc(hs, want * sizeof(*grown));
                if (grown == NULL) {
                    rv = CKR_HOST_MEMORY;
                    break;
                }
                hs = grown;
                cap = want;
            }
            n = 0;
            rv = f->C_FindObjects(s, hs + total, TM_FIND_CHUNK, &n);
            if (rv == CKR_OK)
                total += n;
        } while (rv == CKR_OK && n == TM_FIND_CHUNK);
        f->C_FindObjectsFinal(s);
    }
    for (CK_ULONG i = 0; rv == CKR_OK && i < total; i++)
        take_object(c, t, s, hs[i], klass);
    free(hs);
    prov_session_put(t, s, rv);
    if (rv != CKR_OK)
        TM_RAISE(c->prov, TM_R_MODULE, "object search on token %s failed: %s",
                 prov_token_serial_text(t), prov_ckr_str(rv));
}

static void search(store_ctx *c, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    prov_module *m = prov_module_of(c->prov);
    prov_token **toks = NULL;
    size_t n = 0, matched = 0;
    int priv, pub, cert, want_certs;

    if (m == NULL) {
        c->failed = 1;
        return;
    }
    wanted(c, &priv, &pub, &cert);
    want_certs = cert;
    if (crit_certs(&c->crit))
        cert = 1; /* the criteria pick certificates, and keys through them */
    toks = prov_module_tokens(m, 0, &n);
    /* A token named by the URI but not seen yet may have been plugged in. */
    for (int pass = 0; pass < 2 && matched == 0; pass++) {
        if (pass == 1) {
            free(toks);
            toks = prov_module_tokens(m, 1, &n);
        }
        for (size_t i = 0; i < n; i++)
            matched += prov_uri_match_token(c->uri, prov_token_info(toks[i])) ? 1 : 0;
    }
    if (matched == 0) {
        TM_RAISE(c->prov, TM_R_TOKEN_NOT_FOUND, "no token matches %s (%zu token(s) present)",
                 c->uri_text_safe, n);
        c->failed = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        prov_token *t = toks[i];
        if (!prov_uri_match_token(c->uri, prov_token_info(t)))
            continue;
        if (priv) {
            if (obtain_pin_and_login(c, t, pw_cb, pw_cbarg))
                search_token(c, t, CKO_PRIVATE_KEY);
            else
                c->failed = 1;
        }
        if (pub)
            search_token(c, t, CKO_PUBLIC_KEY);
        if (cert)
            search_token(c, t, CKO_CERTIFICATE);
    }
    if (crit_certs(&c->crit)) /* whatever else failed: never hand out an unpicked object */
        apply_cert_criteria(c, want_certs);
    if (c->n_objs == 0 && !c->failed) {
        TM_RAISE(c->prov, TM_R_OBJECT_NOT_FOUND, "no %s matches %s%s",
                 priv && !pub && !cert   ? "private key"
                 : pub && !priv && !cert ? "public key"
                 : cert && !priv && !pub ? "certificate"
                                         : "object",
                 c->uri_text_safe,
                 crit_certs(&c->crit) || c->crit.alias != NULL ? " and the search criteria" : "");
        c->failed = 1;
    }
out:
    free(toks);
}

static int st_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    store_ctx *c = loaderctx;
    OSSL_PARAM params[5];
    int type, k = 0;

    if (!c->searched) {
        c->searched = 1;
        search(c, pw_cb, pw_cbarg);
    }
    if (c->next >= c->n_objs)
        return 0;
    found_obj *o = &c->objs[c->next++];
    if (o->is_key) {
        type = OSSL_OBJECT_PKEY;
        params[k++] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
        params[k++] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                       (char *)prov_key_type_name(o->key), 0);
        params[k++] =
            OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &o->key, sizeof(o->key));
    } else {
        type = OSSL_OBJECT_CERT;
        params[k++] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
        params[k++] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, o->der, o->der_len);
    }
    params[k++] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, o->desc, 0);
    params[k] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int st_eof(void *loaderctx)
{
    store_ctx *c = loaderctx;
    return c->searched && c->next >= c->n_objs;
}

static int st_close(void *loaderctx)
{
    store_ctx *c = loaderctx;

    if (c == NULL)
        return 1;
    for (size_t i = 0; i < c->n_objs; i++) {
        prov_key_free(c->objs[i].key);
        free(c->objs[i].der);
    }
    free(c->objs);
    crit_free(&c->crit);
    prov_uri_free(c->uri);
    free(c->uri_text_safe);
    free(c);
    return 1;
}

const OSSL_DISPATCH prov_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))st_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))st_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))st_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))st_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))st_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))st_close},
    {0, NULL},
};
