/* test_load_oom.c - out of memory at model load: every allocation the darknet loader (cfg, weights,
 * names), the TF.js manifest loader and the face model build make is failed in turn, and each failure
 * must end in an error naming its place, with nothing leaked (LeakSanitizer checks the leaks) and no
 * crash. The same for the per-worker contexts built right after loading.
 *
 * How: this executable is linked with -Wl,--wrap=malloc,... (tests/CMakeLists.txt), so every call the
 * engine's own code makes to malloc/calloc/realloc/strdup/strndup lands in __wrap_* below, and jansson's
 * allocator is pointed at the same wrapper. Allocations libc makes for itself (fopen's buffer) are not
 * ours to handle and are left alone. The budget counts successes before the first failure (as in
 * failing_alloc.h, whose counter this shares); from then on every allocation fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "conv_wino.h"
#include "darknet.h"
#include "face.h"
#include "failing_alloc.h"
#include "net.h"
#include "tfjs.h"

#define MODELS VISIOND_SOURCE_DIR "/models"
#define FASTEST MODELS "/yolo-fastest-1.1/yolo-fastest-1.1"
#define SHARED_CFG VISIOND_SHARED_DIR "/models/cfg"
#define FACES MODELS "/faces"

/* ---- the allocator --------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long failed;         /* allocations refused since the budget was set */

/* Spends one unit of the budget; 0 when this allocation must fail. */
static int granted(void)
{
    if (budget == 0) {
        failed++;
        return 0;
    }
    if (budget > 0)
        budget--;
    return 1;
}

void *__wrap_malloc(size_t n) { return granted() ? __real_malloc(n) : NULL; }
void *__wrap_calloc(size_t n, size_t size) { return granted() ? __real_calloc(n, size) : NULL; }
void *__wrap_realloc(void *p, size_t n) { return granted() ? __real_realloc(p, n) : NULL; }
char *__wrap_strdup(const char *s) { return granted() ? __real_strdup(s) : NULL; }
char *__wrap_strndup(const char *s, size_t n) { return granted() ? __real_strndup(s, n) : NULL; }

/* jansson's allocations are not swept: its lexer ignores a failed buffer growth and then asserts
 * (abort) on the next character (jansson issue #362, open in 2.14), which no caller can handle. They
 * fail only all at once (json_fail_all), which stops jansson before its lexer runs. */
static int json_fail_all;

static void *json_malloc(size_t n)
{
    if (json_fail_all) {
        failed++;
        return NULL;
    }
    return __real_malloc(n);
}

static void arm(long n)
{
    failed = 0;
    budget = n;
}

