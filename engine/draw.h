/* draw.h - annotate an image with labelled boxes and write it as PNG (for `visiond detect --draw`). */
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

/* Writes img as an 8-bit RGB PNG. Errors (cannot open, libpng failure) name the path. */
int eng_image_write_png(const struct eng_image *img, const char *path, struct eng_err *err);

#endif
