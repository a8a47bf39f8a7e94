/*
 * Login through the provider, in one process, against a fresh SoftHSM2 token:
 * a wrong PIN reaches the token once and is never sent again; a right PIN
 * logs in once and later key loads reuse the login. Counted with the
 * provider's "login-calls" parameter (C_Login calls made by this process).
 * The token also holds more certificates under one label than one
 * C_FindObjects call returns (64 per call), so a search must ask again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <dlfcn.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#define N_BULK 70 /* past the provider's 64 handles per C_FindObjects call */

static char dir[] = "/tmp/tm-provider-pin.XXXXXX";
static char serial[64];
static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *tm, *dflt;

static int run(const char *cmd)
{
    return system(cmd) == 0;
}

static unsigned char *self_signed(const char *cn, int *len)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    unsigned char *der = NULL;

    *len = -1;
    if (k != NULL && x != NULL && n != NULL &&
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
        X509_set_issuer_name(x, n) && X509_set_pubkey(x, k) &&
        X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_sign(x, k, EVP_sha256()) > 0)
        *len = i2d_X509(x, &der);
    X509_free(x);
    EVP_PKEY_free(k);
    return *len > 0 ? der : NULL;
}

/*
 * N_BULK certificates labelled "bulk" on the token, written straight through
 * SoftHSM2 before the provider loads it: N_BULK - 1 say CN=filler, the last
 * one written says CN=wanted.
 */
static int add_bulk_certs(void)
{
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    int len[2], ok = 0;
    unsigned char *der[2] = {self_signed("filler", &len[0]), self_signed("wanted", &len[1])};
    void *dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL);

    if (dl == NULL || der[0] == NULL || der[1] == NULL ||
        (get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL || get(&f) != CKR_OK ||
        f->C_Initialize(NULL) != CKR_OK)
        goto out;
    if (f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n > 0 &&
        f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) == CKR_OK &&
        f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)"1234", 4) == CKR_OK) {
        ok = 1;
        for (int i = 0; ok && i < N_BULK; i++) {
            int w = i == N_BULK - 1;
            CK_ATTRIBUTE t[] = {
                {CKA_CLASS, &cls, sizeof(cls)},
                {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
                {CKA_TOKEN, &yes, sizeof(yes)},
                {CKA_PRIVATE, &no, sizeof(no)},
                {CKA_LABEL, "bulk", 4},
                {CKA_SUBJECT, "\x30\x00", 2},
                {CKA_VALUE, der[w], (CK_ULONG)len[w]},
            };
            CK_OBJECT_HANDLE h;
            ok = f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &h) == CKR_OK;
        }
        f->C_CloseSession(s);
    }
    f->C_Finalize(NULL);
out:
    OPENSSL_free(der[0]);
    OPENSSL_free(der[1]);
    /* SoftHSM2 is left mapped: the provider opens the same library later. */
    return ok;
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
             "--keypairgen --key-type EC:prime256v1 --id 01 --label k >/dev/null 2>&1") ||
        !add_bulk_certs())
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

/* Past any fixed-size list: every refused PIN stays refused. */
static void many_wrong_pins_each_reach_the_token_once(void **state)
{
    unsigned long before = login_calls();
    char pin[16];

    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 10; i++) {
            snprintf(pin, sizeof(pin), "5%03d", i);
            assert_null(load(pin));
            ERR_clear_error();
        }
        assert_int_equal(login_calls(), before + 10);
    }
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

/* Every certificate under the label comes back, the one written last too. */
static void search_returns_objects_past_the_first_chunk(void **state)
{
    char uri[256];
    int certs = 0, wanted = 0;
    OSSL_STORE_CTX *c;

    snprintf(uri, sizeof(uri), "pkcs11:serial=%s;object=bulk;type=cert", serial);
    c = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_non_null(c);
    while (!OSSL_STORE_eof(c)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(c);
        if (i == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_CERT) {
            char cn[32] = "";
            X509_NAME_get_text_by_NID(X509_get_subject_name(OSSL_STORE_INFO_get0_CERT(i)),
                                      NID_commonName, cn, sizeof(cn));
            certs++;
            wanted += strcmp(cn, "wanted") == 0;
        }
        OSSL_STORE_INFO_free(i);
    }
    OSSL_STORE_close(c);
    assert_int_equal(certs, N_BULK);
    assert_int_equal(wanted, 1);
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
        cmocka_unit_test(many_wrong_pins_each_reach_the_token_once),
        cmocka_unit_test(search_returns_objects_past_the_first_chunk),
        cmocka_unit_test(right_pin_logs_in_once_per_process),
        cmocka_unit_test(concurrent_signing_from_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
