/* test_team.c - the intra-layer thread team (engine/team.c) and the layers split across it.
 *
 * The team: every task runs exactly once per run and its writes are visible when eng_team_for returns
 * (many tiny tasks, many runs); no two tasks running at once share a slot; uneven splits cover their
 * range exactly; a 1-thread team and a NULL team run inline; the core budget lends and takes back
 * cores. The layers: convolutions of every kind (im2col, pointwise, grouped, depthwise, few columns
 * that split by output channels) on teams of 2..4 threads against a naive reference, and whole models
 * (the real Yolo-Fastest weights, random weights for yolov2/3/4-tiny, the face networks when
 * installed) on teams of 2 and 3 threads: bit-identical to the same context run on one thread. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "darknet.h"
#include "face.h"
#include "image.h"
#include "kern.h"
#include "layer_harness.h"
#include "net.h"
#include "team.h"

#ifndef VISIOND_SOURCE_DIR
#define VISIOND_SOURCE_DIR "."
#endif
#ifndef VISIOND_SHARED_DIR
#define VISIOND_SHARED_DIR "../shared"
#endif
#define SHARED_MODELS VISIOND_SHARED_DIR "/models"

/* Teams of 2..MODEL_TEAM_MAX threads run the whole models; TSan runs them ~25x slower, so only 2 there. */
#if defined(__SANITIZE_THREAD__)
#define MODEL_TEAM_MAX 2
#else
#define MODEL_TEAM_MAX 3
#endif

static struct eng_team *team_new_ok(int threads, struct eng_cores *cores)
{
    struct eng_err err = {0};
    struct eng_team *t = eng_team_new(threads, cores, &err);
    if (!t)
        fail_msg("eng_team_new(%d): %s", threads, err.msg);
    return t;
}

/* ---- the team ------------------------------------------------------------------------------- */

#define MANY 5000

struct count_run {
    atomic_int hits[MANY];
    int plain[MANY]; /* written without atomics: the barrier must make these visible */
    atomic_int in_slot[ENG_TEAM_MAX];
    atomic_int slot_clash;
    int n_slots;
};

static void count_task(void *arg, int task, int slot)
{
    struct count_run *r = arg;
    if (slot < 0 || slot >= r->n_slots || atomic_fetch_add(&r->in_slot[slot], 1) != 0)
        atomic_store(&r->slot_clash, 1);
    atomic_fetch_add(&r->hits[task], 1);
    r->plain[task] += task + 1;
    if (slot >= 0 && slot < r->n_slots)
        atomic_fetch_sub(&r->in_slot[slot], 1);
}

static void run_counted(struct eng_team *t, int threads, int n_tasks, int runs)
{
    struct count_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->n_slots = threads;
    for (int k = 0; k < runs; k++)
        eng_team_for(t, n_tasks, count_task, r);
    for (int i = 0; i < n_tasks; i++) {
        assert_int_equal(atomic_load(&r->hits[i]), runs);
        assert_int_equal(r->plain[i], runs * (i + 1));
    }
    for (int i = n_tasks; i < MANY; i++)
        assert_int_equal(atomic_load(&r->hits[i]), 0);
    assert_int_equal(atomic_load(&r->slot_clash), 0);
    free(r);
}

static void test_team_many_tiny_tasks_each_run_once(void **state)
{
    (void)state;
    for (int threads = 2; threads <= 4; threads++) {
        struct eng_team *t = team_new_ok(threads, NULL);
        assert_int_equal(eng_team_size(t), threads);
        assert_int_equal(eng_team_width(t), threads);
        run_counted(t, threads, MANY, 20);
        run_counted(t, threads, 3, 2000); /* fewer tasks than threads, runs back to back */
        eng_team_free(t);
    }
}

/* Tasks of very different lengths: the last ones to finish must still be waited for. */
static void uneven_task(void *arg, int task, int slot)
{
    (void)slot;
    atomic_int *done = arg;
    volatile double x = 0;
    for (int i = 0; i < (task % 7 == 0 ? 200000 : 10); i++)
        x += i;
    (void)x; /* clang: set but not used */
    atomic_fetch_add(&done[task], 1);
}

