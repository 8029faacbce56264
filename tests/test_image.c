/* test_image.c - decode (PNG/JPEG, EXIF, hostile input), resize and network input of engine/image.c.
 * Images are built in memory with libpng/libjpeg so every case states its own pixels; the sample
 * photos come from VISIOND_SHARED_DIR. Bit-exactness against OpenCV itself is checked separately by
 * tests/ref/test_image_opencv.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>

#include "image.h"

#define SAMPLES VISIOND_SHARED_DIR "/images"

/* ---------------------------------------------------------------------------------------------- */
/* Helpers: files, memory buffers, encoders                                                       */

static uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

struct membuf {
    uint8_t *p;
    size_t n, cap;
};

static void membuf_put(struct membuf *m, const void *data, size_t n)
{
    if (m->n + n > m->cap) {
        size_t cap = (m->n + n) * 2;
        uint8_t *p = realloc(m->p, cap);
        assert_non_null(p);
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
}

static void png_mem_write(png_structp png, png_bytep data, size_t n)
{
    membuf_put(png_get_io_ptr(png), data, n);
}

static void png_mem_flush(png_structp png)
{
    (void)png;
}

/* What to encode as PNG. `rows` holds the samples exactly as the PNG stores them (16-bit big-endian,
 * sub-byte gray packed), row after row. */
struct png_spec {
    int w, h, depth, color_type, interlace;
    const uint8_t *rows;
    const png_color *palette;
    int n_palette;
    const uint8_t *trans;
    int n_trans;
    const uint8_t *exif;
    uint32_t exif_len;
};

static size_t png_rowbytes(const struct png_spec *s)
{
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4};
    return ((size_t)s->w * channels[s->color_type] * s->depth + 7) / 8;
}

static struct png_spec png_plain(int w, int h, int depth, int color_type, const uint8_t *rows)
{
    return (struct png_spec){.w = w, .h = h, .depth = depth, .color_type = color_type,
                             .interlace = PNG_INTERLACE_NONE, .rows = rows};
}

static void png_encode_steps(png_structp png, png_infop info, const struct png_spec *s)
{
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trans)
        png_set_tRNS(png, info, s->trans, s->n_trans, NULL);
    if (s->exif)
        png_set_eXIf_1(png, info, s->exif_len, (png_bytep)s->exif);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < s->h; y++)
            png_write_row(png, s->rows + (size_t)y * png_rowbytes(s));
    png_write_end(png, info);
}

static void png_encode_run(png_structp png, png_infop info, const struct png_spec *s)
{
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed to encode the test image");
    png_encode_steps(png, info, s);
}

/* Returns a new PNG file image (caller frees .p). */
static struct membuf png_encode(const struct png_spec *s)
{
    struct membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    assert_non_null(png);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    png_set_write_fn(png, &m, png_mem_write, png_mem_flush);
    png_encode_run(png, info, s);
    png_destroy_write_struct(&png, &info);
    return m;
}

struct jpeg_spec {
    int w, h, components;
    J_COLOR_SPACE in_space, file_space; /* file_space JCS_UNKNOWN: libjpeg's default */
    const uint8_t *pixels;
    int progressive;
};

/* Returns a new JPEG file image at quality 100 with 4:4:4 sampling (caller frees). */
static uint8_t *jpeg_encode(const struct jpeg_spec *s, size_t *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = (JDIMENSION)s->w;
    c.image_height = (JDIMENSION)s->h;
    c.input_components = s->components;
    c.in_color_space = s->in_space;
    jpeg_set_defaults(&c);
    if (s->file_space != JCS_UNKNOWN)
        jpeg_set_colorspace(&c, s->file_space);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++)
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (s->progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)s->pixels + (size_t)c.next_scanline * s->w * s->components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *size = n;
    return out;
}

/* Inserts an APP1 segment with `payload` (the bytes after the length field) right after SOI. */
static uint8_t *jpeg_with_app1(const uint8_t *jpeg, size_t n, const uint8_t *payload, size_t len,
                               size_t *out_n)
{
    assert_true(len + 2 <= 0xffff);
    uint8_t *out = malloc(n + 4 + len);
    assert_non_null(out);
    memcpy(out, jpeg, 2);
    out[2] = 0xff;
    out[3] = 0xe1;
    out[4] = (uint8_t)((len + 2) >> 8);
    out[5] = (uint8_t)(len + 2);
    memcpy(out + 6, payload, len);
    memcpy(out + 6 + len, jpeg + 2, n - 2);
    *out_n = n + 4 + len;
    return out;
}

static void put16(uint8_t *p, int be, unsigned v)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}

static void put32(uint8_t *p, int be, uint32_t v)
{
    put16(p + (be ? 0 : 2), be, v >> 16);
    put16(p + (be ? 2 : 0), be, v & 0xffff);
}

/* TIFF block with IFD0 = {Orientation: SHORT[count] = value}; returns its length (26). */
static size_t tiff_orientation(uint8_t *t, int be, unsigned type, uint32_t count, unsigned value)
{
    memcpy(t, be ? "MM" : "II", 2);
    put16(t + 2, be, 42);
    put32(t + 4, be, 8);
    put16(t + 8, be, 1);
    put16(t + 10, be, 0x0112);
    put16(t + 12, be, type);
    put32(t + 14, be, count);
    put32(t + 18, be, 0);
    put16(t + 18, be, value);
    put32(t + 22, be, 0); /* no next IFD */
    return 26;
}

/* "Exif\0\0" + TIFF, as a JPEG APP1 payload. */
static size_t exif_payload(uint8_t *p, const uint8_t *tiff, size_t len)
{
    memcpy(p, "Exif\0\0", 6);
    memcpy(p + 6, tiff, len);
    return 6 + len;
}

/* 32x16 RGB test card: four solid 16x8 quadrants, so JPEG keeps them almost exact. */
static const uint8_t quad_colour[4][3] = {{230, 20, 20}, {20, 230, 20}, {20, 20, 230}, {230, 230, 20}};

static uint8_t *quad_card(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(px + 3 * ((size_t)y * w + x), quad_colour[(y >= h / 2) * 2 + (x >= w / 2)], 3);
    return px;
}

static uint8_t *quad_jpeg(size_t *n)
{
    uint8_t *px = quad_card(32, 16);
    struct jpeg_spec s = {32, 16, 3, JCS_RGB, JCS_UNKNOWN, px, 0};
    uint8_t *jpeg = jpeg_encode(&s, n);
    free(px);
    return jpeg;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reference transforms, written as OpenCV's ExifTransform composes them (flip/transpose)         */

static void ref_flip(struct eng_image *img, int horizontal)
{
    int w = img->width, h = img->height;
    uint8_t *out = malloc((size_t)w * h * 3);
    assert_non_null(out);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sx = horizontal ? w - 1 - x : x, sy = horizontal ? y : h - 1 - y;
            memcpy(out + 3 * ((size_t)y * w + x), img->rgb + 3 * ((size_t)sy * w + sx), 3);
        }
    free(img->rgb);
    img->rgb = out;
}

