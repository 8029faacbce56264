/* srv_serve.c - the daemon: loads every model, starts the worker pool and the HTTP layer with the
 * route table (srv_routes.c), reloads on SIGHUP and shuts down cleanly on SIGTERM/SIGINT.
 *
 * Data flow of POST /v1/detect: the HTTP layer collects the request and finds its row; the row's
 * handler, srv_job_handler (srv_job.c, on the HTTP thread), collects the parameters through proto/,
 * checks them (picking the model) and submits a job; a worker decodes the image, runs the model and
 * NMS (srv_detect.c), encodes the JSON with the row's encoder and replies, which resumes the
 * suspended connection. Auth, the access log and metrics are hooks given to the HTTP layer here.
 *
 * Reload. Everything a SIGHUP can replace (settings, API keys, models, and the worker pool whose
 * contexts are sized for those models) is one generation, a struct srv_app. The daemon points at the
 * current one; a handler takes it with app_acquire() for as long as it runs, and its job keeps using
 * that generation. The main thread builds the new generation beside the running one, swaps the
 * pointer, waits until no handler holds the old one, then drains the old pool (queued and running
 * jobs finish on the old models) and frees it. A reload that fails to build leaves the old one. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "proto_errors.h"
#include "kern.h"
#include "proto_output.h"
#include "srv_blas.h"
#include "srv_config.h"
#include "srv_http.h"
#include "srv_keys.h"
#include "srv_log.h"
#include "srv_metrics.h"
#include "srv_model.h"
#include "srv_route.h"
#include "srv_serve.h"
#include "srv_systemd.h"
#include "team.h"
#include "workers.h"
#include "srv_app.h"

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

/* The daemon: the HTTP layer, and the current generation that SIGHUP replaces (see the top). */
struct srv_daemon {
    pthread_mutex_t lock;        /* makes reading `app` and counting a user of it one step */
    struct srv_app *app;         /* the current generation; written only by the main thread */
    struct srv_http *http;
    struct srv_metrics *metrics; /* outlives generations: counters survive a reload */
    struct srv_config_args args; /* to read the configuration again */
    int listen_fd;               /* the service manager's socket, or -1 */
    char **cors;                 /* the HTTP layer's CORS origins: it outlives the generation they
                                    came from (a reload keeps their value, not their memory) */
};

/* The current generation, valid until app_release(). */
static struct srv_app *app_acquire(struct srv_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    struct srv_app *app = d->app;
    atomic_fetch_add(&app->users, 1);
    pthread_mutex_unlock(&d->lock);
    return app;
}

static void app_release(struct srv_app *app)
{
    atomic_fetch_sub(&app->users, 1);
}

/* The HTTP layer's auth hook: keys configured, a route needing `need` takes a key of that scope or
 * a wider one (admin reaches every route). */
static enum proto_code auth(void *daemon, const char *key, enum srv_scope need)
{
    struct srv_app *app = app_acquire(daemon);
    const enum srv_scope have = app->keys ? srv_keys_scope(app->keys, key) : SRV_SCOPE_ADMIN;
    app_release(app);
    if (have == SRV_SCOPE_PUBLIC)
        return PROTO_ERR_UNAUTHORIZED;
    return have < need ? PROTO_ERR_FORBIDDEN : PROTO_OK;
}

/* The HTTP layer calls handlers with the daemon; they run on the current generation. */
static void run_on_current(void *daemon, struct srv_req *req, srv_handler_fn handler)
{
    struct srv_app *app = app_acquire(daemon);
    handler(req, app);
    app_release(app);
}

static const char *method_name(enum srv_method m)
{
    switch (m) {
    case SRV_GET: return "GET";
    case SRV_POST: return "POST";
    case SRV_OPTIONS: return "OPTIONS";
    case SRV_HEAD: return "HEAD";
    case SRV_PATCH: return "PATCH";
    case SRV_DELETE: return "DELETE";
    }
    return "OTHER";
}

static void request_finished(void *daemon, const struct srv_req *req)
{
    struct srv_app *app = app_acquire(daemon);
    const double ms = srv_req_elapsed_ms(req);
    srv_metrics_request(app->metrics, srv_req_route_name(req), srv_req_status(req), ms);
    if (srv_req_error_code(req) != PROTO_OK)
        srv_metrics_error(app->metrics, proto_code_name(srv_req_error_code(req)));
    if (app->cfg->access_log)
        srv_log_request(srv_req_id(req), method_name(srv_req_method(req)), srv_req_route_name(req),
                        srv_req_status(req), srv_req_bytes_in(req), srv_req_bytes_out(req), ms);
    app_release(app);
}

