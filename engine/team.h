/* team.h - a small thread team that splits one layer's work across cores (intra-layer parallelism).
 *
 * A team is the calling thread plus `threads - 1` helper threads. eng_team_for() is a parallel-for over
 * task indices 0..n-1 with a barrier at the end: it returns when every task has run. Tasks are claimed
 * one at a time from a shared counter, so uneven tasks balance themselves; each task gets a `slot`
 * (0 = the caller, 1.. = helpers), never shared by two tasks running at once, to index per-thread
 * scratch. Kernels are split by task index, as in ggml: they take no locks and allocate nothing.
 *
 * Cores. Teams may share a core budget (struct eng_cores, one per process): a team running a forward
 * pass holds one core for its caller and borrows idle cores for its helpers, so with one request in
 * flight a worker uses every core (latency), and with as many requests as cores each worker runs alone
 * (throughput). Borrowed cores are handed back at the next layer boundary once another team needs its
 * own core, so busy threads exceed the budget for at most one layer. Without a budget a team always
 * uses all its threads.
 *
 * Synchronisation is cheap enough for layers of 50 us: helpers spin for a short while after a run
 * before sleeping, and a run that only one thread may work on runs inline without waking anyone.
 *
 * Thread safety: one thread at a time drives a team (begin/for/end); a budget is shared freely. */
#ifndef ENG_TEAM_H
#define ENG_TEAM_H

#include "eng_err.h"

#define ENG_TEAM_MAX 64 /* upper bound on a team's threads (one bit per helper in team.c) */

struct eng_team;
struct eng_cores;

/* A task: run task `task` of a parallel-for on slot `slot` (0 <= slot < eng_team_size()). */
typedef void (*eng_task_fn)(void *arg, int task, int slot);

/* How teams share a budget when more passes run than there are cores. */
enum eng_cores_policy {
    /* A pass starting takes its own core at once; passes that borrowed cores hand them back at their
     * next layer boundary, so with as many passes as cores each runs on one core. */
    ENG_CORES_SHARE = 0,
    /* A pass starting waits until its whole team's threads (at most the budget) have idle cores, and
     * holds them to its end. Passes then run at full width, one after another on 2 cores, which
     * measured faster there for the memory-bound Yolo-Fastest layers (each thread's share of a layer
     * stays in its own L2) than one pass per core. */
    ENG_CORES_QUEUE,
};

/* New budget of `cores` cores (>= 1) shared by `policy` (eng_cores_new: ENG_CORES_SHARE), or NULL
 * when out of memory. Free with eng_cores_free (NULL is a no-op) after every team using it. */
struct eng_cores *eng_cores_new(int cores);
struct eng_cores *eng_cores_new_policy(int cores, enum eng_cores_policy policy);
void eng_cores_free(struct eng_cores *cores);

/* Cores not held by any team now (negative: teams hold more than the budget until their next layer
 * boundary). Thread-safe; for tests and metrics. */
int eng_cores_idle(const struct eng_cores *cores);

/* New team of `threads` threads (1..ENG_TEAM_MAX; 1 = no helpers, everything runs inline), sharing
 * the budget `cores` (borrowed, may be NULL: no budget). Helper threads start with asynchronous
 * signals blocked. Returns NULL with err (ENG_ERR_INVALID, ENG_ERR_NOMEM) on failure. */
struct eng_team *eng_team_new(int threads, struct eng_cores *cores, struct eng_err *err);

/* Stops and joins the helpers; NULL is a no-op. Not during a forward pass. */
void eng_team_free(struct eng_team *team);

/* Threads in the team (1 for NULL): the number of scratch slots a caller must provide. */
int eng_team_size(const struct eng_team *team);

/* Threads the next eng_team_for may use (1 for NULL): layers size their task count by it. */
int eng_team_width(const struct eng_team *team);

/* A forward pass starts and ends: takes the caller's core from the budget and borrows idle ones;
 * gives them all back. eng_team_rebalance() between layers adjusts the borrowed cores to the load.
 * NULL team: no-ops. */
void eng_team_begin(struct eng_team *team);
void eng_team_rebalance(struct eng_team *team);
void eng_team_end(struct eng_team *team);

/* Runs fn(arg, t, slot) for every t in 0..n_tasks-1 on up to eng_team_width() threads and returns
 * when all have finished (their writes are then visible to the caller). team NULL, width 1 or
 * n_tasks 1: runs them in order on the caller, slot 0. Never allocates. */
void eng_team_for(struct eng_team *team, int n_tasks, eng_task_fn fn, void *arg);

/* The part [*lo, *hi) of 0..n that task `task` of `n_tasks` gets: contiguous parts of
 * ceil(n / n_tasks) rounded up to a multiple of `align` (>= 1); the last parts may be shorter or empty. */
void eng_team_split(int n, int n_tasks, int task, int align, int *lo, int *hi);

#endif
