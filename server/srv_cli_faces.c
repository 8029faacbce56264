/* srv_cli_faces.c - `visiond faces`, `visiond verify` and `visiond bench --faces`: the face pipeline
 * from the command line.
 *
 * The options that mirror an HTTP parameter (--det-threshold = det_threshold, ...) are checked by
 * proto/ with that parameter's rules; the work is srv_face_steps, the steps the face routes run; and
 * each result is printed with the HTTP API's encoder. So a `visiond faces` line is the body
 * POST /v1/faces answers for the same image and parameters (without request_id), a `visiond verify`
 * line that of POST /v1/verify. An input that fails prints {"image": PATH, "error": {...}} instead,
 * and a message on stderr. The face models are read from <models-dir>/faces. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "draw.h"
#include "face.h"
#include "image.h"
#include "proto_face.h"
#include "srv_blas.h"
#include "srv_cli.h"
#include "srv_cli_common.h"
#include "srv_face_steps.h"
#include "srv_model.h"
#include "team.h"

enum { EXIT_USAGE = 2 };
enum { BOX_COLOUR = 0, POINT_COLOUR = 6 }; /* palette entries (draw.h class ids): red boxes, cyan points */

enum {
    OPT_MODELS_DIR = 256, OPT_DET_THRESHOLD, OPT_INPUT_SIZE, OPT_NO_EXIF, OPT_THREADS, OPT_DRAW,
    OPT_LIMIT, OPT_NO_LANDMARKS, OPT_EMBEDDING, OPT_ALIGNED, OPT_MATCH_THRESHOLD, OPT_FACE_SELECT,
    OPT_FACES, OPT_IMAGE, OPT_CHIP, OPT_RUNS, OPT_WARMUP, OPT_PROFILE,
};

#define COMMON_OPTIONS                                                                              \
    {"models-dir", required_argument, 0, OPT_MODELS_DIR},                                           \
    {"det-threshold", required_argument, 0, OPT_DET_THRESHOLD},                                     \
    {"input-size", required_argument, 0, OPT_INPUT_SIZE},                                           \
    {"no-exif", no_argument, 0, OPT_NO_EXIF},                                                       \
    {"threads", required_argument, 0, OPT_THREADS},                                                 \
    {"help", no_argument, 0, 'h'}

static const struct option faces_options[] = {
    COMMON_OPTIONS,
    {"draw", required_argument, 0, OPT_DRAW},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"no-landmarks", no_argument, 0, OPT_NO_LANDMARKS},
    {"embedding", no_argument, 0, OPT_EMBEDDING},
    {0, 0, 0, 0},
};

static const struct option verify_options[] = {
    COMMON_OPTIONS,
    {"aligned", no_argument, 0, OPT_ALIGNED},
    {"match-threshold", required_argument, 0, OPT_MATCH_THRESHOLD},
    {"face-select", required_argument, 0, OPT_FACE_SELECT},
    {0, 0, 0, 0},
};

static const struct option bench_options[] = {
    COMMON_OPTIONS,
    {"faces", no_argument, 0, OPT_FACES},
    {"image", required_argument, 0, OPT_IMAGE},
    {"chip", required_argument, 0, OPT_CHIP},
    {"runs", required_argument, 0, OPT_RUNS},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"profile", no_argument, 0, OPT_PROFILE},
    {0, 0, 0, 0},
};

static const char faces_usage[] =
    "usage: visiond faces [--det-threshold 0.5] [--input-size 416] [--limit N] [--no-landmarks]\n"
    "                     [--embedding] [--no-exif] [--draw OUT.png|DIR] [--models-dir DIR]\n"
    "                     [--threads N] IMAGE...\n"
    "  One JSON line per image, the body POST /v1/faces answers: faces largest first, with their\n"
    "  box, det_score, 68 landmarks and (--embedding) 128-d descriptor. --limit 0 = all faces.\n";
static const char verify_usage[] =
    "usage: visiond verify [--aligned] [--match-threshold 0.6] [--face-select largest|best]\n"
    "                      [--det-threshold 0.5] [--input-size 416] [--no-exif] [--models-dir DIR]\n"
    "                      [--threads N] IMAGE1 IMAGE2\n"
    "  One JSON line, the body POST /v1/verify answers: verified (distance < match threshold),\n"
    "  distance, squared_distance and the face used in each image. Exit 0 whether or not they match,\n"
    "  1 if an image cannot be read or has no face, 2 for bad usage.\n";
