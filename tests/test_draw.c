/* test_draw.c - box outlines, labels and the PNG writer (engine/draw.c). */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "draw.h"

/* Bytes around each test image: a write outside the image changes them (ASan would also catch it,
 * but this keeps the check in plain builds too). */
#define GUARD 64
#define GUARD_BYTE 0xA5
#define BG 0x10 /* background grey: dark, so it differs from every palette colour */

struct canvas {
    struct eng_image img;
    uint8_t *block; /* GUARD + pixels + GUARD */
};

static struct canvas canvas_new(int w, int h)
{
    size_t n = (size_t)w * (size_t)h * 3;
    struct canvas c = {{w, h, NULL}, malloc(n + 2 * GUARD)};
    assert_non_null(c.block);
    memset(c.block, GUARD_BYTE, n + 2 * GUARD);
    c.img.rgb = c.block + GUARD;
    memset(c.img.rgb, BG, n);
    return c;
}

static size_t canvas_bytes(const struct canvas *c)
{
    return (size_t)c->img.width * (size_t)c->img.height * 3;
}

/* Checks the guards and frees; every test ends with this. */
static void canvas_free(struct canvas *c)
{
    size_t n = canvas_bytes(c);
    for (size_t i = 0; i < GUARD; i++) {
        assert_int_equal(c->block[i], GUARD_BYTE);
        assert_int_equal(c->block[GUARD + n + i], GUARD_BYTE);
    }
    free(c->block);
}

static const uint8_t *px(const struct canvas *c, int x, int y)
{
    return c->img.rgb + ((size_t)y * (size_t)c->img.width + (size_t)x) * 3;
}

static int is_bg(const struct canvas *c, int x, int y)
{
    const uint8_t *p = px(c, x, y);
    return p[0] == BG && p[1] == BG && p[2] == BG;
}

static int same_px(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, 3) == 0;
}

static int all_bg(const struct canvas *c)
{
    for (int y = 0; y < c->img.height; y++)
        for (int x = 0; x < c->img.width; x++)
            if (!is_bg(c, x, y))
                return 0;
    return 1;
}

/* Counts non-background pixels in the inclusive rectangle. */
static int count_drawn(const struct canvas *c, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            n += !is_bg(c, x, y);
    return n;
}

/* Counts pure black or white pixels (label text) in the inclusive rectangle. */
static int count_text(const struct canvas *c, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const uint8_t *p = px(c, x, y);
            n += (p[0] == 0 || p[0] == 255) && p[0] == p[1] && p[1] == p[2];
        }
    return n;
}

static struct eng_draw_box box(float x1, float y1, float x2, float y2, int cls, const char *label)
{
    return (struct eng_draw_box){x1, y1, x2, y2, cls, label};
}

/* The colour a class gets, read back from a throwaway drawing. */
static void class_colour(int cls, uint8_t out[3])
{
    struct canvas c = canvas_new(16, 16);
    struct eng_draw_box b = box(0, 0, 15, 15, cls, NULL);
    eng_draw_boxes(&c.img, &b, 1);
    memcpy(out, px(&c, 0, 0), 3);
    canvas_free(&c);
}

/* ---- outlines ---- */

static void test_draw_box_inside_outline_coloured_interior_untouched(void **state)
{
    (void)state;
    struct canvas c = canvas_new(100, 80);
    struct eng_draw_box b = box(20, 30, 60, 70, 0, NULL);
    eng_draw_boxes(&c.img, &b, 1);
    const uint8_t *colour = px(&c, 20, 30);
    assert_false(is_bg(&c, 20, 30));
    for (int y = 0; y < 80; y++)
        for (int x = 0; x < 100; x++) {
            int in_box = x >= 20 && x <= 60 && y >= 30 && y <= 70;
            int interior = x >= 22 && x <= 58 && y >= 32 && y <= 68; /* thickness 2 */
            if (in_box && !interior)
                assert_true(same_px(px(&c, x, y), colour));
            else
                assert_true(is_bg(&c, x, y));
        }
    canvas_free(&c);
}

