/* test_image_formats.c - WebP and HEIF (HEIC, AVIF) decoding: exact pixels where the format is lossless,
 * alpha dropped, the first frame of an animation, HEIF's irot applied once (an EXIF orientation inside
 * not a second time), the pixel limit checked from the header, corrupt and cut files refused as the
 * format named. Inputs are encoded here with libwebp and libheif's encoders; the byte-for-byte
 * comparisons with the reference decoders (dwebp, cv2, heif-convert) run live in
 * tests/ref/test_image_formats.py. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libheif/heif.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "image.h"

/* LeakSanitizer (ASan builds): libx265's encoder, which only this test uses to make HEIC files (the
 * daemon never encodes), loses 1168 bytes per x265_encoder_open, called by libheif's encode. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libx265.so\n";
}

/* A w x h RGB test card: gradients plus a bright corner block, so any rotation or flip shows. */
static uint8_t *card(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    assert_non_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + 3 * ((size_t)y * w + x);
            int corner = x < w / 4 && y < h / 4;
            q[0] = (uint8_t)(corner ? 250 : x * 255 / w);
            q[1] = (uint8_t)(corner ? 20 : y * 255 / h);
            q[2] = (uint8_t)((x * 7 + y * 3) & 255);
        }
    return p;
}

static struct eng_image decode_ok(const uint8_t *d, size_t n, int apply_exif, enum eng_image_format f,
                                  struct eng_decode_info *info)
{
    struct eng_decode_opts opts = {.apply_exif = apply_exif};
    struct eng_image img = {0};
    struct eng_err err = {0};
    if (eng_image_decode(d, n, &opts, &img, info, &err) != 0)
        fail_msg("decode failed: %s", err.msg);
    assert_int_equal(info->format, f);
    return img;
}

static void assert_fails(const uint8_t *d, size_t n, uint64_t max_pixels, enum eng_err_kind kind,
                         const char *needle)
{
    struct eng_decode_opts opts = {.max_pixels = max_pixels, .apply_exif = 1};
    struct eng_image img = {0};
    struct eng_err err = {0};
    assert_int_equal(eng_image_decode(d, n, &opts, &img, NULL, &err), -1);
    if (err.kind != kind || !strstr(err.msg, needle))
        fail_msg("kind %d message \"%s\", expected kind %d with \"%s\"", err.kind, err.msg, kind, needle);
    assert_null(img.rgb);
}

/* ---------------------------------------------------------------------------------------------- */
/* WebP                                                                                           */

static void test_webp_lossless_exact_and_sniffed(void **state)
{
    (void)state;
    const int w = 67, h = 45;
    uint8_t *px = card(w, h), *enc = NULL;
    size_t n = WebPEncodeLosslessRGB(px, w, h, w * 3, &enc);
    assert_true(n > 0);
    assert_int_equal(eng_image_sniff(enc, n), ENG_IMAGE_WEBP);
    struct eng_decode_info info;
    struct eng_image img = decode_ok(enc, n, 1, ENG_IMAGE_WEBP, &info);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.rgb, px, (size_t)w * h * 3);
    assert_int_equal(info.exif_orientation, 1);
    eng_image_release(&img);
    WebPFree(enc);
    free(px);
}

/* Alpha is dropped without compositing (as for PNG): fully transparent pixels keep their RGB. */
static void test_webp_alpha_dropped_rgb_kept(void **state)
{
    (void)state;
    const int w = 32, h = 20;
    uint8_t *rgb = card(w, h), *rgba = malloc((size_t)w * h * 4);
    assert_non_null(rgba);
    for (int i = 0; i < w * h; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i % 3 == 0 ? 0 : 128 + i % 100);
    }
    WebPConfig cfg;
    WebPPicture pic;
    WebPMemoryWriter wr;
    assert_true(WebPConfigInit(&cfg) && WebPPictureInit(&pic));
    cfg.lossless = 1;
    cfg.exact = 1; /* keep RGB under alpha 0 */
    pic.use_argb = 1;
    pic.width = w;
    pic.height = h;
    assert_true(WebPPictureImportRGBA(&pic, rgba, w * 4));
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    assert_true(WebPEncode(&cfg, &pic));
    struct eng_decode_info info;
    struct eng_image img = decode_ok(wr.mem, wr.size, 1, ENG_IMAGE_WEBP, &info);
    assert_memory_equal(img.rgb, rgb, (size_t)w * h * 3);
    eng_image_release(&img);
    WebPPictureFree(&pic);
    WebPMemoryWriterClear(&wr);
    free(rgba);
    free(rgb);
}