static const char bench_usage[] =
    "usage: visiond bench --faces --image PHOTO [--chip CHIP] [--input-size 416] [--det-threshold 0.5]\n"
    "                     [--runs 20] [--warmup 3] [--threads 1] [--models-dir DIR] [--profile]\n"
    "  Median and minimum milliseconds of the face detector on PHOTO (padding and resize included)\n"
    "  and on a PHOTO resized to the input size, the landmark net on its best face, the recognition\n"
    "  net on CHIP (default: 150x150 noise), and the whole chain, with the process's CPU ms per run;\n"
    "  one JSON line. --profile: then the time and GFLOP/s of every layer of the three nets, on stderr.\n";

/* What the three commands parse. The options that are HTTP parameters go into the proto requests. */
struct face_cli {
    const char *models_dir, *draw, *image, *chip;
    int threads, runs, warmup, profile;
    struct proto_face_request faces;    /* `faces`, `bench --faces` */
    struct proto_verify_request verify; /* `verify` */
};

/* --option VALUE for the HTTP parameter `key`, through the route's sink (srv_cli_param). */
static int set_param(struct face_cli *c, int verify, const char *option, const char *key,
                     const char *value, const char *usage)
{
    const struct srv_param_sink sink = verify ? srv_params_verify_sink(&c->verify)
                                              : srv_params_faces_sink(&c->faces);
    return srv_cli_param(&sink, option, key, value, usage);
}

/* Parses argv for one command (verify: the verify request takes the parameters). Returns 0, an exit
 * status for usage errors, or -1 after --help. */
static int parse(int argc, char **argv, const struct option *table, int verify, const char *usage,
                 struct face_cli *c)
{
    memset(c, 0, sizeof *c);
    proto_face_request_init(&c->faces, PROTO_DIALECT_NATIVE);
    proto_verify_request_init(&c->verify, PROTO_DIALECT_NATIVE);
    c->threads = 1;
    c->runs = 20;
    c->warmup = 3;
    optind = 1;
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        switch (opt) {
        case OPT_MODELS_DIR: c->models_dir = optarg; break;
        case OPT_DET_THRESHOLD:
            rc = set_param(c, verify, "det-threshold", "det_threshold", optarg, usage);
            break;
        case OPT_INPUT_SIZE: rc = set_param(c, verify, "input-size", "input_size", optarg, usage); break;
        case OPT_NO_EXIF: rc = set_param(c, verify, "no-exif", "exif", "false", usage); break;
        case OPT_THREADS:
            if (srv_cli_int(optarg, 1, ENG_TEAM_MAX, &c->threads))
                rc = srv_cli_usage_error(usage, "invalid --threads '%s'", optarg);
            break;
        case OPT_DRAW: c->draw = optarg; break;
        case OPT_LIMIT: rc = set_param(c, 0, "limit", "limit", optarg, usage); break;
        case OPT_NO_LANDMARKS: rc = set_param(c, 0, "no-landmarks", "landmarks", "false", usage); break;
        case OPT_EMBEDDING: rc = set_param(c, 0, "embedding", "embedding", "true", usage); break;
        case OPT_ALIGNED: rc = set_param(c, 1, "aligned", "aligned", "true", usage); break;
        case OPT_MATCH_THRESHOLD:
            rc = set_param(c, 1, "match-threshold", "match_threshold", optarg, usage);
            break;
        case OPT_FACE_SELECT: rc = set_param(c, 1, "face-select", "face_select", optarg, usage); break;
        case OPT_FACES: break;
        case OPT_PROFILE: c->profile = 1; break;
        case OPT_IMAGE: c->image = optarg; break;
        case OPT_CHIP: c->chip = optarg; break;
        case OPT_RUNS:
            if (srv_cli_int(optarg, 1, 100000, &c->runs))
                rc = srv_cli_usage_error(usage, "invalid --runs '%s'", optarg);
            break;
        case OPT_WARMUP:
            if (srv_cli_int(optarg, 0, 100000, &c->warmup))
                rc = srv_cli_usage_error(usage, "invalid --warmup '%s'", optarg);
            break;
        case 'h': fputs(usage, stdout); rc = -1; break;
        default: rc = srv_cli_usage_error(usage, "%s", "invalid option");
        }
    }
    return rc;
}

static void release(struct face_cli *c)
{
    proto_face_request_release(&c->faces);
    proto_verify_request_release(&c->verify);
}

