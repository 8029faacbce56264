/* net.c - network and context lifetime, and the forward pass. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "eng_blas.h"
#include "net.h"
#include "team.h"

void eng_net_free(struct eng_net *net)
{
    if (!net)
        return;
    if (net->class_names) {
        for (int i = 0; i < net->classes; i++)
            free(net->class_names[i]);
        free(net->class_names);
    }
    for (int i = 0; net->layers && i < net->n_layers; i++)
        if (net->layers[i].kind == ENG_LAYER_CONV) {
            free(net->layers[i].p.conv.wino);
            free(net->layers[i].p.conv.blk);
        }
    free(net->layers);
    free(net->params);
    free(net->packed);
    free(net->name);
    free(net);
}

int eng_net_pack_weights(struct eng_net *net, struct eng_err *err)
{
    size_t total = 0;
    for (int i = 0; i < net->n_layers; i++) {
        if (net->layers[i].kind == ENG_LAYER_CONV)
            net->layers[i].p.conv.packed = NULL;
        total += eng_conv_packed_floats(&net->layers[i]);
    }
    free(net->packed);
    net->packed = NULL;
    if (total == 0)
        return 0;
    if (!(net->packed = malloc(total * sizeof(float))))
        return eng_err_set(err, ENG_ERR_NOMEM, net->name ? net->name : "net",
                           "out of memory for %zu packed weights", total);
    for (size_t i = 0, off = 0; i < (size_t)net->n_layers; i++) {
        const size_t n = eng_conv_packed_floats(&net->layers[i]);
        if (n) {
            eng_conv_pack(&net->layers[i], net->packed + off);
            off += n;
        }
    }
    return 0;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void strip_line_end(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

int eng_net_load_names(struct eng_net *net, const char *path, struct eng_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open names file: %s", strerror(errno));
    char **names = calloc((size_t)net->classes, sizeof *names);
    if (!names) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
    }
    char line[512];
    int n = 0, lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        strip_line_end(line);
        if (!line[0])
            continue;
        if (n >= net->classes) {
            rc = eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                  "more names than the model's %d classes", net->classes);
            break;
        }
        if (!(names[n++] = strdup(line))) {
            rc = eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = eng_err_set(err, ENG_ERR_IO, path, "read error");
    if (rc == 0 && n != net->classes)
        rc = eng_err_set(err, ENG_ERR_INVALID, path, "%d names for a model with %d classes", n,
                         net->classes);
    fclose(f);
    if (rc) {
        free_names(names, n);
        return -1;
    }
    if (net->class_names)
        free_names(net->class_names, net->classes);
    net->class_names = names;
    return 0;
}

const char *eng_net_class_name(const struct eng_net *net, int i, char *buf, size_t size)
{
    if (net->class_names && i >= 0 && i < net->classes)
        return net->class_names[i];
    snprintf(buf, size, "%d", i);
    return buf;
}

int eng_net_class_find(const struct eng_net *net, const char *name)
{
    for (int i = 0; net->class_names && i < net->classes; i++)
        if (strcmp(net->class_names[i], name) == 0)
            return i;
    char *end;
    errno = 0;
    const long v = strtol(name, &end, 10);
    if (*name && !*end && !errno && v >= 0 && v < net->classes)
        return (int)v;
    return -1;
}

void eng_ctx_free(struct eng_ctx *ctx)
{
    if (!ctx)
        return;
    if (!ctx->shared_arena)
        free(ctx->arena);
    free(ctx->outs);
    free(ctx->work);
    free(ctx->rows);
    free(ctx->cand);
    free(ctx->layer_ms);
    free(ctx);
}

/* Layers whose outputs callers read after a forward pass: the heads and the last layer. */
static int read_after_forward(const struct eng_net *net, int i)
{
    const enum eng_layer_kind k = net->layers[i].kind;
    return i == net->n_layers - 1 || k == ENG_LAYER_YOLO || k == ENG_LAYER_REGION;
}

/* The layer whose buffer holds layer i's output: itself, or for a dropout the layer it aliases
 * (-1: the network input). */
static int owner_of(const struct eng_net *net, int i)
{
    while (i >= 0 && !net->layers[i].forward)
        i--;
    return i;
}

static void extend_use(int *last_use, const struct eng_net *net, int producer, int when)
{
    const int o = owner_of(net, producer);
    if (o >= 0 && last_use[o] < when)
        last_use[o] = when;
}

