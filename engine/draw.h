/* draw.h - annotate an image with labelled boxes and points, and write it as PNG (for `visiond detect
 * --draw` and `visiond faces --draw`). */
#ifndef ENG_DRAW_H
#define ENG_DRAW_H

#include "eng_err.h"
#include "image.h"

struct eng_draw_box {
    float x1, y1, x2, y2; /* pixels of img; clipped to the image when drawn */
    int class_id;         /* picks a stable colour */
    const char *label;    /* text drawn above the box, e.g. "dog 0.87"; may be NULL */
};

/* Draws each box (2-pixel outline scaled with image size) and its label on a filled background
 * strip, in place. Text uses a built-in bitmap font; characters outside printable ASCII become '?'. */
void eng_draw_boxes(struct eng_image *img, const struct eng_draw_box *boxes, int count);

/* Draws a filled square on each point (count (x, y) pairs in xy, pixels of img), in the colour boxes of
 * class_id get; the square's side is 3 pixels, more on large images (2 * max(1, shorter side / 500)
 * + 1), centred on the pixel the point rounds to. Clipped to the image; NaN points are skipped.
 * In place; for landmarks. */
void eng_draw_points(struct eng_image *img, const float *xy, int count, int class_id);

/* Writes img as an 8-bit RGB PNG. Errors (cannot open, libpng failure) name the path. */
int eng_image_write_png(const struct eng_image *img, const char *path, struct eng_err *err);

#endif
