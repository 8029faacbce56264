/* srv_config.c - the settings table and its four sources (the value parsers: srv_config_value.c;
 * --print-config and --help: srv_config_print.c).
 *
 * Design (after redis's config.c): every setting is one row of `settings[]` with its type, bounds,
 * default and the offset of its field in struct srv_config. One parser per type turns text into a
 * value, checking bounds; the default strings go through the same parser, so a default outside its
 * own bounds fails the first test. Loading applies the sources from weakest to strongest (defaults,
 * file, environment, flags); each store records where the value came from. The flags are parsed
 * first, for --config, but applied last. */
#include "srv_config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gal.h" /* gal_spec_redact */
#include "srv_config_setting.h"

extern char **environ;

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const threading_modes[] = {"auto", "latency", "throughput", NULL};
static const char *const ui_modes[] = {"on", "off", NULL};
static const char *const precisions[] = {"rounded", "full", NULL}; /* in enum proto_precision's order */

#define OFF(field) offsetof(struct srv_config, field)
#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)

static const struct setting settings[] = {
    {"bind", T_STRING, OFF(bind), 0, 1, 255, "127.0.0.1", 0, "ADDR",
     "listen address (IPv4/IPv6 literal or localhost); anything but loopback requires keys", NULL,
     srv_config_check_bind},
    {"port", T_INT, OFF(port), 0, 0, 65535, "8080", 0, "N", "TCP port; 0 picks a free one", NULL, NULL},
    {"models", T_STRING, OFF(models), 0, 1, 4095, "models", 0, "DIR",
     "models directory: one sub-folder per model", NULL, NULL},
    {"default_model", T_STRING, OFF(default_model), 0, 1, 255, "yolo-fastest-1.1-xl", 0, "NAME",
     "model used when a request names none", NULL, srv_config_check_model_name},
    {"workers", T_INT, OFF(workers), 0, 1, 1024, NULL, F_CORES, "N",
     "inference workers (default: online cores)", NULL, NULL},
    {"blas_threads", T_INT, OFF(blas_threads), 0, 1, 256, "1", 0, "N", "OpenBLAS threads per worker",
     NULL, NULL},
    {"threads", T_INT, OFF(threads), 0, 1, 64, NULL, F_CORES, "N",
     "cores inference keeps busy, all workers together (default: online cores)", NULL, NULL},
    {"threading", T_ENUM, OFF(threading), 0, 0, 0, "auto", 0, "MODE",
     "auto (each pass splits layers over the idle cores, up to 4, and hands them back when another pass "
     "starts), latency (always split over threads) or throughput (one thread per request)", threading_modes,
     NULL},
    {"queue", T_INT, OFF(queue), 0, 1, 65536, "64", 0, "N", "job queue capacity; when full, 503", NULL,
     NULL},
    {"timeout_ms", T_INT, OFF(timeout_ms), 0, 1, 3600000, "10000", 0, "MS",
     "default request deadline; expired while queued, 504", NULL, NULL},
    {"max_body", T_SIZE, OFF(max_body), 0, KIB, GIB, "20M", 0, "BYTES",
     "largest request body (suffixes k, M, G); larger, 413", NULL, NULL},
    {"max_pixels", T_LONG, OFF(max_pixels), 0, 1, 1000000000, "40000000", 0, "N",
     "largest image, width x height; larger, 413", NULL, NULL},
    {"cors", T_LIST, OFF(cors), OFF(n_cors), 0, 32, "", 0, "ORIGINS",
     "comma-separated allowed CORS origins (https://host[:port] or *); empty: none", NULL,
     srv_config_check_origin},
    {"keys", T_STRING, OFF(keys), 0, 0, 4095, "", 0, "FILE",
     "API keys file, one key per line; empty: no keys (loopback only)", NULL, NULL},
    {"log_level", T_ENUM, OFF(log_level), 0, 0, 0, "info", 0, "LEVEL", "debug, info, warn or error",
     log_levels, NULL},
    {"access_log", T_BOOL, OFF(access_log), 0, 0, 0, "yes", 0, "BOOL",
     "one JSON line per request on stderr", NULL, NULL},
    {"drain_timeout_ms", T_INT, OFF(drain_timeout_ms), 0, 0, 600000, "10000", 0, "MS",
     "on SIGTERM, how long in-flight requests may take", NULL, NULL},
    {"queue_high_water", T_FLOAT, OFF(queue_high_water), 0, 0, 1, "0.8", 0, "FRACTION",
     "/readyz answers 503 while the queue is fuller than this", NULL, NULL},
    {"max_connections", T_INT, OFF(max_connections), 0, 1, 100000, "512", 0, "N",
     "open HTTP connections at once; more wait until one closes", NULL, NULL},
    {"max_connections_per_ip", T_INT, OFF(max_connections_per_ip), 0, 0, 100000, "64", 0, "N",
     "open connections from one client address; 0: no limit", NULL, NULL},
    {"idle_timeout_s", T_INT, OFF(idle_timeout_s), 0, 1, 3600, "30", 0, "S",
     "a connection that sends or takes nothing for this long is closed", NULL, NULL},
    {"json_precision", T_ENUM, OFF(json_precision), 0, 0, 0, "rounded", 0, "MODE",
     "numbers in answers: rounded (0.01 px, 1e-4 scores) or full (every float as computed, for bit-for-bit "
     "comparisons)", precisions, NULL},
    {"read_timeout_ms", T_INT, OFF(read_timeout_ms), 0, 100, 3600000, "60000", 0, "MS",
     "one request's headers and body must arrive within this, else the connection is closed", NULL,
     NULL},
    {"ui", T_ENUM, OFF(ui), 0, 0, 0, "on", 0, "on|off",
     "the web page at / and /ui/ (no key needed to load it; its API calls need one)", ui_modes, NULL},
    {"data_dir", T_STRING, OFF(data_dir), 0, 1, 4000, "data", 0, "DIR",
     "the daemon's state (the default gallery, gallery.db); systemd: StateDirectory", NULL, NULL},
    {"gallery", T_STRING, OFF(gallery), 0, 0, 4000, "", 0, "SPEC",
     "face gallery: sqlite:PATH or a PostgreSQL URI postgres://...; empty: sqlite:DATA_DIR/gallery.db "
     "(the password is never printed)", NULL, NULL},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])
