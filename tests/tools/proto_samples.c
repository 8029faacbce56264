/* proto_samples.c - test helper: prints what proto/ produces, so tests/ref/test_openapi_sync.py can
 * check it against proto/openapi.yaml with a JSON Schema validator.
 *
 *   visiond_proto_samples             one line per sample: "<schema>\t<status>\t<json>", where schema
 *                                     names a components/schemas entry of the OpenAPI document
 *   visiond_proto_samples --codes     one line per error code: "<name>\t<status>"
 *   visiond_proto_samples --openapi   the embedded OpenAPI JSON (proto_openapi_json()), as is
 *   visiond_proto_samples --parse-json [--deepstack]
 *                                     parses a /v1/detect JSON body from stdin: prints "ok" and exits 0,
 *                                     or prints the error JSON and exits 1
 * Exit status 2 on usage errors or when out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_detect.h"
#include "proto_errors.h"
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
        emit("ModelsResponse", 200, proto_models_json(models, 2)) ||
        emit("ModelsResponse", 200, proto_models_json(models, 0)) ||
        emit("Health", 200, proto_health_json("ok")) ||
        emit("Health", 200, proto_health_json("ready")))
        return -1;
    for (int c = 1; c < PROTO_CODE_COUNT; c++) {
        const int status = proto_code_status((enum proto_code)c);
        if (emit("Error", status, proto_error_json((enum proto_code)c, NULL, NULL, NULL)) ||
            emit("Error", status,
                 proto_error_json((enum proto_code)c, "$.conf: expected a number", "$.conf",
                                  "3f2a9c1e00000011")) ||
            emit("DeepStackError", status,
                 proto_deepstack_error_json((enum proto_code)c, NULL, "3f2a9c1e00000011")))
            return -1;
    }
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
        if (emit("Error", proto_code_status(err.code), proto_err_json(&err, "id-1")))
            return -1;
    }
    return 0;
}

static int parse_stdin(enum proto_dialect dialect)
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
    struct proto_detect_request req;
    struct proto_err err = {0};
    proto_detect_request_init(&req, dialect);
    int rc = proto_detect_request_parse_json(&req, body, len, &err);
    if (rc == 0)
        rc = proto_detect_request_check(&req, &err);
    proto_detect_request_release(&req);
    free(body);
    if (rc == 0) {
        puts("ok");
        return 0;
    }
    char *json = proto_err_json(&err, NULL);
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
    if (argc >= 2 && argc <= 3 && !strcmp(argv[1], "--parse-json")) {
        if (argc == 3 && strcmp(argv[2], "--deepstack"))
            return 2;
        return parse_stdin(argc == 3 ? PROTO_DIALECT_DEEPSTACK : PROTO_DIALECT_NATIVE);
    }
    fprintf(stderr, "usage: visiond_proto_samples [--codes | --openapi | --parse-json [--deepstack]]\n");
    return 2;
}
