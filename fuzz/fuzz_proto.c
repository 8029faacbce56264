/* fuzz_proto.c - libFuzzer target for proto/'s request parsers: JSON bodies and parameter text, for
 * every route (POST /v1/detect, /v1/faces, /v1/verify) in both dialects (native, DeepStack).
 *
 * Input: one selector byte, then the request. Selector bits 0-1 pick the route, bit 2 the dialect and
 * bit 3 the form: a JSON body (_parse_json) or "key=value" pairs separated by '&' (_set per pair, as the
 * HTTP layer hands over query arguments and form fields once MHD has decoded them; keys starting with
 * "image" go to _set_image_static, as multipart files do). Then _check, and for /v1/detect the
 * parameters are resolved against a small net with three named classes. Every error must give a code,
 * and its reply body must be valid JSON. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "net.h"
#include "proto_errors.h"
#include "proto_face.h"
#include "proto_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum route { ROUTE_DETECT, ROUTE_FACES, ROUTE_VERIFY };

static const char tiny_cfg[] = "[net]\nwidth=32\nheight=32\nchannels=3\n"
                               "[convolutional]\nfilters=24\nsize=1\nstride=1\nactivation=linear\n"
                               "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=3\nnum=3\n";
static const char *const tiny_names[] = {"person", "car", "dog"};

static struct eng_net *tiny_net(void)
{
    static struct eng_net *net;
    if (net)
        return net;
    if (eng_darknet_parse_cfg(tiny_cfg, sizeof tiny_cfg - 1, "tiny.cfg", NULL, &net, NULL))
        abort();
    net->class_names = calloc(3, sizeof *net->class_names);
    for (int i = 0; net->class_names && i < 3; i++)
        if (!(net->class_names[i] = strdup(tiny_names[i])))
            abort();
    return net;
}

/* One request of any route, so the pairs reader is written once. */
struct any_request {
    enum route route;
    struct proto_detect_request detect;
    struct proto_face_request faces;
    struct proto_verify_request verify;
};

static int any_set(struct any_request *r, const char *key, const char *value, struct proto_err *e)
{
    const int image = strncmp(key, "image", 5) == 0 && !strstr(key, "_b64");
    const size_t n = strlen(value);
    switch (r->route) {
    case ROUTE_DETECT:
        return image ? proto_detect_request_set_image_static(&r->detect, (const uint8_t *)value, n, e)
                     : proto_detect_request_set(&r->detect, key, value, e);
    case ROUTE_FACES:
        return image ? proto_face_request_set_image_static(&r->faces, (const uint8_t *)value, n, e)
                     : proto_face_request_set(&r->faces, key, value, e);
    default:
        return image ? proto_verify_request_set_image_static(&r->verify, key, (const uint8_t *)value, n, e)
                     : proto_verify_request_set(&r->verify, key, value, e);
    }
}

/* "k=v&k2=v2" into _set calls; text is a NUL-terminated private copy, cut in place. Pair values are
 * borrowed by images until release, which is why the copy outlives the request. */
static int set_pairs(struct any_request *r, char *text, struct proto_err *e)
{
    for (char *pair = text; pair;) {
        char *next = strchr(pair, '&');
        if (next)
            *next++ = '\0';
        char *eq = strchr(pair, '=');
        if (eq)
            *eq++ = '\0';
        if (any_set(r, pair, eq ? eq : "", e))
            return -1;
        pair = next;
    }
    return 0;
}

static int parse_json(struct any_request *r, const char *body, size_t len, struct proto_err *e)
{
    switch (r->route) {
    case ROUTE_DETECT:
        return proto_detect_request_parse_json(&r->detect, body, len, e);
    case ROUTE_FACES:
        return proto_face_request_parse_json(&r->faces, body, len, e);
    default:
        return proto_verify_request_parse_json(&r->verify, body, len, e);
    }
}

static int check(struct any_request *r, struct proto_err *e)
{
    if (r->route == ROUTE_FACES)
        return proto_face_request_check(&r->faces, e);
    if (r->route == ROUTE_VERIFY)
        return proto_verify_request_check(&r->verify, e);
    if (proto_detect_request_check(&r->detect, e))
        return -1;
    const struct eng_net *net = tiny_net();
    unsigned char mask[3];
    struct eng_detect_params p;
    if (proto_detect_request_params(&r->detect, net, NULL, mask, &p, e))
        return -1;
    if (!(p.conf >= 0 && p.conf <= 1) || !(p.iou >= 0 && p.iou <= 1) || p.max_det < 1 ||
        p.max_det > PROTO_MAX_DET_MAX)
        abort(); /* accepted values must be in range */
    return 0;
}

/* The error must be one a client can be answered with: a real code, and a body that is JSON. */
static void check_error(const struct proto_err *e, enum proto_dialect d)
{
    if (e->code <= PROTO_OK || e->code >= PROTO_CODE_COUNT)
        abort();
    char *body = proto_error_body(d, e, "id");
    if (!body)
        abort();
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr);
    if (!json_is_object(doc))
        abort();
    json_decref(doc);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return -1;
    const unsigned sel = data[0];
    const enum route route = (enum route)((sel & 3) % 3);
    const enum proto_dialect d = (sel & 4) ? PROTO_DIALECT_DEEPSTACK : PROTO_DIALECT_NATIVE;
    const int json = !(sel & 8);
    /* The JSON parser gets an exact-size copy (no NUL), so ASan sees any read past the body. */
    const size_t len = size - 1;
    char *text = malloc(json ? (len ? len : 1) : len + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    if (!json)
        text[len] = '\0';

    struct any_request r = {.route = route};
    proto_detect_request_init(&r.detect, d);
    proto_face_request_init(&r.faces, d);
    proto_verify_request_init(&r.verify, d);
    struct proto_err e = {0};
    const int rc = json ? parse_json(&r, text, len, &e) : set_pairs(&r, text, &e);
    if (rc == 0 ? check(&r, &e) != 0 : 1)
        check_error(&e, d);
    proto_detect_request_release(&r.detect);
    proto_face_request_release(&r.faces);
    proto_verify_request_release(&r.verify);
    free(text);
    return 0;
}
