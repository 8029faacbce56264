/* srv_metrics.h - request counters and latency histograms, rendered in Prometheus text format.
 * All functions are thread-safe. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

struct srv_metrics;

struct srv_metrics *srv_metrics_new(void);
void srv_metrics_free(struct srv_metrics *m);

/* One finished request: route label (static string), HTTP status (0 = client went away), total ms. */
void srv_metrics_request(struct srv_metrics *m, const char *route, int status, double total_ms);

/* One error reply, by its code's wire name (static string, e.g. "BAD_IMAGE"): visiond_errors_total. */
void srv_metrics_error(struct srv_metrics *m, const char *code);

/* One inference job: time waiting in the queue and time running. */
void srv_metrics_job(struct srv_metrics *m, double queue_ms, double inference_ms);

struct srv_metrics_gauges {
    size_t queue_depth, queue_capacity;
    int workers, busy_workers;
    unsigned long long expired, rejected;
    unsigned long long read_timeouts; /* connections cut by read_timeout_ms */
    int ready;
    const char *blas_core;
};

/* The /metrics page. New string, caller frees; NULL when out of memory. */
char *srv_metrics_render(struct srv_metrics *m, const struct srv_metrics_gauges *g);

/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
unsigned long long srv_rss_bytes(void);

/* Bytes the C allocator has handed out and not had back (glibc's mallinfo2; 0 elsewhere). */
unsigned long long srv_heap_in_use_bytes(void);

#endif
