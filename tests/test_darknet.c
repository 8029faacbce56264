/* test_darknet.c - the darknet cfg parser and weights loader (engine/darknet.c, names in net.c).
 *
 * Invalid inputs are data: every folder of tests/darknet_invalid/ is one test (see its README.md).
 * Valid inputs are the real cfgs in ../shared/models (shapes checked against what darknet prints for
 * them), the real yolo-fastest weights, and tiny nets whose weights the tests write themselves. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "darknet.h"
#include "detect.h"
#include "net.h"

#define SHARED VISIOND_SHARED_DIR
#define MODELS SHARED "/models"
#define FASTEST MODELS "/yolo-fastest-1.1/yolo-fastest-1.1"
#define FASTEST_XL MODELS "/yolo-fastest-1.1-xl/yolo-fastest-1.1-xl"
#define INVALID_DIR VISIOND_SOURCE_DIR "/tests/darknet_invalid"

#define assert_near(actual, expected, tol)                                                        \
    do {                                                                                          \
        const double a_ = (actual), e_ = (expected);                                              \
        if (!(fabs(a_ - e_) <= (tol)))                                                            \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));  \
    } while (0)

/* The small model most tests use: conv 4x3x3 (pad 1) leaky, conv 14x1x1 linear, [yolo] with 2 anchors
 * and 2 classes at 32x32. Weights: 4 + 108 + 14 + 56 = 182 floats. */
static const char tiny_cfg[] = "[net]\n"
                               "width=32\n"
                               "height=32\n"
                               "channels=3\n"
                               "\n"
                               "[convolutional]\n"
                               "filters=4\n"
                               "size=3\n"
                               "stride=1\n"
                               "pad=1\n"
                               "activation=leaky\n"
                               "\n"
                               "[convolutional]\n"
                               "filters=14\n"
                               "size=1\n"
                               "stride=1\n"
                               "activation=linear\n"
                               "\n"
                               "[yolo]\n"
                               "mask=0,1\n"
                               "anchors=10,14, 23,27\n"
                               "classes=2\n"
                               "num=2\n";
#define TINY_FLOATS 182

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Reads a whole file into a new NUL-terminated buffer; NULL if it does not exist. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            assert_non_null(p);
            buf = p;
            cap *= 2;
        }
        const size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    assert_false(ferror(f));
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot create %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A darknet weights image: header (version, then `seen` of 4 or 8 bytes) and n floats from vals
 * (or `fill` when vals is NULL). New, caller frees. */
static unsigned char *weights_image(int major, int minor, int wide_seen, const float *vals, size_t n,
                                    float fill, size_t *len)
{
    const size_t header = 12 + (wide_seen ? 8 : 4);
    *len = header + n * sizeof(float);
    unsigned char *buf = calloc(1, *len + 1);
    assert_non_null(buf);
    const int32_t ver[3] = {major, minor, 0};
    memcpy(buf, ver, sizeof ver);
    for (size_t i = 0; i < n; i++) {
        const float v = vals ? vals[i] : fill;
        memcpy(buf + header + i * sizeof(float), &v, sizeof v);
    }
    return buf;
}

static struct eng_net *parse_ok(const char *text, const struct eng_darknet_opts *opts)
{
    struct eng_net *net = NULL;
    struct eng_err err = {0};
    if (eng_darknet_parse_cfg(text, strlen(text), "model.cfg", opts, &net, &err)) {
        char buf[700];
        fail_msg("parse failed: %s", eng_err_format(&err, buf, sizeof buf));
    }
    assert_non_null(net);
    return net;
}

static struct eng_net *load_ok(const char *cfg, const char *weights, const char *names,
                               const struct eng_darknet_opts *opts)
{
    struct eng_net *net = NULL;
    struct eng_err err = {0};
    if (eng_darknet_load(cfg, weights, names, opts, &net, &err)) {
        char buf[700];
        fail_msg("loading %s failed: %s", cfg, eng_err_format(&err, buf, sizeof buf));
    }
    assert_non_null(net);
    return net;
}

static void assert_shape(struct eng_shape s, int c, int h, int w)
{
    if (s.c != c || s.h != h || s.w != w)
        fail_msg("shape %dx%dx%d, expected %dx%dx%d", s.c, s.h, s.w, c, h, w);
}

static void assert_head(const struct eng_net *net, int k, int index, int c, int h, int w)
{
    assert_true(k < net->n_heads);
    assert_int_equal(net->heads[k], index);
    const struct eng_layer *l = &net->layers[index];
    assert_true(l->kind == ENG_LAYER_YOLO || l->kind == ENG_LAYER_REGION);
    assert_shape(l->out, c, h, w);
}

struct warnings {
    int n;
    char where[8][ENG_ERR_WHERE_MAX];
    char msg[8][ENG_ERR_MSG_MAX];
};

static void collect_warning(void *user, const char *where, const char *msg)
{
    struct warnings *w = user;
    if (w->n < 8) {
        snprintf(w->where[w->n], sizeof w->where[0], "%s", where);
        snprintf(w->msg[w->n], sizeof w->msg[0], "%s", msg);
    }
    w->n++;
}

