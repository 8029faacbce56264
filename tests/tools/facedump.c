/* facedump.c - test helper: runs engine/face.c on images and prints one JSON line per image, so
 * differential tests (tests/ref/) can compare detections, landmarks and descriptors with face-api's.
 *
 *   visiond_facedump [--models DIR] [--input-size N] [--threshold T] [--iou T] [--no-exif]
 *                    [--no-landmarks] [--no-descriptors] [--aligned] [--raw WxH] IMAGE...
 *
 * Per image: {"image": PATH, "width": W, "height": H, "faces": [{"box": [x1, y1, x2, y2],
 * "score": S, "landmarks": [[x, y] x 68], "chip": [x, y, w, h], "descriptor": [128 values]}],
 * "ms": {"detect": .., "landmarks": .., "descriptors": ..}}.
 * With --aligned each image is taken as an aligned face chip: {"image": PATH, "width": W,
 * "height": H, "descriptor": [...], "ms": ..}.
 * Images are decoded as visiond decodes them (EXIF orientation applied, as cv2.imread does for the
 * reference) unless --no-exif is given; --raw WxH reads raw RGB8 pixels instead of PNG/JPEG.
 * Exit status: 0, 1 if any image failed (its line then holds "error"), 2 for bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "face.h"
#include "kern.h"

#define MAX_FACES 256

struct args {
    const char *models;
    struct eng_face_params params;
    int exif, landmarks, descriptors, aligned;
    int raw_w, raw_h;
    int first_image;
};

static int usage(void)
{
    fprintf(stderr, "usage: visiond_facedump [--models DIR] [--input-size N] [--threshold T] "
                    "[--iou T] [--no-exif] [--no-landmarks] [--no-descriptors] [--aligned] "
                    "[--raw WxH] IMAGE...\n");
    return 2;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    a->models = "models/faces";
    eng_face_params_default(&a->params);
    a->landmarks = a->descriptors = a->exif = 1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char tail;
        if (strcmp(s, "--no-exif") == 0)
            a->exif = 0;
        else if (strcmp(s, "--no-landmarks") == 0)
            a->landmarks = a->descriptors = 0;
        else if (strcmp(s, "--no-descriptors") == 0)
            a->descriptors = 0;
        else if (strcmp(s, "--aligned") == 0)
            a->aligned = 1;
        else if (!v)
            return -1;
        else if (strcmp(s, "--models") == 0 && ++i)
            a->models = v;
        else if (strcmp(s, "--input-size") == 0 && ++i) {
            if (sscanf(v, "%d%c", &a->params.input_size, &tail) != 1)
                return -1;
        } else if (strcmp(s, "--threshold") == 0 && ++i) {
            if (sscanf(v, "%f%c", &a->params.score_threshold, &tail) != 1)
                return -1;
        } else if (strcmp(s, "--iou") == 0 && ++i) {
            if (sscanf(v, "%f%c", &a->params.iou, &tail) != 1)
                return -1;
        } else if (strcmp(s, "--raw") == 0 && ++i) {
            if (sscanf(v, "%dx%d%c", &a->raw_w, &a->raw_h, &tail) != 2 || a->raw_w <= 0 || a->raw_h <= 0)
                return -1;
        } else
            return -1;
    }
    a->first_image = i;
    return i < argc ? 0 : -1;
}

static int load_raw(const char *path, int w, int h, struct eng_image *img, struct eng_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open");
    const size_t n = (size_t)w * h * 3;
    img->rgb = malloc(n);
    const size_t got = img->rgb ? fread(img->rgb, 1, n, f) : 0;
    fclose(f);
    if (got != n) {
        eng_image_release(img);
        return eng_err_set(err, ENG_ERR_IO, path, "expected %zu bytes of RGB8", n);
    }
    img->width = w;
    img->height = h;
    return 0;
}

static void print_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_floats(const float *v, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf("%s%.9g", i ? ", " : "", (double)v[i]);
    putchar(']');
}

static void print_error(const char *path, const struct eng_err *err)
{
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    printf("{\"image\": ");
    print_string(path);
    printf(", \"error\": ");
    print_string(eng_err_format(err, buf, sizeof buf));
    printf("}\n");
}

static int dump_faces(const struct args *a, const struct eng_face_models *m, struct eng_face_ctx *ctx,
                      const struct eng_image *img, const char *path, struct eng_face *faces)
{
    struct eng_err err = {0};
    double t0 = now_ms();
    const int n = eng_face_detect(m, ctx, img, &a->params, faces, MAX_FACES, &err);
    if (n < 0) {
        print_error(path, &err);
        return -1;
    }
    double t1 = now_ms(), lm_ms = 0.0, desc_ms = 0.0;
    printf("{\"image\": ");
    print_string(path);
    printf(", \"width\": %d, \"height\": %d, \"faces\": [", img->width, img->height);
    for (int i = 0; i < n; i++) {
        struct eng_face *f = &faces[i];
        printf("%s{\"box\": [%.9g, %.9g, %.9g, %.9g], \"score\": %.9g", i ? ", " : "",
               (double)f->box.x1, (double)f->box.y1, (double)f->box.x2, (double)f->box.y2,
               (double)f->score);
        if (a->landmarks) {
            const double t = now_ms();
            const int rc = eng_face_landmarks(m, ctx, img, f, &err);
            lm_ms += now_ms() - t;
            if (f->has_landmarks) {
                printf(", \"landmarks\": [");
                for (int k = 0; k < ENG_FACE_LANDMARKS; k++)
                    printf("%s[%.9g, %.9g]", k ? ", " : "", (double)f->landmarks[k].x,
                           (double)f->landmarks[k].y);
                printf("], \"chip\": [%d, %d, %d, %d]", f->chip.x, f->chip.y, f->chip.w, f->chip.h);
            }
            if (rc) {
                char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
                printf(", \"error\": ");
                print_string(eng_err_format(&err, buf, sizeof buf));
            } else if (a->descriptors) {
                float d[ENG_FACE_DESCRIPTOR];
                const double t2 = now_ms();
                if (eng_face_descriptor(m, ctx, img, f, d, &err) == 0) {
                    printf(", \"descriptor\": ");
                    print_floats(d, ENG_FACE_DESCRIPTOR);
                }
                desc_ms += now_ms() - t2;
            }
        }
        putchar('}');
    }
    printf("], \"ms\": {\"detect\": %.3f, \"landmarks\": %.3f, \"descriptors\": %.3f}}\n", t1 - t0,
           lm_ms, desc_ms);
    return 0;
}

static int dump_aligned(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                        const struct eng_image *img, const char *path)
{
    struct eng_err err = {0};
    float d[ENG_FACE_DESCRIPTOR];
    const double t0 = now_ms();
    if (eng_face_descriptor_aligned(m, ctx, img, d, &err)) {
        print_error(path, &err);
        return -1;
    }
    const double t1 = now_ms();
    printf("{\"image\": ");
    print_string(path);
    printf(", \"width\": %d, \"height\": %d, \"descriptor\": ", img->width, img->height);
    print_floats(d, ENG_FACE_DESCRIPTOR);
    printf(", \"ms\": {\"descriptor\": %.3f}}\n", t1 - t0);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    if (parse_args(argc, argv, &a))
        return usage();
    if (eng_kern_env_error()) {
        fprintf(stderr, "visiond_facedump: %s\n", eng_kern_env_error());
        return 2;
    }
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    struct eng_face_models *m = NULL;
    const struct eng_face_load_opts opts = {
        .max_input_size = a.params.input_size > ENG_FACE_INPUT_MAX_DEFAULT &&
                                  a.params.input_size <= ENG_FACE_INPUT_LIMIT
                              ? (a.params.input_size + 31) / 32 * 32
                              : 0};
    if (eng_face_models_load(a.models, &opts, &m, &err)) {
        fprintf(stderr, "visiond_facedump: %s\n", eng_err_format(&err, buf, sizeof buf));
        return 1;
    }
    struct eng_face_ctx *ctx = eng_face_ctx_new(m, &err);
    struct eng_face *faces = calloc(MAX_FACES, sizeof *faces);
    if (!ctx || !faces) {
        fprintf(stderr, "visiond_facedump: out of memory\n");
        free(faces);
        eng_face_ctx_free(ctx);
        eng_face_models_free(m);
        return 1;
    }
    int status = 0;
    for (int i = a.first_image; i < argc; i++) {
        struct eng_image img = {0};
        const struct eng_decode_opts dopts = {.apply_exif = a.exif};
        const int rc = a.raw_w ? load_raw(argv[i], a.raw_w, a.raw_h, &img, &err)
                               : eng_image_load(argv[i], &dopts, &img, NULL, &err);
        if (rc) {
            print_error(argv[i], &err);
            status = 1;
            continue;
        }
        if ((a.aligned ? dump_aligned(m, ctx, &img, argv[i])
                       : dump_faces(&a, m, ctx, &img, argv[i], faces)) != 0)
            status = 1;
        eng_image_release(&img);
        fflush(stdout);
    }
    free(faces);
    eng_face_ctx_free(ctx);
    eng_face_models_free(m);
    return status;
}
