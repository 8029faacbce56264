#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "srv_log.h"

int srv_log_min_level = SRV_LOG_INFO;

static const char *level_name[] = {"debug", "info", "warn", "error"};

static void timestamp(char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    const size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Escapes a message as a JSON string body; messages may quote paths or names from files. */
static void escape(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < size; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

void srv_log_write(enum srv_log_level level, const char *fmt, ...)
{
    char msg[1024], esc[2048], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    escape(msg, esc, sizeof esc);
    timestamp(ts, sizeof ts);
    /* One fprintf per line: stdio locks the stream, so lines from threads never interleave. */
    fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts, level_name[level], esc);
}

void srv_log_request(const char *request_id, const char *method, const char *route, int status,
                     unsigned long long bytes_in, unsigned long long bytes_out, double ms)
{
    if (SRV_LOG_INFO < srv_log_min_level)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    fprintf(stderr,
            "{\"time\":\"%s\",\"level\":\"info\",\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\","
            "\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"ms\":%.3f}\n",
            ts, request_id, method, route, status, bytes_in, bytes_out, ms);
}
