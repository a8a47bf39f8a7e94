/*
 * tm-provider-threads: drives the tokenmint provider from many threads in one
 * process, for provider_sessions.sh (the session pool against a token that
 * allows few sessions).
 *
 *   tm-provider-threads ops PROVIDER-DIR SERIAL PIN THREADS ROUNDS
 *       Each thread, ROUNDS times: an ECDSA signature (key id 01), an RSA
 *       decryption (key id 02) and an ECDH derivation (key id 01), each
 *       checked against the software result. Prints "ok: N operations" and
 *       exits 0 only when every operation succeeded.
 *   tm-provider-threads hold PROVIDER-DIR SERIAL PIN MODULE N
 *       Opens as many sessions as the token still allows (up to N) through
 *       MODULE itself, another holder of the token's sessions, starts 4
 *       provider signatures in threads (more than the provider's pool holds),
 *       closes the sessions after a while, and exits 0 when every signature
 *       then succeeded.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "p11c.h"

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *ec_key, *rsa_key, *peer, *ec_pub;
static int rounds;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static int ok_ops, bad_ops;

static EVP_PKEY *load(const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *k = NULL;

    while (st != NULL && k == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(st);
        if (i != NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
            k = OSSL_STORE_INFO_get1_PKEY(i);
        OSSL_STORE_INFO_free(i);
    }
    OSSL_STORE_close(st);
    if (k == NULL) {
        fprintf(stderr, "cannot load %s\n", uri);
        ERR_print_errors_fp(stderr);
    }
    return k;
}

static void count(int ok, const char *what)
{
    pthread_mutex_lock(&count_lock);
    if (ok) {
        ok_ops++;
    } else {
        bad_ops++;
        fprintf(stderr, "%s failed\n", what);
        ERR_print_errors_fp(stderr);
    }
    pthread_mutex_unlock(&count_lock);
}

static int sign_once(void)
{
    unsigned char sig[128], msg[32] = "tokenmint session pool";
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL &&
             EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, ec_key, NULL) > 0 &&
             EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) > 0;
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    ok = ok && md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", libctx, NULL, ec_key, NULL) > 0 &&
         EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static int decrypt_once(void)
{
    unsigned char msg[32], ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, NULL);
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(libctx, rsa_key, NULL);
    int ok;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)rand();
    ok = e != NULL && d != NULL && EVP_PKEY_encrypt_init(e) > 0 &&
         EVP_PKEY_encrypt(e, ct, &ctlen, msg, sizeof(msg)) > 0 && EVP_PKEY_decrypt_init(d) > 0 &&
         EVP_PKEY_decrypt(d, pt, &ptlen, ct, ctlen) > 0 && ptlen == sizeof(msg) &&
         memcmp(pt, msg, ptlen) == 0;
    EVP_PKEY_CTX_free(e);
    EVP_PKEY_CTX_free(d);
    return ok;
}

static int derive_once(void)
{
    unsigned char z1[66], z2[66];
    size_t l1 = sizeof(z1), l2 = sizeof(z2);
    EVP_PKEY_CTX *a = EVP_PKEY_CTX_new_from_pkey(libctx, ec_key, NULL);
    EVP_PKEY_CTX *b = EVP_PKEY_CTX_new_from_pkey(libctx, peer, "provider=default");
    int ok = a != NULL && b != NULL && EVP_PKEY_derive_init(a) > 0 &&
             EVP_PKEY_derive_set_peer(a, peer) > 0 && EVP_PKEY_derive(a, z1, &l1) > 0 &&
             EVP_PKEY_derive_init(b) > 0 && EVP_PKEY_derive_set_peer(b, ec_pub) > 0 &&
             EVP_PKEY_derive(b, z2, &l2) > 0 && l1 == l2 && memcmp(z1, z2, l1) == 0;
    EVP_PKEY_CTX_free(a);
    EVP_PKEY_CTX_free(b);
    return ok;
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        count(sign_once(), "ECDSA signature");
        count(decrypt_once(), "RSA decryption");
        count(derive_once(), "ECDH");
    }
    return NULL;
}

static int setup(const char *provdir, const char *serial, const char *pin)
{
    char uri[512];

    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_PROVIDER_set_default_search_path(libctx, provdir) ||
        OSSL_PROVIDER_load(libctx, "tokenmint") == NULL ||
        OSSL_PROVIDER_load(libctx, "default") == NULL) {
        ERR_print_errors_fp(stderr);
        return 0;
    }
    snprintf(uri, sizeof(uri), "pkcs11:serial=%s;id=%%01;type=private;pin-value=%s", serial, pin);
    ec_key = load(uri);
    snprintf(uri, sizeof(uri), "pkcs11:serial=%s;id=%%02;type=private;pin-value=%s", serial, pin);
    rsa_key = load(uri);
    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, "EC", "provider=default");
    if (g == NULL || EVP_PKEY_keygen_init(g) <= 0 || EVP_PKEY_CTX_set_group_name(g, "P-256") <= 0 ||
        EVP_PKEY_keygen(g, &peer) <= 0)
        peer = NULL;
    EVP_PKEY_CTX_free(g);
    /* the token key's public half as a software key: a peer needs no more (and
     * a token private key does not export) */
    if (ec_key != NULL) {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(ec_key, &der);
        const unsigned char *p = der;
        if (len > 0)
            ec_pub = d2i_PUBKEY_ex(NULL, &p, len, libctx, "provider=default");
        OPENSSL_free(der);
    }
    return ec_pub != NULL && ec_key != NULL && rsa_key != NULL && peer != NULL;
}

