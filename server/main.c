/* main.c - visiond's entry point: picks the subcommand, and is the only place that exits. */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kern.h"
#include "proto_output.h"
#include "srv_blas.h"
#include "srv_cli.h"
#include "srv_http.h"
#include "srv_log.h"
#include "srv_route.h"
#include "srv_serve.h"
#include "srv_version.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"serve", srv_serve, "run the HTTP daemon (`visiond serve --help` for its settings)"},
    {"detect", srv_cli_detect, "detect objects in images, print JSON Lines"},
    {"forward", srv_cli_forward, "run a model on a raw tensor, write its head outputs (for tests)"},
    {"faces", srv_cli_faces, "find faces (boxes, landmarks, embeddings) in images, print JSON Lines"},
    {"verify", srv_cli_verify, "are two face photos the same person? print one JSON line"},
    {"gallery", srv_cli_gallery, "export or import the face gallery as JSON Lines"},
    {"identify", srv_cli_identify, "who is in these images? against the gallery, print JSON Lines"},
    {"bench", srv_cli_bench, "time the forward pass (--faces: the face networks)"},
    {"routes", srv_routes_print, "print the HTTP route table (methods, path, API key scope, dialect)"},
};

/* An abort (a library's internal check, glibc finding a corrupt heap, an assert) says where on stderr,
 * which the tests print when a daemon dies: the frames of the thread that aborted, as function+offset
 * or addresses (addr2line -e visiond). Only async-signal-safe calls: write, backtrace_symbols_fd, and
 * backtrace, which install_abort_report ran once so that it does not load libgcc_s in the handler.
 * Then the default action, as before: SA_RESETHAND restored it on entry, and the signal raised again
 * here (blocked until the handler returns) ends the process with a core, a SIGABRT sent with kill too. */
static void on_abort(int sig)
{
    static const char head[] = "visiond: SIGABRT; the stack of the thread it hit:\n";
    const int saved = errno;
    void *frames[64];
    if (write(STDERR_FILENO, head, sizeof head - 1) > 0)
        backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
    errno = saved;
    raise(sig);
}

static void install_abort_report(void)
{
    void *frame[1];
    (void)backtrace(frame, 1);
    struct sigaction sa = {0};
    sa.sa_handler = on_abort;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
}

/* The HTTP library's fatal errors (srv_http_on_fatal): one log line saying where, then the abort. */
static void die(const char *what)
{
    srv_log_write(SRV_LOG_ERROR, "fatal: %s", what);
    abort();
}

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: visiond COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`visiond COMMAND --help` for a command's options.\n");
    return status;
}

int main(int argc, char **argv)
{
    srv_blas_ensure_best_core(argv);
    install_abort_report();
    srv_http_on_fatal(die);
    if (argc < 2)
        return usage(stderr, 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
        return usage(stdout, 0);
    if (eng_kern_env_error()) {
        fprintf(stderr, "visiond: %s\n", eng_kern_env_error());
        return 2;
    }
    /* The CLI commands' answers use the daemon's encoders; `serve` reads the same variable as its
     * json_precision setting. */
    enum proto_precision precision = PROTO_PRECISION_ROUNDED;
    const char *want = getenv("VISIOND_JSON_PRECISION");
    if (want && *want && proto_precision_parse(want, &precision)) {
        fprintf(stderr, "visiond: VISIOND_JSON_PRECISION=%.32s: expected rounded or full\n", want);
        return 2;
    }
    proto_set_precision(precision);
    if (strcmp(argv[1], "--version") == 0) {
        char runs[32];
        printf("visiond %s\nkernels: %s (this processor runs: %s; %s selects)\nblas: OpenBLAS, core %s\n",
               srv_version, eng_isa_name(eng_kern_best()->isa), eng_kern_supported(runs, sizeof runs),
               ENG_KERN_ENV, srv_blas_core());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "visiond: unknown command '%s'\n", argv[1]);
    return usage(stderr, 2);
}