static void test_draw_reversed_corners_same_as_ordered(void **state)
{
    (void)state;
    struct canvas a = canvas_new(50, 50), b = canvas_new(50, 50);
    struct eng_draw_box ba = box(10, 12, 40, 44, 3, "x"), bb = box(40, 44, 10, 12, 3, "x");
    eng_draw_boxes(&a.img, &ba, 1);
    eng_draw_boxes(&b.img, &bb, 1);
    assert_memory_equal(a.img.rgb, b.img.rgb, canvas_bytes(&a));
    canvas_free(&a);
    canvas_free(&b);
}

static void test_draw_class_ids_distinct_and_stable_colours(void **state)
{
    (void)state;
    uint8_t col[20][3], again[3];
    for (int i = 0; i < 20; i++) {
        class_colour(i, col[i]);
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(col[i], col[j], 3);
    }
    class_colour(20, again);
    assert_memory_equal(again, col[0], 3);
    class_colour(-1, again);
    assert_memory_equal(again, col[19], 3);
    class_colour(-2147483647 - 1, again); /* INT_MIN must not overflow the palette index */
    uint8_t bgpx[3] = {BG, BG, BG};
    assert_memory_not_equal(again, bgpx, 3);
}

static void test_draw_large_image_thicker_outline(void **state)
{
    (void)state;
    struct canvas c = canvas_new(1200, 900); /* thickness min(1200,900)/300 = 3 */
    struct eng_draw_box b = box(100, 100, 500, 500, 1, NULL);
    eng_draw_boxes(&c.img, &b, 1);
    assert_false(is_bg(&c, 102, 300));
    assert_true(is_bg(&c, 103, 300));
    assert_false(is_bg(&c, 300, 498));
    assert_true(is_bg(&c, 300, 497));
    canvas_free(&c);
}

static void test_draw_degenerate_box_draws_line_in_bounds(void **state)
{
    (void)state;
    struct canvas c = canvas_new(40, 40);
    struct eng_draw_box b = box(10, 5, 10, 30, 2, NULL); /* zero width */
    eng_draw_boxes(&c.img, &b, 1);
    assert_int_equal(count_drawn(&c, 0, 0, 39, 39), 26);
    assert_int_equal(count_drawn(&c, 10, 5, 10, 30), 26);
    canvas_free(&c);
}

/* ---- points ---- */

static void test_draw_points_squares_centred_clipped_nan_skipped(void **state)
{
    (void)state;
    struct canvas c = canvas_new(100, 80); /* shorter side 80: half-side 1, squares of 3x3 */
    const float xy[] = {10.4f, 20.6f,  /* rounds to (10, 21) */
                        -0.6f, 79.4f,  /* rounds to (-1, 79): only the 2x1 corner part inside */
                        NAN, 5.0f,     /* skipped */
                        1e30f, -1e30f, /* far away: nothing */
                        50.0f, 40.0f};
    eng_draw_points(&c.img, xy, 5, 1);
    uint8_t colour[3];
    class_colour(1, colour);
    assert_true(same_px(px(&c, 10, 21), colour));
    assert_int_equal(count_drawn(&c, 9, 20, 11, 22), 9);
    assert_int_equal(count_drawn(&c, 0, 78, 0, 79), 2);
    assert_int_equal(count_drawn(&c, 49, 39, 51, 41), 9);
    assert_int_equal(count_drawn(&c, 0, 0, 99, 79), 9 + 2 + 9);
    eng_draw_points(&c.img, NULL, 0, 1); /* nothing to draw */
    canvas_free(&c);

    struct canvas big = canvas_new(1600, 1200); /* half-side 1200 / 500 = 2: 5x5 */
    const float one[] = {100.0f, 100.0f};
    eng_draw_points(&big.img, one, 1, 0);
    assert_int_equal(count_drawn(&big, 0, 0, 1599, 1199), 25);
    assert_int_equal(count_drawn(&big, 98, 98, 102, 102), 25);
    canvas_free(&big);
}

