/*
 * Writing a token private key out: what `openssl genpkey` and `openssl pkey`
 * do with the key they hold. The private half stays on the token, so what is
 * written is the key's pkcs11: URI (token serial, id, label, type; never a
 * PIN), one line, which `-key`, `-inkey` and the store take back as it is.
 *
 * Only keys of this provider's key managers come here (no import_object).
 * Software keys among them (tokenmint loaded first: genpkey with a file key)
 * are written by the default provider's encoder, with the cipher and
 * passphrase the caller set, exactly as without tokenmint.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <p11-kit/uri.h>

#include "forward.h"

#include "key.h"
#include "session.h"

typedef struct {
    prov_ctx *prov;
    const char *output; /* "PEM" or "DER" */
    char *cipher, *props;
    int save_params, save_set;
} enc_ctx;

static void *enc_newctx(prov_ctx *prov, const char *output)
{
    enc_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = prov;
    c->output = output;
    return c;
}

static void *enc_newctx_pem(void *provctx)
{
    return enc_newctx(provctx, "PEM");
}

static void *enc_newctx_der(void *provctx)
{
    return enc_newctx(provctx, "DER");
}

static void enc_freectx(void *vctx)
{
    enc_ctx *c = vctx;
    if (c == NULL)
        return;
    free(c->cipher);
    free(c->props);
    free(c);
}

/* What the caller sets for the software keys' encoder: the cipher above all
 * (an encrypted key must never come out in the clear). */
static int enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    enc_ctx *c = vctx;
    const OSSL_PARAM *p;
    const char *v = NULL;

    if ((p = OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_CIPHER)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v))
            return 0;
        free(c->cipher);
        c->cipher = NULL; /* a NULL name: no encryption */
        if (v != NULL && (c->cipher = strdup(v)) == NULL)
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_PROPERTIES)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v))
            return 0;
        free(c->props);
        c->props = NULL;
        if (v != NULL && (c->props = strdup(v)) == NULL)
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_SAVE_PARAMETERS)) != NULL) {
        if (!OSSL_PARAM_get_int(p, &c->save_params))
            return 0;
        c->save_set = 1;
    }
    return 1;
}

static const OSSL_PARAM *enc_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_CIPHER, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_int(OSSL_ENCODER_PARAM_SAVE_PARAMETERS, NULL),
        OSSL_PARAM_END,
    };
    return t;
}

typedef struct {
    OSSL_LIB_CTX *libctx;
    const char *type;
    EVP_PKEY *pkey;
} rebuild_arg;