static void ref_transpose(struct eng_image *img)
{
    int w = img->width, h = img->height;
    uint8_t *out = malloc((size_t)w * h * 3);
    assert_non_null(out);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < h; x++)
            memcpy(out + 3 * ((size_t)y * h + x), img->rgb + 3 * ((size_t)x * w + y), 3);
    free(img->rgb);
    img->rgb = out;
    img->width = h;
    img->height = w;
}

static void ref_orient(struct eng_image *img, int o)
{
    if (o >= 5)
        ref_transpose(img);
    if (o == 2 || o == 3 || o == 6 || o == 7)
        ref_flip(img, 1);
    if (o == 3 || o == 4 || o == 7 || o == 8)
        ref_flip(img, 0);
}

static void assert_same_image(const struct eng_image *a, const struct eng_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_memory_equal(a->rgb, b->rgb, (size_t)a->width * a->height * 3);
}

static void assert_near(int actual, int expected, int tolerance)
{
    if (abs(actual - expected) > tolerance)
        fail_msg("%d is not within %d of %d", actual, tolerance, expected);
}

static const uint8_t *pixel(const struct eng_image *img, int x, int y)
{
    return img->rgb + 3 * ((size_t)y * img->width + x);
}

/* Decodes and expects failure of `kind` with `needle` in the message. */
static void assert_decode_fails(const uint8_t *data, size_t n, const struct eng_decode_opts *opts,
                                enum eng_err_kind kind, const char *needle)
{
    struct eng_image img = {0};
    struct eng_err err = {0};
    assert_int_equal(eng_image_decode(data, n, opts, &img, NULL, &err), -1);
    assert_int_equal(err.kind, kind);
    if (!strstr(err.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    assert_null(img.rgb);
}

/* ---------------------------------------------------------------------------------------------- */
/* Sample photos, sniffing, unsupported input                                                     */

static void test_image_sample_jpegs_decode_with_stored_dims(void **state)
{
    (void)state;
    static const struct { const char *name; int w, h; } samples[] = {
        {"dog.jpg", 768, 576},    {"eagle.jpg", 773, 512},  {"giraffe.jpg", 500, 500},
        {"horses.jpg", 773, 512}, {"person.jpg", 640, 424}, {"scream.jpg", 352, 448},
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", SAMPLES, samples[i].name);
        struct eng_decode_opts opts = {.apply_exif = 1};
        struct eng_decode_info info;
        struct eng_image img;
        struct eng_err err = {0};
        if (eng_image_load(path, &opts, &img, &info, &err) != 0)
            fail_msg("%s: %s", path, err.msg);
        assert_int_equal(img.width, samples[i].w);
        assert_int_equal(img.height, samples[i].h);
        assert_int_equal(info.format, ENG_IMAGE_JPEG);
        assert_int_equal(info.exif_orientation, 1);
        assert_int_equal(info.exif_rotated, 0);
        assert_int_equal(info.stored_width, samples[i].w);
        assert_int_equal(info.stored_height, samples[i].h);
        eng_image_release(&img);
    }
}

static void test_image_load_matches_decode_of_same_bytes(void **state)
{
    (void)state;
    size_t n;
    uint8_t *data = read_whole(SAMPLES "/person.jpg", &n);
    struct eng_image a, b;
    struct eng_err err = {0};
    assert_int_equal(eng_image_decode(data, n, NULL, &a, NULL, &err), 0);
    assert_int_equal(eng_image_load(SAMPLES "/person.jpg", NULL, &b, NULL, &err), 0);
    assert_same_image(&a, &b);
    eng_image_release(&a);
    eng_image_release(&b);
    free(data);
}

static void test_image_sniff_magic_bytes_detected(void **state)
{
    (void)state;
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t jpeg[3] = {0xff, 0xd8, 0xff};
    assert_int_equal(eng_image_sniff(png, sizeof png), ENG_IMAGE_PNG);
    assert_int_equal(eng_image_sniff(png, 7), ENG_IMAGE_UNKNOWN);
    assert_int_equal(eng_image_sniff(jpeg, sizeof jpeg), ENG_IMAGE_JPEG);
    assert_int_equal(eng_image_sniff(jpeg, 2), ENG_IMAGE_UNKNOWN);
    assert_int_equal(eng_image_sniff((const uint8_t *)"GIF89a", 6), ENG_IMAGE_UNKNOWN);
    assert_int_equal(eng_image_sniff(NULL, 0), ENG_IMAGE_UNKNOWN);
}

static void test_image_zero_bytes_unsupported_empty(void **state)
{
    (void)state;
    static const uint8_t none[1] = {0};
    assert_decode_fails(none, 0, NULL, ENG_ERR_UNSUPPORTED, "empty image");
    assert_decode_fails(NULL, 0, NULL, ENG_ERR_UNSUPPORTED, "empty image");
}

static void test_image_text_named_jpg_unsupported_with_start(void **state)
{
    (void)state;
    const char *text = "hello, this is not a photo\n";
    assert_decode_fails((const uint8_t *)text, strlen(text), NULL, ENG_ERR_UNSUPPORTED,
                        "not an image in an accepted format (PNG, JPEG, WebP, HEIC, AVIF; starts with "
                        "68 65 6c 6c 6f 2c 20 74 \"hello, t\")");
}

/* GIF stays unsupported (415, named); a WebP header is now decoded, and a cut one is corrupt data
 * named as WebP (tests/test_image_formats.c has the WebP and HEIF cases). */
static void test_image_gif_unsupported_named_cut_webp_invalid(void **state)
{
    (void)state;
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    static const uint8_t webp[] = "RIFF\x24\x00\x00\x00WEBPVP8 ";
    assert_decode_fails(gif, sizeof gif - 1, NULL, ENG_ERR_UNSUPPORTED, "looks like GIF");
    assert_decode_fails(webp, sizeof webp - 1, NULL, ENG_ERR_INVALID, "WebP: ");
}

static void test_image_load_missing_file_io_error_names_path(void **state)
{
    (void)state;
    struct eng_image img;
    struct eng_err err = {0};
    const char *path = SAMPLES "/does-not-exist.jpg";
    assert_int_equal(eng_image_load(path, NULL, &img, NULL, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, path);
    assert_null(img.rgb);
}

static void test_image_load_directory_io_error(void **state)
{
    (void)state;
    struct eng_image img;
    struct eng_err err = {0};
    assert_int_equal(eng_image_load(SAMPLES, NULL, &img, NULL, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_image_load_empty_file_unsupported_names_path(void **state)
{
    (void)state;
    char path[] = "/tmp/visiond-test-image-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct eng_image img;
    struct eng_err err = {0};
    int rc = eng_image_load(path, NULL, &img, NULL, &err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_int_equal(err.kind, ENG_ERR_UNSUPPORTED);
    assert_string_equal(err.where, path);
    assert_string_equal(err.msg, "empty image");
}

static void test_image_release_zeroed_or_null_is_noop(void **state)
{
    (void)state;
    struct eng_image img = {0};
    eng_image_release(&img);
    eng_image_release(NULL);
    assert_null(img.rgb);
}

/* ---------------------------------------------------------------------------------------------- */
/* PNG                                                                                            */

static struct eng_image decode_png_spec(const struct png_spec *s, struct eng_decode_info *info)
{
    struct membuf m = png_encode(s);
    struct eng_decode_opts opts = {.apply_exif = 1};
    struct eng_image img;
    struct eng_err err = {0};
    if (eng_image_decode(m.p, m.n, &opts, &img, info, &err) != 0)
        fail_msg("decode failed: %s", err.msg);
    free(m.p);
    return img;
}

static void test_image_png_rgb8_decodes_exact(void **state)
{
    (void)state;
    static const uint8_t px[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252, 0, 0, 0, 255, 255, 255};
    struct png_spec s = png_plain(3, 2, 8, PNG_COLOR_TYPE_RGB, px);
    struct eng_decode_info info;
    struct eng_image img = decode_png_spec(&s, &info);
    assert_int_equal(info.format, ENG_IMAGE_PNG);
    assert_int_equal(img.width, 3);
    assert_int_equal(img.height, 2);
    assert_memory_equal(img.rgb, px, sizeof px);
    eng_image_release(&img);
}

static void test_image_png_16bit_keeps_high_byte(void **state)
{
    (void)state;
    /* big-endian samples 0x12ab 0xff01 0x0080 | 0x0000 0x8000 0xffff; OpenCV keeps the high byte */
    static const uint8_t px[] = {0x12, 0xab, 0xff, 0x01, 0x00, 0x80,
                                 0x00, 0x00, 0x80, 0x00, 0xff, 0xff};
    static const uint8_t want[] = {0x12, 0xff, 0x00, 0x00, 0x80, 0xff};
    struct png_spec s = png_plain(2, 1, 16, PNG_COLOR_TYPE_RGB, px);
    struct eng_image img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, want, sizeof want);
    eng_image_release(&img);
}

static void test_image_png_gray_expands_to_rgb(void **state)
{
    (void)state;
    static const uint8_t gray8[] = {0, 77, 255};
    struct png_spec s = png_plain(3, 1, 8, PNG_COLOR_TYPE_GRAY, gray8);
    struct eng_image img = decode_png_spec(&s, NULL);
    for (int x = 0; x < 3; x++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(pixel(&img, x, 0)[c], gray8[x]);
    eng_image_release(&img);

    /* 4-bit gray 0x3, 0xf, 0x0 scales by 17; 16-bit gray keeps the high byte */
    static const uint8_t gray4[] = {0x3f, 0x00};
    s = png_plain(3, 1, 4, PNG_COLOR_TYPE_GRAY, gray4);
    img = decode_png_spec(&s, NULL);
    assert_int_equal(pixel(&img, 0, 0)[1], 0x33);
    assert_int_equal(pixel(&img, 1, 0)[2], 0xff);
    assert_int_equal(pixel(&img, 2, 0)[0], 0x00);
    eng_image_release(&img);

    static const uint8_t gray16[] = {0xab, 0xcd};
    s = png_plain(1, 1, 16, PNG_COLOR_TYPE_GRAY, gray16);
    img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){0xab, 0xab, 0xab}), 3);
    eng_image_release(&img);
}

static void test_image_png_gray_alpha_alpha_dropped(void **state)
{
    (void)state;
    static const uint8_t px[] = {100, 0, 200, 128}; /* gray, alpha pairs; alpha 0 must not blacken */
    struct png_spec s = png_plain(2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, px);
    struct eng_image img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){100, 100, 100, 200, 200, 200}), 6);
    eng_image_release(&img);
}

static void test_image_png_rgba_alpha_dropped_not_composited(void **state)
{
    (void)state;
    static const uint8_t px[] = {10, 20, 30, 0, 40, 50, 60, 255, 70, 80, 90, 77};
    struct png_spec s = png_plain(3, 1, 8, PNG_COLOR_TYPE_RGB_ALPHA, px);
    struct eng_image img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){10, 20, 30, 40, 50, 60, 70, 80, 90}), 9);
    eng_image_release(&img);

    static const uint8_t px16[] = {0x11, 0x99, 0x22, 0x99, 0x33, 0x99, 0x00, 0x00};
    s = png_plain(1, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, px16);
    img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){0x11, 0x22, 0x33}), 3);
    eng_image_release(&img);
}

