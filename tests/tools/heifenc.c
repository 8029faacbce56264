/* heifenc.c - writes a HEIC or AVIF whose coded image carries a HEIF orientation (irot/imir) and, if
 * asked, an EXIF block with an orientation of its own: files heif-enc cannot make, for
 * tests/ref/test_image_formats.py (HEIF rotation applied once, compared with heif-convert).
 *
 * usage: visiond_heifenc [--avif] [--orientation 1-8] [--exif 1-8] [--quality 0-100] IN.png OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libheif/heif.h>

#include "image.h"

/* LeakSanitizer (ASan builds): libx265's encoder loses 1168 bytes per x265_encoder_open (libheif's
 * encode calls it); this tool makes test files, the daemon never encodes. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libx265.so\n";
}

static int usage(void)
{
    fprintf(stderr, "usage: visiond_heifenc [--avif] [--orientation 1-8] [--exif 1-8] [--quality Q] IN OUT\n");
    return 2;
}

static int check(struct heif_error e, const char *what)
{
    if (e.code == heif_error_Ok)
        return 0;
    fprintf(stderr, "heifenc: %s: %s\n", what, e.message);
    return -1;
}

int main(int argc, char **argv)
{
    int avif = 0, orientation = 1, exif = 0, quality = 90, i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--avif"))
            avif = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--orientation"))
            orientation = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--exif"))
            exif = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--quality"))
            quality = atoi(argv[++i]);
        else
            return usage();
    }
    if (argc - i != 2 || orientation < 1 || orientation > 8 || exif < 0 || exif > 8)
        return usage();
    struct eng_image src = {0};
    struct eng_err err = {0};
    const struct eng_decode_opts opts = {.apply_exif = 0};
    if (eng_image_load(argv[i], &opts, &src, NULL, &err) != 0) {
        fprintf(stderr, "heifenc: %s: %s\n", argv[i], err.msg);
        return 1;
    }
    struct heif_context *ctx = heif_context_alloc();
    struct heif_encoder *enc = NULL;
    struct heif_image *img = NULL;
    struct heif_image_handle *handle = NULL;
    struct heif_encoding_options *o = heif_encoding_options_alloc();
    int rc = 1, stride = 0;
    if (check(heif_context_get_encoder_for_format(ctx, avif ? heif_compression_AV1 : heif_compression_HEVC,
                                                  &enc), "encoder") ||
        check(heif_encoder_set_lossy_quality(enc, quality), "quality") ||
        check(heif_image_create(src.width, src.height, heif_colorspace_RGB, heif_chroma_interleaved_RGB,
                                &img), "image") ||
        check(heif_image_add_plane(img, heif_channel_interleaved, src.width, src.height, 8), "plane"))
        goto done;
    uint8_t *plane = heif_image_get_plane(img, heif_channel_interleaved, &stride);
    for (int y = 0; y < src.height; y++)
        memcpy(plane + (size_t)y * stride, src.rgb + (size_t)y * src.width * 3, (size_t)src.width * 3);
    o->image_orientation = (enum heif_orientation)orientation;
    if (check(heif_context_encode_image(ctx, img, enc, o, &handle), "encode"))
        goto done;
    if (exif) {
        const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                                (uint8_t)exif, 0, 0, 0, 0, 0, 0, 0};
        if (check(heif_context_add_exif_metadata(ctx, handle, tiff, (int)sizeof tiff), "exif"))
            goto done;
    }
    if (check(heif_context_write_to_file(ctx, argv[i + 1]), argv[i + 1]))
        goto done;
    rc = 0;
done:
    heif_encoding_options_free(o);
    heif_image_handle_release(handle);
    heif_image_release(img);
    heif_encoder_release(enc);
    heif_context_free(ctx);
    eng_image_release(&src);
    return rc;
}