static_assert(N_SETTINGS <= SRV_CONFIG_SETTINGS_MAX, "raise SRV_CONFIG_SETTINGS_MAX");
static_assert(sizeof(enum srv_config_log_level) == sizeof(int), "T_ENUM stores an int");
static_assert(sizeof(enum srv_config_threading) == sizeof(int), "T_ENUM stores an int");
static_assert(sizeof(enum srv_config_ui) == sizeof(int), "T_ENUM stores an int");

/* ---- small helpers ---- */

char *srv_config_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void *field(struct srv_config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

static const void *cfield(const struct srv_config *cfg, size_t offset)
{
    return (const char *)cfg + offset;
}

const struct setting *srv_config_settings(size_t *n)
{
    *n = N_SETTINGS;
    return settings;
}

static const struct setting *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

/* Finds a setting by flag name ("max-body"; '_' is accepted for '-'). */
static const struct setting *find_flag(const char *flag, size_t len)
{
    char name[64];
    if (len >= sizeof name)
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = flag[i] == '-' ? '_' : flag[i];
    return find_setting(name, len);
}

void srv_config_flag_name(const struct setting *s, char *buf, size_t size)
{
    snprintf(buf, size, "--%s", s->name);
    for (char *p = buf + 2; *p; p++)
        if (*p == '_')
            *p = '-';
}

void srv_config_env_name(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "VISIOND_%s", name);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

void srv_config_free_list(char **items)
{
    if (!items)
        return;
    for (char **p = items; *p; p++)
        free(*p);
    free(items);
}

int srv_config_place_err(struct eng_err *err, enum eng_err_kind kind, const struct place *pl,
                     const struct setting *s, const char *fmt, ...)
{
    char where[ENG_ERR_WHERE_MAX], msg[ENG_ERR_MSG_MAX], name[96];
    switch (pl->source) {
    case SRV_CONFIG_FROM_FILE:
        snprintf(where, sizeof where, "%s:%d", pl->file, pl->line);
        break;
    case SRV_CONFIG_FROM_ENV:
        srv_config_env_name(s->name, name, sizeof name);
        snprintf(where, sizeof where, "env %s", name);
        break;
    case SRV_CONFIG_FROM_FLAG:
        srv_config_flag_name(s, name, sizeof name);
        snprintf(where, sizeof where, "flag %s", name);
        break;
    default:
        snprintf(where, sizeof where, "default");
        break;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return eng_err_set(err, kind, where, "%s", msg);
}

/* Stores v (taking its memory) into cfg and records where it came from. */
static void store_value(struct srv_config *cfg, const struct setting *s, union value *v, const struct place *pl)
{
    void *f = field(cfg, s->offset);
    switch (s->type) {
    case T_INT:
        *(int *)f = (int)v->i;
        break;
    case T_LONG:
        *(long *)f = (long)v->i;
        break;
    case T_SIZE:
        *(size_t *)f = (size_t)v->i;
        break;
    case T_FLOAT:
        *(double *)f = v->f;
        break;
    case T_BOOL:
        *(bool *)f = v->b;
        break;
    case T_ENUM: {
        int i = (int)v->i;
        memcpy(f, &i, sizeof i);
        break;
    }
    case T_STRING:
        free(*(char **)f);
        *(char **)f = v->s;
        break;
    case T_LIST:
        srv_config_free_list(*(char ***)f);
        *(char ***)f = v->list.items;
        *(size_t *)field(cfg, s->count_offset) = v->list.n;
        break;
    }
    struct srv_config_origin *o = &cfg->origin[s - settings];
    o->source = pl->source;
    o->line = pl->source == SRV_CONFIG_FROM_FILE ? pl->line : 0;
}

static int set_value(struct srv_config *cfg, const struct setting *s, const char *text, const struct place *pl,
                     struct eng_err *err)
{
    union value v;
    if (srv_config_parse_value(s, text, pl, &v, err) < 0)
        return -1;
    store_value(cfg, s, &v, pl);
    return 0;
}

/* ---- the sources ---- */

static int apply_defaults(struct srv_config *cfg, struct eng_err *err)
{
    const struct place pl = {SRV_CONFIG_FROM_DEFAULT, NULL, 0};
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        char buf[32];
        const char *text = s->dflt;
        if (s->flags & F_CORES) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            n = n < (long)s->min ? (long)s->min : n > (long)s->max ? (long)s->max : n;
            snprintf(buf, sizeof buf, "%ld", n);
            text = buf;
        }
        if (set_value(cfg, s, text, &pl, err) < 0)
            return -1;
    }
    return 0;
}

