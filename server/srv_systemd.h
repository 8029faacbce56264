/* srv_systemd.h - the daemon's side of systemd's protocols: readiness notification (sd_notify) and socket
 * activation (sd_listen_fds). Both are no-ops outside systemd: without NOTIFY_SOCKET nothing is sent,
 * without LISTEN_FDS/LISTEN_PID no socket is inherited. Any manager that speaks the same protocols
 * (systemd-socket-activate, s6, a test harness) works too. */
#ifndef SRV_SYSTEMD_H
#define SRV_SYSTEMD_H

#include <stddef.h>

/* Sends a notification ("READY=1", "STOPPING=1", newline-separated "KEY=value" fields) to the service
 * manager if NOTIFY_SOCKET is set. Failures are ignored: a daemon must not stop serving because its
 * manager went away. Thread-safe. */
void srv_sd_notify(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC field systemd wants with it; READY=1 ends the reload. */
void srv_sd_notify_reloading(void);

/* The listening socket passed by the service manager. Returns 0 with *fd = -1 when none was passed,
 * 0 with *fd >= 0 (a listening IPv4/IPv6 TCP socket; the caller owns it) when exactly one was, or -1 with a message
 * in why for anything else (several sockets, a datagram or non-listening socket, a bad LISTEN_FDS).
 * Clears LISTEN_FDS/LISTEN_PID so child processes do not see them. Call once, before other threads. */
int srv_sd_listen_fd(int *fd, char *why, size_t why_size);

/* The numeric address a listening socket is bound to ("127.0.0.1", "::"), into buf; its port into
 * *port. Returns 0, or -1 with errno set. */
int srv_sd_socket_addr(int fd, char *buf, size_t size, int *port);

#endif
