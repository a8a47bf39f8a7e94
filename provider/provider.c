/*
 * The tokenmint provider: entry point, options, algorithm tables, errors.
 *
 * Options come from the core's config parameters (the provider's section in
 * openssl.cnf): pkcs11-module, pin-source, issuing-keys, profile, enforce,
 * debug, allow-open-secrets (accept pin-source files group/others may read). TOKENMINT_MODULE in
 * the environment overrides pkcs11-module.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "forward.h"
#include "session.h"
#include "uri.h"

#ifndef TOKENMINT_DEFAULT_MODULE
#define TOKENMINT_DEFAULT_MODULE "tokenmint-pkcs11.so"
#endif
#ifndef TOKENMINT_VERSION
#define TOKENMINT_VERSION "0"
#endif

int prov_debug_on;

static OSSL_FUNC_core_get_params_fn *c_get_params;
static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;
static OSSL_FUNC_core_obj_create_fn *c_obj_create;

void prov_debug(const char *fmt, ...)
{
    va_list ap;

    /* the provider's debug option can switch lines on without the variable */
    va_start(ap, fmt);
    fputs("tokenmint: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void set_error(prov_ctx *prov, int reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    c_vset_error(prov->handle, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

void prov_raise(prov_ctx *prov, int reason, const char *file, int line, const char *func,
                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (prov_debug_on) {
        va_list cp;
        va_copy(cp, ap);
        fputs("tokenmint: error: ", stderr);
        vfprintf(stderr, fmt, cp);
        fputc('\n', stderr);
        va_end(cp);
    }
    if (prov != NULL && c_new_error != NULL && c_vset_error != NULL) {
        c_new_error(prov->handle);
        if (c_set_error_debug != NULL)
            c_set_error_debug(prov->handle, file, line, func);
        /* OpenSSL keeps at most ERR_MAX_DATA_SIZE (1024) bytes of an error's
         * text and keeps none at all when the text is longer: a long URI in a
         * message would leave the reason with nothing after it. So the text
         * is cut here, visibly, before it goes to the core. */
        char msg[1000];
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (n >= (int)sizeof(msg))
            memcpy(msg + sizeof(msg) - 5, "...", 4);
        set_error(prov, reason, "%s", n < 0 ? "" : msg);
    }
    va_end(ap);
}

const char *prov_ckr_str(CK_RV rv)
{
    switch (rv) {
#define C(x)                                                                                       \
    case x:                                                                                        \
        return #x
        C(CKR_OK);
        C(CKR_HOST_MEMORY);
        C(CKR_SLOT_ID_INVALID);
        C(CKR_GENERAL_ERROR);
        C(CKR_FUNCTION_FAILED);
        C(CKR_ARGUMENTS_BAD);
        C(CKR_ATTRIBUTE_TYPE_INVALID);
        C(CKR_DEVICE_ERROR);
        C(CKR_DEVICE_MEMORY);
        C(CKR_DEVICE_REMOVED);
        C(CKR_DATA_LEN_RANGE);
        C(CKR_KEY_HANDLE_INVALID);
        C(CKR_KEY_TYPE_INCONSISTENT);
        C(CKR_KEY_FUNCTION_NOT_PERMITTED);
        C(CKR_MECHANISM_INVALID);
        C(CKR_MECHANISM_PARAM_INVALID);
        C(CKR_OBJECT_HANDLE_INVALID);
        C(CKR_OPERATION_ACTIVE);
        C(CKR_OPERATION_NOT_INITIALIZED);
        C(CKR_PIN_INCORRECT);
        C(CKR_PIN_INVALID);
        C(CKR_PIN_LEN_RANGE);
        C(CKR_PIN_EXPIRED);
        C(CKR_PIN_LOCKED);
        C(CKR_SESSION_CLOSED);
        C(CKR_SESSION_COUNT);
        C(CKR_SESSION_HANDLE_INVALID);
        C(CKR_TOKEN_NOT_PRESENT);
        C(CKR_TOKEN_NOT_RECOGNIZED);
        C(CKR_USER_ALREADY_LOGGED_IN);
        C(CKR_USER_NOT_LOGGED_IN);
        C(CKR_USER_PIN_NOT_INITIALIZED);
        C(CKR_BUFFER_TOO_SMALL);
        C(CKR_CRYPTOKI_NOT_INITIALIZED);
        C(CKR_CRYPTOKI_ALREADY_INITIALIZED);
#undef C
    }
    static __thread char buf[32];
    snprintf(buf, sizeof(buf), "CKR 0x%lx", (unsigned long)rv);
    return buf;
}

/* ---- lazily made parts ---------------------------------------------------- */

prov_module *prov_module_of(prov_ctx *prov)
{
    prov_module *m;

    pthread_mutex_lock(&prov->lock);
    if (prov->module == NULL)
        prov->module = prov_module_get(prov, prov->module_path);
    m = prov->module;
    pthread_mutex_unlock(&prov->lock);
    return m;
}

/*
 * Made on first use, not at init: making a child context instantiates every
 * provider of the parent again (this one included), and the copy of this
 * provider must not in turn make its own.
 */
OSSL_LIB_CTX *prov_libctx(prov_ctx *prov)
{
    OSSL_LIB_CTX *c;

    pthread_mutex_lock(&prov->lock);
    if (prov->child == NULL)
        prov->child = OSSL_LIB_CTX_new_child(prov->handle, prov->core_in);
    c = prov->child;
    pthread_mutex_unlock(&prov->lock);
    return c;
}

EVP_MD *prov_md(prov_ctx *prov, const char *name)
{
    OSSL_LIB_CTX *libctx = prov_libctx(prov);
    EVP_MD *md = NULL;

    if (libctx == NULL)
        return NULL;
    pthread_mutex_lock(&prov->lock);
    for (size_t i = 0; i < prov->n_mds; i++) {
        if (EVP_MD_is_a(prov->mds[i], name)) {
            md = prov->mds[i];
            break;
        }
    }
    if (md != NULL) {
        if (!EVP_MD_up_ref(md))
            md = NULL;
    } else if ((md = EVP_MD_fetch(libctx, name, NULL)) != NULL) {
        /* The fetch's reference is the caller's; the cache takes its own while
         * it has room. A full cache must not turn a digest away. */
        if (prov->n_mds < sizeof(prov->mds) / sizeof(prov->mds[0]) && EVP_MD_up_ref(md))
            prov->mds[prov->n_mds++] = md;
    }
    pthread_mutex_unlock(&prov->lock);
    return md;
}

/* ---- options ------------------------------------------------------------- */

static int parse_bool(const char *v, int *out)
{
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
        strcmp(v, "1") == 0)
        *out = 1;
    else if (strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
             strcmp(v, "0") == 0)
        *out = 0;
    else
        return 0;
    return 1;
}

