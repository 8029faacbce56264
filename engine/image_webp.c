/* image_webp.c - WebP decoding through libwebp: lossy, lossless, with alpha, and animated (first frame).
 *
 * The canvas size is read from the bitstream's headers (WebPGetFeatures) and checked against the pixel
 * limit before any pixel buffer exists. Still images decode straight into our RGB buffer with libwebp's
 * default settings (fancy upsampling), as dwebp and OpenCV's imread do, so the bytes equal theirs;
 * alpha is dropped without compositing, as for PNG. An animation gives its first frame composed on the
 * canvas by libwebp's WebPAnimDecoder (uncovered canvas is transparent black, so RGB 0). An EXIF chunk
 * (extended format) gives the orientation. */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image_int.h"

static const char *webp_status(VP8StatusCode st)
{
    switch (st) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated data";
    default: return "unknown error";
    }
}

static int webp_fail(VP8StatusCode st, const char *what, const char *where, struct eng_err *err)
{
    enum eng_err_kind kind = st == VP8_STATUS_OUT_OF_MEMORY ? ENG_ERR_NOMEM : ENG_ERR_INVALID;
    return eng_err_set(err, kind, where, "WebP: %s (%s)", webp_status(st), what);
}

/* The EXIF chunk holds a TIFF structure; some writers put JPEG's "Exif\0\0" before it. */
static int webp_orientation(const WebPDemuxer *dmx)
{
    WebPChunkIterator it;
    int o = 1;
    if (!dmx || !(WebPDemuxGetI(dmx, WEBP_FF_FORMAT_FLAGS) & EXIF_FLAG) ||
        !WebPDemuxGetChunk(dmx, "EXIF", 1, &it))
        return 1;
    const uint8_t *p = it.chunk.bytes;
    size_t n = it.chunk.size;
    if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0) {
        p += 6;
        n -= 6;
    }
    o = eng_exif_orientation_tiff(p, n);
    WebPDemuxReleaseChunkIterator(&it);
    return o;
}

/* First frame of an animation, composed on the w x h canvas, alpha dropped. */
static int webp_first_frame(const uint8_t *data, size_t size, int w, int h, uint8_t *rgb,
                            const char *where, struct eng_err *err)
{
    WebPAnimDecoderOptions o;
    if (!WebPAnimDecoderOptionsInit(&o))
        return eng_err_set(err, ENG_ERR_INVALID, where, "WebP: libwebp version mismatch");
    o.color_mode = MODE_RGBA;
    o.use_threads = 0;
    const WebPData wd = {data, size};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &o);
    if (!dec)
        return eng_err_set(err, ENG_ERR_INVALID, where, "WebP: corrupt or truncated animation");
    WebPAnimInfo info;
    uint8_t *frame = NULL;
    int ts = 0, rc = 0;
    if (!WebPAnimDecoderGetInfo(dec, &info) || (int)info.canvas_width != w ||
        (int)info.canvas_height != h)
        rc = eng_err_set(err, ENG_ERR_INVALID, where, "WebP: animation canvas differs from its header");
    else if (!WebPAnimDecoderGetNext(dec, &frame, &ts) || !frame)
        rc = eng_err_set(err, ENG_ERR_INVALID, where, "WebP: corrupt or truncated first frame");
    else
        for (size_t i = 0, n = (size_t)w * h; i < n; i++)
            memcpy(rgb + 3 * i, frame + 4 * i, 3);
    WebPAnimDecoderDelete(dec);
    return rc;
}

int eng_webp_decode(const uint8_t *data, size_t size, uint64_t max_pixels, struct eng_image *out,
                    struct eng_decoded *dec, const char *where, struct eng_err *err)
{
    WebPDecoderConfig cfg;
    char msg[ENG_IMG_MSG_MAX];
    if (!WebPInitDecoderConfig(&cfg))
        return eng_err_set(err, ENG_ERR_INVALID, where, "WebP: libwebp version mismatch");
    VP8StatusCode st = WebPGetFeatures(data, size, &cfg.input);
    if (st != VP8_STATUS_OK)
        return webp_fail(st, "reading the header", where, err);
    const int w = cfg.input.width, h = cfg.input.height;
    enum eng_err_kind kind = eng_image_dims_problem("WebP", (uint64_t)(w < 0 ? 0 : w),
                                                    (uint64_t)(h < 0 ? 0 : h), max_pixels, msg, sizeof msg);
    if (kind != ENG_ERR_NONE)
        return eng_err_set(err, kind, where, "%s", msg);

    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return eng_err_set(err, ENG_ERR_NOMEM, where, "WebP: out of memory for %dx%d pixels", w, h);
    int rc = 0;
    if (cfg.input.has_animation) {
        rc = webp_first_frame(data, size, w, h, rgb, where, err);
    } else {
        cfg.output.colorspace = MODE_RGB;
        cfg.output.is_external_memory = 1;
        cfg.output.u.RGBA.rgba = rgb;
        cfg.output.u.RGBA.stride = w * 3;
        cfg.output.u.RGBA.size = (size_t)w * h * 3;
        st = WebPDecode(data, size, &cfg);
        WebPFreeDecBuffer(&cfg.output); /* external memory: frees nothing of ours */
        if (st != VP8_STATUS_OK)
            rc = webp_fail(st, "decoding the pixels", where, err);
    }
    if (rc != 0) {
        free(rgb);
        return rc;
    }
    const WebPData wd = {data, size};
    WebPDemuxer *dmx = WebPDemux(&wd);
    *dec = (struct eng_decoded){.orientation = webp_orientation(dmx)};
    WebPDemuxDelete(dmx);
    *out = (struct eng_image){.width = w, .height = h, .rgb = rgb};
    return 0;
}
