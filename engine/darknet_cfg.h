/* darknet_cfg.h - a darknet .cfg as text (engine/darknet_cfg.c), for darknet.c only: the file becomes
 * sections of key=value pairs, each with its line, and typed getters read them. A present but malformed
 * or out-of-range value is an error at its line (in c->err); an absent key gives the default. Getters
 * mark what they read, so the keys nobody read can be reported. Everything returned is borrowed from the
 * eng_cfg, valid until eng_cfg_free. Not thread-safe (one parse, one thread). */
#ifndef ENG_DARKNET_CFG_H
#define ENG_DARKNET_CFG_H

#include <stddef.h>

#include "darknet.h"
#include "eng_err.h"
#include "layer.h"

struct eng_cfg_kv {
    char *key, *value;
    int line;
    int used;
};

struct eng_cfg_section {
    char *name;
    int line;
    int first, n; /* its kvs */
};

struct eng_cfg {
    const char *name;    /* the file's name, in messages; set by the caller */
    struct eng_err *err; /* where errors go; set by the caller */
    char *text;          /* a copy of the file, cut into the strings below */
    struct eng_cfg_section *secs;
    int n_secs;
    struct eng_cfg_kv *kvs;
    int n_kvs;
};

/* Splits text (len bytes, at most ENG_DARKNET_MAX_CFG_BYTES) into sections; 0, or -1 with c->err set.
 * c needs eng_cfg_free either way. */
int eng_cfg_parse(struct eng_cfg *c, const char *text, size_t len);
void eng_cfg_free(struct eng_cfg *c);

/* The key in section s (marked used), or NULL. */
struct eng_cfg_kv *eng_cfg_find(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key);
/* "key=value: what" at the key's line into c->err; returns -1. */
int eng_cfg_bad_value(struct eng_cfg *c, const struct eng_cfg_kv *kv, const char *what);

/* *out = the value in lo..hi, or def when the key is absent; 0, or -1 with c->err set. */
int eng_cfg_int(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int def, int lo, int hi,
                int *out);
int eng_cfg_float(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, float def, float lo,
                  float hi, float *out);
/* A comma-separated list of ints (or floats) into vals (max entries); *n = 0 when the key is absent. */
int eng_cfg_list(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int is_float,
                 void *vals, int max, int *n);
int eng_cfg_act(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, enum eng_act *act);
/* A key darknet understands but whose non-default value changes inference in a way we do not
 * implement: any other value than def is an error (accepting it silently would give wrong answers). */
int eng_cfg_require_default(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int def);

/* Passes each key of s that nobody read and that is not a training-only key to opts->warn. */
void eng_cfg_warn_unused(struct eng_cfg *c, const struct eng_cfg_section *s,
                         const struct eng_darknet_opts *opts);

#endif
