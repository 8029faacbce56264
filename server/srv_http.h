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

enum srv_method { SRV_GET = 1, SRV_POST = 2, SRV_OPTIONS = 4, SRV_HEAD = 8 };

typedef void (*srv_handler_fn)(struct srv_req *req, void *app);

struct srv_route {
    const char *path;   /* exact, or a prefix followed by a star ("/ui/" then "*") */
    unsigned methods;   /* bitmask of srv_method */
    srv_handler_fn handler;
    int needs_auth;     /* API key required when keys are configured */
    const char *name;   /* label for metrics and logs */
    /* Body of the errors the HTTP layer itself answers on this route (401, 413, ...), for routes
     * that speak another API's error shape; NULL: proto_error_json. Returns a new string. */
    char *(*error_body)(int code, const char *message, const char *field, const char *request_id);
};

/* Auth, metrics and logging hooks provided by the application. */
struct srv_http_hooks {
    /* Returns 1 if the presented key (may be NULL) is acceptable for a protected route. */
    int (*auth_ok)(void *app, const char *key);
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
const char *srv_req_path(const struct srv_req *req);
const char *srv_req_route_name(const struct srv_req *req);
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

/* Application data attached to a request (e.g. the job); not freed by the http layer. */
void srv_req_set_user(struct srv_req *req, void *user);
void *srv_req_user(const struct srv_req *req);

/* Marks the request as answered later (call before handing it to another thread). */
void srv_req_defer(struct srv_req *req);

/* Replies; takes ownership of body (malloc'd, may be NULL for an empty body). `extra_headers` is a
 * NULL-terminated list of "Name", "value" pairs or NULL. Thread-safe; exactly once per request. */
void srv_req_reply(struct srv_req *req, int status, const char *content_type, char *body_take,
                   size_t body_len, const char *const *extra_headers);

/* Monotonic clock in milliseconds. */
double srv_now_ms(void);

#endif
