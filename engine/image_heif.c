/* image_heif.c - HEIF decoding through libheif: HEIC (HEVC, libde265) and AVIF (AV1, dav1d or aom).
 *
 * The primary image's size is read from the container (ispe, after irot) and checked against the pixel
 * limit before libheif decodes anything. libheif applies the container's own transforms (clap, irot,
 * imir) while decoding, as heif-convert does; HEIF says those are authoritative, so an EXIF orientation
 * stored in the file is reported (eng_decoded.orientation) but marked as already handled. Pixels come
 * as libheif's 8-bit interleaved RGB (alpha, if any, is not decoded), the same call heif-convert makes
 * for an image without alpha, so the bytes equal its PNG output. Tiles decode in the calling thread
 * (engine threads are the workers' own). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libheif/heif.h>

#include "image_int.h"

#define HEIF_EXIF_MAX (1 << 20) /* EXIF blocks larger than this are not read for the orientation */

static int heif_fail(struct heif_error e, const char *fmt, const char *what, const char *where,
                     struct eng_err *err)
{
    enum eng_err_kind kind = ENG_ERR_INVALID;
    /* libheif files its own size limits (per side, per box) under Memory_allocation_error */
    if (e.subcode == heif_suberror_Security_limit_exceeded)
        kind = ENG_ERR_TOO_LARGE;
    else if (e.code == heif_error_Memory_allocation_error)
        kind = ENG_ERR_NOMEM;
    else if (e.code == heif_error_Unsupported_filetype || e.code == heif_error_Unsupported_feature)
        kind = ENG_ERR_UNSUPPORTED;
    /* libheif's messages may end in a newline; our messages are one line */
    const char *m = e.message ? e.message : "error";
    int len = (int)strcspn(m, "\r\n");
    return eng_err_set(err, kind, where, "%s: %.*s (%s)", fmt, len, m, what);
}

/* A HEIF Exif item: a 4-byte big-endian offset, then that many bytes before the TIFF header (usually
 * "Exif\0\0"). Returns 1..8, 1 when absent or malformed. */
static int heif_exif_orientation(const struct heif_image_handle *h)
{
    heif_item_id id;
    if (heif_image_handle_get_list_of_metadata_block_IDs(h, "Exif", &id, 1) < 1)
        return 1;
    size_t n = heif_image_handle_get_metadata_size(h, id);
    if (n < 4 || n > HEIF_EXIF_MAX)
        return 1;
    uint8_t *buf = malloc(n);
    int o = 1;
    if (buf && heif_image_handle_get_metadata(h, id, buf).code == heif_error_Ok) {
        uint32_t skip = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
        if (skip <= n - 4)
            o = eng_exif_orientation_tiff(buf + 4 + skip, n - 4 - skip);
    }
    free(buf);
    return o;
}

/* libheif registers its codec plugins on first use; heif_init does it once, before any worker can race
 * to it. Never undone: the plugins live as long as the process. */
static pthread_once_t heif_once = PTHREAD_ONCE_INIT;

static void heif_init_once(void)
{
    (void)heif_init(NULL);
}

struct heif_job {
    struct heif_context *ctx;
    struct heif_image_handle *handle;
    struct heif_decoding_options *opts;
    struct heif_image *img;
};

static void heif_job_free(struct heif_job *j)
{
    heif_image_release(j->img);
    heif_decoding_options_free(j->opts);
    heif_image_handle_release(j->handle);
    heif_context_free(j->ctx);
}

/* Copies libheif's interleaved plane (rows may be padded) into a packed buffer of our own. */
static int heif_copy(struct heif_job *j, const char *fmt, struct eng_image *out, const char *where,
                     struct eng_err *err)
{
    int stride = 0;
    const uint8_t *p = heif_image_get_plane_readonly(j->img, heif_channel_interleaved, &stride);
    int w = heif_image_get_width(j->img, heif_channel_interleaved);
    int h = heif_image_get_height(j->img, heif_channel_interleaved);
    if (!p || w <= 0 || h <= 0 || stride < 3 * w ||
        heif_image_get_bits_per_pixel(j->img, heif_channel_interleaved) != 24)
        return eng_err_set(err, ENG_ERR_INVALID, where, "%s: unexpected pixel layout from libheif", fmt);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return eng_err_set(err, ENG_ERR_NOMEM, where, "%s: out of memory for %dx%d pixels", fmt, w, h);
    for (int y = 0; y < h; y++)
        memcpy(rgb + (size_t)y * w * 3, p + (size_t)y * stride, (size_t)w * 3);
    *out = (struct eng_image){.width = w, .height = h, .rgb = rgb};
    return 0;
}

