/* fuzz_image.c - libFuzzer target for engine/image*.c's decoders, built once per decoder: fuzz_png
 * (FUZZ_PNG), fuzz_jpeg (FUZZ_JPEG), fuzz_webp (FUZZ_WEBP) and fuzz_heif (FUZZ_HEIF: HEIC and AVIF),
 * all with EXIF orientation applied, as the daemon does by default.
 *
 * The input's first bytes are overwritten with the format's signature so that every mutation reaches
 * the decoder under test instead of the "not an image" answer. The pixel limit is the daemon's default
 * (40 MP): big-but-allowed images are part of what a client can send, and their cost is the point of the
 * per-input time limit (this is how a 1 KB JPEG whose EXIF rotation took 2.4 s was found).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

/* The signature is written at MAGIC_AT; WebP's RIFF size (bytes 4-7) and an ISO box size stay fuzzed. */
#if defined(FUZZ_PNG)
static const uint8_t magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
#define MAGIC_AT 0
#define EXPECTED(f) ((f) == ENG_IMAGE_PNG)
#elif defined(FUZZ_JPEG)
static const uint8_t magic[] = {0xff, 0xd8};
#define MAGIC_AT 0
#define EXPECTED(f) ((f) == ENG_IMAGE_JPEG)
#elif defined(FUZZ_WEBP)
static const uint8_t magic[] = {'W', 'E', 'B', 'P'};
#define MAGIC_AT 8
#define EXPECTED(f) ((f) == ENG_IMAGE_WEBP)
#elif defined(FUZZ_HEIF)
static const uint8_t magic[] = {'f', 't', 'y', 'p'};
#define MAGIC_AT 4
#define EXPECTED(f) ((f) == ENG_IMAGE_HEIC || (f) == ENG_IMAGE_AVIF)
#else
#error "define FUZZ_PNG, FUZZ_JPEG, FUZZ_WEBP or FUZZ_HEIF"
#endif

#define DAEMON_MAX_PIXELS (40ull * 1000 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < MAGIC_AT + sizeof magic + 4)
        return -1; /* not worth keeping in the corpus */
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memcpy(buf + MAGIC_AT, magic, sizeof magic);
#if defined(FUZZ_WEBP)
    memcpy(buf, "RIFF", 4);
#endif

    const struct eng_decode_opts opts = {.max_pixels = DAEMON_MAX_PIXELS, .apply_exif = 1};
    struct eng_image img = {0};
    struct eng_decode_info info;
    struct eng_err err;
    if (eng_image_decode(buf, size, &opts, &img, &info, &err) == 0) {
        /* What callers rely on: a non-empty upright image within the limit, orientation 1..8. */
        if (img.width <= 0 || img.height <= 0 || !img.rgb ||
            (uint64_t)img.width * (uint64_t)img.height > DAEMON_MAX_PIXELS ||
            !EXPECTED(info.format) || info.exif_orientation < 1 || info.exif_orientation > 8)
            abort();
        /* Touch the first and last pixel so a short buffer shows up under ASan. */
        volatile uint8_t sink = img.rgb[0] ^ img.rgb[3 * (size_t)img.width * (size_t)img.height - 1];
        (void)sink;
    } else if (err.kind == ENG_ERR_NONE || !err.msg[0]) {
        abort(); /* a failure must say why */
    }
    eng_image_release(&img);
    free(buf);
    return 0;
}