/* ---- clipping ---- */

static void test_draw_box_partly_outside_clipped_to_image(void **state)
{
    (void)state;
    struct canvas c = canvas_new(64, 64);
    struct eng_draw_box b = box(-50, -50, 30, 30, 4, NULL);
    eng_draw_boxes(&c.img, &b, 1);
    /* Only the right and bottom bands (columns/rows 29..30) are inside the image. */
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++) {
            int band = (x >= 29 && x <= 30 && y <= 30) || (y >= 29 && y <= 30 && x <= 30);
            assert_int_equal(!is_bg(&c, x, y), band);
        }
    canvas_free(&c);
}

static void test_draw_box_past_bottom_right_clipped_to_image(void **state)
{
    (void)state;
    struct canvas c = canvas_new(64, 48);
    struct eng_draw_box b = box(40, 30, 1000, 1e9f, 5, "edge");
    eng_draw_boxes(&c.img, &b, 1);
    assert_false(is_bg(&c, 63, 30));
    assert_false(is_bg(&c, 40, 47));
    assert_true(is_bg(&c, 63, 47)); /* the far corner lies outside, so nothing is drawn there */
    canvas_free(&c);
}

static void test_draw_box_entirely_outside_draws_nothing(void **state)
{
    (void)state;
    struct canvas c = canvas_new(64, 64);
    struct eng_draw_box b[] = {
        box(200, 200, 300, 300, 1, "far"),     box(-300, -300, -200, -200, 2, "neg"),
        box(-100, 10, -3, 50, 3, "left"),      box(10, 64.6f, 50, 90, 4, "below"),
        box(1e30f, 1e30f, 2e30f, 2e30f, 5, "huge"),
    };
    eng_draw_boxes(&c.img, b, (int)(sizeof b / sizeof b[0]));
    assert_true(all_bg(&c));
    canvas_free(&c);
}

static void test_draw_nan_coordinates_box_skipped(void **state)
{
    (void)state;
    struct canvas c = canvas_new(64, 64);
    struct eng_draw_box b[] = {
        box(NAN, 10, 30, 30, 1, "a"),
        box(10, NAN, 30, 30, 1, "b"),
        box(10, 10, NAN, 30, 1, "c"),
        box(10, 10, 30, -NAN, 1, "d"),
    };
    eng_draw_boxes(&c.img, b, 4);
    assert_true(all_bg(&c));
    canvas_free(&c);
}

static void test_draw_infinite_box_writes_only_inside(void **state)
{
    (void)state;
    struct canvas c = canvas_new(64, 64);
    struct eng_draw_box b = box(-INFINITY, -INFINITY, INFINITY, INFINITY, 6, "all");
    eng_draw_boxes(&c.img, &b, 1);
    /* The outline lies outside; the label still shows, inside the box's (clipped) top-left. */
    assert_false(is_bg(&c, 0, 0));
    assert_true(is_bg(&c, 63, 63));
    canvas_free(&c);
}

static void test_draw_empty_image_or_no_boxes_no_op(void **state)
{
    (void)state;
    struct eng_image empty = {0, 0, NULL};
    struct eng_draw_box b = box(0, 0, 10, 10, 0, "x");
    eng_draw_boxes(&empty, &b, 1);
    struct canvas c = canvas_new(8, 8);
    eng_draw_boxes(&c.img, NULL, 0);
    assert_true(all_bg(&c));
    canvas_free(&c);
}

/* ---- labels ---- */

