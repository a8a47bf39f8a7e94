/*
 * tm-pkcs11-client: a small PKCS#11 client for the module's e2e tests, for
 * what stock clients cannot do: block in C_WaitForSlotEvent, cycle
 * C_Initialize/C_Finalize with sessions open, use a NULL PIN, set the derived
 * PIN, query the 3.0 interfaces, finalize from an exit handler.
 *
 *   tm-pkcs11-client MODULE wait N       DONT_BLOCK poll, "ready", then N blocking
 *                                        events: "event ID present|absent [SERIAL]"
 *   tm-pkcs11-client MODULE cycles N PIN  N x (C_Initialize, a session on every
 *                                        token, login on the first, C_Finalize)
 *   tm-pkcs11-client MODULE login-null SERIAL       C_Login(CKU_USER, NULL_PTR)
 *   tm-pkcs11-client MODULE set-derived SERIAL PIN  C_SetPIN(PIN, NULL_PTR)
 *   tm-pkcs11-client MODULE flags SERIAL            token flags in hex
 *   tm-pkcs11-client MODULE station PIN  on every token: session, login, P-256
 *                                        session key, sign, verify: "signed SERIAL"
 *   tm-pkcs11-client MODULE fork         after fork(), the child: calls give
 *                                        CKR_CRYPTOKI_NOT_INITIALIZED until it
 *                                        initialises again; the parent carries on
 *   tm-pkcs11-client MODULE cert-doors SERIAL PIN   on the token's first certificate:
 *                                        C_CopyObject, C_SetAttributeValue of CKA_ID,
 *                                        CKA_VALUE and CKA_LABEL: "NAME rv 0x.."
 *   tm-pkcs11-client MODULE parallel SERIAL_A SERIAL_B PIN
 *                                        while one thread is inside C_Login on
 *                                        token A (slowed down by the shim), another
 *                                        works on token B: "parallel yes" when B
 *                                        finished before A's C_Login returned
 *   tm-pkcs11-client MODULE race-write SERIAL PIN CERT.der
 *                                        two threads C_CreateObject the same
 *                                        certificate at once: "created N refused M rv"
 *   tm-pkcs11-client MODULE interfaces              the 3.0 interface checks
 *   tm-pkcs11-client MODULE atexit-finalize         C_Finalize from an atexit handler
 *                                                   registered before libcrypto's
 * Prints "rv NAME" on failure and exits 1. The PIN comes from argv only
 * because this is a test tool running on throwaway tokens.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11c.h"

static CK_FUNCTION_LIST *f;

static int check(const char *what, CK_RV rv)
{
    if (rv == CKR_OK)
        return 1;
    printf("%s: rv 0x%lx\n", what, (unsigned long)rv);
    fflush(stdout);
    return 0;
}

static int find_slot(const char *serial, CK_SLOT_ID *out)
{
    CK_SLOT_ID list[256];
    CK_ULONG n = 256, i;

    if (!check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, list, &n)))
        return 0;
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        size_t l = strlen(serial);
        if (f->C_GetTokenInfo(list[i], &ti) == CKR_OK && l <= 16 &&
            memcmp(ti.serialNumber, serial, l) == 0 && (l == 16 || ti.serialNumber[l] == ' ')) {
            *out = list[i];
            return 1;
        }
    }
    printf("no token %s\n", serial);
    return 0;
}

static int cmd_wait(int n)
{
    CK_SLOT_ID slot;
    CK_ULONG count = 0;
    CK_RV rv;
    int i;

    if (!check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &count)))
        return 1;
    rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
    printf("%s\n", rv == CKR_NO_EVENT ? "no-event" : "unexpected-event");
    printf("ready %lu\n", (unsigned long)count);
    fflush(stdout);
    for (i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        if (!check("C_WaitForSlotEvent", f->C_WaitForSlotEvent(0, &slot, NULL)) ||
            !check("C_GetSlotInfo", f->C_GetSlotInfo(slot, &si)))
            return 1;
        if ((si.flags & CKF_TOKEN_PRESENT) && f->C_GetTokenInfo(slot, &ti) == CKR_OK) {
            int l = 16;
            while (l > 0 && ti.serialNumber[l - 1] == ' ')
                l--;
            printf("event %lu present %.*s\n", (unsigned long)slot, l, ti.serialNumber);
        } else {
            printf("event %lu absent\n", (unsigned long)slot);
        }
        fflush(stdout);
    }
    return 0;
}

static int cmd_cycles(int n, const char *pin)
{
    int i;

    for (i = 0; i < n; i++) {
        CK_SLOT_ID list[64];
        CK_ULONG count = 64, j;
        CK_SESSION_HANDLE s;
        if (i > 0 && !check("C_Initialize", f->C_Initialize(NULL)))
            return 1;
        if (!check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, list, &count)))
            return 1;
        for (j = 0; j < count; j++) {
            CK_TOKEN_INFO ti;
            if (f->C_GetTokenInfo(list[j], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
                continue;
            if (!check(
                    "C_OpenSession",
                    f->C_OpenSession(list[j], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)))
                return 1;
            if (j == 0 &&
                !check("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))))
                return 1;
        }
        /* sessions deliberately left open */
        if (!check("C_Finalize", f->C_Finalize(NULL)))
            return 1;
    }
    printf("cycles %d\n", n);
    return 0;
}