static int setup(void **state)
{
    (void)state;
    json_set_alloc_funcs(json_malloc, free);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    budget = -1;
    json_set_alloc_funcs(malloc, free);
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

#define REQUIRE(path)                                                                             \
    do {                                                                                          \
        if (!exists(path)) {                                                                      \
            fprintf(stderr, "SKIP: no %s (run scripts/fetch-models)\n", path);                    \
            skip();                                                                               \
        }                                                                                         \
    } while (0)

/* Checks one failed attempt: an error with a message, of kind NOMEM, after at least one allocation
 * was actually refused. */
static void check_failure(const struct eng_err *err, long n)
{
    if (failed == 0)
        fail_msg("budget %ld: the load failed without a refused allocation: %s: %s", n, err->where,
                 err->msg);
    if (err->msg[0] == '\0')
        fail_msg("budget %ld: failed with an empty message", n);
    if (err->kind != ENG_ERR_NOMEM)
        fail_msg("budget %ld: kind %d, not NOMEM: %s: %s", n, (int)err->kind, err->where, err->msg);
}

/* ---- the sweeps ------------------------------------------------------------------------------- */

/* One load attempt under the current budget: 0 when it succeeded (and was freed). */
typedef int (*attempt_fn)(struct eng_err *err);

/* Runs attempt with budgets 0, 1, 2, ... until one succeeds; returns how many failed. Fails the test
 * if an attempt failed with no allocation refused, or if too few were seen (the wrap is broken). */
static long sweep(attempt_fn attempt, long max)
{
    long n = 0;
    for (; n < max; n++) {
        struct eng_err err = {0};
        arm(n);
        const int rc = attempt(&err);
        const long refused = failed;
        budget = -1;
        if (rc == 0) {
            /* Every allocation from the n-th on was refused, so whatever still failed was optional
             * (face.c's shrinking realloc keeps the larger block); an unchecked one would crash. */
            if (refused)
                fprintf(stderr, "  budget %ld: done despite %ld optional allocations refused\n", n,
                        refused);
            break;
        }
        check_failure(&err, n);
    }
    if (n == max)
        fail_msg("still failing after %ld allocations", max);
    if (n < 5)
        fail_msg("only %ld allocations seen: is the test linked with -Wl,--wrap=malloc?", n);
    fprintf(stderr, "  %ld failing allocations, each an error\n", n);
    return n;
}

static int load_fastest(struct eng_err *err)
{
    struct eng_net *net = NULL;
    const int rc = eng_darknet_load(FASTEST ".cfg", FASTEST ".weights",
                                    MODELS "/yolo-fastest-1.1/coco.names", NULL, &net, err);
    if (rc == 0 && !net)
        fail_msg("success without a net");
    if (rc != 0 && net)
        fail_msg("failure left a net behind");
    eng_net_free(net);
    return rc;
}

static void test_load_oom_darknet_cfg_weights_names_fail_cleanly(void **state)
{
    (void)state;
    REQUIRE(FASTEST ".weights");
    sweep(load_fastest, 100000);
}

static const char *cfg_path;

static int parse_cfg_only(struct eng_err *err)
{
    struct eng_net *net = NULL;
    const int rc = eng_darknet_load(cfg_path, NULL, NULL, NULL, &net, err);
    eng_net_free(net);
    return rc;
}

/* The other head kinds and layer mixes: [region] (YOLOv2), [yolo] with CSP route groups (v4-tiny). */
static void test_load_oom_darknet_region_and_v4_cfgs_fail_cleanly(void **state)
{
    (void)state;
    static const char *const cfgs[] = {SHARED_CFG "/yolov2-tiny.cfg", SHARED_CFG "/yolov4-tiny.cfg"};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        REQUIRE(cfgs[i]);
        cfg_path = cfgs[i];
        sweep(parse_cfg_only, 100000);
    }
}

/* A cfg whose second layer takes Winograd in every kernel set (128 -> 128 channels on 32x32), with its
 * weights file: eng_darknet_load reads that layer's weights through a buffer of its own, transforms
 * and drops them (darknet_weights.c). Written in the current directory. */
#define WINO_CFG "wino_oom.cfg"
#define WINO_WEIGHTS "wino_oom.weights"

