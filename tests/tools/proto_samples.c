/* proto_samples.c - test helper: prints what proto/ produces, so tests/ref/test_openapi_sync.py can
 * check it against proto/openapi.yaml with a JSON Schema validator.
 *
 *   visiond_proto_samples             one line per sample: "<schema>\t<status>\t<json>", where schema
 *                                     names a components/schemas entry of the OpenAPI document
 *   visiond_proto_samples --codes     one line per error code: "<name>\t<status>"
 *   visiond_proto_samples --openapi   the embedded OpenAPI JSON (proto_openapi_json()), as is
 *   visiond_proto_samples --parse-json [--deepstack] [--route detect|faces|verify]
 *                                     parses a JSON body of that route (default detect) from stdin,
 *                                     then checks it: prints "ok" and exits 0, or prints the error JSON
 *                                     and exits 1
 * Exit status 2 on usage errors or when out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_detect.h"
#include "proto_errors.h"
#include "proto_face.h"
#include "proto_openapi.h"
#include "proto_request.h"

static int emit(const char *schema, int status, char *json)
{
    if (!json) {
        fprintf(stderr, "visiond_proto_samples: out of memory\n");
        return -1;
    }
    printf("%s\t%d\t%s\n", schema, status, json);
    free(json);
    return 0;
}

/* The face routes' answers and errors. */
static int face_samples(void)
{
    static float landmarks[PROTO_FACE_LANDMARKS * 2], embedding[PROTO_FACE_EMBEDDING_DIM];
    for (int i = 0; i < PROTO_FACE_LANDMARKS; i++) {
        landmarks[2 * i] = 90.0f + (float)i * 1.5f;
        landmarks[2 * i + 1] = 120.0f + (float)(i % 17) * 2.25f;
    }
    for (int i = 0; i < PROTO_FACE_EMBEDDING_DIM; i++)
        embedding[i] = (float)(i - 64) / 317.0f;
    const struct proto_face faces[] = {
        {{80.25f, 100.5f, 220.75f, 260.125f}, 0.97531f, landmarks, embedding},
        {{-4.5f, 300.0f, 40.0f, 352.0f}, 0.5123f, landmarks, NULL}, /* past the border */
        {{500.0f, 20.0f, 530.0f, 55.0f}, 0.61f, NULL, NULL},
    };
    const struct proto_faces_response full = {
        .request_id = "3f2a9c1e00000011", .landmark_model = "face_landmark_68",
        .recognition_model = "face_recognition", .width = 640, .height = 480, .exif_rotated = 1,
        .faces = faces, .count = 3, .timing_ms = {3.25, 0.5, 18.125, 4.0, 31.0625, 58.5}};
    const struct proto_faces_response none = {.request_id = "x", .detector_model = "tiny_face_detector",
                                              .width = 1, .height = 1};
    const struct proto_verify_response both = {
        .request_id = "3f2a9c1e00000012", .squared_distance = 0.1681, .threshold = 0.6,
        .faces = {{1, {80.25f, 100.5f, 220.75f, 260.125f}, 0.97531f, 2},
                  {1, {-2.0f, 10.0f, 150.0f, 170.0f}, 0.88f, 1}},
        .timing_ms = {6.5, 0.25, 36.0, 8.0, 62.0, 115.0}};
    const struct proto_verify_response mixed = {
        .request_id = "x", .squared_distance = 0.81, .threshold = 0.55,
        .faces = {{0}, {1, {1.0f, 2.0f, 3.0f, 4.0f}, 0.5f, 7}}};
    const struct proto_verify_response embeddings = {.request_id = "y", .squared_distance = 0,
                                                     .threshold = 0};
    if (emit("FacesResponse", 200, proto_faces_response_json(&full)) ||
        emit("FacesResponse", 200, proto_faces_response_json(&none)) ||
        emit("DeepStackFaceResponse", 200, proto_faces_deepstack_json(&full)) ||
        emit("DeepStackFaceResponse", 200, proto_faces_deepstack_json(&none)) ||
        emit("VerifyResponse", 200, proto_verify_response_json(&both)) ||
        emit("VerifyResponse", 200, proto_verify_response_json(&mixed)) ||
        emit("VerifyResponse", 200, proto_verify_response_json(&embeddings)) ||
        emit("DeepStackFaceMatchResponse", 200, proto_verify_deepstack_json(&both)) ||
        emit("DeepStackFaceMatchResponse", 200, proto_verify_deepstack_json(&mixed)) ||
        emit("DeepStackFaceMatchResponse", 200, proto_verify_deepstack_json(&embeddings)))
        return -1;
    struct proto_face_request freq;
    proto_face_request_init(&freq, PROTO_DIALECT_NATIVE);
    const char *sides[] = {"image1", "image2", "image"};
    for (int i = 0; i < 3; i++) {
        struct proto_err err;
        proto_face_err_no_face(&err, sides[i], &freq.opt);
        if (emit("Error", proto_code_status(err.code), proto_error_body(PROTO_DIALECT_NATIVE, &err, "id-2")) ||
            emit("DeepStackError", proto_code_status(err.code),
                 proto_error_body(PROTO_DIALECT_DEEPSTACK, &err, NULL)))
            return -1;
    }
    /* Errors from the parsers. */
    const char *faces_bodies[] = {"{\"threshold\": 0.5}", "{\"input_size\": 300}", "{}",
                                  "{\"image_b64\": \"\"}"};
    for (size_t i = 0; i < sizeof faces_bodies / sizeof faces_bodies[0]; i++) {
        struct proto_err err = {0};
        proto_face_request_init(&freq, PROTO_DIALECT_NATIVE);
        if (proto_face_request_parse_json(&freq, faces_bodies[i], strlen(faces_bodies[i]), &err) == 0)
            proto_face_request_check(&freq, &err);
        proto_face_request_release(&freq);
        if (emit("Error", proto_code_status(err.code), proto_error_body(PROTO_DIALECT_NATIVE, &err, "id-3")))
            return -1;
    }
    const char *verify_bodies[] = {"{\"image1_b64\": \"AAAA\"}", "{\"embedding1\": [1, 2]}",
                                   "{\"threshold\": 0.6}", "{\"match_threshold\": 5}",
                                   "{\"embedding2\": \"1,2\"}"};
    for (size_t i = 0; i < sizeof verify_bodies / sizeof verify_bodies[0]; i++) {
        struct proto_verify_request vreq;
        struct proto_err err = {0};
        proto_verify_request_init(&vreq, PROTO_DIALECT_NATIVE);
        if (proto_verify_request_parse_json(&vreq, verify_bodies[i], strlen(verify_bodies[i]), &err) == 0)
            proto_verify_request_check(&vreq, &err);
        proto_verify_request_release(&vreq);
        if (emit("Error", proto_code_status(err.code), proto_error_body(PROTO_DIALECT_NATIVE, &err, "id-4")))
            return -1;
    }
    return 0;
}

