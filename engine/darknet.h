/* darknet.h - load darknet models (.cfg + .weights) into an eng_net.
 *
 * The cfg parser reports every problem with file:line: an unknown section or a bad value is an error;
 * a key it does not know is a warning (passed to opts->warn), since darknet cfgs carry many training-only
 * keys. Keys whose non-default values would change inference in ways we do not implement (dilation,
 * new_coords, ...) are errors, never silently ignored.
 * The weights file must be exactly as large as the cfg implies; otherwise the error states both sizes. */
#ifndef ENG_DARKNET_H
#define ENG_DARKNET_H

#include "eng_err.h"
#include "net.h"

/* Limits of what a model's files may declare (checked before anything large is allocated). */
#define ENG_DARKNET_MAX_CFG_BYTES (4u << 20)
#define ENG_DARKNET_MAX_PARAMS (512u << 20) /* floats: 2 GiB of weights */

typedef void (*eng_warn_fn)(void *user, const char *where, const char *msg);

struct eng_darknet_opts {
    eng_warn_fn warn; /* NULL: warnings are dropped */
    void *warn_user;
    int width, height; /* > 0: run at this input size instead of the cfg's (multiples of 32) */
};

/* Parses a cfg held in memory (`name` is used in messages) into a new net with all weights zero.
 * On success *out is new (caller frees with eng_net_free). opts may be NULL. */
int eng_darknet_parse_cfg(const char *text, size_t len, const char *name,
                          const struct eng_darknet_opts *opts, struct eng_net **out,
                          struct eng_err *err);

/* The same, without the load-time transforms of the zero weights (Winograd's, the packing): for a
 * caller that loads the weights next, then calls eng_darknet_conv_prepare. The
 * net must not run before that. */
int eng_darknet_parse_cfg_unprepared(const char *text, size_t len, const char *name,
                                     const struct eng_darknet_opts *opts, struct eng_net **out,
                                     struct eng_err *err);

/* Reads a darknet .weights image from memory into net (layout per conv layer: biases, then scales,
 * rolling mean, rolling variance if batch-normalized, then weights), folding batch norm, then prepares
 * them (eng_darknet_conv_prepare). */
int eng_darknet_load_weights_mem(struct eng_net *net, const unsigned char *data, size_t len,
                                 const char *name, struct eng_err *err);

/* Files: cfg, weights (NULL: leave zero weights), names (NULL: numeric labels). *out is new. Its
 * Winograd layers (conv_wino.h) keep only their transformed weights: their c->weights is NULL (a net
 * whose weights are to be changed or read back is made with eng_darknet_parse_cfg and
 * eng_darknet_load_weights_mem, which keep them). */
int eng_darknet_load(const char *cfg_path, const char *weights_path, const char *names_path,
                     const struct eng_darknet_opts *opts, struct eng_net **out, struct eng_err *err);

/* Once the weights are final (parsed as zeros, or loaded): the weights' load-time transforms
 * (conv_wino.h, then the GEMM's packing: eng_net_pack_weights). Returns 0, or -1 with err
 * (ENG_ERR_NOMEM). */
int eng_darknet_conv_prepare(struct eng_net *net, struct eng_err *err, const char *name);

/* The weights of a convolutional layer (filters x in/groups x size x size), bias and batch norm aside. */
size_t eng_darknet_conv_weights(const struct eng_layer *l);

/* Reads a whole file (at most max_bytes) into a new buffer (caller frees). */
int eng_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                  struct eng_err *err);

#endif
