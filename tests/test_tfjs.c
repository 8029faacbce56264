/* test_tfjs.c - the TF.js weights-manifest loader (engine/tfjs.c): float32, uint8/uint16 quantized and
 * float16 decoding, shards, and every kind of bad input, each of which must name its place (the
 * tensor, or the manifest). Each test writes a small manifest and .bin into its own temporary folder. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfjs.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

struct tmp {
    char dir[64];
    char files[8][128];
    int n;
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/test_tfjs.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    for (int i = 0; i < t->n; i++)
        unlink(t->files[i]);
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Writes name (inside the temp folder) with n bytes; returns its path (owned by t). */
static const char *put(struct tmp *t, const char *name, const void *data, size_t n)
{
    assert_true(t->n < 8);
    char buf[sizeof t->files[0]];
    snprintf(buf, sizeof buf, "%s/%s", t->dir, name);
    char *path = t->files[t->n++];
    memcpy(path, buf, sizeof buf);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *put_text(struct tmp *t, const char *name, const char *text)
{
    return put(t, name, text, strlen(text));
}

static void put_le32(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16);
    p[3] = (unsigned char)(u >> 24);
}

/* Loads a manifest that must fail; checks the error's place and that the message has `word`. */
static void expect_error(const char *manifest, enum eng_err_kind kind, const char *where,
                         const char *word)
{
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err = {0};
    assert_int_equal(eng_tfjs_load(manifest, &w, &err), -1);
    assert_null(w);
    if (err.kind != kind || strstr(err.where, where) == NULL || strstr(err.msg, word) == NULL)
        fail_msg("got kind %d where '%s' msg '%s'; expected kind %d where '%s' with '%s'", err.kind,
                 err.where, err.msg, kind, where, word);
}

/* The manifest of the decoding test: four tensors of four encodings in one group, two shards. */
static const char *two_shard_manifest =
    "[{\"paths\": [\"m.bin.1\", \"m.bin.2\"], \"weights\": ["
    " {\"name\": \"f32\", \"shape\": [2, 2], \"dtype\": \"float32\"},"
    " {\"name\": \"q8\", \"shape\": [3], \"dtype\": \"float32\","
    "  \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1.25}},"
    " {\"name\": \"q16\", \"shape\": [2], \"dtype\": \"float32\","
    "  \"quantization\": {\"dtype\": \"uint16\", \"scale\": 0.001, \"min\": 2}},"
    " {\"name\": \"h\", \"shape\": [], \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"float16\"}}"
    "]}]";

/* 16 + 3 + 4 + 2 = 25 bytes, cut across the two shards inside q8 */
static void two_shard_bins(struct tmp *t, size_t drop_from_end)
{
    unsigned char b[25];
    const float f[4] = {1.5f, -2.0f, 3.25f, 1e-3f};
    for (int i = 0; i < 4; i++)
        put_le32(b + 4 * i, f[i]);
    b[16] = 0;
    b[17] = 1;
    b[18] = 255;
    b[19] = 0x10; /* 10000 little-endian = 0x2710 */
    b[20] = 0x27;
    b[21] = 0xff; /* 65535 */
    b[22] = 0xff;
    b[23] = 0x00; /* half 0xc500 = -5.0 */
    b[24] = 0xc5;
    put(t, "m.bin.1", b, 17);
    put(t, "m.bin.2", b + 17, 8 - drop_from_end);
}

/* ---- decoding --------------------------------------------------------------------------------- */