static int out_of_memory(void)
{
    fprintf(stderr, "visiond: out of memory\n");
    return EXIT_FAILURE;
}

/* The models of <models-dir>/faces, loaded for detector inputs up to input_size, and a context. */
struct face_engine {
    struct eng_face_models *models;
    struct eng_face_ctx *ctx;
    struct eng_face *faces;               /* SRV_MAX_FACES */
    float (*emb)[ENG_FACE_DESCRIPTOR];    /* SRV_MAX_FACES */
    struct proto_face *out;               /* SRV_MAX_FACES */
    struct eng_team *team;                /* --threads > 1 */
};

static int engine_open(const struct face_cli *c, int input_size, struct face_engine *f)
{
    struct eng_err err = {0};
    char dir[4096];
    memset(f, 0, sizeof *f);
    if (snprintf(dir, sizeof dir, "%s/faces", srv_models_dir(c->models_dir)) >= (int)sizeof dir) {
        fprintf(stderr, "visiond: --models-dir: path too long\n");
        return EXIT_USAGE;
    }
    if (!srv_cli_is_directory(dir)) {
        fprintf(stderr, "visiond: no face models in %s (scripts/fetch-models installs them; or give "
                        "--models-dir / VISIOND_MODELS)\n", dir);
        return EXIT_FAILURE;
    }
    const struct eng_face_load_opts opts = {
        .max_input_size = input_size > ENG_FACE_INPUT_MAX_DEFAULT ? input_size : 0};
    if (eng_face_models_load(dir, &opts, &f->models, &err) || !(f->ctx = eng_face_ctx_new(f->models, &err)))
        return srv_cli_report(&err);
    f->faces = calloc(SRV_MAX_FACES, sizeof *f->faces);
    f->emb = calloc(SRV_MAX_FACES, sizeof *f->emb);
    f->out = calloc(SRV_MAX_FACES, sizeof *f->out);
    if (!f->faces || !f->emb || !f->out)
        return out_of_memory();
    /* --threads N: layers split across a team of N threads, OpenBLAS at one thread inside each */
    srv_blas_set_threads(1);
    if (c->threads > 1 && (!(f->team = eng_team_new(c->threads, NULL, &err)) ||
                           eng_face_ctx_set_team(f->ctx, f->team, &err)))
        return srv_cli_report(&err);
    return 0;
}

static void engine_close(struct face_engine *f)
{
    free(f->faces);
    free(f->emb);
    free(f->out);
    eng_face_ctx_free(f->ctx);
    eng_team_free(f->team);
    eng_face_models_free(f->models);
}

/* An input that failed: its JSON line on stdout, "visiond: PATH: message" on stderr. */
static int fail_file(const char *path, const struct proto_err *e)
{
    srv_cli_print_line(proto_error_line(path, e));
    fprintf(stderr, "visiond: %s: %s\n", path, e->msg);
    return EXIT_FAILURE;
}

static int load_image(const char *path, int exif, struct eng_image *img, struct eng_decode_info *info,
                      const char *field, struct proto_err *e)
{
    struct eng_err err = {0};
    const struct eng_decode_opts o = {.apply_exif = exif};
    return eng_image_load(path, &o, img, info, &err) ? proto_err_from_eng(e, &err, field) : 0;
}

/* ---- visiond faces ----------------------------------------------------------------------------- */

static int draw_faces(const char *draw, const char *image_path, struct eng_image *img,
                      const struct eng_face *faces, int n)
{
    char path[4096];
    struct eng_err err = {0};
    srv_cli_draw_path(draw, image_path, path, sizeof path);
    for (int i = 0; i < n; i++) {
        char label[32];
        snprintf(label, sizeof label, "%.2f", (double)faces[i].score);
        const struct eng_draw_box b = {faces[i].box.x1, faces[i].box.y1, faces[i].box.x2, faces[i].box.y2,
                                       BOX_COLOUR, label};
        eng_draw_boxes(img, &b, 1);
        if (faces[i].has_landmarks)
            eng_draw_points(img, &faces[i].landmarks[0].x, ENG_FACE_LANDMARKS, POINT_COLOUR);
    }
    return eng_image_write_png(img, path, &err) ? srv_cli_report(&err) : EXIT_SUCCESS;
}