static void test_image_png_palette_trns_maps_colours_drops_alpha(void **state)
{
    (void)state;
    static const png_color pal[3] = {{255, 0, 0}, {0, 128, 0}, {1, 2, 3}};
    static const uint8_t trans[3] = {0, 128, 255};
    static const uint8_t idx[] = {2, 0, 1, 1};
    struct png_spec s = png_plain(4, 1, 8, PNG_COLOR_TYPE_PALETTE, idx);
    s.palette = pal;
    s.n_palette = 3;
    s.trans = trans;
    s.n_trans = 3;
    struct eng_image img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){1, 2, 3, 255, 0, 0, 0, 128, 0, 0, 128, 0}), 12);
    eng_image_release(&img);

    static const uint8_t idx2[] = {0x18}; /* 2-bit indices 0, 1, 2, 0 */
    s.depth = 2;
    s.rows = idx2;
    img = decode_png_spec(&s, NULL);
    assert_memory_equal(img.rgb, ((uint8_t[]){255, 0, 0, 0, 128, 0, 1, 2, 3, 255, 0, 0}), 12);
    eng_image_release(&img);
}

/* A pattern where every pixel differs, so a wrong Adam7 pass placement shows. */
static uint8_t *pattern_rgb(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    for (int i = 0; i < w * h * 3; i++)
        px[i] = (uint8_t)(i * 37 + i / 3);
    return px;
}

