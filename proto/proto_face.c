/* proto_face.c - the face routes' requests: /v1/faces, /v1/verify, their DeepStack aliases (the answers:
 * proto_face_json.c).
 *
 * One parameter table serves both routes (each entry says which routes take it); one setter applies a
 * parameter to whichever request is being filled, through struct target. Value reading, messages,
 * base64 and name hints are proto_param.h's, shared with /v1/detect. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_face.h"
#include "proto_json.h"
#include "proto_param.h"

/* ---- the parameter table ---- */

enum route { R_FACES = 1u << 0, R_VERIFY = 1u << 1, R_BOTH = R_FACES | R_VERIFY };

enum kind {
    K_DET_THRESHOLD, K_INPUT_SIZE, K_EXIF, K_TIMEOUT, K_API_KEY,
    K_LIMIT, K_LANDMARKS, K_EMBEDDING, K_IMAGE_B64,
    K_FACE_SELECT, K_MATCH_THRESHOLD, K_ALIGNED, K_SIDE_IMAGE_B64, K_SIDE_EMBEDDING, K_MIN_DET_THRESHOLD,
};

/* Names and aliases; the first entry of a kind is its canonical name. */
static const struct proto_param_def PARAMS[] = {
    {"det_threshold", K_DET_THRESHOLD, PROTO_FACE_PARAM_DET_THRESHOLD, R_BOTH, 0, 0},
    {"min_confidence", K_DET_THRESHOLD, PROTO_FACE_PARAM_DET_THRESHOLD, R_BOTH, 0, 1},
    {"input_size", K_INPUT_SIZE, PROTO_FACE_PARAM_INPUT_SIZE, R_BOTH, 0, 0},
    {"limit", K_LIMIT, PROTO_FACE_PARAM_LIMIT, R_FACES, 0, 0},
    {"landmarks", K_LANDMARKS, PROTO_FACE_PARAM_LANDMARKS, R_FACES, 0, 0},
    {"embedding", K_EMBEDDING, PROTO_FACE_PARAM_EMBEDDING, R_FACES, 0, 0},
    {"image_b64", K_IMAGE_B64, PROTO_FACE_PARAM_IMAGE, R_FACES, 0, 0},
    {"image1_b64", K_SIDE_IMAGE_B64, PROTO_FACE_PARAM_IMAGE1, R_VERIFY, 0, 0},
    {"image2_b64", K_SIDE_IMAGE_B64, PROTO_FACE_PARAM_IMAGE2, R_VERIFY, 1, 0},
    {"embedding1", K_SIDE_EMBEDDING, PROTO_FACE_PARAM_EMBEDDING1, R_VERIFY, 0, 0},
    {"embedding2", K_SIDE_EMBEDDING, PROTO_FACE_PARAM_EMBEDDING2, R_VERIFY, 1, 0},
    {"face_select", K_FACE_SELECT, PROTO_FACE_PARAM_FACE_SELECT, R_VERIFY, 0, 0},
    {"match_threshold", K_MATCH_THRESHOLD, PROTO_FACE_PARAM_MATCH_THRESHOLD, R_VERIFY, 0, 0},
    {"aligned", K_ALIGNED, PROTO_FACE_PARAM_ALIGNED, R_VERIFY, 0, 0},
    {"min_det_threshold", K_MIN_DET_THRESHOLD, PROTO_FACE_PARAM_MIN_DET_THRESHOLD, R_VERIFY, 0, 0},
    {"exif", K_EXIF, PROTO_FACE_PARAM_EXIF, R_BOTH, 0, 0},
    {"timeout_ms", K_TIMEOUT, PROTO_FACE_PARAM_TIMEOUT, R_BOTH, 0, 0},
    {"api_key", K_API_KEY, PROTO_FACE_PARAM_API_KEY, R_BOTH, 0, 1},
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

/* Names people send meaning something else, with what to say. Peer servers call both the detection
 * score and the match distance a "threshold"; here they have separate names, so the hint says which. */
struct hint {
    const char *key;
    unsigned routes;
    const char *text;
};

#define DET_HINT "did you mean \"det_threshold\"? It is the face detection score threshold, 0 to 1"
#define MATCH_HINT                                                                                  \
    "did you mean \"match_threshold\"? It is the largest Euclidean distance between descriptors "   \
    "that still verifies, default 0.6; smaller is stricter"

static const struct hint HINTS[] = {
    {"threshold", R_FACES, DET_HINT},
    {"threshold", R_VERIFY,
     "ambiguous: \"det_threshold\" is the face detection score threshold (0 to 1, default 0.5), "
     "\"match_threshold\" the largest Euclidean distance between descriptors that still verifies "
     "(default 0.6)"},
    {"min_confidence", R_BOTH, DET_HINT},
    {"conf", R_BOTH, DET_HINT},
    {"confidence", R_BOTH, DET_HINT},
    {"score_threshold", R_BOTH, DET_HINT},
    {"scoreThreshold", R_BOTH, DET_HINT},
    {"tolerance", R_VERIFY, MATCH_HINT},
    {"distance_threshold", R_VERIFY, MATCH_HINT},
    {"distanceThreshold", R_VERIFY, MATCH_HINT},
    {"similarity_threshold", R_VERIFY,
     "there is no similarity threshold: \"match_threshold\" is the largest Euclidean distance between "
     "descriptors that still verifies, default 0.6; smaller is stricter"},
    {"match_threshold", R_FACES, "a parameter of POST /v1/verify, not of /v1/faces"},
    {"face_select", R_FACES, "a parameter of POST /v1/verify, not of /v1/faces"},
    {"aligned", R_FACES, "a parameter of POST /v1/verify, not of /v1/faces"},
    {"limit", R_VERIFY, "a parameter of POST /v1/faces, not of /v1/verify"},
    {"landmarks", R_VERIFY, "a parameter of POST /v1/faces, not of /v1/verify"},
    {"embedding", R_VERIFY, "send the two embeddings as \"embedding1\" and \"embedding2\""},
    {"image", R_VERIFY, "send the two images as \"image1\" and \"image2\" (files) or \"image1_b64\" and "
                        "\"image2_b64\""},
    {"image_b64", R_VERIFY, "send the two images as \"image1_b64\" and \"image2_b64\""},
    {"image1", R_FACES, "send one image, as the file \"image\", the raw body or \"image_b64\""},
    {"image2", R_FACES, "send one image, as the file \"image\", the raw body or \"image_b64\""},
    {"image1_b64", R_FACES, "send one image, as \"image_b64\""},
    {"image2_b64", R_FACES, "send one image, as \"image_b64\""},
    {"api_key", R_BOTH,
     "send API keys in the Authorization (Bearer) or X-API-Key header"},
};

static int unknown_param(const char *key, const char *field, enum route route, struct proto_err *err)
{
    for (size_t i = 0; i < sizeof HINTS / sizeof HINTS[0]; i++)
        if ((HINTS[i].routes & route) && !strcmp(HINTS[i].key, key))
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "unknown parameter (%s)",
                                 HINTS[i].text);
    const char *names[N_PARAMS];
    size_t n = 0;
    char known[512];
    size_t k = 0;
    known[0] = '\0';
    for (size_t i = 0; i < N_PARAMS; i++) {
        if (!(PARAMS[i].routes & route) || PARAMS[i].deepstack_only)
            continue;
        names[n++] = PARAMS[i].name;
        const int w = snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "", PARAMS[i].name);
        if (w > 0 && (size_t)w < sizeof known - k)
            k += (size_t)w;
    }
    const char *hint = proto_suggest(key, names, n);
    if (hint)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "unknown parameter (did you mean \"%s\"?)", hint);
    return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "unknown parameter (known: %s)", known);
}

