/* test_config.c - the daemon's settings (sources, precedence, errors, printing, the security rule),
 * the API keys file, and SHA-256 against the FIPS 180-4 examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_config.h"
#include "srv_keys.h"
#include "srv_sha256.h"

#define NO_FILE "/nonexistent/visiond-test/visiond.conf"

/* ---- helpers ---- */

/* Writes `text` to a new temporary file; returns its path (static buffer per slot). */
static const char *tmp_file(int slot, const char *text)
{
    static char paths[4][64];
    snprintf(paths[slot], sizeof paths[slot], "/tmp/visiond-test-config-XXXXXX");
    int fd = mkstemp(paths[slot]);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return paths[slot];
}

/* Loads with flags `argv` (NULL-terminated, without the command name) and environment `envp`
 * (NULL-terminated; an empty environment when NULL), reading `default_path` unless --config. */
static struct srv_config *load(const char *const *argv, const char *const *envp, const char *default_path,
                               struct eng_err *err)
{
    char *args[64] = {"serve"};
    int argc = 1;
    for (; argv && argv[argc - 1]; argc++) {
        assert_true(argc < 63);
        args[argc] = (char *)argv[argc - 1];
    }
    static char *const empty_env[] = {NULL};
    struct srv_config_args a = {
        .argc = argc,
        .argv = args,
        .envp = envp ? (char *const *)envp : empty_env,
        .default_path = default_path ? default_path : NO_FILE,
    };
    memset(err, 0, sizeof *err);
    return srv_config_load(&a, err);
}

static struct srv_config *load_ok(const char *const *argv, const char *const *envp, const char *default_path)
{
    struct eng_err err;
    struct srv_config *cfg = load(argv, envp, default_path, &err);
    if (!cfg)
        fail_msg("load failed: %s: %s", err.where, err.msg);
    return cfg;
}

static const char *where(const struct srv_config *cfg, const char *name)
{
    static char buf[512];
    assert_non_null(srv_config_where(cfg, name, buf, sizeof buf));
    return buf;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* ---- sources and precedence ---- */

static void test_config_no_sources_gives_defaults(void **state)
{
    (void)state;
    struct srv_config *cfg = load_ok(NULL, NULL, NULL);
    assert_string_equal(cfg->bind, "127.0.0.1");
    assert_int_equal(cfg->port, 8080);
    assert_string_equal(cfg->models, "models");
    assert_string_equal(cfg->default_model, "yolo-fastest-1.1-xl");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg->workers, cores < 1 ? 1 : cores);
    assert_int_equal(cfg->blas_threads, 1);
    assert_int_equal(cfg->queue, 64);
    assert_int_equal(cfg->timeout_ms, 10000);
    assert_int_equal(cfg->max_body, 20u * 1024 * 1024);
    assert_int_equal(cfg->max_pixels, 40000000);
    assert_non_null(cfg->cors);
    assert_null(cfg->cors[0]);
    assert_int_equal(cfg->n_cors, 0);
    assert_string_equal(cfg->keys, "");
    assert_int_equal(cfg->log_level, SRV_CONFIG_LOG_INFO);
    assert_true(cfg->access_log);
    assert_int_equal(cfg->drain_timeout_ms, 10000);
    assert_true(cfg->queue_high_water > 0.799 && cfg->queue_high_water < 0.801);
    assert_int_equal(cfg->max_connections, 512);
    assert_int_equal(cfg->max_connections_per_ip, 64);
    assert_int_equal(cfg->idle_timeout_s, 30);
    assert_int_equal(cfg->read_timeout_ms, 60000);
    assert_string_equal(cfg->config_path, "");
    assert_false(cfg->print_config);
    assert_false(cfg->help);
    for (size_t i = 0; srv_config_name(i); i++)
        assert_string_equal(where(cfg, srv_config_name(i)), "default");
    assert_null(srv_config_where(cfg, "no_such_setting", (char[8]){0}, 8));
    srv_config_free(cfg);
    srv_config_free(NULL);
}

static void test_config_file_overrides_default(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "# visiond\n"
                                   "port = 9000\n"
                                   "\n"
                                   "   max_body=1M   # one mebibyte\n"
                                   "cors = https://a.example, http://b.example:8123 ,\n"
                                   "log_level = DEBUG\n"
                                   "access_log = off\n"
                                   "queue_high_water = 0.5\r\n"
                                   "models = /srv/models#1\n"
                                   "keys =\n");
    struct srv_config *cfg = load_ok(NULL, NULL, path); /* as the default file */
    assert_int_equal(cfg->port, 9000);
    assert_int_equal(cfg->max_body, 1024 * 1024);
    assert_int_equal(cfg->n_cors, 2);
    assert_string_equal(cfg->cors[0], "https://a.example");
    assert_string_equal(cfg->cors[1], "http://b.example:8123");
    assert_null(cfg->cors[2]);
    assert_int_equal(cfg->log_level, SRV_CONFIG_LOG_DEBUG);
    assert_false(cfg->access_log);
    assert_true(cfg->queue_high_water == 0.5);
    assert_string_equal(cfg->models, "/srv/models#1"); /* '#' not after a space is part of the value */
    assert_string_equal(cfg->keys, "");
    assert_int_equal(cfg->queue, 64); /* untouched */
    assert_string_equal(cfg->config_path, path);
    char expect[512];
    snprintf(expect, sizeof expect, "%s:2", path);
    assert_string_equal(where(cfg, "port"), expect);
    snprintf(expect, sizeof expect, "%s:4", path);
    assert_string_equal(where(cfg, "max_body"), expect);
    assert_string_equal(where(cfg, "queue"), "default");
    srv_config_free(cfg);
    unlink(path);
}