static void write_wino_model(void)
{
    static const char cfg[] = "[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nbatch_normalize=1\n"
                              "filters=128\nsize=1\nstride=1\npad=0\nactivation=leaky\n\n[convolutional]\n"
                              "batch_normalize=1\nfilters=128\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n"
                              "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=0\nactivation=linear\n\n"
                              "[yolo]\nmask=0,1,2\nanchors=10,14,23,27,37,58\nclasses=1\nnum=3\n";
    FILE *f = fopen(WINO_CFG, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(cfg, 1, sizeof cfg - 1, f), sizeof cfg - 1);
    assert_int_equal(fclose(f), 0);
    const int header[3] = {0, 2, 5};
    const long long seen = 0;
    /* per layer: bias, scale, mean, variance, weights */
    const size_t n = 4 * 128 + 128 * 3 + 4 * 128 + (size_t)128 * 128 * 9 + 18 + 18 * 128;
    float *v = malloc(n * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = 0.5f + (float)(i % 7) * 0.01f; /* a variance >= 0 */
    assert_non_null(f = fopen(WINO_WEIGHTS, "wb"));
    assert_int_equal(fwrite(header, sizeof header, 1, f), 1);
    assert_int_equal(fwrite(&seen, sizeof seen, 1, f), 1);
    assert_int_equal(fwrite(v, sizeof(float), n, f), n);
    assert_int_equal(fclose(f), 0);
    free(v);
}

static int load_wino(struct eng_err *err)
{
    struct eng_net *net = NULL;
    const int rc = eng_darknet_load(WINO_CFG, WINO_WEIGHTS, NULL, NULL, &net, err);
    if (rc != 0 && net)
        fail_msg("failure left a net behind");
    if (rc == 0) {
        /* the layer keeps U only */
        const struct eng_layer *l = &net->layers[1];
        assert_true(l->forward == eng_conv_wino_forward);
        assert_non_null(l->p.conv.wino);
        assert_null(l->p.conv.weights);
    }
    eng_net_free(net);
    return rc;
}

static void test_load_oom_darknet_winograd_weights_fail_cleanly(void **state)
{
    (void)state;
    write_wino_model();
    sweep(load_wino, 100000);
    unlink(WINO_CFG);
    unlink(WINO_WEIGHTS);
}

static struct eng_net *loaded_net;

static int new_ctx(struct eng_err *err)
{
    struct eng_ctx *ctx = eng_ctx_new(loaded_net, err);
    eng_ctx_free(ctx);
    return ctx ? 0 : -1;
}

static void test_load_oom_darknet_ctx_fails_cleanly(void **state)
{
    (void)state;
    REQUIRE(FASTEST ".weights");
    struct eng_err err = {0};
    assert_int_equal(eng_darknet_load(FASTEST ".cfg", FASTEST ".weights", NULL, NULL, &loaded_net, &err),
                     0);
    sweep(new_ctx, 1000);
    eng_net_free(loaded_net);
    loaded_net = NULL;
}

static int load_faces(struct eng_err *err)
{
    struct eng_face_models *m = NULL;
    const int rc = eng_face_models_load(FACES, NULL, &m, err);
    if (rc != 0 && m)
        fail_msg("failure left models behind");
    eng_face_models_free(m);
    return rc;
}

static void test_load_oom_face_manifests_and_nets_fail_cleanly(void **state)
{
    (void)state;
    REQUIRE(FACES "/" ENG_FACE_RECOGNITION_MANIFEST);
    sweep(load_faces, 100000);
}

/* jansson out of memory while reading a manifest is NOMEM too, not "cannot read" or "malformed". */
static void test_load_oom_tfjs_manifest_json_oom_is_nomem(void **state)
{
    (void)state;
    REQUIRE(FACES "/" ENG_FACE_DETECTOR_MANIFEST);
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err = {0};
    arm(-1);
    json_fail_all = 1;
    const int rc = eng_tfjs_load(FACES "/" ENG_FACE_DETECTOR_MANIFEST, &w, &err);
    json_fail_all = 0;
    assert_int_equal(rc, -1);
    assert_null(w);
    assert_true(failed > 0);
    check_failure(&err, -1);
    assert_non_null(strstr(err.where, ENG_FACE_DETECTOR_MANIFEST));
}

static struct eng_face_models *loaded_faces;

static int new_face_ctx(struct eng_err *err)
{
    struct eng_face_ctx *ctx = eng_face_ctx_new(loaded_faces, err);
    eng_face_ctx_free(ctx);
    return ctx ? 0 : -1;
}

static void test_load_oom_face_ctx_fails_cleanly(void **state)
{
    (void)state;
    REQUIRE(FACES "/" ENG_FACE_RECOGNITION_MANIFEST);
    struct eng_err err = {0};
    assert_int_equal(eng_face_models_load(FACES, NULL, &loaded_faces, &err), 0);
    sweep(new_face_ctx, 1000);
    eng_face_models_free(loaded_faces);
    loaded_faces = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_oom_darknet_cfg_weights_names_fail_cleanly),
        cmocka_unit_test(test_load_oom_darknet_region_and_v4_cfgs_fail_cleanly),
        cmocka_unit_test(test_load_oom_darknet_winograd_weights_fail_cleanly),
        cmocka_unit_test(test_load_oom_darknet_ctx_fails_cleanly),
        cmocka_unit_test(test_load_oom_face_manifests_and_nets_fail_cleanly),
        cmocka_unit_test(test_load_oom_tfjs_manifest_json_oom_is_nomem),
        cmocka_unit_test(test_load_oom_face_ctx_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