/* ---- the data-driven invalid cases ------------------------------------------------------------ */

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Writes model.weights in the current directory from a weights.spec recipe (see the README). */
static void write_weights_from_spec(const char *spec, const char *case_name)
{
    int major = 0, minor = 2, revision = 0, seen_bytes = 0;
    long floats = 0, extra = 0, bytes = -1;
    float fill = 0.5f;
    char *copy = strdup(spec);
    assert_non_null(copy);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char word[32];
        if (line[0] == '#' || sscanf(line, "%31s", word) != 1)
            continue;
        int ok;
        if (strcmp(word, "version") == 0)
            ok = sscanf(line, "%*s %d %d %d", &major, &minor, &revision) == 3;
        else if (strcmp(word, "seen-bytes") == 0)
            ok = sscanf(line, "%*s %d", &seen_bytes) == 1 && (seen_bytes == 4 || seen_bytes == 8);
        else if (strcmp(word, "floats") == 0)
            ok = sscanf(line, "%*s %ld", &floats) == 1 && floats >= 0;
        else if (strcmp(word, "header-only") == 0)
            ok = (floats = 0, 1);
        else if (strcmp(word, "fill") == 0)
            ok = sscanf(line, "%*s %f", &fill) == 1;
        else if (strcmp(word, "extra-bytes") == 0)
            ok = sscanf(line, "%*s %ld", &extra) == 1 && extra >= 0;
        else if (strcmp(word, "bytes") == 0)
            ok = sscanf(line, "%*s %ld", &bytes) == 1 && bytes >= 0;
        else
            ok = 0;
        if (!ok)
            fail_msg("%s/weights.spec: cannot read '%s'", case_name, line);
    }
    free(copy);

    if (bytes >= 0) {
        unsigned char *zero = calloc(1, (size_t)bytes + 1);
        assert_non_null(zero);
        spit("model.weights", zero, (size_t)bytes);
        free(zero);
        return;
    }
    const int wide = seen_bytes ? seen_bytes == 8
                                : (int64_t)major * 10 + minor >= 2 && major < 1000 && minor < 1000;
    size_t len;
    unsigned char *img = weights_image(major, minor, wide, NULL, (size_t)floats, fill, &len);
    int32_t rev = revision;
    memcpy(img + 8, &rev, sizeof rev);
    unsigned char *all = calloc(1, len + (size_t)extra + 1);
    assert_non_null(all);
    memcpy(all, img, len);
    spit("model.weights", all, len + (size_t)extra);
    free(all);
    free(img);
}

/* Copies the cfg, replacing each "<NUL>" with a 0 byte. */
static void write_cfg(const char *text)
{
    size_t n = strlen(text), o = 0;
    char *out = malloc(n + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n;) {
        if (strncmp(text + i, "<NUL>", 5) == 0) {
            out[o++] = '\0';
            i += 5;
        } else {
            out[o++] = text[i++];
        }
    }
    spit("model.cfg", out, o);
    free(out);
}

static void test_darknet_invalid_case(void **state)
{
    const char *name = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.cfg", INVALID_DIR, name);
    char *cfg = slurp(path, NULL);
    if (!cfg)
        fail_msg("%s: model.cfg is missing", name);
    snprintf(path, sizeof path, "%s/%s/expected", INVALID_DIR, name);
    char *expected = slurp(path, NULL);
    if (!expected)
        fail_msg("%s: expected is missing", name);
    rstrip(expected);
    snprintf(path, sizeof path, "%s/%s/weights.spec", INVALID_DIR, name);
    char *spec = slurp(path, NULL);
    snprintf(path, sizeof path, "%s/%s/model.names", INVALID_DIR, name);
    char *names = slurp(path, NULL);

    char old_cwd[4096];
    assert_non_null(getcwd(old_cwd, sizeof old_cwd));
    char tmp[] = "/tmp/test_darknet.XXXXXX";
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(chdir(tmp), 0);
    write_cfg(cfg);
    if (spec)
        write_weights_from_spec(spec, name);
    if (names)
        spit("model.names", names, strlen(names));

    struct warnings warns = {0};
    const struct eng_darknet_opts opts = {.warn = collect_warning, .warn_user = &warns};
    struct eng_net *net = NULL;
    struct eng_err err;
    memset(&err, 0, sizeof err);
    const int rc = eng_darknet_load("model.cfg", spec ? "model.weights" : NULL,
                                    names ? "model.names" : NULL, &opts, &net, &err);
    unlink("model.cfg");
    unlink("model.weights");
    unlink("model.names");
    assert_int_equal(chdir(old_cwd), 0);
    assert_int_equal(rmdir(tmp), 0);

    char got[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4], problem[2048] = "";
    eng_err_format(&err, got, sizeof got);
    if (rc == 0)
        snprintf(problem, sizeof problem, "%s: loaded without an error, expected '%s'", name,
                 expected);
    else if (rc != -1 || net || err.kind == ENG_ERR_NONE || err.kind == ENG_ERR_NOMEM)
        snprintf(problem, sizeof problem, "%s: rc %d, net %p, error kind %d", name, rc,
                 (void *)net, (int)err.kind);
    else if (strcmp(got, expected) != 0)
        snprintf(problem, sizeof problem, "%s:\n  got      '%s'\n  expected '%s'", name, got,
                 expected);
    eng_net_free(net);
    free(names);
    free(spec);
    free(expected);
    free(cfg);
    if (problem[0])
        fail_msg("%s", problem);
}

/* ---- the real cfgs ---------------------------------------------------------------------------- */

/* Sections in a cfg file, counted independently of the parser: lines starting with '['. */
static int count_sections(const char *text)
{
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        n += *p == '[';
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return n;
}