static void test_config_config_flag_selects_file(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "queue = 7\n");
    const char *argv1[] = {"--config", path, NULL};
    struct srv_config *cfg = load_ok(argv1, NULL, NULL);
    assert_int_equal(cfg->queue, 7);
    srv_config_free(cfg);

    char flag[128];
    snprintf(flag, sizeof flag, "--config=%s", path);
    const char *argv2[] = {flag, NULL};
    cfg = load_ok(argv2, NULL, NULL);
    assert_int_equal(cfg->queue, 7);
    srv_config_free(cfg);

    char env[128];
    snprintf(env, sizeof env, "VISIOND_CONFIG=%s", path);
    const char *envp[] = {env, NULL};
    cfg = load_ok(NULL, envp, NULL);
    assert_int_equal(cfg->queue, 7);
    srv_config_free(cfg);
    unlink(path);
}

static void test_config_missing_default_file_accepted(void **state)
{
    (void)state;
    struct srv_config *cfg = load_ok(NULL, NULL, NO_FILE);
    assert_string_equal(cfg->config_path, "");
    srv_config_free(cfg);
}

static void test_config_missing_explicit_file_fails(void **state)
{
    (void)state;
    struct eng_err err;
    const char *argv[] = {"--config", NO_FILE, NULL};
    assert_null(load(argv, NULL, NULL, &err));
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, NO_FILE);

    const char *envp[] = {"VISIOND_CONFIG=" NO_FILE, NULL};
    assert_null(load(NULL, envp, NULL, &err));
    assert_int_equal(err.kind, ENG_ERR_IO);
}

static void test_config_env_overrides_file(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "port = 9000\nmax_body = 1M\nqueue = 5\n");
    const char *envp[] = {"PATH=/bin", "VISIOND_PORT=9100", "VISIOND_MAX_BODY= 2MiB ", "VISIOND_SOMETHING_ELSE=x",
                          "VISIOND_CORS=*", NULL};
    struct srv_config *cfg = load_ok(NULL, envp, path);
    assert_int_equal(cfg->port, 9100);
    assert_int_equal(cfg->max_body, 2 * 1024 * 1024);
    assert_int_equal(cfg->queue, 5);
    assert_int_equal(cfg->n_cors, 1);
    assert_string_equal(cfg->cors[0], "*");
    assert_string_equal(where(cfg, "port"), "env VISIOND_PORT");
    assert_string_equal(where(cfg, "max_body"), "env VISIOND_MAX_BODY");
    srv_config_free(cfg);
    unlink(path);
}

static void test_config_flag_overrides_env(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "port = 9000\n");
    const char *envp[] = {"VISIOND_PORT=9100", "VISIOND_WORKERS=3", NULL};
    const char *argv[] = {"--port", "9200", "--models", "/m", "--default-model", "yolov4-tiny", NULL};
    struct srv_config *cfg = load_ok(argv, envp, path);
    assert_int_equal(cfg->port, 9200);
    assert_int_equal(cfg->workers, 3);
    assert_string_equal(cfg->models, "/m");
    assert_string_equal(cfg->default_model, "yolov4-tiny");
    assert_string_equal(where(cfg, "port"), "flag --port");
    assert_string_equal(where(cfg, "default_model"), "flag --default-model");
    assert_string_equal(where(cfg, "workers"), "env VISIOND_WORKERS");
    srv_config_free(cfg);
    unlink(path);
}

static void test_config_flag_equals_form_accepted(void **state)
{
    (void)state;
    const char *argv[] = {"--port=9300",          "--max-body=512k",     "--log-level=warn",
                          "--cors=https://x.example", "--no-access-log",     "--queue-high-water=0.25",
                          "--timeout-ms=250",     "--drain-timeout-ms=0", "--blas-threads=2",
                          "--max-pixels=1000",    "--keys=/etc/k",       "--bind=::1",
                          "--print-config",       NULL};
    struct srv_config *cfg = load_ok(argv, NULL, NULL);
    assert_int_equal(cfg->port, 9300);
    assert_int_equal(cfg->max_body, 512 * 1024);
    assert_int_equal(cfg->log_level, SRV_CONFIG_LOG_WARN);
    assert_int_equal(cfg->n_cors, 1);
    assert_false(cfg->access_log);
    assert_true(cfg->queue_high_water == 0.25);
    assert_int_equal(cfg->timeout_ms, 250);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    assert_int_equal(cfg->blas_threads, 2);
    assert_int_equal(cfg->max_pixels, 1000);
    assert_string_equal(cfg->keys, "/etc/k");
    assert_string_equal(cfg->bind, "::1");
    assert_true(cfg->print_config);
    assert_string_equal(where(cfg, "access_log"), "flag --access-log");
    srv_config_free(cfg);

    const char *argv2[] = {"--access-log", "--port", "0", "--bind", "localhost", NULL};
    cfg = load_ok(argv2, NULL, NULL);
    assert_true(cfg->access_log);
    assert_int_equal(cfg->port, 0);
    assert_string_equal(cfg->bind, "127.0.0.1"); /* normalized for the HTTP layer */
    srv_config_free(cfg);
}

