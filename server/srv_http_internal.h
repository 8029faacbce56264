/* srv_http_internal.h - what srv_http.c (requests) and srv_http_daemon.c (the MHD daemon, read
 * deadlines) share. Private to the HTTP layer: the only other file that includes microhttpd.h. */
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

/* MHD's access handler and request-completed callback (srv_http.c). */
enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *upload_data,
                                    size_t *upload_data_size, void **con_cls);
void srv_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);

/* Starts (reading = 1) or stops the read clock of the connection carrying conn (srv_http_daemon.c). */
void srv_http_conn_reading(struct srv_http *h, struct MHD_Connection *conn, int reading);

#endif