/* Cuts an inline comment: a '#' at the start of the value or after whitespace. */
static void cut_comment(char *value)
{
    for (char *p = value; *p; p++)
        if (*p == '#' && (p == value || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
}

static int parse_file_line(struct srv_config *cfg, char *line, const char *path, int lineno, int *seen,
                           struct eng_err *err)
{
    char *s = srv_config_trim(line);
    if (!*s || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "expected 'key = value', got '%.80s'", s);
    *eq = '\0';
    char *key = srv_config_trim(s), *value = eq + 1;
    cut_comment(value);
    value = srv_config_trim(value);
    const struct setting *st = find_setting(key, strlen(key));
    if (!st) {
        const struct setting *alt = find_flag(key, strlen(key)); /* "max-body" for "max_body" */
        if (alt)
            return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "unknown setting '%.80s' (did you mean '%s'?)",
                                    key, alt->name);
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "unknown setting '%.80s'", key);
    }
    size_t idx = (size_t)(st - settings);
    if (seen[idx])
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "'%s' is set twice (first at line %d)",
                                st->name, seen[idx]);
    seen[idx] = lineno;
    const struct place pl = {SRV_CONFIG_FROM_FILE, path, lineno};
    return set_value(cfg, st, value, &pl, err);
}

/* Reads the config file. A missing file is fine unless it was named explicitly. */
static int apply_file(struct srv_config *cfg, const char *path, bool explicit, struct eng_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT && !explicit)
            return 0;
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open config file: %s", strerror(errno));
    }
    char *copy = strdup(path);
    if (!copy) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
    }
    free(cfg->config_path);
    cfg->config_path = copy;

    int seen[N_SETTINGS] = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    errno = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strlen(line) != (size_t)n)
            rc = eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "NUL byte in line");
        else
            rc = parse_file_line(cfg, line, path, lineno, seen, err);
    }
    if (rc == 0 && ferror(f))
        rc = eng_err_set(err, errno == ENOMEM ? ENG_ERR_NOMEM : ENG_ERR_IO, path, "cannot read config file: %s",
                         strerror(errno ? errno : EIO));
    free(line);
    fclose(f);
    return rc;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

