/* draw.c - labelled boxes drawn into an RGB8 image, and a PNG writer (for `visiond detect --draw`).
 *
 * Geometry: a box covers the pixel columns lround(x1)..lround(x2) and rows lround(y1)..lround(y2),
 * inclusive (reversed corners are swapped). The outline is drawn inward from those edges, so it never
 * paints outside the box itself. Every pixel write goes through fill_rect(), which clips to the image;
 * nothing else touches the pixel buffer. Points are small filled squares. */
#include "draw.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

struct rgb {
    uint8_t r, g, b;
};

/* Inclusive pixel rectangle; may lie partly or wholly outside the image. */
struct rect {
    int x0, y0, x1, y1;
};

/* Sides longer than this are not drawn on: it keeps every coordinate we compute (image size plus
 * outline and label margins) inside int. Such an image would need gigabytes; none can be decoded. */
#define DRAW_MAX_SIDE (INT_MAX / 4)

/* 20 colours chosen to be far apart from each other and from black and white (Trubetskoy's list). */
static const struct rgb palette[] = {
    {230, 25, 75},   {60, 180, 75},   {255, 225, 25},  {67, 99, 216},   {245, 130, 49},
    {145, 30, 180},  {66, 212, 244},  {240, 50, 230},  {191, 239, 69},  {250, 190, 212},
    {70, 153, 144},  {220, 190, 255}, {154, 99, 36},   {255, 250, 200}, {128, 0, 0},
    {170, 255, 195}, {128, 128, 0},   {255, 216, 177}, {0, 0, 117},     {169, 169, 169},
};
#define PALETTE_SIZE ((int)(sizeof palette / sizeof palette[0]))

