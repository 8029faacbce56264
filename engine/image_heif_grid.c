/* image_heif_grid.c - the output size a HEIF file's primary 'grid' or 'iovl' item declares, read from the
 * bytes.
 *
 * Why: libheif sizes a grid image's pixel buffer from the grid item's own header, not from the ispe
 * property it reports (heif_image_handle_get_ispe_*), and allocates it before decoding the tiles. A
 * hostile file (fuzz/regressions/heif/grid-larger-than-ispe.heif: ispe 231x23313, grid 6144x9488) can
 * so make libheif allocate far more than the declared size, and tiles sharing one coded extent can
 * fill it from a few bytes. Reading the grid header first keeps the pixel limit ahead of any buffer. An
 * overlay ('iovl') is the same case: libheif allocates its canvas from the item's header (fuzz_heif:
 * fuzz/regressions/heif/iovl-larger-than-ispe.heif, ispe 24x16, an 872 MB canvas).
 *
 * ISO/IEC 14496-12 boxes: meta (FullBox) holds pitm (the primary item), iinf/infe (item types), iloc
 * (where each item's data is: in the file, or in idat) and idat. ISO/IEC 23008-12 6.6.2.3: the grid's
 * data is version, flags, rows-1, columns-1, then output width and height (32-bit if flags & 1, else
 * 16-bit); 6.6.2.3's overlay has version, flags, four 16-bit fill values, then the same two fields.
 * Every read is bounds-checked; anything malformed is left to libheif (returns 0). */
#include <stdint.h>
#include <string.h>

#include "image_int.h"

struct rd {
    const uint8_t *p;
    uint64_t n, at;
    int bad;
};

static uint64_t rd_uint(struct rd *r, unsigned bytes)
{
    uint64_t v = 0;
    if (bytes > 8 || r->at > r->n || r->n - r->at < bytes) {
        r->bad = 1;
        return 0;
    }
    for (unsigned i = 0; i < bytes; i++)
        v = v << 8 | r->p[r->at + i];
    r->at += bytes;
    return v;
}

/* The next box inside [r->at, end): its type and payload range; 0 at the end or on a bad size. */
static int next_box(struct rd *r, uint64_t end, char type[4], uint64_t *body, uint64_t *body_end)
{
    if (end - r->at < 8)
        return 0;
    uint64_t start = r->at, size = rd_uint(r, 4);
    memcpy(type, r->p + r->at, 4);
    r->at += 4;
    if (size == 1) {
        size = rd_uint(r, 8);
    } else if (size == 0) {
        size = end - start;
    }
    if (r->bad || size < r->at - start || size > end - start)
        return 0;
    *body = r->at;
    *body_end = start + size;
    r->at = *body_end;
    return 1;
}

struct meta {
    uint64_t primary;
    int have_primary;
    uint64_t iinf, iinf_end, iloc, iloc_end, idat, idat_end;
};

/* Whether item `id` is a grid (ENG_HEIF_GRID) or an overlay (ENG_HEIF_OVERLAY) by iinf, else 0. */
static int item_kind(const uint8_t *p, const struct meta *m, uint64_t id)
{
    struct rd r = {p, m->iinf_end, m->iinf, 0};
    unsigned version = (unsigned)rd_uint(&r, 1);
    r.at += 3;
    rd_uint(&r, version == 0 ? 2 : 4); /* entry count: the boxes that follow say it too */
    char type[4];
    uint64_t body, body_end;
    while (!r.bad && next_box(&r, m->iinf_end, type, &body, &body_end)) {
        if (memcmp(type, "infe", 4) != 0)
            continue;
        struct rd e = {p, body_end, body, 0};
        unsigned v = (unsigned)rd_uint(&e, 1);
        e.at += 3;
        if (v < 2)
            continue;
        uint64_t item = rd_uint(&e, v == 2 ? 2 : 4);
        rd_uint(&e, 2); /* protection index */
        if (!e.bad && item == id && e.n - e.at >= 4)
            return memcmp(p + e.at, "grid", 4) == 0   ? ENG_HEIF_GRID
                   : memcmp(p + e.at, "iovl", 4) == 0 ? ENG_HEIF_OVERLAY
                                                      : 0;
    }
    return 0;
}