static int faces_one(const struct face_cli *c, struct face_engine *f, const char *path)
{
    const struct proto_face_request *p = &c->faces;
    struct proto_face_timing t = {0};
    struct eng_image img = {0};
    struct eng_decode_info info = {0};
    struct proto_err e;
    const double t0 = srv_cli_now_ms();
    if (load_image(path, p->opt.exif, &img, &info, "image", &e))
        return fail_file(path, &e);
    t.decode = srv_cli_now_ms() - t0;
    const int n = srv_face_find(f->models, f->ctx, &img, p, f->faces, f->emb, f->out, SRV_MAX_FACES, &t, &e);
    if (n < 0) {
        eng_image_release(&img);
        return fail_file(path, &e);
    }
    t.total = srv_cli_now_ms() - t0;
    const struct proto_faces_response r = {
        .landmark_model = p->landmarks ? "face_landmark_68" : NULL,
        .recognition_model = p->embedding ? "face_recognition" : NULL, .width = img.width,
        .height = img.height, .exif_rotated = info.exif_rotated, .faces = f->out, .count = n,
        .timing_ms = t};
    char *line = proto_faces_response_json(&r);
    int rc = line ? EXIT_SUCCESS : out_of_memory();
    srv_cli_print_line(line);
    if (rc == EXIT_SUCCESS && c->draw)
        rc = draw_faces(c->draw, path, &img, f->faces, n);
    eng_image_release(&img);
    return rc;
}

int srv_cli_faces(int argc, char **argv)
{
    struct face_cli c;
    struct face_engine f = {0};
    int rc = parse(argc, argv, faces_options, 0, faces_usage, &c);
    if (rc)
        goto done;
    if (optind >= argc)
        rc = srv_cli_usage_error(faces_usage, "%s", "faces needs at least one IMAGE");
    else if (c.draw && argc - optind > 1 && !srv_cli_is_directory(c.draw))
        rc = srv_cli_usage_error(faces_usage, "--draw %s: with several images, --draw needs an existing directory",
                         c.draw);
    if (rc || (rc = engine_open(&c, c.faces.opt.input_size, &f)))
        goto done;
    for (int i = optind; i < argc; i++)
        if (faces_one(&c, &f, argv[i]) != EXIT_SUCCESS)
            rc = EXIT_FAILURE;
done:
    engine_close(&f);
    release(&c);
    return rc < 0 ? EXIT_SUCCESS : rc;
}

/* ---- visiond verify ---------------------------------------------------------------------------- */

int srv_cli_verify(int argc, char **argv)
{
    static const char *const field[2] = {"image1", "image2"};
    struct face_cli c;
    struct face_engine f = {0};
    int rc = parse(argc, argv, verify_options, 1, verify_usage, &c);
    if (rc)
        goto done;
    if (argc - optind != 2)
        rc = srv_cli_usage_error(verify_usage, "%s", "verify needs two images, IMAGE1 IMAGE2");
    if (rc || (rc = engine_open(&c, c.verify.opt.input_size, &f)))
        goto done;
    const struct proto_verify_request *p = &c.verify;
    struct proto_verify_response r = {.threshold = p->match_threshold};
    float desc[2][ENG_FACE_DESCRIPTOR];
    const double t0 = srv_cli_now_ms();
    for (int k = 0; k < 2 && rc == 0; k++) {
        const char *path = argv[optind + k];
        struct eng_image img = {0};
        struct proto_err e;
        const double t1 = srv_cli_now_ms();
        if (load_image(path, p->opt.exif, &img, NULL, field[k], &e)) {
            rc = fail_file(path, &e);
            break;
        }
        r.timing_ms.decode += srv_cli_now_ms() - t1;
        if (srv_face_verify_image(f.models, f.ctx, &img, p, f.faces, SRV_MAX_FACES, desc[k], &r.faces[k],
                                  &r.timing_ms, field[k], &e))
            rc = fail_file(path, &e);
        eng_image_release(&img);
    }
    if (rc == 0) {
        r.squared_distance = eng_face_distance_sq(desc[0], desc[1]);
        r.timing_ms.total = srv_cli_now_ms() - t0;
        char *line = proto_verify_response_json(&r);
        if (!line)
            rc = out_of_memory();
        srv_cli_print_line(line);
    }
done:
    engine_close(&f);
    release(&c);
    return rc < 0 ? EXIT_SUCCESS : rc;
}

/* ---- visiond bench --faces --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct bench_run {
    const struct face_cli *c;
    struct face_engine *f;
    const struct eng_image *photo, *square, *chip;
    struct eng_face_params params;
    struct eng_face first; /* the detector's best face on the photo */
};

