/*
 * Token keys for OpenSSL: the tokenmint provider in a library context of the
 * tool's own, beside the default provider. The tool has already initialised
 * the PKCS#11 module when the provider loads; the provider shares that
 * initialisation (CKR_CRYPTOKI_ALREADY_INITIALIZED) and the token logins.
 */
#include "station/station.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#ifndef TM_BUILD_PROVIDER_DIR
#define TM_BUILD_PROVIDER_DIR ""
#endif
#ifndef TM_INSTALLED_PROVIDER_DIR
#define TM_INSTALLED_PROVIDER_DIR "/usr/lib/x86_64-linux-gnu/ossl-modules"
#endif

static const char *provider_dir(void)
{
    static char build[4200];
    const char *env = getenv("TOKENMINT_PROVIDER_DIR");

    if (env && *env)
        return env;
    if (TM_BUILD_PROVIDER_DIR[0]) {
        snprintf(build, sizeof build, "%s/tokenmint.so", TM_BUILD_PROVIDER_DIR);
        if (access(build, R_OK) == 0)
            return TM_BUILD_PROVIDER_DIR;
    }
    return TM_INSTALLED_PROVIDER_DIR;
}

int tool_crypto_open(tool_crypto *c, const char *module_path)
{
    const char *dir = provider_dir();
    char e[200];

    memset(c, 0, sizeof *c);
    c->libctx = OSSL_LIB_CTX_new();
    if (c->libctx)
        c->deflt = OSSL_PROVIDER_load(c->libctx, "default");
    if (!c->deflt) {
        snprintf(c->err, sizeof c->err, "cannot set up OpenSSL");
        return 0;
    }
    /* The provider finds the module the same way the tool does; make sure it
     * is the very module the tool opened, so both share one initialisation. */
    if (module_path)
        setenv("TOKENMINT_MODULE", module_path, 1);
    OSSL_PROVIDER_set_default_search_path(c->libctx, dir);
    c->tokenmint = OSSL_PROVIDER_load(c->libctx, "tokenmint");
    if (c->tokenmint) {
        c->have_provider = 1;
    } else {
        snprintf(c->err, sizeof c->err, "the tokenmint provider did not load from %s: %s", dir,
                 tool_ossl_err(e, sizeof e));
        tool_debug("%s", c->err);
    }
    return 1;
}

void tool_crypto_close(tool_crypto *c)
{
    /* Unloads the provider (closing its sessions) before the tool finalizes
     * the module. */
    if (c->tokenmint)
        OSSL_PROVIDER_unload(c->tokenmint);
    if (c->deflt)
        OSSL_PROVIDER_unload(c->deflt);
    OSSL_LIB_CTX_free(c->libctx);
    c->tokenmint = c->deflt = NULL;
    c->libctx = NULL;
}

/* The provider asks for a PIN only for a token nobody in this process has
 * logged in to yet; it then gets the run's PIN (file or the one prompt). */
static int pin_cb(char *buf, int size, int rwflag, void *u)
{
    char err[200];
    size_t len = 0;

    (void)rwflag;
    if (!u || size <= 0 || !tool_pin_get(u, NULL, buf, (size_t)size, &len, err, sizeof err))
        return -1;
    return (int)len;
}

EVP_PKEY *tool_crypto_load_key(tool_crypto *c, const char *uri, tool_pin *pin, char *err,
                               size_t errlen)
{
    UI_METHOD *ui = NULL;
    OSSL_STORE_CTX *s;
    OSSL_STORE_INFO *info;
    EVP_PKEY *k = NULL;
    char e[300];
    tool_return_val_if_fail(c != NULL && c->libctx != NULL && uri != NULL && err != NULL, NULL);

    if (!c->have_provider && strncmp(uri, "pkcs11:", 7) == 0) {
        snprintf(err, errlen, "%s", c->err);
        return NULL;
    }
    if (pin)
        ui = UI_UTIL_wrap_read_pem_callback(pin_cb, 0);
    s = OSSL_STORE_open_ex(uri, c->libctx, NULL, ui, pin, NULL, NULL, NULL);
    if (!s) {
        UI_destroy_method(ui);
        snprintf(err, errlen, "cannot open %s: %s", uri, tool_ossl_err(e, sizeof e));
        return NULL;
    }
    OSSL_STORE_expect(s, OSSL_STORE_INFO_PKEY);
    while (!k && !OSSL_STORE_eof(s)) {
        info = OSSL_STORE_load(s);
        if (!info)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            k = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(s);
    UI_destroy_method(ui);
    if (!k)
        snprintf(err, errlen, "no private key at %s: %s", uri, tool_ossl_err(e, sizeof e));
    return k;
}