static int check_cfg_file(const char *path)
{
    char *text = slurp(path, NULL);
    assert_non_null(text);
    struct warnings warns = {0};
    const struct eng_darknet_opts opts = {.warn = collect_warning, .warn_user = &warns};
    struct eng_net *net = load_ok(path, NULL, NULL, &opts);
    if (net->n_layers != count_sections(text) - 1)
        fail_msg("%s: %d layers for %d sections", path, net->n_layers, count_sections(text));
    if (warns.n)
        fail_msg("%s: unexpected warning %s: %s", path, warns.where[0], warns.msg[0]);
    assert_true(net->n_heads >= 1);
    assert_int_equal(net->classes, 80);
    char stem[256];
    snprintf(stem, sizeof stem, "%s", strrchr(path, '/') + 1);
    *strrchr(stem, '.') = '\0';
    assert_string_equal(net->name, stem); /* the file name without .cfg */
    /* Every layer's input is the previous layer's output, and the net runs (zero weights) on a
     * context sized from it. */
    for (int i = 1; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (l->kind != ENG_LAYER_ROUTE)
            assert_memory_equal(&l->in, &net->layers[i - 1].out, sizeof l->in);
    }
    eng_net_free(net);
    free(text);
    return 1;
}

static void test_darknet_shared_cfgs_all_parse(void **state)
{
    (void)state;
    const char *dirs[] = {MODELS "/cfg", MODELS "/yolo-fastest-1.1", MODELS "/yolo-fastest-1.1-xl"};
    int checked = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir)
            fail_msg("cannot open %s", dirs[d]);
        for (struct dirent *e; (e = readdir(dir));) {
            const size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".cfg") != 0)
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            checked += check_cfg_file(path);
        }
        closedir(dir);
    }
    assert_int_equal(checked, 7);
}

static void test_darknet_yolov3_tiny_shapes_match_darknet(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(MODELS "/cfg/yolov3-tiny.cfg", NULL, NULL, NULL);
    assert_string_equal(net->name, "yolov3-tiny");
    assert_shape(net->input, 3, 416, 416);
    assert_int_equal(net->n_layers, 24);
    assert_int_equal(net->n_heads, 2);
    assert_head(net, 0, 16, 255, 13, 13);
    assert_head(net, 1, 23, 255, 26, 26);
    assert_int_equal(net->max_candidates, 3 * 13 * 13 + 3 * 26 * 26);
    const struct eng_layer *L = net->layers;
    assert_int_equal(L[11].kind, ENG_LAYER_MAXPOOL); /* size=2 stride=1 keeps 13x13 */
    assert_shape(L[11].out, 512, 13, 13);
    assert_int_equal(L[17].kind, ENG_LAYER_ROUTE); /* layers = -4 */
    assert_int_equal(L[17].p.route.inputs[0], 13);
    assert_shape(L[17].out, 256, 13, 13);
    assert_shape(L[19].out, 128, 26, 26); /* upsample */
    assert_int_equal(L[20].p.route.n, 2);  /* layers = -1, 8 */
    assert_int_equal(L[20].p.route.inputs[0], 19);
    assert_int_equal(L[20].p.route.inputs[1], 8);
    assert_shape(L[20].out, 384, 26, 26);
    /* mask 3,4,5 of the six anchors for the first head, 0,1,2 for the second. */
    const struct eng_head *h = &L[16].p.head;
    assert_int_equal(h->anchors_n, 3);
    const float a16[6] = {81, 82, 135, 169, 344, 319}, a23[6] = {10, 14, 23, 27, 37, 58};
    for (int i = 0; i < 6; i++) {
        assert_near(h->anchors[i], a16[i], 0);
        assert_near(L[23].p.head.anchors[i], a23[i], 0);
    }
    assert_near(net->flops / 1e9, 5.571, 0.001); /* darknet: "Total BFLOPS 5.571" */
    assert_int_equal(L[0].p.conv.act, ENG_ACT_LEAKY);
    assert_int_equal(L[0].p.conv.pad, 1);
    assert_int_equal(L[13].p.conv.pad, 0); /* pad=1 with size=1 means padding 0 */
    eng_net_free(net);
}

static void test_darknet_input_size_override_scales_heads(void **state)
{
    (void)state;
    const struct eng_darknet_opts o320 = {.width = 320, .height = 320};
    struct eng_net *net = load_ok(MODELS "/cfg/yolov3-tiny.cfg", NULL, NULL, &o320);
    assert_shape(net->input, 3, 320, 320);
    assert_head(net, 0, 16, 255, 10, 10);
    assert_head(net, 1, 23, 255, 20, 20);
    eng_net_free(net);
    const struct eng_darknet_opts o608x416 = {.width = 608, .height = 416};
    net = load_ok(MODELS "/cfg/yolov3-tiny.cfg", NULL, NULL, &o608x416);
    assert_head(net, 0, 16, 255, 13, 19);
    assert_head(net, 1, 23, 255, 26, 38);
    eng_net_free(net);
}

static void test_darknet_yolov3_shapes_match_darknet(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(MODELS "/cfg/yolov3.cfg", NULL, NULL, NULL);
    assert_int_equal(net->n_layers, 107);
    assert_int_equal(net->n_heads, 3);
    assert_head(net, 0, 82, 255, 13, 13);
    assert_head(net, 1, 94, 255, 26, 26);
    assert_head(net, 2, 106, 255, 52, 52);
    assert_int_equal(net->layers[4].kind, ENG_LAYER_SHORTCUT);
    assert_int_equal(net->layers[4].p.shortcut.from, 1);
    assert_near(net->flops / 1e9, 65.879, 0.001); /* darknet: "Total BFLOPS 65.879" */
    eng_net_free(net);
}