static void test_team_uneven_tasks_all_finished_on_return(void **state)
{
    (void)state;
    struct eng_team *t = team_new_ok(3, NULL);
    atomic_int done[50];
    for (int run = 0; run < 20; run++) {
        for (int i = 0; i < 50; i++)
            atomic_init(&done[i], 0);
        eng_team_for(t, 50, uneven_task, done);
        for (int i = 0; i < 50; i++)
            assert_int_equal(atomic_load(&done[i]), 1);
    }
    eng_team_free(t);
}

/* Which asynchronous signals each slot's thread has blocked: helpers start with them blocked (a SIGTERM
 * must reach a server thread), the caller keeps its own mask. */
static const int async_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
enum { ASYNC_N = sizeof async_signals / sizeof async_signals[0], MASK_TEAM = 3 };

struct mask_run {
    atomic_int blocked[MASK_TEAM]; /* per slot: bit k set when async_signals[k] was blocked, +1 << 8 seen */
};

/* This thread's blocked asynchronous signals as bits, plus the "seen" bit. */
static int blocked_bits(void)
{
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    int bits = 1 << 8;
    for (int k = 0; k < ASYNC_N; k++)
        if (sigismember(&now, async_signals[k]) == 1)
            bits |= 1 << k;
    return bits;
}

static void mask_task(void *arg, int task, int slot)
{
    (void)task;
    struct mask_run *r = arg;
    atomic_fetch_or(&r->blocked[slot], blocked_bits());
    volatile double x = 0; /* long enough that the helpers claim tasks too */
    for (int i = 0; i < 20000; i++)
        x += i;
    (void)x;
}

static void test_team_helpers_start_with_async_signals_blocked(void **state)
{
    (void)state;
    struct eng_team *t = team_new_ok(MASK_TEAM, NULL);
    struct mask_run r = {0};
    int all_seen = 0;
    for (int run = 0; run < 2000 && !all_seen; run++) {
        eng_team_for(t, 8 * MASK_TEAM, mask_task, &r);
        all_seen = 1;
        for (int s = 0; s < MASK_TEAM; s++)
            all_seen &= (atomic_load(&r.blocked[s]) >> 8) & 1;
    }
    eng_team_free(t);
    assert_true(all_seen);
    assert_int_equal(atomic_load(&r.blocked[0]), blocked_bits()); /* the caller's mask is its own */
    for (int s = 1; s < MASK_TEAM; s++)
        assert_int_equal(atomic_load(&r.blocked[s]), (1 << 8) | ((1 << ASYNC_N) - 1));
}

struct order_run {
    int next;
    int order[64];
    int slots_seen;
};

static void order_task(void *arg, int task, int slot)
{
    struct order_run *r = arg;
    r->order[r->next++] = task;
    r->slots_seen |= 1 << slot;
}

static void test_team_one_thread_and_null_run_inline_in_order(void **state)
{
    (void)state;
    struct eng_team *one = team_new_ok(1, NULL);
    struct eng_team *teams[] = {one, NULL};
    for (int k = 0; k < 2; k++) {
        struct order_run r = {0};
        assert_int_equal(eng_team_size(teams[k]), 1);
        assert_int_equal(eng_team_width(teams[k]), 1);
        eng_team_begin(teams[k]);
        eng_team_for(teams[k], 40, order_task, &r);
        eng_team_end(teams[k]);
        assert_int_equal(r.next, 40);
        for (int i = 0; i < 40; i++)
            assert_int_equal(r.order[i], i);
        assert_int_equal(r.slots_seen, 1);
    }
    eng_team_for(one, 0, order_task, NULL); /* no tasks: fn never called */
    eng_team_free(one);
    eng_team_free(NULL);
}

static void test_team_split_covers_range_exactly(void **state)
{
    (void)state;
    const int aligns[] = {1, 4, 16};
    for (int n = 0; n <= 70; n++)
        for (int tasks = 1; tasks <= 9; tasks++)
            for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
                int expect = 0;
                for (int t = 0; t < tasks; t++) {
                    int lo, hi;
                    eng_team_split(n, tasks, t, aligns[a], &lo, &hi);
                    assert_true(lo <= hi);
                    if (hi > lo) {
                        assert_int_equal(lo, expect); /* contiguous, in order, no overlap */
                        assert_int_equal(lo % aligns[a], 0);
                        expect = hi;
                    }
                }
                assert_int_equal(expect, n);
            }
    int lo, hi; /* the largest part is ceil(n / tasks) */
    eng_team_split(10, 3, 0, 1, &lo, &hi);
    assert_int_equal(hi - lo, 4);
}

