/* srv_cli.c - command-line tools over the engine. Output is JSON Lines on stdout; messages on stderr. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "darknet.h"
#include "detect.h"
#include "draw.h"
#include "image.h"
#include "net.h"
#include "proto_detect.h"
#include "proto_errors.h"
#include "srv_blas.h"
#include "srv_cli.h"
#include "srv_cli_common.h"
#include "srv_model.h"
#include "team.h"

enum { EXIT_USAGE = 2 };

enum {
    OPT_MODEL = 256, OPT_MODELS_DIR, OPT_CFG, OPT_WEIGHTS, OPT_NAMES, OPT_CONF, OPT_IOU, OPT_CLASSES,
    OPT_DRAW, OPT_AGNOSTIC, OPT_MAX_DET, OPT_NO_EXIF, OPT_LETTERBOX, OPT_THREADS, OPT_INPUT, OPT_OUT,
    OPT_RUNS, OPT_WARMUP, OPT_SIZE, OPT_PROFILE, OPT_IMAGE, OPT_MAX_PIXELS, OPT_END_TO_END,
};

static const struct option long_options[] = {
    {"model", required_argument, 0, OPT_MODEL},
    {"models-dir", required_argument, 0, OPT_MODELS_DIR},
    {"cfg", required_argument, 0, OPT_CFG},
    {"weights", required_argument, 0, OPT_WEIGHTS},
    {"names", required_argument, 0, OPT_NAMES},
    {"conf", required_argument, 0, OPT_CONF},
    {"iou", required_argument, 0, OPT_IOU},
    {"classes", required_argument, 0, OPT_CLASSES},
    {"draw", required_argument, 0, OPT_DRAW},
    {"agnostic", no_argument, 0, OPT_AGNOSTIC},
    {"max-det", required_argument, 0, OPT_MAX_DET},
    {"no-exif", no_argument, 0, OPT_NO_EXIF},
    {"letterbox", no_argument, 0, OPT_LETTERBOX},
    {"threads", required_argument, 0, OPT_THREADS},
    {"input", required_argument, 0, OPT_INPUT},
    {"out", required_argument, 0, OPT_OUT},
    {"runs", required_argument, 0, OPT_RUNS},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"size", required_argument, 0, OPT_SIZE},
    {"profile", no_argument, 0, OPT_PROFILE},
    {"image", required_argument, 0, OPT_IMAGE},
    {"end-to-end", no_argument, 0, OPT_END_TO_END},
    {"max-pixels", required_argument, 0, OPT_MAX_PIXELS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

struct cli_opts {
    struct srv_model_spec model;
    /* --conf, --iou, --agnostic, --max-det, --classes, --no-exif: the HTTP parameters, checked by
     * proto/ as POST /v1/detect checks them; det is what they give on the loaded model. */
    struct proto_detect_request params;
    struct eng_detect_params det;
    int letterbox;
    const char *draw, *input, *out, *image;
    int threads, runs, warmup, profile, end_to_end;
    unsigned long long max_pixels;
};

static const char usage_text[] =
    "usage: visiond detect [--model NAME | --cfg C --weights W --names N] [--models-dir DIR]\n"
    "                      [--conf 0.25] [--iou 0.45] [--agnostic] [--max-det 100]\n"
    "                      [--classes person,car] [--letterbox] [--no-exif] [--size WxH]\n"
    "                      [--threads N] [--draw OUT.png|DIR] IMAGE...\n"
    "       visiond forward (--model NAME | --cfg C --weights W) --input IN.f32 --out PREFIX\n"
    "       visiond bench (--model NAME | --cfg C --weights W) [--input IN.f32 | --image IMG]\n"
    "                      [--threads N] [--runs 20] [--warmup 3] [--profile]\n"
    "                      [--end-to-end --image IMG]  (time decode + detect, a /v1/detect job)\n"
    "       visiond bench --faces --image PHOTO [...]  (see `visiond bench --faces --help`)\n"
    "       visiond bench --sgemm [--threads N] [--size 1024]  (OpenBLAS sgemm GFLOP/s)\n";

