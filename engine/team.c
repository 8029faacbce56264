/* team.c - the intra-layer thread team (see team.h).
 *
 * Design. A run is published through one 64-bit atomic `ticket`: the high 32 bits are the run's
 * generation, the low 32 the next unclaimed task. Each run takes two generations: a closed one
 * (nothing claimable) stored before fn, arg and n_tasks are written, and the open one stored after
 * them (release); a thread claims a task with a compare-and-swap on the ticket
 * that only succeeds within the same generation. So a helper that wakes late, after its run has ended,
 * fails its claim and cannot run an old task or a task of the next run with stale arguments; the
 * caller never has to wait for helpers to notice a run, only for claimed tasks to finish (`remaining`).
 * - Helpers watch the generation: they spin (pause) for SPIN_NS after a run they took part in,
 *   since the next layer follows within microseconds, then sleep on a condition variable. A helper
 *   sees a run only if its index is below the run's width; otherwise it goes straight back to sleep.
 * - Lost wake-ups: a helper sets its bit in `sleeping` and re-checks the generation under the mutex
 *   before waiting; the caller stores the generation and then reads `sleeping` (both sequentially
 *   consistent), so either the helper sees the new run or the caller sees the sleeper and broadcasts.
 *   Helpers outside the run's width are not woken: a worker running alone wakes nobody.
 * - Budget: `idle` counts the budget's free cores and may go negative when a team takes its own core
 *   while others have borrowed; borrowers return cores at their next rebalance (layer boundary). */
#include "eng_thread.h"
#include "team.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPIN_NS 50000  /* helpers spin this long after a run: longer than the gap between layers */
#define YIELD_NS 20000 /* the caller spins this long for the last tasks, then yields its core */
#define TICKET_CLOSED INT32_MAX /* a task index no run has: nothing in that generation can be claimed */

struct eng_cores {
    atomic_int idle;
    int total;
    enum eng_cores_policy policy;
    pthread_mutex_t lock; /* ENG_CORES_QUEUE: guards waiting for a core */
    pthread_cond_t freed;
    int waiters;
};

struct helper {
    struct eng_team *team;
    pthread_t thread;
    int index; /* 0-based; its slot is index + 1 */
};

struct eng_team {
    int size;
    struct eng_cores *cores;
    int borrowed; /* cores borrowed beyond the caller's own (caller's thread only) */
    int holding;  /* between begin and end (caller's thread only) */

    _Atomic uint64_t ticket;  /* generation << 32 | next task */
    atomic_int width;         /* threads the current run may use */
    atomic_int n_tasks;
    atomic_int remaining;     /* tasks of the current run not yet finished */
    eng_task_fn fn;           /* written before the generation is published */
    void *arg;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t sleeping; /* bit i: helper i waits on `wake` */
    atomic_int stopping;

    struct helper *helpers;
    int n_started;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins in rounds of 64 pauses; returns 1 once `budget_ns` have passed since *t0 (set on the first
 * call, when *t0 is 0), reading the clock only once per round. */
static int spun_out(uint64_t *t0, unsigned *round, uint64_t budget_ns)
{
    for (int i = 0; i < 64; i++)
        cpu_relax();
    if ((++*round & 7) != 0)
        return 0;
    const uint64_t now = now_ns();
    if (!*t0)
        *t0 = now;
    return now - *t0 > budget_ns;
}

/* ---- budget -------------------------------------------------------------------------------------- */

struct eng_cores *eng_cores_new(int cores)
{
    return eng_cores_new_policy(cores, ENG_CORES_SHARE);
}

struct eng_cores *eng_cores_new_policy(int cores, enum eng_cores_policy policy)
{
    struct eng_cores *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->total = cores > 0 ? cores : 1;
    atomic_init(&c->idle, c->total);
    c->policy = policy;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->freed, NULL);
    return c;
}

void eng_cores_free(struct eng_cores *cores)
{
    if (!cores)
        return;
    pthread_cond_destroy(&cores->freed);
    pthread_mutex_destroy(&cores->lock);
    free(cores);
}

/* ENG_CORES_QUEUE: takes n cores at once, waiting until n are idle (a pass that took fewer would
 * run beside another one, which is what this policy avoids). */
static void cores_take(struct eng_cores *c, int n)
{
    int free = atomic_load(&c->idle);
    while (free >= n)
        if (atomic_compare_exchange_weak(&c->idle, &free, free - n))
            return;
    pthread_mutex_lock(&c->lock);
    c->waiters++;
    for (;;) {
        free = atomic_load(&c->idle);
        if (free >= n && atomic_compare_exchange_strong(&c->idle, &free, free - n))
            break;
        if (free < n)
            pthread_cond_wait(&c->freed, &c->lock);
    }
    c->waiters--;
    pthread_mutex_unlock(&c->lock);
}

