/* image.c - photo decoding's entry points: the format sniffed from the bytes, the decoder for it, the
 * pixel-limit check every decoder calls before allocating pixels, EXIF orientation applied once.
 *
 * The decoders live one per file (image_png.c, image_jpeg.c, image_webp.c, image_heif.c); exif.c reads
 * and applies orientation; image_resize.c turns an image into network input. The format is never taken
 * from a file name or a Content-Type: a WebP named .jpg is decoded as WebP. */
#include "image.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image_int.h"

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ---------------------------------------------------------------------------------------------- */
/* Format sniffing                                                                                */

/* ISO BMFF brands of the HEIF images libheif decodes: HEVC (HEIC) and AV1 (AVIF) stills and
 * sequences, and the structural brands (mif1, msf1) that either carries. */
static enum eng_image_format heif_brand(const uint8_t *b)
{
    static const char *const heic[] = {"heic", "heix", "heim", "heis", "hevc", "hevx"};
    static const char *const avif[] = {"avif", "avis"};
    for (size_t i = 0; i < sizeof heic / sizeof *heic; i++)
        if (memcmp(b, heic[i], 4) == 0)
            return ENG_IMAGE_HEIC;
    for (size_t i = 0; i < sizeof avif / sizeof *avif; i++)
        if (memcmp(b, avif[i], 4) == 0)
            return ENG_IMAGE_AVIF;
    if (memcmp(b, "mif1", 4) == 0 || memcmp(b, "msf1", 4) == 0)
        return ENG_IMAGE_HEIC; /* refined by the codec brands, if any */
    return ENG_IMAGE_UNKNOWN;
}

/* An `ftyp` box first: its major brand, then the compatible brands it lists (within the box and the
 * data). A codec brand (heic, avif, ...) decides; mif1/msf1 alone count as HEIC. */
static enum eng_image_format sniff_heif(const uint8_t *d, size_t n)
{
    if (n < 16 || memcmp(d + 4, "ftyp", 4) != 0)
        return ENG_IMAGE_UNKNOWN;
    uint64_t box = (uint64_t)d[0] << 24 | (uint64_t)d[1] << 16 | (uint64_t)d[2] << 8 | d[3];
    if (box < 16)
        return ENG_IMAGE_UNKNOWN;
    size_t end = box < n ? (size_t)box : n;
    enum eng_image_format found = heif_brand(d + 8);
    if (found == ENG_IMAGE_AVIF || (found == ENG_IMAGE_HEIC && memcmp(d + 8, "mif1", 4) != 0 &&
                                    memcmp(d + 8, "msf1", 4) != 0))
        return found;
    for (size_t off = 16; off + 4 <= end; off += 4) {
        enum eng_image_format f = heif_brand(d + off);
        if (f == ENG_IMAGE_AVIF)
            return f;
        if (f == ENG_IMAGE_HEIC)
            found = f;
    }
    return found;
}

enum eng_image_format eng_image_sniff(const uint8_t *data, size_t size)
{
    if (!data)
        return ENG_IMAGE_UNKNOWN;
    if (size >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0)
        return ENG_IMAGE_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return ENG_IMAGE_JPEG;
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return ENG_IMAGE_WEBP;
    return sniff_heif(data, size);
}

const char *eng_image_format_name(enum eng_image_format f)
{
    switch (f) {
    case ENG_IMAGE_PNG: return "PNG";
    case ENG_IMAGE_JPEG: return "JPEG";
    case ENG_IMAGE_WEBP: return "WebP";
    case ENG_IMAGE_HEIC: return "HEIC";
    case ENG_IMAGE_AVIF: return "AVIF";
    default: return "unknown";
    }
}

/* Names formats people upload by mistake, so the error tells them what they sent. */
static const char *sniff_other(const uint8_t *d, size_t n)
{
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "GIF";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return "TIFF";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0)
        return "an ISO media file that is not a HEIF image";
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
                       "not an image in an accepted format (%s; starts with %s \"%s\")%s%s",
                       ENG_IMAGE_FORMATS, hex, text, name ? "; looks like " : "", name ? name : "");
}

enum eng_err_kind eng_image_dims_problem(const char *fmt, uint64_t w, uint64_t h, uint64_t max_pixels,
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
    struct eng_decoded dec = {.orientation = 1};
    int rc;
    info->format = eng_image_sniff(data, size);
    switch (info->format) {
    case ENG_IMAGE_PNG: rc = eng_png_decode(data, size, max_pixels, out, &dec, where, err); break;
    case ENG_IMAGE_JPEG: rc = eng_jpeg_decode(data, size, max_pixels, out, &dec, where, err); break;
    case ENG_IMAGE_WEBP: rc = eng_webp_decode(data, size, max_pixels, out, &dec, where, err); break;
    case ENG_IMAGE_HEIC:
    case ENG_IMAGE_AVIF: rc = eng_heif_decode(data, size, max_pixels, out, &dec, where, err); break;
    default: return fail_unsupported(data, size, where, err);
    }
    if (rc != 0)
        return rc;

    const int orientation = dec.orientation;
    info->exif_orientation = orientation;
    info->container_oriented = dec.applied;
    info->stored_width = out->width;
    info->stored_height = out->height;
    if (opts && opts->apply_exif && orientation != 1 && !dec.applied) {
        if (eng_image_orient(out, orientation, where, err) != 0) {
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
