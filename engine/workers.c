/* workers.c - the worker pool behind the daemon.
 *
 * Design. One mutex guards the queue, the stop flag and every counter; it is only held for O(1) work,
 * never across a callback, so submitters, workers and stats readers each wait at most a few loads.
 * - Queue: a ring of queue_cap job pointers allocated with the pool, so submit never allocates; a full
 *   ring refuses at once. Workers sleep on `work` and each submit wakes one.
 * - Deadlines: checked when a worker dequeues a job, the last moment it could still be skipped; a late
 *   job gets its expired callback instead of run. No timer thread: a late job is answered when a worker
 *   frees up, which is also when it would have run.
 * - Startup: each worker creates its state on its own thread and reports on `ready`; eng_workers_new
 *   waits for all, so a failed state_new is an error for the caller, not a half-started pool.
 * - Stop: sets `stopping` (submits refused from then on). Without drain the whole queue is detached
 *   under the lock by zeroing its count; no submit can refill the ring after `stopping`, so the stopping
 *   thread then walks the detached slots without the lock and calls each cancelled callback. Workers
 *   exit once they find the queue empty and `stopping` set, so with drain they run the queue out first.
 *   Finally every thread is joined. */
#include "eng_thread.h"
#include "workers.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
    struct eng_workers *pool;
    pthread_t thread;
    int index;
    int init_rc;         /* state_new's result, valid once the worker counted itself in pool->ready */
    struct eng_err err;  /* what state_new reported */
};

struct eng_workers {
    struct eng_workers_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t work;  /* signalled: a job was queued, or stopping was set */
    pthread_cond_t ready; /* signalled: a worker finished state_new */

    /* Guarded by lock. */
    struct eng_job **ring;
    size_t head, count;
    int stopping;
    int n_ready; /* workers that have finished state_new, successfully or not */
    struct eng_workers_stats st;

    /* Owned by the thread that calls new/stop/free. */
    struct worker *workers;
    int n_started; /* threads actually created (and so to be joined) */
    int joined;
};

uint64_t eng_workers_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ns_to_ms(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e6 : 0.0;
}

double eng_workers_job_run_ms(const struct eng_job *job)
{
    return ns_to_ms(job->started_ns, eng_workers_now_ns());
}

/* ---- the queue (callers hold pool->lock) -------------------------------------------------------- */

static void queue_push(struct eng_workers *pool, struct eng_job *job)
{
    pool->ring[(pool->head + pool->count) % pool->cfg.queue_cap] = job;
    pool->count++;
}

static struct eng_job *queue_pop(struct eng_workers *pool)
{
    struct eng_job *job = pool->ring[pool->head];
    pool->head = (pool->head + 1) % pool->cfg.queue_cap;
    pool->count--;
    return job;
}

/* ---- a worker ------------------------------------------------------------------------------------ */

/* Blocks until there is a job or the pool is stopping with nothing left; returns NULL for the latter.
 * Marks the worker busy while it holds the lock, so stats never show a job that is nowhere. */
static struct eng_job *worker_next(struct eng_workers *pool)
{
    pthread_mutex_lock(&pool->lock);
    while (pool->count == 0 && !pool->stopping)
        pthread_cond_wait(&pool->work, &pool->lock);
    struct eng_job *job = pool->count ? queue_pop(pool) : NULL;
    if (job)
        pool->st.busy++;
    pthread_mutex_unlock(&pool->lock);
    return job;
}

/* Runs or expires one job. The job is not touched after its callback starts: it may be freed by then. */
static void worker_do(struct worker *w, struct eng_job *job, void *state)
{
    const uint64_t now = eng_workers_now_ns();
    const int late = job->deadline_ns != 0 && now >= job->deadline_ns;
    job->started_ns = now;
    job->queue_ms = ns_to_ms(job->submitted_ns, now);
    job->worker = w->index;
    if (late)
        job->expired(job);
    else
        job->run(job, state);

    struct eng_workers *pool = w->pool;
    pthread_mutex_lock(&pool->lock);
    pool->st.busy--;
    if (late)
        pool->st.expired++;
    else
        pool->st.completed++;
    pthread_mutex_unlock(&pool->lock);
}

