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
 * are not suspended, so a worker always replies to a live request. The daemon itself and the read
 * deadlines of slow clients: srv_http_daemon.c. */
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
#include "srv_http_internal.h"

#define POST_BUFFER 65536
#define MAX_FIELDS 64
#define MAX_QUERY 64

struct srv_req {
    struct srv_http *h;
    struct MHD_Connection *conn;
    const struct srv_route *route;
    const struct srv_route *path_row; /* the first row of the path, whatever the method (405) */
    enum proto_dialect dialect; /* the route's, or the prefix row's the path falls under */
    struct srv_caps caps; /* the path's "{name}" segments */
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
    struct proto_err early;
    enum proto_code err_code; /* of the error reply sent, PROTO_OK if none */
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
};

double srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- small helpers ------------------------------------------------------------------------- */

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

static void refuse(struct srv_req *r, enum proto_code code, const char *field, const char *msg)
{
    if (r->early_status)
        return; /* the first reason wins */
    r->early_status = proto_code_status(code);
    r->early.code = code;
    snprintf(r->early.field, sizeof r->early.field, "%s", field ? field : "");
    snprintf(r->early.msg, sizeof r->early.msg, "%s", msg);
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
    for (int i = 0; i < r->caps.n; i++)
        free(r->caps.v[i].value);
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
    r->method = srv_http_parse_method(method);
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
    srv_http_find_route(r->h, r->path, r->method, &r->route, &r->path_row, &r->dialect);
    if (r->route && !srv_http_path_matches(r->route, r->path, &r->caps))
        refuse(r, PROTO_ERR_INTERNAL, NULL, "out of memory");
    if (!r->route) {
        if (r->path_row)
            refuse(r, PROTO_ERR_METHOD_NOT_ALLOWED, NULL, "method not allowed on this route");
        else
            refuse(r, PROTO_ERR_NOT_FOUND, NULL, "no such route");
        return r;
    }
    check_content_length(r);
    if ((r->method == SRV_POST || r->method == SRV_PATCH) && is_form(r->content_type)) {
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

void srv_req_reply_json(struct srv_req *r, int status, char *body, const char *const *headers)
{
    if (!body) { /* out of memory encoding it: an INTERNAL error, without the body it could not build */
        r->err_code = PROTO_ERR_INTERNAL;
        srv_req_reply(r, 500, "application/json", NULL, 0, NULL);
        return;
    }
    srv_req_reply(r, status, "application/json", body, strlen(body), headers);
}

void srv_req_reply_error(struct srv_req *r, const struct proto_err *e)
{
    char allow[96];
    const char *const allow_header[] = {"Allow", allow, NULL};
    static const char *const retry[] = {"Retry-After", "1", NULL};
    const char *const *headers = NULL;
    if (e->code == PROTO_ERR_METHOD_NOT_ALLOWED) {
        srv_http_allowed_methods(r->h, r->path, allow, sizeof allow);
        headers = allow_header;
    } else if (e->code == PROTO_ERR_QUEUE_FULL || e->code == PROTO_ERR_NOT_READY ||
               e->code == PROTO_ERR_GALLERY_UNAVAILABLE) {
        headers = retry;
    }
    r->err_code = e->code; /* before the reply: the finished hook may run as soon as it is sent */
    srv_req_reply_json(r, proto_code_status(e->code), proto_error_body(r->dialect, e, r->id), headers);
}

void srv_req_reply_code(struct srv_req *r, enum proto_code code, const char *field, const char *msg)
{
    struct proto_err e;
    proto_err_set(&e, code, field, "%s", msg ? msg : proto_code_message(code));
    srv_req_reply_error(r, &e);
}

static void reply_preflight(struct srv_req *r)
{
    static const char *const hdrs[] = {
        "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS",
        "Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key, X-Request-Id, X-Timeout-Ms",
        "Access-Control-Max-Age", "600", NULL};
    srv_req_reply(r, 204, NULL, NULL, 0, r->origin[0] ? hdrs : NULL);
}

/* Runs the handler (or the early refusal) once the whole body is in. */
static void dispatch(struct srv_req *r)
{
    r->handled = 1;
    srv_http_conn_reading(r->h, r->conn, 0); /* the request is in: its deadline is timeout_ms now */
    if (r->early_status) {
        srv_req_reply_error(r, &r->early);
        return;
    }
    if (r->method == SRV_OPTIONS) {
        reply_preflight(r);
        return;
    }
    const enum proto_code denied = r->route->scope != SRV_SCOPE_PUBLIC && r->h->hooks.auth
                                       ? r->h->hooks.auth(r->h->app, presented_key(r), r->route->scope)
                                       : PROTO_OK;
    if (denied) {
        srv_req_reply_code(r, denied, NULL,
                           denied == PROTO_ERR_FORBIDDEN ? "this API key's scope does not allow this route"
                                                         : "missing or invalid API key");
        return;
    }
    if (r->h->hooks.run)
        r->h->hooks.run(r->h->app, r, r->route->handler);
    else
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

enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
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
            srv_req_reply_code(r, PROTO_ERR_INTERNAL, NULL, "the handler gave no answer");
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

void srv_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
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
    srv_http_conn_reading(h, conn, 1); /* kept alive: the next request's clock starts now */
    atomic_fetch_sub(&h->in_flight, 1);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *srv_req_id(const struct srv_req *r) { return r->id; }
struct srv_http *srv_req_server(const struct srv_req *r) { return r->h; }
const struct srv_route *srv_req_route(const struct srv_req *r) { return r->route; }
const char *srv_req_path_param(const struct srv_req *r, const char *name)
{
    for (int i = 0; i < r->caps.n; i++)
        if (strlen(name) == r->caps.v[i].name_len &&
            strncmp(name, r->caps.v[i].name, r->caps.v[i].name_len) == 0)
            return r->caps.v[i].value;
    return NULL;
}
enum proto_code srv_req_error_code(const struct srv_req *r) { return r->err_code; }
const char *srv_req_route_name(const struct srv_req *r)
{
    return r->route ? r->route->name : r->path_row ? r->path_row->name : "unknown";
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
void srv_req_defer(struct srv_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->deferred = 1;
    pthread_mutex_unlock(&r->lock);
}