/* ---- requests ---- */

static void options_init(struct proto_face_options *o, enum proto_dialect dialect)
{
    memset(o, 0, sizeof *o);
    o->dialect = dialect;
    o->det_threshold = PROTO_FACE_DET_THRESHOLD_DEFAULT;
    o->input_size = PROTO_FACE_INPUT_SIZE_DEFAULT;
    o->exif = 1;
}

static void options_release(struct proto_face_options *o)
{
    if (o->api_key) {
        explicit_bzero(o->api_key, strlen(o->api_key));
        free(o->api_key);
        o->api_key = NULL;
    }
}

static void image_release(struct proto_image *im)
{
    free(im->owned);
    memset(im, 0, sizeof *im);
}

void proto_face_request_init(struct proto_face_request *req, enum proto_dialect dialect)
{
    memset(req, 0, sizeof *req);
    options_init(&req->opt, dialect);
    if (dialect == PROTO_DIALECT_DEEPSTACK)
        req->opt.det_threshold = PROTO_DEEPSTACK_FACE_DET_THRESHOLD_DEFAULT;
    req->landmarks = dialect != PROTO_DIALECT_DEEPSTACK;
}

void proto_face_request_release(struct proto_face_request *req)
{
    if (!req)
        return;
    options_release(&req->opt);
    image_release(&req->image);
    proto_face_request_init(req, req->opt.dialect);
}