static void test_darknet_yolov4_tiny_route_groups_halve_channels(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(MODELS "/cfg/yolov4-tiny.cfg", NULL, NULL, NULL);
    assert_int_equal(net->n_layers, 38);
    assert_head(net, 0, 30, 255, 13, 13);
    assert_head(net, 1, 37, 255, 26, 26);
    const struct eng_layer *L = net->layers;
    assert_shape(L[2].out, 64, 104, 104);
    assert_int_equal(L[3].kind, ENG_LAYER_ROUTE); /* layers=-1 groups=2 group_id=1 */
    assert_int_equal(L[3].p.route.groups, 2);
    assert_int_equal(L[3].p.route.group_id, 1);
    assert_int_equal(L[3].p.route.inputs[0], 2);
    assert_shape(L[3].out, 32, 104, 104);
    assert_shape(L[6].out, 64, 104, 104); /* layers = -1,-2 */
    assert_shape(L[8].out, 128, 104, 104); /* layers = -6,-1 */
    assert_near(L[30].p.head.scale_x_y, 1.05, 1e-6);
    assert_near(L[37].p.head.scale_x_y, 1.05, 1e-6);
    assert_near(net->flops / 1e9, 6.910, 0.001); /* darknet: "Total BFLOPS 6.910" */
    eng_net_free(net);
}

static void test_darknet_yolov4_spp_and_mish_shapes_match_darknet(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(MODELS "/cfg/yolov4.cfg", NULL, NULL, NULL);
    assert_shape(net->input, 3, 608, 608);
    assert_int_equal(net->n_layers, 162);
    assert_head(net, 0, 139, 255, 76, 76);
    assert_head(net, 1, 150, 255, 38, 38);
    assert_head(net, 2, 161, 255, 19, 19);
    const struct eng_layer *L = net->layers;
    assert_int_equal(L[0].p.conv.act, ENG_ACT_MISH);
    const int spp[3] = {108, 110, 112}, sizes[3] = {5, 9, 13};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(L[spp[i]].kind, ENG_LAYER_MAXPOOL);
        assert_int_equal(L[spp[i]].p.pool.size, sizes[i]);
        assert_int_equal(L[spp[i]].p.pool.stride, 1);
        assert_shape(L[spp[i]].out, 512, 19, 19);
    }
    assert_shape(L[113].out, 2048, 19, 19); /* the SPP concat */
    assert_near(L[139].p.head.scale_x_y, 1.2, 1e-6);
    assert_near(L[150].p.head.scale_x_y, 1.1, 1e-6);
    assert_near(L[161].p.head.scale_x_y, 1.05, 1e-6);
    assert_near(net->flops / 1e9, 128.459, 0.001); /* darknet: "Total BFLOPS 128.459" */
    eng_net_free(net);
}

static void test_darknet_yolov2_tiny_region_head_shapes_match_darknet(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(MODELS "/cfg/yolov2-tiny.cfg", NULL, NULL, NULL);
    assert_int_equal(net->n_layers, 16);
    assert_int_equal(net->n_heads, 1);
    assert_head(net, 0, 15, 425, 13, 13);
    const struct eng_layer *L = net->layers;
    assert_int_equal(L[15].kind, ENG_LAYER_REGION);
    assert_int_equal(L[15].p.head.anchors_n, 5);
    assert_near(L[15].p.head.anchors[0], 0.57273, 1e-6);
    assert_near(L[15].p.head.anchors[9], 9.16828, 1e-5);
    assert_shape(L[11].out, 512, 13, 13); /* maxpool size=2 stride=1 */
    eng_net_free(net);
}

/* ---- weights ---------------------------------------------------------------------------------- */

static void test_darknet_published_weight_sizes_accepted(void **state)
{
    (void)state;
    /* The sizes of the .weights files published with AlexeyAB's darknet for these cfgs. */
    static const struct {
        const char *cfg;
        size_t bytes;
    } published[] = {
        {MODELS "/cfg/yolov2-tiny.cfg", 44948600},   {MODELS "/cfg/yolov3-tiny.cfg", 35434956},
        {MODELS "/cfg/yolov4-tiny.cfg", 24251276},   {MODELS "/cfg/yolov3.cfg", 248007048},
        {MODELS "/cfg/yolov4.cfg", 257717640},
    };
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        struct eng_net *net = load_ok(published[i].cfg, NULL, NULL, NULL);
        unsigned char *img = calloc(1, published[i].bytes + 4);
        assert_non_null(img);
        const int32_t ver[3] = {0, 2, 5};
        memcpy(img, ver, sizeof ver);
        struct eng_err err = {0};
        if (eng_darknet_load_weights_mem(net, img, published[i].bytes, "w", &err)) {
            char buf[700];
            fail_msg("%s: %s", published[i].cfg, eng_err_format(&err, buf, sizeof buf));
        }
        assert_int_equal(eng_darknet_load_weights_mem(net, img, published[i].bytes - 4, "w", &err),
                         -1);
        assert_int_equal(eng_darknet_load_weights_mem(net, img, published[i].bytes + 4, "w", &err),
                         -1);
        free(img);
        eng_net_free(net);
    }
}