enum bench_step { STEP_DETECTOR, STEP_DETECTOR_NET, STEP_LANDMARKS, STEP_DESCRIPTOR, STEP_CHAIN, STEP_COUNT };
static const char *const step_names[STEP_COUNT] = {"detector", "detector_net", "landmarks", "descriptor",
                                                   "full_chain"};

/* One run of a step; 0, or -1 with err. */
static int bench_step(struct bench_run *b, enum bench_step s, struct eng_err *err)
{
    struct face_engine *f = b->f;
    float d[ENG_FACE_DESCRIPTOR];
    switch (s) {
    case STEP_DETECTOR:
    case STEP_DETECTOR_NET: {
        const struct eng_image *img = s == STEP_DETECTOR ? b->photo : b->square;
        return eng_face_detect(f->models, f->ctx, img, &b->params, f->faces, SRV_MAX_FACES, err) < 0 ? -1 : 0;
    }
    case STEP_LANDMARKS: {
        struct eng_face face = b->first;
        return eng_face_landmarks(f->models, f->ctx, b->photo, &face, err);
    }
    case STEP_DESCRIPTOR:
        return eng_face_descriptor_aligned(f->models, f->ctx, b->chip, d, err);
    case STEP_CHAIN: {
        /* face-api's detectAllFaces().withFaceLandmarks().withFaceDescriptors() */
        const int n = eng_face_detect(f->models, f->ctx, b->photo, &b->params, f->faces, SRV_MAX_FACES, err);
        for (int i = 0; i < n; i++)
            if (eng_face_landmarks(f->models, f->ctx, b->photo, &f->faces[i], err) ||
                eng_face_descriptor(f->models, f->ctx, b->photo, &f->faces[i], d, err))
                return -1;
        return n < 0 ? -1 : 0;
    }
    default: return -1;
    }
}

/* The process's CPU time (every thread's) in ms: with --threads 1, a step's own work, whatever else the
 * machine runs (bench/run's CPU-time table). */
static double cpu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int bench_time(struct bench_run *b, enum bench_step s, double *ms, double *median, double *min,
                      double *cpu, struct eng_err *err)
{
    const int runs = b->c->runs;
    for (int i = 0; i < b->c->warmup; i++)
        if (bench_step(b, s, err))
            return -1;
    const double cpu0 = cpu_now_ms();
    for (int i = 0; i < runs; i++) {
        const double t0 = srv_cli_now_ms();
        if (bench_step(b, s, err))
            return -1;
        ms[i] = srv_cli_now_ms() - t0;
    }
    *cpu = (cpu_now_ms() - cpu0) / runs;
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    *median = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    *min = ms[0];
    return 0;
}

/* A fixed 150x150 pseudo-random chip, when none is given: the net's cost does not depend on it. */
static int noise_chip(struct eng_image *img)
{
    const size_t n = (size_t)ENG_FACE_CHIP * ENG_FACE_CHIP * 3;
    if (!(img->rgb = malloc(n)))
        return -1;
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        img->rgb[i] = (uint8_t)(s >> 24);
    }
    img->width = img->height = ENG_FACE_CHIP;
    return 0;
}

static int bench_run_all(struct bench_run *b, struct eng_err *err)
{
    double *ms = calloc((size_t)b->c->runs, sizeof *ms);
    double median[STEP_COUNT], min[STEP_COUNT], cpu[STEP_COUNT];
    if (!ms)
        return eng_err_set(err, ENG_ERR_NOMEM, "", "out of memory");
    int rc = 0;
    for (int s = 0; s < STEP_COUNT && rc == 0; s++) {
        if (s == STEP_LANDMARKS && b->first.box.x2 <= b->first.box.x1) {
            median[s] = min[s] = -1; /* no face in the photo */
            continue;
        }
        rc = bench_time(b, (enum bench_step)s, ms, &median[s], &min[s], &cpu[s], err);
    }
    free(ms);
    if (rc)
        return -1;
    printf("{\"image\":\"%dx%d\",\"input_size\":%d,\"chip\":\"%dx%d\",\"threads\":%d,\"runs\":%d,"
           "\"blas_core\":\"%s\"", b->photo->width, b->photo->height, b->params.input_size, b->chip->width,
           b->chip->height, b->c->threads, b->c->runs, srv_blas_core());
    for (int s = 0; s < STEP_COUNT; s++)
        if (median[s] >= 0)
            printf(",\"%s\":{\"median_ms\":%.4f,\"min_ms\":%.4f,\"cpu_ms\":%.4f}", step_names[s], median[s],
                   min[s], cpu[s]);
    double lm, desc;
    const double det = eng_face_models_flops(b->f->models, b->params.input_size, &lm, &desc);
    printf(",\"gflops\":{\"detector\":%.4f,\"landmarks\":%.4f,\"descriptor\":%.4f}}\n", det / 1e9, lm / 1e9,
           desc / 1e9);
    return 0;
}