static void test_config_help_flag_skips_sources(void **state)
{
    (void)state;
    const char *envp[] = {"VISIOND_PORT=nonsense", NULL};
    const char *argv[] = {"--help", NULL};
    struct srv_config *cfg = load_ok(argv, envp, NULL);
    assert_true(cfg->help);
    srv_config_free(cfg);
}

/* ---- errors ---- */

static void test_config_unknown_file_key_fails_with_line(void **state)
{
    (void)state;
    struct eng_err err;
    const char *path = tmp_file(0, "port = 1\n\n# comment\nbogus = 3\n");
    assert_null(load(NULL, NULL, path, &err));
    char expect[512];
    snprintf(expect, sizeof expect, "%s:4", path);
    assert_string_equal(err.where, expect);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_contains(err.msg, "unknown setting 'bogus'");
    unlink(path);

    path = tmp_file(0, "max-body = 1M\n");
    assert_null(load(NULL, NULL, path, &err));
    assert_contains(err.msg, "did you mean 'max_body'");
    unlink(path);

    path = tmp_file(0, "port 8080\n");
    assert_null(load(NULL, NULL, path, &err));
    snprintf(expect, sizeof expect, "%s:1", path);
    assert_string_equal(err.where, expect);
    assert_contains(err.msg, "key = value");
    unlink(path);
}

static void test_config_duplicate_file_key_fails(void **state)
{
    (void)state;
    struct eng_err err;
    const char *path = tmp_file(0, "port = 1\nqueue = 2\nport = 3\n");
    assert_null(load(NULL, NULL, path, &err));
    char expect[512];
    snprintf(expect, sizeof expect, "%s:3", path);
    assert_string_equal(err.where, expect);
    assert_contains(err.msg, "first at line 1");
    unlink(path);
}

static void test_config_bad_number_names_source(void **state)
{
    (void)state;
    struct eng_err err;
    char expect[512];

    const char *path = tmp_file(0, "\nport = 80x\n");
    assert_null(load(NULL, NULL, path, &err));
    snprintf(expect, sizeof expect, "%s:2", path);
    assert_string_equal(err.where, expect);
    assert_contains(err.msg, "port");
    assert_contains(err.msg, "0..65535");
    assert_contains(err.msg, "'80x'");
    unlink(path);

    const char *envp[] = {"VISIOND_WORKERS=lots", NULL};
    assert_null(load(NULL, envp, NULL, &err));
    assert_string_equal(err.where, "env VISIOND_WORKERS");
    assert_contains(err.msg, "1..1024");

    const char *argv[] = {"--queue", "", NULL};
    assert_null(load(argv, NULL, NULL, &err));
    assert_string_equal(err.where, "flag --queue");
    assert_contains(err.msg, "1..65536");

    const char *argv2[] = {"--queue-high-water=half", NULL};
    assert_null(load(argv2, NULL, NULL, &err));
    assert_string_equal(err.where, "flag --queue-high-water");
    assert_contains(err.msg, "0..1");
}

static void test_config_out_of_range_fails_with_bounds(void **state)
{
    (void)state;
    struct eng_err err;
    static const struct {
        const char *flag, *where, *bounds;
    } cases[] = {
        {"--port=70000", "flag --port", "0..65535"},
        {"--port=-1", "flag --port", "0..65535"},
        {"--workers=0", "flag --workers", "1..1024"},
        {"--max-body=2G", "flag --max-body", "1k..1G"},
        {"--max-body=100", "flag --max-body", "1k..1G"},
        {"--max-pixels=0", "flag --max-pixels", "1..1000000000"},
        {"--queue-high-water=1.5", "flag --queue-high-water", "0..1"},
        {"--queue-high-water=nan", "flag --queue-high-water", "0..1"},
        {"--timeout-ms=99999999999999999999", "flag --timeout-ms", "1..3600000"},
        {"--drain-timeout-ms=600001", "flag --drain-timeout-ms", "0..600000"},
        {"--max-connections=0", "flag --max-connections", "1..100000"},
        {"--max-connections-per-ip=-1", "flag --max-connections-per-ip", "0..100000"},
        {"--idle-timeout-s=0", "flag --idle-timeout-s", "1..3600"},
        {"--read-timeout-ms=99", "flag --read-timeout-ms", "100..3600000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {cases[i].flag, NULL};
        assert_null(load(argv, NULL, NULL, &err));
        assert_int_equal(err.kind, ENG_ERR_INVALID);
        assert_string_equal(err.where, cases[i].where);
        assert_contains(err.msg, cases[i].bounds);
    }
}

static void test_config_size_suffixes_parsed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes;
    } good[] = {
        {"1048576", 1048576},     {"512k", 512 * 1024}, {"512K", 512 * 1024},     {"20M", 20 << 20},
        {"20MiB", 20 << 20},      {"20MB", 20 << 20},   {"1G", 1u << 30},        {"1024", 1024},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--max-body=%s", good[i].text);
        const char *argv[] = {flag, NULL};
        struct srv_config *cfg = load_ok(argv, NULL, NULL);
        assert_int_equal(cfg->max_body, good[i].bytes);
        srv_config_free(cfg);
    }
    static const char *const bad[] = {"1T", "-1", "1.5M", "M", "", "20 M", "20m", "20Mi", "+5M",
                                      "99999999999999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--max-body=%s", bad[i]);
        const char *argv[] = {flag, NULL};
        struct eng_err err;
        assert_null(load(argv, NULL, NULL, &err));
        assert_contains(err.msg, "max_body");
    }
}

