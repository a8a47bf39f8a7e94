/*
 * The workers that run the pipeline over many tokens in parallel.
 */
#include "station/station.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct work {
    tool_run *run;
    tool_token **tokens;
    size_t n;
    atomic_size_t next;
    tool_work_fn fn;
    void *user;
    tool_result *results;
    void (*done)(tool_result *res, void *user);
} work;

static void *worker(void *arg)
{
    work *w = arg;
    size_t i;

    while ((i = atomic_fetch_add(&w->next, 1)) < w->n) {
        double t0 = tool_now_ms();
        w->fn(w->run, w->tokens[i], &w->results[i], w->user);
        w->results[i].ms = tool_now_ms() - t0;
        if (w->done)
            w->done(&w->results[i], w->user);
    }
    return NULL;
}

/*
 * Each token is its own device: on real hardware a worker mostly waits for
 * its token, so parallelism pays up to one worker per token. Software tokens
 * are CPU-bound, where more workers than cores cost little. Hence the default
 * of one worker per token, bounded so a large hub does not start hundreds of
 * threads.
 */
int tool_default_jobs(size_t ntokens)
{
    if (ntokens == 0)
        return 1;
    return ntokens < 64 ? (int)ntokens : 64;
}

void tool_station_run(tool_run *run, tool_token **tokens, size_t n, int jobs, tool_work_fn fn,
                      void *user, tool_result *results, void (*done)(tool_result *res, void *user))
{
    work w = {.run = run,
              .tokens = tokens,
              .n = n,
              .fn = fn,
              .user = user,
              .results = results,
              .done = done};
    pthread_t *th;
    int i, started = 0;

    atomic_init(&w.next, 0);
    if (jobs < 1)
        jobs = 1;
    if ((size_t)jobs > n)
        jobs = n ? (int)n : 1;
    if (jobs == 1) {
        worker(&w);
        return;
    }
    th = calloc(jobs, sizeof *th);
    for (i = 0; th && i < jobs; i++) {
        if (pthread_create(&th[i], NULL, worker, &w) != 0)
            break;
        started++;
    }
    if (started == 0)
        worker(&w);
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
}

int tool_results_rc(const tool_result *results, size_t n)
{
    size_t i;

    tool_return_val_if_fail(results != NULL || n == 0, TOOL_EXIT_SOME_FAILED);
    for (i = 0; i < n; i++)
        if (results[i].kind == TOOL_RES_FAILED || results[i].kind == TOOL_RES_RENEW)
            return TOOL_EXIT_SOME_FAILED;
    return TOOL_EXIT_OK;
}

int tool_station_run_all(tool_run *run, tool_token **tokens, size_t n, int jobs, tool_work_fn fn,
                         void *user, tool_result **results)
{
    tool_result *res = NULL;
    int rc = TOOL_EXIT_SOME_FAILED;

    if (results)
        *results = NULL;
    tool_return_val_if_fail(run != NULL && fn != NULL && (tokens != NULL || n == 0),
                            TOOL_EXIT_SOME_FAILED);
    res = calloc(n ? n : 1, sizeof *res);
    if (!res)
        goto out;
    tool_station_run(run, tokens, n, jobs ? jobs : tool_default_jobs(n), fn, user, res, NULL);
    rc = tool_results_rc(res, n);
    if (results) {
        *results = res;
        res = NULL;
    }
out:
    free(res);
    return rc;
}