static int samples(void)
{
    static char *names[] = {"person", "bicycle", "car", "caf\xc3\xa9", "bad\xff"};
    struct eng_net net = {.name = "sample-net", .input = {3, 320, 416}, .classes = 5,
                          .class_names = names};
    struct eng_net unnamed = {.input = {3, 416, 416}, .classes = 3};
    const struct eng_detection dets[] = {
        {{10.25f, 20.5f, 110.75f, 220.125f}, 0.98765f, 0},
        {{0.0f, 0.0f, 639.0f, 479.0f}, 0.5f, 2},
        {{300.999f, 1.001f, 301.5f, 2.0f}, 0.25f, 3},
        {{5.0f, 5.0f, 6.0f, 6.0f}, 0.3f, 4},
    };
    const struct proto_detect_response r = {
        .request_id = "3f2a9c1e00000011", .net = &net, .width = 640, .height = 480,
        .exif_rotated = 1, .dets = dets, .count = 4, .decode_ms = 3.25, .queue_ms = 0.5,
        .inference_ms = 40.125, .nms_ms = 0.0625, .total_ms = 44.5};
    const struct proto_detect_response empty = {.request_id = "x", .model = "other",
                                                .net = &unnamed, .width = 1, .height = 1};
    const struct proto_model_info models[] = {
        {.net = &net, .conf = 0.25f, .iou = 0.45f, .max_det = 100, .is_default = 1},
        {.name = "unnamed", .net = &unnamed, .conf = 0.5f, .iou = 0.3f, .max_det = 1000},
    };
    if (emit("DetectResponse", 200, proto_detect_response_json(&r)) ||
        emit("DetectResponse", 200, proto_detect_response_json(&empty)) ||
        emit("DeepStackResponse", 200, proto_deepstack_response_json(&r)) ||
        emit("DeepStackResponse", 200, proto_deepstack_response_json(&empty)) ||
        emit("ModelsResponse", 200, proto_models_json(models, 2, NULL, 0)) ||
        emit("ModelsResponse", 200, proto_models_json(models, 0, NULL, 0)) ||
        emit("Health", 200, proto_health_json("ok")) ||
        emit("Health", 200, proto_health_json("ready")))
        return -1;
    for (int c = 1; c < PROTO_CODE_COUNT; c++) {
        const int status = proto_code_status((enum proto_code)c);
        const struct proto_err bare = {.code = (enum proto_code)c};
        struct proto_err conf;
        proto_err_set(&conf, (enum proto_code)c, "$.conf", "expected a number");
        if (emit("Error", status, proto_error_body(PROTO_DIALECT_NATIVE, &bare, NULL)) ||
            emit("Error", status, proto_error_body(PROTO_DIALECT_NATIVE, &conf, "3f2a9c1e00000011")) ||
            emit("DeepStackError", status,
                 proto_error_body(PROTO_DIALECT_DEEPSTACK, &bare, "3f2a9c1e00000011")))
            return -1;
    }
    if (face_samples())
        return -1;
    /* Errors from the request parser itself. */
    const char *bodies[] = {"{\"image_b64\": \"!!\"}", "{\"conf\": 2}", "[1]", "{\"confidence\": 0.5}",
                            "{\"image_b64\":\"data:text/plain;base64,AAAA\"}", "{"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct proto_detect_request req;
        struct proto_err err = {0};
        proto_detect_request_init(&req, PROTO_DIALECT_NATIVE);
        if (proto_detect_request_parse_json(&req, bodies[i], strlen(bodies[i]), &err) == 0)
            proto_detect_request_check(&req, &err);
        proto_detect_request_release(&req);
        if (emit("Error", proto_code_status(err.code), proto_error_body(PROTO_DIALECT_NATIVE, &err, "id-1")))
            return -1;
    }
    return 0;
}