static void test_config_bad_bool_and_enum_fail(void **state)
{
    (void)state;
    struct eng_err err;
    const char *path = tmp_file(0, "access_log = maybe\n");
    assert_null(load(NULL, NULL, path, &err));
    assert_contains(err.msg, "yes/no");
    unlink(path);

    const char *envp[] = {"VISIOND_LOG_LEVEL=loud", NULL};
    assert_null(load(NULL, envp, NULL, &err));
    assert_string_equal(err.where, "env VISIOND_LOG_LEVEL");
    assert_contains(err.msg, "debug, info, warn, error");
}

static void test_config_bad_strings_fail(void **state)
{
    (void)state;
    struct eng_err err;
    static const char *const argv_cases[][3] = {
        {"--bind", "example.com", NULL},
        {"--bind", "0.0.0.0:80", NULL},
        {"--default-model", "../etc", NULL},
        {"--default-model", "..", NULL},
        {"--cors", "https://a.example/path", NULL},
        {"--cors", "a.example", NULL},
        {"--models", "", NULL},
    };
    for (size_t i = 0; i < sizeof argv_cases / sizeof argv_cases[0]; i++) {
        assert_null(load(argv_cases[i], NULL, NULL, &err));
        assert_int_equal(err.kind, ENG_ERR_INVALID);
        assert_contains(err.where, "flag --");
    }
}

static void test_config_bad_flags_fail(void **state)
{
    (void)state;
    struct eng_err err;
    const char *unknown[] = {"--bogus", "1", NULL};
    assert_null(load(unknown, NULL, NULL, &err));
    assert_contains(err.msg, "unknown option '--bogus'");

    const char *positional[] = {"stray", NULL};
    assert_null(load(positional, NULL, NULL, &err));
    assert_contains(err.msg, "unexpected argument 'stray'");

    const char *missing[] = {"--port", NULL};
    assert_null(load(missing, NULL, NULL, &err));
    assert_string_equal(err.where, "flag --port");
    assert_contains(err.msg, "needs a value");

    const char *forgotten[] = {"--models", "--port", "1", NULL};
    assert_null(load(forgotten, NULL, NULL, &err));
    assert_string_equal(err.where, "flag --models");

    const char *no_value[] = {"--no-port", NULL};
    assert_null(load(no_value, NULL, NULL, &err));
    assert_contains(err.msg, "unknown option");

    const char *print_value[] = {"--print-config=yes", NULL};
    assert_null(load(print_value, NULL, NULL, &err));
}

/* ---- printing ---- */

static void test_config_print_shows_sources(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "# header\nport = 9000\n");
    const char *envp[] = {"VISIOND_QUEUE=12", NULL};
    const char *argv[] = {"--workers", "2", "--max-body", "4M", NULL};
    struct srv_config *cfg = load_ok(argv, envp, path);

    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    srv_config_print(cfg, out);
    fclose(out);

    char expect[512], port_line[512];
    snprintf(expect, sizeof expect, "# %s:2", path);
    const char *line = strstr(text, "\nport ");
    assert_non_null(line);
    snprintf(port_line, sizeof port_line, "%.*s", (int)strcspn(line + 1, "\n"), line + 1);
    assert_contains(port_line, "= 9000 ");
    assert_contains(port_line, expect);
    assert_contains(text, "# env VISIOND_QUEUE\n");
    assert_contains(text, "# flag --workers\n");
    assert_contains(text, "= 4M ");
    assert_contains(text, "# flag --max-body\n");
    assert_contains(text, "# default\n");

    /* one line per setting plus a header, and the '=' signs and '#' comments line up */
    int lines = 0, eq_col = -1, hash_col = -1;
    for (char *p = text; *p; p = strchr(p, '\n') + 1) {
        lines++;
        if (*p == '#')
            continue;
        int eq = (int)(strchr(p, '=') - p), hash = (int)(strstr(p, "  # ") - p);
        if (eq_col < 0)
            eq_col = eq, hash_col = hash;
        assert_int_equal(eq, eq_col);
        assert_int_equal(hash, hash_col);
    }
    size_t n = 0;
    while (srv_config_name(n))
        n++;
    assert_int_equal(lines, (int)n + 1);
    free(text);

    /* the printed configuration is itself a valid config file that gives the same values */
    out = open_memstream(&text, &size);
    srv_config_print(cfg, out);
    fclose(out);
    const char *again_path = tmp_file(1, text);
    struct srv_config *again = load_ok(NULL, NULL, again_path);
    assert_int_equal(again->port, 9000);
    assert_int_equal(again->queue, 12);
    assert_int_equal(again->workers, 2);
    assert_int_equal(again->max_body, 4 << 20);
    srv_config_free(again);
    unlink(again_path);
    free(text);

    srv_config_free(cfg);
    unlink(path);

    out = open_memstream(&text, &size);
    srv_config_usage(out);
    fclose(out);
    assert_contains(text, "--bind ADDR");
    assert_contains(text, "--no-access-log");
    assert_contains(text, "--default-model NAME");
    assert_contains(text, "--print-config");
    assert_contains(text, "--config FILE");
    free(text);
}

