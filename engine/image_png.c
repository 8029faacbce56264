/* image_png.c - PNG decoding through libpng, as OpenCV's imread(IMREAD_COLOR) does it.
 *
 * libpng reports errors by longjmp. Everything the error path must clean up lives in a job struct owned
 * by the caller, and the function that calls setjmp does nothing but call one helper, so no local
 * variable is live across a longjmp (no `volatile`, no clobber warnings). Declared dimensions are
 * checked against the pixel limit by reading IHDR ourselves before libpng starts. Same transforms as
 * OpenCV: 16-bit keeps the high byte, alpha is dropped, palette and gray expand to RGB. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_int.h"

struct png_job {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, pos;
    uint8_t *rgb;
    png_bytep *rows;
    int width, height, orientation;
    enum eng_err_kind kind;
    char msg[ENG_IMG_MSG_MAX];
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
        job->orientation = eng_exif_orientation_tiff(exif, exif_len);
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

int eng_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                   struct eng_decoded *dec, const char *where, struct eng_err *err)
{
    char msg[ENG_IMG_MSG_MAX];
    /* IHDR must be the first chunk: signature, length, "IHDR", width, height */
    if (size < 8 + 8 + 13 + 4 || memcmp(data + 12, "IHDR", 4) != 0)
        return eng_err_set(err, ENG_ERR_INVALID, where, "PNG: truncated or missing IHDR chunk");
    uint32_t w = be32(data + 16), h = be32(data + 20);
    enum eng_err_kind kind = eng_image_dims_problem("PNG", w, h, max_pixels, msg, sizeof msg);
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
    *dec = (struct eng_decoded){.orientation = job.orientation};
    return 0;
}

