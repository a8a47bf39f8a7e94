/* The client layer's object search and attribute reads, against a fake
 * module whose behaviour each test sets: batches shorter than asked for,
 * errors in the middle of a search, values that change between calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "p11c.h"

#define NOBJ 150

static struct {
    CK_ULONG klass[NOBJ];
    int active, finals;
    CK_ULONG cursor, max_batch;
    CK_ULONG want_class;
    int match_any;
    CK_RV fail_find_at; /* a C_FindObjects call number that fails, 0: none */
    int calls;
    CK_RV final_rv;
    /* C_GetAttributeValue */
    const char *value;
    CK_ULONG grow_by;   /* added to the length on the second call */
    int unavailable_ok; /* CKR_OK with CK_UNAVAILABLE_INFORMATION */
    CK_RV attr_rv;
    int attr_calls;
} fk;

static CK_RV fk_find_init(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    (void)s;
    if (fk.active)
        return CKR_OPERATION_ACTIVE;
    fk.match_any = n == 0;
    if (n > 0) {
        assert_int_equal(t[0].type, CKA_CLASS);
        memcpy(&fk.want_class, t[0].pValue, sizeof(CK_ULONG));
    }
    fk.active = 1;
    fk.cursor = 0;
    return CKR_OK;
}

static CK_RV fk_find(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR got)
{
    (void)s;
    *got = 0;
    if (!fk.active)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (fk.fail_find_at != 0 && ++fk.calls == (int)fk.fail_find_at)
        return CKR_DEVICE_ERROR;
    while (fk.cursor < NOBJ && *got < max && *got < fk.max_batch) {
        if (fk.match_any || fk.klass[fk.cursor] == fk.want_class)
            out[(*got)++] = 1000 + fk.cursor;
        fk.cursor++;
    }
    return CKR_OK;
}

static CK_RV fk_find_final(CK_SESSION_HANDLE s)
{
    (void)s;
    if (!fk.active)
        return CKR_OPERATION_NOT_INITIALIZED;
    fk.active = 0;
    fk.finals++;
    return fk.final_rv;
}

static CK_RV fk_get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    CK_ULONG len = strlen(fk.value);

    (void)s;
    (void)o;
    assert_int_equal(n, 1);
    fk.attr_calls++;
    if (fk.attr_rv != CKR_OK) {
        t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return fk.attr_rv;
    }
    if (fk.unavailable_ok) {
        t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return CKR_OK;
    }
    if (fk.attr_calls > 1)
        len += fk.grow_by;
    if (t->pValue == NULL) {
        t->ulValueLen = len;
        return CKR_OK;
    }
    if (fk.grow_by == 0 && t->ulValueLen < len)
        return CKR_BUFFER_TOO_SMALL;
    /* a module that grew the value and says CKR_OK anyway (the buffer is
     * not written past its size: the check is on the length it reports) */
    memcpy(t->pValue, fk.value,
           strlen(fk.value) < t->ulValueLen ? strlen(fk.value) : t->ulValueLen);
    t->ulValueLen = len;
    return CKR_OK;
}

static CK_FUNCTION_LIST fl;

static int setup(void **state)
{
    CK_ULONG i;

    (void)state;
    memset(&fk, 0, sizeof fk);
    for (i = 0; i < NOBJ; i++)
        fk.klass[i] = i % 3 == 0 ? CKO_CERTIFICATE : CKO_PRIVATE_KEY;
    fk.max_batch = 1000;
    fk.value = "label";
    memset(&fl, 0, sizeof fl);
    fl.C_FindObjectsInit = fk_find_init;
    fl.C_FindObjects = fk_find;
    fl.C_FindObjectsFinal = fk_find_final;
    fl.C_GetAttributeValue = fk_get_attr;
    return 0;
}

static void test_find_all_batches(void **state)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0, i;

    (void)state;
    /* more matches (50) than one batch of 64 handles would be if short
     * batches ended the search: the module hands out 7 at a time */
    fk.max_batch = 7;
    assert_int_equal(p11c_find_all(&fl, 1, t, 1, &objs, &n), CKR_OK);
    assert_int_equal(n, 50);
    for (i = 0; i < n; i++)
        assert_int_equal(objs[i], 1000 + 3 * i);
    assert_int_equal(fk.finals, 1);
    assert_false(fk.active);
    free(objs);

    /* no template: every object, in batches of 64 */
    fk.max_batch = 1000;
    assert_int_equal(p11c_find_all(&fl, 1, NULL, 0, &objs, &n), CKR_OK);
    assert_int_equal(n, NOBJ);
    free(objs);
}