/* Where item `id`'s data starts (first extent): *off within p, *len bytes. 0 if not found. */
static int item_data(const uint8_t *p, uint64_t n, const struct meta *m, uint64_t id, uint64_t *off,
                     uint64_t *len)
{
    struct rd r = {p, m->iloc_end, m->iloc, 0};
    unsigned v = (unsigned)rd_uint(&r, 1);
    r.at += 3;
    unsigned sizes = (unsigned)rd_uint(&r, 2);
    unsigned off_size = sizes >> 12, len_size = sizes >> 8 & 15, base_size = sizes >> 4 & 15;
    unsigned index_size = v == 1 || v == 2 ? sizes & 15 : 0;
    uint64_t count = rd_uint(&r, v < 2 ? 2 : 4);
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        uint64_t item = rd_uint(&r, v < 2 ? 2 : 4);
        unsigned method = v == 1 || v == 2 ? (unsigned)rd_uint(&r, 2) & 15 : 0;
        rd_uint(&r, 2); /* data reference index */
        uint64_t base = rd_uint(&r, base_size);
        uint64_t extents = rd_uint(&r, 2);
        for (uint64_t k = 0; k < extents && !r.bad; k++) {
            rd_uint(&r, index_size);
            uint64_t eo = rd_uint(&r, off_size), el = rd_uint(&r, len_size);
            if (item != id || k != 0 || r.bad)
                continue;
            uint64_t start = method == 1 ? m->idat : 0, limit = method == 1 ? m->idat_end : n;
            if (method > 1 || base > limit - start || eo > limit - start - base)
                return 0;
            *off = start + base + eo;
            *len = el ? el : limit - *off;
            if (*len > limit - *off)
                *len = limit - *off;
            return 1;
        }
    }
    return 0;
}

int eng_heif_grid_size(const uint8_t *data, size_t size, uint64_t *w, uint64_t *h)
{
    struct rd r = {data, size, 0, 0};
    char type[4];
    uint64_t meta = 0, meta_end = 0, b, e;
    while (next_box(&r, size, type, &b, &e))
        if (memcmp(type, "meta", 4) == 0) {
            meta = b;
            meta_end = e;
            break;
        }
    if (meta_end - meta < 4)
        return 0;
    struct meta m = {0};
    struct rd mr = {data, meta_end, meta + 4, 0}; /* after the FullBox version and flags */
    while (next_box(&mr, meta_end, type, &b, &e)) {
        if (memcmp(type, "pitm", 4) == 0) {
            struct rd p = {data, e, b, 0};
            unsigned v = (unsigned)rd_uint(&p, 1);
            p.at += 3;
            m.primary = rd_uint(&p, v == 0 ? 2 : 4);
            m.have_primary = !p.bad;
        } else if (memcmp(type, "iinf", 4) == 0) {
            m.iinf = b;
            m.iinf_end = e;
        } else if (memcmp(type, "iloc", 4) == 0) {
            m.iloc = b;
            m.iloc_end = e;
        } else if (memcmp(type, "idat", 4) == 0) {
            m.idat = b;
            m.idat_end = e;
        }
    }
    uint64_t off, len;
    const int kind = m.have_primary && m.iinf_end && m.iloc_end ? item_kind(data, &m, m.primary) : 0;
    if (!kind || !item_data(data, size, &m, m.primary, &off, &len))
        return 0;
    struct rd g = {data, off + len, off, 0};
    rd_uint(&g, 1); /* version */
    unsigned flags = (unsigned)rd_uint(&g, 1);
    rd_uint(&g, kind == ENG_HEIF_GRID ? 2 : 8); /* rows - 1, columns - 1; or the four fill values */
    unsigned field = flags & 1 ? 4 : 2;
    *w = rd_uint(&g, field);
    *h = rd_uint(&g, field);
    return g.bad ? 0 : kind;
}
