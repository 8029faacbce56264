/* srv_cli_common.h - helpers the command-line tools share (srv_cli.c, srv_cli_faces.c). Private to
 * server/; single-threaded use. */
#ifndef SRV_CLI_COMMON_H
#define SRV_CLI_COMMON_H

#include <stddef.h>

#include "eng_err.h"

/* Prints "visiond: <err>" on stderr; returns EXIT_FAILURE. */
int srv_cli_report(const struct eng_err *err);

/* Prints json and a newline on stdout, flushes, and frees json (NULL: nothing printed). */
void srv_cli_print_line(char *json);

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
