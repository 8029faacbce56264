/* fuzz_http.c - libFuzzer target for the HTTP request path: raw bytes from a client, through
 * libmicrohttpd and server/srv_http.c (headers, query string, Content-Length and chunked bodies, the
 * multipart post processor and its field sink, early refusals) into srv_collect_params and proto/'s
 * parsers, as the daemon's routes run them, up to the reply. No model runs: the handlers answer with
 * the parse result (the error, or 200) instead of queueing a job.
 *
 * The real HTTP layer is started once, on 127.0.0.1 port 0, in this process (so its coverage and
 * sanitizers count); each input is sent on a new connection and the answer read until the server closes
 * the connection or has been quiet for QUIET_MS (a kept-alive connection or a request still waiting for
 * body bytes would otherwise hold the input for the 1 s connection timeout). Then the client hangs up,
 * and the server must let go of the request (in flight back to 0) within STUCK_S: a request it keeps is
 * a hang. An answer that is not HTTP is a finding too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proto_face.h"
#include "proto_request.h"
#include "srv_app.h"
#include "srv_http.h"
#include "srv_params.h"
#include "srv_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 65536     /* small, so that "over the limit" is reachable by small inputs */
#define QUIET_MS 5        /* longer than the server needs to answer a parsed request, even under ASan */
#define STUCK_S 5         /* the connection timeout is 1 s: a request alive this long after the client left is stuck */

/* ---- handlers: parse with the daemon's sinks (srv_params.h), check, answer ---- */

static void answer(struct srv_req *req, int failed, const struct proto_err *e)
{
    if (failed)
        srv_req_reply_error(req, e);
    else
        srv_req_reply_json(req, 200, strdup("{\"parsed\":true}"), NULL);
}

static void detect_route(struct srv_req *req, void *app)
{
    (void)app;
    struct proto_detect_request p;
    struct proto_err e;
    proto_detect_request_init(&p, srv_req_route(req)->dialect);
    const struct srv_param_sink sink = srv_params_detect_sink(&p);
    answer(req, srv_collect_params(req, &sink, &e) || proto_detect_request_check(&p, &e), &e);
    proto_detect_request_release(&p);
}

static void faces_route(struct srv_req *req, void *app)
{
    (void)app;
    struct proto_face_request p;
    struct proto_err e;
    proto_face_request_init(&p, srv_req_route(req)->dialect);
    const struct srv_param_sink sink = srv_params_faces_sink(&p);
    answer(req, srv_collect_params(req, &sink, &e) || proto_face_request_check(&p, &e), &e);
    proto_face_request_release(&p);
}

static void verify_route(struct srv_req *req, void *app)
{
    (void)app;
    struct proto_verify_request p;
    struct proto_err e;
    proto_verify_request_init(&p, srv_req_route(req)->dialect);
    const struct srv_param_sink sink = srv_params_verify_sink(&p);
    answer(req, srv_collect_params(req, &sink, &e) || proto_verify_request_check(&p, &e), &e);
    proto_verify_request_release(&p);
}

static void healthz(struct srv_req *req, void *app)
{
    (void)app;
    srv_req_reply_json(req, 200, strdup("{\"status\":\"ok\"}"), NULL);
}

/* The daemon's route table (server/srv_routes.c), the job routes answered by the parse result. */
#define N PROTO_DIALECT_NATIVE
#define D PROTO_DIALECT_DEEPSTACK
#define I SRV_SCOPE_INFERENCE
static const struct srv_route routes[] = {
    {SRV_POST, "/v1/detect", "detect", N, I, detect_route, NULL, NULL},
    {SRV_POST, "/v1/vision/detection", "deepstack_detection", D, I, detect_route, NULL, NULL},
    {SRV_POST, "/v1/faces", "faces", N, I, faces_route, NULL, NULL},
    {SRV_POST, "/v1/verify", "verify", N, I, verify_route, NULL, NULL},
    {SRV_POST, "/v1/vision/face", "deepstack_face", D, I, faces_route, NULL, NULL},
    {SRV_POST, "/v1/vision/face/match", "deepstack_face_match", D, I, verify_route, NULL, NULL},
    {0, "/v1/vision/", "deepstack", D, SRV_SCOPE_PUBLIC, NULL, NULL, NULL},
    {SRV_GET | SRV_HEAD, "/healthz", "healthz", N, SRV_SCOPE_PUBLIC, healthz, NULL, NULL},
};