static int open_on(const char *serial, CK_SESSION_HANDLE *s)
{
    CK_SLOT_ID slot;

    return find_slot(serial, &slot) &&
           check("C_OpenSession",
                 f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s));
}

static int cmd_login_null(const char *serial)
{
    CK_SESSION_HANDLE s;

    if (!open_on(serial, &s) || !check("C_Login", f->C_Login(s, CKU_USER, NULL, 0)))
        return 1;
    printf("login ok\n");
    return 0;
}

static int cmd_set_derived(const char *serial, const char *pin)
{
    CK_SESSION_HANDLE s;

    if (!open_on(serial, &s) ||
        !check("C_SetPIN", f->C_SetPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin), NULL, 0)))
        return 1;
    printf("set ok\n");
    return 0;
}

static int cmd_flags(const char *serial)
{
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;

    if (!find_slot(serial, &slot) || !check("C_GetTokenInfo", f->C_GetTokenInfo(slot, &ti)))
        return 1;
    printf("flags 0x%lx protected-path %s\n", (unsigned long)ti.flags,
           (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) ? "yes" : "no");
    return 0;
}

static int cmd_station(const char *pin)
{
    static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_ATTRIBUTE pubt[] = {
        {CKA_TOKEN, &no, 1}, {CKA_VERIFY, &yes, 1}, {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE privt[] = {{CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}};
    CK_SLOT_ID list[256];
    CK_ULONG n = 256, i, done = 0;
    CK_BYTE digest[32], sig[128];

    memset(digest, 0x17, sizeof(digest));
    if (!check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, list, &n)))
        return 1;
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE pub, priv;
        CK_ULONG len = sizeof(sig);
        int l = 16;

        if (!check("C_GetTokenInfo", f->C_GetTokenInfo(list[i], &ti)))
            return 1;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (!check("C_OpenSession", f->C_OpenSession(list[i], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                     NULL, NULL, &s)) ||
            !check("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) ||
            !check("C_GenerateKeyPair",
                   f->C_GenerateKeyPair(s, &gen, pubt, 3, privt, 2, &pub, &priv)) ||
            !check("C_SignInit", f->C_SignInit(s, &ecdsa, priv)) ||
            !check("C_Sign", f->C_Sign(s, digest, sizeof(digest), sig, &len)) ||
            !check("C_VerifyInit", f->C_VerifyInit(s, &ecdsa, pub)) ||
            !check("C_Verify", f->C_Verify(s, digest, sizeof(digest), sig, len)))
            return 1;
        f->C_CloseSession(s);
        while (l > 0 && ti.serialNumber[l - 1] == ' ')
            l--;
        printf("signed %.*s slot %lu\n", l, ti.serialNumber, (unsigned long)list[i]);
        done++;
    }
    printf("station %lu\n", (unsigned long)done);
    return 0;
}

static int cmd_cert_doors(const char *serial, const char *pin)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE find = {CKA_CLASS, &cls, sizeof(cls)};
    CK_BYTE id[] = {0x99}, value[] = {0x30, 0x00};
    CK_UTF8CHAR label[] = "relabelled";
    CK_ATTRIBUTE set_id = {CKA_ID, id, sizeof(id)}, set_value = {CKA_VALUE, value, sizeof(value)};
    CK_ATTRIBUTE set_label = {CKA_LABEL, label, sizeof(label) - 1};
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE cert, copy;
    CK_ULONG n = 0;

    if (!open_on(serial, &s) ||
        !check("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) ||
        !check("C_FindObjectsInit", f->C_FindObjectsInit(s, &find, 1)) ||
        !check("C_FindObjects", f->C_FindObjects(s, &cert, 1, &n)) ||
        !check("C_FindObjectsFinal", f->C_FindObjectsFinal(s)))
        return 1;
    if (n != 1) {
        printf("no certificate\n");
        return 1;
    }
    printf("copy rv 0x%lx\n", (unsigned long)f->C_CopyObject(s, cert, NULL, 0, &copy));
    printf("set-id rv 0x%lx\n", (unsigned long)f->C_SetAttributeValue(s, cert, &set_id, 1));
    printf("set-value rv 0x%lx\n", (unsigned long)f->C_SetAttributeValue(s, cert, &set_value, 1));
    printf("set-label rv 0x%lx\n", (unsigned long)f->C_SetAttributeValue(s, cert, &set_label, 1));
    return 0;
}