static void test_image_png_interlaced_equals_pixels(void **state)
{
    (void)state;
    int w = 13, h = 11;
    uint8_t *px = pattern_rgb(w, h);
    struct png_spec s = png_plain(w, h, 8, PNG_COLOR_TYPE_RGB, px);
    s.interlace = PNG_INTERLACE_ADAM7;
    struct eng_image img = decode_png_spec(&s, NULL);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.rgb, px, (size_t)w * h * 3);
    eng_image_release(&img);
    free(px);
}

/* A w x h PNG with each EXIF orientation decodes to exactly ref_orient's pixels. */
static void assert_png_orientations_exact(int w, int h)
{
    uint8_t *px = pattern_rgb(w, h);
    for (int o = 1; o <= 8; o++) {
        uint8_t tiff[26];
        size_t len = tiff_orientation(tiff, o % 2, 3, 1, (unsigned)o);
        struct png_spec s = png_plain(w, h, 8, PNG_COLOR_TYPE_RGB, px);
        s.exif = tiff;
        s.exif_len = (uint32_t)len;
        struct eng_decode_info info;
        struct eng_image img = decode_png_spec(&s, &info);
        struct eng_image want = {w, h, malloc((size_t)w * h * 3)};
        assert_non_null(want.rgb);
        memcpy(want.rgb, px, (size_t)w * h * 3);
        ref_orient(&want, o);
        assert_same_image(&img, &want);
        assert_int_equal(info.exif_orientation, o);
        assert_int_equal(info.exif_rotated, o != 1);
        assert_int_equal(info.stored_width, w);
        assert_int_equal(info.stored_height, h);
        eng_image_release(&img);
        eng_image_release(&want);
    }
    free(px);
}

static void test_image_png_exif_orientations_applied_exactly(void **state)
{
    (void)state;
    assert_png_orientations_exact(5, 3);
}

/* The rotation walks 64 x 64 tiles (engine/image.c, ORIENT_TILE): several tiles each way, and partial
 * ones at the right and bottom edges, must still land every pixel. */
static void test_image_png_exif_orientations_exact_across_tiles(void **state)
{
    (void)state;
    assert_png_orientations_exact(131, 70);
    assert_png_orientations_exact(64, 129);
}