static void test_team_bad_size_rejected(void **state)
{
    (void)state;
    struct eng_err err = {0};
    assert_null(eng_team_new(0, NULL, &err));
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_null(eng_team_new(ENG_TEAM_MAX + 1, NULL, &err));
    assert_null(eng_team_new(-3, NULL, NULL));
}

/* Two teams of two threads on a budget of two cores: one alone borrows the idle core; when the other
 * starts, the first gives it back at its next layer boundary; when the second ends, the first takes
 * it again. Busy threads never exceed the cores for longer than one layer. */
static void test_team_budget_lends_idle_cores_and_takes_them_back(void **state)
{
    (void)state;
    struct eng_cores *cores = eng_cores_new(2);
    assert_non_null(cores);
    struct eng_team *a = team_new_ok(2, cores), *b = team_new_ok(2, cores);
    assert_int_equal(eng_team_width(a), 1); /* outside a forward pass: nothing held */
    eng_team_begin(a);
    assert_int_equal(eng_team_width(a), 2);
    assert_int_equal(eng_cores_idle(cores), 0);
    run_counted(a, 2, 100, 5);
    eng_team_begin(b);
    assert_int_equal(eng_team_width(b), 1);
    assert_int_equal(eng_cores_idle(cores), -1); /* b's own core is owed until a's next layer */
    eng_team_rebalance(a);
    assert_int_equal(eng_team_width(a), 1);
    assert_int_equal(eng_cores_idle(cores), 0);
    run_counted(a, 2, 100, 5);
    run_counted(b, 2, 100, 5);
    eng_team_end(b);
    assert_int_equal(eng_cores_idle(cores), 1);
    eng_team_rebalance(a);
    assert_int_equal(eng_team_width(a), 2);
    eng_team_end(a);
    assert_int_equal(eng_cores_idle(cores), 2);
    eng_team_free(a);
    eng_team_free(b);
    eng_cores_free(cores);
}

/* ENG_CORES_QUEUE: a pass that finds no idle core waits until one is given back, and a running pass
 * keeps what it borrowed; so passes run one after another at full width. */
struct waiter {
    struct eng_team *team;
    atomic_int started;
};

static void *begin_then_end(void *p)
{
    struct waiter *w = p;
    eng_team_begin(w->team);
    atomic_store(&w->started, 1);
    eng_team_end(w->team);
    return NULL;
}

static void test_team_queue_budget_waits_for_a_free_core(void **state)
{
    (void)state;
    struct eng_cores *cores = eng_cores_new_policy(2, ENG_CORES_QUEUE);
    assert_non_null(cores);
    struct eng_team *a = team_new_ok(2, cores);
    struct waiter w = {.team = team_new_ok(2, cores)};
    atomic_init(&w.started, 0);
    eng_team_begin(a);
    assert_int_equal(eng_team_width(a), 2);
    assert_int_equal(eng_cores_idle(cores), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, begin_then_end, &w), 0);
    for (int i = 0; i < 50; i++) { /* 50 ms: b must still be waiting, and a keeps both cores */
        usleep(1000);
        eng_team_rebalance(a);
        assert_int_equal(atomic_load(&w.started), 0);
        assert_int_equal(eng_team_width(a), 2);
        assert_int_equal(eng_cores_idle(cores), 0);
    }
    run_counted(a, 2, 100, 5);
    eng_team_end(a);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&w.started), 1);
    assert_int_equal(eng_cores_idle(cores), 2);
    eng_team_free(a);
    eng_team_free(w.team);
    eng_cores_free(cores);
}

/* Teams on a shared budget driven from several threads at once (as the daemon's workers do): tasks
 * still run exactly once and the budget is whole again at the end. TSan checks the hand-offs. */
struct driver {
    struct eng_team *team;
    pthread_t thread;
};

