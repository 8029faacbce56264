/* srv_metrics.c - fixed-size tables behind one mutex: few routes, few statuses, few buckets, so a
 * lock per update costs nothing next to an inference and keeps the page consistent. */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern.h"
#include "srv_metrics.h"

#define MAX_SERIES 64
#define N_BUCKETS 14

static const double bucket_ms[N_BUCKETS] = {1,   2.5, 5,    10,   25,   50,    100,
                                            250, 500, 1000, 2500, 5000, 10000, 30000};

struct histogram {
    unsigned long long counts[N_BUCKETS + 1]; /* last: +Inf */
    double sum_ms;
    unsigned long long n;
};

struct series {
    const char *route;
    int status;
    unsigned long long count;
};

#define MAX_ERROR_CODES 32

struct srv_metrics {
    pthread_mutex_t lock;
    struct series series[MAX_SERIES];
    int n_series;
    struct {
        const char *code;
        unsigned long long count;
    } errors[MAX_ERROR_CODES];
    int n_errors;
    struct histogram request, queue, inference;
};

struct srv_metrics *srv_metrics_new(void)
{
    struct srv_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void srv_metrics_free(struct srv_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void observe(struct histogram *h, double ms)
{
    int i = 0;
    while (i < N_BUCKETS && ms > bucket_ms[i])
        i++;
    h->counts[i]++;
    h->sum_ms += ms;
    h->n++;
}

void srv_metrics_request(struct srv_metrics *m, const char *route, int status, double total_ms)
{
    pthread_mutex_lock(&m->lock);
    int i = 0;
    while (i < m->n_series && !(m->series[i].status == status && strcmp(m->series[i].route, route) == 0))
        i++;
    if (i == m->n_series && m->n_series < MAX_SERIES)
        m->series[m->n_series++] = (struct series){route, status, 0};
    if (i < m->n_series)
        m->series[i].count++;
    observe(&m->request, total_ms);
    pthread_mutex_unlock(&m->lock);
}

void srv_metrics_error(struct srv_metrics *m, const char *code)
{
    pthread_mutex_lock(&m->lock);
    int i = 0;
    while (i < m->n_errors && strcmp(m->errors[i].code, code) != 0)
        i++;
    if (i == m->n_errors && m->n_errors < MAX_ERROR_CODES)
        m->errors[m->n_errors++].code = code;
    if (i < m->n_errors)
        m->errors[i].count++;
    pthread_mutex_unlock(&m->lock);
}

void srv_metrics_job(struct srv_metrics *m, double queue_ms, double inference_ms)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->queue, queue_ms);
    observe(&m->inference, inference_ms);
    pthread_mutex_unlock(&m->lock);
}

unsigned long long srv_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/* The allocator's own count of bytes handed out and not yet freed (glibc: arena chunks in use plus
 * mmap'ed blocks). RSS also holds freed memory that malloc keeps in its per-thread arenas, so a
 * leak check reads this figure (tests/ref/test_http_bad.py). */
unsigned long long srv_heap_in_use_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const struct mallinfo2 mi = mallinfo2();
    return (unsigned long long)mi.uordblks + (unsigned long long)mi.hblkhd;
#else
    return 0;
#endif
}

/* A growing string; on allocation failure it stops growing and render returns NULL. */
struct buf {
    char *s;
    size_t len, cap;
    int failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (n >= 0 && cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = n < 0 ? NULL : realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void put_histogram(struct buf *b, const char *name, const char *help, const struct histogram *h)
{
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_ms[i] / 1000.0, cum);
    }
    cum += h->counts[N_BUCKETS];
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, cum, name,
        h->sum_ms / 1000.0, name, h->n);
}

char *srv_metrics_render(struct srv_metrics *m, const struct srv_metrics_gauges *g)
{
    struct buf b = {0};
    pthread_mutex_lock(&m->lock);
    put(&b, "# HELP visiond_requests_total HTTP requests by route and status (0: client left).\n"
            "# TYPE visiond_requests_total counter\n");
    for (int i = 0; i < m->n_series; i++)
        put(&b, "visiond_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->series[i].route,
            m->series[i].status, m->series[i].count);
    put(&b, "# HELP visiond_errors_total Error replies by error code.\n"
            "# TYPE visiond_errors_total counter\n");
    for (int i = 0; i < m->n_errors; i++)
        put(&b, "visiond_errors_total{code=\"%s\"} %llu\n", m->errors[i].code, m->errors[i].count);
    put_histogram(&b, "visiond_request_duration_seconds", "Time from arrival to reply.", &m->request);
    put_histogram(&b, "visiond_queue_seconds", "Time inference jobs waited for a worker.", &m->queue);
    put_histogram(&b, "visiond_inference_seconds", "Time a worker spent on a job (decode, model, NMS).",
                  &m->inference);
    pthread_mutex_unlock(&m->lock);
    put(&b, "# HELP visiond_queue_depth Jobs waiting for a worker.\n# TYPE visiond_queue_depth gauge\n"
            "visiond_queue_depth %zu\n", g->queue_depth);
    put(&b, "# HELP visiond_queue_capacity Queue size; beyond it requests get 503.\n"
            "# TYPE visiond_queue_capacity gauge\nvisiond_queue_capacity %zu\n", g->queue_capacity);
    put(&b, "# HELP visiond_workers Inference workers.\n# TYPE visiond_workers gauge\n"
            "visiond_workers %d\n", g->workers);
    put(&b, "# HELP visiond_workers_busy Workers running a job now.\n"
            "# TYPE visiond_workers_busy gauge\nvisiond_workers_busy %d\n", g->busy_workers);
    put(&b, "# HELP visiond_jobs_expired_total Jobs whose deadline passed in the queue (504).\n"
            "# TYPE visiond_jobs_expired_total counter\nvisiond_jobs_expired_total %llu\n", g->expired);
    put(&b, "# HELP visiond_jobs_rejected_total Jobs refused because the queue was full (503).\n"
            "# TYPE visiond_jobs_rejected_total counter\nvisiond_jobs_rejected_total %llu\n", g->rejected);
    put(&b, "# HELP visiond_read_timeouts_total Connections closed because a request's headers and body "
            "took longer than read_timeout_ms.\n# TYPE visiond_read_timeouts_total counter\n"
            "visiond_read_timeouts_total %llu\n", g->read_timeouts);
    put(&b, "# HELP visiond_ready 1 when models are loaded and warmed up.\n"
            "# TYPE visiond_ready gauge\nvisiond_ready %d\n", g->ready);
    put(&b, "# HELP visiond_process_resident_memory_bytes Resident set size.\n"
            "# TYPE visiond_process_resident_memory_bytes gauge\n"
            "visiond_process_resident_memory_bytes %llu\n", srv_rss_bytes());
    put(&b, "# HELP visiond_heap_in_use_bytes Bytes malloc has handed out and not had back (freed memory that "
            "the allocator keeps is in RSS, not here).\n# TYPE visiond_heap_in_use_bytes gauge\n"
            "visiond_heap_in_use_bytes %llu\n", srv_heap_in_use_bytes());
    put(&b, "# HELP visiond_blas_info The OpenBLAS kernels in use.\n# TYPE visiond_blas_info gauge\n"
            "visiond_blas_info{core=\"%s\"} 1\n", g->blas_core ? g->blas_core : "unknown");
    put(&b, "# HELP visiond_kernels_info The engine's kernel set (VISIOND_KERNELS or the widest).\n"
            "# TYPE visiond_kernels_info gauge\nvisiond_kernels_info{set=\"%s\"} 1\n", eng_kern_best()->name);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