static void cores_give(struct eng_cores *c, int n)
{
    atomic_fetch_add(&c->idle, n);
    if (c->policy != ENG_CORES_QUEUE)
        return;
    pthread_mutex_lock(&c->lock); /* a waiter either sees the new count or is waiting: no lost wake-up */
    if (c->waiters)
        pthread_cond_broadcast(&c->freed);
    pthread_mutex_unlock(&c->lock);
}

int eng_cores_idle(const struct eng_cores *cores)
{
    return atomic_load(&((struct eng_cores *)cores)->idle);
}

/* ---- running tasks ------------------------------------------------------------------------------- */

/* Claims and runs tasks of generation gen until none are left (or the run is over). */
static void run_tasks(struct eng_team *t, uint32_t gen, int slot)
{
    uint64_t cur = atomic_load_explicit(&t->ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(cur >> 32) != gen)
            return;
        const int task = (int)(uint32_t)cur;
        if (task >= atomic_load_explicit(&t->n_tasks, memory_order_relaxed))
            return;
        if (!atomic_compare_exchange_weak_explicit(&t->ticket, &cur, cur + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* cur now holds the fresh value */
        t->fn(t->arg, task, slot);
        atomic_fetch_sub_explicit(&t->remaining, 1, memory_order_release);
        cur = atomic_load_explicit(&t->ticket, memory_order_acquire);
    }
}

static uint32_t generation(struct eng_team *t)
{
    return (uint32_t)(atomic_load_explicit(&t->ticket, memory_order_acquire) >> 32);
}

static int takes_part(struct eng_team *t, int index)
{
    return index + 1 < atomic_load_explicit(&t->width, memory_order_relaxed);
}

/* Waits for a run this helper takes part in (a generation other than seen, with the helper's index
 * below the width) or for stop; returns that generation. Spins first if spin != 0. */
static uint32_t wait_run(struct eng_team *t, int index, uint32_t seen, int spin)
{
    uint64_t t0 = 0;
    unsigned round = 0;
    while (spin) {
        const uint32_t g = generation(t);
        if (atomic_load_explicit(&t->stopping, memory_order_relaxed))
            return g;
        if (g != seen) {
            if (takes_part(t, index))
                return g;
            seen = g;
            break;
        }
        if (spun_out(&t0, &round, SPIN_NS))
            break;
    }
    const uint64_t bit = (uint64_t)1 << index;
    pthread_mutex_lock(&t->lock);
    atomic_fetch_or(&t->sleeping, bit);
    uint32_t g;
    for (;;) {
        g = (uint32_t)(atomic_load(&t->ticket) >> 32);
        if (atomic_load(&t->stopping))
            break;
        if (g != seen) {
            if (takes_part(t, index))
                break;
            seen = g;
        }
        pthread_cond_wait(&t->wake, &t->lock);
    }
    atomic_fetch_and(&t->sleeping, ~bit);
    pthread_mutex_unlock(&t->lock);
    return g;
}

static void *helper_main(void *p)
{
    struct helper *h = p;
    struct eng_team *t = h->team;
    uint32_t seen = generation(t);
    int spin = 0;
    for (;;) {
        seen = wait_run(t, h->index, seen, spin);
        if (atomic_load(&t->stopping))
            return NULL;
        run_tasks(t, seen, h->index + 1);
        spin = 1;
    }
}

void eng_team_for(struct eng_team *t, int n_tasks, eng_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    if (!t || n_tasks == 1 || atomic_load_explicit(&t->width, memory_order_relaxed) <= 1) {
        for (int i = 0; i < n_tasks; i++)
            fn(arg, i, 0);
        return;
    }
    /* First a generation with nothing to claim: a helper that read the last run's ticket before
     * this point fails its claim now. Otherwise, seeing the last ticket (all tasks taken) beside this
     * run's larger n_tasks, it could claim a task of the old generation and run it with this run's
     * fn and arg while they are being written (TSan, test_team_budget_shared_by_concurrent_teams). */
    const uint32_t closed = generation(t) + 1, gen = closed + 1;
    atomic_store(&t->ticket, (uint64_t)closed << 32 | TICKET_CLOSED);
    t->fn = fn;
    t->arg = arg;
    atomic_store_explicit(&t->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&t->remaining, n_tasks, memory_order_relaxed);
    atomic_store(&t->ticket, (uint64_t)gen << 32); /* publishes fn, arg, counts (seq_cst) */
    const int width = atomic_load_explicit(&t->width, memory_order_relaxed);
    const uint64_t wanted = width - 1 >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << (width - 1)) - 1;
    if (atomic_load(&t->sleeping) & wanted) { /* wake only helpers this run may use */
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->lock);
    }
    run_tasks(t, gen, 0);
    /* A helper may hold a claimed task while the machine is busy with other processes: after a short
     * spin, yield so that it can run, rather than burn the core it is waiting for. */
    uint64_t t0 = 0;
    unsigned round = 0;
    int yielding = 0;
    while (atomic_load_explicit(&t->remaining, memory_order_acquire) > 0) {
        if (yielding)
            sched_yield();
        else
            yielding = spun_out(&t0, &round, YIELD_NS);
    }
}

