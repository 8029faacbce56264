/* image.c - PNG/JPEG decoding, EXIF orientation, OpenCV-exact linear resize, network input.
 *
 * Design note. Both libpng and libjpeg report errors by longjmp. Everything the error path must clean
 * up lives in a job struct owned by the caller, and the function that calls setjmp does nothing but
 * call one helper, so no local variable is live across a longjmp (no `volatile`, no clobber warnings).
 * Declared dimensions are checked against the pixel limit before any pixel buffer exists: for PNG by
 * reading IHDR ourselves before libpng starts, for JPEG right after jpeg_read_header.
 * Decoding mirrors OpenCV's imread(IMREAD_COLOR) (same libraries, same transforms: 16-bit PNG keeps the
 * high byte, alpha is dropped, CMYK uses OpenCV's formula) so our pixels equal cv2's.
 * The resize reproduces OpenCV 4.6 modules/imgproc/src/resize.cpp: the generic INTER_LINEAR path with
 * 11-bit coefficients and its exact-2x shortcut to INTER_AREA; tests/ref/test_image_opencv.py checks
 * it against cv2.resize byte for byte. */
#include "image.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define IMG_MSG_MAX 200

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ---------------------------------------------------------------------------------------------- */
/* Format sniffing                                                                                */

enum eng_image_format eng_image_sniff(const uint8_t *data, size_t size)
{
    if (!data)
        return ENG_IMAGE_UNKNOWN;
    if (size >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0)
        return ENG_IMAGE_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return ENG_IMAGE_JPEG;
    return ENG_IMAGE_UNKNOWN;
}

/* Names formats people upload by mistake, so the error tells them what they sent. */
static const char *sniff_other(const uint8_t *d, size_t n)
{
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "GIF";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return "WebP";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return "TIFF";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0)
        return "HEIF/AVIF";
    return NULL;
}

static int fail_unsupported(const uint8_t *d, size_t n, const char *where, struct eng_err *err)
{
    static const char digits[] = "0123456789abcdef";
    char hex[8 * 3] = "", text[8 + 1] = "";
    size_t k = n < 8 ? n : 8;
    for (size_t i = 0; i < k; i++) {
        hex[3 * i] = digits[d[i] >> 4];
        hex[3 * i + 1] = digits[d[i] & 15];
        hex[3 * i + 2] = i + 1 < k ? ' ' : '\0';
        text[i] = d[i] >= 0x20 && d[i] < 0x7f && d[i] != '"' ? (char)d[i] : '.';
    }
    text[k] = '\0';
    const char *name = sniff_other(d, n);
    return eng_err_set(err, ENG_ERR_UNSUPPORTED, where,
                       "not a PNG or JPEG image (starts with %s \"%s\")%s%s", hex, text,
                       name ? "; looks like " : "", name ? name : "");
}

/* Checks declared dimensions. Returns ENG_ERR_NONE, or the kind of problem with a message in msg. */
static enum eng_err_kind dims_problem(const char *fmt, uint64_t w, uint64_t h, uint64_t max_pixels,
                                      char *msg, size_t size)
{
    unsigned long long uw = w, uh = h;
    if (w == 0 || h == 0) {
        snprintf(msg, size, "%s declares an empty image (%llux%llu)", fmt, uw, uh);
        return ENG_ERR_INVALID;
    }
    /* rows are indexed with int and 3 * width must fit an int stride */
    if (w > INT_MAX / 3 || h > INT_MAX || w * h > max_pixels || w * h > SIZE_MAX / 3) {
        snprintf(msg, size, "%s image is %llux%llu (%llu pixels), over the limit of %llu pixels", fmt,
                 uw, uh, uw * uh, (unsigned long long)max_pixels);
        return ENG_ERR_TOO_LARGE;
    }
    return ENG_ERR_NONE;
}

/* ---------------------------------------------------------------------------------------------- */
/* EXIF orientation                                                                               */

/* A TIFF structure (EXIF payload) with its byte order. Offsets are 64-bit so that 32-bit offsets
 * from the file plus entry arithmetic cannot wrap. */
struct tiff {
    const uint8_t *p;
    uint64_t n;
    int big_endian;
};

static int tiff_u16(const struct tiff *t, uint64_t off, unsigned *out)
{
    if (off > t->n || t->n - off < 2)
        return -1;
    const uint8_t *b = t->p + off;
    *out = t->big_endian ? (unsigned)(b[0] << 8 | b[1]) : (unsigned)(b[1] << 8 | b[0]);
    return 0;
}