enum route { ROUTE_DETECT, ROUTE_FACES, ROUTE_VERIFY };

/* Parses and checks body as a JSON body of the route: 0 ok, -1 with *err. */
static int parse_body(enum route route, enum proto_dialect dialect, const char *body, size_t len,
                      struct proto_err *err)
{
    int rc;
    if (route == ROUTE_FACES) {
        struct proto_face_request req;
        proto_face_request_init(&req, dialect);
        rc = proto_face_request_parse_json(&req, body, len, err);
        if (rc == 0)
            rc = proto_face_request_check(&req, err);
        proto_face_request_release(&req);
    } else if (route == ROUTE_VERIFY) {
        struct proto_verify_request req;
        proto_verify_request_init(&req, dialect);
        rc = proto_verify_request_parse_json(&req, body, len, err);
        if (rc == 0)
            rc = proto_verify_request_check(&req, err);
        proto_verify_request_release(&req);
    } else {
        struct proto_detect_request req;
        proto_detect_request_init(&req, dialect);
        rc = proto_detect_request_parse_json(&req, body, len, err);
        if (rc == 0)
            rc = proto_detect_request_check(&req, err);
        proto_detect_request_release(&req);
    }
    return rc;
}

static int parse_stdin(enum route route, enum proto_dialect dialect)
{
    size_t cap = 1 << 16, len = 0;
    char *body = malloc(cap);
    if (!body)
        return 2;
    for (size_t n; (n = fread(body + len, 1, cap - len, stdin)) > 0;) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(body, cap * 2);
            if (!bigger) {
                free(body);
                return 2;
            }
            body = bigger;
            cap *= 2;
        }
    }
    struct proto_err err = {0};
    const int rc = parse_body(route, dialect, body, len, &err);
    free(body);
    if (rc == 0) {
        puts("ok");
        return 0;
    }
    char *json = proto_error_body(PROTO_DIALECT_NATIVE, &err, NULL);
    if (!json)
        return 2;
    puts(json);
    free(json);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return samples() ? 2 : 0;
    if (argc == 2 && !strcmp(argv[1], "--codes")) {
        for (int c = 1; c < PROTO_CODE_COUNT; c++)
            printf("%s\t%d\n", proto_code_name((enum proto_code)c),
                   proto_code_status((enum proto_code)c));
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--openapi")) {
        fwrite(proto_openapi_json(), 1, proto_openapi_json_len(), stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--parse-json")) {
        enum proto_dialect dialect = PROTO_DIALECT_NATIVE;
        enum route route = ROUTE_DETECT;
        int i = 2;
        for (; i < argc; i++) {
            if (!strcmp(argv[i], "--deepstack"))
                dialect = PROTO_DIALECT_DEEPSTACK;
            else if (!strcmp(argv[i], "--route") && i + 1 < argc && !strcmp(argv[i + 1], "detect"))
                route = ROUTE_DETECT, i++;
            else if (!strcmp(argv[i], "--route") && i + 1 < argc && !strcmp(argv[i + 1], "faces"))
                route = ROUTE_FACES, i++;
            else if (!strcmp(argv[i], "--route") && i + 1 < argc && !strcmp(argv[i + 1], "verify"))
                route = ROUTE_VERIFY, i++;
            else
                break;
        }
        if (i == argc)
            return parse_stdin(route, dialect);
    }
    fprintf(stderr, "usage: visiond_proto_samples [--codes | --openapi | --parse-json [--deepstack] "
                    "[--route detect|faces|verify]]\n");
    return 2;
}
