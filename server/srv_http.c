/* srv_http.c - libmicrohttpd glue.
 *
 * Design: MHD calls the access handler several times per request: first with headers only, then with
 * chunks of the body, then once more with no data. We build a srv_req on the first call (route,
 * request id, early refusals: 404, 405, 413 by Content-Length, 401 by header), accumulate the body (or
 * feed MHD's post processor for forms), and on the last call run the route's handler.
 * A handler that defers gets its connection suspended; the reply (from a worker thread) resumes it,
 * and MHD calls the access handler again, which queues the stored response. The reply and the suspend
 * take the request's lock in that order, so a worker that finishes before the HTTP thread suspends is
 * handled: the HTTP thread then queues the response directly instead of suspending.
 * The srv_req is freed in the request-completed callback, which MHD calls only for connections that
 * are not suspended, so a worker always replies to a live request.
 *
 * Slow clients: MHD closes a connection idle for connection_timeout_s, but a client that sends one
 * header byte every few seconds is never idle (slow-loris). So each connection also has a read
 * deadline: from its start, or from its previous answer, until its request is complete (headers and
 * body) it is "reading", and a sweep thread shuts down the socket of one reading for longer than
 * read_timeout_ms. MHD then sees the socket's end on its own thread and closes the connection as if
 * the client had gone. The connection list is guarded by conn_lock, which MHD's CLOSED notification
 * also takes before the descriptor is closed, so the sweep never touches a reused descriptor. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "proto_errors.h"
#include "srv_http.h"

#define POST_BUFFER 65536
#define MAX_FIELDS 64
#define MAX_QUERY 64

struct srv_http {
    struct MHD_Daemon *d;
    const struct srv_route *routes;
    int n_routes;
    struct srv_http_hooks hooks;
    void *app;
    struct srv_http_opts opts;
    atomic_int in_flight;
    atomic_ulong next_id;
    atomic_int stopping; /* quiesced: answers close their connections */
    int quiesced_fd;     /* the listening socket MHD gave back; closed after MHD_stop_daemon */
    unsigned long id_salt;
    /* read deadlines (see the design note) */
    pthread_mutex_t conn_lock;
    struct srv_conn *conns;
    pthread_t sweeper;
    int sweeper_started;
    atomic_int sweep_stop;
    atomic_ulong read_timeouts;
};

/* One open connection, for its read deadline. Guarded by srv_http.conn_lock. */
struct srv_conn {
    struct srv_conn *prev, *next;
    int fd;
    int reading; /* waiting for (the rest of) a request */
    int cut;     /* shut down by the sweep */
    double since;
};

struct srv_req {
    struct srv_http *h;
    struct MHD_Connection *conn;
    const struct srv_route *route;
    char id[72];
    char *path;
    enum srv_method method;
    double arrival;
    const char *qkeys[MAX_QUERY + 1], *qvals[MAX_QUERY + 1];
    int nq;
    char content_type[128];
    char origin[256]; /* echoed in CORS headers when allowed */
    unsigned char *body;
    size_t len, cap;
    size_t bytes_in;
    struct MHD_PostProcessor *pp;
    struct srv_field fields[MAX_FIELDS];
    int n_fields;
    /* a refusal decided before the handler runs */
    int early_status;
    enum proto_code early_code;
    const char *early_field;
    char early_msg[160];
    int handled;
    /* reply, guarded by lock */
    pthread_mutex_t lock;
    int deferred, suspended, reply_ready, queued;
    int status;
    char *resp_body;
    size_t resp_len;
    char resp_ct[64];
    char *resp_headers[16];
    int n_resp_headers;
    size_t bytes_out;
    void *user;
};

double srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static enum srv_method parse_method(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return SRV_GET;
    if (strcmp(m, "POST") == 0)
        return SRV_POST;
    if (strcmp(m, "OPTIONS") == 0)
        return SRV_OPTIONS;
    if (strcmp(m, "HEAD") == 0)
        return SRV_HEAD;
    return 0;
}

/* Client-chosen request ids are echoed in logs and headers, so only a safe alphabet is accepted. */
static int safe_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        const char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

static void make_request_id(struct srv_req *r)
{
    const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && safe_request_id(given)) {
        snprintf(r->id, sizeof r->id, "%s", given);
        return;
    }
    const unsigned long n = atomic_fetch_add(&r->h->next_id, 1);
    snprintf(r->id, sizeof r->id, "%08lx%08lx", r->h->id_salt & 0xffffffffUL, n & 0xffffffffUL);
}