static int tiff_u32(const struct tiff *t, uint64_t off, uint32_t *out)
{
    unsigned a, b;
    if (tiff_u16(t, off, &a) || tiff_u16(t, off + 2, &b))
        return -1;
    *out = t->big_endian ? (uint32_t)a << 16 | b : (uint32_t)b << 16 | a;
    return 0;
}

/* Returns the orientation (1..8) tag 0x0112 of IFD0, or 1 when absent or malformed. Only IFD0 is read
 * and no offset is followed but the one to IFD0, so hostile offsets can neither loop nor overrun. */
static int exif_orientation_tiff(const uint8_t *p, size_t n)
{
    struct tiff t = {p, n, 0};
    unsigned magic, count;
    uint32_t ifd;
    if (n < 8)
        return 1;
    if (p[0] == 'M' && p[1] == 'M')
        t.big_endian = 1;
    else if (p[0] != 'I' || p[1] != 'I')
        return 1;
    if (tiff_u16(&t, 2, &magic) || magic != 42 || tiff_u32(&t, 4, &ifd) || tiff_u16(&t, ifd, &count))
        return 1;
    for (unsigned i = 0; i < count; i++) {
        uint64_t e = (uint64_t)ifd + 2 + 12ull * i;
        unsigned tag, type, value;
        uint32_t values;
        if (tiff_u16(&t, e, &tag) || tiff_u16(&t, e + 2, &type) || tiff_u32(&t, e + 4, &values))
            return 1;
        if (tag != 0x0112)
            continue;
        /* SHORT, one value, stored in the first two bytes of the value field */
        if (type != 3 || values != 1 || tiff_u16(&t, e + 8, &value))
            return 1;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

/* Stored coordinates of upright pixel (x, y) for an EXIF orientation (the TIFF 6.0 meanings). */
static void orient_source(int o, int x, int y, int sw, int sh, int *sx, int *sy)
{
    switch (o) {
    case 2: *sx = sw - 1 - x; *sy = y; break;          /* mirrored left-right */
    case 3: *sx = sw - 1 - x; *sy = sh - 1 - y; break; /* rotated 180 */
    case 4: *sx = x; *sy = sh - 1 - y; break;          /* mirrored top-bottom */
    case 5: *sx = y; *sy = x; break;                   /* transposed */
    case 6: *sx = y; *sy = sh - 1 - x; break;          /* needs 90 degrees clockwise */
    case 7: *sx = sw - 1 - y; *sy = sh - 1 - x; break; /* transverse */
    case 8: *sx = sw - 1 - y; *sy = x; break;          /* needs 90 degrees counter-clockwise */
    default: *sx = x; *sy = y; break;
    }
}

/* Side of the square tiles image_orient walks. The orientations that swap the axes read the source
 * down its columns; walking whole output rows, a 40 MP image costs a cache and TLB miss per pixel
 * (2.4 s for a 1 KB JPEG declaring 8000x5000, found by fuzz/fuzz_jpeg; 0.5 s in tiles). A tile's
 * 64 x 64 x 3 bytes of output, and the source lines it reads, stay in L1/L2. */
#define ORIENT_TILE 64

/* Copies the output rectangle [x0, x1) x [y0, y1) from src; base and steps as in image_orient. */
static void orient_tile(uint8_t *out, int dw, const uint8_t *src, ptrdiff_t base, ptrdiff_t step_x,
                        ptrdiff_t step_y, int x0, int x1, int y0, int y1)
{
    for (int y = y0; y < y1; y++) {
        ptrdiff_t s = base + step_y * y + step_x * x0;
        uint8_t *d = out + ((size_t)y * dw + (size_t)x0) * 3;
        for (int x = x0; x < x1; x++, s += step_x, d += 3) {
            const uint8_t *p = src + 3 * s;
            d[0] = p[0];
            d[1] = p[1];
            d[2] = p[2];
        }
    }
}

/* Rewrites img upright. The mapping is affine, so it is evaluated once for the first pixel and the
 * two unit steps instead of per pixel. */
static int image_orient(struct eng_image *img, int o, const char *where, struct eng_err *err)
{
    int sw = img->width, sh = img->height;
    int dw = o >= 5 ? sh : sw, dh = o >= 5 ? sw : sh;
    int x0, y0, x1, y1, x2, y2;
    orient_source(o, 0, 0, sw, sh, &x0, &y0);
    orient_source(o, 1, 0, sw, sh, &x1, &y1);
    orient_source(o, 0, 1, sw, sh, &x2, &y2);
    ptrdiff_t base = (ptrdiff_t)y0 * sw + x0;
    ptrdiff_t step_x = (ptrdiff_t)(y1 - y0) * sw + (x1 - x0);
    ptrdiff_t step_y = (ptrdiff_t)(y2 - y0) * sw + (x2 - x0);

    uint8_t *out = malloc((size_t)dw * dh * 3);
    if (!out)
        return eng_err_set(err, ENG_ERR_NOMEM, where, "out of memory rotating a %dx%d image", sw, sh);
    for (int ty = 0; ty < dh; ty += ORIENT_TILE)
        for (int tx = 0; tx < dw; tx += ORIENT_TILE)
            orient_tile(out, dw, img->rgb, base, step_x, step_y, tx,
                        dw - tx < ORIENT_TILE ? dw : tx + ORIENT_TILE, ty,
                        dh - ty < ORIENT_TILE ? dh : ty + ORIENT_TILE);
    free(img->rgb);
    img->rgb = out;
    img->width = dw;
    img->height = dh;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* PNG                                                                                            */

struct png_job {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, pos;
    uint8_t *rgb;
    png_bytep *rows;
    int width, height, orientation;
    enum eng_err_kind kind;
    char msg[IMG_MSG_MAX];
};

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_job *job = png_get_error_ptr(png);
    if (job->kind == ENG_ERR_NONE)
        job->kind = strstr(msg, "out of memory") || strstr(msg, "Out of memory") ? ENG_ERR_NOMEM
                                                                                 : ENG_ERR_INVALID;
    if (!job->msg[0])
        snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* libpng's default prints to stderr; a library must not, and warnings do not stop decoding. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    struct png_job *job = png_get_io_ptr(png);
    if (n > job->size - job->pos)
        png_error(png, "truncated PNG data");
    memcpy(out, job->data + job->pos, n);
    job->pos += n;
}

/* Same transforms as OpenCV's PngDecoder for an 8-bit 3-channel Mat: strip 16 to 8 bits (high byte),
 * drop alpha without compositing, expand palette and gray to RGB, de-interlace. */
static void png_set_transforms(png_structp png, int depth, int color_type)
{
    if (depth == 16)
        png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (!(color_type & PNG_COLOR_MASK_COLOR)) {
        if (depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_interlace_handling(png);
}

/* All libpng calls; any error longjmps back to png_run. */
static void png_steps(struct png_job *job)
{
    png_uint_32 w, h;
    int depth, color_type;
    png_set_read_fn(job->png, job, png_read_mem);
    /* our pixel limit (checked before) is the rule, not libpng's default 1e6 per side */
    png_set_user_limits(job->png, 0x7fffffff, 0x7fffffff);
    png_read_info(job->png, job->info);
    png_get_IHDR(job->png, job->info, &w, &h, &depth, &color_type, NULL, NULL, NULL);
    if ((int)w != job->width || (int)h != job->height)
        png_error(job->png, "IHDR changed while reading");
    png_set_transforms(job->png, depth, color_type);
    png_read_update_info(job->png, job->info);
    if (png_get_rowbytes(job->png, job->info) != (size_t)w * 3)
        png_error(job->png, "unexpected row layout after conversion to RGB");

    job->rgb = malloc((size_t)w * h * 3);
    job->rows = malloc((size_t)h * sizeof *job->rows);
    if (!job->rgb || !job->rows) {
        job->kind = ENG_ERR_NOMEM;
        png_error(job->png, "out of memory for pixels");
    }
    for (png_uint_32 y = 0; y < h; y++)
        job->rows[y] = job->rgb + (size_t)y * w * 3;
    png_read_image(job->png, job->rows);
    /* eXIf may follow the image data, so read the trailing chunks into the same info */
    png_read_end(job->png, job->info);

    png_uint_32 exif_len = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(job->png, job->info, &exif_len, &exif) && exif)
        job->orientation = exif_orientation_tiff(exif, exif_len);
}

static int png_run(struct png_job *job)
{
    if (setjmp(png_jmpbuf(job->png)))
        return -1;
    png_steps(job);
    return 0;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                      int *orientation, const char *where, struct eng_err *err)
{
    char msg[IMG_MSG_MAX];
    /* IHDR must be the first chunk: signature, length, "IHDR", width, height */
    if (size < 8 + 8 + 13 + 4 || memcmp(data + 12, "IHDR", 4) != 0)
        return eng_err_set(err, ENG_ERR_INVALID, where, "PNG: truncated or missing IHDR chunk");
    uint32_t w = be32(data + 16), h = be32(data + 20);
    enum eng_err_kind kind = dims_problem("PNG", w, h, max_pixels, msg, sizeof msg);
    if (kind != ENG_ERR_NONE)
        return eng_err_set(err, kind, where, "%s", msg);

    struct png_job job = {.data = data, .size = size, .width = (int)w, .height = (int)h,
                          .orientation = 1};
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
    if (job.png)
        job.info = png_create_info_struct(job.png);
    if (!job.png || !job.info) {
        png_destroy_read_struct(job.png ? &job.png : NULL, NULL, NULL);
        return eng_err_set(err, ENG_ERR_NOMEM, where, "PNG: out of memory creating the decoder");
    }
    int rc = png_run(&job);
    png_destroy_read_struct(&job.png, &job.info, NULL);
    free(job.rows);
    if (rc != 0) {
        free(job.rgb);
        return eng_err_set(err, job.kind, where, "PNG: %s", job.msg);
    }
    *out = (struct eng_image){.width = job.width, .height = job.height, .rgb = job.rgb};
    *orientation = job.orientation;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* JPEG                                                                                           */

struct jpeg_job {
    struct jpeg_error_mgr pub; /* first member: libjpeg gives callbacks a pointer to it */
    struct jpeg_decompress_struct cinfo;
    jmp_buf jmp;
    const uint8_t *data;
    size_t size;
    uint64_t max_pixels;
    uint8_t *rgb;
    uint8_t *cmyk_row;
    int width, height, orientation;
    enum eng_err_kind kind;
    char msg[JMSG_LENGTH_MAX];
};

/* Keeps libjpeg's message for our error instead of printing it to stderr. */
static void jpeg_on_output(j_common_ptr c)
{
    struct jpeg_job *job = (struct jpeg_job *)c->err;
    (*c->err->format_message)(c, job->msg);
}

static void jpeg_on_error(j_common_ptr c)
{
    struct jpeg_job *job = (struct jpeg_job *)c->err;
    /* A frame header over libjpeg's own 65500-pixel side limit is refused in jpeg_read_header, before
     * our max_pixels check runs: it is an image too large, like one over max_pixels, not a corrupt one. */
    const int code = c->err->msg_code;
    job->kind = code == JERR_OUT_OF_MEMORY ? ENG_ERR_NOMEM
                : code == JERR_IMAGE_TOO_BIG ? ENG_ERR_TOO_LARGE : ENG_ERR_INVALID;
    (*c->err->output_message)(c);
    longjmp(job->jmp, 1);
}

/* A truncated file only warns (JWRN_JPEG_EOF) and libjpeg pads the rest with gray; we refuse it.
 * Other corrupt-data warnings are tolerated, as OpenCV does. */
static void jpeg_on_emit(j_common_ptr c, int level)
{
    if (level >= 0)
        return;
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        struct jpeg_job *job = (struct jpeg_job *)c->err;
        job->kind = ENG_ERR_INVALID;
        (*c->err->output_message)(c);
        longjmp(job->jmp, 1);
    }
    c->err->num_warnings++;
}

static int jpeg_exif_orientation(jpeg_saved_marker_ptr m)
{
    for (; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0)
            return exif_orientation_tiff(m->data + 6, m->data_length - 6);
    return 1;
}

/* OpenCV's icvCvt_CMYK2BGR_8u_C4C3R, on the (Adobe-inverted) CMYK libjpeg delivers. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int width)
{
    for (int x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int k = cmyk[3];
        for (int c = 0; c < 3; c++)
            rgb[c] = (uint8_t)(k - ((255 - cmyk[c]) * k >> 8));
    }
}

#define JPEG_ROWS_AT_ONCE 16 /* at least libjpeg's rec_outbuf_height (at most 4, for 4x subsampling) */

/* Fails from inside jpeg_steps with our own message (same path as a libjpeg error). */
static void jpeg_fail(struct jpeg_job *job, enum eng_err_kind kind, const char *msg)
{
    job->kind = kind;
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    longjmp(job->jmp, 1);
}

/* All libjpeg calls, with libjpeg's default decompression settings (JDCT_ISLOW, fancy upsampling):
 * OpenCV's imread uses the same library the same way, so the pixels match cv2's. */
static void jpeg_steps(struct jpeg_job *job)
{
    struct jpeg_decompress_struct *ci = &job->cinfo;
    char msg[IMG_MSG_MAX];
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, job->data, (unsigned long)job->size);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK)
        jpeg_fail(job, ENG_ERR_INVALID, "no image in JPEG data");
    enum eng_err_kind kind =
        dims_problem("JPEG", ci->image_width, ci->image_height, job->max_pixels, msg, sizeof msg);
    if (kind != ENG_ERR_NONE)
        jpeg_fail(job, kind, msg);
    job->orientation = jpeg_exif_orientation(ci->marker_list);

    int cmyk = ci->num_components == 4; /* CMYK or YCCK: libjpeg converts YCCK to CMYK */
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height;
    if (w != (int)ci->image_width || h != (int)ci->image_height ||
        ci->output_components != (cmyk ? 4 : 3))
        jpeg_fail(job, ENG_ERR_INVALID, "unexpected output layout from libjpeg");

    job->rgb = malloc((size_t)w * h * 3);
    job->cmyk_row = cmyk ? malloc((size_t)w * 4) : NULL;
    if (!job->rgb || (cmyk && !job->cmyk_row))
        jpeg_fail(job, ENG_ERR_NOMEM, "out of memory for pixels");
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = job->rgb + (size_t)ci->output_scanline * w * 3;
        if (cmyk) {
            JSAMPROW row = job->cmyk_row;
            if (jpeg_read_scanlines(ci, &row, 1) != 1)
                jpeg_fail(job, ENG_ERR_INVALID, "decoder made no progress");
            cmyk_to_rgb(job->cmyk_row, dst, w);
            continue;
        }
        /* A whole row group at once, straight into the image: asked for one row of a 2x2-subsampled
         * JPEG, libjpeg upsamples two into a spare buffer and copies them out one by one. */
        JSAMPROW rows[JPEG_ROWS_AT_ONCE];
        const JDIMENSION left = ci->output_height - ci->output_scanline;
        const JDIMENSION want = left < JPEG_ROWS_AT_ONCE ? left : JPEG_ROWS_AT_ONCE;
        for (JDIMENSION i = 0; i < want; i++)
            rows[i] = dst + (size_t)i * w * 3;
        if (jpeg_read_scanlines(ci, rows, want) == 0)
            jpeg_fail(job, ENG_ERR_INVALID, "decoder made no progress");
    }
    jpeg_finish_decompress(ci);
    job->width = w;
    job->height = h;
}