typedef struct slow_login {
    CK_SESSION_HANDLE s;
    const char *pin;
    volatile int entered;
    CK_RV rv;
} slow_login;

static void *login_thread(void *arg)
{
    slow_login *l = arg;
    l->entered = 1;
    l->rv = f->C_Login(l->s, CKU_USER, (CK_UTF8CHAR_PTR)l->pin, strlen(l->pin));
    return NULL;
}

static int cmd_parallel(const char *a, const char *b, const char *pin)
{
    slow_login l = {.pin = pin, .rv = (CK_RV)-1};
    CK_SESSION_HANDLE sb;
    CK_SLOT_ID slot_b;
    CK_TOKEN_INFO ti;
    CK_ULONG n = 0;
    CK_BYTE rnd[16];
    pthread_t t;
    int b_done;

    if (!open_on(a, &l.s) || !find_slot(b, &slot_b))
        return 1;
    pthread_create(&t, NULL, login_thread, &l);
    while (!l.entered)
        usleep(1000);
    usleep(200000); /* A is now inside the backend's C_Login */
    b_done =
        check("C_OpenSession B", f->C_OpenSession(slot_b, CKF_SERIAL_SESSION, NULL, NULL, &sb)) &&
        check("C_GetTokenInfo B", f->C_GetTokenInfo(slot_b, &ti)) &&
        check("C_GenerateRandom B", f->C_GenerateRandom(sb, rnd, sizeof(rnd))) &&
        check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &n)) &&
        check("C_CloseSession B", f->C_CloseSession(sb));
    /* still inside A's C_Login? then B did not wait for it */
    printf("parallel %s\n", b_done && l.rv == (CK_RV)-1 ? "yes" : "no");
    pthread_join(t, NULL);
    return check("C_Login A", l.rv) ? 0 : 1;
}

typedef struct writer {
    CK_SESSION_HANDLE s;
    unsigned char *der;
    long len;
    pthread_barrier_t *go;
    CK_RV rv;
} writer;

static void *write_thread(void *arg)
{
    writer *w = arg;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_CERTIFICATE_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_VALUE, w->der, (CK_ULONG)w->len}};
    CK_OBJECT_HANDLE o;

    pthread_barrier_wait(w->go);
    w->rv = f->C_CreateObject(w->s, t, 4, &o);
    return NULL;
}

static int cmd_race_write(const char *serial, const char *pin, const char *file)
{
    FILE *fp = fopen(file, "rb");
    unsigned char der[8192];
    pthread_barrier_t go;
    writer w[2];
    pthread_t t[2];
    int i, created = 0;
    long len;

    if (fp == NULL)
        return 1;
    len = (long)fread(der, 1, sizeof(der), fp);
    fclose(fp);
    pthread_barrier_init(&go, NULL, 2);
    for (i = 0; i < 2; i++) {
        w[i] = (writer){.der = der, .len = len, .go = &go};
        if (!open_on(serial, &w[i].s))
            return 1;
    }
    /* login state is per token: one login covers both sessions */
    if (!check("C_Login", f->C_Login(w[0].s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))))
        return 1;
    for (i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, write_thread, &w[i]);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        created += (w[i].rv == CKR_OK);
    }
    printf("created %d refused %d rv 0x%lx\n", created, 2 - created,
           (unsigned long)(w[0].rv != CKR_OK ? w[0].rv : w[1].rv));
    pthread_barrier_destroy(&go);
    return 0;
}