static void test_darknet_yolo_fastest_real_weights_loaded(void **state)
{
    (void)state;
    struct eng_net *net = load_ok(FASTEST ".cfg", FASTEST ".weights", MODELS "/yolo-fastest-1.1/coco.names",
                                  NULL);
    assert_string_equal(net->name, "yolo-fastest-1.1");
    assert_shape(net->input, 3, 320, 320);
    assert_int_equal(net->n_layers, 131);
    assert_int_equal(net->n_heads, 2);
    assert_head(net, 0, 121, 255, 10, 10);
    assert_head(net, 1, 130, 255, 20, 20);
    assert_near(net->flops / 1e9, 0.252, 0.001); /* the README's 0.252 B */
    assert_int_equal(net->classes, 80);
    assert_string_equal(net->class_names[0], "person");
    assert_string_equal(net->class_names[16], "dog");
    assert_string_equal(net->class_names[79], "toothbrush");
    /* Depthwise convolutions: groups == channels == filters. */
    assert_int_equal(net->layers[2].p.conv.groups, 8);
    assert_int_equal(net->layers[2].in.c, 8);

    /* The weights really arrived: not all zero, all finite. */
    size_t nonzero = 0;
    for (size_t i = 0; i < net->n_params; i++) {
        assert_true(isfinite(net->params[i]));
        nonzero += net->params[i] != 0.0f;
    }
    assert_true(nonzero > net->n_params / 2);

    /* A forward pass on a grey image gives finite head outputs with probabilities in [0, 1]. */
    struct eng_err err = {0};
    struct eng_ctx *ctx = eng_ctx_new(net, &err);
    assert_non_null(ctx);
    for (size_t i = 0; i < eng_shape_size(net->input); i++)
        ctx->input[i] = 0.5f;
    eng_net_forward(net, ctx);
    for (int k = 0; k < net->n_heads; k++) {
        const struct eng_layer *l = &net->layers[net->heads[k]];
        const float *out = eng_ctx_output(ctx, l->index);
        const size_t plane = (size_t)l->out.h * l->out.w;
        for (int a = 0; a < l->p.head.anchors_n; a++) {
            for (int e = 0; e < 85; e++) {
                for (size_t p = 0; p < plane; p++) {
                    const float v = out[((size_t)a * 85 + e) * plane + p];
                    assert_true(isfinite(v));
                    if (e < 2 || e >= 4)
                        assert_true(v >= 0.0f && v <= 1.0f);
                }
            }
        }
    }
    eng_ctx_free(ctx);
    eng_net_free(net);

    net = load_ok(FASTEST_XL ".cfg", FASTEST_XL ".weights", NULL, NULL);
    assert_null(net->class_names);
    char buf[16];
    assert_string_equal(eng_net_class_name(net, 3, buf, sizeof buf), "3");
    eng_net_free(net);
}

static void test_darknet_real_weights_with_wrong_cfg_rejected(void **state)
{
    (void)state;
    struct eng_net *net = NULL;
    struct eng_err err = {0};
    assert_int_equal(eng_darknet_load(FASTEST ".cfg", FASTEST_XL ".weights", NULL, NULL, &net, &err),
                     -1);
    assert_null(net);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_string_equal(err.where, FASTEST_XL ".weights");
    assert_string_equal(err.msg, "weights file is 3693964 bytes but the cfg needs 1384268 "
                                 "(header 20 + 346062 floats); wrong cfg for these weights?");
    assert_int_equal(eng_darknet_load(FASTEST_XL ".cfg", FASTEST ".weights", NULL, NULL, &net, &err),
                     -1);
    assert_string_equal(err.msg, "weights file is 1384268 bytes but the cfg needs 3693964 "
                                 "(header 20 + 923486 floats); truncated?");
}

static void test_darknet_weights_every_wrong_length_rejected(void **state)
{
    (void)state;
    struct eng_net *net = parse_ok(tiny_cfg, NULL);
    size_t len;
    unsigned char *img = weights_image(0, 2, 1, NULL, TINY_FLOATS + 8, 0.5f, &len);
    for (size_t n = 0; n <= len; n++) {
        struct eng_err err = {0};
        const int rc = eng_darknet_load_weights_mem(net, img, n, "w", &err);
        if (n == 20 + 4 * TINY_FLOATS) {
            assert_int_equal(rc, 0);
        } else {
            if (rc != -1)
                fail_msg("a %zu-byte weights file was accepted", n);
            assert_int_equal(err.kind, ENG_ERR_INVALID);
            assert_string_equal(err.where, "w");
        }
    }
    free(img);
    eng_net_free(net);
}

/* The header's version decides whether `seen` takes 4 bytes (before 0.2) or 8, by darknet's test
 * major * 10 + minor >= 2 && major < 1000 && minor < 1000; garbage versions must not overflow it. */