/* last_use[i]: the last layer that reads layer i's buffer (n_layers: read after the pass). */
static void liveness(const struct eng_net *net, int *last_use)
{
    for (int i = 0; i < net->n_layers; i++)
        last_use[i] = read_after_forward(net, i) ? net->n_layers : i;
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (read_after_forward(net, i))
            extend_use(last_use, net, i, net->n_layers);
        if (!l->forward)
            continue;
        extend_use(last_use, net, i - 1, i);
        if (l->kind == ENG_LAYER_ROUTE)
            for (int k = 0; k < l->p.route.n; k++)
                extend_use(last_use, net, l->p.route.inputs[k], i);
        else if (l->kind == ENG_LAYER_SHORTCUT)
            extend_use(last_use, net, l->p.shortcut.from, i);
        else if (l->kind == ENG_LAYER_ADD)
            for (int k = 0; k < l->p.add.n; k++)
                extend_use(last_use, net, l->p.add.inputs[k], i);
        if (l->kind == ENG_LAYER_ADD && l->p.add.by_prev) /* written by layer i - 1 (conv_sep.c): */
            extend_use(last_use, net, i - 2, i);           /* what that one reads stays until then */
    }
}

struct block {
    size_t offset, size;
    int free_after; /* the block may be reused by layers after this one */
};

/* Plans where each layer's output lives in the arena (offset[i], in floats, for layers with a
 * forward function) so that buffers are reused once their last reader has run: the working set
 * stays small enough to live in cache, and contexts stay small. Returns the arena size, the input
 * included (at offset 0), or 0 if out of memory. */
static size_t plan_arena(const struct eng_net *net, size_t *offset)
{
    const int n = net->n_layers;
    int *last_use = malloc(sizeof(int) * ((size_t)n + 1));
    struct block *blocks = malloc(sizeof(struct block) * ((size_t)n + 1));
    if (!last_use || !blocks) {
        free(last_use);
        free(blocks);
        return 0;
    }
    liveness(net, last_use);
    size_t total = eng_shape_size(net->input);
    int n_blocks = 0;
    for (int i = 0; i < n; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (!l->forward)
            continue;
        const size_t need = eng_shape_size(l->out);
        int best = -1;
        for (int b = 0; b < n_blocks; b++) /* best fit among blocks whose readers are done */
            if (blocks[b].free_after < i && blocks[b].size >= need &&
                (best < 0 || blocks[b].size < blocks[best].size))
                best = b;
        if (best < 0) {
            best = n_blocks++;
            blocks[best] = (struct block){total, need, 0};
            total += need;
        }
        blocks[best].free_after = last_use[i];
        offset[i] = blocks[best].offset;
    }
    free(last_use);
    free(blocks);
    return total;
}

/* What a context for net needs: arena floats (input and outputs), scratch, head rows. */
static int ctx_sizes(const struct eng_net *net, size_t *total, size_t *work, size_t *rows)
{
    size_t *offset = calloc((size_t)net->n_layers + 1, sizeof *offset);
    *total = offset ? plan_arena(net, offset) : 0;
    free(offset);
    *work = 1;
    *rows = 1;
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (l->work_floats > *work)
            *work = l->work_floats;
        if (l->kind == ENG_LAYER_YOLO || l->kind == ENG_LAYER_REGION) {
            const size_t r = eng_head_rows_count(l) * (5 + (size_t)l->p.head.classes);
            *rows = r > *rows ? r : *rows;
        }
    }
    return *total ? 0 : -1;
}

static int ctx_layout(struct eng_ctx *ctx, const struct eng_net *net)
{
    size_t *offset = calloc((size_t)net->n_layers + 1, sizeof *offset);
    if (!offset || !plan_arena(net, offset)) {
        free(offset);
        return -1;
    }
    ctx->net = net;
    ctx->input = ctx->arena;
    const float *prev = ctx->input;
    for (int i = 0; i < net->n_layers; i++) {
        ctx->outs[i] = net->layers[i].forward ? ctx->arena + offset[i] : (float *)prev;
        prev = ctx->outs[i];
    }
    free(offset);
    return 0;
}

int eng_ctx_bind(struct eng_ctx *ctx, const struct eng_net *net)
{
    size_t total, work, rows;
    if (ctx_sizes(net, &total, &work, &rows) || net->n_layers != ctx->cap_layers ||
        total > ctx->cap_arena || work > ctx->cap_work || rows > ctx->cap_rows ||
        net->max_candidates > ctx->cap_candidates)
        return -1;
    return ctx_layout(ctx, net);
}