static void test_draw_label_room_above_strip_above_box(void **state)
{
    (void)state;
    struct canvas c = canvas_new(200, 100);
    struct eng_draw_box b = box(50, 50, 150, 90, 0, "dog 0.87");
    eng_draw_boxes(&c.img, &b, 1);
    const uint8_t *colour = px(&c, 50, 50);
    /* Scale 1: the strip is 9 rows tall (7 + margins), ending on the row above the box. */
    int strip = 0, text = count_text(&c, 50, 41, 50 + 8 * 6 - 1, 49);
    for (int y = 41; y <= 49; y++)
        for (int x = 50; x < 50 + 8 * 6; x++)
            strip += same_px(px(&c, x, y), colour);
    assert_true(strip > 0);
    assert_true(text > 20);
    assert_int_equal(strip + text, 9 * 8 * 6);
    assert_int_equal(count_drawn(&c, 0, 0, 199, 40), 0);
    assert_int_equal(count_drawn(&c, 0, 41, 49, 49), 0);
    canvas_free(&c);
}

static void test_draw_label_text_contrasts_with_strip(void **state)
{
    (void)state;
    uint8_t bgpx[3] = {BG, BG, BG};
    for (int cls = 0; cls < 20; cls++) {
        struct canvas c = canvas_new(60, 40);
        struct eng_draw_box b = box(5, 20, 50, 35, cls, "|");
        eng_draw_boxes(&c.img, &b, 1);
        const uint8_t *strip = px(&c, 5, 11), *text = px(&c, 8, 13); /* '|' is glyph column 2 */
        int luma = 299 * strip[0] + 587 * strip[1] + 114 * strip[2];
        uint8_t want = luma >= 128000 ? 0 : 255;
        assert_memory_not_equal(strip, bgpx, 3);
        assert_int_equal(text[0], want);
        assert_int_equal(text[1], want);
        assert_int_equal(text[2], want);
        canvas_free(&c);
    }
}

static void test_draw_label_no_room_above_drawn_inside_box(void **state)
{
    (void)state;
    struct canvas c = canvas_new(100, 60);
    struct eng_draw_box b = box(10, 3, 90, 50, 1, "cat");
    eng_draw_boxes(&c.img, &b, 1);
    assert_int_equal(count_drawn(&c, 0, 0, 99, 2), 0);
    /* Strip rows 3..11 inside the box, so text shows below the 2-pixel top band (rows 3..4). */
    assert_false(is_bg(&c, 10, 3));
    assert_true(count_text(&c, 11, 5, 28, 10) > 20);
    canvas_free(&c);
}

static void test_draw_label_box_at_right_edge_label_slides_left(void **state)
{
    (void)state;
    struct canvas c = canvas_new(100, 60);
    struct eng_draw_box b = box(95, 30, 99, 50, 1, "person");
    eng_draw_boxes(&c.img, &b, 1);
    /* "person" is 6*6+1 = 37 pixels wide, so it starts at 100 - 37 = 63. */
    assert_true(is_bg(&c, 62, 25));
    assert_false(is_bg(&c, 63, 25));
    assert_false(is_bg(&c, 99, 25));
    canvas_free(&c);
}

static void test_draw_label_large_image_text_scaled(void **state)
{
    (void)state;
    struct canvas c = canvas_new(1000, 900); /* scale 900/400 = 2: strip 18 rows */
    struct eng_draw_box b = box(100, 300, 400, 600, 0, "A");
    eng_draw_boxes(&c.img, &b, 1);
    assert_int_equal(count_drawn(&c, 0, 0, 999, 281), 0);
    assert_false(is_bg(&c, 100, 282));
    assert_int_equal(count_drawn(&c, 100, 282, 100 + 13, 299), 18 * 14);
    /* 'A' starts one scaled pixel in: its first column is lit from glyph row 1, i.e. y 286..297. */
    assert_int_equal(count_text(&c, 102, 284, 103, 285), 0);
    assert_int_equal(count_text(&c, 102, 286, 103, 297), 2 * 12);
    assert_true(is_bg(&c, 100 + 14, 290));
    canvas_free(&c);
}