void proto_verify_request_init(struct proto_verify_request *req, enum proto_dialect dialect)
{
    memset(req, 0, sizeof *req);
    options_init(&req->opt, dialect);
    req->face_select = PROTO_FACE_SELECT_LARGEST;
    req->match_threshold = PROTO_MATCH_THRESHOLD_DEFAULT;
    req->min_det_threshold = PROTO_FACE_MIN_DET_THRESHOLD_DEFAULT;
}

void proto_verify_request_release(struct proto_verify_request *req)
{
    if (!req)
        return;
    options_release(&req->opt);
    for (int s = 0; s < 2; s++)
        image_release(&req->side[s].image);
    proto_verify_request_init(req, req->opt.dialect);
}

/* The request a parameter goes to: exactly one of face, verify is set. */
struct target {
    enum route route;
    struct proto_face_options *opt;
    struct proto_face_request *face;
    struct proto_verify_request *verify;
};

static struct target face_target(struct proto_face_request *req)
{
    return (struct target){R_FACES, &req->opt, req, NULL};
}

static struct target verify_target(struct proto_verify_request *req)
{
    return (struct target){R_VERIFY, &req->opt, NULL, req};
}

static const uint8_t EMPTY[1];

/* The image bytes into *im; owned: im owns data (malloc'd, or NULL for an empty image). */
static void image_set(struct proto_image *im, const uint8_t *data, size_t len, uint8_t *owned)
{
    im->data = data ? data : EMPTY;
    im->len = data ? len : 0;
    im->owned = owned;
}

/* "image1" for side 0 as text; as JSON fields name the member that carried it. */
static const char *side_image_name(int side)
{
    return side ? "image2" : "image1";
}

static const char *side_embedding_name(int side)
{
    return side ? "embedding2" : "embedding1";
}

/* A side may take an input (of kind `input`, from `field`) if it has none yet. */
static int side_open(struct proto_verify_side *s, int side, enum proto_verify_input input,
                     const char *field, struct proto_err *err)
{
    if (s->input == PROTO_VERIFY_NONE)
        return 0;
    if (s->input == input)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "given more than once");
    return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                         "%s was given too: give either %s (or %s_b64) or %s for this side, not both",
                         input == PROTO_VERIFY_IMAGE ? side_embedding_name(side) : side_image_name(side),
                         side_image_name(side), side_image_name(side), side_embedding_name(side));
}

static void side_took(struct proto_verify_side *s, enum proto_verify_input input, const char *field)
{
    s->input = input;
    snprintf(s->field, sizeof s->field, "%s", field);
}

/* ---- embeddings ---- */

/* One value of an embedding; field names the entry. */
static int embedding_value(const struct proto_val *v, float *out, const char *field,
                           struct proto_err *err)
{
    double d;
    if (proto_val_number(v, &d) || !(fabs(d) <= PROTO_FACE_EMBEDDING_ABS_MAX))
        return proto_val_bad(err, field, "a finite number between -1000 and 1000", v);
    *out = (float)d;
    return 0;
}