static void *drive(void *p)
{
    struct driver *d = p;
    struct count_run *r = calloc(1, sizeof *r);
    if (!r)
        return (void *)1;
    r->n_slots = eng_team_size(d->team);
    for (int k = 0; k < 200; k++) {
        eng_team_begin(d->team);
        for (int layer = 0; layer < 5; layer++) {
            eng_team_rebalance(d->team);
            eng_team_for(d->team, 1 + (k + layer) % 9, count_task, r);
        }
        eng_team_end(d->team);
    }
    long bad = atomic_load(&r->slot_clash);
    for (int i = 0; i < 9; i++)
        bad |= atomic_load(&r->hits[i]) == 0;
    free(r);
    return (void *)bad;
}

static void test_team_budget_shared_by_concurrent_teams(void **state)
{
    (void)state;
    const enum eng_cores_policy policies[] = {ENG_CORES_SHARE, ENG_CORES_QUEUE};
    for (int p = 0; p < 2; p++) {
        struct eng_cores *cores = eng_cores_new_policy(2, policies[p]);
        assert_non_null(cores);
        struct driver d[3];
        for (int i = 0; i < 3; i++) {
            d[i].team = team_new_ok(2, cores);
            assert_int_equal(pthread_create(&d[i].thread, NULL, drive, &d[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
            void *bad;
            pthread_join(d[i].thread, &bad);
            assert_null(bad);
            eng_team_free(d[i].team);
        }
        assert_int_equal(eng_cores_idle(cores), 2);
        eng_cores_free(cores);
    }
}

/* ---- convolutions on a team against a naive reference ----------------------------------------- */

static void conv_naive(const struct eng_layer *l, const float *in, float *out)
{
    const struct eng_conv *c = &l->p.conv;
    const int icg = l->in.c / c->groups, ocg = c->filters / c->groups;
    for (int o = 0; o < c->filters; o++) {
        const int g = o / ocg;
        for (int y = 0; y < l->out.h; y++)
            for (int x = 0; x < l->out.w; x++) {
                double acc = c->bias ? c->bias[o] : 0.0;
                for (int ic = 0; ic < icg; ic++)
                    for (int ky = 0; ky < c->size; ky++)
                        for (int kx = 0; kx < c->size; kx++) {
                            const int iy = y * c->stride - c->pad_top + ky;
                            const int ix = x * c->stride - c->pad_left + kx;
                            if (iy < 0 || iy >= l->in.h || ix < 0 || ix >= l->in.w)
                                continue;
                            acc += (double)c->weights[((size_t)o * icg + ic) * c->size * c->size +
                                                      ky * c->size + kx] *
                                   in[((size_t)(g * icg + ic) * l->in.h + iy) * l->in.w + ix];
                        }
                const float v = (float)acc;
                out[((size_t)o * l->out.h + y) * l->out.w + x] = v > 0 ? v : 0.1f * v; /* leaky */
            }
    }
}

struct conv_case {
    int c, h, w, filters, size, stride, pad, groups;
};

static void test_team_conv_every_kind_matches_naive(void **state)
{
    (void)state;
    const struct conv_case cases[] = {
        {3, 37, 41, 16, 3, 1, 1, 1},   /* im2col, odd sizes: tiles do not divide the columns */
        {8, 40, 40, 24, 3, 2, 1, 1},   /* stride 2 */
        {16, 30, 30, 40, 1, 1, 0, 1},  /* pointwise, few inputs: the direct kernel (conv_pw.c) */
        {96, 12, 13, 48, 1, 1, 0, 1},  /* pointwise, many inputs: sgemm straight on the input */
        {12, 20, 20, 12, 3, 1, 1, 4},  /* grouped */
        {24, 33, 35, 24, 3, 1, 1, 24}, /* depthwise 3x3 */
        {16, 20, 20, 16, 5, 1, 2, 16}, /* depthwise 5x5 */
        {10, 9, 11, 10, 3, 2, 1, 10},  /* depthwise stride 2, fewer channels than tasks at 4 threads */
        {64, 5, 5, 96, 3, 1, 1, 1},    /* 25 columns: split by blocks of output channels */
        {32, 4, 4, 64, 1, 1, 0, 1},    /* pointwise, 16 columns */
    };
    rng_state = 7;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct conv_case *k = &cases[i];
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 1, k->c, k->h, k->w);
        l.p.conv = (struct eng_conv){.filters = k->filters, .size = k->size, .stride = k->stride,
                                     .pad = k->pad, .groups = k->groups, .act = ENG_ACT_LEAKY};
        const size_t nw = (size_t)k->filters * (k->c / k->groups) * k->size * k->size;
        float *weights = floats_random(nw), *bias = floats_random((size_t)k->filters);
        l.p.conv.weights = weights;
        l.p.conv.bias = bias;
        char why[128];
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        float *in = floats_random(eng_shape_size(l.in));
        const size_t n_out = eng_shape_size(l.out);
        float *ref = floats_new(n_out), *out = floats_new(n_out);
        conv_naive(&l, in, ref);
        for (int threads = 2; threads <= 4; threads++) {
            struct eng_team *t = team_new_ok(threads, NULL);
            const size_t slot = l.work_floats ? l.work_floats : 1;
            float *work = floats_new(slot * (size_t)threads);
            const struct eng_fwd f = {.in = in, .out = out, .work = work, .team = t, .work_stride = slot};
            for (size_t j = 0; j < n_out; j++)
                out[j] = NAN; /* every output must be written */
            l.forward(&l, &f);
            for (size_t j = 0; j < n_out; j++)
                if (!(fabsf(out[j] - ref[j]) <= 1e-4f * (1.0f + fabsf(ref[j]))))
                    fail_msg("case %zu, %d threads, output %zu: %g, expected %g", i, threads, j,
                             (double)out[j], (double)ref[j]);
            free(work);
            eng_team_free(t);
        }
        free(weights);
        free(bias);
        free(in);
        free(ref);
        free(out);
    }
}

/* ---- whole models: a team gives the single-thread result -------------------------------------- */

static void fill_input(float *x, size_t n)
{
    rng_state = 99;
    for (size_t i = 0; i < n; i++)
        x[i] = (rnd() + 1.0f) * 0.5f;
}

/* Runs net on one thread, then on teams of 2..MODEL_TEAM_MAX threads; every head (and the last layer)
 * must be bit-identical: a layer is cut into the same tasks whatever the team, so each output element
 * is computed by the same operations in the same order. */
static void forward_team_matches_single(const struct eng_net *net)
{
    struct eng_err err = {0};
    struct eng_ctx *ctx = eng_ctx_new(net, &err);
    assert_non_null(ctx);
    const size_t n_in = eng_shape_size(net->input);
    fill_input(ctx->input, n_in);
    eng_net_forward(net, ctx);
    const int last = net->n_layers - 1;
    int outs[ENG_NET_MAX_HEADS + 1], n_outs = 0;
    for (int k = 0; k < net->n_heads; k++)
        outs[n_outs++] = net->heads[k];
    if (n_outs == 0 || outs[n_outs - 1] != last)
        outs[n_outs++] = last;
    float *ref[ENG_NET_MAX_HEADS + 1];
    for (int k = 0; k < n_outs; k++) {
        const size_t n = eng_shape_size(net->layers[outs[k]].out);
        ref[k] = floats_new(n);
        memcpy(ref[k], eng_ctx_output(ctx, outs[k]), n * sizeof(float));
    }
    for (int threads = 2; threads <= MODEL_TEAM_MAX; threads++) {
        struct eng_team *t = team_new_ok(threads, NULL);
        assert_int_equal(eng_ctx_set_team(ctx, t, &err), 0);
        fill_input(ctx->input, n_in);
        eng_net_forward(net, ctx);
        size_t differ = 0;
        for (int k = 0; k < n_outs; k++) {
            const float *o = eng_ctx_output(ctx, outs[k]);
            const size_t n = eng_shape_size(net->layers[outs[k]].out);
            for (size_t j = 0; j < n; j++)
                if (memcmp(&o[j], &ref[k][j], sizeof(float)) != 0 && differ++ == 0)
                    print_message("%s, %d threads, layer %d output %zu: %.9g, one thread %.9g\n",
                                  net->name, threads, outs[k], j, (double)o[j], (double)ref[k][j]);
        }
        if (differ)
            fail_msg("%s: %d threads: %zu values differ from one thread", net->name, threads, differ);
        assert_int_equal(eng_ctx_set_team(ctx, NULL, &err), 0);
        eng_team_free(t);
    }
    for (int k = 0; k < n_outs; k++)
        free(ref[k]);
    eng_ctx_free(ctx);
}

static void test_team_yolo_fastest_models_match_single_thread(void **state)
{
    (void)state;
    const char *names[] = {"yolo-fastest-1.1", "yolo-fastest-1.1-xl"};
    for (int i = 0; i < 2; i++) {
        char cfg[512], weights[512];
        snprintf(cfg, sizeof cfg, SHARED_MODELS "/%s/%s.cfg", names[i], names[i]);
        snprintf(weights, sizeof weights, SHARED_MODELS "/%s/%s.weights", names[i], names[i]);
        struct eng_net *net = NULL;
        struct eng_err err = {0};
        if (eng_darknet_load(cfg, weights, NULL, NULL, &net, &err)) {
            print_message("skipped %s: %s\n", names[i], err.msg);
            continue;
        }
        forward_team_matches_single(net);
        eng_net_free(net);
    }
}

/* A tiny yolo from ../shared's cfg at 224x224 (short under the sanitizers) with random weights drawn
 * from `seed`, prepared as a loader leaves them (Winograd, packed for the GEMM); NULL (said why) when the
 * cfg is missing. */
static struct eng_net *random_tiny_yolo(const char *name, unsigned seed)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, SHARED_MODELS "/cfg/%s.cfg", name);
    const struct eng_darknet_opts opts = {.width = 224, .height = 224};
    struct eng_net *net = NULL;
    struct eng_err err = {0};
    if (eng_darknet_load(cfg, NULL, NULL, &opts, &net, &err)) {
        print_message("skipped %s: %s\n", name, err.msg);
        return NULL;
    }
    rng_state = seed;
    for (size_t j = 0; j < net->n_params; j++)
        net->params[j] = rnd() * 0.05f;
    assert_int_equal(eng_darknet_conv_prepare(net, &err, name), 0);
    return net;
}