static int jpeg_run(struct jpeg_job *job)
{
    if (setjmp(job->jmp))
        return -1;
    jpeg_steps(job);
    return 0;
}

static int jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                       int *orientation, const char *where, struct eng_err *err)
{
    if (size > ULONG_MAX) /* jpeg_mem_src takes unsigned long */
        return eng_err_set(err, ENG_ERR_TOO_LARGE, where, "JPEG data is too large (%zu bytes)", size);
    /* zeroed, so jpeg_destroy_decompress is safe even if jpeg_create_decompress never ran */
    struct jpeg_job *job = calloc(1, sizeof *job);
    if (!job)
        return eng_err_set(err, ENG_ERR_NOMEM, where, "JPEG: out of memory creating the decoder");
    job->data = data;
    job->size = size;
    job->max_pixels = max_pixels;
    job->orientation = 1;
    job->cinfo.err = jpeg_std_error(&job->pub);
    job->pub.error_exit = jpeg_on_error;
    job->pub.output_message = jpeg_on_output;
    job->pub.emit_message = jpeg_on_emit;

    int rc = jpeg_run(job);
    jpeg_destroy_decompress(&job->cinfo);
    free(job->cmyk_row);
    if (rc != 0) {
        free(job->rgb);
        rc = eng_err_set(err, job->kind, where, "JPEG: %s", job->msg);
    } else {
        *out = (struct eng_image){.width = job->width, .height = job->height, .rgb = job->rgb};
        *orientation = job->orientation;
    }
    free(job);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Decode entry points                                                                            */

static int decode_named(const uint8_t *data, size_t size, const struct eng_decode_opts *opts,
                        struct eng_image *out, struct eng_decode_info *info, const char *where,
                        struct eng_err *err)
{
    struct eng_decode_info scratch;
    assert(out);
    *out = (struct eng_image){0};
    if (!info)
        info = &scratch;
    *info = (struct eng_decode_info){.format = ENG_IMAGE_UNKNOWN, .exif_orientation = 1};
    if (!data || size == 0)
        return eng_err_set(err, ENG_ERR_UNSUPPORTED, where, "empty image");

    uint64_t max_pixels = opts && opts->max_pixels ? opts->max_pixels : ENG_IMAGE_DEFAULT_MAX_PIXELS;
    int orientation = 1, rc;
    info->format = eng_image_sniff(data, size);
    if (info->format == ENG_IMAGE_PNG)
        rc = png_decode(data, size, max_pixels, out, &orientation, where, err);
    else if (info->format == ENG_IMAGE_JPEG)
        rc = jpeg_decode(data, size, max_pixels, out, &orientation, where, err);
    else
        return fail_unsupported(data, size, where, err);
    if (rc != 0)
        return rc;

    info->exif_orientation = orientation;
    info->stored_width = out->width;
    info->stored_height = out->height;
    if (opts && opts->apply_exif && orientation != 1) {
        if (image_orient(out, orientation, where, err) != 0) {
            eng_image_release(out);
            return -1;
        }
        info->exif_rotated = 1;
    }
    return 0;
}

int eng_image_decode(const uint8_t *data, size_t size, const struct eng_decode_opts *opts,
                     struct eng_image *out, struct eng_decode_info *info, struct eng_err *err)
{
    return decode_named(data, size, opts, out, info, NULL, err);
}

/* Reads a whole regular file. On success *buf is new (caller frees); empty files give size 0. */
static int read_file(const char *path, uint8_t **buf, size_t *size, struct eng_err *err)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open: %s", strerror(errno));
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return eng_err_set(err, ENG_ERR_IO, path, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) { /* a directory opens fine and fails only at fread */
        fclose(f);
        return eng_err_set(err, ENG_ERR_IO, path, "not a regular file");
    }
    if ((unsigned long long)st.st_size > SIZE_MAX) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_TOO_LARGE, path, "file too large to read into memory");
    }
    size_t n = (size_t)st.st_size;
    uint8_t *data = malloc(n ? n : 1);
    if (!data) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory reading %zu bytes", n);
    }
    size_t got = n ? fread(data, 1, n, f) : 0;
    int failed = got != n;
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        free(data);
        return eng_err_set(err, ENG_ERR_IO, path, "read %zu of %zu bytes: %s", got, n,
                           e ? strerror(e) : "file shrank while reading");
    }
    *buf = data;
    *size = n;
    return 0;
}

