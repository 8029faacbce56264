/* srv_config.h - the daemon's settings, and its API keys.
 *
 * Settings live in one table (srv_config.c) of {name, type, min, max, default, help}, in the manner of
 * redis's config.c. Every setting can come from four places; a later one overrides an earlier one:
 *
 *   1. the default in the table;
 *   2. the config file (`key = value` lines, `#` comments): --config FILE, else VISIOND_CONFIG, else
 *      /etc/visiond/visiond.conf, which may be missing (an explicitly named file may not);
 *   3. the environment: VISIOND_<NAME>, the name upper-cased (VISIOND_MAX_BODY);
 *   4. command-line flags: --<name> with '_' written '-' (--max-body 20M or --max-body=20M).
 *
 * Unknown keys in the file, unknown flags and bad values anywhere are errors naming the place
 * ("visiond.conf:12", "env VISIOND_PORT", "flag --port") and, for numbers, the bounds. Unknown
 * VISIOND_* variables are ignored (scripts use the prefix for other things).
 *
 * Nothing here prints, logs or exits: failures return NULL/-1 and fill a struct eng_err. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "eng_err.h"

#define SRV_CONFIG_DEFAULT_PATH "/etc/visiond/visiond.conf"
#define SRV_CONFIG_SETTINGS_MAX 32 /* capacity of srv_config.origin; the table is smaller */

enum srv_config_log_level {
    SRV_CONFIG_LOG_DEBUG = 0,
    SRV_CONFIG_LOG_INFO,
    SRV_CONFIG_LOG_WARN,
    SRV_CONFIG_LOG_ERROR,
};

enum srv_config_source {
    SRV_CONFIG_FROM_DEFAULT = 0,
    SRV_CONFIG_FROM_FILE,
    SRV_CONFIG_FROM_ENV,
    SRV_CONFIG_FROM_FLAG,
};

/* How workers use the `threads` cores (see README, "Threading"). */
enum srv_config_ui {
    SRV_UI_ON = 0, /* the web page is served at / and /ui/ */
    SRV_UI_OFF,    /* / and /ui/ answer 404 */
};

enum srv_config_threading {
    SRV_THREADING_AUTO = 0,   /* a pass splits its layers over up to 4 cores, waiting until they are idle */
    SRV_THREADING_LATENCY,    /* every forward pass splits its layers over `threads` threads */
    SRV_THREADING_THROUGHPUT, /* each worker runs its forward passes on its own thread */
};

/* Where one setting's effective value came from. Read it through srv_config_where(). */
struct srv_config_origin {
    enum srv_config_source source;
    int line; /* line in config_path, for SRV_CONFIG_FROM_FILE */
};

/* The effective configuration. Plain data: the server reads the fields directly. Strings are owned
 * by the struct (freed by srv_config_free) and never NULL; "" means unset. */
struct srv_config {
    char *bind;               /* listen address: IPv4/IPv6 literal ("localhost" is stored as 127.0.0.1) */
    int port;                 /* TCP port; 0 = ephemeral (tests) */
    char *models;             /* models directory: one sub-folder per model */
    char *default_model;      /* model used when a request names none (a sub-folder name) */
    int workers;              /* inference workers; default: online cores */
    int blas_threads;         /* OpenBLAS threads per worker */
    int threads;              /* cores inference may keep busy (all workers); default: online cores */
    enum srv_config_threading threading; /* how workers share those cores */
    int queue;                /* job queue capacity; full -> 503 */
    int timeout_ms;           /* default request deadline; passed while queued -> 504 */
    size_t max_body;          /* request body limit in bytes -> 413 */
    long max_pixels;          /* decoded image limit (width * height) -> 413 */
    char **cors;              /* allowed CORS origins, NULL-terminated (never NULL; empty = none) */
    size_t n_cors;            /* entries in cors */
    char *keys;               /* API keys file; "" = no keys (only allowed on loopback) */
    enum srv_config_log_level log_level;
    bool access_log;          /* one JSON line per request on stderr */
    int drain_timeout_ms;     /* on SIGTERM: how long in-flight requests may take to finish */
    double queue_high_water;  /* /readyz is 503 while queue depth > this fraction of queue */
    int max_connections;      /* open HTTP connections at once; more wait in the listen backlog */
    int max_connections_per_ip; /* open connections from one client address; 0 = no limit */
    int idle_timeout_s;       /* a connection silent this long is closed */
    int json_precision;       /* an enum proto_precision (proto_output.h): rounded or full */
    int read_timeout_ms;      /* one request's headers and body must arrive within this (slow-loris) */
    enum srv_config_ui ui;    /* the web page at / (server/srv_ui.h) */
    char *data_dir;           /* where the daemon keeps its state (the SQLite gallery) */
    char *gallery;            /* "" = sqlite:<data_dir>/gallery.db; or sqlite:PATH, postgres://... */