static int apply_env(struct srv_config *cfg, char *const *envp, struct eng_err *err)
{
    const struct place pl = {SRV_CONFIG_FROM_ENV, NULL, 0};
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char name[96];
        srv_config_env_name(settings[i].name, name, sizeof name);
        const char *value = env_get(envp, name);
        if (value) {
            char *copy = strdup(value);
            if (!copy)
                return eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory");
            int rc = set_value(cfg, &settings[i], srv_config_trim(copy), &pl, err);
            free(copy);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

/* A flag found on the command line, applied after the file and the environment. */
struct flag_value {
    const struct setting *s;
    const char *value;
};

/* Parses argv into settings (flags), --config, --print-config and --help. */
static int parse_flags(struct srv_config *cfg, const struct srv_config_args *args, struct flag_value *flags,
                       size_t *n_flags, const char **config_path, struct eng_err *err)
{
    *n_flags = 0;
    for (int i = 1; i < args->argc; i++) {
        const char *arg = args->argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cfg->help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return eng_err_set(err, ENG_ERR_INVALID, "command line", "unexpected argument '%.80s'", arg);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;

        if (len == 12 && strncmp(name, "print-config", len) == 0) {
            if (value)
                return eng_err_set(err, ENG_ERR_INVALID, "flag --print-config", "takes no value");
            cfg->print_config = true;
            continue;
        }
        bool is_config = len == 6 && strncmp(name, "config", len) == 0;
        const struct setting *s = is_config ? NULL : find_flag(name, len);
        bool negated = false;
        if (!is_config && !s && len > 3 && strncmp(name, "no-", 3) == 0) {
            s = find_flag(name + 3, len - 3);
            negated = s && s->type == T_BOOL;
            if (!negated)
                s = NULL;
        }
        if (!is_config && !s)
            return eng_err_set(err, ENG_ERR_INVALID, "command line", "unknown option '--%.*s'",
                               (int)(len > 80 ? 80 : len), name);
        char where[96] = "flag --config";
        if (s)
            srv_config_flag_name(s, where + 5, sizeof where - 5);
        if (negated || (s && s->type == T_BOOL && !value)) {
            if (negated && value)
                return eng_err_set(err, ENG_ERR_INVALID, where, "--no-%s takes no value", s->name);
            value = negated ? "no" : "yes";
        } else if (!value) {
            /* `--models --port 80` is a forgotten value, not a folder named "--port". */
            if (i + 1 >= args->argc || strncmp(args->argv[i + 1], "--", 2) == 0)
                return eng_err_set(err, ENG_ERR_INVALID, where, "needs a value");
            value = args->argv[++i];
        }
        if (is_config) {
            *config_path = value;
            continue;
        }
        flags[*n_flags].s = s;
        flags[*n_flags].value = value;
        (*n_flags)++;
    }
    return 0;
}

struct srv_config *srv_config_load(const struct srv_config_args *args, struct eng_err *err)
{
    static const struct srv_config_args none = {0};
    if (!args)
        args = &none;
    struct srv_config *cfg = calloc(1, sizeof *cfg);
    struct flag_value *flags = calloc(args->argc > 0 ? (size_t)args->argc : 1, sizeof *flags);
    if (!cfg || !flags || !(cfg->config_path = strdup(""))) {
        free(flags);
        srv_config_free(cfg);
        eng_err_set(err, ENG_ERR_NOMEM, "", "out of memory");
        return NULL;
    }
    char *const *envp = args->envp ? args->envp : environ;
    size_t n_flags = 0;
    const char *path = NULL;
    bool explicit = true;
    if (parse_flags(cfg, args, flags, &n_flags, &path, err) < 0 || apply_defaults(cfg, err) < 0)
        goto fail;
    if (cfg->help) { /* --help works even when the file or the environment is broken */
        free(flags);
        return cfg;
    }
    if (!path)
        path = env_get(envp, "VISIOND_CONFIG");
    if (!path) {
        path = args->default_path ? args->default_path : SRV_CONFIG_DEFAULT_PATH;
        explicit = false;
    }
    if (!*path) {
        eng_err_set(err, ENG_ERR_INVALID, "config", "empty config file path");
        goto fail;
    }
    if (apply_file(cfg, path, explicit, err) < 0 || apply_env(cfg, envp, err) < 0)
        goto fail;
    const struct place pl = {SRV_CONFIG_FROM_FLAG, NULL, 0};
    for (size_t i = 0; i < n_flags; i++)
        if (set_value(cfg, flags[i].s, flags[i].value, &pl, err) < 0)
            goto fail;
    free(flags);
    return cfg;
fail:
    free(flags);
    srv_config_free(cfg);
    return NULL;
}

void srv_config_free(struct srv_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (settings[i].type == T_STRING)
            free(*(char **)field(cfg, settings[i].offset));
        else if (settings[i].type == T_LIST)
            srv_config_free_list(*(char ***)field(cfg, settings[i].offset));
    }
    free(cfg->config_path);
    free(cfg);
}

/* ---- after loading ---- */

bool srv_config_is_loopback(const char *addr)
{
    unsigned char a[16];
    if (!addr)
        return false;
    if (strcasecmp(addr, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, addr, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, addr, a) == 1) {
        static const unsigned char v6_loopback[16] = {[15] = 1};
        static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(a, v6_loopback, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
    }
    return false;
}

const char *srv_config_where(const struct srv_config *cfg, const char *name, char *buf, size_t size)
{
    const struct setting *s = name ? find_setting(name, strlen(name)) : NULL;
    if (!s || !buf || size == 0)
        return NULL;
    const struct srv_config_origin *o = &cfg->origin[s - settings];
    char tmp[96];
    switch (o->source) {
    case SRV_CONFIG_FROM_FILE:
        snprintf(buf, size, "%s:%d", cfg->config_path, o->line);
        break;
    case SRV_CONFIG_FROM_ENV:
        srv_config_env_name(s->name, tmp, sizeof tmp);
        snprintf(buf, size, "env %s", tmp);
        break;
    case SRV_CONFIG_FROM_FLAG:
        srv_config_flag_name(s, tmp, sizeof tmp);
        snprintf(buf, size, "flag %s", tmp);
        break;
    default:
        snprintf(buf, size, "default");
        break;
    }
    return buf;
}

int srv_config_validate(const struct srv_config *cfg, long online_cores, char *warnings, size_t warnings_size,
                        struct eng_err *err)
{
    if (warnings && warnings_size)
        warnings[0] = '\0';
    /* Warnings first, so they are reported even when an error follows. */
    if (online_cores <= 0)
        online_cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = (long)cfg->workers * cfg->blas_threads;
    if (online_cores > 0 && threads > online_cores && warnings && warnings_size)
        snprintf(warnings + strlen(warnings), warnings_size - strlen(warnings),
                 "workers (%d) x blas_threads (%d) = %ld threads exceed the %ld online cores; they will "
                 "compete for CPU and latency will suffer\n",
                 cfg->workers, cfg->blas_threads, threads, online_cores);
    long team_threads = cfg->threading == SRV_THREADING_LATENCY ? (long)cfg->workers * cfg->threads : 0;
    if (online_cores > 0 && team_threads > online_cores && warnings && warnings_size)
        snprintf(warnings + strlen(warnings), warnings_size - strlen(warnings),
                 "threading = latency: workers (%d) x threads (%d) = %ld threads exceed the %ld online "
                 "cores when every worker is busy; 'auto' shares the cores instead\n",
                 cfg->workers, cfg->threads, team_threads, online_cores);

    if (!srv_config_is_loopback(cfg->bind) && !cfg->keys[0]) {
        char where[ENG_ERR_WHERE_MAX];
        srv_config_where(cfg, "bind", where, sizeof where);
        return eng_err_set(err, ENG_ERR_INVALID, where,
                           "refusing to listen on %s without API keys: anyone who can reach it could use it; "
                           "set an API keys file (--keys FILE, VISIOND_KEYS or 'keys =' in the config file) "
                           "or bind to 127.0.0.1",
                           cfg->bind);
    }
    return 0;
}

/* ---- the printed form ---- */

void srv_config_format_value(const struct srv_config *cfg, const struct setting *s, char *buf, size_t size)
{
    const void *f = cfield(cfg, s->offset);
    switch (s->type) {
    case T_INT:
        snprintf(buf, size, "%d", *(const int *)f);
        break;
    case T_LONG:
        snprintf(buf, size, "%ld", *(const long *)f);
        break;
    case T_SIZE:
        srv_config_format_size((long long)*(const size_t *)f, buf, size);
        break;
    case T_FLOAT:
        snprintf(buf, size, "%g", *(const double *)f);
        break;
    case T_BOOL:
        snprintf(buf, size, "%s", *(const bool *)f ? "yes" : "no");
        break;
    case T_ENUM: {
        int i;
        memcpy(&i, f, sizeof i);
        snprintf(buf, size, "%s", s->choices[i]);
        break;
    }
    case T_STRING:
        if (strcmp(s->name, "gallery") == 0) /* a URI may hold a password */
            gal_spec_redact(*(char *const *)f, buf, size);
        else
            snprintf(buf, size, "%s", *(char *const *)f);
        break;
    case T_LIST: {
        buf[0] = '\0';
        size_t used = 0;
        for (char *const *p = *(char **const *)f; *p && used < size; p++)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", *p);
        break;
    }
    }
}

const char *srv_config_name(size_t i)
{
    return i < N_SETTINGS ? settings[i].name : NULL;
}

/* Compares through the printed form, the one representation every type has; copies by parsing it
 * again, so the copy is owned by `to` and passes the same checks. */
int srv_config_keep(struct srv_config *to, const struct srv_config *from, const char *name,
                    struct eng_err *err)
{
    const struct setting *s = find_setting(name, strlen(name));
    if (!s)
        return eng_err_set(err, ENG_ERR_INVALID, name, "no such setting");
    char *a = malloc(SRV_CONFIG_VALUE_MAX), *b = malloc(SRV_CONFIG_VALUE_MAX);
    int rc = -1;
    if (!a || !b) {
        eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory");
        goto out;
    }
    srv_config_format_value(to, s, a, SRV_CONFIG_VALUE_MAX);
    srv_config_format_value(from, s, b, SRV_CONFIG_VALUE_MAX);
    rc = 0;
    if (strcmp(a, b) != 0) {
        const struct srv_config_origin *o = &from->origin[s - settings];
        const struct place pl = {o->source, from->config_path, o->line};
        rc = set_value(to, s, b, &pl, err) ? -1 : 1;
    }
out:
    free(a);
    free(b);
    return rc;
}
