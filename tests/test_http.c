/* test_http.c - the HTTP layer's daemon (server/srv_http_daemon.c): quiescing on SIGTERM.
 *
 * With epoll and a thread pool, libmicrohttpd 0.9.75's MHD_quiesce_daemon removes the listening socket
 * from every polling thread's epoll set while those threads may be removing it themselves (they do
 * once they see the quiesced flag it sets first); whichever epoll_ctl(DEL) comes second fails with
 * ENOENT and MHD aborts the process (MHD_PANIC). The window is a few instructions wide, so this file
 * makes it wide: it defines epoll_ctl (an executable's definition comes before libc's for the library
 * too), and a DEL by the quiescing thread first connects to the server, which wakes the polling
 * threads, and waits until the kernel shows the socket gone from that epoll set (/proc/self/fdinfo)
 * before doing its own. Against the epoll daemon that aborts on the first round; the daemon must
 * survive it, refuse new connections once quiesced, and stop. Each scenario runs in a child process,
 * so an abort is a failed test that says why (srv_http_on_fatal hands over MHD's message). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv_http.h"

/* ---- the widened race: epoll_ctl as the library sees it ---------------------------------------- */

static pthread_t quiescer;        /* the thread whose DELs are delayed, while armed */
static atomic_int armed, port_to_wake;
static int wake_fds[600];
static int n_wake;                /* only the quiescing thread touches wake_fds */

static int connect_to(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        const int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* 1 while /proc/self/fdinfo/<epfd> lists fd as watched. */
static int in_epoll_set(int epfd, int fd)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int found = 0, tfd;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd;
    fclose(f);
    return found;
}

/* Connects, so that the server's polling threads wake up; the socket stays open until the round ends. */
static void wake(int port)
{
    const int c = connect_to(port);
    if (c >= 0 && n_wake < (int)(sizeof wake_fds / sizeof wake_fds[0]))
        wake_fds[n_wake++] = c;
    else if (c >= 0)
        close(c);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && atomic_load(&armed) && pthread_equal(pthread_self(), quiescer)) {
        /* A new connection makes the listening socket readable in every thread's set, but the thread
         * that accepts it first may leave the others asleep: connect again every 10 ms. */
        for (int ms = 0; ms < 5000 && in_epoll_set(epfd, fd); ms++) {
            if (ms % 10 == 0)
                wake(atomic_load(&port_to_wake));
            nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
        }
    }
    return real(epfd, op, fd, event);
}

/* ---- a child that quiesces a daemon, and reports how that went ----------------------------------- */

static int report_fd = -1; /* the child's end of the pipe to the parent */

static void fatal_to_parent(const char *what)
{
    if (write(report_fd, what, strlen(what)) < 0)
        _exit(71);
    _exit(70);
}

/* Child: rounds of start, quiesce (with the race widened), check refusal, stop. Exit 0 if all went
 * well; 70 after a library panic (message on report_fd); 1..69: which check failed. */
static int quiesce_rounds(int rounds)
{
    srv_http_on_fatal(fatal_to_parent);
    for (int r = 0; r < rounds; r++) {
        const struct srv_http_opts opts = {.bind = "127.0.0.1", .port = 0, .listen_fd = -1,
                                           .max_body = 1 << 20, .threads = 2};
        const struct srv_http_hooks hooks = {0};
        char why[256];
        struct srv_http *h = srv_http_start(&opts, NULL, 0, &hooks, NULL, why, sizeof why);
        if (!h)
            return 1;
        const int port = srv_http_port(h);
        const int before = connect_to(port); /* an open connection, as a kept-alive client's */
        if (before < 0)
            return 2;
        atomic_store(&port_to_wake, port);
        n_wake = 0;
        quiescer = pthread_self();
        atomic_store(&armed, 1);
        srv_http_quiesce(h);
        atomic_store(&armed, 0);
        const int after = connect_to(port);
        if (after >= 0) {
            close(after);
            return 3; /* still accepting */
        }
        if (after != -ECONNREFUSED)
            return 4;
        close(before);
        for (int i = 0; i < n_wake; i++)
            close(wake_fds[i]);
        srv_http_stop(h);
    }
    return 0;
}

static void test_http_quiesce_while_threads_wake_no_abort(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        report_fd = p[1];
        _exit(quiesce_rounds(20));
    }
    close(p[1]);
    char said[512] = "";
    ssize_t n, got = 0;
    while ((n = read(p[0], said + got, sizeof said - 1 - (size_t)got)) > 0)
        got += n;
    said[got > 0 ? got : 0] = '\0';
    close(p[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        print_error("child: %s %d%s%s\n", WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), said[0] ? "; the library said: " : "",
                    said);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_quiesce_while_threads_wake_no_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