static void test_draw_label_null_or_empty_no_strip(void **state)
{
    (void)state;
    struct canvas a = canvas_new(60, 60), b = canvas_new(60, 60);
    struct eng_draw_box ba = box(10, 30, 50, 50, 7, NULL), bb = box(10, 30, 50, 50, 7, "");
    eng_draw_boxes(&a.img, &ba, 1);
    eng_draw_boxes(&b.img, &bb, 1);
    assert_memory_equal(a.img.rgb, b.img.rgb, canvas_bytes(&a));
    assert_int_equal(count_drawn(&a, 0, 0, 59, 29), 0);
    canvas_free(&a);
    canvas_free(&b);
}

/* Draws `label` alone and returns the canvas, so two labels can be compared pixel for pixel. */
static struct canvas labelled(const char *label)
{
    struct canvas c = canvas_new(120, 40);
    struct eng_draw_box b = box(2, 20, 110, 38, 3, label);
    eng_draw_boxes(&c.img, &b, 1);
    return c;
}

static void assert_labels_look_alike(const char *a, const char *b)
{
    struct canvas ca = labelled(a), cb = labelled(b);
    assert_memory_equal(ca.img.rgb, cb.img.rgb, canvas_bytes(&ca));
    canvas_free(&ca);
    canvas_free(&cb);
}

static void test_draw_label_non_ascii_drawn_as_question_mark(void **state)
{
    (void)state;
    assert_labels_look_alike("a\x01" "b", "a?b");
    assert_labels_look_alike("\x7f\t", "??");
    assert_labels_look_alike("caf\xc3\xa9", "caf?");              /* one UTF-8 character, one '?' */
    assert_labels_look_alike("\xe7\x8c\xab 0.9", "? 0.9");        /* 3-byte UTF-8 */
    assert_labels_look_alike("\xff\xfe", "??");                   /* not UTF-8 at all */
}

static void test_draw_font_every_printable_glyph_distinct(void **state)
{
    (void)state;
    uint8_t *seen[95];
    size_t n = 0;
    for (int ch = 32; ch <= 126; ch++) {
        char s[2] = {(char)ch, 0};
        struct canvas c = labelled(s);
        n = canvas_bytes(&c);
        seen[ch - 32] = malloc(n);
        assert_non_null(seen[ch - 32]);
        memcpy(seen[ch - 32], c.img.rgb, n);
        canvas_free(&c);
        for (int j = 0; j < ch - 32; j++)
            assert_memory_not_equal(seen[ch - 32], seen[j], n);
    }
    for (int i = 0; i < 95; i++)
        free(seen[i]);
}

static void test_draw_long_label_clipped_to_image(void **state)
{
    (void)state;
    char label[4096];
    memset(label, 'W', sizeof label - 1);
    label[sizeof label - 1] = 0;
    struct canvas c = canvas_new(50, 30);
    struct eng_draw_box b = box(20, 15, 40, 28, 8, label);
    eng_draw_boxes(&c.img, &b, 1);
    assert_false(is_bg(&c, 0, 6));
    assert_false(is_bg(&c, 49, 6));
    canvas_free(&c);
}

/* ---- PNG ---- */

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_draw.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/out.png", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

/* Reads a PNG back as RGB8 with libpng's simplified API; new buffer, caller frees. */
static uint8_t *read_png(const char *path, int *w, int *h)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path))
        return NULL;
    pi.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(pi));
    if (!buf || !png_image_finish_read(&pi, NULL, buf, 0, NULL)) {
        png_image_free(&pi);
        free(buf);
        return NULL;
    }
    *w = (int)pi.width;
    *h = (int)pi.height;
    return buf;
}

/* Deterministic noise: it does not compress, so the PNG is about as large as the pixels. */
static void fill_noise(struct canvas *c)
{
    uint32_t seed = 12345;
    for (size_t i = 0; i < canvas_bytes(c); i++) {
        seed = seed * 1664525u + 1013904223u;
        c->img.rgb[i] = (uint8_t)(seed >> 24);
    }
}