static const struct srv_route *find_route(const struct srv_http *h, const char *path)
{
    for (int i = 0; i < h->n_routes; i++)
        if (strcmp(h->routes[i].path, path) == 0)
            return &h->routes[i];
    return NULL;
}

static void refuse(struct srv_req *r, enum proto_code code, const char *field, const char *msg)
{
    if (r->early_status)
        return; /* the first reason wins */
    r->early_status = proto_code_status(code);
    r->early_code = code;
    r->early_field = field;
    snprintf(r->early_msg, sizeof r->early_msg, "%s", msg);
}

static int origin_allowed(const struct srv_http *h, const char *origin)
{
    for (const char *const *o = h->opts.cors_origins; o && *o; o++)
        if (strcmp(*o, "*") == 0 || strcmp(*o, origin) == 0)
            return 1;
    return 0;
}

/* With sizes: a %00 in the query decodes to a NUL that would silently cut the C string
 * ("model=x%00.cfg" would ask for model x), so such a parameter is refused instead. */
static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                  const char *value, size_t value_size)
{
    (void)kind;
    struct srv_req *r = cls;
    if (r->nq >= MAX_QUERY) {
        refuse(r, PROTO_ERR_BAD_REQUEST, NULL, "too many query parameters");
        return MHD_NO;
    }
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: contains a NUL byte (%%00)", key);
        refuse(r, PROTO_ERR_INVALID_PARAM, key, msg);
        return MHD_NO;
    }
    r->qkeys[r->nq] = key;
    r->qvals[r->nq] = value ? value : "";
    r->nq++;
    return MHD_YES;
}

static void lower_media_type(char *dst, size_t size, const char *ct)
{
    size_t i = 0;
    for (; ct && ct[i] && ct[i] != ';' && i + 1 < size; i++)
        dst[i] = (char)((ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] + 32 : ct[i]);
    while (i > 0 && (dst[i - 1] == ' ' || dst[i - 1] == '\t'))
        i--;
    dst[i] = '\0';
}

/* ---- forms --------------------------------------------------------------------------------- */

static void free_fields(struct srv_req *r)
{
    for (int i = 0; i < r->n_fields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].filename);
        free(r->fields[i].content_type);
        free(r->fields[i].data);
    }
    r->n_fields = 0;
}

static int append(unsigned char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + n + 1)
            ncap *= 2;
        unsigned char *p = realloc(*buf, ncap);
        if (!p)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0'; /* text fields are used as C strings */
    return 0;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    struct srv_req *r = cls;
    struct srv_field *f = r->n_fields ? &r->fields[r->n_fields - 1] : NULL;
    if (!f || off == 0 || strcmp(f->name, key) != 0) {
        if (r->n_fields >= MAX_FIELDS) {
            refuse(r, PROTO_ERR_BAD_REQUEST, key, "too many form fields");
            return MHD_NO;
        }
        f = &r->fields[r->n_fields++];
        memset(f, 0, sizeof *f);
        f->name = strdup(key ? key : "");
        f->filename = filename ? strdup(filename) : NULL;
        f->content_type = content_type ? strdup(content_type) : NULL;
        if (!f->name) {
            refuse(r, PROTO_ERR_INTERNAL, NULL, "out of memory");
            return MHD_NO;
        }
    }
    /* A field's buffer always holds len + 1 bytes once it exists; none yet: capacity 0, so the first
     * append allocates even for an empty part (MHD calls us with size 0 for an empty file). */
    size_t cap = f->data ? f->len + 1 : 0;
    if (size && append(&f->data, &f->len, &cap, data, size)) {
        refuse(r, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return MHD_NO;
    }
    if (!f->data && append(&f->data, &f->len, &cap, "", 0)) {
        refuse(r, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return MHD_NO;
    }
    return MHD_YES;
}

/* ---- read deadlines ------------------------------------------------------------------------ */

#define SWEEP_INTERVAL_MS 100

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    struct srv_http *h = cls;
    struct srv_conn *c = *socket_context;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!fd || !(c = calloc(1, sizeof *c)))
            return; /* no deadline for this one; MHD's idle timeout still applies */
        c->fd = fd->connect_fd;
        c->reading = 1;
        c->since = srv_now_ms();
        pthread_mutex_lock(&h->conn_lock);
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->conn_lock);
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    pthread_mutex_lock(&h->conn_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&h->conn_lock);
    free(c);
    *socket_context = NULL;
}