static void test_tfjs_float32_uint8_uint16_float16_decoded(void **state)
{
    struct tmp *t = *state;
    two_shard_bins(t, 0);
    const char *m = put_text(t, "m.json", two_shard_manifest);
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err = {0};
    if (eng_tfjs_load(m, &w, &err))
        fail_msg("%s: %s", err.where, err.msg);
    assert_int_equal(w->n, 4);
    assert_int_equal(w->total, 4 + 3 + 2 + 1);

    const float *f = eng_tfjs_get(w, "f32", 2, (int[]){2, 2}, &err);
    assert_non_null(f);
    assert_true(f[0] == 1.5f && f[1] == -2.0f && f[2] == 3.25f && f[3] == 1e-3f);

    const float *q8 = eng_tfjs_get(w, "q8", 1, (int[]){3}, &err);
    assert_non_null(q8); /* q * scale + min */
    assert_true(q8[0] == -1.25f && q8[1] == -0.75f && q8[2] == 126.25f);

    const float *q16 = eng_tfjs_get(w, "q16", 1, (int[]){2}, &err);
    assert_non_null(q16); /* computed in double, rounded once, as TF.js does */
    assert_true(q16[0] == (float)(10000 * 0.001 + 2));
    assert_true(q16[1] == (float)(65535 * 0.001 + 2));

    const struct eng_tfjs_tensor *h = eng_tfjs_find(w, "h");
    assert_non_null(h);
    assert_int_equal(h->rank, 0);
    assert_int_equal(h->size, 1);
    assert_true(h->data[0] == -5.0f);
    eng_tfjs_free(w);
}

static void test_tfjs_groups_read_their_own_shards(void **state)
{
    struct tmp *t = *state;
    unsigned char a[4], b[2] = {7, 9};
    put_le32(a, 42.0f);
    put(t, "a.bin", a, sizeof a);
    put(t, "b.bin", b, sizeof b);
    const char *m = put_text(
        t, "m.json",
        "[{\"paths\": [\"a.bin\"], \"weights\": [{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"}]},"
        " {\"paths\": [\"b.bin\"], \"weights\": [{\"name\": \"b\", \"shape\": [1, 2], \"dtype\": \"float32\","
        "   \"quantization\": {\"dtype\": \"uint8\", \"scale\": 1, \"min\": 0}}]}]");
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err = {0};
    if (eng_tfjs_load(m, &w, &err))
        fail_msg("%s: %s", err.where, err.msg);
    assert_true(eng_tfjs_find(w, "a")->data[0] == 42.0f);
    const float *bv = eng_tfjs_get(w, "b", 2, (int[]){1, 2}, &err);
    assert_true(bv[0] == 7.0f && bv[1] == 9.0f);
    eng_tfjs_free(w);
}

