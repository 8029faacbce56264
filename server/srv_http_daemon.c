/* srv_http_daemon.c - the libmicrohttpd daemon behind srv_http.h: start, quiesce, stop, and the read
 * deadlines of slow clients (requests themselves: srv_http.c).
 *
 * Slow clients: MHD closes a connection idle for connection_timeout_s, but a client that sends one
 * header byte every few seconds is never idle (slow-loris). So each connection also has a read
 * deadline: from its start, or from its previous answer, until its request is complete (headers and
 * body) it is "reading", and a sweep thread shuts down the socket of one reading for longer than
 * read_timeout_ms. MHD then sees the socket's end on its own thread and closes the connection as if
 * the client had gone. The connection list is guarded by conn_lock, which MHD's CLOSED notification
 * also takes before the descriptor is closed, so the sweep never touches a reused descriptor. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "srv_http.h"
#include "srv_http_internal.h"

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
void srv_http_conn_reading(struct srv_http *h, struct MHD_Connection *conn, int reading)
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

/* ---- the library's fatal errors ---------------------------------------------------------- */

static srv_http_fatal_fn fatal_fn;

/* MHD calls this on an internal inconsistency (MHD_PANIC), on whichever thread found it. Its default
 * prints one line and aborts; ours hands the place and reason to the application's fatal function,
 * which logs them and ends the process (only server/main.c may). MHD allows a panic function to
 * return, but then carries on in a state it has just called broken: fatal_fn must not return. */
static void on_mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    char what[256];
    snprintf(what, sizeof what, "libmicrohttpd %s:%u: %s", file ? file : "?", line,
             reason ? reason : "internal error");
    size_t n = strlen(what);
    while (n > 0 && (what[n - 1] == '\n' || what[n - 1] == '.' || what[n - 1] == ' '))
        what[--n] = '\0'; /* MHD's reasons end in ".\n" */
    fatal_fn(what);
}

void srv_http_on_fatal(srv_http_fatal_fn fatal)
{
    fatal_fn = fatal;
    MHD_set_panic_func(on_mhd_panic, NULL); /* 0.9.75 takes NULL as the function, not the default */
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
    /* poll(), not epoll: with epoll and a thread pool, MHD 0.9.75's MHD_quiesce_daemon races its own
     * polling threads to remove the listening socket from each thread's epoll set, and the loser's
     * epoll_ctl() fails with ENOENT, which MHD_PANICs on (daemon.c:5531 in quiesce, :4976 in MHD_epoll):
     * a rare abort on SIGTERM. With poll() quiescing only sets a flag and wakes the threads. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (opts->listen_fd < 0 && ss.ss_family == AF_INET6) /* ss is only filled without a socket */
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem ops[] = {
        {opts->listen_fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
         opts->listen_fd >= 0 ? opts->listen_fd : 0, opts->listen_fd >= 0 ? NULL : &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)srv_http_on_completed, h},
        {MHD_OPTION_THREAD_POOL_SIZE, opts->threads ? opts->threads : 1, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {MHD_OPTION_CONNECTION_LIMIT, opts->max_connections ? opts->max_connections : 256, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s ? opts->connection_timeout_s : 30, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, srv_http_on_request, h, MHD_OPTION_ARRAY, ops,
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
    /* A polling thread may still be inside a poll() that includes the socket (quiescing wakes it to
     * drop it), so it is closed only once MHD's threads are gone, in srv_http_stop, lest a reused
     * descriptor number be polled; shutting it down now makes the kernel refuse new connections
     * meanwhile instead of queueing them. */
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

