/*
 * tokenmint watch: station mode (SUMMARY step 13, claims 8/15). Waits for
 * tokens through the module's slot events, issues each as it arrives, and
 * tells the operator with an OK/FAIL line and the terminal bell. Ctrl-C stops
 * between tokens, never inside one.
 */
#include "ca/ca.h"
#include "cli/cli.h"
#include "ui/ui.h"

#include <signal.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct seen {
    unsigned char serial[TM_SERIAL_MAX];
    size_t len;
    int present;
} seen;

static int find_seen(seen *v, size_t n, const tool_token *t)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (v[i].len == t->serial_len && memcmp(v[i].serial, t->serial, t->serial_len) == 0)
            return (int)i;
    return -1;
}

/*
 * Slot events: a waiter thread sits in a blocking C_WaitForSlotEvent and
 * counts events; the main loop waits for the count to move (in short slices,
 * so Ctrl-C is seen between tokens). C_Finalize at the end releases the
 * waiter (CKR_CRYPTOKI_NOT_INITIALIZED). A module without events makes the
 * waiter give up, and the main loop falls back to rescanning the slot list.
 */
typedef struct waiter {
    CK_FUNCTION_LIST *f; /* its own copy: the station clears st->f at close */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long events;
    int gone; /* the module cannot (or no longer) report events */
    int started;
    pthread_t th;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    for (;;) {
        CK_SLOT_ID slot;
        CK_RV rv = w->f->C_WaitForSlotEvent(0, &slot, NULL);
        pthread_mutex_lock(&w->mu);
        if (rv == CKR_OK)
            w->events++;
        else if (rv != CKR_NO_EVENT)
            w->gone = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (rv != CKR_OK && rv != CKR_NO_EVENT) {
            tool_debug("watch: slot events end: %s", p11c_ckr_name(rv));
            return NULL;
        }
    }
}

static void waiter_start(waiter *w, tool_station *st)
{
    memset(w, 0, sizeof *w);
    w->f = st->f;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = pthread_create(&w->th, NULL, waiter_main, w) == 0;
    if (!w->started)
        w->gone = 1;
}

/* Returns when a slot event came, after a rescan interval without events
 * support, or when a stop is requested. */
static void wait_event(waiter *w, unsigned long *seen)
{
    int slices = 0;

    pthread_mutex_lock(&w->mu);
    while (!stop_requested && w->events == *seen && (!w->gone || slices < 2)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        slices++;
    }
    *seen = w->events;
    pthread_mutex_unlock(&w->mu);
}

/* After C_Finalize: the waiter has returned, or (a module that keeps it
 * blocked) is left behind as the process exits. */
static void waiter_stop(waiter *w)
{
    struct timespec ts;

    if (w->started) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        if (pthread_timedjoin_np(w->th, NULL, &ts) != 0)
            pthread_detach(w->th);
    }
}

int tool_cmd_watch(int argc, char **argv)
{
    tool_parsed p;
    tool_session s;
    tool_report rep;
    seen *seen_v = NULL;
    size_t nseen = 0, i, done = 0, failed = 0;
    struct sigaction sa;
    waiter wt;
    unsigned long seen_events = 0;
    int have_waiter = 0;
    char err[600];
    int rc;

    if (!tool_parse_command(argc, argv, "watch", &p, &rc))
        return rc;
    rc = tool_session_open(&s, &p.c, TOOL_SESSION_OPERATOR | TOOL_SESSION_CA);
    if (rc != TOOL_EXIT_OK)
        goto out;
    /* The profile against the key type, the PIN file: before any token comes. */
    rc = tool_session_precheck(&s, NULL, 0, 1);
    if (rc != TOOL_EXIT_OK)
        goto out;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tool_report_init(&rep, p.c.json, 0);
    rep.tty = 0;
    waiter_start(&wt, &s.st);
    have_waiter = 1;
    if (!p.c.json)
        fprintf(stderr, "tokenmint: watching for tokens (Ctrl-C to stop)\n");
    while (!stop_requested && (!p.count || (long)done < p.count)) {
        if (!tool_station_scan(&s.st, err, sizeof err)) {
            tool_err("%s", err);
            rc = TOOL_EXIT_USAGE;
            break;
        }
        for (i = 0; i < nseen; i++)
            seen_v[i].present = 0;
        for (i = 0; i < s.st.ntokens && !stop_requested && (!p.count || (long)done < p.count);
             i++) {
            tool_token *t = &s.st.tokens[i];
            tool_result res;
            int k = find_seen(seen_v, nseen, t);
            if (k >= 0) {
                seen_v[k].present = 1;
                continue;
            }
            {
                seen *tmp = realloc(seen_v, (nseen + 1) * sizeof *seen_v);
                if (!tmp)
                    break;
                seen_v = tmp;
                memcpy(seen_v[nseen].serial, t->serial, t->serial_len);
                seen_v[nseen].len = t->serial_len;
                seen_v[nseen].present = 1;
                nseen++;
            }
            /* An empty slot's blank token (SoftHSM2 always shows one) is no
             * token to issue: noted, not counted. */
            if (!(t->info.flags & CKF_TOKEN_INITIALIZED)) {
                if (!p.c.json)
                    fprintf(stderr, "--    slot %lu: token not initialised; skipped\n",
                            (unsigned long)t->slot);
                continue;
            }
            {
                double t0 = tool_now_ms();
                tool_pipeline_issue(&s.run, t, &res);
                res.ms = tool_now_ms() - t0;
            }
            tool_report_token(&rep, &res);
            if (!p.c.json) {
                fputc('\a', stderr);
                fflush(stderr);
            }
            done++;
            if (res.kind == TOOL_RES_FAILED)
                failed++;
        }
        /* A token pulled out is forgotten: plugged in again, it is looked at again. */
        for (i = 0; i < nseen;) {
            if (!seen_v[i].present)
                seen_v[i] = seen_v[--nseen];
            else
                i++;
        }
        if (!stop_requested && (!p.count || (long)done < p.count))
            wait_event(&wt, &seen_events);
    }
    if (!p.c.json)
        fprintf(stderr, "tokenmint: stopped after %zu token%s (%zu failed)\n", done,
                done == 1 ? "" : "s", failed);
    if (failed)
        rc = TOOL_EXIT_SOME_FAILED;
out:
    free(seen_v);
    tool_session_close(&s);
    if (have_waiter)
        waiter_stop(&wt);
    tool_parsed_free(&p);
    return rc;
}
