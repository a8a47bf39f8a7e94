/*
 * In-process checks of the test shim, driven by tests/e2e/shim_inprocess.sh:
 * two shim copies over two SoftHSM2 stores in one process, a token hidden
 * and shown while a session is open on it, and Nth-call failures.
 *
 * Environment: TM_SHIM_A, TM_SHIM_B (the two shim copies), TM_SERIAL_A,
 * TM_SERIAL_B (a token of each store), and shell commands run at each step:
 * TM_CMD_HIDE, TM_CMD_SHOW (hide / show TM_SERIAL_A in shim A),
 * TM_CMD_FAIL3 (3rd C_GenerateRandom -> CKR_DEVICE_ERROR), TM_CMD_STICKY
 * (2nd and later C_GenerateRandom -> 0x30), TM_CMD_CLEAR.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11c.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static CK_FUNCTION_LIST *load(const char *env)
{
    const char *path = getenv(env);
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *f = NULL;
    void *dl;

    if (path == NULL) {
        fprintf(stderr, "%s not set\n", env);
        exit(2);
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "%s: %s\n", path, dlerror());
        exit(2);
    }
    get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (get == NULL || get(&f) != CKR_OK) {
        fprintf(stderr, "%s: no C_GetFunctionList\n", path);
        exit(2);
    }
    return f;
}

static void run(const char *env)
{
    const char *cmd = getenv(env);
    if (cmd == NULL || system(cmd) != 0) {
        fprintf(stderr, "step %s failed\n", env);
        exit(2);
    }
}

/* Slot holding the token with this serial among the slots listed; -1 if none. */
static long slot_of(CK_FUNCTION_LIST *f, CK_BBOOL present, const char *serial)
{
    CK_SLOT_ID ids[64];
    CK_ULONG n = 64, i;
    if (f->C_GetSlotList(present, ids, &n) != CKR_OK)
        return -1;
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char s[17];
        size_t len = 16;
        if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
            continue;
        memcpy(s, ti.serialNumber, 16);
        while (len > 0 && s[len - 1] == ' ')
            len--;
        s[len] = '\0';
        if (strcmp(s, serial) == 0)
            return (long)ids[i];
    }
    return -1;
}

static int listed(CK_FUNCTION_LIST *f, CK_BBOOL present, CK_SLOT_ID slot)
{
    CK_SLOT_ID ids[64];
    CK_ULONG n = 64, i;
    if (f->C_GetSlotList(present, ids, &n) != CKR_OK)
        return 0;
    for (i = 0; i < n; i++)
        if (ids[i] == slot)
            return 1;
    return 0;
}

static CK_RV rnd(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_BYTE buf[8];
    return f->C_GenerateRandom(s, buf, sizeof(buf));
}