/* "0.1, -0.2, ..." (optionally in [ ]): exactly PROTO_FACE_EMBEDDING_DIM numbers. */
static int embedding_from_text(const char *s, float *out, const char *field, struct proto_err *err)
{
    char entry_field[PROTO_ERR_FIELD_MAX];
    const char *end = s + strlen(s);
    while (s < end && strchr(" \t\r\n", *s))
        s++;
    while (end > s && strchr(" \t\r\n", end[-1]))
        end--;
    if (s < end && *s == '[') {
        if (end[-1] != ']')
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                                 "expected %d comma-separated numbers, got a '[' without its ']'",
                                 PROTO_FACE_EMBEDDING_DIM);
        s++;
        end--;
    }
    int n = 0;
    for (const char *p = s; p <= end && s < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *b = p;
        while (b < e && strchr(" \t\r\n", *b))
            b++;
        const char *t = e;
        while (t > b && strchr(" \t\r\n", t[-1]))
            t--;
        if (n == PROTO_FACE_EMBEDDING_DIM)
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                                 "expected %d comma-separated numbers, got more",
                                 PROTO_FACE_EMBEDDING_DIM);
        snprintf(entry_field, sizeof entry_field, "%.100s[%d]", field, n);
        char buf[64];
        const size_t len = (size_t)(t - b);
        if (len >= sizeof buf)
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, entry_field,
                                 "expected a number, got %zu characters", len);
        memcpy(buf, b, len);
        buf[len] = '\0';
        const struct proto_val v = {.str = buf};
        if (embedding_value(&v, &out[n], entry_field, err))
            return -1;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (n != PROTO_FACE_EMBEDDING_DIM)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "expected %d comma-separated numbers, got %d", PROTO_FACE_EMBEDDING_DIM, n);
    return 0;
}

static int embedding_from_json(json_t *a, float *out, const char *field, struct proto_err *err)
{
    char what[64];
    snprintf(what, sizeof what, "an array of %d numbers", PROTO_FACE_EMBEDDING_DIM);
    if (!json_is_array(a)) {
        const struct proto_val v = {.json = a};
        return proto_val_bad(err, field, what, &v);
    }
    if (json_array_size(a) != PROTO_FACE_EMBEDDING_DIM)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "expected %s, got %zu", what,
                             json_array_size(a));
    for (size_t i = 0; i < PROTO_FACE_EMBEDDING_DIM; i++) {
        char entry_field[PROTO_ERR_FIELD_MAX];
        snprintf(entry_field, sizeof entry_field, "%.100s[%zu]", field, i);
        const struct proto_val v = {.json = json_array_get(a, i)};
        if (embedding_value(&v, &out[i], entry_field, err))
            return -1;
    }
    return 0;
}

/* ---- setting one parameter ---- */

static int set_side_image(struct target *t, int side, const char *field, const uint8_t *data,
                          size_t len, uint8_t *owned, struct proto_err *err)
{
    struct proto_verify_side *s = &t->verify->side[side];
    if (side_open(s, side, PROTO_VERIFY_IMAGE, field, err)) {
        free(owned);
        return -1;
    }
    image_set(&s->image, data, len, owned);
    side_took(s, PROTO_VERIFY_IMAGE, field);
    t->opt->given |= side ? PROTO_FACE_PARAM_IMAGE2 : PROTO_FACE_PARAM_IMAGE1;
    return 0;
}