int srv_cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "visiond: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage);
    va_end(ap);
    return EXIT_USAGE;
}

int srv_cli_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_size(const char *s, int *w, int *h)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    if (x)
        *x = '\0';
    if (srv_cli_int(buf, 32, 4096, w))
        return -1;
    *h = *w;
    return x ? srv_cli_int(x + 1, 32, 4096, h) : 0;
}

int srv_cli_param(const struct srv_param_sink *sink, const char *option, const char *key,
                  const char *value, const char *usage)
{
    struct proto_err e;
    if (sink->set(sink->req, key, value, &e) == 0)
        return 0;
    srv_cli_param_error(option, &e, usage);
    return EXIT_USAGE;
}

void srv_cli_param_error(const char *option, const struct proto_err *e, const char *usage)
{
    /* proto's message starts with the parameter's name; the option takes its place. */
    const size_t k = strlen(e->field);
    const char *why = k && strncmp(e->msg, e->field, k) == 0 && e->msg[k] == ':' ? e->msg + k + 2 : e->msg;
    fprintf(stderr, "visiond: --%s: %s\n%s", option, why, usage ? usage : "");
}

/* Parses options into *o; returns 0, or an exit status for usage errors / --help. Release o->params. */
static int parse_opts_into(int argc, char **argv, struct cli_opts *o)
{
    memset(o, 0, sizeof *o);
    proto_detect_request_init(&o->params, PROTO_DIALECT_NATIVE);
    const struct srv_param_sink sink = srv_params_detect_sink(&o->params);
    eng_detect_params_default(&o->det);
    o->runs = 20;
    o->warmup = 3;
    o->threads = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        int bad = 0, rc = 0;
        switch (c) {
        case OPT_MODEL: o->model.name = optarg; break;
        case OPT_MODELS_DIR: o->model.models_dir = optarg; break;
        case OPT_CFG: o->model.cfg = optarg; break;
        case OPT_WEIGHTS: o->model.weights = optarg; break;
        case OPT_NAMES: o->model.names = optarg; break;
        case OPT_CONF: rc = srv_cli_param(&sink, "conf", "conf", optarg, usage_text); break;
        case OPT_IOU: rc = srv_cli_param(&sink, "iou", "iou", optarg, usage_text); break;
        case OPT_CLASSES: rc = srv_cli_param(&sink, "classes", "classes", optarg, usage_text); break;
        case OPT_DRAW: o->draw = optarg; break;
        case OPT_AGNOSTIC: rc = srv_cli_param(&sink, "agnostic", "agnostic_nms", "true", usage_text); break;
        case OPT_MAX_DET: rc = srv_cli_param(&sink, "max-det", "max_det", optarg, usage_text); break;
        case OPT_NO_EXIF: rc = srv_cli_param(&sink, "no-exif", "exif", "false", usage_text); break;
        case OPT_LETTERBOX: o->letterbox = 1; break;
        case OPT_THREADS: bad = srv_cli_int(optarg, 1, ENG_TEAM_MAX, &o->threads); break;
        case OPT_INPUT: o->input = optarg; break;
        case OPT_OUT: o->out = optarg; break;
        case OPT_RUNS: bad = srv_cli_int(optarg, 1, 100000, &o->runs); break;
        case OPT_WARMUP: bad = srv_cli_int(optarg, 0, 100000, &o->warmup); break;
        case OPT_SIZE: bad = parse_size(optarg, &o->model.width, &o->model.height); break;
        case OPT_PROFILE: o->profile = 1; break;
        case OPT_IMAGE: o->image = optarg; break;
        case OPT_END_TO_END: o->end_to_end = 1; break;
        case OPT_MAX_PIXELS: {
            int mp;
            bad = srv_cli_int(optarg, 1, 1000000000, &mp);
            o->max_pixels = (unsigned long long)mp;
            break;
        }
        case 'h': fputs(usage_text, stdout); return EXIT_SUCCESS + 100;
        default: return srv_cli_usage_error(usage_text, "%s", "invalid option");
        }
        if (rc)
            return rc;
        if (bad)
            return srv_cli_usage_error(usage_text, "invalid value '%s'", optarg);
    }
    if (o->model.cfg && !o->model.weights)
        return srv_cli_usage_error(usage_text, "%s", "--cfg needs --weights");
    return 0;
}