/* yolov2/3/4-tiny with random weights (the values do not matter for the split, only that they are
 * not zero). */
static void test_team_tiny_yolos_random_weights_match_single_thread(void **state)
{
    (void)state;
    const char *names[] = {"yolov2-tiny", "yolov3-tiny", "yolov4-tiny"};
    for (int i = 0; i < 3; i++) {
        struct eng_net *net = random_tiny_yolo(names[i], 3);
        if (!net)
            continue;
        forward_team_matches_single(net);
        eng_net_free(net);
    }
}

/* The last layer's output of one pass on the fixed input (new, caller frees). */
static float *last_output(const struct eng_net *net, struct eng_ctx *ctx, size_t *n)
{
    fill_input(ctx->input, eng_shape_size(net->input));
    eng_net_forward(net, ctx);
    *n = eng_shape_size(net->layers[net->n_layers - 1].out);
    float *out = floats_new(*n);
    memcpy(out, eng_ctx_output(ctx, net->n_layers - 1), *n * sizeof(float));
    return out;
}

/* Weights packed at load (eng_net_pack_weights, as the loaders leave them) give the same bits as the
 * same weights read in place, and on a team the same as alone; at 224x224 the 7x7 layers are cut into
 * blocks of output channels, so the GEMM starts inside the packed weights (a_row > 0). */
