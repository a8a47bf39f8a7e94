/*
 * Signatures per second with one token key: direct PKCS#11 (C_SignInit +
 * C_Sign on one session, the digest computed in software, the same mechanism
 * the provider uses) against the tokenmint provider (EVP_DigestSign with the
 * key loaded through OSSL_STORE), in one run, one thread.
 *
 *   bench_provider PROVIDER_DIR MODULE SERIAL ID(hex) PIN [SECONDS]
 *
 * The module stays initialised between the two runs; the provider shares it
 * (C_Initialize returns CKR_CRYPTOKI_ALREADY_INITIALIZED).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "p11c.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const unsigned char sha256_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE kt;
} direct_ctx;

static int direct_open(direct_ctx *d, const char *module, const char *serial, const char *idhex,
                       const char *pin)
{
    void *dl = dlopen(module, RTLD_NOW);
    CK_C_GetFunctionList gfl = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
    CK_SLOT_ID slots[256];
    CK_ULONG n = 256, found = 0;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    unsigned char id[64];
    size_t idlen = strlen(idhex) / 2;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, idlen}};
    CK_ATTRIBUTE kta = {CKA_KEY_TYPE, &d->kt, sizeof(d->kt)};

    memset(d, 0, sizeof(*d));
    kta.pValue = &d->kt;
    for (size_t i = 0; i < idlen && i < sizeof(id); i++)
        sscanf(idhex + 2 * i, "%2hhx", &id[i]);
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
    if (d->s == 0 || d->f->C_Login(d->s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)) != CKR_OK ||
        d->f->C_FindObjectsInit(d->s, tmpl, 2) != CKR_OK ||
        d->f->C_FindObjects(d->s, &d->key, 1, &found) != CKR_OK)
        return 0;
    d->f->C_FindObjectsFinal(d->s);
    return found == 1 && d->f->C_GetAttributeValue(d->s, d->key, &kta, 1) == CKR_OK;
}

/* Signatures per second, direct; combined: let the token hash (RSA only). */
static double direct_run(direct_ctx *d, int combined, double secs)
{
    unsigned char msg[32] = {1}, buf[64], sig[1024];
    long count = 0;
    double t0 = now(), t1;

    do {
        CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
        CK_ULONG sl = sizeof(sig), inlen;
        unsigned int dlen = 0;
        const unsigned char *in = buf;
        if (combined) {
            m.mechanism = CKM_SHA256_RSA_PKCS;
            in = msg;
            inlen = sizeof(msg);
        } else {
            EVP_Digest(msg, sizeof(msg), buf + sizeof(sha256_info), &dlen, EVP_sha256(), NULL);
            if (d->kt == CKK_RSA) {
                m.mechanism = CKM_RSA_PKCS;
                memcpy(buf, sha256_info, sizeof(sha256_info));
                inlen = sizeof(sha256_info) + dlen;
            } else {
                in = buf + sizeof(sha256_info);
                inlen = dlen;
            }
        }
        if (d->f->C_SignInit(d->s, &m, d->key) != CKR_OK ||
            d->f->C_Sign(d->s, (CK_BYTE *)in, inlen, sig, &sl) != CKR_OK)
            return -1;
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    return count / (t1 - t0);
}

static EVP_PKEY *provider_key(const char *provdir, const char *serial, const char *idhex,
                              const char *pin)
{
    char uri[512], id[200] = "";
    EVP_PKEY *pk = NULL;
    OSSL_STORE_CTX *c;

    for (size_t i = 0; i < strlen(idhex); i += 2)
        snprintf(id + strlen(id), sizeof(id) - strlen(id), "%%%.2s", idhex + i);
    OSSL_PROVIDER_set_default_search_path(NULL, provdir);
    if (OSSL_PROVIDER_load(NULL, "tokenmint") == NULL ||
        OSSL_PROVIDER_load(NULL, "default") == NULL)
        return NULL;
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

/* reuse: one EVP_DigestSignInit, then EVP_DigestSign per signature. */
static double provider_run(EVP_PKEY *pk, int reuse, double secs)
{
    unsigned char msg[32] = {1}, sig[1024];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    long count = 0;
    double t0 = now(), t1;

    if (reuse && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pk, NULL) != 1)
        return -1;
    do {
        size_t sl = sizeof(sig);
        if ((!reuse && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pk, NULL) != 1) ||
            EVP_DigestSign(md, sig, &sl, msg, sizeof(msg)) != 1)
            return -1;
        count++;
        t1 = now();
    } while (t1 - t0 < secs);
    EVP_MD_CTX_free(md);
    return count / (t1 - t0);
}

static void best(double *b, double v)
{
    if (v > *b)
        *b = v;
}

int main(int argc, char **argv)
{
    double secs = argc > 6 ? atof(argv[6]) : 4.0, slice;
    double d = 0, dc = 0, p = 0, pr = 0;
    direct_ctx dx;
    EVP_PKEY *pk;
    const int rounds = 4;

    if (argc < 6) {
        fprintf(stderr, "usage: %s PROVIDER_DIR MODULE SERIAL ID(hex) PIN [SECONDS]\n", argv[0]);
        return 2;
    }
    setenv("TOKENMINT_MODULE", argv[2], 1); /* the provider uses the same module */
    if (!direct_open(&dx, argv[2], argv[3], argv[4], argv[5])) {
        fprintf(stderr, "direct PKCS#11 setup failed\n");
        return 1;
    }
    if ((pk = provider_key(argv[1], argv[3], argv[4], argv[5])) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* Interleaved rounds, best of each: the machine is shared, and load that
     * comes and goes should not favour one side. */
    slice = secs / rounds / (dx.kt == CKK_RSA ? 4 : 3);
    for (int r = 0; r < rounds; r++) {
        best(&d, direct_run(&dx, 0, slice));
        best(&p, provider_run(pk, 0, slice));
        best(&pr, provider_run(pk, 1, slice));
        if (dx.kt == CKK_RSA)
            best(&dc, direct_run(&dx, 1, slice));
    }
    if (d <= 0 || p <= 0 || pr <= 0) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("key=%s direct=%.0f/s provider=%.0f/s (%.1f%%) provider-reused-ctx=%.0f/s (%.1f%%)",
           dx.kt == CKK_RSA ? "RSA" : "EC", d, p, 100.0 * p / d, pr, 100.0 * pr / d);
    if (dx.kt == CKK_RSA)
        printf(" direct-CKM_SHA256_RSA_PKCS=%.0f/s", dc);
    printf("\n");
    EVP_PKEY_free(pk);
    return 0;
}