static int run_ops(int nthreads)
{
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));

    if (th == NULL)
        return 1;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    free(th);
    printf("%s: %d operations, %d failed\n", bad_ops == 0 ? "ok" : "FAILED", ok_ops, bad_ops);
    return bad_ops == 0 && ok_ops == nthreads * rounds * 3 ? 0 : 1;
}

static void *one_sign(void *arg)
{
    count(sign_once(), "ECDSA signature while another holder has the sessions");
    return NULL;
}

/* The token's slot by serial (as the module pads it). */
static int slot_of(CK_FUNCTION_LIST *f, const char *serial, CK_SLOT_ID *slot)
{
    CK_SLOT_ID ids[64];
    CK_ULONG n = 64;

    if (f->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK)
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        size_t len = strlen(serial);
        if (f->C_GetTokenInfo(ids[i], &ti) == CKR_OK && len <= sizeof(ti.serialNumber) &&
            memcmp(ti.serialNumber, serial, len) == 0) {
            *slot = ids[i];
            return 1;
        }
    }
    return 0;
}

static int run_hold(const char *module, int n)
{
    void *dl = dlopen(module, RTLD_NOW);
    CK_C_GetFunctionList gfl =
        dl != NULL ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
    CK_FUNCTION_LIST *f = NULL;
    CK_SESSION_HANDLE held[16];
    CK_SLOT_ID slot;
    CK_RV rv;
    pthread_t th[4];
    int opened = 0;
    struct timespec pause = {0, 300 * 1000000L};

    if (gfl == NULL || gfl(&f) != CKR_OK || n > 16)
        return 1;
    rv = f->C_Initialize(NULL);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return 1;
    if (!slot_of(f, getenv("TM_HOLD_SERIAL"), &slot))
        return 1;
    while (opened < n) {
        rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &held[opened]);
        if (rv != CKR_OK)
            break;
        opened++;
    }
    printf("holding %d session(s) (%s)\n", opened, rv == CKR_SESSION_COUNT ? "token full" : "");
    if (rv != CKR_SESSION_COUNT) {
        fprintf(stderr, "the token was not full after %d sessions\n", opened);
        return 1;
    }
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, one_sign, NULL);
    nanosleep(&pause, NULL);
    for (int i = 0; i < opened; i++)
        f->C_CloseSession(held[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    printf("%s: %d signatures after the sessions came back, %d failed\n",
           bad_ops == 0 ? "ok" : "FAILED", ok_ops, bad_ops);
    return bad_ops == 0 && ok_ops == 4 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "ops") == 0) {
        rounds = atoi(argv[6]);
        if (!setup(argv[2], argv[3], argv[4]))
            return 1;
        return run_ops(atoi(argv[5]));
    }
    if (argc == 7 && strcmp(argv[1], "hold") == 0) {
        rounds = 1;
        setenv("TM_HOLD_SERIAL", argv[3], 1);
        if (!setup(argv[2], argv[3], argv[4]))
            return 1;
        return run_hold(argv[5], atoi(argv[6]));
    }
    fprintf(stderr,
            "usage: %s ops PROVIDER-DIR SERIAL PIN THREADS ROUNDS\n"
            "       %s hold PROVIDER-DIR SERIAL PIN MODULE N\n",
            argv[0], argv[0]);
    return 2;
}