static void test_team_packed_weights_same_bits(void **state)
{
    (void)state;
    const char *names[] = {"yolov3-tiny", "yolov4-tiny"};
    for (int i = 0; i < 2; i++) {
        struct eng_net *net = random_tiny_yolo(names[i], 5);
        if (!net)
            continue;
        struct eng_err err = {0};
        struct eng_ctx *ctx = eng_ctx_new(net, &err);
        assert_non_null(ctx);
        size_t n, m;
        float *got = last_output(net, ctx, &n);
        int packed = 0;
        for (int j = 0; j < net->n_layers; j++)
            if (net->layers[j].kind == ENG_LAYER_CONV && net->layers[j].p.conv.packed) {
                net->layers[j].p.conv.packed = NULL; /* the weights in place */
                packed++;
            }
        assert_true(packed > 0 || !eng_kern_best()->gemm);
        float *inplace = last_output(net, ctx, &m);
        assert_int_equal(m, n);
        if (memcmp(got, inplace, n * sizeof(float)) != 0)
            fail_msg("%s: packed weights (%d layers) gave other bits than in place", names[i], packed);
        assert_int_equal(eng_net_pack_weights(net, &err), 0);
        forward_team_matches_single(net);
        free(got);
        free(inplace);
        eng_ctx_free(ctx);
        eng_net_free(net);
    }
}

