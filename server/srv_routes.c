/* srv_routes.c - the route table: one row per method and path (srv_route.h says what a row holds).
 * The table and proto/openapi.yaml must agree (tests/ref/test_openapi_sync.py checks every row is
 * documented and every documented path is a row). */
#include <stdio.h>

#include "proto_detect.h"
#include "proto_face.h"
#include "proto_request.h"
#include "srv_gallery.h"
#include "srv_route.h"
#include "srv_ui.h"

#define NATIVE PROTO_DIALECT_NATIVE
#define DEEPSTACK PROTO_DIALECT_DEEPSTACK
#define PUBLIC SRV_SCOPE_PUBLIC
#define INFERENCE SRV_SCOPE_INFERENCE
#define GET_HEAD (SRV_GET | SRV_HEAD)
#define ADMIN SRV_SCOPE_ADMIN

/* ---- the success encoders of the job routes ------------------------------------------------ */

char *srv_encode_detect(const void *r) { return proto_detect_response_json(r); }
char *srv_encode_detect_deepstack(const void *r) { return proto_deepstack_response_json(r); }
char *srv_encode_faces(const void *r) { return proto_faces_response_json(r); }
char *srv_encode_faces_deepstack(const void *r) { return proto_faces_deepstack_json(r); }
char *srv_encode_verify(const void *r) { return proto_verify_response_json(r); }
char *srv_encode_verify_deepstack(const void *r) { return proto_verify_deepstack_json(r); }

#ifdef VISIOND_TOY_ROUTE
#include "srv_toy_route.inc" /* a test build's extra row (tests/ref/test_route_table.py) */
#endif