/* parse_opts_into; on anything but 0, o->params is released already. */
static int parse_opts(int argc, char **argv, struct cli_opts *o)
{
    const int rc = parse_opts_into(argc, argv, o);
    if (rc)
        proto_detect_request_release(&o->params);
    return rc;
}

int srv_cli_report(const struct eng_err *err)
{
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    fprintf(stderr, "visiond: %s\n", eng_err_format(err, buf, sizeof buf));
    return EXIT_FAILURE;
}

double srv_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* o->det for net: the engine's defaults, then the parameters given, their classes resolved against
 * the model's names into *mask (new, caller frees), as the daemon resolves them. */
static int model_params(struct cli_opts *o, const struct eng_net *net, unsigned char **mask)
{
    struct proto_err e;
    if (!(*mask = calloc((size_t)net->classes + 1, 1))) {
        fprintf(stderr, "visiond: out of memory\n");
        return EXIT_FAILURE;
    }
    if (proto_detect_request_params(&o->params, net, NULL, *mask, &o->det, &e)) {
        srv_cli_param_error("classes", &e, NULL);
        return EXIT_USAGE;
    }
    o->det.letterbox = o->letterbox;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int srv_cli_is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void srv_cli_draw_path(const char *draw, const char *image_path, char *out, size_t size)
{
    if (srv_cli_is_directory(draw)) {
        char stem[1024];
        snprintf(stem, sizeof stem, "%s", base_name(image_path));
        char *dot = strrchr(stem, '.');
        if (dot)
            *dot = '\0';
        snprintf(out, size, "%s/%s.png", draw, stem);
    } else {
        snprintf(out, size, "%s", draw);
    }
}

static int draw_result(const struct cli_opts *o, const struct eng_net *net, struct eng_image *img,
                       const char *image_path, const struct eng_detection *dets, int n,
                       struct eng_err *err)
{
    char path[4096];
    srv_cli_draw_path(o->draw, image_path, path, sizeof path);
    struct eng_draw_box *boxes = calloc((size_t)n + 1, sizeof *boxes);
    char (*labels)[96] = calloc((size_t)n + 1, sizeof *labels);
    if (!boxes || !labels) {
        free(boxes);
        free(labels);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(labels[i], sizeof labels[i], "%s %.2f",
                 eng_net_class_name(net, dets[i].class_id, num, sizeof num), dets[i].confidence);
        boxes[i] = (struct eng_draw_box){dets[i].box.x1, dets[i].box.y1, dets[i].box.x2,
                                         dets[i].box.y2, dets[i].class_id, labels[i]};
    }
    eng_draw_boxes(img, boxes, n);
    const int rc = eng_image_write_png(img, path, err);
    free(boxes);
    free(labels);
    return rc;
}

void srv_cli_print_line(char *json)
{
    if (json) {
        puts(json);
        fflush(stdout);
    }
    free(json);
}

/* The line for an input that failed: its engine error, with the engine's place (the file). */
static void print_error(const char *path, const struct eng_err *err)
{
    char msg[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    struct proto_err e;
    proto_err_set(&e, proto_code_from_eng(err->kind), NULL, "%s", eng_err_format(err, msg, sizeof msg));
    srv_cli_print_line(proto_error_line(path, &e));
}

static int detect_one(const struct cli_opts *o, const struct eng_net *net, struct eng_ctx *ctx,
                      const char *path, struct eng_detection *dets)
{
    struct eng_err err = {0};
    struct eng_image img = {0};
    const struct eng_decode_opts dopts = {.max_pixels = o->max_pixels, .apply_exif = o->params.exif};
    const double t0 = srv_cli_now_ms();
    if (eng_image_load(path, &dopts, &img, NULL, &err)) {
        print_error(path, &err);
        return srv_cli_report(&err);
    }
    const double decode_ms = srv_cli_now_ms() - t0;
    struct eng_detect_timing t;
    const int n = eng_detect(net, ctx, &img, &o->det, dets, o->det.max_det, &t, &err);
    int rc = EXIT_SUCCESS;
    if (n < 0) {
        print_error(path, &err);
        rc = srv_cli_report(&err);
    } else {
        const struct proto_detect_result r = {
            .image = path, .width = img.width, .height = img.height, .net = net, .dets = dets,
            .count = n, .decode_ms = decode_ms + t.preprocess_ms, .infer_ms = t.infer_ms,
            .nms_ms = t.nms_ms};
        srv_cli_print_line(proto_detect_result_json(&r));
        if (o->draw && draw_result(o, net, &img, path, dets, n, &err))
            rc = srv_cli_report(&err);
    }
    eng_image_release(&img);
    return rc;
}

/* --threads N: each layer split across a team of N threads (engine/team.h), OpenBLAS at one thread
 * inside each task, so N threads are busy, never N x BLAS threads. Sets *team (NULL for one thread). */
static int cli_team(int threads, struct eng_ctx *ctx, struct eng_team **team, struct eng_err *err)
{
    *team = NULL;
    if (threads <= 1)
        return 0;
    if (!(*team = eng_team_new(threads, NULL, err)))
        return -1;
    return eng_ctx_set_team(ctx, *team, err);
}

int srv_cli_detect(int argc, char **argv)
{
    struct cli_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 100 ? EXIT_SUCCESS : rc;
    if (optind >= argc)
        rc = srv_cli_usage_error(usage_text, "%s", "detect needs at least one IMAGE");
    else if (o.draw && argc - optind > 1 && !srv_cli_is_directory(o.draw))
        rc = srv_cli_usage_error(usage_text, "--draw %s: with several images, --draw needs an existing directory", o.draw);
    if (rc) {
        proto_detect_request_release(&o.params);
        return rc;
    }
    srv_blas_set_threads(1);
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    struct eng_ctx *ctx = NULL;
    struct eng_team *team = NULL;
    unsigned char *allowed = NULL;
    struct eng_detection *dets = NULL;
    if (srv_model_load(&o.model, &net, &err) || !(ctx = eng_ctx_new(net, &err)) ||
        cli_team(o.threads, ctx, &team, &err)) {
        rc = srv_cli_report(&err);
        goto done;
    }
    if ((rc = model_params(&o, net, &allowed)))
        goto done;
    if (!(dets = calloc((size_t)o.det.max_det, sizeof *dets))) {
        rc = srv_cli_report(&(struct eng_err){ENG_ERR_NOMEM, "", "out of memory"});
        goto done;
    }
    rc = EXIT_SUCCESS;
    for (int i = optind; i < argc; i++)
        if (detect_one(&o, net, ctx, argv[i], dets) != EXIT_SUCCESS)
            rc = EXIT_FAILURE;
done:
    free(dets);
    free(allowed);
    eng_ctx_free(ctx);
    eng_team_free(team);
    eng_net_free(net);
    proto_detect_request_release(&o.params);
    return rc;
}

/* Reads a raw float32 CHW tensor that must match the net's input exactly. */
static int read_input(const char *path, const struct eng_net *net, float *dst, struct eng_err *err)
{
    unsigned char *data;
    size_t len;
    const size_t want = eng_shape_size(net->input) * sizeof(float);
    if (eng_read_file(path, want + 1, &data, &len, err))
        return -1;
    int rc = 0;
    if (len != want)
        rc = eng_err_set(err, ENG_ERR_INVALID, path, "input is %zu bytes; the model takes 3x%dx%d "
                         "float32 = %zu bytes", len, net->input.h, net->input.w, want);
    else
        memcpy(dst, data, want);
    free(data);
    return rc;
}

static int write_floats(const char *path, const float *v, size_t n, struct eng_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot create: %s", strerror(errno));
    const size_t put = fwrite(v, sizeof(float), n, f);
    if (fclose(f) != 0 || put != n)
        return eng_err_set(err, ENG_ERR_IO, path, "write failed");
    return 0;
}

static int write_heads(const struct eng_net *net, struct eng_ctx *ctx, const char *prefix,
                       struct eng_err *err)
{
    printf("{\"heads\":[");
    for (int k = 0; k < net->n_heads; k++) {
        const struct eng_layer *l = &net->layers[net->heads[k]];
        const size_t rows = eng_head_rows_count(l);
        const int cols = 5 + l->p.head.classes;
        char path[4096];
        snprintf(path, sizeof path, "%s.%d.f32", prefix, k);
        eng_head_rows(l, eng_ctx_output(ctx, l->index), net->input.w, net->input.h, ctx->rows);
        if (write_floats(path, ctx->rows, rows * cols, err))
            return -1;
        printf("%s{\"layer\":%d,\"rows\":%zu,\"cols\":%d,\"file\":\"%s\"}", k ? "," : "", l->index,
               rows, cols, path);
    }
    printf("]}\n");
    return 0;
}

int srv_cli_forward(int argc, char **argv)
{
    struct cli_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 100 ? EXIT_SUCCESS : rc;
    proto_detect_request_release(&o.params); /* forward runs no detection */
    if (!o.input || !o.out)
        return srv_cli_usage_error(usage_text, "%s", "forward needs --input and --out");
    srv_blas_set_threads(1);
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    struct eng_ctx *ctx = NULL;
    struct eng_team *team = NULL;
    if (srv_model_load(&o.model, &net, &err) || !(ctx = eng_ctx_new(net, &err)) ||
        cli_team(o.threads, ctx, &team, &err) || read_input(o.input, net, ctx->input, &err)) {
        rc = srv_cli_report(&err);
    } else {
        eng_net_forward(net, ctx);
        rc = write_heads(net, ctx, o.out, &err) ? srv_cli_report(&err) : EXIT_SUCCESS;
    }
    eng_ctx_free(ctx);
    eng_team_free(team);
    eng_net_free(net);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A fixed pseudo-random input in [0,1): benchmarks need realistic, not zero, activations. */
static void fill_pseudo_random(float *x, size_t n)
{
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
}

static int bench_input(const struct cli_opts *o, const struct eng_net *net, struct eng_ctx *ctx,
                       struct eng_err *err)
{
    if (o->input)
        return read_input(o->input, net, ctx->input, err);
    if (!o->image) {
        fill_pseudo_random(ctx->input, eng_shape_size(net->input));
        return 0;
    }
    struct eng_image img = {0};
    const struct eng_decode_opts dopts = {.apply_exif = 1};
    int rc = eng_image_load(o->image, &dopts, &img, NULL, err) ||
             eng_image_to_input(&img, net->input.w, net->input.h, 0, ctx->input, NULL, err);
    eng_image_release(&img);
    return rc ? -1 : 0;
}

void srv_cli_print_profile(const struct eng_net *net, const double *total_ms, int runs)
{
    fprintf(stderr, "%5s %-14s %-16s %10s %9s\n", "layer", "kind", "output", "ms", "GFLOP/s");
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        const double ms = total_ms[i] / runs;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
        fprintf(stderr, "%5d %-14s %-16s %10.4f %9.2f\n", i, eng_layer_kind_name(l->kind), shape, ms,
                ms > 0 ? l->flops / (ms * 1e6) : 0.0);
    }
}

/* What --end-to-end times: the image file's bytes, and room for its detections. */
struct bench_job {
    unsigned char *bytes; /* NULL: time the forward pass alone */
    size_t len;
    struct eng_detection *dets;
};

/* One timed run: the forward pass on the prepared input, or (--end-to-end) what a /v1/detect worker
 * does with a request's bytes: decode, resize, forward, boxes and NMS. */
static int bench_once(const struct cli_opts *o, const struct eng_net *net, struct eng_ctx *ctx,
                      const struct bench_job *job, struct eng_err *err)
{
    if (!job->bytes) {
        eng_net_forward(net, ctx);
        return 0;
    }
    struct eng_image img = {0};
    const struct eng_decode_opts dopts = {.max_pixels = o->max_pixels, .apply_exif = o->params.exif};
    const int rc = eng_image_decode(job->bytes, job->len, &dopts, &img, NULL, err) ||
                   eng_detect(net, ctx, &img, &o->det, job->dets, o->det.max_det, NULL, err) < 0;
    eng_image_release(&img);
    return rc ? -1 : 0;
}

static int bench_job_open(const struct cli_opts *o, struct bench_job *job, struct eng_err *err)
{
    if (!o->end_to_end)
        return 0;
    if (!o->image)
        return eng_err_set(err, ENG_ERR_INVALID, "--end-to-end", "needs --image IMG");
    if (eng_read_file(o->image, (size_t)1 << 30, &job->bytes, &job->len, err))
        return -1;
    if (!(job->dets = calloc((size_t)o->det.max_det, sizeof *job->dets)))
        return eng_err_set(err, ENG_ERR_NOMEM, "", "out of memory");
    return 0;
}

int srv_cli_bench(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (strcmp(argv[i], "--faces") == 0)
            return srv_cli_bench_faces(argc, argv);
        else if (strcmp(argv[i], "--sgemm") == 0)
            return srv_cli_bench_sgemm(argc, argv);
    struct cli_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 100 ? EXIT_SUCCESS : rc;
    srv_blas_set_threads(1);
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    struct eng_ctx *ctx = NULL;
    struct eng_team *team = NULL;
    struct bench_job job = {0};
    unsigned char *mask = NULL;
    double *ms = calloc((size_t)o.runs, sizeof *ms);
    double *layer_total = NULL;
    if (!ms || srv_model_load(&o.model, &net, &err) || !(ctx = eng_ctx_new(net, &err)) ||
        cli_team(o.threads, ctx, &team, &err) ||
        !(layer_total = calloc((size_t)net->n_layers + 1, sizeof *layer_total)) ||
        bench_input(&o, net, ctx, &err)) {
        rc = srv_cli_report(&err);
        goto done;
    }
    if ((rc = model_params(&o, net, &mask)))
        goto done;
    if (bench_job_open(&o, &job, &err)) {
        rc = srv_cli_report(&err);
        goto done;
    }
    for (int i = 0; i < o.warmup; i++)
        if (bench_once(&o, net, ctx, &job, &err)) {
            rc = srv_cli_report(&err);
            goto done;
        }
    ctx->profile = o.profile;
    for (int i = 0; i < o.runs; i++) {
        const double t0 = srv_cli_now_ms();
        if (bench_once(&o, net, ctx, &job, &err)) {
            rc = srv_cli_report(&err);
            goto done;
        }
        ms[i] = srv_cli_now_ms() - t0;
        for (int j = 0; o.profile && j < net->n_layers; j++)
            layer_total[j] += ctx->layer_ms[j];
    }
    double sum = 0;
    for (int i = 0; i < o.runs; i++)
        sum += ms[i];
    qsort(ms, (size_t)o.runs, sizeof *ms, cmp_double);
    const double median = o.runs % 2 ? ms[o.runs / 2] : (ms[o.runs / 2 - 1] + ms[o.runs / 2]) / 2;
    printf("{\"model\":\"%s\",\"input\":[%d,%d],\"threads\":%d,\"end_to_end\":%s,\"runs\":%d,\"median_ms\":%.4f,"
           "\"min_ms\":%.4f,\"mean_ms\":%.4f,\"gflops\":%.3f,\"gflop_per_s\":%.2f,\"blas_core\":\"%s\"}\n",
           net->name ? net->name : "", net->input.w, net->input.h, o.threads, job.bytes ? "true" : "false",
           o.runs, median, ms[0],
           sum / o.runs, net->flops / 1e9, net->flops / (median * 1e6), srv_blas_core());
    if (o.profile)
        srv_cli_print_profile(net, layer_total, o.runs);
    rc = EXIT_SUCCESS;
done:
    free(job.bytes);
    free(job.dets);
    free(mask);
    proto_detect_request_release(&o.params);
    free(layer_total);
    free(ms);
    eng_ctx_free(ctx);
    eng_team_free(team);
    eng_net_free(net);
    return rc;
}