/* Per-layer times of the net behind step s, summed over the step's runs. */
static int bench_profile(struct bench_run *b, enum bench_step s, enum eng_face_net which, struct eng_err *err)
{
    const struct eng_net *net;
    struct eng_ctx *ctx;
    eng_face_ctx_net(b->f->models, b->f->ctx, which, &net, &ctx);
    double *total = calloc((size_t)net->n_layers, sizeof *total);
    if (!total)
        return eng_err_set(err, ENG_ERR_NOMEM, "", "out of memory");
    int rc = 0;
    ctx->profile = 1;
    for (int i = 0; i < b->c->runs && rc == 0; i++) {
        rc = bench_step(b, s, err);
        for (int j = 0; j < net->n_layers; j++)
            total[j] += ctx->layer_ms[j];
    }
    ctx->profile = 0;
    if (rc == 0) {
        fprintf(stderr, "# %s\n", step_names[s]);
        srv_cli_print_profile(net, total, b->c->runs);
    }
    free(total);
    return rc;
}

static int bench_profile_all(struct bench_run *b, struct eng_err *err)
{
    return bench_profile(b, STEP_DETECTOR_NET, ENG_FACE_NET_DETECTOR, err) ||
           (b->first.box.x2 > b->first.box.x1 && bench_profile(b, STEP_LANDMARKS, ENG_FACE_NET_LANDMARKS, err)) ||
           bench_profile(b, STEP_DESCRIPTOR, ENG_FACE_NET_DESCRIPTOR, err) ? -1 : 0;
}

int srv_cli_bench_faces(int argc, char **argv)
{
    struct face_cli c;
    struct face_engine f = {0};
    struct eng_image photo = {0}, square = {0}, chip = {0};
    struct eng_err err = {0};
    int rc = parse(argc, argv, bench_options, 0, bench_usage, &c);
    if (rc)
        goto done;
    if (!c.image || optind < argc)
        rc = srv_cli_usage_error(bench_usage, "%s", "bench --faces needs --image PHOTO (and no other argument)");
    if (rc || (rc = engine_open(&c, c.faces.opt.input_size, &f)))
        goto done;
    struct bench_run b = {.c = &c, .f = &f, .photo = &photo, .square = &square, .chip = &chip};
    eng_face_params_default(&b.params);
    b.params.input_size = c.faces.opt.input_size;
    b.params.score_threshold = c.faces.opt.det_threshold;
    const struct eng_decode_opts dopts = {.apply_exif = 1};
    const int side = b.params.input_size;
    if (eng_image_load(c.image, &dopts, &photo, NULL, &err) ||
        (c.chip ? eng_image_load(c.chip, &dopts, &chip, NULL, &err)
                : noise_chip(&chip) ? eng_err_set(&err, ENG_ERR_NOMEM, "", "out of memory") : 0) ||
        !(square.rgb = malloc((size_t)side * side * 3)) ||
        eng_image_resize_linear(&photo, side, side, square.rgb, &err)) {
        rc = err.msg[0] ? srv_cli_report(&err) : out_of_memory();
        goto done;
    }
    square.width = square.height = side;
    const int n = eng_face_detect(f.models, f.ctx, &photo, &b.params, f.faces, SRV_MAX_FACES, &err);
    if (n < 0) {
        rc = srv_cli_report(&err);
        goto done;
    }
    if (n > 0)
        b.first = f.faces[0];
    rc = bench_run_all(&b, &err) || (c.profile && bench_profile_all(&b, &err)) ? srv_cli_report(&err)
                                                                                : EXIT_SUCCESS;
done:
    eng_image_release(&photo);
    eng_image_release(&square);
    eng_image_release(&chip);
    engine_close(&f);
    release(&c);
    return rc < 0 ? EXIT_SUCCESS : rc;
}