/* ---- start-up ------------------------------------------------------------------------------ */

static void worker_state_free(int worker, void *arg, void *state);

/* Threads a pass uses at most in auto mode: layers are cut into 8 tasks (engine/conv.c), two per thread
 * at 4, so more cores serve more passes at once instead. */
#define AUTO_TEAM_MAX 4

/* The worker's thread team (README, "Threading"): none in throughput mode; in auto mode up to
 * AUTO_TEAM_MAX threads borrowing idle cores from the generation's budget (ENG_CORES_SHARE), so busy threads never exceed
 * `threads`; in latency mode `threads` threads for every pass. */
static int worker_team_new(struct srv_app *app, struct srv_worker_state *ws, struct eng_err *err)
{
    const struct srv_config *cfg = app->cfg;
    if (cfg->threading == SRV_THREADING_THROUGHPUT || cfg->threads <= 1)
        return 0;
    const int size = cfg->threading == SRV_THREADING_AUTO && cfg->threads > AUTO_TEAM_MAX ? AUTO_TEAM_MAX
                                                                                          : cfg->threads;
    ws->team = eng_team_new(size, app->cores, err);
    return ws->team ? 0 : -1;
}

/* One activation arena per worker, shared by all its contexts since a worker runs one job at a time:
 * the largest model's activations instead of the sum over every model (issue #5's memory target). */
static int worker_arena_new(const struct srv_app *app, struct srv_worker_state *ws)
{
    size_t floats = 0;
    if (app->faces && !(floats = eng_face_ctx_arena_floats(app->faces)))
        return -1;
    for (int i = 0; i < app->n_models; i++) {
        const size_t f = eng_ctx_arena_floats(app->models[i].net);
        if (!f)
            return -1;
        floats = f > floats ? f : floats;
    }
    ws->arena_floats = floats;
    return floats && !(ws->arena = malloc(sizeof(float) * floats)) ? -1 : 0;
}

static int worker_state_new(int worker, void *arg, void **out, struct eng_err *err)
{
    (void)worker;
    struct srv_app *app = arg;
    struct srv_worker_state *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->class_mask = calloc((size_t)app->max_classes + 1, 1)) || worker_arena_new(app, ws)) {
        if (ws)
            free(ws->class_mask);
        free(ws);
        return eng_err_set(err, ENG_ERR_NOMEM, "worker", "out of memory");
    }
    if (worker_team_new(app, ws, err))
        goto fail;
    for (int i = 0; i < app->n_models; i++) {
        if (!(ws->ctx[i] = eng_ctx_new_shared(app->models[i].net, ws->arena, ws->arena_floats, err)) || eng_ctx_set_team(ws->ctx[i], ws->team, err))
            goto fail;
        /* Warm-up: touches every buffer and lets OpenBLAS set itself up before the first request;
         * on a zero image, since the arena is uninitialised (valgrind: results of garbage). */
        memset(ws->ctx[i]->input, 0, sizeof(float) * eng_shape_size(app->models[i].net->input));
        eng_net_forward(app->models[i].net, ws->ctx[i]);
    }
    if (srv_faces_worker_init(app, ws, err) ||
        (ws->face_ctx && eng_face_ctx_set_team(ws->face_ctx, ws->team, err)))
        goto fail;
    *out = ws;
    return 0;
fail:
    worker_state_free(worker, app, ws);
    return -1;
}

static void worker_state_free(int worker, void *arg, void *state)
{
    (void)worker;
    struct srv_app *app = arg;
    struct srv_worker_state *ws = state;
    if (!ws)
        return;
    for (int i = 0; i < app->n_models; i++)
        eng_ctx_free(ws->ctx[i]);
    srv_faces_worker_free(ws);
    eng_team_free(ws->team); /* after the contexts that borrow it */
    free(ws->class_mask);
    free(ws->arena); /* after the contexts that borrow it */
    free(ws);
}

static int load_one_model(struct srv_app *app, const char *name)
{
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    const struct srv_model_spec spec = {.name = name, .models_dir = app->cfg->models};
    if (srv_model_load(&spec, &net, &err)) {
        char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
        SRV_LOG(SRV_LOG_ERROR, "model %s not loaded: %s", name, eng_err_format(&err, buf, sizeof buf));
        if (!app->models_error[0]) {
            /* cut to fit: enough for /readyz, the log line above has it all */
            snprintf(app->models_error, sizeof app->models_error, "model %.64s not loaded: %.400s", name, buf);
        }
        return -1;
    }
    struct srv_model *m = &app->models[app->n_models];
    if (!(m->name = strdup(name))) {
        eng_net_free(net);
        return -1;
    }
    m->net = net;
    eng_detect_params_default(&m->defaults);
    app->n_models++;
    if (net->classes > app->max_classes)
        app->max_classes = net->classes;
    SRV_LOG(SRV_LOG_INFO, "loaded model %s from %s/%s: input %dx%d, %d classes, %d layers, %.2f GFLOP",
            name, app->cfg->models, name, net->input.w, net->input.h, net->classes, net->n_layers,
            net->flops / 1e9);
    return 0;
}

