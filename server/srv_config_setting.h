/* srv_config_setting.h - what srv_config.c (the settings table, its sources), srv_config_value.c
 * (parsing and checking one value) and srv_config_print.c (--print-config, --help) share. Private to
 * server/. */
#ifndef SRV_CONFIG_SETTING_H
#define SRV_CONFIG_SETTING_H

#include <stdbool.h>
#include <stddef.h>

#include "eng_err.h"
#include "srv_config.h"

enum type {
    T_INT,    /* int field; min..max */
    T_LONG,   /* long field; min..max */
    T_SIZE,   /* size_t field; bytes, with k/M/G suffixes (binary); min..max */
    T_FLOAT,  /* double field; min..max */
    T_BOOL,   /* bool field */
    T_STRING, /* char * field; length min..max */
    T_ENUM,   /* enum field (int-sized); one of `choices` */
    T_LIST,   /* char ** field (NULL-terminated) + size_t count; comma-separated, count min..max */
};

#define F_CORES 1u /* default is the number of online cores (clamped to the bounds) */

struct setting {
    const char *name;
    enum type type;
    size_t offset;       /* of the value in struct srv_config */
    size_t count_offset; /* T_LIST: of the size_t count */
    double min, max;     /* value, string length or list length bounds */
    const char *dflt;    /* parsed like any other value; ignored with F_CORES */
    unsigned flags;
    const char *arg;     /* the value's name in --help */
    const char *help;
    const char *const *choices;                            /* T_ENUM, NULL-terminated */
    int (*check)(char *value, char *why, size_t why_size); /* T_STRING/T_LIST item: may normalize */
};

/* A parsed value, before it is stored. */
union value {
    long long i;
    double f;
    bool b;
    char *s;
    struct {
        char **items;
        size_t n;
    } list;
};

/* The place a value came from, for error messages and srv_config_where. */
struct place {
    enum srv_config_source source;
    const char *file; /* FROM_FILE */
    int line;         /* FROM_FILE */
};

int srv_config_place_err(struct eng_err *err, enum eng_err_kind kind, const struct place *pl,
                         const struct setting *s, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void srv_config_flag_name(const struct setting *s, char *buf, size_t size); /* "--max-body" */
void srv_config_env_name(const char *name, char *buf, size_t size);         /* "VISIOND_MAX_BODY" */
void srv_config_free_list(char **items);                                    /* NULL-terminated */

/* Checks beyond type and bounds (struct setting.check): 0, or -1 with why; may normalize value. */
int srv_config_check_bind(char *value, char *why, size_t why_size);
int srv_config_check_model_name(char *value, char *why, size_t why_size);
int srv_config_check_origin(char *value, char *why, size_t why_size);

/* Text into *v by s's type, bounds and check; -1 with *err naming pl. v's strings/lists are new. */
int srv_config_parse_value(const struct setting *s, const char *text, const struct place *pl, union value *v,
                           struct eng_err *err);
int srv_config_parse_int(const char *text, long long *out);
int srv_config_parse_bool(const char *text, bool *out);

/* The settings table (static, srv_config.c): *n rows. */
const struct setting *srv_config_settings(size_t *n);

#define SRV_CONFIG_VALUE_MAX 8192 /* the printed form of any value, with its NUL */
/* s's value in cfg as --print-config prints it (a gallery URI without its password) into buf. */
void srv_config_format_value(const struct srv_config *cfg, const struct setting *s, char *buf, size_t size);

/* 20M rather than 20971520 when exact; "min..max" of a setting, for messages and --help. */
void srv_config_format_size(long long v, char *buf, size_t size);
void srv_config_format_bounds(const struct setting *s, char *buf, size_t size);

#endif
