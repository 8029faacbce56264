/* workers.h - the engine's worker pool: N threads, each with private state, fed by a bounded FIFO.
 *
 * The HTTP layer submits jobs and never runs inference itself. Each worker creates its own state on its
 * own thread (e.g. one eng_ctx per loaded model; the eng_net stays shared and read-only) and frees it
 * there on exit, so workers share no mutable state. Submitting never blocks: a full queue or a stopping
 * pool is refused at once with a distinct status (HTTP: 503 + Retry-After, or 503 while shutting down).
 *
 * Job lifecycle. A job is a struct eng_job that the submitter owns (embed it in the request's state);
 * the pool only holds a pointer. For every job that eng_workers_submit() accepts, exactly one of its
 * callbacks is called, exactly once:
 *   run(job, state)  on a worker thread, when a worker takes it off the queue before its deadline;
 *   expired(job)     on a worker thread, when its deadline had already passed when a worker took it;
 *   cancelled(job)   on the thread calling eng_workers_stop(pool, 0), if it was still queued then.
 * A refused job gets no callback. From a successful submit until that callback starts, the job belongs
 * to the pool: the submitter must neither read, write nor free it. Once the callback has started, the
 * pool never touches the job again, so the callback may hand it on or free it (e.g. resume the suspended
 * connection, whose completion handler frees it). Callbacks must not block for long, and must not call
 * eng_workers_stop() or eng_workers_free() (a worker cannot join itself); they may call
 * eng_workers_submit() (refused once stopping).
 * Deadlines are checked once, when a worker dequeues the job; a job that has started runs to the end.
 *
 * Cores: the server sizes the pool; workers x OpenBLAS threads per worker must not exceed the cores, or
 * the BLAS threads of concurrent sgemm calls fight each other (see shared/notes/machine.md).
 * Workers block asynchronous signals (SIGTERM, SIGINT, ...), so those reach the server's own threads. */
#ifndef ENG_WORKERS_H
#define ENG_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include "eng_err.h"

#define ENG_WORKERS_MAX 1024 /* upper bound on cfg.workers, to catch nonsense configs */

struct eng_workers;

struct eng_job {
    /* Set by the submitter before eng_workers_submit(). All three callbacks are required. */
    void (*run)(struct eng_job *job, void *worker_state); /* worker_state: the running worker's */
    void (*expired)(struct eng_job *job);
    void (*cancelled)(struct eng_job *job);
    void *user;           /* free for the submitter; the pool never reads it */
    uint64_t deadline_ns; /* absolute CLOCK_MONOTONIC time (see eng_workers_now_ns()); 0 = none */

    /* Filled by the pool before it calls the job's callback; read them only from the callback on. */
    uint64_t submitted_ns; /* when eng_workers_submit() accepted it */
    uint64_t started_ns;   /* when it left the queue (dequeued by a worker, or cancelled) */
    double queue_ms;       /* started_ns - submitted_ns: the time spent waiting in the queue */
    int worker;            /* index of the worker calling run/expired; -1 for cancelled */
};

/* What eng_workers_submit() did with a job. */
enum eng_workers_submit_status {
    ENG_WORKERS_OK = 0,   /* accepted: exactly one callback will be called */
    ENG_WORKERS_FULL,     /* refused: the queue holds `queue_cap` jobs (HTTP 503 + Retry-After) */
    ENG_WORKERS_STOPPING, /* refused: eng_workers_stop() has begun (HTTP 503) */
};

struct eng_workers_config {
    int workers;      /* threads, 1..ENG_WORKERS_MAX */
    size_t queue_cap; /* jobs that may wait beyond those running, >= 1 */
    /* Called once on each worker's own thread before it takes jobs; sets *state (may be NULL). Returns 0,
     * or -1 and fills err (which is never NULL here), which makes eng_workers_new() fail. NULL: no state. */
    int (*state_new)(int worker, void *arg, void **state, struct eng_err *err);
    /* Called on the worker's own thread as it exits, for each worker whose state_new succeeded. */
    void (*state_free)(int worker, void *arg, void *state);
    void *arg; /* passed to state_new/state_free; shared by all workers, so treat it as read-only */
};

