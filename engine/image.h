/* image.h - decode photos (PNG, JPEG, WebP, HEIC, AVIF) into upright RGB8 and turn them into network
 * input.
 *
 * Decoding sniffs the format from the bytes, checks the declared dimensions against a pixel limit before
 * any pixel buffer is allocated, applies EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) when asked,
 * and never aborts on corrupt input: library errors come back as ENG_ERR_INVALID with the format's name
 * and the library's message. HEIF (HEIC, AVIF) files are turned upright by their own irot/imir
 * properties, always; an EXIF orientation inside them is reported but not applied a second time.
 * Animated WebP gives its first frame.
 * Resizing follows OpenCV's cv::resize(INTER_LINEAR) on 8-bit images bit for bit (half-pixel centres,
 * 11-bit fixed-point coefficients), so our input tensors equal cv2.dnn.blobFromImage's. */
#ifndef ENG_IMAGE_H
#define ENG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "eng_err.h"

/* Interleaved RGB, 8 bits per channel, rows packed (stride = 3 * width). */
struct eng_image {
    int width;
    int height;
    uint8_t *rgb; /* owned by the image; freed by eng_image_release() */
};

enum eng_image_format {
    ENG_IMAGE_UNKNOWN = 0,
    ENG_IMAGE_PNG,
    ENG_IMAGE_JPEG,
    ENG_IMAGE_WEBP,
    ENG_IMAGE_HEIC, /* HEIF with HEVC (or only the structural brands mif1/msf1) */
    ENG_IMAGE_AVIF, /* HEIF with AV1 */
};

/* The accepted formats, as error messages list them. */
#define ENG_IMAGE_FORMATS "PNG, JPEG, WebP, HEIC, AVIF"

struct eng_decode_opts {
    uint64_t max_pixels; /* width * height above this is ENG_ERR_TOO_LARGE; 0 means the default */
    int apply_exif;      /* nonzero: rotate/flip to the upright orientation EXIF declares */
};

#define ENG_IMAGE_DEFAULT_MAX_PIXELS (64ull * 1024 * 1024)

struct eng_decode_info {
    enum eng_image_format format;
    int exif_orientation; /* 1..8 as found in the file (1 if none) */
    int exif_rotated;     /* nonzero if the pixels were rotated or flipped to apply it */
    int container_oriented; /* HEIF: irot/imir applied by the decoder, the EXIF value left alone */
    int stored_width;     /* dimensions as stored in the file, before orientation */
    int stored_height;
};

/* Sniffs the format from the first bytes (not from a file name or content type). */
enum eng_image_format eng_image_sniff(const uint8_t *data, size_t size);

/* "PNG", "JPEG", "WebP", "HEIC", "AVIF" or "unknown"; a static string. */
const char *eng_image_format_name(enum eng_image_format f);

/* Decodes an image held in memory, in any format eng_image_sniff knows. On success *out owns a new pixel buffer (caller calls
 * eng_image_release). `opts` and `info` may be NULL. Thread-safe. */
int eng_image_decode(const uint8_t *data, size_t size, const struct eng_decode_opts *opts,
                     struct eng_image *out, struct eng_decode_info *info, struct eng_err *err);

/* Reads a whole file and decodes it; the file name is the error's place. */
int eng_image_load(const char *path, const struct eng_decode_opts *opts, struct eng_image *out,
                   struct eng_decode_info *info, struct eng_err *err);

/* Frees the pixels and zeroes *img. Safe on a zeroed image. */
void eng_image_release(struct eng_image *img);

/* Resizes RGB8 src to dst_w x dst_h into dst (3 * dst_w * dst_h bytes, caller-owned), exactly as
 * cv::resize(src, dst, Size(dst_w, dst_h), 0, 0, INTER_LINEAR). Returns -1 only on allocation failure. */
int eng_image_resize_linear(const struct eng_image *src, int dst_w, int dst_h, uint8_t *dst,
                            struct eng_err *err);

/* How network coordinates map back to the original image:
 *   x_image = (x_net_pixels - pad_x) / scale_x, same for y. */
struct eng_letterbox {
    float scale_x, scale_y;
    float pad_x, pad_y;
};

/* Fills dst (planar CHW float, 3 x net_h x net_w, caller-owned) with the image resized to the network
 * input, channels in RGB order, values scaled to [0,1] (pixel / 255).
 * letterbox == 0: stretch to net_w x net_h (what cv2.dnn.blobFromImage(..., crop=False) does).
 * letterbox != 0: keep the aspect ratio, centre it, fill the rest with 0.5 (darknet's letterbox).
 * *map (if not NULL) receives the coordinate mapping. */
int eng_image_to_input(const struct eng_image *img, int net_w, int net_h, int letterbox, float *dst,
                       struct eng_letterbox *map, struct eng_err *err);

#endif