static void test_image_png_truncated_invalid(void **state)
{
    (void)state;
    int w = 64, h = 64;
    uint8_t *px = pattern_rgb(w, h);
    struct png_spec s = png_plain(w, h, 8, PNG_COLOR_TYPE_RGB, px);
    struct membuf m = png_encode(&s);
    assert_decode_fails(m.p, m.n / 2, NULL, ENG_ERR_INVALID, "PNG: ");
    assert_decode_fails(m.p, 20, NULL, ENG_ERR_INVALID, "IHDR");
    m.p[m.n / 2] ^= 0x55; /* inside IDAT: CRC mismatch on a critical chunk */
    assert_decode_fails(m.p, m.n, NULL, ENG_ERR_INVALID, "PNG: ");
    free(m.p);
    free(px);
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* Signature + IHDR (correct CRC) + an empty IDAT + IEND, declaring w x h RGB8. */
static size_t png_header_only(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t tail[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e,
                                   0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    uint8_t ihdr[4 + 13] = {'I', 'H', 'D', 'R'};
    memcpy(out, sig, 8);
    put32(out + 8, 1, 13);
    put32(ihdr + 4, 1, w);
    put32(ihdr + 8, 1, h);
    ihdr[12] = 8; /* depth */
    ihdr[13] = 2; /* RGB */
    memcpy(out + 12, ihdr, sizeof ihdr);
    put32(out + 12 + sizeof ihdr, 1, crc32_png(ihdr, sizeof ihdr));
    memcpy(out + 33, tail, sizeof tail);
    return 33 + sizeof tail;
}

static void test_image_png_huge_ihdr_too_large_before_alloc(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = png_header_only(buf, 100000, 100000);
    /* checked before libpng starts: allocating first would abort under ASan or give NOMEM here */
    assert_decode_fails(buf, n, NULL, ENG_ERR_TOO_LARGE, "100000x100000");
    struct eng_decode_opts opts = {.max_pixels = UINT64_MAX};
    assert_decode_fails(buf, png_header_only(buf, 0x7fffffff, 0x7fffffff), &opts, ENG_ERR_TOO_LARGE,
                        "2147483647x2147483647");
}

static void test_image_png_zero_width_invalid(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = png_header_only(buf, 0, 10);
    assert_decode_fails(buf, n, NULL, ENG_ERR_INVALID, "0x10");
}

static void test_image_png_over_custom_limit_too_large(void **state)
{
    (void)state;
    uint8_t *px = pattern_rgb(40, 30);
    struct png_spec s = png_plain(40, 30, 8, PNG_COLOR_TYPE_RGB, px);
    struct membuf m = png_encode(&s);
    struct eng_decode_opts opts = {.max_pixels = 40 * 30 - 1};
    assert_decode_fails(m.p, m.n, &opts, ENG_ERR_TOO_LARGE, "40x30");
    opts.max_pixels = 40 * 30;
    struct eng_image img;
    assert_int_equal(eng_image_decode(m.p, m.n, &opts, &img, NULL, NULL), 0);
    eng_image_release(&img);
    free(m.p);
    free(px);
}

/* ---------------------------------------------------------------------------------------------- */
/* JPEG                                                                                           */

static struct eng_image decode_ok(const uint8_t *data, size_t n, int apply_exif,
                                  struct eng_decode_info *info)
{
    struct eng_decode_opts opts = {.apply_exif = apply_exif};
    struct eng_image img;
    struct eng_err err = {0};
    if (eng_image_decode(data, n, &opts, &img, info, &err) != 0)
        fail_msg("decode failed: %s", err.msg);
    return img;
}

static void test_image_jpeg_truncated_invalid_not_gray(void **state)
{
    (void)state;
    size_t n;
    uint8_t *data = read_whole(SAMPLES "/dog.jpg", &n);
    assert_decode_fails(data, n / 2, NULL, ENG_ERR_INVALID, "Premature end of JPEG file");
    assert_decode_fails(data, 300, NULL, ENG_ERR_INVALID, "JPEG: ");
    free(data);
}

static void test_image_jpeg_over_limit_too_large(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpeg = quad_jpeg(&n);
    struct eng_decode_opts opts = {.max_pixels = 100};
    assert_decode_fails(jpeg, n, &opts, ENG_ERR_TOO_LARGE, "32x16");
    free(jpeg);
}

/* Rewrites the frame header (SOF0/SOF2) of a JPEG file image to declare w x h; 0 if it has none. */
static int jpeg_patch_sof(uint8_t *d, size_t n, unsigned w, unsigned h)
{
    for (size_t i = 2; i + 9 < n && d[i] == 0xFF;) {
        const size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
        if (d[i + 1] == 0xC0 || d[i + 1] == 0xC2) {
            d[i + 5] = (uint8_t)(h >> 8), d[i + 6] = (uint8_t)h;
            d[i + 7] = (uint8_t)(w >> 8), d[i + 8] = (uint8_t)w;
            return 1;
        }
        i += 2 + len;
    }
    return 0;
}

/* Decompression bombs: small baseline, progressive and CMYK files declaring huge frames. Refused from
 * the header: a decoder that allocated first would need 10.8 GB (60000 x 60000 x 3) and fail with
 * NOMEM here, or abort under ASan; past libjpeg's 65500-pixel limit, still "too large". */
static void test_image_jpeg_huge_frame_too_large_before_alloc(void **state)
{
    (void)state;
    uint8_t *px = pattern_rgb(16, 16);
    const struct jpeg_spec specs[] = {{16, 16, 3, JCS_RGB, JCS_UNKNOWN, px, 0},
                                      {16, 16, 3, JCS_RGB, JCS_UNKNOWN, px, 1},
                                      {16, 12, 4, JCS_CMYK, JCS_UNKNOWN, px, 0}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *jpeg = jpeg_encode(&specs[i], &n);
        assert_true(jpeg_patch_sof(jpeg, n, 60000, 60000));
        assert_decode_fails(jpeg, n, NULL, ENG_ERR_TOO_LARGE, "60000x60000");
        assert_true(jpeg_patch_sof(jpeg, n, 65535, 65535));
        assert_decode_fails(jpeg, n, NULL, ENG_ERR_TOO_LARGE, "65500");
        free(jpeg);
    }
    free(px);
}

static void test_image_jpeg_exif_orientations_rotate_both_byte_orders(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpeg = quad_jpeg(&n);
    for (int be = 0; be <= 1; be++)
        for (int o = 1; o <= 8; o++) {
            uint8_t tiff[26], payload[64];
            size_t len = exif_payload(payload, tiff, tiff_orientation(tiff, be, 3, 1, (unsigned)o));
            size_t m;
            uint8_t *file = jpeg_with_app1(jpeg, n, payload, len, &m);
            struct eng_decode_info info;
            struct eng_image stored = decode_ok(file, m, 0, &info);
            assert_int_equal(info.exif_orientation, o);
            assert_int_equal(info.exif_rotated, 0);
            struct eng_image upright = decode_ok(file, m, 1, &info);
            assert_int_equal(info.exif_rotated, o != 1);
            assert_int_equal(upright.width, o >= 5 ? 16 : 32);
            ref_orient(&stored, o);
            assert_same_image(&upright, &stored);
            eng_image_release(&upright);
            eng_image_release(&stored);
            free(file);
        }
    free(jpeg);
}

/* Where the stored top-left (red) quadrant ends up, as the EXIF spec describes the orientations. */
static void test_image_jpeg_exif_rotation_semantics_match_spec(void **state)
{
    (void)state;
    /* upright corner that shows stored pixel (0, 0): 0 TL, 1 TR, 2 BL, 3 BR */
    static const int corner[9] = {0, 0, 1, 3, 2, 0, 1, 3, 2};
    size_t n;
    uint8_t *jpeg = quad_jpeg(&n);
    for (int o = 1; o <= 8; o++) {
        uint8_t tiff[26], payload[64];
        size_t len = exif_payload(payload, tiff, tiff_orientation(tiff, 1, 3, 1, (unsigned)o));
        size_t m;
        uint8_t *file = jpeg_with_app1(jpeg, n, payload, len, &m);
        struct eng_image img = decode_ok(file, m, 1, NULL);
        int x = corner[o] & 1 ? img.width - 2 : 1, y = corner[o] & 2 ? img.height - 2 : 1;
        for (int c = 0; c < 3; c++)
            assert_near(pixel(&img, x, y)[c], quad_colour[0][c], 3);
        eng_image_release(&img);
        free(file);
    }
    free(jpeg);
}

struct exif_case {
    uint8_t payload[64];
    size_t len;
};

static void add_case(struct exif_case *cases, int *k, const void *tiff, size_t len)
{
    cases[*k].len = exif_payload(cases[*k].payload, tiff, len);
    (*k)++;
}

/* Builds hostile EXIF blocks; returns how many. */
static int hostile_exif_cases(struct exif_case *cases)
{
    uint8_t t[26];
    int k = 0;
    tiff_orientation(t, 1, 3, 1, 6);
    put32(t + 4, 1, 0xfffffff0u); /* IFD0 offset past the end (and near 2^32) */
    add_case(cases, &k, t, sizeof t);
    tiff_orientation(t, 0, 3, 1, 6);
    put16(t + 8, 0, 0xffff); /* 65535 entries declared, one present */
    put16(t + 10, 0, 0x0100);
    add_case(cases, &k, t, sizeof t);
    tiff_orientation(t, 1, 3, 1, 6);
    put32(t + 4, 1, 0); /* IFD0 at the header itself: "MM" read as the entry count */
    add_case(cases, &k, t, sizeof t);
    tiff_orientation(t, 1, 3, 1, 6);
    put16(t + 10, 1, 0x0110);
    put32(t + 22, 1, 8); /* no orientation in IFD0, and the next-IFD pointer loops to IFD0 */
    add_case(cases, &k, t, sizeof t);
    add_case(cases, &k, t, tiff_orientation(t, 1, 4, 1, 6)); /* LONG instead of SHORT */
    add_case(cases, &k, t, tiff_orientation(t, 1, 3, 2, 6)); /* two values */
    add_case(cases, &k, t, tiff_orientation(t, 1, 3, 1, 9)); /* out of range */
    add_case(cases, &k, t, tiff_orientation(t, 1, 3, 1, 0));
    tiff_orientation(t, 1, 3, 1, 6);
    add_case(cases, &k, t, 19);                          /* value cut off after one byte */
    add_case(cases, &k, "MM\0", 3);                      /* header cut off */
    add_case(cases, &k, "XX\0*\0\0\0\x08", 8);           /* unknown byte order */
    add_case(cases, &k, "MM\0\x2b\0\0\0\x08\0\0", 10); /* magic 43 */
    add_case(cases, &k, t, 0);                           /* bare "Exif\0\0" */
    return k;
}

/* Each hostile block must decode with the stored orientation: no crash, no hang (run under ASan). */
static void test_image_jpeg_hostile_exif_ignored_safely(void **state)
{
    (void)state;
    struct exif_case cases[16];
    int count = hostile_exif_cases(cases);
    size_t n;
    uint8_t *jpeg = quad_jpeg(&n);
    for (int i = 0; i < count; i++) {
        size_t m;
        uint8_t *file = jpeg_with_app1(jpeg, n, cases[i].payload, cases[i].len, &m);
        struct eng_decode_info info;
        struct eng_image img = decode_ok(file, m, 1, &info);
        if (info.exif_orientation != 1)
            fail_msg("hostile case %d gave orientation %d", i, info.exif_orientation);
        assert_int_equal(img.width, 32);
        eng_image_release(&img);
        free(file);
    }
    free(jpeg);
}

/* Random TIFF bodies behind a valid header: never crash, orientation always 1..8. */
static void test_image_jpeg_random_exif_never_crashes(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpeg = quad_jpeg(&n);
    uint32_t seed = 12345;
    for (int iter = 0; iter < 300; iter++) {
        uint8_t t[48], payload[64];
        for (size_t i = 0; i < sizeof t; i++) {
            seed = seed * 1664525u + 1013904223u;
            t[i] = (uint8_t)(seed >> 24);
        }
        int be = iter & 1;
        memcpy(t, be ? "MM" : "II", 2);
        put16(t + 2, be, 42);
        if (iter % 3 == 0)
            put32(t + 4, be, (uint32_t)(8 + iter % 40)); /* plausible IFD offsets too */
        size_t len = exif_payload(payload, t, 8 + (size_t)(iter % 41));
        size_t m;
        uint8_t *file = jpeg_with_app1(jpeg, n, payload, len, &m);
        struct eng_decode_info info;
        struct eng_image img = decode_ok(file, m, 1, &info);
        assert_in_range(info.exif_orientation, 1, 8);
        eng_image_release(&img);
        free(file);
    }
    free(jpeg);
}

static void test_image_jpeg_grayscale_gives_equal_channels(void **state)
{
    (void)state;
    uint8_t gray[16 * 16];
    for (int i = 0; i < 256; i++)
        gray[i] = (uint8_t)(i / 16 * 16);
    struct jpeg_spec s = {16, 16, 1, JCS_GRAYSCALE, JCS_UNKNOWN, gray, 0};
    size_t n;
    uint8_t *jpeg = jpeg_encode(&s, &n);
    struct eng_image img = decode_ok(jpeg, n, 1, NULL);
    for (int i = 0; i < 256; i++) {
        const uint8_t *p = img.rgb + 3 * i;
        assert_int_equal(p[0], p[1]);
        assert_int_equal(p[1], p[2]);
        assert_near(p[0], gray[i], 2);
    }
    eng_image_release(&img);
    free(jpeg);
}

/* Adobe CMYK as libjpeg returns it; OpenCV's conversion: R = K - ((255 - C) * K >> 8). */
static void test_image_jpeg_cmyk_and_ycck_convert_like_opencv(void **state)
{
    (void)state;
    static const uint8_t halves[2][4] = {{200, 100, 50, 180}, {0, 255, 128, 255}};
    uint8_t px[16 * 8 * 4];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++)
            memcpy(px + 4 * (y * 16 + x), halves[x >= 8], 4);
    static const J_COLOR_SPACE file_spaces[2] = {JCS_CMYK, JCS_YCCK};
    for (int f = 0; f < 2; f++) {
        struct jpeg_spec s = {16, 8, 4, JCS_CMYK, file_spaces[f], px, 0};
        size_t n;
        uint8_t *jpeg = jpeg_encode(&s, &n);
        struct eng_image img = decode_ok(jpeg, n, 1, NULL);
        for (int half = 0; half < 2; half++) {
            const uint8_t *cmyk = halves[half], *p = pixel(&img, 3 + 8 * half, 4);
            int k = cmyk[3];
            for (int c = 0; c < 3; c++)
                assert_near(p[c], k - ((255 - cmyk[c]) * k >> 8), 3);
        }
        eng_image_release(&img);
        free(jpeg);
    }
}

static void test_image_jpeg_progressive_equals_baseline(void **state)
{
    (void)state;
    int w = 40, h = 24;
    uint8_t *px = pattern_rgb(w, h);
    struct jpeg_spec s = {w, h, 3, JCS_RGB, JCS_UNKNOWN, px, 0};
    size_t n1, n2;
    uint8_t *base = jpeg_encode(&s, &n1);
    s.progressive = 1;
    uint8_t *prog = jpeg_encode(&s, &n2);
    struct eng_image a = decode_ok(base, n1, 1, NULL), b = decode_ok(prog, n2, 1, NULL);
    /* same quantised coefficients, same IDCT: identical pixels */
    assert_same_image(&a, &b);
    eng_image_release(&a);
    eng_image_release(&b);
    free(base);
    free(prog);
    free(px);
}

/* ---------------------------------------------------------------------------------------------- */
/* Resize                                                                                         */

static void test_image_resize_2x2_to_4x4_hand_computed(void **state)
{
    (void)state;
    /* R = [[0, 100], [200, 50]], G = 255 - R, B = 77. Worked example, R at (1, 1): fx = fy = 0.25, so
     * weights (1536, 512). Rows: 0 * 1536 + 100 * 512 = 51200 and 200 * 1536 + 50 * 512 = 332800.
     * ((1536 * (51200 >> 4)) >> 16) = 75, ((512 * (332800 >> 4)) >> 16) = 162,
     * (75 + 162 + 2) >> 2 = 59.
     * Border columns/rows clamp to the edge pixel: R(0, 0) = 0, R(3, 3) = 50. */
    static const uint8_t r[16] = {0, 25, 75, 100, 50, 59, 78, 88, 150, 128, 84, 63, 200, 162, 87, 50};
    static const uint8_t g[16] = {255, 230, 180, 155, 205, 196, 177, 168,
                                  105, 127, 171, 193, 55,  92,  167, 205};
    uint8_t src[12] = {0, 255, 77, 100, 155, 77, 200, 55, 77, 50, 205, 77};
    uint8_t dst[48];
    struct eng_image img = {2, 2, src};
    assert_int_equal(eng_image_resize_linear(&img, 4, 4, dst, NULL), 0);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(dst[3 * i], r[i]);
        assert_int_equal(dst[3 * i + 1], g[i]);
        assert_int_equal(dst[3 * i + 2], 77);
    }
}