/* Reports state_new's outcome to eng_workers_new, which waits for every worker. */
static void worker_report_ready(struct worker *w, int rc)
{
    struct eng_workers *pool = w->pool;
    pthread_mutex_lock(&pool->lock);
    w->init_rc = rc;
    pool->n_ready++;
    pthread_cond_signal(&pool->ready);
    pthread_mutex_unlock(&pool->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct eng_workers_config *cfg = &w->pool->cfg;
    void *state = NULL;
    const int rc = cfg->state_new ? cfg->state_new(w->index, cfg->arg, &state, &w->err) : 0;
    worker_report_ready(w, rc);
    if (rc != 0)
        return NULL;

    struct eng_job *job;
    while ((job = worker_next(w->pool)) != NULL)
        worker_do(w, job, state);

    if (cfg->state_free)
        cfg->state_free(w->index, cfg->arg, state);
    return NULL;
}

/* ---- creation ------------------------------------------------------------------------------------ */

static int config_check(const struct eng_workers_config *cfg, struct eng_err *err)
{
    if (!cfg)
        return eng_err_set(err, ENG_ERR_INVALID, "workers", "no configuration");
    if (cfg->workers < 1 || cfg->workers > ENG_WORKERS_MAX)
        return eng_err_set(err, ENG_ERR_INVALID, "workers", "workers must be 1..%d, got %d",
                           ENG_WORKERS_MAX, cfg->workers);
    if (cfg->queue_cap < 1)
        return eng_err_set(err, ENG_ERR_INVALID, "workers", "queue capacity must be at least 1");
    return 0;
}

/* Allocates the pool and its sync objects; no threads yet. */
static struct eng_workers *pool_alloc(const struct eng_workers_config *cfg, struct eng_err *err)
{
    struct eng_workers *pool = calloc(1, sizeof *pool);
    if (!pool) {
        eng_err_set(err, ENG_ERR_NOMEM, "workers", "out of memory");
        return NULL;
    }
    pool->cfg = *cfg;
    pool->ring = calloc(cfg->queue_cap, sizeof *pool->ring);
    pool->workers = calloc((size_t)cfg->workers, sizeof *pool->workers);
    if (!pool->ring || !pool->workers) {
        free(pool->ring);
        free(pool->workers);
        free(pool);
        eng_err_set(err, ENG_ERR_NOMEM, "workers", "out of memory for a queue of %zu jobs",
                    cfg->queue_cap);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pthread_cond_init(&pool->ready, NULL);
    pool->st.workers = cfg->workers;
    pool->st.capacity = cfg->queue_cap;
    return pool;
}

/* Creates the threads with asynchronous signals blocked (eng_thread.h), so a SIGTERM is delivered to a
 * server thread that will act on it, not to a worker busy in sgemm. */
static int pool_spawn(struct eng_workers *pool, struct eng_err *err)
{
    int rc = 0;
    for (int i = 0; i < pool->cfg.workers; i++) {
        struct worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        rc = eng_thread_start(&w->thread, worker_main, w);
        if (rc != 0)
            break;
        pool->n_started++;
    }
    if (rc != 0)
        return eng_err_set(err, ENG_ERR_NOMEM, "workers", "cannot start worker %d of %d: %s",
                           pool->n_started, pool->cfg.workers, strerror(rc));
    return 0;
}

/* Waits until every started worker has run state_new; returns the index of the first that failed,
 * or -1. */
static int pool_wait_ready(struct eng_workers *pool)
{
    pthread_mutex_lock(&pool->lock);
    while (pool->n_ready < pool->n_started)
        pthread_cond_wait(&pool->ready, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_started; i++)
        if (pool->workers[i].init_rc != 0)
            return i;
    return -1;
}

/* Copies a failed worker's error to the caller's, naming the worker when state_new named no place. */
static void report_state_error(const struct worker *w, struct eng_err *err)
{
    if (!err)
        return;
    *err = w->err;
    if (err->kind == ENG_ERR_NONE)
        err->kind = ENG_ERR_INVALID;
    if (err->msg[0] == '\0')
        snprintf(err->msg, sizeof err->msg, "worker state creation failed");
    if (err->where[0] == '\0')
        snprintf(err->where, sizeof err->where, "worker %d", w->index);
}

struct eng_workers *eng_workers_new(const struct eng_workers_config *cfg, struct eng_err *err)
{
    if (config_check(cfg, err) != 0)
        return NULL;
    struct eng_workers *pool = pool_alloc(cfg, err);
    if (!pool)
        return NULL;
    if (pool_spawn(pool, err) != 0) {
        pool_wait_ready(pool); /* let the started ones finish state_new before stopping them */
        eng_workers_free(pool);
        return NULL;
    }
    const int failed = pool_wait_ready(pool);
    if (failed >= 0) {
        report_state_error(&pool->workers[failed], err);
        eng_workers_free(pool);
        return NULL;
    }
    return pool;
}

/* ---- submitting, stopping ------------------------------------------------------------------------ */

enum eng_workers_submit_status eng_workers_submit(struct eng_workers *pool, struct eng_job *job)
{
    assert(pool && job && job->run && job->expired && job->cancelled);
    /* Stamped before taking the lock, to keep the lock hold short; harmless if the job is refused. */
    job->submitted_ns = eng_workers_now_ns();
    enum eng_workers_submit_status status = ENG_WORKERS_OK;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pool->st.rejected_stopping++;
        status = ENG_WORKERS_STOPPING;
    } else if (pool->count == pool->cfg.queue_cap) {
        pool->st.rejected_full++;
        status = ENG_WORKERS_FULL;
    } else {
        queue_push(pool, job);
        pool->st.submitted++;
        pthread_cond_signal(&pool->work);
    }
    pthread_mutex_unlock(&pool->lock);
    return status;
}

/* Calls cancelled on n detached jobs starting at ring slot head. Runs without the lock: after
 * `stopping` no submit writes the ring and workers see an empty queue, so the slots are ours. */
static void cancel_detached(struct eng_workers *pool, size_t head, size_t n)
{
    const uint64_t now = eng_workers_now_ns();
    for (size_t i = 0; i < n; i++) {
        struct eng_job *job = pool->ring[(head + i) % pool->cfg.queue_cap];
        job->started_ns = now;
        job->queue_ms = ns_to_ms(job->submitted_ns, now);
        job->worker = -1;
        job->cancelled(job);
    }
}

void eng_workers_stop(struct eng_workers *pool, int drain)
{
    if (pool->joined)
        return;
    size_t head = 0, n = 0;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    if (!drain) {
        head = pool->head;
        n = pool->count;
        pool->count = 0;
        pool->st.cancelled += n;
    }
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);

    cancel_detached(pool, head, n);
    for (int i = 0; i < pool->n_started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pool->joined = 1;
}

void eng_workers_free(struct eng_workers *pool)
{
    if (!pool)
        return;
    eng_workers_stop(pool, 0);
    pthread_cond_destroy(&pool->ready);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool->ring);
    free(pool);
}

/* ---- observing ----------------------------------------------------------------------------------- */

void eng_workers_stats_read(struct eng_workers *pool, struct eng_workers_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    *out = pool->st;
    out->queued = pool->count;
    pthread_mutex_unlock(&pool->lock);
}

size_t eng_workers_depth(struct eng_workers *pool)
{
    pthread_mutex_lock(&pool->lock);
    const size_t n = pool->count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

size_t eng_workers_capacity(const struct eng_workers *pool)
{
    return pool->cfg.queue_cap;
}