static void test_darknet_weights_header_seen_width_by_version(void **state)
{
    (void)state;
    static const struct {
        int major, minor, wide;
    } versions[] = {{0, 1, 0},         {0, 0, 0},         {0, 2, 1},         {0, 5, 1},
                    {1, 0, 1},         {1000, 2, 0},      {0, 1000, 0},      {INT32_MAX, 0, 0},
                    {0, INT32_MAX, 0}, {INT32_MIN, 0, 0}, {999, INT32_MIN, 0}, {-1, 100, 1}};
    float vals[TINY_FLOATS];
    for (int i = 0; i < TINY_FLOATS; i++)
        vals[i] = (float)(i + 1);
    for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++) {
        for (int wide = 0; wide <= 1; wide++) {
            struct eng_net *net = parse_ok(tiny_cfg, NULL);
            size_t len;
            unsigned char *img = weights_image(versions[v].major, versions[v].minor, wide, vals,
                                               TINY_FLOATS, 0, &len);
            struct eng_err err = {0};
            const int rc = eng_darknet_load_weights_mem(net, img, len, "w", &err);
            if (wide == versions[v].wide) {
                if (rc != 0)
                    fail_msg("version %d.%d with a %d-byte seen: %s", versions[v].major,
                             versions[v].minor, wide ? 8 : 4, err.msg);
                /* Layout: conv 0 biases (4), its weights (108), conv 1 biases (14), weights (56). */
                const struct eng_conv *c0 = &net->layers[0].p.conv, *c1 = &net->layers[1].p.conv;
                assert_near(c0->bias[0], 1, 0);
                assert_near(c0->bias[3], 4, 0);
                assert_near(c0->weights[0], 5, 0);
                assert_near(c0->weights[107], 112, 0);
                assert_near(c1->bias[0], 113, 0);
                assert_near(c1->weights[0], 127, 0);
                assert_near(c1->weights[55], 182, 0);
            } else {
                assert_int_equal(rc, -1);
                char expected[200];
                snprintf(expected, sizeof expected,
                         "weights file is %zu bytes but the cfg needs %d (header %d + 182 floats); %s",
                         len, (versions[v].wide ? 20 : 16) + 4 * TINY_FLOATS,
                         versions[v].wide ? 20 : 16,
                         versions[v].wide ? "truncated?" : "wrong cfg for these weights?");
                assert_string_equal(err.msg, expected);
            }
            free(img);
            eng_net_free(net);
        }
    }
}

/* One conv with batch norm, then a [yolo] head (a net needs one): the loader folds scale, mean and
 * variance into weights and bias, and the forward pass must equal darknet's normalize_cpu (and
 * OpenCV's importer): y = scale * (x - mean) / sqrt(var + 1e-6) + bias, x being the convolution
 * without bias. The filters with variance 0 and 1e-3 pin the epsilon (1e-5 would be far off). */
static const char bn_cfg[] = "[net]\nwidth=2\nheight=2\nchannels=3\n\n"
                             "[convolutional]\nbatch_normalize=%d\nfilters=6\nsize=%d\npad=1\n"
                             "activation=linear\n\n"
                             "[yolo]\nmask=0\nanchors=1,1\nnum=1\nclasses=1\n";

static void check_conv_forward(int batch_normalize, int size)
{
    char text[512];
    snprintf(text, sizeof text, bn_cfg, batch_normalize, size);
    struct eng_net *net = parse_ok(text, NULL);
    const int F = 6, C = 3, K = size * size, P = 4;
    const float bias[6] = {0.5f, -1, 0, 2, 0.25f, -0.5f};
    const float scale[6] = {1, 2, 0.5f, -1, 3, 0};
    const float mean[6] = {0, 1, -2, 0.5f, 0.1f, 0};
    const float var[6] = {1, 4, 0.25f, 0, 9, 1e-3f};
    float w[6 * 3 * 9];
    for (int i = 0; i < F * C * K; i++)
        w[i] = (float)((i * 7) % 11) * 0.25f - 1.0f;
    float vals[6 * 4 + 6 * 3 * 9];
    size_t n = 0;
    memcpy(vals + n, bias, sizeof bias);
    n += 6;
    if (batch_normalize) {
        memcpy(vals + n, scale, sizeof scale);
        memcpy(vals + n + 6, mean, sizeof mean);
        memcpy(vals + n + 12, var, sizeof var);
        n += 18;
    }
    memcpy(vals + n, w, sizeof(float) * F * C * K);
    n += (size_t)F * C * K;
    size_t len;
    unsigned char *img = weights_image(0, 2, 1, vals, n, 0, &len);
    struct eng_err err = {0};
    if (eng_darknet_load_weights_mem(net, img, len, "bn.weights", &err))
        fail_msg("%s", err.msg);
    free(img);

    struct eng_ctx *ctx = eng_ctx_new(net, &err);
    assert_non_null(ctx);
    const float x[3 * 4] = {1, 2, -1, 0.5f, 0, -3, 4, 1, 2, 2, -2, 0.25f};
    memcpy(ctx->input, x, sizeof x);
    eng_net_forward(net, ctx);
    const float *y = eng_ctx_output(ctx, 0);
    const int pad = size / 2;
    for (int o = 0; o < F; o++) {
        for (int p = 0; p < P; p++) {
            const int oy = p / 2, ox = p % 2;
            double conv = 0;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < size; ky++)
                    for (int kx = 0; kx < size; kx++) {
                        const int iy = oy - pad + ky, ix = ox - pad + kx;
                        if (iy >= 0 && iy < 2 && ix >= 0 && ix < 2)
                            conv += (double)w[((o * C + c) * size + ky) * size + kx] *
                                    x[c * P + iy * 2 + ix];
                    }
            const double want = batch_normalize
                                    ? scale[o] * (conv - mean[o]) / sqrt(var[o] + 1e-6) + bias[o]
                                    : conv + bias[o];
            if (!(fabs(y[o * P + p] - want) <= 1e-4 * (1 + fabs(want))))
                fail_msg("bn=%d size=%d filter %d pixel %d: %.9g, expected %.9g", batch_normalize,
                         size, o, p, (double)y[o * P + p], want);
        }
    }
    eng_ctx_free(ctx);
    eng_net_free(net);
}