/* Every sub-folder of the models directory holding <name>/<name>.cfg is a model. strict (a reload):
 * a model that fails to load fails them all, so the running set stays. */
static int load_models(struct srv_app *app, int strict)
{
    int failed = 0;
    DIR *d = opendir(app->cfg->models);
    if (!d) {
        SRV_LOG(SRV_LOG_ERROR, "cannot open models directory %s: %s (run scripts/fetch-models)",
                app->cfg->models, strerror(errno));
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) && app->n_models < SRV_MAX_MODELS;) {
        char cfg[4096];
        struct stat st;
        if (e->d_name[0] == '.' ||
            snprintf(cfg, sizeof cfg, "%s/%s/%s.cfg", app->cfg->models, e->d_name, e->d_name) >=
                (int)sizeof cfg ||
            stat(cfg, &st) != 0)
            continue;
        failed += load_one_model(app, e->d_name) != 0;
    }
    closedir(d);
    if (strict && failed)
        return -1;
    app->default_model = srv_find_model(app, app->cfg->default_model);
    if (app->default_model < 0) {
        SRV_LOG(SRV_LOG_ERROR, "default model %s is not among the loaded models in %s",
                app->cfg->default_model, app->cfg->models);
        return -1;
    }
    return 0;
}

/* Frees a generation whose pool is stopped, or was never started (eng_workers_free stops it). */
static void app_free(struct srv_app *app)
{
    if (!app)
        return;
    eng_workers_free(app->pool);
    eng_cores_free(app->cores);
    for (int i = 0; i < app->n_models; i++) {
        eng_net_free(app->models[i].net);
        free(app->models[i].name);
    }
    srv_gallery_free(app->gallery);
    srv_gallery_retry_free(app->gallery_retry);
    eng_face_models_free(app->faces);
    srv_keys_free(app->keys);
    srv_config_free(app->cfg);
    free(app);
}

/* A new generation from cfg (taken): API keys, every model, the face models and a warmed-up worker
 * pool. strict (a reload): broken models or face models fail it instead of being served around. */
static struct srv_app *app_new(struct srv_daemon *d, struct srv_config *cfg, int strict)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    struct srv_app *app = calloc(1, sizeof *app);
    if (!app) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        srv_config_free(cfg);
        return NULL;
    }
    app->cfg = cfg;
    app->metrics = d->metrics;
    app->http = d->http;
    if (cfg->keys[0] && !(app->keys = srv_keys_load(cfg->keys, &err))) {
        SRV_LOG(SRV_LOG_ERROR, "API keys: %s", eng_err_format(&err, buf, sizeof buf));
        goto fail;
    }
    if (load_models(app, strict) || srv_faces_load(app) || (strict && app->faces_error[0]))
        goto fail;
    srv_gallery_load(app);
    if (cfg->threading == SRV_THREADING_AUTO &&
        !(app->cores = eng_cores_new_policy(cfg->threads, ENG_CORES_SHARE))) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        goto fail;
    }
    const struct eng_workers_config wc = {.workers = cfg->workers, .queue_cap = (size_t)cfg->queue,
                                          .state_new = worker_state_new,
                                          .state_free = worker_state_free, .arg = app};
    if (!(app->pool = eng_workers_new(&wc, &err))) {
        SRV_LOG(SRV_LOG_ERROR, "workers: %s", eng_err_format(&err, buf, sizeof buf));
        goto fail;
    }
    atomic_store(&app->ready, 1);
    return app;
fail:
    app_free(app);
    return NULL;
}

static void strings_free(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

/* A NULL-terminated copy of list (new, strings_free), or NULL if out of memory. */
static char **strings_copy(char *const *list, size_t n)
{
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(list[i]))) {
            strings_free(out);
            return NULL;
        }
    return out;
}