static void test_find_all_none(void **state)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_OBJECT_HANDLE *objs = (CK_OBJECT_HANDLE *)&cls;
    CK_ULONG n = 7;

    (void)state;
    assert_int_equal(p11c_find_all(&fl, 1, t, 1, &objs, &n), CKR_OK);
    assert_null(objs);
    assert_int_equal(n, 0);
    assert_int_equal(fk.finals, 1);
}

/* An error mid-search: nothing handed out, and the search is still ended
 * (the next one on the session works). */
static void test_find_all_error_ends_search(void **state)
{
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG n = 0;

    (void)state;
    fk.max_batch = 10;
    fk.fail_find_at = 3;
    assert_int_equal(p11c_find_all(&fl, 1, NULL, 0, &objs, &n), CKR_DEVICE_ERROR);
    assert_null(objs);
    assert_int_equal(n, 0);
    assert_int_equal(fk.finals, 1);
    fk.fail_find_at = 0;
    assert_int_equal(p11c_find_all(&fl, 1, NULL, 0, &objs, &n), CKR_OK);
    assert_int_equal(n, NOBJ);
    free(objs);

    /* C_FindObjectsFinal's own error is the search's */
    fk.final_rv = CKR_SESSION_HANDLE_INVALID;
    assert_int_equal(p11c_find_all(&fl, 1, NULL, 0, &objs, &n), CKR_SESSION_HANDLE_INVALID);
    assert_null(objs);
    assert_int_equal(n, 0);
}

static void test_find_first(void **state)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_OBJECT_HANDLE h = 0;

    (void)state;
    assert_int_equal(p11c_find_first(&fl, 1, t, 1, &h), CKR_OK);
    assert_int_equal(h, 1001);
    assert_int_equal(fk.finals, 1);
    cls = CKO_DATA;
    assert_int_equal(p11c_find_first(&fl, 1, t, 1, &h), CKR_OK);
    assert_int_equal(h, CK_INVALID_HANDLE);
    assert_int_equal(p11c_find_first(&fl, 1, t, 1, NULL), CKR_ARGUMENTS_BAD);
    assert_int_equal(p11c_find_first(NULL, 1, t, 1, &h), CKR_ARGUMENTS_BAD);
    assert_int_equal(h, CK_INVALID_HANDLE);
}

static void test_attr_get(void **state)
{
    unsigned char *v = (unsigned char *)"x";
    CK_ULONG len = 9;

    (void)state;
    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_LABEL, &v, &len), CKR_OK);
    assert_int_equal(len, 5);
    /* NUL-terminated: usable as text */
    assert_string_equal((char *)v, "label");
    free(v);

    /* empty: still a buffer of the caller's */
    fk.value = "";
    fk.attr_calls = 0;
    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_ID, &v, &len), CKR_OK);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_int_equal(v[0], 0);
    free(v);
}

static void test_attr_get_failures(void **state)
{
    unsigned char *v = (unsigned char *)"x";
    CK_ULONG len = 9;

    (void)state;
    fk.attr_rv = CKR_ATTRIBUTE_SENSITIVE;
    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_VALUE, &v, &len), CKR_ATTRIBUTE_SENSITIVE);
    assert_null(v);
    assert_int_equal(len, 0);

    /* one CKR for "no value" under CKR_OK, whichever part asks */
    fk.attr_rv = CKR_OK;
    fk.unavailable_ok = 1;
    v = (unsigned char *)"x";
    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_VALUE, &v, &len), CKR_ATTRIBUTE_TYPE_INVALID);
    assert_null(v);

    /* the value grew between the two calls and the module said CKR_OK */
    fk.unavailable_ok = 0;
    fk.grow_by = 10;
    fk.attr_calls = 0;
    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_VALUE, &v, &len), CKR_GENERAL_ERROR);
    assert_null(v);
    assert_int_equal(len, 0);

    assert_int_equal(p11c_attr_get(&fl, 1, 1000, CKA_VALUE, NULL, &len), CKR_ARGUMENTS_BAD);
    assert_int_equal(p11c_attr_get(NULL, 1, 1000, CKA_VALUE, &v, &len), CKR_ARGUMENTS_BAD);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_find_all_batches, setup),
        cmocka_unit_test_setup(test_find_all_none, setup),
        cmocka_unit_test_setup(test_find_all_error_ends_search, setup),
        cmocka_unit_test_setup(test_find_first, setup),
        cmocka_unit_test_setup(test_attr_get, setup),
        cmocka_unit_test_setup(test_attr_get_failures, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