int eng_heif_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err)
{
    const char *fmt = eng_image_format_name(eng_image_sniff(data, size));
    char msg[ENG_IMG_MSG_MAX];
    struct heif_job j = {0};
    int rc = -1;
    pthread_once(&heif_once, heif_init_once);
    j.ctx = heif_context_alloc();
    if (!j.ctx)
        return eng_err_set(err, ENG_ERR_NOMEM, where, "%s: out of memory creating the decoder", fmt);
    heif_context_set_max_decoding_threads(j.ctx, 0);
    struct heif_error e = heif_context_read_from_memory_without_copy(j.ctx, data, size, NULL);
    if (e.code != heif_error_Ok) {
        heif_fail(e, fmt, "reading the container", where, err);
        goto done;
    }
    e = heif_context_get_primary_image_handle(j.ctx, &j.handle);
    if (e.code != heif_error_Ok) {
        heif_fail(e, fmt, "finding the primary image", where, err);
        goto done;
    }
    /* ispe's size: the product is what the pixel buffers will hold, before and after irot */
    int w = heif_image_handle_get_ispe_width(j.handle), h = heif_image_handle_get_ispe_height(j.handle);
    enum eng_err_kind kind = eng_image_dims_problem(fmt, (uint64_t)(w < 0 ? 0 : w),
                                                    (uint64_t)(h < 0 ? 0 : h), max_pixels, msg, sizeof msg);
    if (kind != ENG_ERR_NONE) {
        eng_err_set(err, kind, where, "%s", msg);
        goto done;
    }
    /* A grid's or an overlay's output size comes from its item, not ispe (image_heif_grid.c says why) */
    uint64_t gw, gh;
    const int derived = eng_heif_grid_size(data, size, &gw, &gh);
    if (derived) {
        kind = eng_image_dims_problem(fmt, gw, gh, max_pixels, msg, sizeof msg);
        if (kind != ENG_ERR_NONE) {
            eng_err_set(err, kind, where, "%s (its %s)", msg, derived == ENG_HEIF_GRID ? "grid" : "overlay");
            goto done;
        }
    }
    j.opts = heif_decoding_options_alloc();
    if (!j.opts) {
        eng_err_set(err, ENG_ERR_NOMEM, where, "%s: out of memory creating the decoder", fmt);
        goto done;
    }
    j.opts->ignore_transformations = 0;
    /* AV1 through libaom, not libheif's preferred dav1d: libheif 1.15's dav1d plugin leaks its input
     * buffer when dav1d refuses the data (40 bytes per hostile file, heif-convert too; found by
     * fuzz/fuzz_heif). AV1 decoding is normative, so the pixels are the same (test_image_formats.py
     * compares with heif-convert, which uses dav1d). */
    if (eng_image_sniff(data, size) == ENG_IMAGE_AVIF)
        j.opts->decoder_id = "aom";
    e = heif_decode_image(j.handle, &j.img, heif_colorspace_RGB, heif_chroma_interleaved_RGB, j.opts);
    if (e.code != heif_error_Ok) {
        heif_fail(e, fmt, "decoding the pixels", where, err);
        goto done;
    }
    /* and the decoded size is checked like the declared one (clap crops, irot swaps: never larger) */
    w = heif_image_get_width(j.img, heif_channel_interleaved);
    h = heif_image_get_height(j.img, heif_channel_interleaved);
    kind = eng_image_dims_problem(fmt, (uint64_t)(w < 0 ? 0 : w), (uint64_t)(h < 0 ? 0 : h), max_pixels,
                                  msg, sizeof msg);
    if (kind != ENG_ERR_NONE) {
        eng_err_set(err, kind, where, "%s (decoded)", msg);
        goto done;
    }
    if (heif_copy(&j, fmt, out, where, err) != 0)
        goto done;
    *dec = (struct eng_decoded){.orientation = heif_exif_orientation(j.handle), .applied = 1};
    rc = 0;
done:
    heif_job_free(&j);
    return rc;
}