static int rebuild(const OSSL_PARAM params[], void *varg)
{
    rebuild_arg *a = varg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(a->libctx, a->type, TM_NOT_US);
    int ok = pc != NULL && EVP_PKEY_fromdata_init(pc) > 0 &&
             EVP_PKEY_fromdata(pc, &a->pkey, EVP_PKEY_KEYPAIR, (OSSL_PARAM *)params) > 0;
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/* A software key, written by the other provider's encoder. */
static int encode_soft(enc_ctx *c, BIO *out, const prov_key *k, int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    OSSL_FUNC_keymgmt_export_fn *ex =
        PROV_FWD_CALL(k->fwd, OSSL_FUNC_KEYMGMT_EXPORT, keymgmt_export);
    rebuild_arg a = {prov_libctx(c->prov), prov_key_type_name(k), NULL};
    OSSL_ENCODER_CTX *e = NULL;
    int ok = 0;

    if (a.libctx == NULL || ex == NULL || !ex(k->soft_kd, OSSL_KEYMGMT_SELECT_ALL, rebuild, &a) ||
        a.pkey == NULL)
        goto out;
    e = OSSL_ENCODER_CTX_new_for_pkey(a.pkey, selection, c->output, "PrivateKeyInfo", TM_NOT_US);
    if (e == NULL || OSSL_ENCODER_CTX_get_num_encoders(e) == 0)
        goto out;
    if (c->cipher != NULL && !OSSL_ENCODER_CTX_set_cipher(e, c->cipher, c->props))
        goto out;
    if (c->save_set) {
        OSSL_PARAM p[] = {OSSL_PARAM_int(OSSL_ENCODER_PARAM_SAVE_PARAMETERS, &c->save_params),
                          OSSL_PARAM_END};
        if (!OSSL_ENCODER_CTX_set_params(e, p))
            goto out;
    }
    if (cb != NULL && !OSSL_ENCODER_CTX_set_passphrase_cb(e, cb, cbarg))
        goto out;
    ok = OSSL_ENCODER_to_bio(e, out);
out:
    OSSL_ENCODER_CTX_free(e);
    EVP_PKEY_free(a.pkey);
    return ok;
}

static int enc_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

/* The key's URI text (p11-kit formats and percent-encodes it); free() it. */
static char *key_uri(const prov_key *k)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE a;
    char *text = NULL;
    int ok;

    if (u == NULL)
        return NULL;
    /* the token's serial, label, model and manufacturer as the token says them */
    memcpy(p11_kit_uri_get_token_info(u), prov_token_info(k->tok), sizeof(CK_TOKEN_INFO));
    a = (CK_ATTRIBUTE){CKA_CLASS, &klass, sizeof(klass)};
    ok = p11_kit_uri_set_attribute(u, &a) == P11_KIT_URI_OK;
    if (ok && k->id_len > 0) {
        a = (CK_ATTRIBUTE){CKA_ID, (void *)k->id, k->id_len};
        ok = p11_kit_uri_set_attribute(u, &a) == P11_KIT_URI_OK;
    }
    if (ok && k->label[0] != '\0') {
        a = (CK_ATTRIBUTE){CKA_LABEL, (void *)k->label, strlen(k->label)};
        ok = p11_kit_uri_set_attribute(u, &a) == P11_KIT_URI_OK;
    }
    if (!ok || p11_kit_uri_format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &text) != P11_KIT_URI_OK)
        text = NULL;
    p11_kit_uri_free(u);
    return text;
}

static int enc_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                      const OSSL_PARAM obj_abstract[], int selection, OSSL_PASSPHRASE_CALLBACK *cb,
                      void *cbarg)
{
    enc_ctx *c = vctx;
    const prov_key *k = obj_raw;
    BIO *out = NULL;
    char *text = NULL;
    int ok = 0;

    if (k == NULL || !(selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ||
        (out = BIO_new_from_core_bio(prov_libctx(c->prov), cout)) == NULL)
        return 0;
    if (PROV_KEY_IS_SOFT(k)) {
        ok = encode_soft(c, out, k, selection, cb, cbarg);
        goto out;
    }
    if (!prov_key_has_private(k))
        goto out;
    /* a URI is no encrypted key: refuse rather than write something else */
    if (c->cipher != NULL) {
        TM_RAISE(c->prov, TM_R_UNSUPPORTED,
                 "key '%s' on token %s cannot be written encrypted: its private half stays on "
                 "the token (leave out the cipher to write its URI)",
                 k->label, prov_token_serial_text(k->tok));
        goto out;
    }
    if ((text = key_uri(k)) == NULL) {
        TM_RAISE(c->prov, TM_R_MODULE, "cannot write the URI of key '%s' on token %s", k->label,
                 prov_token_serial_text(k->tok));
        goto out;
    }
    ok = BIO_printf(out, "%s\n", text) > 0;
out:
    BIO_free(out);
    free(text);
    return ok;
}

#define TM_ENCODER(kind)                                                                           \
    const OSSL_DISPATCH prov_uri_##kind##_encoder_functions[] = {                                  \
        {OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx_##kind},                             \
        {OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx},                                  \
        {OSSL_FUNC_ENCODER_SET_CTX_PARAMS, (void (*)(void))enc_set_ctx_params},                    \
        {OSSL_FUNC_ENCODER_SETTABLE_CTX_PARAMS, (void (*)(void))enc_settable_ctx_params},          \
        {OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_selection},                    \
        {OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_encode},                                    \
        {0, NULL},                                                                                 \
    }

TM_ENCODER(pem);
TM_ENCODER(der);