/* ---- budget per forward pass --------------------------------------------------------------------- */

static void set_width(struct eng_team *t)
{
    atomic_store_explicit(&t->width, 1 + t->borrowed, memory_order_relaxed);
}

void eng_team_begin(struct eng_team *t)
{
    if (!t || !t->cores)
        return;
    t->holding = 1;
    if (t->cores->policy == ENG_CORES_QUEUE) { /* the whole team's cores, for the whole pass */
        const int n = t->size < t->cores->total ? t->size : t->cores->total;
        cores_take(t->cores, n);
        t->borrowed = n - 1;
        set_width(t);
        return;
    }
    atomic_fetch_sub(&t->cores->idle, 1);
    t->borrowed = 0;
    eng_team_rebalance(t);
}

void eng_team_rebalance(struct eng_team *t)
{
    if (!t || !t->cores || !t->holding || t->cores->policy == ENG_CORES_QUEUE)
        return;
    atomic_int *idle = &t->cores->idle;
    int free = atomic_load_explicit(idle, memory_order_relaxed);
    if (free < 0 && t->borrowed > 0) { /* another team is owed its own core: give ours back */
        const int give = -free < t->borrowed ? -free : t->borrowed;
        cores_give(t->cores, give);
        t->borrowed -= give;
    } else {
        while (free > 0 && t->borrowed < t->size - 1) {
            const int want = t->size - 1 - t->borrowed;
            const int take = free < want ? free : want;
            if (atomic_compare_exchange_weak(idle, &free, free - take)) {
                t->borrowed += take;
                break;
            }
        }
    }
    set_width(t);
}

void eng_team_end(struct eng_team *t)
{
    if (!t || !t->cores || !t->holding)
        return;
    cores_give(t->cores, 1 + t->borrowed);
    t->borrowed = 0;
    t->holding = 0;
    set_width(t);
}

int eng_team_size(const struct eng_team *t)
{
    return t ? t->size : 1;
}

int eng_team_width(const struct eng_team *t)
{
    return t ? atomic_load_explicit(&((struct eng_team *)t)->width, memory_order_relaxed) : 1;
}

void eng_team_split(int n, int n_tasks, int task, int align, int *lo, int *hi)
{
    int chunk = (n + n_tasks - 1) / n_tasks;
    chunk = (chunk + align - 1) / align * align;
    const long a = (long)task * chunk, b = a + chunk;
    *lo = a < n ? (int)a : n;
    *hi = b < n ? (int)b : n;
}

/* ---- lifetime ------------------------------------------------------------------------------------ */

/* Helpers start with asynchronous signals blocked, like the workers (eng_thread.h): a SIGTERM must
 * reach the server's own threads. */
static int spawn_helpers(struct eng_team *t)
{
    int rc = 0;
    for (int i = 0; i < t->size - 1 && rc == 0; i++) {
        t->helpers[i] = (struct helper){.team = t, .index = i};
        rc = eng_thread_start(&t->helpers[i].thread, helper_main, &t->helpers[i]);
        if (rc == 0)
            t->n_started++;
    }
    return rc;
}

struct eng_team *eng_team_new(int threads, struct eng_cores *cores, struct eng_err *err)
{
    if (threads < 1 || threads > ENG_TEAM_MAX) {
        eng_err_set(err, ENG_ERR_INVALID, "team", "threads must be 1..%d, got %d", ENG_TEAM_MAX, threads);
        return NULL;
    }
    struct eng_team *t = calloc(1, sizeof *t);
    if (!t || !(t->helpers = calloc((size_t)threads, sizeof *t->helpers))) {
        free(t);
        eng_err_set(err, ENG_ERR_NOMEM, "team", "out of memory");
        return NULL;
    }
    t->size = threads;
    t->cores = cores;
    atomic_init(&t->ticket, 0);
    atomic_init(&t->width, cores ? 1 : threads); /* with a budget, begin decides */
    atomic_init(&t->n_tasks, 0);
    atomic_init(&t->remaining, 0);
    atomic_init(&t->sleeping, 0);
    atomic_init(&t->stopping, 0);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    const int rc = spawn_helpers(t);
    if (rc != 0) {
        eng_err_set(err, ENG_ERR_NOMEM, "team", "cannot start helper thread %d of %d: %s", t->n_started + 1,
                    threads - 1, strerror(rc));
        eng_team_free(t);
        return NULL;
    }
    return t;
}

void eng_team_free(struct eng_team *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->stopping, 1);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < t->n_started; i++)
        pthread_join(t->helpers[i].thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t->helpers);
    free(t);
}
