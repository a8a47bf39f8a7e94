/* The slot event queue behind C_WaitForSlotEvent. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "events.h"

static int rescans;
static mod_events *pushing_to;

static void rescan(void *ctx)
{
    (void)ctx;
    /* the watcher's third scan "finds" a token in slot 7 */
    if (__atomic_add_fetch(&rescans, 1, __ATOMIC_SEQ_CST) == 3)
        mod_events_push(pushing_to, 7);
}

static void test_dont_block(void **state)
{
    mod_events *e = mod_events_new(rescan, NULL, 10);
    CK_SLOT_ID slot = 0;

    (void)state;
    assert_int_equal(mod_events_wait(e, CKF_DONT_BLOCK, &slot), CKR_NO_EVENT);
    mod_events_push(e, 4);
    mod_events_push(e, 5);
    mod_events_push(e, 4); /* already queued: one event per slot */
    assert_int_equal(mod_events_wait(e, CKF_DONT_BLOCK, &slot), CKR_OK);
    assert_int_equal(slot, 4);
    assert_int_equal(mod_events_wait(e, CKF_DONT_BLOCK, &slot), CKR_OK);
    assert_int_equal(slot, 5);
    assert_int_equal(mod_events_wait(e, CKF_DONT_BLOCK, &slot), CKR_NO_EVENT);
    mod_events_stop(e);
    mod_events_free(e);
}

static void test_blocking_wait_sees_watcher_event(void **state)
{
    mod_events *e = mod_events_new(rescan, NULL, 10);
    CK_SLOT_ID slot = 0;

    (void)state;
    rescans = 0;
    pushing_to = e;
    /* nothing queued: starts the watcher and blocks until its scan pushes */
    assert_int_equal(mod_events_wait(e, 0, &slot), CKR_OK);
    assert_int_equal(slot, 7);
    assert_true(__atomic_load_n(&rescans, __ATOMIC_SEQ_CST) >= 3);
    mod_events_stop(e);
    mod_events_free(e);
}

typedef struct waiter {
    mod_events *e;
    CK_RV rv;
    int returned; /* atomic: mod_events_wait came back */
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    CK_SLOT_ID slot;
    w->rv = mod_events_wait(w->e, 0, &slot);
    __atomic_store_n(&w->returned, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The watcher thread is started only by a waiter that is about to block
 * (nothing queued, not stopping): its first scan proves the waiter is in. */
static int scans;

static void counting(void *ctx)
{
    (void)ctx;
    __atomic_add_fetch(&scans, 1, __ATOMIC_SEQ_CST);
}

/* Polls flag for up to ms milliseconds. */
static int becomes_set(int *flag, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST))
            return 1;
        usleep(1000);
    }
    return __atomic_load_n(flag, __ATOMIC_SEQ_CST);
}

static void test_stop_wakes_waiters(void **state)
{
    waiter w = {mod_events_new(counting, NULL, 10), CKR_OK, 0};
    CK_SLOT_ID slot;
    pthread_t t;

    (void)state;
    scans = 0;
    pthread_create(&t, NULL, wait_thread, &w);
    /* The waiter must really be blocked when stop comes: its watcher has
     * scanned, and it has not returned (nothing was queued). Without this the
     * test would pass as well when stop ran before the waiter started. */
    assert_true(becomes_set(&scans, 5000));
    usleep(30000); /* a few more watcher intervals with nothing to report */
    assert_false(__atomic_load_n(&w.returned, __ATOMIC_SEQ_CST));
    mod_events_stop(w.e);
    /* stop wakes it (a lost wake-up would leave it blocked: fail, not hang) */
    assert_true(becomes_set(&w.returned, 5000));
    pthread_join(t, NULL);
    assert_int_equal(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    /* and later callers are told the same, without blocking */
    assert_int_equal(mod_events_wait(w.e, 0, &slot), CKR_CRYPTOKI_NOT_INITIALIZED);
    mod_events_free(w.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dont_block),
        cmocka_unit_test(test_blocking_wait_sees_watcher_event),
        cmocka_unit_test(test_stop_wakes_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
