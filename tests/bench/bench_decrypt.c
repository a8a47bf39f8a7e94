/*
 * Decryptions and derivations per second with token keys: direct PKCS#11
 * against the tokenmint provider, in one run, one thread (issue 13: the
 * provider should reach at least 90% of direct).
 *
 *   bench_decrypt PROVIDER_DIR MODULE SERIAL RSA-ID(hex) EC-ID(hex) PIN [SECONDS]
 *
 * Direct is the least a PKCS#11 caller does per operation, on one session
 * with the key handle found once: RSA: C_DecryptInit + C_Decrypt
 * (CKM_RSA_PKCS); ECDH: C_DeriveKey (CKM_ECDH1_DERIVE into a session object)
 * + C_GetAttributeValue + C_DestroyObject. The provider runs through EVP with
 * the key loaded through OSSL_STORE: "fresh" makes an EVP_PKEY_CTX per
 * operation (what openssl pkeyutl, CMS and libssl do), "reuse" initialises one
 * context and repeats the operation. Interleaved rounds, the best of each:
 * the machine is shared, so the figures are noisy; compare ratios.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "p11c.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE rsa, ec;
} direct_ctx;

static CK_OBJECT_HANDLE find_key(direct_ctx *d, const char *idhex)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    unsigned char id[64];
    size_t idlen = strlen(idhex) / 2;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, idlen}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG found = 0;

    for (size_t i = 0; i < idlen && i < sizeof(id); i++)
        sscanf(idhex + 2 * i, "%2hhx", &id[i]);
    if (d->f->C_FindObjectsInit(d->s, tmpl, 2) != CKR_OK)
        return CK_INVALID_HANDLE;
    if (d->f->C_FindObjects(d->s, &h, 1, &found) != CKR_OK || found != 1)
        h = CK_INVALID_HANDLE;
    d->f->C_FindObjectsFinal(d->s);
    return h;
}

static int direct_open(direct_ctx *d, const char *module, const char *serial, const char *rsa_id,
                       const char *ec_id, const char *pin)
{
    void *dl = dlopen(module, RTLD_NOW);
    CK_C_GetFunctionList gfl = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
    CK_SLOT_ID slots[256];
    CK_ULONG n = 256;

    memset(d, 0, sizeof(*d));
    if (gfl == NULL || gfl(&d->f) != CKR_OK || d->f->C_Initialize(NULL) != CKR_OK ||
        d->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (d->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            strncmp((char *)ti.serialNumber, serial, strlen(serial)) == 0) {
            d->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &d->s);
            break;
        }
    }
    if (d->s == 0 || d->f->C_Login(d->s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)) != CKR_OK)
        return 0;
    d->rsa = find_key(d, rsa_id);
    d->ec = find_key(d, ec_id);
    return d->rsa != CK_INVALID_HANDLE && d->ec != CK_INVALID_HANDLE;
}

static double direct_decrypt(direct_ctx *d, const unsigned char *ct, size_t ctlen, double secs)
{
    unsigned char pt[1024];
    long count = 0;
    double t0 = now(), t1;

    do {
        CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
        CK_ULONG len = sizeof(pt);
        if (d->f->C_DecryptInit(d->s, &m, d->rsa) != CKR_OK ||
            d->f->C_Decrypt(d->s, (CK_BYTE *)ct, ctlen, pt, &len) != CKR_OK)
            return -1;
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    return count / (t1 - t0);
}

static double direct_derive(direct_ctx *d, unsigned char *point, size_t plen, double secs)
{
    CK_OBJECT_CLASS klass = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &klass, sizeof(klass)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_ECDH1_DERIVE_PARAMS ep = {CKD_NULL, 0, NULL, plen, point};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &ep, sizeof(ep)};
    unsigned char z[66];
    long count = 0;
    double t0 = now(), t1;

    do {
        CK_OBJECT_HANDLE h;
        CK_ATTRIBUTE val = {CKA_VALUE, z, sizeof(z)};
        if (d->f->C_DeriveKey(d->s, &m, d->ec, tmpl, 6, &h) != CKR_OK)
            return -1;
        if (d->f->C_GetAttributeValue(d->s, h, &val, 1) != CKR_OK)
            return -1;
        d->f->C_DestroyObject(d->s, h);
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    return count / (t1 - t0);
}

static EVP_PKEY *provider_key(const char *serial, const char *idhex, const char *pin)
{
    char uri[512], id[200] = "";
    EVP_PKEY *pk = NULL;
    OSSL_STORE_CTX *c;

    for (size_t i = 0; i < strlen(idhex); i += 2)
        snprintf(id + strlen(id), sizeof(id) - strlen(id), "%%%.2s", idhex + i);
    snprintf(uri, sizeof(uri), "pkcs11:serial=%s;id=%s;type=private;pin-value=%s", serial, id, pin);
    c = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    while (c != NULL && pk == NULL && !OSSL_STORE_eof(c)) {
        OSSL_STORE_INFO *i = OSSL_STORE_load(c);
        if (i == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(i);
        OSSL_STORE_INFO_free(i);
    }
    OSSL_STORE_close(c);
    return pk;
}

static double provider_decrypt(EVP_PKEY *pk, int reuse, const unsigned char *ct, size_t ctlen,
                               double secs)
{
    unsigned char pt[1024];
    EVP_PKEY_CTX *c = NULL;
    long count = 0;
    double t0 = now(), t1;

    if (reuse && ((c = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_decrypt_init(c) <= 0))
        return -1;
    do {
        size_t len = sizeof(pt);
        if (!reuse && ((c = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_decrypt_init(c) <= 0))
            return -1;
        if (EVP_PKEY_decrypt(c, pt, &len, ct, ctlen) <= 0)
            return -1;
        if (!reuse)
            EVP_PKEY_CTX_free(c);
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    if (reuse)
        EVP_PKEY_CTX_free(c);
    return count / (t1 - t0);
}

static double provider_derive(EVP_PKEY *pk, EVP_PKEY *peer, int reuse, double secs)
{
    unsigned char z[66];
    EVP_PKEY_CTX *c = NULL;
    long count = 0;
    double t0 = now(), t1;

    if (reuse && ((c = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_derive_init(c) <= 0 ||
                  EVP_PKEY_derive_set_peer(c, peer) <= 0))
        return -1;
    do {
        size_t len = sizeof(z);
        if (!reuse && ((c = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_derive_init(c) <= 0 ||
                       EVP_PKEY_derive_set_peer(c, peer) <= 0))
            return -1;
        if (EVP_PKEY_derive(c, z, &len) <= 0)
            return -1;
        if (!reuse)
            EVP_PKEY_CTX_free(c);
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    if (reuse)
        EVP_PKEY_CTX_free(c);
    return count / (t1 - t0);
}

static void best(double *b, double v)
{
    if (v > *b || v < 0)
        *b = v < 0 ? -1 : v;
}

int main(int argc, char **argv)
{
    double secs = argc > 7 ? atof(argv[7]) : 6.0, slice;
    double dd = 0, pd = 0, pdr = 0, dx = 0, px = 0, pxr = 0;
    unsigned char ct[1024], msg[32] = {1}, point[140];
    size_t ctlen = sizeof(ct), plen = 0;
    direct_ctx d;
    EVP_PKEY *rsa, *ec, *peer = NULL;
    EVP_PKEY_CTX *c;
    const int rounds = 4;

    if (argc < 7) {
        fprintf(stderr, "usage: %s PROVIDER_DIR MODULE SERIAL RSA-ID EC-ID PIN [SECONDS]\n",
                argv[0]);
        return 2;
    }
    setenv("TOKENMINT_MODULE", argv[2], 1); /* the provider uses the same module */
    if (!direct_open(&d, argv[2], argv[3], argv[4], argv[5], argv[6])) {
        fprintf(stderr, "direct PKCS#11 setup failed\n");
        return 1;
    }
    OSSL_PROVIDER_set_default_search_path(NULL, argv[1]);
    if (OSSL_PROVIDER_load(NULL, "tokenmint") == NULL ||
        OSSL_PROVIDER_load(NULL, "default") == NULL ||
        (rsa = provider_key(argv[3], argv[4], argv[6])) == NULL ||
        (ec = provider_key(argv[3], argv[5], argv[6])) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* the ciphertext and the peer are software work, made once */
    if ((c = EVP_PKEY_CTX_new(rsa, NULL)) == NULL || EVP_PKEY_encrypt_init(c) <= 0 ||
        EVP_PKEY_encrypt(c, ct, &ctlen, msg, sizeof(msg)) <= 0)
        return 1;
    EVP_PKEY_CTX_free(c);
    if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC", "provider=default")) == NULL ||
        EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_CTX_set_group_name(c, "P-256") <= 0 ||
        EVP_PKEY_keygen(c, &peer) <= 0 ||
        !EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &plen))
        return 1;
    EVP_PKEY_CTX_free(c);

    slice = secs / rounds / 6;
    for (int r = 0; r < rounds; r++) {
        best(&dd, direct_decrypt(&d, ct, ctlen, slice));
        best(&pd, provider_decrypt(rsa, 0, ct, ctlen, slice));
        best(&pdr, provider_decrypt(rsa, 1, ct, ctlen, slice));
        best(&dx, direct_derive(&d, point, plen, slice));
        best(&px, provider_derive(ec, peer, 0, slice));
        best(&pxr, provider_derive(ec, peer, 1, slice));
    }
    if (dd <= 0 || pd <= 0 || pdr <= 0 || dx <= 0 || px <= 0 || pxr <= 0) {
        fprintf(stderr, "an operation failed\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("RSA-2048 decrypt/s: direct %.0f, provider fresh %.0f (%.0f%%), reuse %.0f (%.0f%%)\n",
           dd, pd, 100 * pd / dd, pdr, 100 * pdr / dd);
    printf("ECDH P-256 derive/s: direct %.0f, provider fresh %.0f (%.0f%%), reuse %.0f (%.0f%%)\n",
           dx, px, 100 * px / dx, pxr, 100 * pxr / dx);
    return 0;
}