/* A consistent snapshot. Counters only grow. At every snapshot:
 *   submitted == queued + busy + completed + expired + cancelled
 * because a job counts as busy while its run/expired callback runs, completed/expired once that callback
 * has returned, and cancelled as soon as eng_workers_stop() takes it off the queue (its callback may
 * still be running). */
struct eng_workers_stats {
    int workers;                /* threads in the pool */
    int busy;                   /* workers inside a run or expired callback now */
    size_t queued;              /* jobs waiting now */
    size_t capacity;            /* cfg.queue_cap */
    uint64_t submitted;         /* accepted by eng_workers_submit() */
    uint64_t completed;         /* run callbacks that have returned */
    uint64_t expired;           /* expired callbacks that have returned */
    uint64_t cancelled;         /* jobs cancelled by eng_workers_stop(pool, 0) */
    uint64_t rejected_full;     /* submits refused with ENG_WORKERS_FULL */
    uint64_t rejected_stopping; /* submits refused with ENG_WORKERS_STOPPING */
};

/* Starts cfg->workers threads and waits until each has run cfg->state_new. Returns a new pool (stop it
 * with eng_workers_stop, then free it with eng_workers_free), or NULL with err: ENG_ERR_INVALID for a
 * bad cfg, ENG_ERR_NOMEM when memory or a thread cannot be had, or the error a state_new reported (every
 * state already created is freed on its own thread first). cfg is copied. Call from one thread. */
struct eng_workers *eng_workers_new(const struct eng_workers_config *cfg, struct eng_err *err);

/* Queues job (borrowed; see "Job lifecycle" above) for the next free worker, in FIFO order. Never blocks
 * beyond a short mutex hold and never allocates. Returns ENG_WORKERS_OK, ENG_WORKERS_FULL or
 * ENG_WORKERS_STOPPING; on refusal the job is untouched except for submitted_ns and stays the caller's.
 * Thread-safe: any thread, including job callbacks. job and its three callbacks must not be NULL. */
enum eng_workers_submit_status eng_workers_submit(struct eng_workers *pool, struct eng_job *job);

/* Stops the pool: from now on submits are refused with ENG_WORKERS_STOPPING. drain != 0: workers take
 * every queued job in order (deadlines still apply: late ones get expired). drain == 0: every queued job
 * is taken off the queue and its cancelled callback is called on this thread, without waiting for the
 * running jobs. Either way, jobs already running finish; then all workers free their state and are
 * joined. Returns when no callback of this pool can run any more. Later calls return at once.
 * Call from the thread that owns the pool, never from a job callback, and not concurrently with itself. */
void eng_workers_stop(struct eng_workers *pool, int drain);

/* Frees the pool, first stopping it with eng_workers_stop(pool, 0) if it was not stopped. NULL is a
 * no-op. No other thread may use the pool during or after this call. */
void eng_workers_free(struct eng_workers *pool);

/* Fills *out with a snapshot of the counters. Thread-safe; holds the pool's mutex for a few loads. */
void eng_workers_stats_read(struct eng_workers *pool, struct eng_workers_stats *out);

/* Jobs waiting in the queue now (not counting running ones); for a high-water mark, compare with
 * eng_workers_capacity(), e.g. /readyz fails while depth >= capacity * 3 / 4. Thread-safe. */
size_t eng_workers_depth(struct eng_workers *pool);

/* cfg.queue_cap. Thread-safe (constant for the pool's life). */
size_t eng_workers_capacity(const struct eng_workers *pool);

/* The current CLOCK_MONOTONIC time in nanoseconds, the clock of deadline_ns: a request with a timeout of
 * t ms gets deadline_ns = eng_workers_now_ns() + t * 1000000. Thread-safe. */
uint64_t eng_workers_now_ns(void);

/* Milliseconds since job->started_ns. Call it at the end of a run callback to get the run (inference)
 * time: the pool cannot record it after run returns, since the job may be gone by then. Call only from
 * the job's own callback (or after it, while the submitter still owns the job). */
double eng_workers_job_run_ms(const struct eng_job *job);

#endif