static void test_config_example_lists_every_key(void **state)
{
    (void)state;
    FILE *f = fopen(VISIOND_SOURCE_DIR "/docs/visiond.conf.example", "r");
    assert_non_null(f);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (size_t i = 0; srv_config_name(i); i++) {
        char want[64];
        snprintf(want, sizeof want, "\n# %s = ", srv_config_name(i));
        if (!strstr(text, want)) {
            snprintf(want, sizeof want, "\n# %s =\n", srv_config_name(i));
            if (!strstr(text, want))
                fail_msg("docs/visiond.conf.example lacks '# %s = ...'", srv_config_name(i));
        }
    }
    /* all of it commented out: loading it gives the defaults */
    const char *argv[] = {"--config", VISIOND_SOURCE_DIR "/docs/visiond.conf.example", NULL};
    struct srv_config *cfg = load_ok(argv, NULL, NULL);
    assert_int_equal(cfg->port, 8080);
    srv_config_free(cfg);
}

/* ---- validation ---- */

static void test_config_nonloopback_bind_without_keys_refused(void **state)
{
    (void)state;
    static const char *const addrs[] = {"0.0.0.0", "::", "192.168.1.20", "128.0.0.1", "2001:db8::1"};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        const char *argv[] = {"--bind", addrs[i], NULL};
        struct srv_config *cfg = load_ok(argv, NULL, NULL);
        struct eng_err err = {0};
        char warnings[256];
        assert_int_equal(srv_config_validate(cfg, 64, warnings, sizeof warnings, &err), -1);
        assert_int_equal(err.kind, ENG_ERR_INVALID);
        assert_string_equal(err.where, "flag --bind");
        assert_contains(err.msg, addrs[i]);
        assert_contains(err.msg, "API keys");
        assert_contains(err.msg, "--keys");
        srv_config_free(cfg);
    }
    const char *envp[] = {"VISIOND_BIND=0.0.0.0", NULL};
    struct srv_config *cfg = load_ok(NULL, envp, NULL);
    struct eng_err err = {0};
    assert_int_equal(srv_config_validate(cfg, 64, NULL, 0, &err), -1);
    assert_string_equal(err.where, "env VISIOND_BIND");
    srv_config_free(cfg);
}

static void test_config_nonloopback_bind_with_keys_accepted(void **state)
{
    (void)state;
    const char *argv[] = {"--bind", "0.0.0.0", "--keys", "/etc/visiond/keys", NULL};
    struct srv_config *cfg = load_ok(argv, NULL, NULL);
    struct eng_err err = {0};
    char warnings[256] = "junk";
    assert_int_equal(srv_config_validate(cfg, 1024, warnings, sizeof warnings, &err), 0);
    assert_string_equal(warnings, "");
    srv_config_free(cfg);

    static const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        assert_true(srv_config_is_loopback(loopback[i]));
        const char *argv2[] = {"--bind", loopback[i], NULL};
        cfg = load_ok(argv2, NULL, NULL);
        assert_int_equal(srv_config_validate(cfg, 1024, NULL, 0, &err), 0);
        srv_config_free(cfg);
    }
    assert_false(srv_config_is_loopback("example.com"));
    assert_false(srv_config_is_loopback("::ffff:10.0.0.1"));
    assert_false(srv_config_is_loopback(NULL));
}

static void test_config_oversubscribed_cores_warns(void **state)
{
    (void)state;
    const char *argv[] = {"--workers", "4", "--blas-threads", "2", NULL};
    struct srv_config *cfg = load_ok(argv, NULL, NULL);
    char warnings[512];
    struct eng_err err = {0};
    assert_int_equal(srv_config_validate(cfg, 4, warnings, sizeof warnings, &err), 0);
    assert_contains(warnings, "workers (4) x blas_threads (2) = 8");
    assert_contains(warnings, "4 online cores");
    assert_int_equal(srv_config_validate(cfg, 8, warnings, sizeof warnings, &err), 0);
    assert_string_equal(warnings, "");
    srv_config_free(cfg);
}

