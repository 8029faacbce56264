/* eng_thread.h - starting the engine's own threads (the worker pool's workers, a team's helpers).
 *
 * Engine threads start with every asynchronous signal blocked: a process-directed signal (SIGTERM,
 * SIGHUP, SIGINT) must reach one of the server's threads, which act on it, never a worker busy in a
 * forward pass. Faults a thread raises itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL) stay deliverable. */
#ifndef ENG_THREAD_H
#define ENG_THREAD_H

#include <pthread.h>

/* Starts fn(arg) on a new joinable thread stored in *thread, with the signals above blocked in it (it
 * inherits the caller's mask with them added); the caller's own mask is the same on return as before.
 * Returns 0, or the error number of pthread_sigmask or pthread_create (then no thread was started).
 * Thread safety: any thread may call it; it changes only the calling thread's mask, for the duration. */
int eng_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