static void test_darknet_batch_norm_folded_matches_formula(void **state)
{
    (void)state;
    check_conv_forward(1, 1);
    check_conv_forward(1, 3);
}

static void test_darknet_conv_without_batch_norm_uses_bias(void **state)
{
    (void)state;
    check_conv_forward(0, 1);
    check_conv_forward(0, 3);
}

/* ---- warnings, names, misc -------------------------------------------------------------------- */

static void test_darknet_unknown_keys_warn_with_line(void **state)
{
    (void)state;
    const char text[] = "[net]\n"
                        "width=32\n"
                        "bar = 2\n"       /* line 3: unknown */
                        "batch=64\n"      /* training key: silent */
                        "height=32\n"
                        "\n"
                        "[convolutional]\n"
                        "filters=14\n"
                        "foo=1\n"         /* line 9: unknown */
                        "activation=linear\n"
                        "\n"
                        "[yolo]\n"
                        "mask=0,1\n"
                        "anchors=10,14, 23,27\n"
                        "classes=2\n"
                        "num=2\n"
                        "jitter=.3\n"     /* training key: silent */
                        "ignore_thresh = .7\n";
    struct warnings warns = {0};
    const struct eng_darknet_opts opts = {.warn = collect_warning, .warn_user = &warns};
    struct eng_net *net = parse_ok(text, &opts);
    assert_int_equal(warns.n, 2);
    assert_string_equal(warns.where[0], "model.cfg:3");
    assert_string_equal(warns.msg[0], "unknown key 'bar' in [net] ignored");
    assert_string_equal(warns.where[1], "model.cfg:9");
    assert_string_equal(warns.msg[1], "unknown key 'foo' in [convolutional] ignored");
    eng_net_free(net);

    /* Without a warn callback they are dropped. */
    net = parse_ok(text, NULL);
    eng_net_free(net);
}

