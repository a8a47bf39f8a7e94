/*
 * bench_sign: C_Sign throughput straight to SoftHSM2 and through
 * tokenmint-pkcs11.so, in one process and one run, P-256 (CKM_ECDSA on a
 * SHA-256 digest) and RSA-2048 (CKM_SHA256_RSA_PKCS), 1 and 2 threads. Goal:
 * the module costs at most 5%.
 *
 *   . tests/lib/tokens.sh; tm_make_tokens 1
 *   TOKENMINT_BACKEND=/usr/lib/softhsm/libsofthsm2.so \
 *     build/tests/bench_sign build/pkcs11/tokenmint-pkcs11.so [SECONDS] [PIN]
 *
 * Both paths reach the same SoftHSM2 instance (the module finds it already
 * initialised and shares it) and sign on the same token with session keys
 * made per thread. The two paths run alternately, ROUNDS short rounds each,
 * and the best round counts: on a shared machine other load only ever makes a
 * round slower. Besides signatures per second (wall clock) it reports CPU
 * microseconds per signature (thread CPU time), which other processes'
 * load does not disturb: the module's cost is the difference.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11c.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

typedef struct path {
    const char *name;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
} path;

typedef struct job {
    path *p;
    int rsa;
    double seconds;
    const char *pin;
    long ops;
    double cpu; /* thread CPU seconds spent in the signing loop */
    CK_RV rv;
} job;

#define ROUNDS 6

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static CK_FUNCTION_LIST *load(const char *file)
{
    void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList gfl;
    CK_FUNCTION_LIST *f = NULL;
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv;

    if (dl == NULL || (gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
        gfl(&f) != CKR_OK) {
        fprintf(stderr, "cannot load %s\n", file);
        exit(1);
    }
    rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        fprintf(stderr, "%s: C_Initialize: 0x%lx\n", file, (unsigned long)rv);
        exit(1);
    }
    return f;
}

/* The slot of the token with this serial (NULL: the first initialised one). */
static CK_SLOT_ID find(CK_FUNCTION_LIST *f, unsigned char serial[16])
{
    CK_SLOT_ID list[64];
    CK_ULONG n = 64, i;

    if (f->C_GetSlotList(CK_TRUE, list, &n) != CKR_OK)
        exit(1);
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(list[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (serial[0] == 0) {
            memcpy(serial, ti.serialNumber, 16);
            return list[i];
        }
        if (memcmp(serial, ti.serialNumber, 16) == 0)
            return list[i];
    }
    fprintf(stderr, "no initialised token\n");
    exit(1);
}

static CK_RV keypair(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, int rsa, CK_OBJECT_HANDLE *priv)
{
    static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1};
    CK_MECHANISM ec = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, r = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE ecpub[] = {{CKA_TOKEN, &no, 1}, {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE rsapub[] = {
        {CKA_TOKEN, &no, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_PUBLIC_EXPONENT, e, 3}};
    CK_ATTRIBUTE prv[] = {{CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}, {CKA_PRIVATE, &yes, 1}};
    CK_OBJECT_HANDLE pub;

    if (rsa)
        return f->C_GenerateKeyPair(s, &r, rsapub, 3, prv, 3, &pub, priv);
    return f->C_GenerateKeyPair(s, &ec, ecpub, 2, prv, 3, &pub, priv);
}

static void *run(void *arg)
{
    job *j = arg;
    CK_FUNCTION_LIST *f = j->p->f;
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0}, rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE data[32], sig[512];
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    double end, cpu0;

    memset(data, 0x5a, sizeof(data));
    j->rv = f->C_OpenSession(j->p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (j->rv != CKR_OK)
        return NULL;
    j->rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)j->pin, strlen(j->pin));
    if (j->rv == CKR_USER_ALREADY_LOGGED_IN)
        j->rv = CKR_OK;
    if (j->rv == CKR_OK)
        j->rv = keypair(f, s, j->rsa, &key);
    cpu0 = cpu_now();
    for (end = now() + j->seconds; j->rv == CKR_OK && now() < end; j->ops++) {
        CK_ULONG len = sizeof(sig);
        j->rv = f->C_SignInit(s, j->rsa ? &rsa : &ecdsa, key);
        if (j->rv == CKR_OK)
            j->rv = f->C_Sign(s, data, sizeof(data), sig, &len);
    }
    j->cpu = cpu_now() - cpu0;
    f->C_CloseSession(s);
    return NULL;
}

/* Signatures per second over all threads; *cpu_us: CPU microseconds per signature. */
static double measure(path *p, int rsa, int threads, double seconds, const char *pin,
                      double *cpu_us)
{
    pthread_t t[2];
    job jobs[2];
    long ops = 0;
    double cpu = 0;
    int i;

    for (i = 0; i < threads; i++) {
        jobs[i] = (job){.p = p, .rsa = rsa, .seconds = seconds, .pin = pin};
        pthread_create(&t[i], NULL, run, &jobs[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].rv != CKR_OK) {
            fprintf(stderr, "%s: rv 0x%lx\n", p->name, (unsigned long)jobs[i].rv);
            exit(1);
        }
        ops += jobs[i].ops;
        cpu += jobs[i].cpu;
    }
    *cpu_us = ops > 0 ? cpu * 1e6 / (double)ops : 0;
    return (double)ops / seconds;
}

int main(int argc, char **argv)
{
    const char *module = argc > 1 ? argv[1] : "build/pkcs11/tokenmint-pkcs11.so";
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    const char *pin = argc > 3 ? argv[3] : "1234";
    unsigned char serial[16] = {0};
    path direct = {"softhsm2", NULL, 0}, via = {"tokenmint", NULL, 0};
    int rsa, threads, round;

    direct.f = load(SOFTHSM);
    direct.slot = find(direct.f, serial);
    via.f = load(module);
    via.slot = find(via.f, serial);
    printf("C_Sign (+C_SignInit), %d alternating rounds of %.2f s per path, best round\n", ROUNDS,
           seconds);
    printf("%-9s %7s %13s %13s %9s %12s %12s %9s\n", "key", "threads", "direct sig/s",
           "module sig/s", "overhead", "direct us/sig", "module us/sig", "overhead");
    for (rsa = 0; rsa <= 1; rsa++) {
        for (threads = 1; threads <= 2; threads++) {
            double d = 0, m = 0, dc = 1e9, mc = 1e9;
            for (round = 0; round < ROUNDS; round++) {
                double xc, yc;
                double x = measure(&direct, rsa, threads, seconds, pin, &xc);
                double y = measure(&via, rsa, threads, seconds, pin, &yc);
                d = x > d ? x : d;
                m = y > m ? y : m;
                dc = xc < dc ? xc : dc;
                mc = yc < mc ? yc : mc;
            }
            printf("%-9s %7d %13.1f %13.1f %8.1f%% %12.2f %12.2f %8.1f%%\n",
                   rsa ? "RSA-2048" : "P-256", threads, d, m, 100.0 * (d - m) / d, dc, mc,
                   100.0 * (mc - dc) / dc);
            fflush(stdout);
        }
    }
    via.f->C_Finalize(NULL);
    direct.f->C_Finalize(NULL);
    return 0;
}
