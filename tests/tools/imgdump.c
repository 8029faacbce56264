/* imgdump.c - test helper: runs engine/image.c on one input and writes the raw result, so that
 * tests/ref/test_image_opencv.py can compare it with OpenCV byte for byte.
 *
 *   visiond_imgdump [--no-exif] [--raw WxH] [--resize WxH | --input WxH [--letterbox]] [-o FILE] INPUT
 *
 * INPUT is a PNG/JPEG file (decoded with EXIF applied unless --no-exif) or, with --raw, raw RGB8.
 * Output: RGB8 pixels, or with --input the planar float32 tensor of eng_image_to_input.
 * One summary line goes to stderr: "W H format=.. orientation=.. rotated=.." (plus the letterbox
 * mapping with --input). Exit status 1 on any error, with the engine's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

struct args {
    const char *input, *output;
    int no_exif, letterbox;
    int raw_w, raw_h;       /* 0: INPUT is an encoded image */
    int resize_w, resize_h; /* 0: no resize */
    int net_w, net_h;       /* 0: write pixels, not a tensor */
};

static int usage(void)
{
    fprintf(stderr, "usage: visiond_imgdump [--no-exif] [--raw WxH] [--resize WxH | --input WxH "
                    "[--letterbox]] [-o FILE] INPUT\n");
    return 2;
}

static int parse_size(const char *s, int *w, int *h)
{
    char tail;
    return sscanf(s, "%dx%d%c", w, h, &tail) == 2 && *w > 0 && *h > 0 ? 0 : -1;
}

/* Points w/h at the size a WxH option fills, or returns 0 if s is not one. */
static int size_option(struct args *a, const char *s, int **w, int **h)
{
    if (strcmp(s, "--raw") == 0)
        *w = &a->raw_w, *h = &a->raw_h;
    else if (strcmp(s, "--resize") == 0)
        *w = &a->resize_w, *h = &a->resize_h;
    else if (strcmp(s, "--input") == 0)
        *w = &a->net_w, *h = &a->net_h;
    else
        return 0;
    return 1;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        int *w, *h;
        if (size_option(a, s, &w, &h)) {
            if (!value || parse_size(value, w, h) != 0)
                return -1;
            i++;
        } else if (strcmp(s, "-o") == 0 && value) {
            a->output = value;
            i++;
        } else if (strcmp(s, "--no-exif") == 0) {
            a->no_exif = 1;
        } else if (strcmp(s, "--letterbox") == 0) {
            a->letterbox = 1;
        } else if (s[0] == '-' || a->input) {
            return -1;
        } else {
            a->input = s;
        }
    }
    return a->input && !(a->resize_w && a->net_w) ? 0 : -1;
}

/* Reads raw RGB8 of the declared size into *img. */
static int load_raw(const char *path, int w, int h, struct eng_image *img)
{
    size_t n = (size_t)w * h * 3;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    img->rgb = malloc(n);
    size_t got = img->rgb ? fread(img->rgb, 1, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "%s: expected exactly %zu bytes of RGB8\n", path, n);
        return -1;
    }
    img->width = w;
    img->height = h;
    return 0;
}

static int write_all(const char *path, const void *data, size_t n)
{
    FILE *f = path ? fopen(path, "wb") : stdout;
    if (!f) {
        perror(path);
        return -1;
    }
    int ok = fwrite(data, 1, n, f) == n;
    ok = (path ? fclose(f) : fflush(f)) == 0 && ok;
    if (!ok)
        fprintf(stderr, "%s: write failed\n", path ? path : "stdout");
    return ok ? 0 : -1;
}

static int fail(const struct eng_err *err)
{
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    fprintf(stderr, "error: %s\n", eng_err_format(err, buf, sizeof buf));
    return 1;
}

/* Writes the tensor (or pixels) the arguments ask for from the decoded image. */
static int emit(const struct args *a, const struct eng_image *img)
{
    struct eng_err err = {0};
    int rc = -1;
    if (a->net_w) {
        size_t n = (size_t)3 * a->net_w * a->net_h;
        struct eng_letterbox map;
        float *t = malloc(n * sizeof *t);
        if (!t || eng_image_to_input(img, a->net_w, a->net_h, a->letterbox, t, &map, &err) != 0) {
            free(t);
            return t ? fail(&err) : 1;
        }
        fprintf(stderr, " scale=%.9g,%.9g pad=%g,%g", map.scale_x, map.scale_y, map.pad_x, map.pad_y);
        rc = write_all(a->output, t, n * sizeof *t);
        free(t);
    } else if (a->resize_w) {
        uint8_t *px = malloc((size_t)3 * a->resize_w * a->resize_h);
        if (!px || eng_image_resize_linear(img, a->resize_w, a->resize_h, px, &err) != 0) {
            free(px);
            return px ? fail(&err) : 1;
        }
        rc = write_all(a->output, px, (size_t)3 * a->resize_w * a->resize_h);
        free(px);
    } else {
        rc = write_all(a->output, img->rgb, (size_t)3 * img->width * img->height);
    }
    fputc('\n', stderr);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    struct eng_image img = {0};
    struct eng_decode_info info = {.exif_orientation = 1};
    struct eng_err err = {0};
    if (parse_args(argc, argv, &a) != 0)
        return usage();
    if (a.raw_w) {
        if (load_raw(a.input, a.raw_w, a.raw_h, &img) != 0) {
            eng_image_release(&img);
            return 1;
        }
    } else {
        struct eng_decode_opts opts = {.apply_exif = !a.no_exif};
        if (eng_image_load(a.input, &opts, &img, &info, &err) != 0)
            return fail(&err);
    }
    fprintf(stderr, "%d %d format=%s orientation=%d rotated=%d container_oriented=%d", img.width,
            img.height, eng_image_format_name(info.format), info.exif_orientation, info.exif_rotated,
            info.container_oriented);
    int rc = emit(&a, &img);
    eng_image_release(&img);
    return rc;
}
