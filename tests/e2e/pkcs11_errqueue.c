/*
 * tm-pkcs11-errqueue MODULE SERIAL PIN CERT.der: an application with an
 * error of its own on OpenSSL's error queue calls into the module (issue 10
 * item 14): C_Initialize (which reads the trusted roots), C_CreateObject of a
 * certificate the write policy refuses (it parses it first), C_Finalize.
 * After each call the application's error must still be the only one on the
 * queue: the module neither wipes it nor leaves its own behind.
 * Prints "kept" and exits 0, or names the call that lost it and exits 1.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "p11c.h"

#define APP_REASON 42

static int only_ours(const char *after)
{
    unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();

    if (ERR_GET_LIB(first) == ERR_LIB_USER && ERR_GET_REASON(first) == APP_REASON && first == last)
        return 1;
    printf("after %s: queue has 0x%lx .. 0x%lx, not only the application's error\n", after, first,
           last);
    return 0;
}

static CK_SLOT_ID find_slot(CK_FUNCTION_LIST *f, const char *serial, int *found)
{
    CK_SLOT_ID list[64];
    CK_ULONG n = 64, i;
    size_t l = strlen(serial);

    *found = 0;
    if (f->C_GetSlotList(CK_TRUE, list, &n) != CKR_OK)
        return 0;
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(list[i], &ti) == CKR_OK && l <= 16 &&
            memcmp(ti.serialNumber, serial, l) == 0 && (l == 16 || ti.serialNumber[l] == ' ')) {
            *found = 1;
            return list[i];
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE o;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL yes = CK_TRUE;
    unsigned char der[16384];
    size_t der_len;
    CK_SLOT_ID slot;
    FILE *in;
    void *dl;
    int found;
    CK_RV rv;

    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE SERIAL PIN CERT.der\n", argv[0]);
        return 2;
    }
    in = fopen(argv[4], "rb");
    if (in == NULL)
        return 2;
    der_len = fread(der, 1, sizeof(der), in);
    fclose(in);
    dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL ||
        (get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList")) == NULL ||
        get(&f) != CKR_OK) {
        printf("cannot load %s\n", argv[1]);
        return 1;
    }

    ERR_raise_data(ERR_LIB_USER, APP_REASON, "the application's own error");
    rv = f->C_Initialize(NULL);
    if (rv != CKR_OK) {
        printf("C_Initialize: rv 0x%lx\n", (unsigned long)rv);
        return 1;
    }
    if (!only_ours("C_Initialize"))
        return 1;
    slot = find_slot(f, argv[2], &found);
    if (!found ||
        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
        f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], (CK_ULONG)strlen(argv[3])) != CKR_OK) {
        printf("no session on token %s\n", argv[2]);
        return 1;
    }
    {
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
            {CKA_TOKEN, &yes, sizeof(yes)},
            {CKA_VALUE, der, (CK_ULONG)der_len},
        };
        rv = f->C_CreateObject(s, t, 4, &o);
    }
    if (rv == CKR_OK) {
        printf("the policy stored a certificate it should refuse\n");
        return 1;
    }
    if (!only_ours("C_CreateObject"))
        return 1;
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    if (!only_ours("C_Finalize"))
        return 1;
    printf("kept\n");
    return 0;
}