int eng_image_load(const char *path, const struct eng_decode_opts *opts, struct eng_image *out,
                   struct eng_decode_info *info, struct eng_err *err)
{
    uint8_t *data = NULL;
    size_t size = 0;
    assert(out && path);
    *out = (struct eng_image){0};
    if (info)
        *info = (struct eng_decode_info){.format = ENG_IMAGE_UNKNOWN, .exif_orientation = 1};
    if (read_file(path, &data, &size, err) != 0)
        return -1;
    int rc = decode_named(data, size, opts, out, info, path, err);
    free(data);
    return rc;
}

void eng_image_release(struct eng_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    *img = (struct eng_image){0};
}

/* ---------------------------------------------------------------------------------------------- */
/* Resize: OpenCV 4.6 cv::resize(INTER_LINEAR) on CV_8UC3, bit for bit                           */

#define RESIZE_COEF_BITS 11 /* INTER_RESIZE_COEF_BITS */
#define RESIZE_COEF_ONE (1 << RESIZE_COEF_BITS)

/* saturate_cast<short>(c * INTER_RESIZE_COEF_SCALE): float product, rounded half to even. */
static short coef_fixed(float c)
{
    long v = lrintf(c * (float)RESIZE_COEF_ONE);
    return (short)(v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v);
}

