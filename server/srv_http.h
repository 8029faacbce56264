/* srv_http.h - the HTTP layer: the only code that talks to libmicrohttpd.
 *
 * A request is collected whole (headers, query, body or multipart fields, bounded by max_body), then
 * handed to the route's handler on the HTTP thread. A handler either replies at once or calls
 * srv_req_defer() and replies later from another thread (a worker) with srv_req_reply(): the
 * connection is suspended meanwhile and resumed by the reply. HTTP threads never run inference.
 * The srv_req stays valid until the reply has been sent; the http layer frees it. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "proto_errors.h" /* struct proto_err, enum proto_dialect */

struct srv_req;
struct srv_http;

/* One multipart or urlencoded form field. */
struct srv_field {
    char *name;
    char *filename;     /* NULL unless a file part */
    char *content_type; /* NULL if the part had none */
    unsigned char *data;
    size_t len;
};

enum srv_method {
    SRV_GET = 1, SRV_POST = 2, SRV_OPTIONS = 4, SRV_HEAD = 8, SRV_PATCH = 16, SRV_DELETE = 32
};

/* What an API key may call. A key's scope comes from the keys file (`scope=admin`; none: inference);
 * a route needs its scope or a higher one. PUBLIC routes need no key at all. */
enum srv_scope { SRV_SCOPE_PUBLIC = 0, SRV_SCOPE_INFERENCE, SRV_SCOPE_ADMIN };

typedef void (*srv_handler_fn)(struct srv_req *req, void *app);

struct srv_job_kind; /* srv_route.h: a route's parameter schema and job function */

/* One row of the route table (server/srv_routes.c). The HTTP layer reads method, path, dialect and
 * scope; `job` and `encode` belong to the application's handler (srv_route.h). */
struct srv_route {
    unsigned methods;  /* bitmask of srv_method; 0: a dialect prefix row (below) */
    /* "/v1/detect", or with "{name}" segments ("/v1/subjects/{name}") that match one non-empty path
     * segment each, readable in the handler with srv_req_path_param. A row with methods 0 and a path
     * ending in '/' is a prefix: unmatched paths under it (404) answer in its dialect. */
    const char *path;
    const char *name;                /* label for metrics and logs */
    enum proto_dialect dialect;      /* the shape of every error this route answers */
    enum srv_scope scope;            /* the API key's scope it needs when keys are configured */
    srv_handler_fn handler;
    const struct srv_job_kind *job;  /* parameter schema and job function (srv_route.h), or NULL */
    char *(*encode)(const void *response); /* the job's success body (new string), or NULL */
};

/* Auth, dispatch and logging hooks provided by the application. */
struct srv_http_hooks {
    /* 0 if the presented key (may be NULL) may call a route needing `scope`; otherwise the code to
     * refuse with (PROTO_ERR_UNAUTHORIZED: no or unknown key; PROTO_ERR_FORBIDDEN: too narrow a scope). */
    enum proto_code (*auth)(void *app, const char *key, enum srv_scope scope);
    /* Runs a route's handler (NULL: route->handler(req, app)); lets the application pick what the
     * handler's `app` argument is (the daemon: its current generation). */
    void (*run)(void *app, struct srv_req *req, srv_handler_fn handler);
    /* Called once per finished request, on an HTTP thread, after the response was queued. */
    void (*finished)(void *app, const struct srv_req *req);
};

struct srv_http_opts {
    const char *bind;    /* numeric IPv4/IPv6 address */
    int port;            /* 0: ephemeral */
    int listen_fd;       /* >= 0: use this already-listening socket (socket activation) */
    size_t max_body;
    unsigned threads;    /* MHD polling threads */
    unsigned max_connections;        /* 0: 256 */
    unsigned max_connections_per_ip; /* 0: no limit */
    unsigned connection_timeout_s;   /* idle limit; 0: 30 */
    unsigned read_timeout_ms;        /* headers + body of one request; 0: no limit */
    const char *const *cors_origins; /* NULL-terminated allow-list; NULL = none */
};

/* Where the HTTP library's internal-consistency failures (libmicrohttpd's MHD_PANIC) end: `fatal`
 * gets "libmicrohttpd FILE:LINE: REASON", on the thread that failed, and must not return (it ends the
 * process: server/main.c's). Not NULL. Process-wide; call before srv_http_start. Without it the
 * library's own handler prints one line and aborts. */
