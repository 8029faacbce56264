/* proto_gallery.h - the wire format of the face gallery's routes (docs: proto/openapi.yaml):
 * the JSON bodies clients send (a subject name, embeddings to enrol or identify, identify's options)
 * and every answer (subjects, faces, identification, the gallery's state, DeepStack's face
 * recognition shapes). Pure functions, thread-safe; parsers report JSON paths ("$.embeddings[2][5]").
 * Encoders return a new string (caller frees), NULL only when out of memory. */
#ifndef PROTO_GALLERY_H
#define PROTO_GALLERY_H

#include <stddef.h>

#include "proto_errors.h"

#define PROTO_GAL_DIM 128
#define PROTO_GAL_MAX_EMBEDDINGS 256 /* per request */
#define PROTO_GAL_TOP_K_MAX 64
#define PROTO_GAL_TOP_K_DEFAULT 3
#define PROTO_GAL_PAGE_MAX 1000
#define PROTO_GAL_PAGE_DEFAULT 100
#define PROTO_GAL_NAME_BYTES 130 /* a name (at most 128 bytes, checked by the gallery) and its NUL, +1 */

/* {"name": "..."} (POST /v1/subjects, PATCH /v1/subjects/{name}). *name is new (caller frees). Only
 * the JSON shape is checked here; the name's rules are the gallery's (gal_name_check). */
int proto_gallery_name_body(const unsigned char *body, size_t len, char **name, struct proto_err *e);

/* Embeddings sent as JSON: {"embeddings": [[128 numbers], ...], "model_fingerprint": "<64 hex>"}, and
 * for identify also {"embedding": [128 numbers]} and the options below. */
#define PROTO_GAL_MAX_PHOTOS 32   /* photos per request */
#define PROTO_GAL_MAX_OPTIONS 16
struct proto_gallery_embeddings {
    size_t n;
    float (*emb)[PROTO_GAL_DIM]; /* new: proto_gallery_embeddings_release frees */
    char fingerprint[65];        /* "" when not given */
    /* or photos sent as base64 ("images_b64" to enrol, "image_b64" to identify), decoded (owned), and
     * the body's other scalar members as text, for the route's own parameter rules ("aligned":"true") */
    size_t n_images;
    unsigned char *image[PROTO_GAL_MAX_PHOTOS];
    size_t image_len[PROTO_GAL_MAX_PHOTOS];
    size_t n_options;
    char option_key[PROTO_GAL_MAX_OPTIONS][32];
    char option_value[PROTO_GAL_MAX_OPTIONS][64];
};
void proto_gallery_embeddings_release(struct proto_gallery_embeddings *e);

/* identify's options: query parameters, form fields or JSON members. */
struct proto_identify_opts {
    int top_k;              /* 1..PROTO_GAL_TOP_K_MAX, default 3 */
    double match_threshold; /* Euclidean distance; a subject matches below it; default 0.6 */
};
void proto_identify_opts_init(struct proto_identify_opts *o);
/* Sets top_k or match_threshold from text; returns 1 if key is not one of them (the caller's
 * other parameters), 0 when set, -1 with *e when the value is bad. */
int proto_identify_opt_text(struct proto_identify_opts *o, const char *key, const char *value,
                            struct proto_err *e);

/* POST /v1/subjects/{name}/faces with a JSON body: "embeddings" (1..PROTO_GAL_MAX_EMBEDDINGS) with
 * "model_fingerprint", or "images_b64" (1..PROTO_GAL_MAX_PHOTOS base64 strings or data: URIs) with
 * options as other members. */
int proto_gallery_enroll_body(const unsigned char *body, size_t len, struct proto_gallery_embeddings *out,
                              struct proto_err *e);
/* POST /v1/identify with a JSON body: "embedding" or "embeddings" (optional "model_fingerprint"), or
 * "image_b64" with options as other members; "top_k", "match_threshold". */
int proto_identify_body(const unsigned char *body, size_t len, struct proto_gallery_embeddings *out,
                        struct proto_identify_opts *o, struct proto_err *e);

/* The paging cursor of GET /v1/subjects: the last name of a page, hex-encoded (opaque to clients).
 * encode: out gets 2 * strlen(name) + 1 bytes at most size. decode: 0, or -1 with INVALID_PARAM. */
void proto_cursor_encode(const char *name, char *out, size_t size);
int proto_cursor_decode(const char *cursor, char *out, size_t size, struct proto_err *e);

/* ---- answers ---- */