/* Classic 5x7 font for ASCII 32..126: five column bytes per glyph, bit 0 is the top row. */
#define FONT_FIRST 32
#define FONT_LAST 126
#define GLYPH_W 5
#define GLYPH_H 7
#define CELL_W (GLYPH_W + 1) /* one blank column between glyphs */
static const uint8_t font5x7[FONT_LAST - FONT_FIRST + 1][GLYPH_W] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, /* ' ' */
    {0x00, 0x00, 0x5F, 0x00, 0x00}, /* ! */
    {0x00, 0x07, 0x00, 0x07, 0x00}, /* " */
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, /* # */
    {0x24, 0x2A, 0x7F, 0x2A, 0x12}, /* $ */
    {0x23, 0x13, 0x08, 0x64, 0x62}, /* % */
    {0x36, 0x49, 0x55, 0x22, 0x50}, /* & */
    {0x00, 0x05, 0x03, 0x00, 0x00}, /* ' */
    {0x00, 0x1C, 0x22, 0x41, 0x00}, /* ( */
    {0x00, 0x41, 0x22, 0x1C, 0x00}, /* ) */
    {0x14, 0x08, 0x3E, 0x08, 0x14}, /* * */
    {0x08, 0x08, 0x3E, 0x08, 0x08}, /* + */
    {0x00, 0x50, 0x30, 0x00, 0x00}, /* , */
    {0x08, 0x08, 0x08, 0x08, 0x08}, /* - */
    {0x00, 0x60, 0x60, 0x00, 0x00}, /* . */
    {0x20, 0x10, 0x08, 0x04, 0x02}, /* / */
    {0x3E, 0x51, 0x49, 0x45, 0x3E}, /* 0 */
    {0x00, 0x42, 0x7F, 0x40, 0x00}, /* 1 */
    {0x42, 0x61, 0x51, 0x49, 0x46}, /* 2 */
    {0x21, 0x41, 0x45, 0x4B, 0x31}, /* 3 */
    {0x18, 0x14, 0x12, 0x7F, 0x10}, /* 4 */
    {0x27, 0x45, 0x45, 0x45, 0x39}, /* 5 */
    {0x3C, 0x4A, 0x49, 0x49, 0x30}, /* 6 */
    {0x01, 0x71, 0x09, 0x05, 0x03}, /* 7 */
    {0x36, 0x49, 0x49, 0x49, 0x36}, /* 8 */
    {0x06, 0x49, 0x49, 0x29, 0x1E}, /* 9 */
    {0x00, 0x36, 0x36, 0x00, 0x00}, /* : */
    {0x00, 0x56, 0x36, 0x00, 0x00}, /* ; */
    {0x08, 0x14, 0x22, 0x41, 0x00}, /* < */
    {0x14, 0x14, 0x14, 0x14, 0x14}, /* = */
    {0x00, 0x41, 0x22, 0x14, 0x08}, /* > */
    {0x02, 0x01, 0x51, 0x09, 0x06}, /* ? */
    {0x32, 0x49, 0x79, 0x41, 0x3E}, /* @ */
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, /* A */
    {0x7F, 0x49, 0x49, 0x49, 0x36}, /* B */
    {0x3E, 0x41, 0x41, 0x41, 0x22}, /* C */
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, /* D */
    {0x7F, 0x49, 0x49, 0x49, 0x41}, /* E */
    {0x7F, 0x09, 0x09, 0x09, 0x01}, /* F */
    {0x3E, 0x41, 0x49, 0x49, 0x7A}, /* G */
    {0x7F, 0x08, 0x08, 0x08, 0x7F}, /* H */
    {0x00, 0x41, 0x7F, 0x41, 0x00}, /* I */
    {0x20, 0x40, 0x41, 0x3F, 0x01}, /* J */
    {0x7F, 0x08, 0x14, 0x22, 0x41}, /* K */
    {0x7F, 0x40, 0x40, 0x40, 0x40}, /* L */
    {0x7F, 0x02, 0x0C, 0x02, 0x7F}, /* M */
    {0x7F, 0x04, 0x08, 0x10, 0x7F}, /* N */
    {0x3E, 0x41, 0x41, 0x41, 0x3E}, /* O */
    {0x7F, 0x09, 0x09, 0x09, 0x06}, /* P */
    {0x3E, 0x41, 0x51, 0x21, 0x5E}, /* Q */
    {0x7F, 0x09, 0x19, 0x29, 0x46}, /* R */
    {0x46, 0x49, 0x49, 0x49, 0x31}, /* S */
    {0x01, 0x01, 0x7F, 0x01, 0x01}, /* T */
    {0x3F, 0x40, 0x40, 0x40, 0x3F}, /* U */
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, /* V */
    {0x3F, 0x40, 0x38, 0x40, 0x3F}, /* W */
    {0x63, 0x14, 0x08, 0x14, 0x63}, /* X */
    {0x07, 0x08, 0x70, 0x08, 0x07}, /* Y */
    {0x61, 0x51, 0x49, 0x45, 0x43}, /* Z */
    {0x00, 0x7F, 0x41, 0x41, 0x00}, /* [ */
    {0x02, 0x04, 0x08, 0x10, 0x20}, /* backslash */
    {0x00, 0x41, 0x41, 0x7F, 0x00}, /* ] */
    {0x04, 0x02, 0x01, 0x02, 0x04}, /* ^ */
    {0x40, 0x40, 0x40, 0x40, 0x40}, /* _ */
    {0x00, 0x01, 0x02, 0x04, 0x00}, /* ` */
    {0x20, 0x54, 0x54, 0x54, 0x78}, /* a */
    {0x7F, 0x48, 0x44, 0x44, 0x38}, /* b */
    {0x38, 0x44, 0x44, 0x44, 0x20}, /* c */
    {0x38, 0x44, 0x44, 0x48, 0x7F}, /* d */
    {0x38, 0x54, 0x54, 0x54, 0x18}, /* e */
    {0x08, 0x7E, 0x09, 0x01, 0x02}, /* f */
    {0x0C, 0x52, 0x52, 0x52, 0x3E}, /* g */
    {0x7F, 0x08, 0x04, 0x04, 0x78}, /* h */
    {0x00, 0x44, 0x7D, 0x40, 0x00}, /* i */
    {0x20, 0x40, 0x44, 0x3D, 0x00}, /* j */
    {0x7F, 0x10, 0x28, 0x44, 0x00}, /* k */
    {0x00, 0x41, 0x7F, 0x40, 0x00}, /* l */
    {0x7C, 0x04, 0x18, 0x04, 0x78}, /* m */
    {0x7C, 0x08, 0x04, 0x04, 0x78}, /* n */
    {0x38, 0x44, 0x44, 0x44, 0x38}, /* o */
    {0x7C, 0x14, 0x14, 0x14, 0x08}, /* p */
    {0x08, 0x14, 0x14, 0x18, 0x7C}, /* q */
    {0x7C, 0x08, 0x04, 0x04, 0x08}, /* r */
    {0x48, 0x54, 0x54, 0x54, 0x20}, /* s */
    {0x04, 0x3F, 0x44, 0x40, 0x20}, /* t */
    {0x3C, 0x40, 0x40, 0x20, 0x7C}, /* u */
    {0x1C, 0x20, 0x40, 0x20, 0x1C}, /* v */
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, /* w */
    {0x44, 0x28, 0x10, 0x28, 0x44}, /* x */
    {0x0C, 0x50, 0x50, 0x50, 0x3C}, /* y */
    {0x44, 0x64, 0x54, 0x4C, 0x44}, /* z */
    {0x00, 0x08, 0x36, 0x41, 0x00}, /* { */
    {0x00, 0x00, 0x7F, 0x00, 0x00}, /* | */
    {0x00, 0x41, 0x36, 0x08, 0x00}, /* } */
    {0x08, 0x04, 0x08, 0x10, 0x08}, /* ~ */
};