/* Loads the first generation (cfg is taken), then starts serving and tells the service manager. */
static int start(struct srv_daemon *d, struct srv_config *cfg)
{
    srv_blas_set_threads(cfg->blas_threads);
    proto_set_precision((enum proto_precision)cfg->json_precision);
    struct srv_app *app = NULL;
    if (!(d->metrics = srv_metrics_new()) || !(app = app_new(d, cfg, 0))) {
        if (!d->metrics)
            srv_config_free(cfg);
        return -1;
    }
    d->app = app;
    if (!(d->cors = strings_copy(app->cfg->cors, app->cfg->n_cors))) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        return -1;
    }
    const struct srv_http_opts ho = {
        .bind = app->cfg->bind, .port = app->cfg->port, .listen_fd = d->listen_fd,
        .max_body = app->cfg->max_body, .threads = 2,
        .max_connections = (unsigned)app->cfg->max_connections,
        .max_connections_per_ip = (unsigned)app->cfg->max_connections_per_ip,
        .connection_timeout_s = (unsigned)app->cfg->idle_timeout_s,
        .read_timeout_ms = (unsigned)app->cfg->read_timeout_ms,
        .cors_origins = (const char *const *)d->cors};
    const struct srv_http_hooks hooks = {.auth = auth, .run = run_on_current, .finished = request_finished};
    char why[256];
    int n_routes;
    const struct srv_route *routes = srv_routes(&n_routes);
    d->http = srv_http_start(&ho, routes, n_routes, &hooks, d, why, sizeof why);
    if (!d->http) {
        SRV_LOG(SRV_LOG_ERROR, "%s", why);
        return -1;
    }
    app->http = d->http;
    SRV_LOG(SRV_LOG_INFO,
            "listening on %s:%d%s (%d models, %d workers, queue %d, kernels %s, BLAS %s x %d threads%s)",
            app->cfg->bind, srv_http_port(d->http), d->listen_fd >= 0 ? " (socket activation)" : "",
            app->n_models, app->cfg->workers, app->cfg->queue, eng_kern_best()->name, srv_blas_core(),
            app->cfg->blas_threads,
            app->keys ? ", API keys required" : "");
    srv_sd_notify("READY=1\nSTATUS=serving");
    return 0;
}

/* Socket activation: bind and port become the address of the service manager's socket, so the
 * loopback-or-keys rule (srv_config_validate) and the log speak of the address really listened on. */
static int adopt_listen_socket(const struct srv_daemon *d, struct srv_config *cfg, char *why, size_t n)
{
    char addr[INET6_ADDRSTRLEN];
    int port;
    if (d->listen_fd < 0)
        return 0;
    if (srv_sd_socket_addr(d->listen_fd, addr, sizeof addr, &port)) {
        snprintf(why, n, "socket activation: cannot read the socket's address: %s", strerror(errno));
        return -1;
    }
    char *copy = strdup(addr);
    if (!copy) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    free(cfg->bind);
    cfg->bind = copy;
    cfg->port = port;
    return 0;
}

/* What a reload may change; every other setting (bind, port, workers, queue, limits of the HTTP
 * layer, ...) is fixed at start, since the HTTP layer and the thread counts are. */
static const char *const reloadable[] = {"models", "default_model", "keys", "timeout_ms", "max_pixels",
                                         "access_log", "drain_timeout_ms", "queue_high_water", NULL};

static int is_reloadable(const char *name)
{
    for (const char *const *r = reloadable; *r; r++)
        if (strcmp(*r, name) == 0)
            return 1;
    return 0;
}

/* The configuration read again, with the settings a reload cannot change kept at their running
 * values ("needs restart" in the log). NULL (logged) if it does not load or validate. */
static struct srv_config *reload_config(const struct srv_daemon *d, const struct srv_config *running)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4], why[256];
    struct srv_config *cfg = srv_config_load(&d->args, &err);
    if (!cfg) {
        SRV_LOG(SRV_LOG_ERROR, "reload: %s", eng_err_format(&err, buf, sizeof buf));
        return NULL;
    }
    if (adopt_listen_socket(d, cfg, why, sizeof why)) {
        SRV_LOG(SRV_LOG_ERROR, "reload: %s", why);
        srv_config_free(cfg);
        return NULL;
    }
    for (size_t i = 0; srv_config_name(i); i++) {
        const char *name = srv_config_name(i);
        const int kept = is_reloadable(name) ? 0 : srv_config_keep(cfg, running, name, &err);
        if (kept < 0)
            goto invalid;
        if (kept)
            SRV_LOG(SRV_LOG_WARN, "reload: %s changed, which needs restart; keeping the running value",
                    name);
    }
    char warnings[512] = "";
    if (srv_config_validate(cfg, sysconf(_SC_NPROCESSORS_ONLN), warnings, sizeof warnings, &err))
        goto invalid;
    return cfg;