/* An animation of two lossless frames of different colours gives the first frame only. */
static void test_webp_animated_gives_first_frame(void **state)
{
    (void)state;
    const int w = 24, h = 16;
    WebPAnimEncoderOptions ao;
    WebPConfig cfg;
    assert_true(WebPAnimEncoderOptionsInit(&ao) && WebPConfigInit(&cfg));
    cfg.lossless = 1;
    WebPAnimEncoder *enc = WebPAnimEncoderNew(w, h, &ao);
    assert_non_null(enc);
    uint8_t *first = card(w, h);
    for (int f = 0; f < 2; f++) {
        WebPPicture pic;
        assert_true(WebPPictureInit(&pic));
        pic.use_argb = 1;
        pic.width = w;
        pic.height = h;
        uint8_t *px = f == 0 ? first : card(w, h);
        if (f == 1)
            for (int i = 0; i < w * h * 3; i++)
                px[i] = (uint8_t)(255 - px[i]);
        assert_true(WebPPictureImportRGB(&pic, px, w * 3));
        assert_true(WebPAnimEncoderAdd(enc, &pic, f * 100, &cfg));
        WebPPictureFree(&pic);
        if (f == 1)
            free(px);
    }
    assert_true(WebPAnimEncoderAdd(enc, NULL, 200, NULL));
    WebPData out;
    WebPDataInit(&out);
    assert_true(WebPAnimEncoderAssemble(enc, &out));
    struct eng_decode_info info;
    struct eng_image img = decode_ok(out.bytes, out.size, 1, ENG_IMAGE_WEBP, &info);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.rgb, first, (size_t)w * h * 3);
    eng_image_release(&img);
    WebPDataClear(&out);
    WebPAnimEncoderDelete(enc);
    free(first);
}

/* A VP8L header declaring 16384 x 16384 (268 MP, over the 64 MP default) is refused from the header;
 * a cut file and one with a corrupt bitstream are corrupt WebP. */
static void test_webp_limits_and_corruption(void **state)
{
    (void)state;
    const int w = 40, h = 30;
    uint8_t *px = card(w, h), *enc = NULL;
    size_t n = WebPEncodeLosslessRGB(px, w, h, w * 3, &enc);
    assert_true(n > 30);
    uint8_t *bad = malloc(n);
    assert_non_null(bad);
    /* VP8L: "VP8L" at 12, size at 16, signature 0x2f at 20, then 14-bit width-1 and height-1 */
    assert_memory_equal(enc + 12, "VP8L", 4);
    memcpy(bad, enc, n);
    uint32_t bits = (uint32_t)bad[21] | (uint32_t)bad[22] << 8 | (uint32_t)bad[23] << 16 |
                    (uint32_t)bad[24] << 24;
    bits = (bits & ~0x0fffffffu) | 0x3fffu | 0x3fffu << 14;
    for (int i = 0; i < 4; i++)
        bad[21 + i] = (uint8_t)(bits >> (8 * i));
    assert_fails(bad, n, 0, ENG_ERR_TOO_LARGE, "WebP image is 16384x16384");
    assert_fails(enc, n, 1000, ENG_ERR_TOO_LARGE, "over the limit of 1000 pixels");
    assert_fails(enc, n / 2, 0, ENG_ERR_INVALID, "WebP: ");
    memcpy(bad, enc, n);
    for (size_t i = 26; i < n; i++)
        bad[i] = (uint8_t)(bad[i] * 31 + 7);
    assert_fails(bad, n, 0, ENG_ERR_INVALID, "WebP: ");
    assert_fails((const uint8_t *)"RIFF\0\0\0\0WEBP", 12, 0, ENG_ERR_INVALID, "WebP: ");
    free(bad);
    WebPFree(enc);
    free(px);
}