/* ---- pixels ---- */

/* The one place that writes pixels: clipping here is what keeps every caller in bounds. */
static void fill_rect(struct eng_image *img, struct rect r, struct rgb c)
{
    int x0 = r.x0 < 0 ? 0 : r.x0;
    int y0 = r.y0 < 0 ? 0 : r.y0;
    int x1 = r.x1 >= img->width ? img->width - 1 : r.x1;
    int y1 = r.y1 >= img->height ? img->height - 1 : r.y1;
    for (int y = y0; y <= y1; y++) {
        uint8_t *p = img->rgb + ((size_t)y * (size_t)img->width + (size_t)x0) * 3;
        for (int x = x0; x <= x1; x++, p += 3) {
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    }
}

static int rect_hits_image(const struct eng_image *img, struct rect r)
{
    return r.x1 >= 0 && r.y1 >= 0 && r.x0 < img->width && r.y0 < img->height && r.x0 <= r.x1 &&
           r.y0 <= r.y1;
}

static struct rgb class_colour(int class_id)
{
    /* C's % keeps the dividend's sign, so fold negative ids back into range. */
    int i = class_id % PALETTE_SIZE;
    return palette[i < 0 ? i + PALETTE_SIZE : i];
}

/* Black text on light strips, white on dark ones (Rec. 601 luma). */
static struct rgb text_colour(struct rgb bg)
{
    int luma1000 = 299 * bg.r + 587 * bg.g + 114 * bg.b;
    return luma1000 >= 128 * 1000 ? (struct rgb){0, 0, 0} : (struct rgb){255, 255, 255};
}

/* ---- boxes ---- */

/* Rounds a box coordinate, first clamping it to [lo, hi] so huge or infinite values cannot overflow
 * the conversion; lo/hi lie far enough outside the image that the clamped edge stays invisible. */
static int to_pixel(float v, int lo, int hi)
{
    if (v < (float)lo)
        return lo;
    if (v > (float)hi)
        return hi;
    return (int)lroundf(v);
}

/* Returns -1 for a NaN box, which has no meaningful place to be drawn. */
static int box_rect(const struct eng_image *img, const struct eng_draw_box *b, int thick,
                    struct rect *out)
{
    if (isnan(b->x1) || isnan(b->y1) || isnan(b->x2) || isnan(b->y2))
        return -1;
    int xa = to_pixel(b->x1, -thick - 1, img->width + thick);
    int xb = to_pixel(b->x2, -thick - 1, img->width + thick);
    int ya = to_pixel(b->y1, -thick - 1, img->height + thick);
    int yb = to_pixel(b->y2, -thick - 1, img->height + thick);
    *out = (struct rect){xa < xb ? xa : xb, ya < yb ? ya : yb, xa < xb ? xb : xa, ya < yb ? yb : ya};
    return 0;
}

/* Four bands drawn inward from the edges. Each band stops at the opposite edge, so a box thinner
 * than two bands comes out filled rather than spilling past its far side. */
static void draw_outline(struct eng_image *img, struct rect r, int thick, struct rgb c)
{
    int t = thick - 1;
    int top = r.y0 + t < r.y1 ? r.y0 + t : r.y1, bottom = r.y1 - t > r.y0 ? r.y1 - t : r.y0;
    int left = r.x0 + t < r.x1 ? r.x0 + t : r.x1, right = r.x1 - t > r.x0 ? r.x1 - t : r.x0;
    fill_rect(img, (struct rect){r.x0, r.y0, r.x1, top}, c);
    fill_rect(img, (struct rect){r.x0, bottom, r.x1, r.y1}, c);
    fill_rect(img, (struct rect){r.x0, r.y0, left, r.y1}, c);
    fill_rect(img, (struct rect){right, r.y0, r.x1, r.y1}, c);
}

/* ---- text ---- */

/* Returns the glyph for the character at *s and advances past it. A UTF-8 sequence is one character,
 * so "café" shows as "caf?" rather than "caf??". */
static const uint8_t *next_glyph(const char **s)
{
    unsigned char ch = (unsigned char)*(*s)++;
    if (ch >= 0xC0)
        while (((unsigned char)**s & 0xC0) == 0x80)
            (*s)++;
    if (ch < FONT_FIRST || ch > FONT_LAST)
        ch = '?';
    return font5x7[ch - FONT_FIRST];
}

/* Counts characters, but stops once the label would run past `limit` glyphs (the image width). */
static int label_length(const char *s, int limit)
{
    int n = 0;
    while (*s && n < limit) {
        next_glyph(&s);
        n++;
    }
    return n;
}

static void draw_glyph(struct eng_image *img, int x, int y, int scale, const uint8_t *glyph,
                       struct rgb c)
{
    for (int col = 0; col < GLYPH_W; col++)
        for (int row = 0; row < GLYPH_H; row++)
            if (glyph[col] >> row & 1) {
                int px = x + col * scale, py = y + row * scale;
                fill_rect(img, (struct rect){px, py, px + scale - 1, py + scale - 1}, c);
            }
}

/* Strip of `n` glyphs with a one-scaled-pixel margin all round (the blank column after the last glyph
 * is the right margin). Placed just above the box, or inside its top if there is no room above, and
 * slid left so a box at the right edge keeps a readable label. */
static struct rect label_strip(const struct eng_image *img, struct rect box, int n, int scale)
{
    int w = (n * CELL_W + 1) * scale, h = (GLYPH_H + 2) * scale;
    int x = box.x0 > img->width - w ? img->width - w : box.x0;
    if (x < 0)
        x = 0;
    int y = box.y0 - h >= 0 ? box.y0 - h : (box.y0 < 0 ? 0 : box.y0);
    return (struct rect){x, y, x + w - 1, y + h - 1};
}

static void draw_label(struct eng_image *img, struct rect box, const char *label, struct rgb bg)
{
    int scale = img->height / 400 > 1 ? img->height / 400 : 1;
    /* Glyphs past the right edge are invisible; the cap keeps the strip width from overflowing. */
    int n = label_length(label, img->width / (CELL_W * scale) + 1);
    struct rect strip = label_strip(img, box, n, scale);
    fill_rect(img, strip, bg);
    struct rgb fg = text_colour(bg);
    for (int i = 0; i < n; i++)
        draw_glyph(img, strip.x0 + (1 + i * CELL_W) * scale, strip.y0 + scale, scale,
                   next_glyph(&label), fg);
}

void eng_draw_boxes(struct eng_image *img, const struct eng_draw_box *boxes, int count)
{
    assert(img);
    assert(boxes || count <= 0);
    if (!img->rgb || img->width <= 0 || img->height <= 0 || img->width > DRAW_MAX_SIDE ||
        img->height > DRAW_MAX_SIDE)
        return;
    int short_side = img->width < img->height ? img->width : img->height;
    int thick = short_side / 300 > 2 ? short_side / 300 : 2;
    for (int i = 0; i < count; i++) {
        struct rect r;
        if (box_rect(img, &boxes[i], thick, &r) != 0 || !rect_hits_image(img, r))
            continue; /* an invisible box must not drag its label into view */
        struct rgb c = class_colour(boxes[i].class_id);
        draw_outline(img, r, thick, c);
        if (boxes[i].label && boxes[i].label[0])
            draw_label(img, r, boxes[i].label, c);
    }
}

/* ---- points ---- */

void eng_draw_points(struct eng_image *img, const float *xy, int count, int class_id)
{
    assert(img);
    assert(xy || count <= 0);
    if (!img->rgb || img->width <= 0 || img->height <= 0 || img->width > DRAW_MAX_SIDE ||
        img->height > DRAW_MAX_SIDE)
        return;
    const int short_side = img->width < img->height ? img->width : img->height;
    const int half = short_side / 500 > 1 ? short_side / 500 : 1;
    const struct rgb c = class_colour(class_id);
    for (int i = 0; i < count; i++) {
        const float x = xy[2 * i], y = xy[2 * i + 1];
        if (isnan(x) || isnan(y))
            continue;
        /* clamped so far-away points cannot overflow; a clamped square lies outside the image */
        const int px = to_pixel(x, -half - 1, img->width + half);
        const int py = to_pixel(y, -half - 1, img->height + half);
        fill_rect(img, (struct rect){px - half, py - half, px + half, py + half}, c);
    }
}

/* ---- PNG ---- */

struct png_status {
    char msg[ENG_ERR_MSG_MAX];
};

/* libpng must not return from its error handler; jump back to write_rows' setjmp instead. */
static void on_png_error(png_structp png, png_const_charp msg)
{
    struct png_status *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings are not failures, and a library must not print to stderr behind the daemon's logger. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Kept apart from the caller so no local that changes after setjmp is read after a longjmp. */
static int write_rows(png_structp png, png_infop info, FILE *fp, const struct eng_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, fp);
    /* libpng's default 1,000,000-pixel side limit is for untrusted input; we only write our own. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->rgb + (size_t)y * (size_t)img->width * 3);
    png_write_end(png, NULL);
    return 0;
}

static int write_png_stream(FILE *fp, const struct eng_image *img, const char *path,
                            struct eng_err *err)
{
    struct png_status st = {""};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory creating the PNG writer");
    }
    int rc = write_rows(png, info, fp, img);
    png_destroy_write_struct(&png, &info);
    if (rc != 0)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot write PNG: %s", st.msg);
    return 0;
}

int eng_image_write_png(const struct eng_image *img, const char *path, struct eng_err *err)
{
    assert(img && path);
    if (!img->rgb || img->width <= 0 || img->height <= 0)
        return eng_err_set(err, ENG_ERR_INVALID, path, "cannot write an empty image (%dx%d)",
                           img->width, img->height);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open for writing: %s", strerror(errno));
    int rc = write_png_stream(fp, img, path, err);
    /* Buffered bytes reach the disk only now, so a full disk may first show up here. */
    if (fclose(fp) != 0 && rc == 0)
        rc = eng_err_set(err, ENG_ERR_IO, path, "cannot write PNG: %s", strerror(errno));
    return rc;
}
