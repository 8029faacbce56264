/* image_jpeg.c - JPEG decoding through libjpeg(-turbo), as OpenCV's imread(IMREAD_COLOR) does it.
 *
 * libjpeg reports errors by longjmp; as in image_png.c, all the error path frees lives in a job struct
 * and the function calling setjmp only calls one helper. The declared size is checked right after
 * jpeg_read_header, before any pixel buffer; a truncated file is refused (libjpeg would pad it with
 * gray); CMYK uses OpenCV's formula, so the pixels equal cv2's. */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image_int.h"

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
            return eng_exif_orientation_tiff(m->data + 6, m->data_length - 6);
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
    char msg[ENG_IMG_MSG_MAX];
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, job->data, (unsigned long)job->size);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK)
        jpeg_fail(job, ENG_ERR_INVALID, "no image in JPEG data");
    enum eng_err_kind kind =
        eng_image_dims_problem("JPEG", ci->image_width, ci->image_height, job->max_pixels, msg, sizeof msg);
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

int eng_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err)
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
        *dec = (struct eng_decoded){.orientation = job->orientation};
    }
    free(job);
    return rc;
}

