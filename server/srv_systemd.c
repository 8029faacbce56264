/* srv_systemd.c - sd_notify and sd_listen_fds through libsystemd (see srv_systemd.h). libsystemd rather
 * than a hand-written datagram sender: it handles abstract socket names, credentials and the LISTEN_PID
 * check exactly as systemd expects, and it is on every systemd machine anyway. */
#include "srv_systemd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

void srv_sd_notify(const char *state)
{
    (void)sd_notify(0, state);
}

void srv_sd_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* systemd >= 253 matches RELOADING=1 with its MONOTONIC_USEC (Type=notify-reload); 252 ignores it. */
    (void)sd_notifyf(0, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
                     (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
}

int srv_sd_listen_fd(int *fd, char *why, size_t why_size)
{
    *fd = -1;
    const int n = sd_listen_fds(1);
    if (n == 0)
        return 0;
    if (n < 0) {
        snprintf(why, why_size, "socket activation: bad LISTEN_FDS/LISTEN_PID (%s)", strerror(-n));
        return -1;
    }
    if (n > 1) {
        snprintf(why, why_size, "socket activation: %d sockets passed, visiond takes exactly one "
                 "(one ListenStream= in visiond.socket)", n);
        return -1;
    }
    if (sd_is_socket_inet(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
        snprintf(why, why_size, "socket activation: fd %d is not a listening TCP socket",
                 SD_LISTEN_FDS_START);
        return -1;
    }
    *fd = SD_LISTEN_FDS_START;
    return 0;
}

int srv_sd_socket_addr(int fd, char *buf, size_t size, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    const void *addr;
    if (ss.ss_family == AF_INET) {
        addr = &((struct sockaddr_in *)&ss)->sin_addr;
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return inet_ntop(ss.ss_family, addr, buf, (socklen_t)size) ? 0 : -1;
}
