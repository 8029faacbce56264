/* test_alloc.c - "plan, then compute": a forward pass allocates nothing (style.md rule 6, issue #5).
 *
 * This executable defines malloc, calloc, realloc, free and the aligned allocators itself, on top of
 * glibc's __libc_* entry points, so every allocation in the process (the engine, OpenBLAS, libjpeg, the
 * engine's own threads) goes through a counter. Each test loads a real network, runs warm-up passes
 * (OpenBLAS sets up its buffers on first use), then arms the counter around more passes and asserts that
 * it stayed at zero; on failure it prints the address of the first allocating call (addr2line -e it).
 * Networks: yolo-fastest-1.1 and -xl (models/, real weights), yolov2/v3/v4-tiny (../shared cfgs, zero
 * weights: the code path does not depend on the values), and the three face networks (models/faces),
 * each alone and split over a team of two threads (engine/team.c).
 * OpenBLAS runs at one thread, as the daemon's workers run it: its own threaded level-3 driver mallocs
 * its job array on every call (about 40 calls per yolo-fastest pass at 2 threads, measured), which is
 * one reason the engine splits layers over its own threads instead. The face detector is checked at the
 * same input size as its warm-up: re-binding its context to another size plans a new arena, which
 * allocates (eng_ctx_bind).
 *
 * Under AddressSanitizer or ThreadSanitizer, which own malloc, the counter cannot be installed: the
 * program then exits 77, which ctest reports as skipped (tests/CMakeLists.txt). */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <cmocka.h>

#include "darknet.h"
#include "face.h"
#include "image.h"
#include "net.h"
#include "team.h"

#ifndef VISIOND_SOURCE_DIR
#define VISIOND_SOURCE_DIR "."
#endif
#ifndef VISIOND_SHARED_DIR
#define VISIOND_SHARED_DIR "../shared"
#endif
#define MODELS VISIOND_SOURCE_DIR "/models"
#define CFGS VISIOND_SHARED_DIR "/models/cfg"
#define FACE_PHOTO MODELS "/faces/package/demo/sample1.jpg"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_COUNTER 0
#else
#define ALLOC_COUNTER 1
#endif

enum { WARMUP = 2, PASSES = 3, SKIP = 77 };

/* ---- the counting allocator ------------------------------------------------------------------- */

static atomic_int armed;
static atomic_long allocs;
static void *_Atomic first_caller;

#if ALLOC_COUNTER
/* Counts one call when armed; remembers where the first one came from. */
static void count(void *caller)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return;
    if (atomic_fetch_add(&allocs, 1) == 0)
        atomic_store(&first_caller, caller);
}

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
    count(__builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count(__builtin_return_address(0));
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        count(__builtin_return_address(0));
    __libc_free(p);
}

