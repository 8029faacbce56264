/* srv_cli_common.h - helpers the command-line tools share (srv_cli.c, srv_cli_faces.c). Private to
 * server/; single-threaded use. */
#ifndef SRV_CLI_COMMON_H
#define SRV_CLI_COMMON_H

#include <stddef.h>

#include "eng_err.h"
#include "proto_errors.h"
#include "srv_params.h"

/* Prints "visiond: <err>" on stderr; returns EXIT_FAILURE. */
int srv_cli_report(const struct eng_err *err);

/* Prints json and a newline on stdout, flushes, and frees json (NULL: nothing printed). */
void srv_cli_print_line(char *json);

/* Prints "visiond: <fmt...>" and usage on stderr; returns 2 (bad usage). */
int srv_cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An integer option's value: decimal, in [lo, hi]. 0 and *out set, or -1. */
int srv_cli_int(const char *s, long lo, long hi, int *out);

/* --option VALUE for the HTTP parameter `key`, set through the route's parameter sink: so the CLI
 * checks it with the HTTP route's bounds and message. 0, or prints "visiond: --option: <proto's
 * message without the parameter's name>" and usage on stderr and returns 2 (bad usage). */
int srv_cli_param(const struct srv_param_sink *sink, const char *option, const char *key,
                  const char *value, const char *usage);

/* Prints proto's error e as srv_cli_param does, for --option (usage NULL: none). */
void srv_cli_param_error(const char *option, const struct proto_err *e, const char *usage);

/* Monotonic clock in milliseconds. */
double srv_cli_now_ms(void);

int srv_cli_is_directory(const char *path);

/* Prints on stderr each layer's kind, output shape, mean ms (total_ms[i] / runs) and GFLOP/s. */
struct eng_net;
void srv_cli_print_profile(const struct eng_net *net, const double *total_ms, int runs);

/* Where --draw DRAW writes the picture of image_path: DRAW/<image stem>.png if DRAW is a directory,
 * else DRAW itself. Written into out (size bytes, cut if longer). */
void srv_cli_draw_path(const char *draw, const char *image_path, char *out, size_t size);

#endif