/* An EXIF chunk (extended format, by libwebpmux) saying orientation 6 turns the image clockwise. */
static void test_webp_exif_orientation_applied(void **state)
{
    (void)state;
    const int w = 30, h = 20;
    uint8_t *px = card(w, h), *enc = NULL;
    size_t n = WebPEncodeLosslessRGB(px, w, h, w * 3, &enc);
    assert_true(n > 0);
    const uint8_t tiff[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0,
                            0, 0, 0, 0};
    WebPData in = {enc, n}, exif = {tiff, sizeof tiff}, out;
    WebPMux *mux = WebPMuxCreate(&in, 1);
    assert_non_null(mux);
    assert_int_equal(WebPMuxSetChunk(mux, "EXIF", &exif, 1), WEBP_MUX_OK);
    assert_int_equal(WebPMuxAssemble(mux, &out), WEBP_MUX_OK);
    struct eng_decode_info info;
    struct eng_image plain = decode_ok(enc, n, 0, ENG_IMAGE_WEBP, &info);
    struct eng_image rot = decode_ok(out.bytes, out.size, 1, ENG_IMAGE_WEBP, &info);
    assert_int_equal(info.exif_orientation, 6);
    assert_true(info.exif_rotated);
    assert_int_equal(rot.width, h);
    assert_int_equal(rot.height, w);
    for (int y = 0; y < rot.height; y++)
        for (int x = 0; x < rot.width; x++)
            assert_memory_equal(rot.rgb + 3 * ((size_t)y * rot.width + x),
                                plain.rgb + 3 * ((size_t)(plain.height - 1 - x) * plain.width + y), 3);
    eng_image_release(&plain);
    eng_image_release(&rot);
    WebPDataClear(&out);
    WebPMuxDelete(mux);
    WebPFree(enc);
    free(px);
}

/* ---------------------------------------------------------------------------------------------- */
/* HEIF                                                                                           */

static struct heif_error write_mem(struct heif_context *ctx, const void *data, size_t size, void *user)
{
    (void)ctx;
    WebPMemoryWriter *w = user; /* any growable buffer will do */
    struct heif_error ok = {heif_error_Ok, heif_suberror_Unspecified, "ok"};
    WebPPicture pic = {.custom_ptr = w};
    if (!WebPMemoryWrite(data, size, &pic))
        ok.code = heif_error_Encoding_error;
    return ok;
}

/* Encodes px as HEIC (or AVIF) at the highest quality, the coded image carrying an irot/imir for
 * `orientation` and, when exif_orientation is not 0, an EXIF block saying it too. */
static void heif_encode(const uint8_t *px, int w, int h, enum heif_compression_format codec,
                        int orientation, int exif_orientation, WebPMemoryWriter *out)
{
    struct heif_context *ctx = heif_context_alloc();
    struct heif_encoder *enc = NULL;
    struct heif_image *img = NULL;
    struct heif_image_handle *handle = NULL;
    assert_non_null(ctx);
    assert_int_equal(heif_context_get_encoder_for_format(ctx, codec, &enc).code, heif_error_Ok);
    heif_encoder_set_lossy_quality(enc, 90);
    assert_int_equal(heif_image_create(w, h, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &img).code,
                     heif_error_Ok);
    assert_int_equal(heif_image_add_plane(img, heif_channel_interleaved, w, h, 8).code, heif_error_Ok);
    int stride = 0;
    uint8_t *plane = heif_image_get_plane(img, heif_channel_interleaved, &stride);
    for (int y = 0; y < h; y++)
        memcpy(plane + (size_t)y * stride, px + (size_t)y * w * 3, (size_t)w * 3);
    struct heif_encoding_options *o = heif_encoding_options_alloc();
    o->image_orientation = (enum heif_orientation)orientation;
    assert_int_equal(heif_context_encode_image(ctx, img, enc, o, &handle).code, heif_error_Ok);
    if (exif_orientation) {
        /* a TIFF structure whose IFD0 holds Orientation, little-endian */
        uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                          (uint8_t)exif_orientation, 0, 0, 0, 0, 0, 0, 0};
        assert_int_equal(heif_context_add_exif_metadata(ctx, handle, tiff, (int)sizeof tiff).code,
                         heif_error_Ok);
    }
    struct heif_writer writer = {.writer_api_version = 1, .write = write_mem};
    WebPMemoryWriterInit(out);
    assert_int_equal(heif_context_write(ctx, &writer, out).code, heif_error_Ok);
    heif_encoding_options_free(o);
    heif_image_handle_release(handle);
    heif_image_release(img);
    heif_encoder_release(enc);
    heif_context_free(ctx);
}

/* The stored coordinates of upright pixel (x, y) for EXIF orientation 6 (90 degrees clockwise). */
static void assert_rotated_cw(const struct eng_image *plain, const struct eng_image *rot)
{
    assert_int_equal(rot->width, plain->height);
    assert_int_equal(rot->height, plain->width);
    for (int y = 0; y < rot->height; y++)
        for (int x = 0; x < rot->width; x++) {
            const uint8_t *a = rot->rgb + 3 * ((size_t)y * rot->width + x);
            const uint8_t *b = plain->rgb + 3 * ((size_t)(plain->height - 1 - x) * plain->width + y);
            if (memcmp(a, b, 3) != 0)
                fail_msg("pixel (%d,%d) differs from the stored image turned clockwise", x, y);
        }
}

