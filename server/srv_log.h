/* srv_log.h - the daemon's log: JSON lines on stderr, filtered by level before any formatting. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

enum srv_log_level { SRV_LOG_DEBUG = 0, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR };

extern int srv_log_min_level; /* set once at start, read-only afterwards */

/* {"time":"...","level":"info","msg":"..."}: one line, written atomically. Thread-safe. */
void srv_log_write(enum srv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SRV_LOG(level, ...)                                                                          \
    do {                                                                                             \
        if ((int)(level) >= srv_log_min_level)                                                       \
            srv_log_write((level), __VA_ARGS__);                                                     \
    } while (0)

/* The access log line for one request (fields are trusted: ids and route names from safe sets). */
void srv_log_request(const char *request_id, const char *method, const char *route, int status,
                     unsigned long long bytes_in, unsigned long long bytes_out, double ms);

#endif