static int apply(void *target, const struct proto_param_def *p, const char *field, const struct proto_val *v,
                 struct proto_err *err)
{
    struct target *t = target;
    struct proto_face_options *o = t->opt;
    if (p->kind == K_SIDE_IMAGE_B64 || p->kind == K_SIDE_EMBEDDING) {
        /* the side's own checks name the conflict (image1 and embedding1, or image1 twice) */
        const enum proto_verify_input in =
            p->kind == K_SIDE_IMAGE_B64 ? PROTO_VERIFY_IMAGE : PROTO_VERIFY_EMBEDDING;
        if (side_open(&t->verify->side[p->side], p->side, in, field, err))
            return -1;
    } else if (o->given & p->bit) {
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "given more than once");
    }
    int rc = 0;
    switch (p->kind) {
    case K_DET_THRESHOLD: rc = proto_val_set_unit(&o->det_threshold, field, v, err); break;
    case K_INPUT_SIZE: {
        long long n;
        if (proto_val_integer(v, &n) || n < PROTO_FACE_INPUT_SIZE_MIN || n > PROTO_FACE_INPUT_SIZE_MAX ||
            n % PROTO_FACE_INPUT_SIZE_STEP)
            return proto_val_bad(err, field, "a multiple of 32 between 128 and 1024 (416 by default)", v);
        o->input_size = (int)n;
        break;
    }
    case K_EXIF: rc = proto_val_set_bool(&o->exif, field, v, err); break;
    case K_TIMEOUT: rc = proto_val_set_int(&o->timeout_ms, 1, PROTO_TIMEOUT_MS_MAX, field, v, err); break;
    case K_API_KEY: rc = proto_val_set_string(&o->api_key, field, v, err); break;
    case K_LIMIT: rc = proto_val_set_int(&t->face->limit, 0, PROTO_FACE_LIMIT_MAX, field, v, err); break;
    case K_LANDMARKS: rc = proto_val_set_bool(&t->face->landmarks, field, v, err); break;
    case K_EMBEDDING: rc = proto_val_set_bool(&t->face->embedding, field, v, err); break;
    case K_IMAGE_B64: {
        uint8_t *data;
        size_t n;
        if (proto_val_image_b64(field, v, &data, &n, err))
            return -1;
        image_set(&t->face->image, data, n, data);
        break;
    }
    case K_FACE_SELECT: {
        const char *s = proto_val_string(v);
        if (s && !strcmp(s, "largest"))
            t->verify->face_select = PROTO_FACE_SELECT_LARGEST;
        else if (s && !strcmp(s, "best"))
            t->verify->face_select = PROTO_FACE_SELECT_BEST;
        else
            return proto_val_bad(err, field, "\"largest\" or \"best\"", v);
        break;
    }
    case K_MATCH_THRESHOLD: {
        double d;
        if (proto_val_number(v, &d) || !(d >= 0 && d <= PROTO_MATCH_THRESHOLD_MAX))
            return proto_val_bad(err, field,
                                 "a Euclidean distance between 0 and 4 (0.6 by default)", v);
        t->verify->match_threshold = d;
        break;
    }
    case K_ALIGNED: rc = proto_val_set_bool(&t->verify->aligned, field, v, err); break;
    case K_MIN_DET_THRESHOLD: rc = proto_val_set_unit(&t->verify->min_det_threshold, field, v, err); break;
    case K_SIDE_IMAGE_B64: {
        uint8_t *data;
        size_t n;
        if (proto_val_image_b64(field, v, &data, &n, err))
            return -1;
        return set_side_image(t, p->side, field, data, n, data, err);
    }
    case K_SIDE_EMBEDDING: {
        float e[PROTO_FACE_EMBEDDING_DIM]; /* the side keeps none of a list that fails half way */
        rc = v->json ? embedding_from_json(v->json, e, field, err)
                     : embedding_from_text(v->str, e, field, err);
        if (rc)
            return -1;
        struct proto_verify_side *s = &t->verify->side[p->side];
        memcpy(s->embedding, e, sizeof e);
        side_took(s, PROTO_VERIFY_EMBEDDING, field);
        break;
    }
    }
    if (rc == 0)
        o->given |= p->bit;
    return rc;
}

static int unknown(void *target, const char *key, const char *field, int text, struct proto_err *err)
{
    const struct target *t = target;
    if (text && t->route == R_FACES && !strcmp(key, "image"))
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, PROTO_IMAGE_AS_TEXT_HINT);
    if (text && t->route == R_VERIFY && (!strcmp(key, "image1") || !strcmp(key, "image2")))
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "send %s as a multipart file field, or base64-encoded as %s_b64", field, field);
    return unknown_param(key, field, t->route, err);
}

static const struct proto_schema SCHEMA = {PARAMS, N_PARAMS, apply, unknown};

/* A key/value pair (query or form text) for the target. */
static int target_set(struct target *t, const char *key, const char *value, struct proto_err *err)
{
    return proto_schema_set(&SCHEMA, t, t->route, t->opt->dialect, key, value, err);
}

static int target_parse_json(struct target *t, const char *body, size_t len, struct proto_err *err)
{
    t->opt->from_json = 1;
    return proto_schema_parse_json(&SCHEMA, t, t->route, t->opt->dialect, body, len, err);
}

/* ---- /v1/faces ---- */

int proto_face_request_set(struct proto_face_request *req, const char *key, const char *value,
                           struct proto_err *err)
{
    struct target t = face_target(req);
    return target_set(&t, key, value, err);
}