static void test_darknet_names_file_loaded_and_checked(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_darknet.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[4096], names[4096];
    snprintf(cfg, sizeof cfg, "%s/tiny.cfg", dir);
    snprintf(names, sizeof names, "%s/tiny.names", dir);
    spit(cfg, tiny_cfg, strlen(tiny_cfg));

    /* CRLF line ends, trailing spaces and trailing blank lines are fine. */
    const char good[] = "traffic light \r\nstop sign\r\n\r\n\n";
    spit(names, good, strlen(good));
    struct eng_net *net = load_ok(cfg, NULL, names, NULL);
    assert_string_equal(net->name, "tiny");
    assert_int_equal(net->classes, 2);
    assert_string_equal(net->class_names[0], "traffic light");
    assert_string_equal(net->class_names[1], "stop sign");
    assert_int_equal(eng_net_class_find(net, "stop sign"), 1);
    assert_int_equal(eng_net_class_find(net, "1"), 1);
    assert_int_equal(eng_net_class_find(net, "2"), -1);
    assert_int_equal(eng_net_class_find(net, "-1"), -1);
    assert_int_equal(eng_net_class_find(net, ""), -1);
    assert_int_equal(eng_net_class_find(net, "stop"), -1);
    char buf[16];
    assert_string_equal(eng_net_class_name(net, 0, buf, sizeof buf), "traffic light");
    assert_string_equal(eng_net_class_name(net, 7, buf, sizeof buf), "7");

    /* Reloading a wrong file keeps the names already loaded. */
    const char three[] = "a\nb\nc\n";
    spit(names, three, strlen(three));
    struct eng_err err = {0};
    assert_int_equal(eng_net_load_names(net, names, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_string_equal(err.msg, "more names than the model's 2 classes");
    assert_string_equal(net->class_names[1], "stop sign");
    eng_net_free(net);

    struct eng_net *none = NULL;
    assert_int_equal(eng_darknet_load(cfg, NULL, names, NULL, &none, &err), -1);
    assert_null(none);

    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing.names", dir);
    assert_int_equal(eng_darknet_load(cfg, NULL, missing, NULL, &none, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, missing);

    unlink(cfg);
    unlink(names);
    assert_int_equal(rmdir(dir), 0);
}

static void test_darknet_missing_files_are_io_errors(void **state)
{
    (void)state;
    struct eng_net *net = NULL;
    struct eng_err err = {0};
    assert_int_equal(eng_darknet_load("/nonexistent/x.cfg", NULL, NULL, NULL, &net, &err), -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, "/nonexistent/x.cfg");
    assert_int_equal(eng_darknet_load(FASTEST ".cfg", "/nonexistent/x.weights", NULL, NULL, &net, &err),
                     -1);
    assert_int_equal(err.kind, ENG_ERR_IO);
    assert_string_equal(err.where, "/nonexistent/x.weights");
    /* A directory is not a cfg. */
    assert_int_equal(eng_darknet_load(MODELS, NULL, NULL, NULL, &net, &err), -1);
    assert_null(net);
    /* err may be NULL. */
    assert_int_equal(eng_darknet_parse_cfg("junk", 4, "x", NULL, &net, NULL), -1);
    assert_null(net);
}

/* ---- robustness: every prefix and random mutations of real cfgs parse or fail cleanly ---------- */

static void parse_must_not_crash(const char *text, size_t len)
{
    struct eng_net *net = NULL;
    struct eng_err err;
    memset(&err, 0, sizeof err);
    const int rc = eng_darknet_parse_cfg(text, len, "fuzz.cfg", NULL, &net, &err);
    if (rc != 0) {
        assert_int_equal(rc, -1);
        assert_null(net);
        assert_true(err.msg[0] != '\0');
        return;
    }
    assert_non_null(net);
    /* Small enough to run: a forward pass with zero weights must stay inside its buffers (ASan). */
    size_t acts = eng_shape_size(net->input);
    for (int i = 0; i < net->n_layers; i++)
        acts += eng_shape_size(net->layers[i].out) + net->layers[i].work_floats;
    if (acts < (1u << 20)) {
        struct eng_ctx *ctx = eng_ctx_new(net, &err);
        assert_non_null(ctx);
        memset(ctx->input, 0, sizeof(float) * eng_shape_size(net->input));
        eng_net_forward(net, ctx);
        eng_ctx_free(ctx);
    }
    eng_net_free(net);
}

static void test_darknet_cfg_prefixes_parse_or_fail_cleanly(void **state)
{
    (void)state;
    size_t len;
    char *text = slurp(MODELS "/cfg/yolov4-tiny.cfg", &len);
    assert_non_null(text);
    for (size_t n = 0; n <= len; n++)
        if (n == len || text[n] == '\n' || text[n] == '=' || text[n] == ']' || text[n] == ',')
            parse_must_not_crash(text, n);
    free(text);
}

static void test_darknet_cfg_mutations_parse_or_fail_cleanly(void **state)
{
    (void)state;
    static const char alphabet[] = "[]=,-#\n 0123456789abcnrsuoty.";
    const size_t len = strlen(tiny_cfg);
    char *text = malloc(len + 1);
    assert_non_null(text);
    uint32_t s = 2024;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(text, tiny_cfg, len + 1);
        s = s * 1664525u + 1013904223u;
        const int edits = 1 + (int)((s >> 16) % 4);
        for (int e = 0; e < edits; e++) {
            s = s * 1664525u + 1013904223u;
            const size_t pos = (s >> 8) % len;
            s = s * 1664525u + 1013904223u;
            text[pos] = alphabet[(s >> 8) % (sizeof alphabet - 1)];
        }
        parse_must_not_crash(text, len);
    }
    free(text);
}

/* ---- main: the static tests plus one per invalid case folder ---------------------------------- */

static int is_case_dir(const struct dirent *e)
{
    return e->d_name[0] != '.' && strcmp(e->d_name, "README.md") != 0;
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_darknet_shared_cfgs_all_parse),
        cmocka_unit_test(test_darknet_yolov3_tiny_shapes_match_darknet),
        cmocka_unit_test(test_darknet_input_size_override_scales_heads),
        cmocka_unit_test(test_darknet_yolov3_shapes_match_darknet),
        cmocka_unit_test(test_darknet_yolov4_tiny_route_groups_halve_channels),
        cmocka_unit_test(test_darknet_yolov4_spp_and_mish_shapes_match_darknet),
        cmocka_unit_test(test_darknet_yolov2_tiny_region_head_shapes_match_darknet),
        cmocka_unit_test(test_darknet_published_weight_sizes_accepted),
        cmocka_unit_test(test_darknet_yolo_fastest_real_weights_loaded),
        cmocka_unit_test(test_darknet_real_weights_with_wrong_cfg_rejected),
        cmocka_unit_test(test_darknet_weights_every_wrong_length_rejected),
        cmocka_unit_test(test_darknet_weights_header_seen_width_by_version),
        cmocka_unit_test(test_darknet_batch_norm_folded_matches_formula),
        cmocka_unit_test(test_darknet_conv_without_batch_norm_uses_bias),
        cmocka_unit_test(test_darknet_unknown_keys_warn_with_line),
        cmocka_unit_test(test_darknet_names_file_loaded_and_checked),
        cmocka_unit_test(test_darknet_missing_files_are_io_errors),
        cmocka_unit_test(test_darknet_cfg_prefixes_parse_or_fail_cleanly),
        cmocka_unit_test(test_darknet_cfg_mutations_parse_or_fail_cleanly),
    };
    const size_t n_fixed = sizeof fixed / sizeof fixed[0];

    struct dirent **cases = NULL;
    const int n_cases = scandir(INVALID_DIR, &cases, is_case_dir, alphasort);
    if (n_cases <= 0) {
        fprintf(stderr, "test_darknet: no cases in %s\n", INVALID_DIR);
        return 1;
    }
    struct CMUnitTest *tests = calloc(n_fixed + (size_t)n_cases, sizeof *tests);
    char **names = calloc((size_t)n_cases, sizeof *names);
    if (!tests || !names)
        return 1;
    memcpy(tests, fixed, sizeof fixed);
    for (int i = 0; i < n_cases; i++) {
        const size_t n = strlen(cases[i]->d_name) + 64;
        names[i] = malloc(n);
        if (!names[i])
            return 1;
        snprintf(names[i], n, "test_darknet_invalid_%s_reports_expected_error", cases[i]->d_name);
        tests[n_fixed + i] = (struct CMUnitTest){.name = names[i],
                                                 .test_func = test_darknet_invalid_case,
                                                 .initial_state = cases[i]->d_name};
    }
    const int failed = _cmocka_run_group_tests("test_darknet", tests, n_fixed + (size_t)n_cases,
                                               NULL, NULL);
    for (int i = 0; i < n_cases; i++) {
        free(names[i]);
        free(cases[i]);
    }
    free(cases);
    free(names);
    free(tests);
    return failed;
}