/* OpenCV maps destination index d to the source with half-pixel centres, in double, then rounds to
 * float: fx = (float)((d + 0.5) * scale - 0.5). Doing it in float instead changes ~0.07% of the bytes
 * of photo-sized resizes; a fused multiply-add would too (-std=c11 keeps GCC from contracting). */
static float resize_src_pos(int d, double scale)
{
    return (float)((d + 0.5) * scale - 0.5);
}

struct resize_plan {
    int sw, sh, dw, dh;
    int xmax;     /* columns >= xmax take the last source column unweighted (right border) */
    int *xofs;    /* per column: left source column, clamped as OpenCV does */
    short *alpha; /* per column: weights of xofs and xofs + 1 */
    int *yofs;    /* per row: upper source row, NOT clamped (rows are clamped when fetched) */
    short *beta;  /* per row: weights of the two rows */
    int *rows[2]; /* horizontal-pass cache: 3 * dw ints each */
    int row_tag[2];
};

/* Columns: for sx < 0 OpenCV sets fx = 0, sx = 0; for sx >= sw - 1, fx = 0, sx = sw - 1, and from the
 * first such column on (xmax) it copies S[sx] * ONE instead of interpolating. */
static void plan_columns(struct resize_plan *p, double scale)
{
    p->xmax = p->dw;
    for (int dx = 0; dx < p->dw; dx++) {
        float fx = resize_src_pos(dx, scale);
        int sx = (int)floorf(fx);
        fx -= (float)sx;
        if (sx < 0) {
            fx = 0.f;
            sx = 0;
        }
        if (sx + 1 >= p->sw) {
            if (p->xmax > dx)
                p->xmax = dx;
            if (sx >= p->sw - 1) {
                fx = 0.f;
                sx = p->sw - 1;
            }
        }
        p->xofs[dx] = sx;
        p->alpha[2 * dx] = coef_fixed(1.f - fx);
        p->alpha[2 * dx + 1] = coef_fixed(fx);
    }
}

