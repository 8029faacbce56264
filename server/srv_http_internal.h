/* srv_http_internal.h - what srv_http.c (requests), srv_http_route.c (which row a request goes to)
 * and srv_http_daemon.c (the MHD daemon, read deadlines) share. Private to the HTTP layer, these
 * srv_http*.c files: the only ones that include microhttpd.h. */
#ifndef SRV_HTTP_INTERNAL_H
#define SRV_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <microhttpd.h>

#include "srv_http.h"

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

#define SRV_HTTP_MAX_CAPTURES 4 /* "{name}" segments in one route pattern */

/* The "{name}" segments of a request's path. */
struct srv_caps {
    struct {
        const char *name; /* in the route's pattern, name_len bytes: borrowed from the route table */
        size_t name_len;
        char *value; /* new: the request frees it */
    } v[SRV_HTTP_MAX_CAPTURES];
    int n;
};

/* ---- routing (srv_http_route.c): pure functions of the route table, any thread ---- */

enum srv_method srv_http_parse_method(const char *m); /* 0 for a method no route answers */
/* 1 if path matches row's pattern; with caps (else NULL), its segments are captured (0 if out of memory).
 * On the DeepStack dialect's rows one trailing slash is accepted, as DeepStack does. */
int srv_http_path_matches(const struct srv_route *row, const char *path, struct srv_caps *caps);
/* The row for path and method into *route (left alone if none); *path_row: the first row of the path
 * whatever the method (405 rather than 404); *dialect: the matching or prefix row's. Rows are borrowed
 * from h's table. */
void srv_http_find_route(const struct srv_http *h, const char *path, enum srv_method method,
                         const struct srv_route **route, const struct srv_route **path_row,
                         enum proto_dialect *dialect);
/* "GET, HEAD, OPTIONS": the methods the rows of path answer, for a 405's Allow header. */
void srv_http_allowed_methods(const struct srv_http *h, const char *path, char *buf, size_t size);

/* MHD's access handler and request-completed callback (srv_http.c). */
enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload_data,
                                    size_t *upload_data_size, void **con_cls);
void srv_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

/* Starts (reading = 1) or stops the read clock of the connection carrying conn (srv_http_daemon.c). */
void srv_http_conn_reading(struct srv_http *h, struct MHD_Connection *conn, int reading);

#endif