static void test_config_threading_modes_parsed_and_latency_oversubscription_warns(void **state)
{
    (void)state;
    struct srv_config *cfg = load_ok(NULL, NULL, NULL);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg->threads, cores < 1 ? 1 : cores > 64 ? 64 : cores);
    assert_int_equal(cfg->threading, SRV_THREADING_AUTO);
    srv_config_free(cfg);
    const char *modes[] = {"auto", "latency", "throughput"};
    const enum srv_config_threading want[] = {SRV_THREADING_AUTO, SRV_THREADING_LATENCY,
                                              SRV_THREADING_THROUGHPUT};
    for (int i = 0; i < 3; i++) {
        const char *argv[] = {"--threading", modes[i], "--threads", "3", NULL};
        cfg = load_ok(argv, NULL, NULL);
        assert_int_equal(cfg->threading, want[i]);
        assert_int_equal(cfg->threads, 3);
        srv_config_free(cfg);
    }
    struct eng_err err = {0};
    const char *bad[] = {"--threading", "fast", NULL};
    assert_null(load(bad, NULL, NULL, &err));
    assert_contains(err.msg, "throughput");
    const char *zero[] = {"--threads", "0", NULL};
    assert_null(load(zero, NULL, NULL, &err));

    /* latency splits every request over `threads`: 2 workers x 2 threads on 2 cores oversubscribe;
     * auto shares the cores and is not warned about */
    const char *lat[] = {"--threading", "latency", "--workers", "2", "--threads", "2", NULL};
    cfg = load_ok(lat, NULL, NULL);
    char warnings[512];
    assert_int_equal(srv_config_validate(cfg, 2, warnings, sizeof warnings, &err), 0);
    assert_contains(warnings, "workers (2) x threads (2) = 4");
    srv_config_free(cfg);
    const char *autom[] = {"--threading", "auto", "--workers", "2", "--threads", "2", NULL};
    cfg = load_ok(autom, NULL, NULL);
    assert_int_equal(srv_config_validate(cfg, 2, warnings, sizeof warnings, &err), 0);
    assert_string_equal(warnings, "");
    srv_config_free(cfg);
}

/* The web page is on by default; `--ui off` (two words, like the other enums) or VISIOND_UI=off turn
 * it off; anything but on/off is refused naming both. */
static void test_config_ui_on_by_default_off_by_flag_or_env(void **state)
{
    (void)state;
    struct srv_config *cfg = load_ok(NULL, NULL, NULL);
    assert_int_equal(cfg->ui, SRV_UI_ON);
    srv_config_free(cfg);
    const char *off[] = {"--ui", "off", NULL};
    cfg = load_ok(off, NULL, NULL);
    assert_int_equal(cfg->ui, SRV_UI_OFF);
    srv_config_free(cfg);
    const char *env[] = {"VISIOND_UI=off", NULL};
    cfg = load_ok(NULL, env, NULL);
    assert_int_equal(cfg->ui, SRV_UI_OFF);
    srv_config_free(cfg);
    struct eng_err err = {0};
    const char *bad[] = {"--ui", "maybe", NULL};
    assert_null(load(bad, NULL, NULL, &err));
    assert_contains(err.msg, "on, off");
}

/* ---- SHA-256 (FIPS 180-4 examples) ---- */

static void assert_digest(const unsigned char *got, const char *hex)
{
    char s[2 * SRV_SHA256_SIZE + 1];
    for (int i = 0; i < SRV_SHA256_SIZE; i++)
        snprintf(s + 2 * i, 3, "%02x", got[i]);
    assert_string_equal(s, hex);
}