/* Rows: no clamping of the weights; out-of-range rows are replaced by the border row when fetched
 * (OpenCV's clip(sy, 0, ssize.height)), so both weights apply to the same row at the borders. */
static void plan_rows(struct resize_plan *p, double scale)
{
    for (int dy = 0; dy < p->dh; dy++) {
        float fy = resize_src_pos(dy, scale);
        int sy = (int)floorf(fy);
        fy -= (float)sy;
        p->yofs[dy] = sy;
        p->beta[2 * dy] = coef_fixed(1.f - fy);
        p->beta[2 * dy + 1] = coef_fixed(fy);
    }
}

/* HResizeLinear<uchar, int, short, 2048>: one source row to 3 * dw fixed-point values. */
static void resize_row_h(const struct resize_plan *p, const uint8_t *src, int *out)
{
    int dx = 0;
    for (; dx < p->xmax; dx++) {
        const uint8_t *s = src + 3 * p->xofs[dx];
        int a0 = p->alpha[2 * dx], a1 = p->alpha[2 * dx + 1];
        for (int c = 0; c < 3; c++)
            out[3 * dx + c] = s[c] * a0 + s[c + 3] * a1;
    }
    for (; dx < p->dw; dx++) {
        const uint8_t *s = src + 3 * p->xofs[dx];
        for (int c = 0; c < 3; c++)
            out[3 * dx + c] = s[c] * RESIZE_COEF_ONE;
    }
}