struct proto_gal_subject {
    const char *name;
    long long face_count;
    long long created_ms;
};

struct proto_gal_face {
    long long id;
    const char *fingerprint;
    double det_score;
    double box[4]; /* x_min, y_min, x_max, y_max; all 0: enrolled as an embedding (box null) */
    long long created_ms;
    int fallback; /* enrolment answers: no face at det_threshold, the best one down to min_det_threshold */
};

/* {"name","face_count","created_at"} */
char *proto_subject_json(const struct proto_gal_subject *s);
/* {"subjects": [...], "next_cursor": "..." | null} */
char *proto_subjects_json(const struct proto_gal_subject *v, size_t n, const char *next_cursor);
/* {"subject": name, "faces": [{"face_id","model_fingerprint","det_score","box","created_at"}]}, and
 * "fallback": true on a face whose fallback is set (not stored: only enrolment answers say it) */
char *proto_gal_faces_json(const char *subject, const struct proto_gal_face *v, size_t n);
/* {"deleted": {"subject": name, "faces": n}} and {"deleted": {"face_id": id, "subject": name}} */
char *proto_subject_deleted_json(const char *name, long long faces);
char *proto_face_deleted_json(long long id, const char *subject);

struct proto_identify_candidate {
    const char *subject;
    long long face_id;
    double distance;
};

struct proto_identify_face {
    int detected;  /* 0: an embedding was sent (no box) */
    double box[4]; /* in the photo's pixels */
    double det_score;
    const struct proto_identify_candidate *cand; /* ascending distance */
    size_t n_cand;
};

/* {"request_id", "match_threshold", "faces": [{"box","det_score","match": {...} | null,
 * "candidates": [{"subject","face_id","distance","confidence"}]}], "timing_ms": {"total"}}.
 * match is the first candidate when its distance < threshold, else null (unknown). */
char *proto_identify_json(const char *request_id, const struct proto_identify_face *v, size_t n,
                          double threshold, double total_ms);

struct proto_gallery_info {
    const char *backend;     /* "sqlite" or "postgres" */
    const char *fingerprint; /* the recognition model's */
    long long subjects, faces;
    long long index_faces, index_subjects, index_bytes, index_seq;
    int connected; /* the store answers */
};
/* {"backend","connected","model_fingerprint","subjects","faces","index": {"kind":"exact", "faces",
 * "subjects","memory_bytes","change_seq"}} */
char *proto_gallery_info_json(const struct proto_gallery_info *g);

/* DeepStack's face recognition (/v1/vision/face/register, recognize, list, delete). */
char *proto_ds_register_json(void); /* {"success":true,"message":"face added"} */
struct proto_ds_recognized {
    const char *userid; /* a name or "unknown" */
    double confidence;
    int x_min, y_min, x_max, y_max;
};
char *proto_ds_recognize_json(const struct proto_ds_recognized *v, size_t n, double duration_ms);
char *proto_ds_list_json(const char *const *names, size_t n); /* {"success":true,"faces":[...]} */
char *proto_ds_success_json(void);                             /* {"success":true} */

/* ---- `visiond gallery export|import`: JSON Lines ---- */
/* Line 1: {"visiond_gallery":1,"model_fingerprint":"<hex>"}; then one line per face:
 * {"subject":name,"embedding":[128 numbers, 9 significant digits: the float read back exactly],
 *  "det_score":s,"box":[x_min,y_min,x_max,y_max],"created_ms":t}; last: {"end":true,"faces":n}, so a
 * truncated file (cut at any byte, a line boundary included) is refused. */
struct proto_gal_import_face {
    char name[PROTO_GAL_NAME_BYTES];
    float emb[PROTO_GAL_DIM];
    double det_score;
    double box[4];
    long long created_ms;
};
enum proto_gal_line_kind { PROTO_GAL_LINE_HEADER, PROTO_GAL_LINE_FACE, PROTO_GAL_LINE_END };
char *proto_gallery_export_header(const char *fingerprint);
char *proto_gallery_export_face(const char *name, const float *emb, double det_score, const double box[4],
                                long long created_ms);
char *proto_gallery_export_end(long long faces);
/* One line (without its newline). 0 with *kind and, by kind, fingerprint (65 bytes), *face or *faces
 * filled; -1 with *e (BAD_JSON or INVALID_PARAM naming the JSON path). */
int proto_gallery_import_line(const char *line, size_t len, enum proto_gal_line_kind *kind, char *fingerprint,
                              struct proto_gal_import_face *face, long long *faces, struct proto_err *e);

#endif
