/* Handle mapping and the slot list: handles and slot IDs never collide across
 * backends, and a present token keeps its slot ID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "handles.h"
#include "slots.h"

/* ---- handles ---------------------------------------------------------------- */

static void test_sessions_distinct_across_slots(void **state)
{
    mod_handles *h = mod_handles_new();
    CK_SESSION_HANDLE a, b;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE bs;

    (void)state;
    /* both backends number their first session 1 */
    a = mod_handles_add_session(h, 1, 1);
    b = mod_handles_add_session(h, 2, 1);
    assert_true(a != 0 && b != 0 && a != b);
    assert_true(mod_handles_session(h, a, &slot, &bs));
    assert_int_equal(slot, 1);
    assert_int_equal(bs, 1);
    assert_true(mod_handles_session(h, b, &slot, &bs));
    assert_int_equal(slot, 2);
    assert_int_equal(bs, 1);
    assert_true(mod_handles_remove_session(h, a));
    assert_false(mod_handles_session(h, a, &slot, &bs));
    assert_false(mod_handles_remove_session(h, a));
    assert_true(mod_handles_session(h, b, &slot, &bs));
    mod_handles_free(h);
}

static void test_close_all_sessions_of_one_slot(void **state)
{
    mod_handles *h = mod_handles_new();
    CK_SESSION_HANDLE s[30];
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE bs;
    int i;

    (void)state;
    for (i = 0; i < 30; i++)
        s[i] = mod_handles_add_session(h, 1 + (i % 3), 100 + i);
    /* All 30 open (the module has no session count of its own to ask: it
     * was dead code, issue 9), then exactly slot 2's ten gone. */
    for (i = 0; i < 30; i++)
        assert_true(mod_handles_session(h, s[i], &slot, &bs));
    assert_int_equal(mod_handles_remove_slot_sessions(h, 2), 10);
    for (i = 0; i < 30; i++)
        assert_int_equal(mod_handles_session(h, s[i], &slot, &bs), (i % 3) != 1);
    /* nothing left of slot 2 to remove, and the other 20 are still there */
    assert_int_equal(mod_handles_remove_slot_sessions(h, 2), 0);
    mod_handles_free(h);
}

static void test_object_handles(void **state)
{
    mod_handles *h = mod_handles_new();
    CK_OBJECT_HANDLE o1, o1again, o2, o3;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE bo;

    (void)state;
    o1 = mod_handles_object(h, 1, 5);
    o1again = mod_handles_object(h, 1, 5);
    o2 = mod_handles_object(h, 2, 5); /* same backend number, other token */
    o3 = mod_handles_object(h, 1, 6);
    assert_true(o1 != 0);
    assert_int_equal(o1, o1again); /* stable across C_FindObjects calls */
    assert_true(o1 != o2 && o1 != o3 && o2 != o3);
    assert_true(mod_handles_lookup_object(h, o2, &slot, &bo));
    assert_int_equal(slot, 2);
    assert_int_equal(bo, 5);
    mod_handles_forget_object(h, o1);
    assert_false(mod_handles_lookup_object(h, o1, &slot, &bo));
    /* a forgotten object asked for again gets a new handle, never the old one */
    assert_true(mod_handles_object(h, 1, 5) != o1);
    mod_handles_forget_slot_objects(h, 1);
    assert_false(mod_handles_lookup_object(h, o3, &slot, &bo));
    assert_true(mod_handles_lookup_object(h, o2, &slot, &bo));
    mod_handles_free(h);
}

static void test_many_objects_no_collision(void **state)
{
    enum { SLOTS = 64, PER = 200 };
    static CK_OBJECT_HANDLE got[SLOTS * PER];
    mod_handles *h = mod_handles_new();
    size_t i, j;

    (void)state;
    for (i = 0; i < SLOTS; i++)
        for (j = 0; j < PER; j++)
            got[i * PER + j] = mod_handles_object(h, i + 1, j + 1);
    for (i = 0; i < SLOTS * PER; i++) {
        CK_SLOT_ID slot;
        CK_OBJECT_HANDLE bo;
        assert_true(got[i] != 0);
        assert_true(mod_handles_lookup_object(h, got[i], &slot, &bo));
        assert_int_equal(slot, i / PER + 1);
        assert_int_equal(bo, i % PER + 1);
    }
    /* handles are handed out from one counter: all distinct */
    for (i = 1; i < SLOTS * PER; i++)
        assert_true(got[i] > got[i - 1]);
    mod_handles_free(h);
}

/* ---- slots over two mock backends ------------------------------------------ */

typedef struct mock {
    CK_SLOT_ID ids[8];
    const char *serials[8];
    int present[8];
    int n;
    int fail_list;
} mock;

static mock ma, mb;