size_t eng_ctx_arena_floats(const struct eng_net *net)
{
    size_t total, work, rows;
    return ctx_sizes(net, &total, &work, &rows) ? 0 : total;
}

/* A context whose arena is `arena` (borrowed, `floats` long) or, if NULL, its own. */
static struct eng_ctx *ctx_create(const struct eng_net *net, float *arena, size_t floats,
                                  struct eng_err *err)
{
    struct eng_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        goto nomem;
    size_t total, work, rows;
    if (ctx_sizes(net, &total, &work, &rows))
        goto nomem;
    if (arena && floats < total) {
        eng_ctx_free(ctx);
        eng_err_set(err, ENG_ERR_INVALID, net->name, "shared arena of %zu floats; the model needs %zu",
                    floats, total);
        return NULL;
    }
    ctx->cap_layers = net->n_layers;
    ctx->cap_arena = arena ? floats : total;
    ctx->cap_work = work;
    ctx->cap_rows = rows;
    ctx->cap_candidates = net->max_candidates;
    ctx->shared_arena = arena != NULL;
    ctx->arena = arena ? arena : malloc(sizeof(float) * total);
    ctx->outs = calloc((size_t)net->n_layers + 1, sizeof *ctx->outs);
    ctx->work = malloc(sizeof(float) * work);
    ctx->rows = malloc(sizeof(float) * rows);
    ctx->cand = calloc(net->max_candidates + 1, sizeof *ctx->cand);
    ctx->layer_ms = calloc((size_t)net->n_layers + 1, sizeof *ctx->layer_ms);
    if (!ctx->arena || !ctx->outs || !ctx->work || !ctx->rows || !ctx->cand || !ctx->layer_ms ||
        ctx_layout(ctx, net))
        goto nomem;
    return ctx;

nomem:
    eng_ctx_free(ctx);
    eng_err_set(err, ENG_ERR_NOMEM, net->name, "out of memory for the model's activations");
    return NULL;
}

struct eng_ctx *eng_ctx_new(const struct eng_net *net, struct eng_err *err)
{
    eng_blas_init();
    return ctx_create(net, NULL, 0, err);
}

struct eng_ctx *eng_ctx_new_shared(const struct eng_net *net, float *arena, size_t floats,
                                   struct eng_err *err)
{
    eng_blas_init();
    return ctx_create(net, arena, floats, err);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct range_split {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    eng_range_fn fn;
    int n, n_tasks;
};

static void range_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct range_split *s = arg;
    int lo, hi;
    eng_team_split(s->n, s->n_tasks, task, 1, &lo, &hi);
    if (hi > lo)
        s->fn(s->l, s->f, lo, hi);
}

void eng_fwd_split(const struct eng_layer *l, const struct eng_fwd *f, int n, eng_range_fn fn)
{
    const int width = eng_team_width(f->team);
    if (width <= 1 || n <= 1) {
        fn(l, f, 0, n);
        return;
    }
    struct range_split s = {.l = l, .f = f, .fn = fn, .n = n, .n_tasks = 2 * width < n ? 2 * width : n};
    eng_team_for(f->team, s.n_tasks, range_task, &s);
}

int eng_ctx_set_team(struct eng_ctx *ctx, struct eng_team *team, struct eng_err *err)
{
    const size_t slots = (size_t)eng_team_size(team);
    if (slots > 1) {
        float *work = malloc(sizeof(float) * ctx->cap_work * slots);
        if (!work)
            return eng_err_set(err, ENG_ERR_NOMEM, ctx->net->name, "out of memory for thread scratch");
        free(ctx->work);
        ctx->work = work;
    }
    ctx->team = team;
    ctx->work_slot = ctx->cap_work;
    return 0;
}

void eng_net_forward(const struct eng_net *net, struct eng_ctx *ctx)
{
    const float *in = ctx->input;
    eng_team_begin(ctx->team);
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (l->forward) {
            const double t0 = ctx->profile ? now_ms() : 0.0;
            eng_team_rebalance(ctx->team); /* cores borrowed or returned at layer boundaries */
            const struct eng_fwd f = {.in = in, .out = ctx->outs[i], .work = ctx->work,
                                      .outs = ctx->outs, .team = ctx->team,
                                      .work_stride = ctx->work_slot};
            l->forward(l, &f);
            if (ctx->profile)
                ctx->layer_ms[i] = now_ms() - t0;
        }
        in = ctx->outs[i];
    }
    eng_team_end(ctx->team);
}