static void test_image_resize_exact_half_rounds_2x2_mean(void **state)
{
    (void)state;
    /* 6x4 -> 3x2 is OpenCV's INTER_AREA shortcut: (a + b + c + d + 2) >> 2 */
    static const uint8_t v[4][6] = {{10, 20, 30, 40, 50, 60},
                                    {11, 21, 31, 41, 51, 61},
                                    {0, 255, 7, 9, 100, 101},
                                    {3, 3, 3, 3, 200, 201}};
    static const uint8_t want[6] = {16, 36, 56, 65, 6, 151};
    uint8_t src[72], dst[18];
    for (int i = 0; i < 24; i++)
        memset(src + 3 * i, v[i / 6][i % 6], 3);
    struct eng_image img = {6, 4, src};
    assert_int_equal(eng_image_resize_linear(&img, 3, 2, dst, NULL), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(dst[3 * i + 1], want[i]);
}

static void test_image_resize_same_size_copies(void **state)
{
    (void)state;
    uint8_t *px = pattern_rgb(7, 5);
    uint8_t dst[7 * 5 * 3];
    struct eng_image img = {7, 5, px};
    assert_int_equal(eng_image_resize_linear(&img, 7, 5, dst, NULL), 0);
    assert_memory_equal(dst, px, sizeof dst);
    free(px);
}

static void test_image_resize_single_pixel_fills_everything(void **state)
{
    (void)state;
    uint8_t src[3] = {9, 99, 199}, dst[5 * 3 * 3];
    struct eng_image img = {1, 1, src};
    assert_int_equal(eng_image_resize_linear(&img, 5, 3, dst, NULL), 0);
    for (int i = 0; i < 15; i++)
        assert_memory_equal(dst + 3 * i, src, 3);
}

/* Naive reference: OpenCV's formulas evaluated independently for every output byte. */
static uint8_t ref_resize_at(const struct eng_image *s, int dw, int dh, int dx, int dy, int c)
{
    double sx_scale = 1. / ((double)dw / s->width), sy_scale = 1. / ((double)dh / s->height);
    float fx = (float)((dx + 0.5) * sx_scale - 0.5), fy = (float)((dy + 0.5) * sy_scale - 0.5);
    int sx = (int)floorf(fx), sy = (int)floorf(fy);
    fx -= (float)sx;
    fy -= (float)sy;
    int single = 0;
    if (sx < 0)
        fx = 0, sx = 0;
    if (sx >= s->width - 1)
        fx = 0, sx = s->width - 1, single = 1;
    int a0 = (int)lrintf((1.f - fx) * 2048), a1 = (int)lrintf(fx * 2048);
    int b0 = (int)lrintf((1.f - fy) * 2048), b1 = (int)lrintf(fy * 2048);
    int h[2];
    for (int k = 0; k < 2; k++) {
        int y = sy + k < 0 ? 0 : sy + k >= s->height ? s->height - 1 : sy + k;
        const uint8_t *row = s->rgb + (size_t)y * s->width * 3;
        h[k] = single ? row[3 * sx + c] * 2048 : row[3 * sx + c] * a0 + row[3 * sx + 3 + c] * a1;
    }
    return (uint8_t)((((b0 * (h[0] >> 4)) >> 16) + ((b1 * (h[1] >> 4)) >> 16) + 2) >> 2);
}

static void assert_resize_matches_reference(const struct eng_image *img, int dw, int dh)
{
    uint8_t *dst = malloc((size_t)dw * dh * 3);
    assert_non_null(dst);
    assert_int_equal(eng_image_resize_linear(img, dw, dh, dst, NULL), 0);
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int c = 0; c < 3; c++)
                if (dst[3 * ((size_t)y * dw + x) + c] != ref_resize_at(img, dw, dh, x, y, c))
                    fail_msg("%dx%d -> %dx%d differs at (%d, %d, %d)", img->width, img->height, dw,
                             dh, x, y, c);
    free(dst);
}