static CK_RV mock_list(mock *m, CK_SLOT_ID *list, CK_ULONG *count)
{
    CK_ULONG n = 0;
    int i;

    if (m->fail_list)
        return CKR_DEVICE_ERROR;
    for (i = 0; i < m->n; i++) {
        if (!m->present[i])
            continue;
        if (list != NULL && n < *count)
            list[n] = m->ids[i];
        n++;
    }
    if (list != NULL && n > *count) {
        *count = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    *count = n;
    return CKR_OK;
}

static int mock_index(mock *m, CK_SLOT_ID id)
{
    int i;
    for (i = 0; i < m->n; i++)
        if (m->ids[i] == id)
            return i;
    return -1;
}

static CK_RV mock_slot(mock *m, CK_SLOT_ID id, CK_SLOT_INFO *si)
{
    int i = mock_index(m, id);
    if (i < 0)
        return CKR_SLOT_ID_INVALID;
    memset(si, ' ', sizeof(*si));
    si->flags = m->present[i] ? CKF_TOKEN_PRESENT : 0;
    return CKR_OK;
}

static CK_RV mock_token(mock *m, CK_SLOT_ID id, CK_TOKEN_INFO *ti)
{
    int i = mock_index(m, id);
    if (i < 0 || !m->present[i])
        return CKR_TOKEN_NOT_PRESENT;
    memset(ti, ' ', sizeof(*ti));
    memcpy(ti->label, "mock", 4);
    memcpy(ti->serialNumber, m->serials[i], strlen(m->serials[i]));
    ti->ulMinPinLen = 4;
    ti->ulMaxPinLen = 32;
    return CKR_OK;
}

#define MOCK_FUNCS(M)                                                                              \
    static CK_RV M##_list(CK_BBOOL p, CK_SLOT_ID *l, CK_ULONG *c)                                  \
    {                                                                                              \
        (void)p;                                                                                   \
        return mock_list(&M, l, c);                                                                \
    }                                                                                              \
    static CK_RV M##_slot(CK_SLOT_ID id, CK_SLOT_INFO *si)                                         \
    {                                                                                              \
        return mock_slot(&M, id, si);                                                              \
    }                                                                                              \
    static CK_RV M##_token(CK_SLOT_ID id, CK_TOKEN_INFO *ti)                                       \
    {                                                                                              \
        return mock_token(&M, id, ti);                                                             \
    }
MOCK_FUNCS(ma)
MOCK_FUNCS(mb)

static CK_FUNCTION_LIST fa, fb;
static mod_backend backends[2];
static int inserted, removed, noted;
static CK_SLOT_ID last_changed;

static void changed(void *ctx, const mod_slot *slot, int what)
{
    (void)ctx;
    if (what == MOD_SLOT_SERIAL_NOTE) {
        noted++;
        return;
    }
    if (what == MOD_SLOT_INSERTED)
        inserted++;
    else
        removed++;
    last_changed = slot->id;
}

static int setup_mocks(void **state)
{
    (void)state;
    memset(&ma, 0, sizeof(ma));
    memset(&mb, 0, sizeof(mb));
    /* both backends use slot IDs 0 and 1 */
    ma = (mock){{0, 1}, {"AAAA0001", "AAAA0002"}, {1, 1}, 2, 0};
    mb = (mock){{0, 1}, {"BBBB0001", "BBBB0002"}, {1, 1}, 2, 0};
    fa.C_GetSlotList = ma_list;
    fa.C_GetSlotInfo = ma_slot;
    fa.C_GetTokenInfo = ma_token;
    fb.C_GetSlotList = mb_list;
    fb.C_GetSlotInfo = mb_slot;
    fb.C_GetTokenInfo = mb_token;
    memset(backends, 0, sizeof(backends));
    backends[0] = (mod_backend){.name = "a", .funcs = &fa, .initialized = 1};
    backends[1] = (mod_backend){.name = "b", .funcs = &fb, .initialized = 1};
    inserted = removed = noted = 0;
    return 0;
}

static CK_SLOT_ID id_of(mod_slots *s, const char *serial)
{
    CK_SLOT_ID list[16];
    CK_ULONG n = 16, i;

    assert_int_equal(mod_slots_list(s, list, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        mod_slot *t = mod_slots_get(s, list[i]);
        if (strcmp(t->serial_text, serial) == 0)
            return t->id;
    }
    return 0;
}

static void test_slot_ids_distinct_across_backends(void **state)
{
    mod_slots *s = mod_slots_new();
    CK_SLOT_ID list[8];
    CK_ULONG n = 8;
    mod_slot *t;

    (void)state;
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(mod_slots_list(s, list, &n), CKR_OK);
    assert_int_equal(n, 4);
    assert_true(list[0] != list[1] && list[0] != list[2] && list[0] != list[3] &&
                list[1] != list[2] && list[1] != list[3] && list[2] != list[3]);
    t = mod_slots_get(s, id_of(s, "BBBB0002"));
    assert_non_null(t);
    assert_int_equal(t->backend, 1);
    assert_int_equal(t->bslot, 1);
    assert_int_equal(t->serial_len, 8);
    assert_memory_equal(t->serial, "BBBB0002", 8);
    assert_int_equal(inserted + removed, 0); /* the first scan is not an event */

    /* size query, then too small a buffer */
    n = 0;
    assert_int_equal(mod_slots_list(s, NULL, &n), CKR_OK);
    assert_int_equal(n, 4);
    n = 2;
    assert_int_equal(mod_slots_list(s, list, &n), CKR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4);
    mod_slots_free(s);
}

static void test_slot_ids_stable_while_present(void **state)
{
    mod_slots *s = mod_slots_new();
    CK_SLOT_ID a1, a2, b1, b2, a1new;

    (void)state;
    mod_slots_refresh(s, backends, 2, changed, NULL);
    a1 = id_of(s, "AAAA0001");
    a2 = id_of(s, "AAAA0002");
    b1 = id_of(s, "BBBB0001");
    b2 = id_of(s, "BBBB0002");

    ma.present[0] = 0; /* token AAAA0001 pulled */
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(removed, 1);
    assert_int_equal(last_changed, a1);
    assert_int_equal(id_of(s, "AAAA0001"), 0);
    assert_false(mod_slot_present(mod_slots_get(s, a1)));
    assert_int_equal(id_of(s, "AAAA0002"), a2);
    assert_int_equal(id_of(s, "BBBB0001"), b1);
    assert_int_equal(id_of(s, "BBBB0002"), b2);

    ma.present[0] = 1; /* and back: a new ID, the old one stays dead */
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(inserted, 1);
    a1new = id_of(s, "AAAA0001");
    assert_true(a1new != 0 && a1new != a1 && a1new != a2 && a1new != b1 && a1new != b2);
    assert_int_equal(last_changed, a1new);
    assert_int_equal(id_of(s, "BBBB0002"), b2);

    /* a backend whose slot list fails keeps its tokens as they were */
    mb.fail_list = 1;
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(id_of(s, "BBBB0001"), b1);
    assert_int_equal(removed, 1);
    mod_slots_free(s);
}

/* Issue 13: token_serials gives the serial of a token whose backend reports
 * a placeholder, by label; a token with its own serial keeps it and the entry
 * is noted as ignored; C_GetTokenInfo through mod_slot_token_info says the
 * module's serial. */
static void test_token_serials(void **state)
{
    static const mod_token_serial map[] = {{"mock", "MAPPED01"}};
    mod_slots *s = mod_slots_new();
    CK_TOKEN_INFO ti;
    mod_slot *t;
    CK_SLOT_ID id;

    (void)state;
    mb.serials[0] = "0000000000000000";
    backends[1].token_serials = map;
    backends[1].n_token_serials = 1;
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(noted, 2); /* one replaced, one ignored; on the first scan too */
    assert_int_equal(inserted, 0);
    id = id_of(s, "MAPPED01");
    assert_true(id != 0);
    t = mod_slots_get(s, id);
    assert_int_equal(t->serial_from_config, 1);
    assert_null(t->ignored_serial);
    assert_string_equal(t->bserial_text, "0000000000000000");
    assert_string_equal(t->label, "mock");
    assert_int_equal(mod_slot_token_info(t, &fb, &ti), CKR_OK);
    assert_memory_equal(ti.serialNumber, "MAPPED01        ", 16);
    /* its own serial stays, the entry is ignored */
    t = mod_slots_get(s, id_of(s, "BBBB0002"));
    assert_non_null(t);
    assert_int_equal(t->serial_from_config, 0);
    assert_string_equal(t->ignored_serial, "MAPPED01");
    assert_int_equal(mod_slot_token_info(t, &fb, &ti), CKR_OK);
    assert_memory_equal(ti.serialNumber, "BBBB0002        ", 16);
    /* backend a has no entry: its tokens are untouched and not noted */
    t = mod_slots_get(s, id_of(s, "AAAA0001"));
    assert_non_null(t);
    assert_int_equal(t->serial_from_config, 0);
    assert_null(t->ignored_serial);
    /* a rescan notes nothing again */
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(noted, 2);
    mod_slots_free(s);
}

static void test_uninitialised_backend_ignored(void **state)
{
    mod_slots *s = mod_slots_new();
    CK_ULONG n = 0;

    (void)state;
    backends[1].initialized = 0;
    mod_slots_refresh(s, backends, 2, changed, NULL);
    assert_int_equal(mod_slots_list(s, NULL, &n), CKR_OK);
    assert_int_equal(n, 2);
    assert_null(mod_slots_get(s, 3));
    mod_slots_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_distinct_across_slots),
        cmocka_unit_test(test_close_all_sessions_of_one_slot),
        cmocka_unit_test(test_object_handles),
        cmocka_unit_test(test_many_objects_no_collision),
        cmocka_unit_test_setup(test_slot_ids_distinct_across_backends, setup_mocks),
        cmocka_unit_test_setup(test_slot_ids_stable_while_present, setup_mocks),
        cmocka_unit_test_setup(test_token_serials, setup_mocks),
        cmocka_unit_test_setup(test_uninitialised_backend_ignored, setup_mocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