int main(void)
{
    CK_FUNCTION_LIST *a = load("TM_SHIM_A"), *b = load("TM_SHIM_B");
    const char *serial_a = getenv("TM_SERIAL_A"), *serial_b = getenv("TM_SERIAL_B");
    CK_SESSION_HANDLE s1, s2, s3;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_ULONG count = 0;
    long slot;
    CK_RV rv;

    if (serial_a == NULL || serial_b == NULL)
        return 2;
    CHECK(a != b, "the two copies share one function list");
    CHECK((rv = a->C_Initialize(NULL)) == CKR_OK, "C_Initialize A: 0x%lx", rv);
    CHECK((rv = b->C_Initialize(NULL)) == CKR_OK, "C_Initialize B: 0x%lx", rv);

    /* each copy sees its own store */
    CHECK(slot_of(a, CK_TRUE, serial_a) >= 0, "A does not list %s", serial_a);
    CHECK(slot_of(a, CK_TRUE, serial_b) < 0, "A lists B's token %s", serial_b);
    CHECK(slot_of(b, CK_TRUE, serial_b) >= 0, "B does not list %s", serial_b);
    CHECK(slot_of(b, CK_TRUE, serial_a) < 0, "B lists A's token %s", serial_a);

    slot = slot_of(a, CK_TRUE, serial_a);
    if (slot < 0)
        return 1;
    CHECK(a->C_OpenSession((CK_SLOT_ID)slot, CKF_SERIAL_SESSION, NULL, NULL, &s1) == CKR_OK,
          "open session");
    CHECK(rnd(a, s1) == CKR_OK, "C_GenerateRandom before removal");

    /* removal while the session is open */
    run("TM_CMD_HIDE");
    CHECK(!listed(a, CK_TRUE, (CK_SLOT_ID)slot), "hidden token's slot still in the present list");
    CHECK(listed(a, CK_FALSE, (CK_SLOT_ID)slot), "hidden token's slot left the full slot list");
    CHECK(a->C_GetSlotList(CK_TRUE, NULL, &count) == CKR_OK, "slot count");
    CHECK(a->C_GetSlotInfo((CK_SLOT_ID)slot, &si) == CKR_OK && !(si.flags & CKF_TOKEN_PRESENT),
          "C_GetSlotInfo still reports the token present");
    CHECK((rv = a->C_GetTokenInfo((CK_SLOT_ID)slot, &ti)) == CKR_TOKEN_NOT_PRESENT,
          "C_GetTokenInfo on hidden token: 0x%lx", rv);
    CHECK((rv = rnd(a, s1)) == CKR_DEVICE_REMOVED, "session on removed token: 0x%lx", rv);
    CHECK((rv = a->C_OpenSession((CK_SLOT_ID)slot, CKF_SERIAL_SESSION, NULL, NULL, &s2)) ==
              CKR_TOKEN_NOT_PRESENT,
          "C_OpenSession on hidden token: 0x%lx", rv);
    CHECK(slot_of(b, CK_TRUE, serial_b) >= 0, "hiding in A hid B's token");

    /* insertion: the token is back, the old session is not */
    run("TM_CMD_SHOW");
    CHECK(listed(a, CK_TRUE, (CK_SLOT_ID)slot), "shown token's slot not listed");
    CHECK((rv = a->C_OpenSession((CK_SLOT_ID)slot, CKF_SERIAL_SESSION, NULL, NULL, &s2)) == CKR_OK,
          "C_OpenSession after show: 0x%lx", rv);
    CHECK(rnd(a, s2) == CKR_OK, "new session after show");
    CHECK((rv = rnd(a, s1)) == CKR_DEVICE_REMOVED, "old session after show: 0x%lx", rv);
    CHECK((rv = a->C_CloseSession(s1)) == CKR_DEVICE_REMOVED, "closing old session: 0x%lx", rv);
    CHECK(rnd(a, s1) != CKR_OK, "old session usable after close");

    /* the 3rd call from now fails, once */
    run("TM_CMD_FAIL3");
    CHECK(rnd(a, s2) == CKR_OK, "1st call after fail rule");
    CHECK(rnd(a, s2) == CKR_OK, "2nd call after fail rule");
    CHECK((rv = rnd(a, s2)) == CKR_DEVICE_ERROR, "3rd call: 0x%lx", rv);
    CHECK(rnd(a, s2) == CKR_OK, "4th call after a one-shot rule");
    CHECK(rnd(b, CK_INVALID_HANDLE) != CKR_DEVICE_ERROR, "B affected by A's rule");

    /* sticky: the 2nd and every later call */
    run("TM_CMD_STICKY");
    CHECK(rnd(a, s2) == CKR_OK, "1st call after sticky rule");
    CHECK((rv = rnd(a, s2)) == CKR_DEVICE_ERROR, "2nd call, sticky: 0x%lx", rv);
    CHECK((rv = rnd(a, s2)) == CKR_DEVICE_ERROR, "3rd call, sticky: 0x%lx", rv);
    run("TM_CMD_CLEAR");
    CHECK(rnd(a, s2) == CKR_OK, "call after clear");

    /* a fresh C_Initialize forgets the old sessions and starts clean */
    CHECK(a->C_Finalize(NULL) == CKR_OK, "finalize A");
    CHECK(rnd(a, s2) == CKR_CRYPTOKI_NOT_INITIALIZED, "call after finalize");
    CHECK(a->C_Initialize(NULL) == CKR_OK, "re-initialize A");
    CHECK(a->C_OpenSession((CK_SLOT_ID)slot, CKF_SERIAL_SESSION, NULL, NULL, &s3) == CKR_OK,
          "open after re-initialize");
    CHECK(a->C_Finalize(NULL) == CKR_OK, "finalize A again");
    CHECK(b->C_Finalize(NULL) == CKR_OK, "finalize B");

    if (failures == 0)
        printf("shim_check: ok\n");
    return failures == 0 ? 0 : 1;
}
