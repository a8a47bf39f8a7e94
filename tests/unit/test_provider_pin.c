/*
 * Login through the provider, in one process, against a fresh SoftHSM2 token:
 * a wrong PIN reaches the token once and is never sent again; a right PIN
 * logs in once and later key loads reuse the login. Counted with the
 * provider's "login-calls" parameter (C_Login calls made by this process).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

static char dir[] = "/tmp/tm-provider-pin.XXXXXX";
static char serial[64];
static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *tm, *dflt;

static int run(const char *cmd)
{
    return system(cmd) == 0;
}

static int setup(void **state)
{
    char cmd[1024], conf[256];
    FILE *f;

    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    setenv("TOKENMINT_MODULE", "/usr/lib/softhsm/libsofthsm2.so", 1);
    if (!run("softhsm2-util --init-token --free --label tm-0001 --so-pin 12345678 --pin 1234 "
             ">/dev/null") ||
        !run("pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --login --pin 1234 "
             "--keypairgen --key-type EC:prime256v1 --id 01 --label k >/dev/null 2>&1"))
        return -1;
    f = popen("pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so -L 2>/dev/null | "
              "awk -F': *' '/serial num/{print $2; exit}'",
              "r");
    if (f == NULL || fgets(serial, sizeof(serial), f) == NULL)
        return -1;
    pclose(f);
    serial[strcspn(serial, "\n ")] = '\0';
    snprintf(cmd, sizeof(cmd), "%s/provider", getenv("TM_BUILD_DIR"));
    libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER_set_default_search_path(libctx, cmd);
    tm = OSSL_PROVIDER_load(libctx, "tokenmint");
    dflt = OSSL_PROVIDER_load(libctx, "default");
    return tm != NULL && dflt != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    OSSL_PROVIDER_unload(tm);
    OSSL_PROVIDER_unload(dflt);
    OSSL_LIB_CTX_free(libctx);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return run(cmd) ? 0 : -1;
}

static unsigned long login_calls(void)
{
    unsigned long n = 999;
    OSSL_PARAM p[] = {OSSL_PARAM_ulong("login-calls", &n), OSSL_PARAM_END};
    assert_true(OSSL_PROVIDER_get_params(tm, p));
    return n;
}

static EVP_PKEY *load(const char *pin)
{
    char uri[256];
    EVP_PKEY *pk = NULL;
    OSSL_STORE_CTX *c;

    snprintf(uri, sizeof(uri), "pkcs11:serial=%s;id=%%01;type=private;pin-value=%s", serial, pin);
    c = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    while (c != NULL && pk == NULL && !OSSL_STORE_eof(c)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(c);
        if (i != NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(i);
        OSSL_STORE_INFO_free(i);
        if (i == NULL)
            break;
    }
    OSSL_STORE_close(c);
    return pk;
}

static void wrong_pin_reaches_the_token_once(void **state)
{
    unsigned long before = login_calls();
    char msg[512];

    ERR_clear_error();
    assert_null(load("9999"));
    assert_int_equal(login_calls(), before + 1);
    ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
    ERR_clear_error();
    /* the same wrong PIN again: refused without a C_Login */
    assert_null(load("9999"));
    assert_int_equal(login_calls(), before + 1);
    assert_null(load("9999"));
    assert_int_equal(login_calls(), before + 1);
    ERR_clear_error();
}

static void right_pin_logs_in_once_per_process(void **state)
{
    unsigned long before = login_calls();
    EVP_PKEY *a = load("1234"), *b;
    unsigned char sig[128];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_non_null(a);
    assert_int_equal(login_calls(), before + 1);
    b = load("1234");
    assert_non_null(b);
    assert_int_equal(login_calls(), before + 1);
    /* and the key signs */
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, a, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"hello", 5), 1);
    assert_true(siglen > 8);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* Several threads signing with one token key at once: the session pool hands
 * each its own session; every signature verifies. */
static EVP_PKEY *shared_key;

static void *signer(void *arg)
{
    long ok = 0;
    for (int i = 0; i < 40; i++) {
        unsigned char sig[128], msg[16];
        size_t siglen = sizeof(sig);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        memset(msg, i, sizeof(msg));
        if (EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, shared_key, NULL) == 1 &&
            EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1) {
            EVP_MD_CTX *v = EVP_MD_CTX_new(), *w = EVP_MD_CTX_new();
            int good =
                EVP_DigestVerifyInit_ex(v, NULL, "SHA256", libctx, NULL, shared_key, NULL) == 1 &&
                EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) == 1;
            msg[0] ^= 1; /* and a changed message must not verify */
            int bad =
                EVP_DigestVerifyInit_ex(w, NULL, "SHA256", libctx, NULL, shared_key, NULL) == 1 &&
                EVP_DigestVerify(w, sig, siglen, msg, sizeof(msg)) == 1;
            if (good && !bad)
                ok++;
            EVP_MD_CTX_free(w);
            EVP_MD_CTX_free(v);
        }
        EVP_MD_CTX_free(md);
    }
    return (void *)ok;
}

static void concurrent_signing_from_threads(void **state)
{
    pthread_t th[4];
    long total = 0;

    shared_key = load("1234");
    assert_non_null(shared_key);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, signer, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)r;
    }
    EVP_PKEY_free(shared_key);
    assert_int_equal(total, 4 * 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrong_pin_reaches_the_token_once),
        cmocka_unit_test(right_pin_logs_in_once_per_process),
        cmocka_unit_test(concurrent_signing_from_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