static void test_draw_png_write_then_read_identical_pixels(void **state)
{
    (void)state;
    struct canvas c = canvas_new(123, 77);
    fill_noise(&c);
    char path[128];
    snprintf(path, sizeof path, "%s/out.png", tmpdir);
    struct eng_err err = {0};
    assert_int_equal(eng_image_write_png(&c.img, path, &err), 0);
    int w = 0, h = 0;
    uint8_t *back = read_png(path, &w, &h);
    assert_non_null(back);
    assert_int_equal(w, 123);
    assert_int_equal(h, 77);
    assert_memory_equal(back, c.img.rgb, canvas_bytes(&c));
    free(back);
    canvas_free(&c);
}

static void test_draw_png_missing_directory_fails_with_path(void **state)
{
    (void)state;
    struct canvas c = canvas_new(4, 4);
    char path[128];
    snprintf(path, sizeof path, "%s/no/such/dir/out.png", tmpdir);
    struct eng_err err = {0};
    assert_int_equal(eng_image_write_png(&c.img, path, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, path);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(eng_image_write_png(&c.img, path, NULL), -1); /* err is optional */
    canvas_free(&c);
}

static void test_draw_png_full_device_fails(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    /* A large image fails inside libpng (its fwrite comes up short), a small one only at fclose. */
    int sizes[] = {4, 512};
    for (int i = 0; i < 2; i++) {
        struct canvas c = canvas_new(sizes[i], sizes[i]);
        fill_noise(&c);
        struct eng_err err = {0};
        assert_int_equal(eng_image_write_png(&c.img, "/dev/full", &err), -1);
        assert_int_equal(err.kind, ENG_ERR_IO);
        assert_string_equal(err.where, "/dev/full");
        canvas_free(&c);
    }
}

static void test_draw_png_empty_image_invalid(void **state)
{
    (void)state;
    struct eng_image empty = {0, 0, NULL};
    char path[128];
    snprintf(path, sizeof path, "%s/out.png", tmpdir);
    struct eng_err err = {0};
    assert_int_equal(eng_image_write_png(&empty, path, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_string_equal(err.where, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_box_inside_outline_coloured_interior_untouched),
        cmocka_unit_test(test_draw_reversed_corners_same_as_ordered),
        cmocka_unit_test(test_draw_class_ids_distinct_and_stable_colours),
        cmocka_unit_test(test_draw_large_image_thicker_outline),
        cmocka_unit_test(test_draw_degenerate_box_draws_line_in_bounds),
        cmocka_unit_test(test_draw_box_partly_outside_clipped_to_image),
        cmocka_unit_test(test_draw_box_past_bottom_right_clipped_to_image),
        cmocka_unit_test(test_draw_box_entirely_outside_draws_nothing),
        cmocka_unit_test(test_draw_nan_coordinates_box_skipped),
        cmocka_unit_test(test_draw_infinite_box_writes_only_inside),
        cmocka_unit_test(test_draw_empty_image_or_no_boxes_no_op),
        cmocka_unit_test(test_draw_label_room_above_strip_above_box),
        cmocka_unit_test(test_draw_label_text_contrasts_with_strip),
        cmocka_unit_test(test_draw_label_no_room_above_drawn_inside_box),
        cmocka_unit_test(test_draw_label_box_at_right_edge_label_slides_left),
        cmocka_unit_test(test_draw_label_large_image_text_scaled),
        cmocka_unit_test(test_draw_label_null_or_empty_no_strip),
        cmocka_unit_test(test_draw_label_non_ascii_drawn_as_question_mark),
        cmocka_unit_test(test_draw_font_every_printable_glyph_distinct),
        cmocka_unit_test(test_draw_long_label_clipped_to_image),
        cmocka_unit_test(test_draw_png_write_then_read_identical_pixels),
        cmocka_unit_test(test_draw_png_missing_directory_fails_with_path),
        cmocka_unit_test(test_draw_png_full_device_fails),
        cmocka_unit_test(test_draw_png_empty_image_invalid),
        cmocka_unit_test(test_draw_points_squares_centred_clipped_nan_skipped),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