/* Horizontal pass of source row r (clamped), reusing the cached rows; `keep` is a row still needed. */
static const int *resize_fetch(struct resize_plan *p, const struct eng_image *src, int r, int keep)
{
    r = r < 0 ? 0 : r >= p->sh ? p->sh - 1 : r;
    for (int i = 0; i < 2; i++)
        if (p->row_tag[i] == r)
            return p->rows[i];
    int slot = p->row_tag[0] == keep ? 1 : 0;
    resize_row_h(p, src->rgb + (size_t)r * p->sw * 3, p->rows[slot]);
    p->row_tag[slot] = r;
    return p->rows[slot];
}

/* VResizeLinear<uchar, int, short, FixedPtCast<int, uchar, 22>>: OpenCV drops 4 bits before the
 * multiply and 16 after it (matching its SIMD v_mul_hi), then rounds the last 2 bits. */
static void resize_row_v(const int *r0, const int *r1, int b0, int b1, int n, uint8_t *dst)
{
    for (int i = 0; i < n; i++)
        dst[i] = (uint8_t)((((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2);
}

static void resize_plan_free(struct resize_plan *p)
{
    free(p->xofs);
    free(p->alpha);
    free(p->yofs);
    free(p->beta);
    free(p->rows[0]);
    free(p->rows[1]);
}

static int resize_generic(const struct eng_image *src, int dw, int dh, double scale_x, double scale_y,
                          uint8_t *dst, struct eng_err *err)
{
    struct resize_plan p = {.sw = src->width, .sh = src->height, .dw = dw, .dh = dh,
                            .row_tag = {-1, -1}};
    p.xofs = malloc((size_t)dw * sizeof *p.xofs);
    p.alpha = malloc((size_t)dw * 2 * sizeof *p.alpha);
    p.yofs = malloc((size_t)dh * sizeof *p.yofs);
    p.beta = malloc((size_t)dh * 2 * sizeof *p.beta);
    p.rows[0] = malloc((size_t)dw * 3 * sizeof *p.rows[0]);
    p.rows[1] = malloc((size_t)dw * 3 * sizeof *p.rows[1]);
    if (!p.xofs || !p.alpha || !p.yofs || !p.beta || !p.rows[0] || !p.rows[1]) {
        resize_plan_free(&p);
        return eng_err_set(err, ENG_ERR_NOMEM, NULL, "out of memory resizing to %dx%d", dw, dh);
    }
    plan_columns(&p, scale_x);
    plan_rows(&p, scale_y);
    for (int dy = 0; dy < dh; dy++) {
        int r0 = p.yofs[dy];
        int r0c = r0 < 0 ? 0 : r0 >= p.sh ? p.sh - 1 : r0;
        const int *a = resize_fetch(&p, src, r0, -1);
        const int *b = resize_fetch(&p, src, r0 + 1, r0c);
        resize_row_v(a, b, p.beta[2 * dy], p.beta[2 * dy + 1], dw * 3, dst + (size_t)dy * dw * 3);
    }
    resize_plan_free(&p);
    return 0;
}

/* OpenCV switches INTER_LINEAR to INTER_AREA for an exact 2x downscale on both axes; its fast area
 * path for 2x2 blocks is (a + b + c + d + 2) >> 2. The generic path with weights 1024/1024 gives the
 * same bytes at ordinary sizes; taking OpenCV's branch keeps that true at any width, and is cheaper. */
static void resize_half(const struct eng_image *src, int dw, int dh, uint8_t *dst)
{
    size_t sstride = (size_t)src->width * 3;
    for (int dy = 0; dy < dh; dy++) {
        const uint8_t *s0 = src->rgb + 2 * (size_t)dy * sstride, *s1 = s0 + sstride;
        uint8_t *d = dst + (size_t)dy * dw * 3;
        for (int i = 0; i < dw * 3; i++) {
            int j = (i / 3) * 6 + i % 3;
            d[i] = (uint8_t)((s0[j] + s0[j + 3] + s1[j] + s1[j + 3] + 2) >> 2);
        }
    }
}

int eng_image_resize_linear(const struct eng_image *src, int dst_w, int dst_h, uint8_t *dst,
                            struct eng_err *err)
{
    assert(src && src->rgb && src->width > 0 && src->height > 0 && dst);
    assert(dst_w > 0 && dst_h > 0 && dst_w <= INT_MAX / 3);
    if (dst_w == src->width && dst_h == src->height) { /* cv::resize copies */
        memcpy(dst, src->rgb, (size_t)dst_w * dst_h * 3);
        return 0;
    }
    /* the same double arithmetic as cv::resize / hal::resize */
    double inv_x = (double)dst_w / src->width, inv_y = (double)dst_h / src->height;
    double scale_x = 1. / inv_x, scale_y = 1. / inv_y;
    double iscale_x = nearbyint(scale_x), iscale_y = nearbyint(scale_y);
    int area_fast = fabs(scale_x - iscale_x) < DBL_EPSILON && fabs(scale_y - iscale_y) < DBL_EPSILON;
    if (area_fast && iscale_x == 2 && iscale_y == 2) {
        resize_half(src, dst_w, dst_h, dst);
        return 0;
    }
    return resize_generic(src, dst_w, dst_h, scale_x, scale_y, dst, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Network input                                                                                  */

/* darknet's letterbox_image: compare the ratios in float, then integer division for the other side. */
static void letterbox_size(int w, int h, int net_w, int net_h, int *new_w, int *new_h)
{
    if ((float)net_w / w < (float)net_h / h) {
        *new_w = net_w;
        *new_h = (int)((int64_t)h * net_w / w);
    } else {
        *new_h = net_h;
        *new_w = (int)((int64_t)w * net_h / h);
    }
    /* extreme aspect ratios would round a side to 0, which darknet does not survive either */
    if (*new_w < 1)
        *new_w = 1;
    if (*new_h < 1)
        *new_h = 1;
}

int eng_image_to_input(const struct eng_image *img, int net_w, int net_h, int letterbox, float *dst,
                       struct eng_letterbox *map, struct eng_err *err)
{
    assert(img && img->rgb && img->width > 0 && img->height > 0 && dst);
    if (net_w <= 0 || net_h <= 0 || net_w > INT_MAX / 3)
        return eng_err_set(err, ENG_ERR_INVALID, NULL, "bad network input size %dx%d", net_w, net_h);
    int new_w = net_w, new_h = net_h;
    if (letterbox)
        letterbox_size(img->width, img->height, net_w, net_h, &new_w, &new_h);
    uint8_t *pix = malloc((size_t)new_w * new_h * 3);
    if (!pix)
        return eng_err_set(err, ENG_ERR_NOMEM, NULL, "out of memory for a %dx%d input", new_w, new_h);
    if (eng_image_resize_linear(img, new_w, new_h, pix, err) != 0) {
        free(pix);
        return -1;
    }

    size_t plane = (size_t)net_w * net_h;
    int pad_x = (net_w - new_w) / 2, pad_y = (net_h - new_h) / 2;
    if (letterbox)
        for (size_t i = 0; i < 3 * plane; i++)
            dst[i] = 0.5f;
    /* pixel * (float)(1/255.) is what blobFromImage computes (convertTo, then *= scalefactor);
     * pixel / 255.f differs in the last bit for about half the values */
    const float k = (float)(1.0 / 255.0);
    for (int y = 0; y < new_h; y++) {
        const uint8_t *s = pix + (size_t)y * new_w * 3;
        float *d = dst + (size_t)(y + pad_y) * net_w + pad_x;
        for (int x = 0; x < new_w; x++)
            for (int c = 0; c < 3; c++)
                d[c * plane + x] = (float)s[3 * x + c] * k;
    }
    free(pix);
    if (map)
        *map = (struct eng_letterbox){.scale_x = (float)new_w / img->width,
                                      .scale_y = (float)new_h / img->height,
                                      .pad_x = (float)pad_x,
                                      .pad_y = (float)pad_y};
    return 0;
}