/* Starts (reading = 1) or stops the read clock of the connection carrying `conn`. */
static void conn_set_reading(struct srv_http *h, struct MHD_Connection *conn, int reading)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct srv_conn *c = info ? info->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&h->conn_lock);
    c->reading = reading;
    c->since = srv_now_ms();
    pthread_mutex_unlock(&h->conn_lock);
}

static void sweep_once(struct srv_http *h)
{
    const double now = srv_now_ms();
    pthread_mutex_lock(&h->conn_lock);
    for (struct srv_conn *c = h->conns; c; c = c->next)
        if (c->reading && !c->cut && now - c->since > h->opts.read_timeout_ms) {
            c->cut = 1;
            shutdown(c->fd, SHUT_RDWR);
            atomic_fetch_add(&h->read_timeouts, 1);
        }
    pthread_mutex_unlock(&h->conn_lock);
}

static void *sweep_main(void *arg)
{
    struct srv_http *h = arg;
    while (!atomic_load(&h->sweep_stop)) {
        nanosleep(&(struct timespec){0, SWEEP_INTERVAL_MS * 1000L * 1000L}, NULL);
        sweep_once(h);
    }
    return NULL;
}

unsigned long srv_http_read_timeouts(const struct srv_http *h)
{
    return atomic_load(&((struct srv_http *)h)->read_timeouts);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void req_free(struct srv_req *r)
{
    if (!r)
        return;
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    free_fields(r);
    free(r->body);
    free(r->path);
    free(r->resp_body);
    for (int i = 0; i < r->n_resp_headers; i++)
        free(r->resp_headers[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void check_cors_and_auth_headers(struct srv_req *r)
{
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (origin && origin_allowed(r->h, origin))
        snprintf(r->origin, sizeof r->origin, "%s", origin);
}

static const char *presented_key(struct srv_req *r)
{
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-API-Key");
    if (key)
        return key;
    for (int i = 0; i < r->n_fields; i++)
        if (strcmp(r->fields[i].name, "api_key") == 0)
            return (const char *)r->fields[i].data;
    return NULL;
}

static void check_content_length(struct srv_req *r)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return;
    char *end;
    errno = 0;
    const unsigned long long n = strtoull(cl, &end, 10);
    if (!errno && end != cl && n > r->h->opts.max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %llu bytes is over the limit of %zu", n, r->h->opts.max_body);
        refuse(r, PROTO_ERR_PAYLOAD_TOO_LARGE, NULL, msg);
    }
}

/* Only multipart goes through MHD's post processor: `curl --data-binary @photo.jpg` labels a raw
 * image application/x-www-form-urlencoded, so urlencoded bodies stay raw for the handler to judge. */
static int is_form(const char *ct)
{
    return strcmp(ct, "multipart/form-data") == 0;
}

static struct srv_req *req_new(struct srv_http *h, struct MHD_Connection *conn, const char *url,
                               const char *method)
{
    struct srv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->h = h;
    r->conn = conn;
    r->arrival = srv_now_ms();
    r->method = parse_method(method);
    r->path = strdup(url);
    if (!r->path) {
        req_free(r);
        return NULL;
    }
    make_request_id(r);
    check_cors_and_auth_headers(r);
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, query_iter, r);
    lower_media_type(r->content_type, sizeof r->content_type,
                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"));
    r->route = find_route(h, r->path);
    if (!r->route) {
        refuse(r, PROTO_ERR_NOT_FOUND, NULL, "no such route");
        return r;
    }
    if (!r->method || (!(r->route->methods & r->method) && r->method != SRV_OPTIONS)) {
        refuse(r, PROTO_ERR_METHOD_NOT_ALLOWED, NULL, "method not allowed on this route");
        return r;
    }
    check_content_length(r);
    if (r->method == SRV_POST && is_form(r->content_type)) {
        r->pp = MHD_create_post_processor(conn, POST_BUFFER, post_iter, r);
        if (!r->pp)
            refuse(r, PROTO_ERR_BAD_REQUEST, NULL, "malformed form body (multipart without boundary?)");
    }
    return r;
}

static void add_header(struct MHD_Response *resp, const char *name, const char *value)
{
    MHD_add_response_header(resp, name, value);
}

static enum MHD_Result queue_reply(struct srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->resp_len, r->resp_body ? r->resp_body : (void *)"", 
        r->resp_body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->resp_body = NULL; /* MHD owns it now */
    if (r->resp_ct[0])
        add_header(resp, "Content-Type", r->resp_ct);
    add_header(resp, "X-Request-Id", r->id);
    /* While stopping, a kept-alive client must not send its next request into a closing server. */
    if (atomic_load(&r->h->stopping))
        add_header(resp, "Connection", "close");
    if (r->origin[0]) {
        add_header(resp, "Access-Control-Allow-Origin", r->origin);
        add_header(resp, "Vary", "Origin");
        add_header(resp, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    }
    for (int i = 0; i + 1 < r->n_resp_headers; i += 2)
        add_header(resp, r->resp_headers[i], r->resp_headers[i + 1]);
    r->bytes_out = r->resp_len;
    r->queued = 1;
    const enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void store_reply(struct srv_req *r, int status, const char *content_type, char *body,
                        size_t body_len, const char *const *extra)
{
    r->status = status;
    free(r->resp_body);
    r->resp_body = body;
    r->resp_len = body ? body_len : 0;
    snprintf(r->resp_ct, sizeof r->resp_ct, "%s", content_type ? content_type : "");
    for (; extra && extra[0] && extra[1] && r->n_resp_headers + 2 <= 16; extra += 2) {
        r->resp_headers[r->n_resp_headers++] = strdup(extra[0]);
        r->resp_headers[r->n_resp_headers++] = strdup(extra[1]);
        if (!r->resp_headers[r->n_resp_headers - 1] || !r->resp_headers[r->n_resp_headers - 2])
            r->n_resp_headers -= 2;
    }
    r->reply_ready = 1;
}

void srv_req_reply(struct srv_req *r, int status, const char *content_type, char *body_take,
                   size_t body_len, const char *const *extra_headers)
{
    pthread_mutex_lock(&r->lock);
    store_reply(r, status, content_type, body_take, body_len, extra_headers);
    struct MHD_Connection *resume = r->suspended ? r->conn : NULL;
    r->suspended = 0;
    pthread_mutex_unlock(&r->lock);
    /* Resume only after unlocking: once resumed, MHD may finish and free the request on its own
     * thread. A suspended connection cannot finish, so r is still alive up to this point. */
    if (resume)
        MHD_resume_connection(resume);
}

/* "GET, HEAD, OPTIONS": the methods a route answers, for the Allow header a 405 must carry. */
static void allowed_methods(const struct srv_route *route, char *buf, size_t size)
{
    static const struct {
        enum srv_method method;
        const char *name;
    } names[] = {{SRV_GET, "GET"}, {SRV_HEAD, "HEAD"}, {SRV_POST, "POST"}, {SRV_OPTIONS, "OPTIONS"}};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && used < size; i++)
        if ((route->methods | SRV_OPTIONS) & names[i].method)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", names[i].name);
}

/* The error shape of an unmatched path: DeepStack's under /v1/vision/ (its clients read `success`
 * before anything else), the one of the first route there. */
static char *(*unmatched_error_body(const struct srv_req *r))(int, const char *, const char *, const char *)
{
    if (strncmp(r->path, "/v1/vision/", 11) != 0)
        return NULL;
    for (int i = 0; i < r->h->n_routes; i++)
        if (strncmp(r->h->routes[i].path, "/v1/vision/", 11) == 0 && r->h->routes[i].error_body)
            return r->h->routes[i].error_body;
    return NULL;
}

static void reply_error(struct srv_req *r, enum proto_code code, const char *field, const char *msg)
{
    char *(*eb)(int, const char *, const char *, const char *) =
        r->route ? r->route->error_body : unmatched_error_body(r);
    char *body = eb ? eb((int)code, msg, field, r->id) : proto_error_json(code, msg, field, r->id);
    char allow[64];
    const char *const allow_header[] = {"Allow", allow, NULL};
    const int with_allow = code == PROTO_ERR_METHOD_NOT_ALLOWED && r->route;
    if (with_allow)
        allowed_methods(r->route, allow, sizeof allow);
    srv_req_reply(r, proto_code_status(code), "application/json", body, body ? strlen(body) : 0,
                  with_allow ? allow_header : NULL);
}

static void reply_preflight(struct srv_req *r)
{
    static const char *const hdrs[] = {
        "Access-Control-Allow-Methods", "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key, X-Request-Id, X-Timeout-Ms",
        "Access-Control-Max-Age", "600", NULL};
    srv_req_reply(r, 204, NULL, NULL, 0, r->origin[0] ? hdrs : NULL);
}

/* Runs the handler (or the early refusal) once the whole body is in. */
static void dispatch(struct srv_req *r)
{
    r->handled = 1;
    conn_set_reading(r->h, r->conn, 0); /* the request is in: its deadline is timeout_ms now */
    if (r->early_status) {
        reply_error(r, r->early_code, r->early_field, r->early_msg);
        return;
    }
    if (r->method == SRV_OPTIONS) {
        reply_preflight(r);
        return;
    }
    if (r->route->needs_auth && r->h->hooks.auth_ok && !r->h->hooks.auth_ok(r->h->app, presented_key(r))) {
        reply_error(r, PROTO_ERR_UNAUTHORIZED, NULL, "missing or invalid API key");
        return;
    }
    r->route->handler(r, r->h->app);
}

static void take_body_chunk(struct srv_req *r, const char *data, size_t size)
{
    r->bytes_in += size;
    if (r->early_status)
        return; /* refused already: read and drop the rest so the reply can be sent */
    if (r->bytes_in > r->h->opts.max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "body is over the limit of %zu bytes", r->h->opts.max_body);
        refuse(r, PROTO_ERR_PAYLOAD_TOO_LARGE, NULL, msg);
        return;
    }
    if (r->pp) {
        if (MHD_post_process(r->pp, data, size) != MHD_YES)
            refuse(r, PROTO_ERR_BAD_REQUEST, NULL, "malformed form body");
        return;
    }
    if (append(&r->body, &r->len, &r->cap, data, size))
        refuse(r, PROTO_ERR_INTERNAL, NULL, "out of memory");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct srv_http *h = cls;
    struct srv_req *r = *con_cls;
    if (!r) {
        if (!(r = req_new(h, conn, url, method)))
            return MHD_NO;
        atomic_fetch_add(&h->in_flight, 1);
        *con_cls = r;
        if (!r->early_status)
            return MHD_YES;
        /* Refused on headers alone (404, 405, 413 by Content-Length): answer without reading the
         * body; MHD closes the connection afterwards. */
        dispatch(r);
        pthread_mutex_lock(&r->lock);
        const enum MHD_Result rc = queue_reply(r);
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (*upload_data_size) {
        take_body_chunk(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->handled) {
        if (r->pp && !r->early_status) {
            MHD_destroy_post_processor(r->pp); /* flushes the last field */
            r->pp = NULL;
        }
        dispatch(r);
        if (!r->deferred && !r->reply_ready)
            reply_error(r, PROTO_ERR_INTERNAL, NULL, "the handler gave no answer");
    }
    pthread_mutex_lock(&r->lock);
    enum MHD_Result rc = MHD_YES;
    if (r->reply_ready && !r->queued) {
        rc = queue_reply(r);
    } else if (!r->reply_ready && !r->suspended) {
        r->suspended = 1;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct srv_http *h = cls;
    struct srv_req *r = *con_cls;
    if (!r)
        return;
    if (!r->queued)
        r->status = 0; /* the client went away before we answered */
    if (h->hooks.finished)
        h->hooks.finished(h->app, r);
    req_free(r);
    *con_cls = NULL;
    conn_set_reading(h, conn, 1); /* kept alive: the next request's clock starts now */
    atomic_fetch_sub(&h->in_flight, 1);
}

/* ---- daemon -------------------------------------------------------------------------------- */

static int make_addr(const char *bind, int port, struct sockaddr_storage *ss, char *why, size_t n)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    const char *addr = strcmp(bind, "localhost") == 0 ? "127.0.0.1" : bind;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    snprintf(why, n, "bind address '%s' is not a numeric IPv4 or IPv6 address", bind);
    return -1;
}

struct srv_http *srv_http_start(const struct srv_http_opts *opts, const struct srv_route *routes,
                                int n_routes, const struct srv_http_hooks *hooks, void *app,
                                char *why, size_t why_size)
{
    struct sockaddr_storage ss;
    if (opts->listen_fd < 0 && make_addr(opts->bind, opts->port, &ss, why, why_size))
        return NULL;
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    h->routes = routes;
    h->n_routes = n_routes;
    h->hooks = *hooks;
    h->app = app;
    h->opts = *opts;
    h->id_salt = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
    pthread_mutex_init(&h->conn_lock, NULL);
    h->quiesced_fd = -1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (opts->listen_fd < 0 && ss.ss_family == AF_INET6) /* ss is only filled without a socket */
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem ops[] = {
        {opts->listen_fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
         opts->listen_fd >= 0 ? opts->listen_fd : 0, opts->listen_fd >= 0 ? NULL : &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {MHD_OPTION_THREAD_POOL_SIZE, opts->threads ? opts->threads : 1, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {MHD_OPTION_CONNECTION_LIMIT, opts->max_connections ? opts->max_connections : 256, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s ? opts->connection_timeout_s : 30, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, ops,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(why, why_size, "cannot listen on %s:%d (in use, or not allowed?)", opts->bind,
                 opts->port);
        pthread_mutex_destroy(&h->conn_lock);
        free(h);
        return NULL;
    }
    if (opts->read_timeout_ms && pthread_create(&h->sweeper, NULL, sweep_main, h) != 0) {
        snprintf(why, why_size, "cannot start the read-deadline thread");
        srv_http_stop(h);
        return NULL;
    }
    h->sweeper_started = opts->read_timeout_ms != 0;
    return h;
}

int srv_http_port(const struct srv_http *h)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : -1;
}

void srv_http_quiesce(struct srv_http *h)
{
    atomic_store(&h->stopping, 1);
    /* MHD's threads may still touch the socket (epoll_ctl when a connection slot frees at the
     * max_connections limit), so it is closed only once they are gone, in srv_http_stop; shutting it
     * down now makes the kernel refuse new connections meanwhile instead of queueing them. */
    const int fd = MHD_quiesce_daemon(h->d);
    if (fd >= 0 && h->opts.listen_fd < 0) {
        shutdown(fd, SHUT_RDWR);
        h->quiesced_fd = fd;
    }
}

int srv_http_in_flight(const struct srv_http *h)
{
    return atomic_load(&((struct srv_http *)h)->in_flight);
}

void srv_http_stop(struct srv_http *h)
{
    if (!h)
        return;
    if (h->sweeper_started) {
        atomic_store(&h->sweep_stop, 1);
        pthread_join(h->sweeper, NULL);
    }
    MHD_stop_daemon(h->d); /* notifies CLOSED for every connection, which frees its srv_conn */
    if (h->quiesced_fd >= 0)
        close(h->quiesced_fd);
    pthread_mutex_destroy(&h->conn_lock);
    free(h);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *srv_req_id(const struct srv_req *r) { return r->id; }
struct srv_http *srv_req_server(const struct srv_req *r) { return r->h; }
const char *srv_req_path(const struct srv_req *r) { return r->path; }
const char *srv_req_route_name(const struct srv_req *r)
{
    return r->route ? r->route->name : "unknown";
}
enum srv_method srv_req_method(const struct srv_req *r) { return r->method; }
const char *srv_req_header(struct srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
int srv_req_query(const struct srv_req *r, const char *const **keys, const char *const **values)
{
    *keys = r->qkeys;
    *values = r->qvals;
    return r->nq;
}
const char *srv_req_content_type(const struct srv_req *r) { return r->content_type; }
const unsigned char *srv_req_body(const struct srv_req *r, size_t *len)
{
    *len = r->len;
    return r->body;
}
int srv_req_fields(const struct srv_req *r, const struct srv_field **fields)
{
    *fields = r->fields;
    return r->n_fields;
}
int srv_req_status(const struct srv_req *r) { return r->status; }
size_t srv_req_bytes_in(const struct srv_req *r) { return r->bytes_in; }
size_t srv_req_bytes_out(const struct srv_req *r) { return r->bytes_out; }
double srv_req_elapsed_ms(const struct srv_req *r) { return srv_now_ms() - r->arrival; }
double srv_req_arrival_ms(const struct srv_req *r) { return r->arrival; }
void srv_req_set_user(struct srv_req *r, void *user) { r->user = user; }
void *srv_req_user(const struct srv_req *r) { return r->user; }
void srv_req_defer(struct srv_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->deferred = 1;
    pthread_mutex_unlock(&r->lock);
}