/* Keys are configured, and "fuzz-key" is the one that passes, so both auth outcomes are reachable. */
static enum proto_code auth(void *app, const char *key, enum srv_scope scope)
{
    (void)app;
    (void)scope;
    return key && strcmp(key, "fuzz-key") == 0 ? PROTO_OK : PROTO_ERR_UNAUTHORIZED;
}

static struct srv_http *server;

static int server_port(void)
{
    static int port;
    static const char *const origins[] = {"http://ok.example", NULL};
    if (port)
        return port;
    const struct srv_http_opts opts = {.bind = "127.0.0.1", .listen_fd = -1, .max_body = MAX_BODY,
                                       .threads = 1, .max_connections = 64, .connection_timeout_s = 1,
                                       .cors_origins = origins};
    const struct srv_http_hooks hooks = {.auth = auth};
    char why[256];
    server = srv_http_start(&opts, routes, (int)(sizeof routes / sizeof routes[0]), &hooks, NULL, why,
                            sizeof why);
    if (!server) {
        fprintf(stderr, "fuzz_http: %s\n", why);
        abort();
    }
    port = srv_http_port(server); /* runs until the process exits */
    return port;
}

/* ---- one input: one connection ---- */

/* A refused connection means the server is gone (a finding). A connect that times out or finds no free
 * local port is the machine (a 10-minute run opens ~200,000 connections on a loaded 2-core box): retry. */
static int connect_server(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int attempt = 0;; attempt++) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            perror("fuzz_http: socket");
            abort();
        }
        const struct timeval tv = {.tv_sec = STUCK_S};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        const int e = errno;
        close(fd);
        if (attempt == 20 || (e != ETIMEDOUT && e != EINPROGRESS && e != EADDRNOTAVAIL && e != EAGAIN &&
                              e != EINTR)) {
            fprintf(stderr, "fuzz_http: connect (attempt %d): %s\n", attempt + 1, strerror(e));
            abort();
        }
        usleep(100 * 1000);
    }
}

/* Sends what it can: the server may answer and close early (404, 413), which ends the sending. */
static void send_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        data += n;
        size -= (size_t)n;
    }
}

/* Reads the answer until the server closes or goes quiet; keeps its first bytes in head. */
static size_t read_answer(int fd, char *head, size_t size)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        const int ready = poll(&p, 1, QUIET_MS);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return got;
        char buf[4096];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return got; /* closed (a reset counts: MHD drops what it cannot parse) */
        for (ssize_t i = 0; i < n && got < size; i++)
            head[got++] = buf[i];
    }
}

static void wait_released(void)
{
    const double until = srv_now_ms() + STUCK_S * 1000.0;
    while (srv_http_in_flight(server) > 0) {
        if (srv_now_ms() > until) {
            fprintf(stderr, "fuzz_http: a request is still in flight %d s after its client left\n", STUCK_S);
            abort();
        }
        usleep(200);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int fd = connect_server(server_port());
    send_all(fd, data, size);
    shutdown(fd, SHUT_WR);
    char head[16];
    const size_t got = read_answer(fd, head, sizeof head);
    /* Hang up with a reset: after the FIN of shutdown(), a plain close() sends the server nothing new,
     * and a request still waiting for body bytes would only end at the connection timeout. */
    const struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    wait_released();
    if (got > 0 && (got < 9 || memcmp(head, "HTTP/1.", 7) != 0))
        abort(); /* something other than an HTTP answer went out */
    return 0;
}