int proto_face_request_set_image_static(struct proto_face_request *req, const uint8_t *data, size_t len,
                                        struct proto_err *err)
{
    if (req->opt.given & PROTO_FACE_PARAM_IMAGE)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, "image", "given more than once");
    image_set(&req->image, data, len, NULL);
    req->opt.given |= PROTO_FACE_PARAM_IMAGE;
    return 0;
}

int proto_face_request_parse_json(struct proto_face_request *req, const char *body, size_t len,
                                  struct proto_err *err)
{
    struct target t = face_target(req);
    return target_parse_json(&t, body, len, err);
}

int proto_face_request_check(const struct proto_face_request *req, struct proto_err *err)
{
    const char *field = req->opt.from_json ? "$.image_b64" : "image";
    if (!(req->opt.given & PROTO_FACE_PARAM_IMAGE))
        return proto_err_set(err, PROTO_ERR_BAD_REQUEST, field,
                             "missing: send the image as the raw body (Content-Type image/jpeg or "
                             "image/png), as the multipart file field \"image\", or base64-encoded "
                             "as \"image_b64\" in a JSON body");
    if (req->image.len == 0)
        return proto_err_set(err, PROTO_ERR_BAD_IMAGE, field, "empty (0 bytes)");
    return 0;
}

/* ---- /v1/verify ---- */

int proto_verify_request_set(struct proto_verify_request *req, const char *key, const char *value,
                             struct proto_err *err)
{
    struct target t = verify_target(req);
    return target_set(&t, key, value, err);
}

int proto_verify_request_set_image_static(struct proto_verify_request *req, const char *name,
                                          const uint8_t *data, size_t len, struct proto_err *err)
{
    name = name ? name : "";
    const int side = !strcmp(name, "image1") ? 0 : !strcmp(name, "image2") ? 1 : -1;
    if (side < 0) {
        if (req->opt.dialect == PROTO_DIALECT_DEEPSTACK)
            return 0;
        char field[PROTO_ERR_FIELD_MAX];
        proto_field_name("", name, field, sizeof field);
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "unknown file field (send the two images as \"image1\" and \"image2\")");
    }
    struct target t = verify_target(req);
    return set_side_image(&t, side, name, data, len, NULL, err);
}

int proto_verify_request_parse_json(struct proto_verify_request *req, const char *body, size_t len,
                                    struct proto_err *err)
{
    struct target t = verify_target(req);
    return target_parse_json(&t, body, len, err);
}

int proto_verify_request_check(const struct proto_verify_request *req, struct proto_err *err)
{
    for (int side = 0; side < 2; side++) {
        const struct proto_verify_side *s = &req->side[side];
        if (s->input == PROTO_VERIFY_NONE) {
            /* Name what the client most likely forgot: an embedding if the other side is one. */
            const int as_embedding = req->side[!side].input == PROTO_VERIFY_EMBEDDING;
            char field[32];
            if (as_embedding)
                snprintf(field, sizeof field, "%s%s", req->opt.from_json ? "$." : "",
                         side_embedding_name(side));
            else
                snprintf(field, sizeof field, "%s%s%s", req->opt.from_json ? "$." : "",
                         side_image_name(side), req->opt.from_json ? "_b64" : "");
            return proto_err_set(err, PROTO_ERR_BAD_REQUEST, field,
                                 "missing: /v1/verify compares two faces; give each side as an image "
                                 "(multipart file fields \"image1\" and \"image2\", or \"image1_b64\" "
                                 "and \"image2_b64\" in a JSON body) or as an embedding (\"embedding1\", "
                                 "\"embedding2\": %d numbers)",
                                 PROTO_FACE_EMBEDDING_DIM);
        }
        if (s->input == PROTO_VERIFY_IMAGE && s->image.len == 0)
            return proto_err_set(err, PROTO_ERR_BAD_IMAGE, s->field, "empty (0 bytes)");
    }
    return 0;
}

/* ---- errors ---- */

int proto_face_err_no_face(struct proto_err *err, const char *field,
                           const struct proto_face_options *opt)
{
    return proto_err_set(err, PROTO_ERR_NO_FACE, field,
                         "no face found (det_threshold %g, input_size %d; a lower det_threshold or a "
                         "larger input_size finds smaller or less clear faces)",
                         (double)opt->det_threshold, opt->input_size);
}