typedef void (*srv_http_fatal_fn)(const char *what);
void srv_http_on_fatal(srv_http_fatal_fn fatal);

/* Starts serving. Routes must outlive the server. Returns NULL with a message in `why`. */
struct srv_http *srv_http_start(const struct srv_http_opts *opts, const struct srv_route *routes,
                                int n_routes, const struct srv_http_hooks *hooks, void *app,
                                char *why, size_t why_size);

/* The port actually bound (for port 0). */
int srv_http_port(const struct srv_http *h);

/* Stops accepting new connections; in-flight requests continue. */
void srv_http_quiesce(struct srv_http *h);

/* Connections closed because a request's headers and body took longer than read_timeout_ms. */
unsigned long srv_http_read_timeouts(const struct srv_http *h);

/* Requests accepted but not yet finished. */
int srv_http_in_flight(const struct srv_http *h);

/* Stops and frees. Every deferred request must have been replied to first. */
void srv_http_stop(struct srv_http *h);

/* ---- request accessors (valid during the handler and until the reply) ---- */
const char *srv_req_id(const struct srv_req *req);
struct srv_http *srv_req_server(const struct srv_req *req); /* the server that took the request */
const struct srv_route *srv_req_route(const struct srv_req *req); /* NULL when no row matched */
const char *srv_req_route_name(const struct srv_req *req);
/* The path segment a "{name}" of the route's pattern matched; NULL if the pattern has no such name. */
const char *srv_req_path_param(const struct srv_req *req, const char *name);
/* The code of the error reply sent (srv_req_reply_error), PROTO_OK if none; valid after the reply. */
enum proto_code srv_req_error_code(const struct srv_req *req);
enum srv_method srv_req_method(const struct srv_req *req);
const char *srv_req_header(struct srv_req *req, const char *name);
/* Query arguments, in order; returns the count. */
int srv_req_query(const struct srv_req *req, const char *const **keys, const char *const **values);
const char *srv_req_content_type(const struct srv_req *req); /* without parameters, lower case */
const unsigned char *srv_req_body(const struct srv_req *req, size_t *len);
int srv_req_fields(const struct srv_req *req, const struct srv_field **fields); /* form bodies */
int srv_req_status(const struct srv_req *req);     /* after the reply */
size_t srv_req_bytes_in(const struct srv_req *req);
size_t srv_req_bytes_out(const struct srv_req *req);
double srv_req_elapsed_ms(const struct srv_req *req);
/* Monotonic milliseconds at which the request arrived (for deadlines). */
double srv_req_arrival_ms(const struct srv_req *req);

/* Marks the request as answered later (call before handing it to another thread). */
void srv_req_defer(struct srv_req *req);

/* Replies; takes ownership of body (malloc'd, may be NULL for an empty body). `extra_headers` is a
 * NULL-terminated list of "Name", "value" pairs or NULL. Thread-safe; exactly once per request. */
void srv_req_reply(struct srv_req *req, int status, const char *content_type, char *body_take,
                   size_t body_len, const char *const *extra_headers);

/* Every error reply leaves through here, the HTTP layer's own refusals (401, 404, 413, ...) and the
 * routes' alike: the body in the dialect of the route (or of the prefix row the path falls under),
 * Retry-After on QUEUE_FULL and NOT_READY, Allow on METHOD_NOT_ALLOWED; the code is kept for the
 * finished hook (srv_req_error_code: /metrics counts errors by code). Thread-safe; counts as the
 * request's one reply. */
void srv_req_reply_error(struct srv_req *req, const struct proto_err *err);
/* srv_req_reply_error of code with field (NULL: none) and message (NULL: the code's default). */
void srv_req_reply_code(struct srv_req *req, enum proto_code code, const char *field, const char *msg);
/* A JSON body (taken) with status. NULL (an encoder out of memory): an empty 500, counted as INTERNAL. */
void srv_req_reply_json(struct srv_req *req, int status, char *body_take, const char *const *headers);

/* Monotonic clock in milliseconds. */
double srv_now_ms(void);

#endif
