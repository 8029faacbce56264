/* detdump.c - test helper: runs engine/detect.c's eng_detect on images with the engine's defaults and
 * prints every detection at full float precision, one JSON line per image, so tests can compare the
 * daemon and the CLI with the engine driven directly, bit for bit (tests/ref/test_bitwise.py).
 *
 *   visiond_detdump --model DIR [--max-det N] IMAGE...
 *
 * DIR holds NAME.cfg, NAME.weights and coco.names as scripts/fetch-models installs them (NAME = the
 * folder's name). Per image: {"image": PATH, "width": W, "height": H, "detections": [{"class_id": C,
 * "confidence": S, "box": [x1, y1, x2, y2]}]}, floats as %.9g (they read back as the same float).
 * Images are decoded as visiond decodes them (EXIF orientation applied). Exit status 0, 1 on an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "detect.h"
#include "kern.h"
#include "net.h"

#define MAX_DETS 1000

static int load(const char *dir, struct eng_net **net, struct eng_err *err)
{
    const char *slash = strrchr(dir, '/');
    const char *name = slash && slash[1] ? slash + 1 : dir;
    char cfg[4096], weights[4096], names[4096];
    snprintf(cfg, sizeof cfg, "%s/%s.cfg", dir, name);
    snprintf(weights, sizeof weights, "%s/%s.weights", dir, name);
    snprintf(names, sizeof names, "%s/coco.names", dir);
    return eng_darknet_load(cfg, weights, names, NULL, net, err);
}

static void dump(const char *path, const struct eng_image *img, const struct eng_detection *d, int n)
{
    printf("{\"image\": \"%s\", \"width\": %d, \"height\": %d, \"detections\": [", path, img->width,
           img->height);
    for (int i = 0; i < n; i++)
        printf("%s{\"class_id\": %d, \"confidence\": %.9g, \"box\": [%.9g, %.9g, %.9g, %.9g]}", i ? ", " : "",
               d[i].class_id, (double)d[i].confidence, (double)d[i].box.x1, (double)d[i].box.y1,
               (double)d[i].box.x2, (double)d[i].box.y2);
    printf("]}\n");
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    struct eng_detect_params params;
    eng_detect_params_default(&params);
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--model") == 0)
            model = argv[i + 1];
        else if (strcmp(argv[i], "--max-det") == 0)
            params.max_det = atoi(argv[i + 1]);
        else
            break;
    }
    if (!model || i >= argc || params.max_det < 1 || params.max_det > MAX_DETS) {
        fprintf(stderr, "usage: visiond_detdump --model DIR [--max-det N] IMAGE...\n");
        return 2;
    }
    if (eng_kern_env_error()) {
        fprintf(stderr, "visiond_detdump: %s\n", eng_kern_env_error());
        return 2;
    }
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    struct eng_net *net = NULL;
    struct eng_ctx *ctx = NULL;
    struct eng_detection *dets = calloc(MAX_DETS, sizeof *dets);
    if (!dets || load(model, &net, &err) || !(ctx = eng_ctx_new(net, &err))) {
        fprintf(stderr, "visiond_detdump: %s\n", dets ? eng_err_format(&err, buf, sizeof buf) : "out of memory");
        free(dets);
        eng_net_free(net);
        return 1;
    }
    int status = 0;
    for (; i < argc; i++) {
        struct eng_image img = {0};
        const struct eng_decode_opts dopts = {.apply_exif = 1};
        int n = -1;
        if (eng_image_load(argv[i], &dopts, &img, NULL, &err) == 0)
            n = eng_detect(net, ctx, &img, &params, dets, MAX_DETS, NULL, &err);
        if (n < 0) {
            fprintf(stderr, "visiond_detdump: %s\n", eng_err_format(&err, buf, sizeof buf));
            status = 1;
        } else {
            dump(argv[i], &img, dets, n);
        }
        eng_image_release(&img);
    }
    eng_ctx_free(ctx);
    eng_net_free(net);
    free(dets);
    return status;
}