static void heif_rotation_applied_once(enum heif_compression_format codec, enum eng_image_format f)
{
    const int w = 64, h = 48;
    uint8_t *px = card(w, h);
    WebPMemoryWriter plain_f, rot_f;
    heif_encode(px, w, h, codec, 1, 0, &plain_f);
    heif_encode(px, w, h, codec, 6, 6, &rot_f);
    assert_int_equal(eng_image_sniff(plain_f.mem, plain_f.size), f);
    struct eng_decode_info info;
    struct eng_image plain = decode_ok(plain_f.mem, plain_f.size, 1, f, &info);
    assert_int_equal(plain.width, w);
    assert_int_equal(plain.height, h);
    /* lossy, but close to the card: the corner is still where it was */
    assert_true(plain.rgb[0] > 200 && plain.rgb[1] < 80);
    for (int apply = 0; apply < 2; apply++) {
        struct eng_image rot = decode_ok(rot_f.mem, rot_f.size, apply, f, &info);
        assert_int_equal(info.exif_orientation, 6); /* found, reported ... */
        assert_true(info.container_oriented);
        assert_false(info.exif_rotated); /* ... and not applied on top of irot */
        assert_rotated_cw(&plain, &rot);
        eng_image_release(&rot);
    }
    eng_image_release(&plain);
    WebPMemoryWriterClear(&plain_f);
    WebPMemoryWriterClear(&rot_f);
    free(px);
}

static void test_heic_irot_applied_exif_not_twice(void **state)
{
    (void)state;
    heif_rotation_applied_once(heif_compression_HEVC, ENG_IMAGE_HEIC);
}

static void test_avif_irot_applied_exif_not_twice(void **state)
{
    (void)state;
    heif_rotation_applied_once(heif_compression_AV1, ENG_IMAGE_AVIF);
}

/* Pixel limit from the container's ispe, before decoding; cut and corrupted files are corrupt HEIC. */
static void test_heic_limits_and_corruption(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *px = card(w, h);
    WebPMemoryWriter f;
    heif_encode(px, w, h, heif_compression_HEVC, 1, 0, &f);
    assert_fails(f.mem, f.size, 1000, ENG_ERR_TOO_LARGE, "HEIC image is 64x48 (3072 pixels)");
    assert_fails(f.mem, f.size / 2, 0, ENG_ERR_INVALID, "HEIC: ");
    assert_fails(f.mem, 40, 0, ENG_ERR_INVALID, "HEIC: ");
    /* ispe declaring 60000 x 60000 */
    uint8_t *bad = malloc(f.size);
    assert_non_null(bad);
    memcpy(bad, f.mem, f.size);
    uint8_t *ispe = memmem(bad, f.size, "ispe", 4);
    assert_non_null(ispe);
    const uint8_t big[8] = {0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60};
    memcpy(ispe + 8, big, 8); /* after the full box's version and flags */
    struct eng_decode_opts opts = {.apply_exif = 1};
    struct eng_image img = {0};
    struct eng_err err = {0};
    assert_int_equal(eng_image_decode(bad, f.size, &opts, &img, NULL, &err), -1);
    if (err.kind != ENG_ERR_TOO_LARGE || !strstr(err.msg, "HEIC"))
        fail_msg("kind %d: %s", err.kind, err.msg);
    assert_null(img.rgb);
    free(bad);
    WebPMemoryWriterClear(&f);
    free(px);
}

/* A small file of fuzz/regressions/heif/ read into buf (4096 bytes); its length. */
static size_t read_heif_regression(const char *name, uint8_t buf[4096])
{
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz/regressions/heif/%s", VISIOND_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, 4096, f);
    fclose(f);
    assert_true(n > 100 && n < 4096);
    return n;
}

/* fuzz_heif's finding: a primary 'grid' item whose header says 6144x9488 (58 MP) while its ispe says
 * 231x23313 (5.4 MP); libheif sizes the buffer from the grid. The grid's size is checked first. */
static void test_heic_grid_larger_than_ispe_refused_before_decoding(void **state)
{
    (void)state;
    uint8_t buf[4096];
    const size_t n = read_heif_regression("grid-larger-than-ispe.heif", buf);
    assert_fails(buf, n, 40000000, ENG_ERR_TOO_LARGE, "HEIC image is 6144x9488 (58294272 pixels)");
    assert_fails(buf, n, 40000000, ENG_ERR_TOO_LARGE, "(its grid)");
}

