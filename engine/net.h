/* net.h - a loaded network (immutable, shared) and a worker's context (mutable, private).
 *
 * Ownership: eng_net_free() frees the net and everything its layers point to. An eng_ctx belongs to one
 * thread at a time; it holds every activation and the scratch space, sized from the net when created,
 * so eng_net_forward() allocates nothing. Several contexts may run the same net concurrently. */
#ifndef ENG_NET_H
#define ENG_NET_H

#include <stddef.h>

#include "eng_err.h"
#include "layer.h"

#define ENG_NET_MAX_HEADS 8

struct eng_detection;

struct eng_net {
    char *name;              /* e.g. "yolo-fastest-1.1-xl" */
    struct eng_shape input;  /* c = 3 */
    int n_layers;
    struct eng_layer *layers;
    int n_heads;
    int heads[ENG_NET_MAX_HEADS]; /* indices of [yolo]/[region] layers, in cfg order */
    int classes;
    char **class_names;      /* `classes` strings, or NULL if no names were loaded */
    float *params;           /* one block holding every layer's weights and biases */
    float *packed;           /* one block holding the conv weights packed for the GEMM, or NULL */
    size_t n_params;
    size_t max_candidates;   /* anchors x cells over all heads: the most boxes a forward can yield */
    double flops;
};

/* Frees everything; NULL is a no-op. */
void eng_net_free(struct eng_net *net);

/* Packs the convolutions' weights for the GEMM the process's kernel set runs (eng_conv_pack) into
 * net->packed, replacing an earlier packing. Loaders call it once the weights are final (batch norm
 * folded): the forward pass then reads them as the register tiles want, with the same results. 0, or
 * -1 with err (ENG_ERR_NOMEM). */
int eng_net_pack_weights(struct eng_net *net, struct eng_err *err);

/* Loads class names (one per line, blank trailing lines ignored) into net->class_names. The file
 * must hold exactly net->classes names. */
int eng_net_load_names(struct eng_net *net, const char *path, struct eng_err *err);

/* Name of class i, or "class_<i>" style fallback written into buf when no names are loaded. */
const char *eng_net_class_name(const struct eng_net *net, int i, char *buf, size_t size);

/* Looks a class up by name (exact) or number; returns -1 if unknown. */
int eng_net_class_find(const struct eng_net *net, const char *name);

struct eng_ctx {
    const struct eng_net *net;
    float *input;              /* eng_shape_size(net->input) floats: fill, then forward */
    float **outs;              /* per layer: its output (dropout layers alias their input) */
    float *arena;              /* one block for all outputs */
    int shared_arena;          /* arena is borrowed (eng_ctx_new_shared), not freed with ctx */
    float *work;               /* scratch shared by layers, the largest any layer needs */
    float *rows;               /* room for the largest head's eng_head_rows output */
    struct eng_detection *cand; /* net->max_candidates candidate boxes for detection */
    double *layer_ms;          /* per-layer time of the last forward when profiling is on */
    struct eng_team *team;     /* borrowed: splits each layer across threads (NULL: one thread) */
    size_t work_slot;          /* floats of scratch per team slot (work holds team size slots) */
    int profile;
    /* what the buffers were sized for (the net given to eng_ctx_new) */
    int cap_layers;
    size_t cap_arena, cap_work, cap_rows, cap_candidates;
};

/* New context for net, or NULL with err (ENG_ERR_NOMEM). Free with eng_ctx_free. */
struct eng_ctx *eng_ctx_new(const struct eng_net *net, struct eng_err *err);
void eng_ctx_free(struct eng_ctx *ctx);

/* Floats of activation memory (the arena: input and planned outputs) a context for net needs, or 0 if
 * out of memory while planning it. */
size_t eng_ctx_arena_floats(const struct eng_net *net);

/* Like eng_ctx_new, but the activations live in arena (`floats` long, at least
 * eng_ctx_arena_floats(net)), borrowed: free it after every context using it. Contexts sharing an arena
 * must not run at the same time, and a forward pass of one overwrites the outputs of the others: for
 * the contexts of one worker, which runs one job at a time, so that it needs the largest model's
 * activations instead of the sum of all of them. NULL with err if the arena is too small or out of
 * memory. */
struct eng_ctx *eng_ctx_new_shared(const struct eng_net *net, float *arena, size_t floats,
                                   struct eng_err *err);

/* Re-points ctx at another net that fits in its buffers: the same number of layers, and no more
 * activations, scratch or candidates than the net ctx was created for (in practice the same
 * architecture built for a smaller input size, sharing weights). Returns 0, or -1 with ctx unchanged
 * if net does not fit. Never allocates; outputs of the previous forward are lost. */
int eng_ctx_bind(struct eng_ctx *ctx, const struct eng_net *net);

/* Binds ctx to team (borrowed, may be NULL; it must outlive ctx or be unbound first): later forward
 * passes split each layer across it. Grows the scratch to one slot per team thread, so it may
 * allocate; returns 0, or -1 with err (ENG_ERR_NOMEM) and ctx unchanged. A team drives one forward
 * at a time: bind it to contexts that one thread uses (e.g. all of one worker's). */
int eng_ctx_set_team(struct eng_ctx *ctx, struct eng_team *team, struct eng_err *err);

/* Runs every layer on ctx->input. Never fails and never allocates. */
void eng_net_forward(const struct eng_net *net, struct eng_ctx *ctx);

/* Output of layer i after a forward pass (borrowed from ctx). Buffers are reused once their last
 * reader has run, so after a pass this is valid only for the heads and the last layer (and for a
 * layer read by another one, until that reader has run). */
static inline const float *eng_ctx_output(const struct eng_ctx *ctx, int i)
{
    return ctx->outs[i];
}

#endif