invalid:
    SRV_LOG(SRV_LOG_ERROR, "reload: %s", eng_err_format(&err, buf, sizeof buf));
    srv_config_free(cfg);
    return NULL;
}

/* SIGHUP: a new generation from the configuration file, keys file and models directory as they are
 * now, swapped in; requests already holding the old one finish on it (see the top of this file). */
static void reload(struct srv_daemon *d)
{
    srv_sd_notify_reloading();
    SRV_LOG(SRV_LOG_INFO, "reloading: configuration, API keys and models");
    struct srv_app *old = d->app; /* only this thread writes d->app */
    struct srv_config *cfg = reload_config(d, old->cfg);
    struct srv_app *app = cfg ? app_new(d, cfg, 1) : NULL;
    if (!app) {
        SRV_LOG(SRV_LOG_ERROR, "reload failed: still serving the previous configuration and models");
        srv_sd_notify("READY=1\nSTATUS=serving (the last reload failed; see the log)");
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->app = app;
    pthread_mutex_unlock(&d->lock);
    /* Handlers that took the old generation may still submit to its pool: wait for them first. */
    while (atomic_load(&old->users) > 0)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    eng_workers_stop(old->pool, 1);
    app_free(old);
    SRV_LOG(SRV_LOG_INFO, "reloaded: %d models (default %s), face models %s, API keys %s",
            app->n_models, app->models[app->default_model].name, app->faces ? "loaded" : "absent",
            app->keys ? "required" : "off");
    srv_sd_notify("READY=1\nSTATUS=serving");
}

/* SIGTERM: refuse new connections, let queued and running jobs finish, send their replies. */
static void drain(struct srv_daemon *d)
{
    struct srv_app *app = d->app;
    srv_sd_notify("STOPPING=1\nSTATUS=finishing the requests in flight");
    SRV_LOG(SRV_LOG_INFO, "stopping: finishing %d requests in flight", srv_http_in_flight(d->http));
    srv_http_quiesce(d->http);
    eng_workers_stop(app->pool, 1);
    const double until = srv_now_ms() + app->cfg->drain_timeout_ms;
    while (srv_http_in_flight(d->http) > 0 && srv_now_ms() < until)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    SRV_LOG(SRV_LOG_INFO, "stopped (%d requests unfinished)", srv_http_in_flight(d->http));
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The configuration, with the service manager's socket adopted; checked. Returns 0 to serve, or the
 * exit status (after --help or --print-config, or on an error, which it prints). */
static int configure(struct srv_daemon *d, struct srv_config **out)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4], why[256];
    struct srv_config *cfg = srv_config_load(&d->args, &err);
    if (!cfg) {
        fprintf(stderr, "visiond: %s\n", eng_err_format(&err, buf, sizeof buf));
        return 2;
    }
    if (cfg->help) {
        srv_config_usage(stdout);
        srv_config_free(cfg);
        return -1;
    }
    if (srv_sd_listen_fd(&d->listen_fd, why, sizeof why) || adopt_listen_socket(d, cfg, why, sizeof why)) {
        fprintf(stderr, "visiond: %s\n", why);
        srv_config_free(cfg);
        return 2;
    }
    char warnings[512] = "";
    const int invalid = srv_config_validate(cfg, sysconf(_SC_NPROCESSORS_ONLN), warnings,
                                            sizeof warnings, &err);
    if (cfg->print_config) {
        srv_config_print(cfg, stdout);
        srv_config_free(cfg);
        return invalid ? 2 : -1;
    }
    srv_log_min_level = (int)cfg->log_level;
    if (warnings[0])
        SRV_LOG(SRV_LOG_WARN, "%s", warnings);
    if (invalid) {
        SRV_LOG(SRV_LOG_ERROR, "%s", eng_err_format(&err, buf, sizeof buf));
        srv_config_free(cfg);
        return 2;
    }
    *out = cfg;
    return 0;
}

int srv_serve(int argc, char **argv)
{
    struct srv_daemon d = {.lock = PTHREAD_MUTEX_INITIALIZER, .args = {.argc = argc, .argv = argv},
                           .listen_fd = -1};
    struct srv_config *cfg = NULL;
    const int rc = configure(&d, &cfg);
    if (rc)
        return rc < 0 ? 0 : rc;
    install_signals();
    int status = 1;
    if (start(&d, cfg) == 0) {
        while (!stop_requested) {
            if (reload_requested) {
                reload_requested = 0;
                reload(&d);
            }
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
        drain(&d);
        status = 0;
    }
    srv_http_stop(d.http);
    app_free(d.app);
    srv_metrics_free(d.metrics);
    strings_free(d.cors);
    return status;
}