/* fuzz_heif's finding: a primary 'iovl' overlay item whose ispe says 24x16 while its canvas makes
 * libheif allocate 872 MB before decoding anything. The overlay's size is checked first. */
static void test_heic_overlay_larger_than_ispe_refused_before_decoding(void **state)
{
    (void)state;
    uint8_t buf[4096];
    const size_t n = read_heif_regression("iovl-larger-than-ispe.heif", buf);
    assert_fails(buf, n, 40000000, ENG_ERR_TOO_LARGE, "(its overlay)");
}

/* The daemon's workers decode at once: four threads, each its own libheif context, give the pixels one
 * thread gives (TSan builds check the first-use plugin registration, heif_init once). */
struct decode_arg {
    const uint8_t *data;
    size_t size;
    struct eng_image img;
    int rc;
};

static void *decode_thread(void *p)
{
    struct decode_arg *a = p;
    const struct eng_decode_opts opts = {.apply_exif = 1};
    a->rc = eng_image_decode(a->data, a->size, &opts, &a->img, NULL, NULL);
    return NULL;
}

static void test_heif_concurrent_decodes_equal(void **state)
{
    (void)state;
    const int w = 64, h = 48;
    uint8_t *px = card(w, h);
    WebPMemoryWriter files[2];
    heif_encode(px, w, h, heif_compression_HEVC, 6, 0, &files[0]);
    heif_encode(px, w, h, heif_compression_AV1, 1, 0, &files[1]);
    for (int f = 0; f < 2; f++) {
        struct decode_arg args[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            args[i] = (struct decode_arg){.data = files[f].mem, .size = files[f].size};
            assert_int_equal(pthread_create(&t[i], NULL, decode_thread, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(args[i].rc, 0);
            assert_int_equal(args[i].img.width, args[0].img.width);
            assert_int_equal(args[i].img.height, args[0].img.height);
            assert_memory_equal(args[i].img.rgb, args[0].img.rgb, (size_t)w * h * 3);
        }
        for (int i = 0; i < 4; i++)
            eng_image_release(&args[i].img);
        WebPMemoryWriterClear(&files[f]);
    }
    free(px);
}

static void test_heif_sniffing_by_brand(void **state)
{
    (void)state;
    static const uint8_t heic[] = "\0\0\0\x18" "ftypheic\0\0\0\0mif1heic";
    static const uint8_t avif[] = "\0\0\0\x1c" "ftypavif\0\0\0\0mif1miafMA1B";
    static const uint8_t mif1_avif[] = "\0\0\0\x18" "ftypmif1\0\0\0\0mif1avif";
    static const uint8_t mp4[] = "\0\0\0\x18" "ftypisom\0\0\0\0isomiso2";
    assert_int_equal(eng_image_sniff(heic, sizeof heic - 1), ENG_IMAGE_HEIC);
    assert_int_equal(eng_image_sniff(avif, sizeof avif - 1), ENG_IMAGE_AVIF);
    assert_int_equal(eng_image_sniff(mif1_avif, sizeof mif1_avif - 1), ENG_IMAGE_AVIF);
    assert_int_equal(eng_image_sniff(mp4, sizeof mp4 - 1), ENG_IMAGE_UNKNOWN);
    assert_fails(mp4, sizeof mp4 - 1, 0, ENG_ERR_UNSUPPORTED, "PNG, JPEG, WebP, HEIC, AVIF");
    assert_string_equal(eng_image_format_name(ENG_IMAGE_AVIF), "AVIF");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webp_lossless_exact_and_sniffed),
        cmocka_unit_test(test_webp_alpha_dropped_rgb_kept),
        cmocka_unit_test(test_webp_animated_gives_first_frame),
        cmocka_unit_test(test_webp_limits_and_corruption),
        cmocka_unit_test(test_webp_exif_orientation_applied),
        cmocka_unit_test(test_heic_irot_applied_exif_not_twice),
        cmocka_unit_test(test_avif_irot_applied_exif_not_twice),
        cmocka_unit_test(test_heic_limits_and_corruption),
        cmocka_unit_test(test_heic_grid_larger_than_ispe_refused_before_decoding),
        cmocka_unit_test(test_heic_overlay_larger_than_ispe_refused_before_decoding),
        cmocka_unit_test(test_heif_concurrent_decodes_equal),
        cmocka_unit_test(test_heif_sniffing_by_brand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