void *memalign(size_t align, size_t n); /* glibc's, declared in <malloc.h> only */
void *memalign(size_t align, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count(__builtin_return_address(0));
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
#endif

static void arm(void)
{
    atomic_store(&allocs, 0);
    atomic_store(&first_caller, NULL);
    atomic_store(&armed, 1);
}

/* Disarms; returns the calls counted since arm(). */
static long disarm(const char *what)
{
    atomic_store(&armed, 0);
    const long n = atomic_load(&allocs);
    if (n) {
        void *caller = atomic_load(&first_caller);
        Dl_info info = {0};
        if (dladdr(caller, &info) && info.dli_fname)
            fprintf(stderr, "%s: %ld allocator calls in the forward passes; the first from %s+%#tx (%s): "
                    "addr2line -f -e FILE OFFSET\n", what, n, info.dli_fname,
                    (char *)caller - (char *)info.dli_fbase, info.dli_sname ? info.dli_sname : "?");
        else
            fprintf(stderr, "%s: %ld allocator calls in the forward passes; the first from %p\n", what, n,
                    caller);
    }
    return n;
}

/* ---- darknet networks ------------------------------------------------------------------------- */

static void fill_input(float *x, size_t n)
{
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
}

/* Loads cfg (+ weights, or zeros when NULL), warms up, and asserts the timed passes allocate nothing at
 * each OpenBLAS thread count. */
static void check_darknet(const char *cfg, const char *weights)
{
    if (access(cfg, R_OK) || (weights && access(weights, R_OK))) {
        fprintf(stderr, "no %s (scripts/fetch-models)\n", weights && access(weights, R_OK) ? weights : cfg);
        skip();
    }
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    assert_int_equal(eng_darknet_load(cfg, weights, NULL, NULL, &net, &err), 0);
    struct eng_ctx *ctx = eng_ctx_new(net, &err);
    assert_non_null(ctx);
    fill_input(ctx->input, eng_shape_size(net->input));
    struct eng_cores *cores = eng_cores_new(2);
    struct eng_team *team = eng_team_new(2, cores, &err);
    assert_non_null(team);
    /* alone, then split over a team of two sharing a core budget, as the daemon's workers run */
    for (int teamed = 0; teamed <= 1; teamed++) {
        assert_int_equal(eng_ctx_set_team(ctx, teamed ? team : NULL, &err), 0);
        for (int i = 0; i < WARMUP; i++)
            eng_net_forward(net, ctx);
        arm();
        for (int i = 0; i < PASSES; i++)
            eng_net_forward(net, ctx);
        char what[512];
        snprintf(what, sizeof what, "%s, %s", cfg, teamed ? "team of 2" : "one thread");
        assert_int_equal(disarm(what), 0);
    }
    eng_ctx_free(ctx);
    eng_team_free(team);
    eng_cores_free(cores);
    eng_net_free(net);
}

static void test_alloc_yolo_fastest_forward_allocates_nothing(void **state)
{
    (void)state;
    check_darknet(MODELS "/yolo-fastest-1.1/yolo-fastest-1.1.cfg",
                  MODELS "/yolo-fastest-1.1/yolo-fastest-1.1.weights");
}

static void test_alloc_yolo_fastest_xl_forward_allocates_nothing(void **state)
{
    (void)state;
    check_darknet(MODELS "/yolo-fastest-1.1-xl/yolo-fastest-1.1-xl.cfg",
                  MODELS "/yolo-fastest-1.1-xl/yolo-fastest-1.1-xl.weights");
}

static void test_alloc_yolov2_tiny_forward_allocates_nothing(void **state)
{
    (void)state;
    check_darknet(CFGS "/yolov2-tiny.cfg", NULL);
}

static void test_alloc_yolov3_tiny_forward_allocates_nothing(void **state)
{
    (void)state;
    check_darknet(CFGS "/yolov3-tiny.cfg", NULL);
}

static void test_alloc_yolov4_tiny_forward_allocates_nothing(void **state)
{
    (void)state;
    check_darknet(CFGS "/yolov4-tiny.cfg", NULL);
}

/* ---- face networks ---------------------------------------------------------------------------- */

/* Detector at 416, landmarks and descriptor of every face, and the descriptor of an aligned chip: the
 * calls a /v1/faces or /v1/verify job makes after decoding. Returns the number of faces. */
static int face_passes(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                       struct eng_face *faces, int cap)
{
    struct eng_face_params p;
    eng_face_params_default(&p);
    struct eng_err err = {0};
    float d[ENG_FACE_DESCRIPTOR];
    const int n = eng_face_detect(m, ctx, img, &p, faces, cap, &err);
    for (int i = 0; i < n; i++)
        if (eng_face_landmarks(m, ctx, img, &faces[i], &err) ||
            eng_face_descriptor(m, ctx, img, &faces[i], d, &err))
            return -1;
    const struct eng_image chip = {.rgb = img->rgb, .width = ENG_FACE_CHIP, .height = ENG_FACE_CHIP};
    return eng_face_descriptor_aligned(m, ctx, &chip, d, &err) ? -1 : n;
}

static void test_alloc_face_networks_allocate_nothing(void **state)
{
    (void)state;
    if (access(MODELS "/faces/" ENG_FACE_RECOGNITION_MANIFEST, R_OK) || access(FACE_PHOTO, R_OK)) {
        fprintf(stderr, "no face models in %s/faces (scripts/fetch-models)\n", MODELS);
        skip();
    }
    struct eng_err err = {0};
    struct eng_face_models *m = NULL;
    assert_int_equal(eng_face_models_load(MODELS "/faces", NULL, &m, &err), 0);
    struct eng_face_ctx *ctx = eng_face_ctx_new(m, &err);
    assert_non_null(ctx);
    struct eng_image img = {0};
    const struct eng_decode_opts dopts = {.apply_exif = 1};
    assert_int_equal(eng_image_load(FACE_PHOTO, &dopts, &img, NULL, &err), 0);
    assert_true(img.width >= ENG_FACE_CHIP && img.height >= ENG_FACE_CHIP);
    struct eng_face faces[16];
    struct eng_team *team = eng_team_new(2, NULL, &err);
    assert_non_null(team);
    for (int teamed = 0; teamed <= 1; teamed++) {
        assert_int_equal(eng_face_ctx_set_team(ctx, teamed ? team : NULL, &err), 0);
        for (int i = 0; i < WARMUP; i++)
            assert_true(face_passes(m, ctx, &img, faces, 16) > 0); /* the demo photo has faces */
        arm();
        for (int i = 0; i < PASSES; i++)
            face_passes(m, ctx, &img, faces, 16);
        assert_int_equal(disarm(teamed ? "face networks, team of 2" : "face networks, one thread"), 0);
    }
    eng_image_release(&img);
    eng_face_ctx_free(ctx);
    eng_team_free(team);
    eng_face_models_free(m);
}

/* The counter itself: a test that cannot fail proves nothing. */
static void test_alloc_counter_counts_a_malloc(void **state)
{
    (void)state;
    arm();
    void *volatile p = malloc(16);
    free(p);
    atomic_store(&armed, 0);
    assert_int_equal(atomic_load(&allocs), 2);
}

int main(void)
{
    if (!ALLOC_COUNTER) {
        fprintf(stderr, "test_alloc: SKIP: the sanitizer owns malloc, so the counter cannot be installed\n");
        return SKIP;
    }
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_counter_counts_a_malloc),
        cmocka_unit_test(test_alloc_yolo_fastest_forward_allocates_nothing),
        cmocka_unit_test(test_alloc_yolo_fastest_xl_forward_allocates_nothing),
        cmocka_unit_test(test_alloc_yolov2_tiny_forward_allocates_nothing),
        cmocka_unit_test(test_alloc_yolov3_tiny_forward_allocates_nothing),
        cmocka_unit_test(test_alloc_yolov4_tiny_forward_allocates_nothing),
        cmocka_unit_test(test_alloc_face_networks_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