/* Faces, landmarks and descriptors of sample1.jpg (three faces): the three face networks. */
static int face_pipeline(const struct eng_face_models *m, struct eng_face_ctx *fc,
                         const struct eng_image *img, struct eng_face *faces,
                         float (*desc)[ENG_FACE_DESCRIPTOR])
{
    struct eng_err err = {0};
    struct eng_face_params p;
    eng_face_params_default(&p);
    const int n = eng_face_detect(m, fc, img, &p, faces, 8, &err);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(eng_face_landmarks(m, fc, img, &faces[i], &err), 0);
        assert_int_equal(eng_face_descriptor(m, fc, img, &faces[i], desc[i], &err), 0);
    }
    return n;
}

static void test_team_face_networks_match_single_thread(void **state)
{
    (void)state;
    struct eng_face_models *m = NULL;
    struct eng_err err = {0};
    struct eng_image img = {0};
    const struct eng_decode_opts dopts = {.apply_exif = 1};
    if (eng_face_models_load(VISIOND_SOURCE_DIR "/models/faces", NULL, &m, &err) ||
        eng_image_load(VISIOND_SOURCE_DIR "/models/faces/package/demo/sample1.jpg", &dopts, &img, NULL,
                       &err)) {
        print_message("skipped: face models not installed (%s)\n", err.msg);
        eng_face_models_free(m);
        skip();
    }
    struct eng_face_ctx *fc = eng_face_ctx_new(m, &err);
    assert_non_null(fc);
    struct eng_face ref[8], got[8];
    float ref_desc[8][ENG_FACE_DESCRIPTOR], got_desc[8][ENG_FACE_DESCRIPTOR];
    const int n = face_pipeline(m, fc, &img, ref, ref_desc);
    struct eng_team *t = team_new_ok(2, NULL);
    assert_int_equal(eng_face_ctx_set_team(fc, t, &err), 0); /* binds all three contexts */
    assert_int_equal(face_pipeline(m, fc, &img, got, got_desc), n);
    for (int i = 0; i < n; i++) { /* bit-identical, as for the darknet models */
        assert_memory_equal(&got[i].box, &ref[i].box, sizeof ref[i].box);
        assert_memory_equal(&got[i].score, &ref[i].score, sizeof ref[i].score);
        assert_memory_equal(got[i].landmarks, ref[i].landmarks, sizeof ref[i].landmarks);
        assert_memory_equal(got_desc[i], ref_desc[i], sizeof ref_desc[i]);
    }
    eng_face_ctx_free(fc);
    eng_team_free(t);
    eng_image_release(&img);
    eng_face_models_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_team_many_tiny_tasks_each_run_once),
        cmocka_unit_test(test_team_uneven_tasks_all_finished_on_return),
        cmocka_unit_test(test_team_one_thread_and_null_run_inline_in_order),
        cmocka_unit_test(test_team_helpers_start_with_async_signals_blocked),
        cmocka_unit_test(test_team_split_covers_range_exactly),
        cmocka_unit_test(test_team_bad_size_rejected),
        cmocka_unit_test(test_team_budget_lends_idle_cores_and_takes_them_back),
        cmocka_unit_test(test_team_queue_budget_waits_for_a_free_core),
        cmocka_unit_test(test_team_budget_shared_by_concurrent_teams),
        cmocka_unit_test(test_team_conv_every_kind_matches_naive),
        cmocka_unit_test(test_team_yolo_fastest_models_match_single_thread),
        cmocka_unit_test(test_team_tiny_yolos_random_weights_match_single_thread),
        cmocka_unit_test(test_team_packed_weights_same_bits),
        cmocka_unit_test(test_team_face_networks_match_single_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