static void test_tfjs_half_to_float_exact(void **state)
{
    (void)state;
    assert_true(eng_tfjs_half_to_float(0x3c00) == 1.0f);
    assert_true(eng_tfjs_half_to_float(0xc000) == -2.0f);
    assert_true(eng_tfjs_half_to_float(0x7bff) == 65504.0f);
    assert_true(eng_tfjs_half_to_float(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(eng_tfjs_half_to_float(0x3555) == 0.333251953125f);
    assert_true(eng_tfjs_half_to_float(0x8000) == 0.0f && signbit(eng_tfjs_half_to_float(0x8000)));
    assert_true(isinf(eng_tfjs_half_to_float(0x7c00)));
    assert_true(isnan(eng_tfjs_half_to_float(0x7e00)));
}

/* ---- layouts ---------------------------------------------------------------------------------- */

static void test_tfjs_conv_hwio_to_engine_oihw(void **state)
{
    (void)state;
    enum { KH = 2, KW = 3, IN = 2, OUT = 4 };
    float src[KH * KW * IN * OUT], dst[KH * KW * IN * OUT];
    for (int i = 0; i < KH * KW * IN * OUT; i++)
        src[i] = (float)i;
    eng_tfjs_conv_to_engine(src, KH, KW, IN, OUT, dst);
    for (int y = 0; y < KH; y++)
        for (int x = 0; x < KW; x++)
            for (int i = 0; i < IN; i++)
                for (int o = 0; o < OUT; o++)
                    assert_true(dst[((o * IN + i) * KH + y) * KW + x] ==
                                src[((y * KW + x) * IN + i) * OUT + o]);
}

static void test_tfjs_depthwise_and_dense_to_engine(void **state)
{
    (void)state;
    /* depthwise [2][2][3][1] -> [3][1][2][2] */
    float dw[12], dwo[12];
    for (int i = 0; i < 12; i++)
        dw[i] = (float)i;
    eng_tfjs_depthwise_to_engine(dw, 2, 2, 3, dwo);
    const float want_dw[12] = {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11};
    assert_memory_equal(dwo, want_dw, sizeof want_dw);
    /* dense [in 2][out 3] -> [out 3][in 2] */
    const float d[6] = {1, 2, 3, 4, 5, 6};
    float dd[6];
    eng_tfjs_dense_to_engine(d, 2, 3, dd);
    const float want_d[6] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(dd, want_d, sizeof want_d);
}

/* ---- errors ----------------------------------------------------------------------------------- */

static void test_tfjs_truncated_bin_names_the_cut_tensor(void **state)
{
    struct tmp *t = *state;
    two_shard_bins(t, 3); /* q16's second value and h are missing */
    const char *m = put_text(t, "m.json", two_shard_manifest);
    expect_error(m, ENG_ERR_INVALID, "q16", "truncated");
}

static void test_tfjs_one_byte_short_names_last_tensor(void **state)
{
    struct tmp *t = *state;
    two_shard_bins(t, 1);
    const char *m = put_text(t, "m.json", two_shard_manifest);
    expect_error(m, ENG_ERR_INVALID, "h", "truncated");
}

static void test_tfjs_oversized_bin_rejected(void **state)
{
    struct tmp *t = *state;
    unsigned char b[9] = {0};
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"x\", \"shape\": [2],"
                             " \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "x.bin", "1 bytes too many");
}

static void test_tfjs_missing_shard_names_tensor(void **state)
{
    struct tmp *t = *state;
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"nowhere.bin\"], \"weights\": [{\"name\": \"conv0/bias\","
                             " \"shape\": [2], \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_IO, "conv0/bias", "nowhere.bin");
}

static void test_tfjs_unknown_dtype_names_tensor(void **state)
{
    struct tmp *t = *state;
    unsigned char b[8] = {0};
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"fc/weights\","
                             " \"shape\": [1], \"dtype\": \"int64\"}]}]");
    expect_error(m, ENG_ERR_UNSUPPORTED, "fc/weights", "int64");
}

static void test_tfjs_unknown_quantization_dtype_names_tensor(void **state)
{
    struct tmp *t = *state;
    unsigned char b[1] = {0};
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"q\", \"shape\": [1],"
                             " \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"int4\","
                             " \"scale\": 1, \"min\": 0}}]}]");
    expect_error(m, ENG_ERR_UNSUPPORTED, "q", "int4");
}

static void test_tfjs_quantization_without_scale_names_tensor(void **state)
{
    struct tmp *t = *state;
    unsigned char b[1] = {0};
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"q\", \"shape\": [1],"
                             " \"dtype\": \"float32\", \"quantization\": {\"dtype\": \"uint8\"}}]}]");
    expect_error(m, ENG_ERR_INVALID, "q", "scale and min");
}

static void test_tfjs_missing_tensor_and_wrong_shape_name_it(void **state)
{
    struct tmp *t = *state;
    two_shard_bins(t, 0);
    const char *m = put_text(t, "m.json", two_shard_manifest);
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err = {0};
    assert_int_equal(eng_tfjs_load(m, &w, &err), 0);

    assert_null(eng_tfjs_get(w, "conv9/filters", 1, (int[]){4}, &err));
    assert_string_equal(err.where, "conv9/filters");
    assert_non_null(strstr(err.msg, "missing"));

    memset(&err, 0, sizeof err);
    assert_null(eng_tfjs_get(w, "f32", 2, (int[]){4, 1}, &err));
    assert_string_equal(err.where, "f32");
    assert_non_null(strstr(err.msg, "[2, 2]"));
    assert_non_null(strstr(err.msg, "[4, 1]"));

    assert_null(eng_tfjs_get(w, "q8", 2, (int[]){3, 1}, &err)); /* rank differs */
    assert_string_equal(err.where, "q8");
    eng_tfjs_free(w);
}