static int cmd_fork(void)
{
    CK_ULONG before = 0, after = 0;
    int status;
    pid_t pid;

    if (!check("C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &before)))
        return 1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        CK_ULONG n = 0;
        CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
        printf("child before init: rv 0x%lx\n", (unsigned long)rv);
        if (!check("child C_Initialize", f->C_Initialize(NULL)) ||
            !check("child C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &n)))
            _exit(1);
        printf("child slots %lu\n", (unsigned long)n);
        f->C_Finalize(NULL);
        fflush(stdout);
        _exit(rv == CKR_CRYPTOKI_NOT_INITIALIZED ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        printf("child failed\n");
        return 1;
    }
    if (!check("parent C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &after)))
        return 1;
    printf("parent slots %lu %lu\n", (unsigned long)before, (unsigned long)after);
    return 0;
}

static int cmd_interfaces(void *dl)
{
    CK_C_GetInterfaceList list = (CK_C_GetInterfaceList)dlsym(dl, "C_GetInterfaceList");
    CK_C_GetInterface get = (CK_C_GetInterface)dlsym(dl, "C_GetInterface");
    CK_INTERFACE ifs[4], *one = NULL;
    CK_ULONG n = 0;
    CK_VERSION v30 = {3, 0}, v240 = {2, 40};

    if (list == NULL || get == NULL) {
        printf("interface functions not exported\n");
        return 1;
    }
    if (!check("C_GetInterfaceList(NULL)", list(NULL, &n)))
        return 1;
    printf("count %lu\n", (unsigned long)n);
    n = 4;
    if (!check("C_GetInterfaceList", list(ifs, &n)))
        return 1;
    printf("name %s version %d.%d same-list %s\n", (char *)ifs[0].pInterfaceName,
           ((CK_VERSION *)ifs[0].pFunctionList)->major, ((CK_VERSION *)ifs[0].pFunctionList)->minor,
           ifs[0].pFunctionList == (void *)f ? "yes" : "no");
    {
        /* every 2.40 entry point is implemented: no NULL in the function list */
        void (**fp)(void) = (void (**)(void))((char *)f + offsetof(CK_FUNCTION_LIST, C_Initialize));
        size_t count =
            (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *);
        size_t i, nulls = 0;
        for (i = 0; i < count; i++)
            nulls += (fp[i] == NULL);
        printf("functions %zu null %zu\n", count, nulls);
    }
    printf("get-default %s\n", get(NULL, NULL, &one, 0) == CKR_OK && one != NULL ? "ok" : "fail");
    printf("get-2.40 %s\n",
           get((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &one, 0) == CKR_OK ? "ok" : "fail");
    printf("get-3.0 %s\n",
           get((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &one, 0) == CKR_OK ? "ok" : "refused");
    printf("get-vendor %s\n",
           get((CK_UTF8CHAR_PTR) "Vendor X", NULL, &one, 0) == CKR_OK ? "ok" : "refused");
    return 0;
}

static void finalize_at_exit(void)
{
    CK_RV rv = f->C_Finalize(NULL);
    printf("finalize at exit: rv 0x%lx\n", (unsigned long)rv);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    CK_C_GetFunctionList gfl;
    void *dl;
    int rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODULE COMMAND ARGS...\n", argv[0]);
        return 2;
    }
    alarm(120); /* a test must never hang */
    if (strcmp(argv[2], "atexit-finalize") == 0)
        atexit(finalize_at_exit); /* before the module (and libcrypto) is loaded */
    dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (gfl == NULL || gfl(&f) != CKR_OK)
        return 1;
    if (!check("C_Initialize", f->C_Initialize(NULL)))
        return 1;
    if (strcmp(argv[2], "wait") == 0 && argc == 4)
        rc = cmd_wait(atoi(argv[3]));
    else if (strcmp(argv[2], "cycles") == 0 && argc == 5)
        return cmd_cycles(atoi(argv[3]), argv[4]); /* finalized inside */
    else if (strcmp(argv[2], "login-null") == 0 && argc == 4)
        rc = cmd_login_null(argv[3]);
    else if (strcmp(argv[2], "set-derived") == 0 && argc == 5)
        rc = cmd_set_derived(argv[3], argv[4]);
    else if (strcmp(argv[2], "flags") == 0 && argc == 4)
        rc = cmd_flags(argv[3]);
    else if (strcmp(argv[2], "station") == 0 && argc == 4)
        rc = cmd_station(argv[3]);
    else if (strcmp(argv[2], "cert-doors") == 0 && argc == 5)
        rc = cmd_cert_doors(argv[3], argv[4]);
    else if (strcmp(argv[2], "parallel") == 0 && argc == 6)
        rc = cmd_parallel(argv[3], argv[4], argv[5]);
    else if (strcmp(argv[2], "race-write") == 0 && argc == 6)
        rc = cmd_race_write(argv[3], argv[4], argv[5]);
    else if (strcmp(argv[2], "fork") == 0)
        rc = cmd_fork();
    else if (strcmp(argv[2], "interfaces") == 0)
        rc = cmd_interfaces(dl);
    else if (strcmp(argv[2], "atexit-finalize") == 0)
        return 0; /* C_Finalize runs in the exit handler, after libcrypto's cleanup */
    else
        fprintf(stderr, "unknown command %s\n", argv[2]);
    f->C_Finalize(NULL);
    return rc;
}
