/* exif.c - EXIF orientation: the Orientation tag of a TIFF structure, and turning pixels upright.
 *
 * Only IFD0 is read and no offset is followed but the one to IFD0, so hostile offsets can neither loop
 * nor overrun. The rotation walks square tiles (see ORIENT_TILE). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image_int.h"

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
int eng_exif_orientation_tiff(const uint8_t *p, size_t n)
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
int eng_image_orient(struct eng_image *img, int o, const char *where, struct eng_err *err)
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