    /* Not settings: what the command line asked for, and bookkeeping. */
    char *config_path;        /* file that was read; "" if none */
    bool print_config;        /* --print-config given */
    bool help;                /* --help or -h given */
    struct srv_config_origin origin[SRV_CONFIG_SETTINGS_MAX]; /* by table index; private */
};

/* Where srv_config_load looks. Every field may be zero/NULL. */
struct srv_config_args {
    int argc;
    char *const *argv;        /* argv[1..argc) are flags; argv[0] (the command, "serve") is skipped */
    char *const *envp;        /* "NAME=value", NULL-terminated; NULL = the process environment */
    const char *default_path; /* file read when none is named; NULL = SRV_CONFIG_DEFAULT_PATH */
};

/* Builds the configuration from defaults, file, environment and flags (see the top of this file).
 * Returns a new config (caller frees with srv_config_free), or NULL with *err filled: kind
 * ENG_ERR_INVALID for a bad key, flag or value; ENG_ERR_IO if a named config file cannot be read;
 * ENG_ERR_NOMEM. Does not run srv_config_validate. Not thread-safe if envp is NULL and another thread
 * changes the environment. */
struct srv_config *srv_config_load(const struct srv_config_args *args, struct eng_err *err);

/* Frees cfg and its strings. NULL is a no-op. */
void srv_config_free(struct srv_config *cfg);

/* Cross-setting checks, after loading. Returns 0 if the daemon may start, or -1 with *err filled
 * (ENG_ERR_INVALID, `where` = the source of the offending setting). The security rule: a bind address
 * other than loopback (127.0.0.0/8, ::1, localhost) requires a keys file. Problems that do not stop
 * the daemon (workers * blas_threads > online cores) are written as text, one per line, into
 * warnings[0..warnings_size) (always NUL-terminated; "" if none; warnings may be NULL when
 * warnings_size is 0), also when the result is -1. online_cores <= 0 means ask the OS. Prints nothing. */
int srv_config_validate(const struct srv_config *cfg, long online_cores, char *warnings,
                        size_t warnings_size, struct eng_err *err);

/* True for 127.0.0.0/8, ::1, ::ffff:127.x.x.x and "localhost". */
bool srv_config_is_loopback(const char *addr);

/* Writes every effective value and where it came from, one per line, aligned, in the config file's
 * own syntax ("port = 8080   # flag --port"), for `visiond serve --print-config`. */
void srv_config_print(const struct srv_config *cfg, FILE *out);

/* Writes the flags with their help, defaults and bounds, for `visiond serve --help`. */
void srv_config_usage(FILE *out);

/* Where setting `name` came from: "default", "<file>:<line>", "env VISIOND_PORT" or "flag --port",
 * written into buf; returns buf, or NULL if there is no such setting. */
const char *srv_config_where(const struct srv_config *cfg, const char *name, char *buf, size_t size);

/* The i-th setting's name (borrowed, static), or NULL past the end; for listing the table. */
const char *srv_config_name(size_t i);

/* For a reload that cannot apply setting `name` at run time: if its value differs between `to` (the
 * new configuration) and `from` (the running one), gives `to` the running value and its origin and
 * returns 1; returns 0 if they are equal, or -1 with *err for an unknown name or no memory. */
int srv_config_keep(struct srv_config *to, const struct srv_config *from, const char *name,
                    struct eng_err *err);

/* s without leading and trailing white space (in place: the end is cut). Borrowed from s. */
char *srv_config_trim(char *s);

#endif