/* issuing-keys: pkcs11: URIs separated by white space (a comma may stand inside a URI). */
static int parse_issuing(prov_ctx *prov, const char *list)
{
    char *copy = strdup(list), *tok, *save = NULL;
    int ok = 1;

    if (copy == NULL)
        return 0;
    for (tok = strtok_r(copy, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        char err[512];
        prov_uri *u = prov_uri_parse_ex(tok, prov->secret_flags, err, sizeof(err));
        prov_uri **grown;
        if (u == NULL) {
            TM_RAISE(prov, TM_R_CONFIG, "provider option issuing-keys: %s", err);
            ok = 0;
            break;
        }
        grown = realloc(prov->issuing, (prov->n_issuing + 1) * sizeof(*grown));
        if (grown == NULL) {
            prov_uri_free(u);
            ok = 0;
            break;
        }
        prov->issuing = grown;
        prov->issuing[prov->n_issuing++] = u;
    }
    free(copy);
    return ok;
}

static int read_options(prov_ctx *prov)
{
    char *module = NULL, *pin_source = NULL, *issuing = NULL, *profile = NULL, *enforce = NULL,
         *debug = NULL, *open_secrets = NULL;
    OSSL_PARAM p[] = {
        /* not "module": OpenSSL's provider config uses that for this .so's path */
        OSSL_PARAM_utf8_ptr("pkcs11-module", &module, 0),
        OSSL_PARAM_utf8_ptr("pin-source", &pin_source, 0),
        OSSL_PARAM_utf8_ptr("issuing-keys", &issuing, 0),
        OSSL_PARAM_utf8_ptr("profile", &profile, 0),
        OSSL_PARAM_utf8_ptr("enforce", &enforce, 0),
        OSSL_PARAM_utf8_ptr("debug", &debug, 0),
        OSSL_PARAM_utf8_ptr("allow-open-secrets", &open_secrets, 0),
        OSSL_PARAM_END,
    };
    const char *env;

    if (c_get_params != NULL && !c_get_params(prov->handle, p)) {
        TM_RAISE(prov, TM_R_CONFIG, "cannot read the provider's configuration");
        return 0;
    }
    if (debug != NULL && !parse_bool(debug, &prov_debug_on)) {
        TM_RAISE(prov, TM_R_CONFIG, "provider option debug = '%s': use on or off", debug);
        return 0;
    }
    prov->enforce = 1;
    if (enforce != NULL && !parse_bool(enforce, &prov->enforce)) {
        TM_RAISE(prov, TM_R_CONFIG, "provider option enforce = '%s': use on or off", enforce);
        return 0;
    }
    if (open_secrets != NULL) {
        int on = 0;
        if (!parse_bool(open_secrets, &on)) {
            TM_RAISE(prov, TM_R_CONFIG, "provider option allow-open-secrets = '%s': use on or off",
                     open_secrets);
            return 0;
        }
        prov->secret_flags = on ? P11C_SECRET_ALLOW_OPEN : 0;
    }
    env = getenv("TOKENMINT_MODULE");
    prov->module_path = strdup(env != NULL && env[0] ? env
                               : module != NULL      ? module
                                                     : TOKENMINT_DEFAULT_MODULE);
    if (prov->module_path == NULL)
        return 0;
    if (pin_source != NULL && (prov->pin_source = strdup(pin_source)) == NULL)
        return 0;
    if (profile != NULL && (prov->profile_path = strdup(profile)) == NULL)
        return 0;
    if (issuing != NULL && !parse_issuing(prov, issuing))
        return 0;
    TM_DBG("options: module=%s enforce=%s profile=%s issuing-keys=%zu pin-source=%s",
           prov->module_path, prov->enforce ? "on" : "off",
           prov->profile_path ? prov->profile_path : "(built-in)", prov->n_issuing,
           prov->pin_source ? "set" : "unset");
    return 1;
}

static int load_profile(prov_ctx *prov)
{
    tm_violations *errs = tm_violations_new();
    char msg[1024];

    prov->profile = tm_profile_load(prov->profile_path, errs);
    if (prov->profile == NULL) {
        tm_violations_join(errs, msg, sizeof(msg));
        TM_RAISE(prov, TM_R_CONFIG, "provider option profile: %s", msg);
        tm_violations_free(errs);
        return 0;
    }
    tm_violations_free(errs);
    /* Text output (openssl req -text, x509 -text) names the profile's OIDs. */
    tm_profile_register_oids(prov->profile);
    if (c_obj_create != NULL)
        c_obj_create(prov->handle, "1.3.6.1.5.5.7.8.4", "hardwareModuleName", "hardwareModuleName");
    return 1;
}

/* ---- provider functions ---------------------------------------------------- */

static void prov_teardown(void *provctx)
{
    prov_ctx *prov = provctx;

    if (prov == NULL)
        return;
    /* The module stays initialised until exit (see session.c). */
    prov_module_put(prov->module);
    for (size_t i = 0; i < prov->n_issuing; i++)
        prov_uri_free(prov->issuing[i]);
    free(prov->issuing);
    tm_profile_free(prov->profile);
    for (size_t i = 0; i < prov->n_mds; i++)
        EVP_MD_free(prov->mds[i]);
    prov_fwd_cache_free(prov);
    for (size_t i = 0; i < sizeof(prov->gen_settable) / sizeof(prov->gen_settable[0]); i++)
        free(prov->gen_settable[i]);
    OSSL_LIB_CTX_free(prov->child);
    free(prov->module_path);
    free(prov->pin_source);
    free(prov->profile_path);
    pthread_mutex_destroy(&prov->lock);
    free(prov);
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_utf8_ptr("pkcs11-module", NULL, 0),
        OSSL_PARAM_int("enforce", NULL),
        OSSL_PARAM_ulong("login-calls", NULL),
        OSSL_PARAM_END,
    };
    return t;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    prov_ctx *prov = provctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, "tokenmint PKCS#11 provider"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, TOKENMINT_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, "tokenmint " TOKENMINT_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL &&
        !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, "pkcs11-module")) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, prov->module_path))
        return 0;
    if ((p = OSSL_PARAM_locate(params, "enforce")) != NULL && !OSSL_PARAM_set_int(p, prov->enforce))
        return 0;
    /* How many C_Login calls this process made (tests assert "once"). */
    if ((p = OSSL_PARAM_locate(params, "login-calls")) != NULL &&
        !OSSL_PARAM_set_ulong(p, prov->module != NULL ? prov_module_login_calls(prov->module) : 0))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM tm_store[] = {
    {"pkcs11", TM_PROV_PROPS, prov_store_functions, "PKCS#11 tokens (RFC 7512 URIs)"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM tm_keymgmt[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", TM_PROV_PROPS, prov_rsa_keymgmt_functions,
     "RSA keys on PKCS#11 tokens"},
    {"RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", TM_PROV_PROPS, prov_rsapss_keymgmt_functions,
     "RSA-PSS keys on PKCS#11 tokens"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", TM_PROV_PROPS, prov_ec_keymgmt_functions,
     "EC keys on PKCS#11 tokens"},
    {"ED25519:1.3.101.112", TM_PROV_PROPS, prov_ed25519_keymgmt_functions,
     "Ed25519 keys on PKCS#11 tokens"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM tm_signature[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", TM_PROV_PROPS, prov_rsa_signature_functions,
     "RSA signatures on PKCS#11 tokens"},
    {"ECDSA", TM_PROV_PROPS, prov_ecdsa_signature_functions, "ECDSA on PKCS#11 tokens"},
    {"ED25519:1.3.101.112", TM_PROV_PROPS, prov_eddsa_signature_functions,
     "Ed25519 on PKCS#11 tokens"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM tm_asym_cipher[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", TM_PROV_PROPS, prov_rsa_asym_cipher_functions,
     "RSA decryption on PKCS#11 tokens"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM tm_keyexch[] = {
    {"ECDH", TM_PROV_PROPS, prov_ecdh_keyexch_functions, "ECDH on PKCS#11 tokens"},
    {NULL, NULL, NULL, NULL},
};

/* Token private keys written as their URI (encoder.c), as PEM or DER asks. */
#define TM_ENC(names, output)                                                                      \
    {                                                                                              \
        names, TM_PROV_PROPS ",output=" #output ",structure=PrivateKeyInfo",                       \
            prov_uri_##output##_encoder_functions, "the pkcs11: URI of a token key"                \
    }
static const OSSL_ALGORITHM tm_encoder[] = {
    TM_ENC("RSA:rsaEncryption:1.2.840.113549.1.1.1", pem),
    TM_ENC("RSA:rsaEncryption:1.2.840.113549.1.1.1", der),
    TM_ENC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", pem),
    TM_ENC("RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", der),
    TM_ENC("EC:id-ecPublicKey:1.2.840.10045.2.1", pem),
    TM_ENC("EC:id-ecPublicKey:1.2.840.10045.2.1", der),
    TM_ENC("ED25519:1.3.101.112", pem),
    TM_ENC("ED25519:1.3.101.112", der),
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_STORE:
        return tm_store;
    case OSSL_OP_KEYMGMT:
        return tm_keymgmt;
    case OSSL_OP_SIGNATURE:
        return tm_signature;
    case OSSL_OP_ASYM_CIPHER:
        return tm_asym_cipher;
    case OSSL_OP_KEYEXCH:
        return tm_keyexch;
    case OSSL_OP_ENCODER:
        return tm_encoder;
    }
    return NULL;
}

int prov_algorithms_are_ours(const OSSL_ALGORITHM *algs)
{
    return algs != NULL && (algs == tm_store || algs == tm_keymgmt || algs == tm_signature ||
                            algs == tm_asym_cipher || algs == tm_keyexch || algs == tm_encoder);
}

/*
 * TLS groups: see forward.h. Without them, a TLS context made while this
 * provider comes first in the process has no EC groups at all.
 */
static int prov_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                 void *arg)
{
    if (strcasecmp(capability, "TLS-GROUP") == 0)
        return prov_fwd_tls_groups(provctx, cb, arg);
    return 1;
}

static const OSSL_ITEM *prov_reason_strings(void *provctx)
{
    static const OSSL_ITEM r[] = {
        {TM_R_BAD_URI, "malformed pkcs11 URI"},
        {TM_R_MODULE, "PKCS#11 module error"},
        {TM_R_TOKEN_NOT_FOUND, "token not found"},
        {TM_R_OBJECT_NOT_FOUND, "object not found on token"},
        {TM_R_LOGIN, "token login failed"},
        {TM_R_PIN_NEEDED, "token PIN needed"},
        {TM_R_SIGN, "token signing failed"},
        {TM_R_PROFILE, "refused by the serial-bound profile"},
        {TM_R_CONFIG, "bad provider configuration"},
        {TM_R_UNSUPPORTED, "not supported for token keys"},
        {TM_R_DECRYPT, "token decryption failed"},
        {TM_R_DERIVE, "token key derivation failed"},
        {TM_R_KEYGEN, "token key generation failed"},
        {0, NULL},
    };
    return r;
}

static const OSSL_DISPATCH prov_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reason_strings},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))prov_get_capabilities},
    {0, NULL},
};

__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                                                              const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out,
                                                              void **provctx)
{
    prov_ctx *prov;
    const OSSL_DISPATCH *core_in = in;

    if (p11c_debug_enabled())
        prov_debug_on = 1;
    tm_profile_set_debug_sink(p11c_debug_prefixed);
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_CORE_OBJ_CREATE:
            c_obj_create = OSSL_FUNC_core_obj_create(in);
            break;
        }
    }
    prov = calloc(1, sizeof(*prov));
    if (prov == NULL)
        return 0;
    prov->handle = handle;
    prov->core_in = core_in;
    pthread_mutex_init(&prov->lock, NULL);
    if (!read_options(prov) || !load_profile(prov)) {
        prov_teardown(prov);
        return 0;
    }
    *out = prov_functions;
    *provctx = prov;
    return 1;
}