static void test_tfjs_malformed_json_gives_line(void **state)
{
    struct tmp *t = *state;
    const char *m = put_text(t, "m.json", "[{\"paths\": [\"x.bin\"],\n \"weights\": [}\n]");
    expect_error(m, ENG_ERR_INVALID, "m.json:2", "malformed");
}

static void test_tfjs_bad_structure_rejected_with_place(void **state)
{
    struct tmp *t = *state;
    const char *m = put_text(t, "a.json", "{\"paths\": []}");
    expect_error(m, ENG_ERR_INVALID, "a.json", "array of weight groups");
    m = put_text(t, "b.json", "[{\"paths\": [\"x.bin\"], \"weights\": [{\"shape\": [1]}]}]");
    expect_error(m, ENG_ERR_INVALID, "b.json", "$[0].weights[0]");
    m = put_text(t, "c.json", "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"n\", \"shape\": [-1],"
                              " \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "n", "shape[0]");
    m = put_text(t, "d.json", "[{\"paths\": [], \"weights\": [{\"name\": \"n\", \"shape\": [1],"
                              " \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "d.json", "$[0].paths");
}

static void test_tfjs_duplicate_tensor_name_rejected(void **state)
{
    struct tmp *t = *state;
    unsigned char b[8] = {0};
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": ["
                             "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"},"
                             "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "a", "twice");
}

static void test_tfjs_shard_outside_folder_rejected(void **state)
{
    struct tmp *t = *state;
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"../etc/passwd\"], \"weights\": [{\"name\": \"a\","
                             " \"shape\": [1], \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "m.json", "inside the manifest's folder");
    m = put_text(t, "n.json",
                 "[{\"paths\": [\"/etc/passwd\"], \"weights\": [{\"name\": \"a\","
                 " \"shape\": [1], \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "n.json", "inside the manifest's folder");
}

static void test_tfjs_nonfinite_value_names_tensor(void **state)
{
    struct tmp *t = *state;
    unsigned char b[8];
    put_le32(b, 1.0f);
    put_le32(b + 4, NAN);
    put(t, "x.bin", b, sizeof b);
    const char *m = put_text(t, "m.json",
                             "[{\"paths\": [\"x.bin\"], \"weights\": [{\"name\": \"bn/var\","
                             " \"shape\": [2], \"dtype\": \"float32\"}]}]");
    expect_error(m, ENG_ERR_INVALID, "bn/var", "not finite");
}

static void test_tfjs_missing_manifest_is_io_error(void **state)
{
    struct tmp *t = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/none.json", t->dir);
    expect_error(path, ENG_ERR_IO, "none.json", "cannot read");
}

static void test_tfjs_free_null_is_noop(void **state)
{
    (void)state;
    eng_tfjs_free(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tfjs_float32_uint8_uint16_float16_decoded),
        T(test_tfjs_groups_read_their_own_shards),
        cmocka_unit_test(test_tfjs_half_to_float_exact),
        cmocka_unit_test(test_tfjs_conv_hwio_to_engine_oihw),
        cmocka_unit_test(test_tfjs_depthwise_and_dense_to_engine),
        T(test_tfjs_truncated_bin_names_the_cut_tensor),
        T(test_tfjs_one_byte_short_names_last_tensor),
        T(test_tfjs_oversized_bin_rejected),
        T(test_tfjs_missing_shard_names_tensor),
        T(test_tfjs_unknown_dtype_names_tensor),
        T(test_tfjs_unknown_quantization_dtype_names_tensor),
        T(test_tfjs_quantization_without_scale_names_tensor),
        T(test_tfjs_missing_tensor_and_wrong_shape_name_it),
        T(test_tfjs_malformed_json_gives_line),
        T(test_tfjs_bad_structure_rejected_with_place),
        T(test_tfjs_duplicate_tensor_name_rejected),
        T(test_tfjs_shard_outside_folder_rejected),
        T(test_tfjs_nonfinite_value_names_tensor),
        T(test_tfjs_missing_manifest_is_io_error),
        cmocka_unit_test(test_tfjs_free_null_is_noop),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
