/* gal_follow.c - keeps an index in step with its store: a thread with its own connection waits for the
 * change sequence to move (a PostgreSQL notification or a SQLite poll) and rebuilds the index. The
 * sequence, not the notification, decides: a notification lost while the connection was down is made
 * good by comparing sequences once it is back. */
#include "gal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gal_follow {
    pthread_t th;
    struct gal_index *ix;
    struct gal_store *st;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast after every reload */
    int stop;          /* under mu */
    atomic_int kicked;
    atomic_int connected;
    int poll_ms;
};

static int stopping(struct gal_follow *f)
{
    pthread_mutex_lock(&f->mu);
    int s = f->stop;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void *follow_main(void *arg)
{
    struct gal_follow *f = arg;
    while (!stopping(f)) {
        struct gal_err err;
        int64_t seq = -1, have = gal_index_seq(f->ix);
        int wait_ms = atomic_exchange(&f->kicked, 0) ? 0 : f->poll_ms;
        if (gal_store_wait(f->st, have, wait_ms, &seq, &err)) {
            atomic_store(&f->connected, 0);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        atomic_store(&f->connected, 1);
        if (seq != have) {
            if (gal_index_update(f->ix, f->st, &err) != 0) {
                if (err.kind == GAL_ERR_UNAVAILABLE)
                    atomic_store(&f->connected, 0);
                struct timespec ts = {0, 200 * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
            pthread_mutex_lock(&f->mu);
            pthread_cond_broadcast(&f->cv);
            pthread_mutex_unlock(&f->mu);
        }
    }
    return NULL;
}

struct gal_follow *gal_follow_start(struct gal_index *ix, const char *spec, const char *fingerprint, int poll_ms,
                                    struct gal_err *err)
{
    struct gal_follow *f = calloc(1, sizeof *f);
    if (!f) {
        gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    f->ix = ix;
    f->poll_ms = poll_ms > 0 ? poll_ms : 100;
    atomic_init(&f->kicked, 0);
    atomic_init(&f->connected, 1);
    f->st = gal_store_open(spec, fingerprint, err);
    if (!f->st || gal_index_load(ix, f->st, err)) {
        gal_store_free(f->st);
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&f->th, NULL, follow_main, f);
    if (rc != 0) {
        gal_err_set(err, GAL_ERR_NOMEM, NULL, "cannot start the gallery follower: %s", strerror(rc));
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        gal_store_free(f->st);
        free(f);
        return NULL;
    }
    return f;
}

void gal_follow_kick(struct gal_follow *f) { atomic_store(&f->kicked, 1); }

int gal_follow_connected(struct gal_follow *f) { return atomic_load(&f->connected); }

int gal_follow_wait_seq(struct gal_follow *f, int64_t seq, int timeout_ms)
{
    gal_follow_kick(f);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L)
        dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (gal_index_seq(f->ix) < seq && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&f->cv, &f->mu, &dl);
    int ok = gal_index_seq(f->ix) >= seq;
    pthread_mutex_unlock(&f->mu);
    return ok ? 0 : -1;
}

void gal_follow_stop(struct gal_follow *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    gal_store_free(f->st);
    free(f);
}
