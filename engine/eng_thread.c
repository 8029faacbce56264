/* eng_thread.c - starting the engine's threads with asynchronous signals blocked (eng_thread.h). */
#include "eng_thread.h"

#include <signal.h>

int eng_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    /* Faults raised by the thread's own code must stay deliverable. */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    int rc = pthread_sigmask(SIG_BLOCK, &all, &old);
    if (rc != 0)
        return rc;
    rc = pthread_create(thread, NULL, fn, arg); /* the new thread inherits the blocked mask */
    pthread_sigmask(SIG_SETMASK, &old, NULL);    /* cannot fail: a valid `how` and a mask it returned */
    return rc;
}