/* Photo-sized cases: positions must be computed in double and rounded to float as OpenCV does,
 * which small sizes cannot tell from float arithmetic. */
static void test_image_resize_large_matches_naive_reference(void **state)
{
    (void)state;
    uint8_t *px = pattern_rgb(773, 512);
    struct eng_image img = {773, 512, px};
    assert_resize_matches_reference(&img, 1000, 700);
    assert_resize_matches_reference(&img, 333, 201);
    assert_resize_matches_reference(&img, 416, 416);
    free(px);
}

static void test_image_resize_matches_naive_reference(void **state)
{
    (void)state;
    uint32_t seed = 777;
    for (int iter = 0; iter < 120; iter++) {
        seed = seed * 1664525u + 1013904223u;
        int sw = 1 + (int)(seed >> 8) % 23, sh = 1 + (int)(seed >> 16) % 19;
        seed = seed * 1664525u + 1013904223u;
        int dw = 1 + (int)(seed >> 8) % 47, dh = 1 + (int)(seed >> 16) % 41;
        if ((dw == sw && dh == sh) || (2 * dw == sw && 2 * dh == sh))
            continue; /* copy and area shortcuts have their own tests */
        uint8_t *src = pattern_rgb(sw, sh);
        for (int i = 0; i < sw * sh * 3; i++)
            src[i] = (uint8_t)(src[i] ^ (seed >> (i % 24)));
        struct eng_image img = {sw, sh, src};
        assert_resize_matches_reference(&img, dw, dh);
        free(src);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Network input                                                                                  */

static void test_image_to_input_stretch_planar_rgb_scaled(void **state)
{
    (void)state;
    uint8_t src[6] = {0, 51, 255, 102, 153, 204};
    struct eng_image img = {2, 1, src};
    float dst[6];
    struct eng_letterbox map;
    assert_int_equal(eng_image_to_input(&img, 2, 1, 0, dst, &map, NULL), 0);
    const float k = (float)(1.0 / 255.0); /* blobFromImage's scalefactor product */
    static const int order[6] = {0, 3, 1, 4, 2, 5}; /* R0 R1 G0 G1 B0 B1 */
    for (int i = 0; i < 6; i++)
        assert_true(dst[i] == (float)src[order[i]] * k);
    assert_true(map.scale_x == 1.f && map.scale_y == 1.f && map.pad_x == 0.f && map.pad_y == 0.f);
}

static void test_image_to_input_letterbox_wide_pads_rows(void **state)
{
    (void)state;
    uint8_t *px = pattern_rgb(4, 2);
    struct eng_image img = {4, 2, px};
    float dst[3 * 4 * 4];
    struct eng_letterbox map;
    assert_int_equal(eng_image_to_input(&img, 4, 4, 1, dst, &map, NULL), 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                float v = dst[c * 16 + y * 4 + x];
                if (y == 0 || y == 3)
                    assert_true(v == 0.5f);
                else
                    assert_true(v == (float)px[3 * ((y - 1) * 4 + x) + c] * (float)(1.0 / 255.0));
            }
    assert_true(map.scale_x == 1.f && map.scale_y == 1.f && map.pad_x == 0.f && map.pad_y == 1.f);
    free(px);
}

static void test_image_to_input_letterbox_darknet_sizes_and_mapping(void **state)
{
    (void)state;
    struct eng_image img;
    struct eng_err err = {0};
    assert_int_equal(eng_image_load(SAMPLES "/dog.jpg", NULL, &img, NULL, &err), 0);
    float *dst = malloc(sizeof *dst * 3 * 416 * 416);
    assert_non_null(dst);
    struct eng_letterbox map;
    assert_int_equal(eng_image_to_input(&img, 416, 416, 1, dst, &map, &err), 0);
    /* darknet: 416/768 < 416/576, so new_w = 416, new_h = 576 * 416 / 768 = 312, pad_y = 52 */
    assert_true(map.pad_x == 0.f && map.pad_y == 52.f);
    assert_float_equal(map.scale_x, 416.0 / 768, 1e-7);
    assert_float_equal(map.scale_y, 312.0 / 576, 1e-7);
    uint8_t *small = malloc(416 * 312 * 3);
    assert_non_null(small);
    assert_int_equal(eng_image_resize_linear(&img, 416, 312, small, &err), 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 416; y++)
            for (int x = 0; x < 416; x++) {
                float v = dst[(c * 416 + y) * 416 + x];
                if (y < 52 || y >= 52 + 312)
                    assert_true(v == 0.5f);
                else
                    assert_true(v == (float)small[3 * ((y - 52) * 416 + x) + c] * (float)(1.0 / 255.0));
            }
    /* the net's last image pixel maps back to the original's last pixel, up to the scale */
    assert_float_equal((415 - map.pad_x) / map.scale_x, 766.15, 0.01);
    assert_float_equal((363 - map.pad_y) / map.scale_y, 574.15, 0.01);
    free(small);
    free(dst);
    eng_image_release(&img);

    uint8_t tall_px[2 * 4 * 3] = {0};
    struct eng_image tall = {2, 4, tall_px};
    float t[3 * 4 * 4];
    assert_int_equal(eng_image_to_input(&tall, 4, 4, 1, t, &map, NULL), 0);
    assert_true(map.pad_x == 1.f && map.pad_y == 0.f && map.scale_x == 1.f);
    assert_true(t[0] == 0.5f && t[1] == 0.f && t[3] == 0.5f);
}

static void test_image_to_input_letterbox_truncates_like_darknet(void **state)
{
    (void)state;
    /* 773x512 into 416x416: new_h = 512 * 416 / 773 = 275.5 -> 275 (integer division), pad 70 */
    uint8_t *px = pattern_rgb(773, 512);
    struct eng_image img = {773, 512, px};
    float *dst = malloc(sizeof *dst * 3 * 416 * 416);
    assert_non_null(dst);
    struct eng_letterbox map;
    assert_int_equal(eng_image_to_input(&img, 416, 416, 1, dst, &map, NULL), 0);
    assert_true(map.pad_x == 0.f && map.pad_y == 70.f);
    assert_true(map.scale_y == 275.f / 512);
    assert_true(dst[69 * 416] == 0.5f && dst[(70 + 275) * 416] == 0.5f);
    free(dst);
    free(px);
}

static void test_image_to_input_bad_net_size_invalid(void **state)
{
    (void)state;
    uint8_t px[3] = {0};
    struct eng_image img = {1, 1, px};
    float dst[3];
    struct eng_err err = {0};
    assert_int_equal(eng_image_to_input(&img, 0, 1, 0, dst, NULL, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_sample_jpegs_decode_with_stored_dims),
        cmocka_unit_test(test_image_load_matches_decode_of_same_bytes),
        cmocka_unit_test(test_image_sniff_magic_bytes_detected),
        cmocka_unit_test(test_image_zero_bytes_unsupported_empty),
        cmocka_unit_test(test_image_text_named_jpg_unsupported_with_start),
        cmocka_unit_test(test_image_gif_unsupported_named_cut_webp_invalid),
        cmocka_unit_test(test_image_load_missing_file_io_error_names_path),
        cmocka_unit_test(test_image_load_directory_io_error),
        cmocka_unit_test(test_image_load_empty_file_unsupported_names_path),
        cmocka_unit_test(test_image_release_zeroed_or_null_is_noop),
        cmocka_unit_test(test_image_png_rgb8_decodes_exact),
        cmocka_unit_test(test_image_png_16bit_keeps_high_byte),
        cmocka_unit_test(test_image_png_gray_expands_to_rgb),
        cmocka_unit_test(test_image_png_gray_alpha_alpha_dropped),
        cmocka_unit_test(test_image_png_rgba_alpha_dropped_not_composited),
        cmocka_unit_test(test_image_png_palette_trns_maps_colours_drops_alpha),
        cmocka_unit_test(test_image_png_interlaced_equals_pixels),
        cmocka_unit_test(test_image_png_exif_orientations_applied_exactly),
        cmocka_unit_test(test_image_png_exif_orientations_exact_across_tiles),
        cmocka_unit_test(test_image_png_truncated_invalid),
        cmocka_unit_test(test_image_png_huge_ihdr_too_large_before_alloc),
        cmocka_unit_test(test_image_png_zero_width_invalid),
        cmocka_unit_test(test_image_png_over_custom_limit_too_large),
        cmocka_unit_test(test_image_jpeg_truncated_invalid_not_gray),
        cmocka_unit_test(test_image_jpeg_over_limit_too_large),
        cmocka_unit_test(test_image_jpeg_huge_frame_too_large_before_alloc),
        cmocka_unit_test(test_image_jpeg_exif_orientations_rotate_both_byte_orders),
        cmocka_unit_test(test_image_jpeg_exif_rotation_semantics_match_spec),
        cmocka_unit_test(test_image_jpeg_hostile_exif_ignored_safely),
        cmocka_unit_test(test_image_jpeg_random_exif_never_crashes),
        cmocka_unit_test(test_image_jpeg_grayscale_gives_equal_channels),
        cmocka_unit_test(test_image_jpeg_cmyk_and_ycck_convert_like_opencv),
        cmocka_unit_test(test_image_jpeg_progressive_equals_baseline),
        cmocka_unit_test(test_image_resize_2x2_to_4x4_hand_computed),
        cmocka_unit_test(test_image_resize_exact_half_rounds_2x2_mean),
        cmocka_unit_test(test_image_resize_same_size_copies),
        cmocka_unit_test(test_image_resize_single_pixel_fills_everything),
        cmocka_unit_test(test_image_resize_matches_naive_reference),
        cmocka_unit_test(test_image_resize_large_matches_naive_reference),
        cmocka_unit_test(test_image_to_input_stretch_planar_rgb_scaled),
        cmocka_unit_test(test_image_to_input_letterbox_wide_pads_rows),
        cmocka_unit_test(test_image_to_input_letterbox_darknet_sizes_and_mapping),
        cmocka_unit_test(test_image_to_input_letterbox_truncates_like_darknet),
        cmocka_unit_test(test_image_to_input_bad_net_size_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