static const struct srv_route routes[] = {
    /* method, path, metrics name, error dialect, scope, handler, job kind, encoder */
    {SRV_POST, "/v1/detect", "detect", NATIVE, INFERENCE, srv_job_handler, &srv_detect_job,
     srv_encode_detect},
    {SRV_POST, "/v1/faces", "faces", NATIVE, INFERENCE, srv_job_handler, &srv_faces_job,
     srv_encode_faces},
    {SRV_POST, "/v1/verify", "verify", NATIVE, INFERENCE, srv_job_handler, &srv_verify_job,
     srv_encode_verify},
    {SRV_POST, "/v1/vision/detection", "deepstack_detection", DEEPSTACK, INFERENCE, srv_job_handler,
     &srv_detect_job, srv_encode_detect_deepstack},
    {SRV_POST, "/v1/vision/face", "deepstack_face", DEEPSTACK, INFERENCE, srv_job_handler,
     &srv_faces_job, srv_encode_faces_deepstack},
    {SRV_POST, "/v1/vision/face/match", "deepstack_face_match", DEEPSTACK, INFERENCE, srv_job_handler,
     &srv_verify_job, srv_encode_verify_deepstack},
    /* the gallery (srv_gallery.h): writes need the admin scope */
    {SRV_POST, "/v1/vision/face/register", "deepstack_face_register", DEEPSTACK, ADMIN, srv_job_handler,
     &srv_gallery_register_job, NULL},
    {SRV_POST, "/v1/vision/face/recognize", "deepstack_face_recognize", DEEPSTACK, INFERENCE, srv_job_handler,
     &srv_gallery_identify_job, NULL},
    {SRV_POST, "/v1/vision/face/list", "deepstack_face_list", DEEPSTACK, INFERENCE, srv_gallery_ds_list, NULL,
     NULL},
    {SRV_POST, "/v1/vision/face/delete", "deepstack_face_delete", DEEPSTACK, ADMIN, srv_gallery_ds_delete, NULL,
     NULL},
    /* CodeProject.AI / Blue Iris: custom models are the loaded detection models, by name */
    {SRV_GET | SRV_POST, "/v1/vision/custom/list", "deepstack_custom_list", DEEPSTACK, INFERENCE,
     srv_custom_list_handler, NULL, NULL},
    {SRV_POST, "/v1/vision/custom/{model}", "deepstack_custom", DEEPSTACK, INFERENCE, srv_job_handler,
     &srv_detect_job, srv_encode_detect_deepstack},
    {SRV_GET | SRV_POST, "/v1/vision/scene", "deepstack_scene", DEEPSTACK, INFERENCE, srv_scene_handler,
     NULL, NULL},
    {0, "/v1/vision/", "deepstack", DEEPSTACK, PUBLIC, NULL, NULL, NULL}, /* unmatched: DeepStack 404 */
    /* the design card's un-versioned names of the native routes */
    {SRV_POST, "/detect", "detect", NATIVE, INFERENCE, srv_job_handler, &srv_detect_job,
     srv_encode_detect},
    {SRV_POST, "/faces", "faces", NATIVE, INFERENCE, srv_job_handler, &srv_faces_job, srv_encode_faces},
    {SRV_POST, "/verify", "verify", NATIVE, INFERENCE, srv_job_handler, &srv_verify_job,
     srv_encode_verify},
    {SRV_POST, "/v1/subjects", "subjects_create", NATIVE, ADMIN, srv_gallery_subjects_post, NULL, NULL},
    {GET_HEAD, "/v1/subjects", "subjects_list", NATIVE, INFERENCE, srv_gallery_subjects_get, NULL, NULL},
    {GET_HEAD, "/v1/subjects/{name}", "subject_get", NATIVE, INFERENCE, srv_gallery_subject_get, NULL, NULL},
    {SRV_PATCH, "/v1/subjects/{name}", "subject_rename", NATIVE, ADMIN, srv_gallery_subject_patch, NULL, NULL},
    {SRV_DELETE, "/v1/subjects/{name}", "subject_delete", NATIVE, ADMIN, srv_gallery_subject_delete, NULL, NULL},
    {SRV_POST, "/v1/subjects/{name}/faces", "faces_enroll", NATIVE, ADMIN, srv_job_handler, &srv_gallery_enroll_job,
     NULL},
    {GET_HEAD, "/v1/subjects/{name}/faces", "faces_list", NATIVE, INFERENCE, srv_gallery_faces_get, NULL, NULL},
    {SRV_DELETE, "/v1/faces/{face_id}", "face_delete", NATIVE, ADMIN, srv_gallery_face_delete, NULL, NULL},
    {SRV_POST, "/v1/identify", "identify", NATIVE, INFERENCE, srv_job_handler, &srv_gallery_identify_job, NULL},
    {SRV_POST, "/identify", "identify", NATIVE, INFERENCE, srv_job_handler, &srv_gallery_identify_job, NULL},
    {GET_HEAD, "/v1/gallery", "gallery", NATIVE, INFERENCE, srv_gallery_info, NULL, NULL},
    {GET_HEAD, "/v1/models", "models", NATIVE, INFERENCE, srv_models_handler, NULL, NULL},
    {GET_HEAD, "/healthz", "healthz", NATIVE, PUBLIC, srv_healthz_handler, NULL, NULL},
    {GET_HEAD, "/readyz", "readyz", NATIVE, PUBLIC, srv_readyz_handler, NULL, NULL},
    {SRV_GET, "/metrics", "metrics", NATIVE, INFERENCE, srv_metrics_handler, NULL, NULL},
    {SRV_GET, "/openapi.json", "openapi", NATIVE, INFERENCE, srv_openapi_handler, NULL, NULL},
    /* The web page (srv_ui.h): public, since a browser cannot send a key when it navigates. */
    {GET_HEAD, "/", "ui", NATIVE, PUBLIC, srv_ui_handler, NULL, NULL},
    {GET_HEAD, "/ui/{file}", "ui", NATIVE, PUBLIC, srv_ui_handler, NULL, NULL},
#ifdef VISIOND_TOY_ROUTE
    SRV_TOY_ROWS
#endif
};

const struct srv_route *srv_routes(int *n)
{
    *n = (int)(sizeof routes / sizeof routes[0]);
    return routes;
}

static const char *methods_text(unsigned m, char *buf, size_t size)
{
    static const char *const names[] = {"GET", "POST", "OPTIONS", "HEAD", "PATCH", "DELETE"};
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0] && used < size; i++)
        if (m & (1u << i))
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", names[i]);
    return used ? buf : "-";
}

int srv_routes_print(int argc, char **argv)
{
    static const char *const scopes[] = {"public", "inference", "admin"};
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: visiond routes   (prints the route table: methods, path, scope, dialect, "
                        "name; methods '-': a dialect prefix)\n");
        return 2;
    }
    int n;
    const struct srv_route *r = srv_routes(&n);
    for (int i = 0; i < n; i++) {
        char m[64];
        printf("%-12s %-28s %-9s %-9s %s\n", methods_text(r[i].methods, m, sizeof m), r[i].path,
               scopes[r[i].scope], r[i].dialect == DEEPSTACK ? "deepstack" : "native", r[i].name);
    }
    return 0;
}
