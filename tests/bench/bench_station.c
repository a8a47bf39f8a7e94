/*
 * bench_station: what one station process pays per token, to show the cost
 * does not grow with the number of tokens. For every initialised token:
 * C_OpenSession, C_Login, a P-256 session key pair, C_Sign; plus the
 * one-off C_Initialize and C_GetSlotList. Run it on stores of 8 and 64 tokens:
 *
 *   for n in 8 64; do
 *     (. tests/lib/tokens.sh; tm_make_tokens $n;
 *      TOKENMINT_BACKEND=/usr/lib/softhsm/libsofthsm2.so \
 *        build/tests/bench_station build/pkcs11/tokenmint-pkcs11.so)
 *   done
 *
 * MODULE may be SoftHSM2 itself for the reference figures.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11c.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, CK_RV rv)
{
    fprintf(stderr, "%s: rv 0x%lx\n", what, (unsigned long)rv);
    exit(1);
}

int main(int argc, char **argv)
{
    static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    const char *module = argc > 1 ? argv[1] : "build/pkcs11/tokenmint-pkcs11.so";
    const char *pin = argc > 2 ? argv[2] : "1234";
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_ATTRIBUTE pubt[] = {{CKA_TOKEN, &no, 1}, {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE privt[] = {{CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}};
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_FUNCTION_LIST *f;
    CK_C_GetFunctionList gfl;
    CK_SLOT_ID *slots;
    CK_ULONG n = 0, i, done = 0;
    CK_BYTE digest[32], sig[128];
    double t0, t1, t2, t3;
    void *dl;
    CK_RV rv;

    memset(digest, 0x42, sizeof(digest));
    dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL || (gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
        gfl(&f) != CKR_OK) {
        fprintf(stderr, "cannot load %s\n", module);
        return 1;
    }
    t0 = now();
    if ((rv = f->C_Initialize(&args)) != CKR_OK)
        die("C_Initialize", rv);
    t1 = now();
    if ((rv = f->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK)
        die("C_GetSlotList", rv);
    slots = calloc(n ? n : 1, sizeof(*slots));
    if (slots == NULL || (rv = f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
        die("C_GetSlotList", rv);
    t2 = now();
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE pub, priv;
        CK_ULONG len = sizeof(sig);

        if ((rv = f->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
            die("C_GetTokenInfo", rv);
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if ((rv = f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                   &s)) != CKR_OK)
            die("C_OpenSession", rv);
        if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK)
            die("C_Login", rv);
        if ((rv = f->C_GenerateKeyPair(s, &gen, pubt, 2, privt, 2, &pub, &priv)) != CKR_OK)
            die("C_GenerateKeyPair", rv);
        if ((rv = f->C_SignInit(s, &ecdsa, priv)) != CKR_OK ||
            (rv = f->C_Sign(s, digest, sizeof(digest), sig, &len)) != CKR_OK)
            die("C_Sign", rv);
        f->C_CloseSession(s);
        done++;
    }
    t3 = now();
    f->C_Finalize(NULL);
    printf("%s: %lu tokens: C_Initialize %.1f ms, slot list %.2f ms, per token %.2f ms "
           "(open+login+keygen+sign)\n",
           module, (unsigned long)done, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
           done ? (t3 - t2) * 1e3 / (double)done : 0.0);
    free(slots);
    return done > 0 ? 0 : 1;
}