static void test_config_sha256_abc_matches_fips(void **state)
{
    (void)state;
    unsigned char d[SRV_SHA256_SIZE];
    srv_sha256("abc", 3, d);
    assert_digest(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_config_sha256_empty_matches_fips(void **state)
{
    (void)state;
    unsigned char d[SRV_SHA256_SIZE];
    srv_sha256(NULL, 0, d);
    assert_digest(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_config_sha256_448bit_matches_fips(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: two blocks */
    unsigned char d[SRV_SHA256_SIZE];
    srv_sha256(m, strlen(m), d);
    assert_digest(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_config_sha256_long_inputs_match(void **state)
{
    (void)state;
    unsigned char d[SRV_SHA256_SIZE];
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                    "mnopqrstnopqrstu"; /* 896 bits */
    srv_sha256(m, strlen(m), d);
    assert_digest(d, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* one million 'a', fed in uneven pieces so every buffering path runs */
    static char a[1000];
    memset(a, 'a', sizeof a);
    struct srv_sha256 ctx;
    srv_sha256_init(&ctx);
    size_t done = 0, piece = 1;
    while (done < 1000000) {
        size_t n = piece % sizeof a;
        if (n > 1000000 - done)
            n = 1000000 - done;
        srv_sha256_update(&ctx, a, n);
        done += n;
        piece = piece * 7 + 3;
    }
    srv_sha256_final(&ctx, d);
    assert_digest(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* ---- API keys ---- */

#define KEY1 "k1-0123456789abcdef"
#define KEY2 "k2-ZYXWVUTSRQPONMLK-long-key-with-more-than-one-block-of-sha256-input-0123456789"

static void test_config_keys_right_key_accepted_others_rejected(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "# visiond API keys\n\n  " KEY1 "  \r\n" KEY2 "\n   \n# " KEY1 "x\n");
    struct eng_err err = {0};
    struct srv_keys *keys = srv_keys_load(path, &err);
    if (!keys)
        fail_msg("%s: %s", err.where, err.msg);
    assert_int_equal(srv_keys_count(keys), 2);
    assert_true(srv_keys_check(keys, KEY1));
    assert_true(srv_keys_check(keys, KEY2));
    assert_false(srv_keys_check(keys, KEY1 "x")); /* a commented-out line is not a key */
    assert_false(srv_keys_check(keys, "k1-0123456789abcde"));
    assert_false(srv_keys_check(keys, " " KEY1));
    assert_false(srv_keys_check(keys, "K1-0123456789abcdef"));
    assert_false(srv_keys_check(keys, ""));
    assert_false(srv_keys_check(keys, NULL));
    assert_false(srv_keys_check(NULL, KEY1));
    srv_keys_free(keys);
    srv_keys_free(NULL);
    unlink(path);
}

static void test_config_keys_bad_key_fails_without_quoting_it(void **state)
{
    (void)state;
    struct eng_err err = {0};
    const char *path = tmp_file(0, KEY1 "\n\nshortkey\n");
    assert_null(srv_keys_load(path, &err));
    char expect[512];
    snprintf(expect, sizeof expect, "%s:3", path);
    assert_string_equal(err.where, expect);
    assert_contains(err.msg, "too short");
    assert_null(strstr(err.msg, "shortkey"));
    assert_null(strstr(err.msg, KEY1));
    unlink(path);

    path = tmp_file(0, "secret with spaces in it\n");
    assert_null(srv_keys_load(path, &err));
    assert_null(strstr(err.msg, "secret"));
    unlink(path);
}

static void test_config_keys_scope_admin_or_inference(void **state)
{
    (void)state;
    const char *path = tmp_file(0, KEY1 "  scope=admin\n" KEY2 "\n");
    struct eng_err err = {0};
    struct srv_keys *keys = srv_keys_load(path, &err);
    if (!keys)
        fail_msg("%s: %s", err.where, err.msg);
    assert_int_equal(srv_keys_scope(keys, KEY1), SRV_SCOPE_ADMIN);
    assert_int_equal(srv_keys_scope(keys, KEY2), SRV_SCOPE_INFERENCE); /* no scope: an inference key */
    assert_int_equal(srv_keys_scope(keys, "k1-0123456789abcdeX"), SRV_SCOPE_PUBLIC);
    assert_int_equal(srv_keys_scope(keys, NULL), SRV_SCOPE_PUBLIC);
    assert_true(srv_keys_check(keys, KEY1));
    srv_keys_free(keys);
    unlink(path);

    path = tmp_file(0, KEY1 " scope=inference\n" KEY2 "\tscope=root\n");
    assert_null(srv_keys_load(path, &err));
    char expect[512];
    snprintf(expect, sizeof expect, "%s:2", path);
    assert_string_equal(err.where, expect);
    assert_contains(err.msg, "scope=admin");
    assert_null(strstr(err.msg, KEY2));
    unlink(path);
}

/* `printf %s KEY | sha256sum` of KEY1 (upper case: either case is accepted) and KEY2. */
#define KEY1_SHA256 "66552F4AC6DD9AF4F63A668AA824184832ECD3114BC791B50BD58D85FAE3A9A8"
#define KEY2_SHA256 "f20aca84d2dcceae68f1a6e278d8338a00e8cdcfda335f78715394369aa13e11"

static void test_config_keys_sha256_lines_match_their_keys(void **state)
{
    (void)state;
    const char *path = tmp_file(0, "# hashed\n  sha256:" KEY1_SHA256 "\nsha256:" KEY2_SHA256 "\n");
    struct eng_err err = {0};
    struct srv_keys *keys = srv_keys_load(path, &err);
    if (!keys)
        fail_msg("%s: %s", err.where, err.msg);
    assert_int_equal(srv_keys_count(keys), 2);
    assert_true(srv_keys_check(keys, KEY1));
    assert_true(srv_keys_check(keys, KEY2));
    assert_false(srv_keys_check(keys, "sha256:" KEY1_SHA256)); /* the digest is not a key */
    assert_false(srv_keys_check(keys, KEY1 "x"));
    srv_keys_free(keys);
    unlink(path);
}

static void test_config_keys_bad_sha256_line_names_line(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "sha256:" KEY2_SHA256 "0\n",                 /* 65 digits */
        "sha256:abc\n",                              /* short */
        "sha256:g0aca84d2dcceae68f1a6e278d8338a00e8cdcfda335f78715394369aa13e11\n", /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct eng_err err = {0};
        char text[256];
        snprintf(text, sizeof text, "%s\n\n%s", KEY1, bad[i]);
        const char *path = tmp_file(0, text);
        assert_null(srv_keys_load(path, &err));
        char expect[512];
        snprintf(expect, sizeof expect, "%s:3", path);
        assert_string_equal(err.where, expect);
        assert_contains(err.msg, "64 hex digits");
        assert_null(strstr(err.msg, KEY1));
        unlink(path);
    }
}

static void test_config_keys_empty_or_missing_file_fails(void **state)
{
    (void)state;
    struct eng_err err = {0};
    const char *path = tmp_file(0, "# no keys yet\n\n");
    assert_null(srv_keys_load(path, &err));
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_contains(err.msg, "no API keys");
    unlink(path);

    assert_null(srv_keys_load(NO_FILE, &err));
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, NO_FILE);
}

/* ---- reload ---- */

static void test_config_keep_differing_value_copied_with_origin(void **state)
{
    (void)state;
    const char *run_argv[] = {"--port", "9000", "--cors", "https://a.example,https://b.example", NULL};
    struct srv_config *running = load_ok(run_argv, NULL, NULL);
    const char *path = tmp_file(0, "port = 8000\ncors = https://c.example\n");
    const char *new_argv[] = {"--config", path, NULL};
    struct srv_config *next = load_ok(new_argv, NULL, NULL);
    struct eng_err err = {0};
    assert_int_equal(srv_config_keep(next, running, "port", &err), 1);
    assert_int_equal(next->port, 9000);
    assert_string_equal(where(next, "port"), "flag --port");
    assert_int_equal(srv_config_keep(next, running, "port", &err), 0); /* now equal */
    assert_int_equal(srv_config_keep(next, running, "cors", &err), 1);
    assert_int_equal(srv_config_keep(next, running, "models", &err), 0); /* both default */
    srv_config_free(running); /* the kept values are next's own copies */
    assert_int_equal(next->n_cors, 2);
    assert_string_equal(next->cors[0], "https://a.example");
    assert_string_equal(next->cors[1], "https://b.example");
    assert_null(next->cors[2]);
    srv_config_free(next);
    unlink(path);
}

static void test_config_keep_unknown_setting_fails(void **state)
{
    (void)state;
    struct srv_config *a = load_ok(NULL, NULL, NULL), *b = load_ok(NULL, NULL, NULL);
    struct eng_err err = {0};
    assert_int_equal(srv_config_keep(a, b, "no_such_setting", &err), -1);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_string_equal(err.where, "no_such_setting");
    srv_config_free(a);
    srv_config_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_no_sources_gives_defaults),
        cmocka_unit_test(test_config_file_overrides_default),
        cmocka_unit_test(test_config_config_flag_selects_file),
        cmocka_unit_test(test_config_missing_default_file_accepted),
        cmocka_unit_test(test_config_missing_explicit_file_fails),
        cmocka_unit_test(test_config_env_overrides_file),
        cmocka_unit_test(test_config_flag_overrides_env),
        cmocka_unit_test(test_config_flag_equals_form_accepted),
        cmocka_unit_test(test_config_help_flag_skips_sources),
        cmocka_unit_test(test_config_unknown_file_key_fails_with_line),
        cmocka_unit_test(test_config_duplicate_file_key_fails),
        cmocka_unit_test(test_config_bad_number_names_source),
        cmocka_unit_test(test_config_out_of_range_fails_with_bounds),
        cmocka_unit_test(test_config_size_suffixes_parsed),
        cmocka_unit_test(test_config_bad_bool_and_enum_fail),
        cmocka_unit_test(test_config_bad_strings_fail),
        cmocka_unit_test(test_config_bad_flags_fail),
        cmocka_unit_test(test_config_print_shows_sources),
        cmocka_unit_test(test_config_example_lists_every_key),
        cmocka_unit_test(test_config_nonloopback_bind_without_keys_refused),
        cmocka_unit_test(test_config_nonloopback_bind_with_keys_accepted),
        cmocka_unit_test(test_config_keep_differing_value_copied_with_origin),
        cmocka_unit_test(test_config_keep_unknown_setting_fails),
        cmocka_unit_test(test_config_oversubscribed_cores_warns),
        cmocka_unit_test(test_config_threading_modes_parsed_and_latency_oversubscription_warns),
        cmocka_unit_test(test_config_ui_on_by_default_off_by_flag_or_env),
        cmocka_unit_test(test_config_sha256_abc_matches_fips),
        cmocka_unit_test(test_config_sha256_empty_matches_fips),
        cmocka_unit_test(test_config_sha256_448bit_matches_fips),
        cmocka_unit_test(test_config_sha256_long_inputs_match),
        cmocka_unit_test(test_config_keys_right_key_accepted_others_rejected),
        cmocka_unit_test(test_config_keys_bad_key_fails_without_quoting_it),
        cmocka_unit_test(test_config_keys_scope_admin_or_inference),
        cmocka_unit_test(test_config_keys_sha256_lines_match_their_keys),
        cmocka_unit_test(test_config_keys_bad_sha256_line_names_line),
        cmocka_unit_test(test_config_keys_empty_or_missing_file_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
