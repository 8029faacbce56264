/* image_int.h - what engine/image*.c and engine/exif.c share; not for callers outside engine/.
 *
 * Each decoder (image_png.c, image_jpeg.c, image_webp.c, image_heif.c) takes the whole file in memory,
 * checks the declared dimensions with eng_image_dims_problem before it allocates any pixel buffer, and
 * on success gives an RGB8 image the caller owns. *orientation receives the EXIF orientation found in
 * the file (1..8, 1 if none); *applied is set when the container has already turned the pixels upright
 * (HEIF's irot/imir), so image.c must not apply the EXIF value a second time. Errors carry `where`. */
#ifndef ENG_IMAGE_INT_H
#define ENG_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "eng_err.h"
#include "image.h"

#define ENG_IMG_MSG_MAX 200

/* Checks declared dimensions. Returns ENG_ERR_NONE, or the kind of problem with a message in msg. */
enum eng_err_kind eng_image_dims_problem(const char *fmt, uint64_t w, uint64_t h, uint64_t max_pixels,
                                         char *msg, size_t size);

/* Orientation tag 0x0112 of IFD0 of a TIFF structure (an EXIF payload): 1..8, or 1 when absent or
 * malformed (exif.c). */
int eng_exif_orientation_tiff(const uint8_t *p, size_t n);

/* Rewrites img upright for EXIF orientation o (2..8); on failure img is unchanged (exif.c). */
int eng_image_orient(struct eng_image *img, int o, const char *where, struct eng_err *err);

struct eng_decoded {
    int orientation; /* EXIF orientation found in the file, 1..8 */
    int applied;     /* nonzero: the container's own transforms already made the pixels upright */
};

/* The output size of a HEIF file's primary item when it is a 'grid' or an 'iovl' overlay
 * (image_heif_grid.c): ENG_HEIF_GRID or ENG_HEIF_OVERLAY with *w, *h; 0 when it is neither or the boxes
 * cannot be read (libheif then decides). */
enum { ENG_HEIF_GRID = 1, ENG_HEIF_OVERLAY = 2 };
int eng_heif_grid_size(const uint8_t *data, size_t size, uint64_t *w, uint64_t *h);

int eng_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                   struct eng_decoded *dec, const char *where, struct eng_err *err);
int eng_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err);
int eng_webp_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err);
int eng_heif_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err);

#endif
