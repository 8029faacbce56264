/* proto_gallery.c - JSON bodies and answers of the gallery routes (proto_gallery.h). */
#include "proto_gallery.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "face.h" /* eng_face_confidence, ENG_FACE_MATCH_THRESHOLD */
#include "proto_json.h"
#include "proto_param.h"

#define num proto_json_round

/* ---- parsing ---- */

static json_t *parse_object(const unsigned char *body, size_t len, struct proto_err *e)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        proto_err_set(e, PROTO_ERR_BAD_JSON, "$", "not valid JSON at line %d, column %d: %s", je.line, je.column,
                      je.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        proto_err_set(e, PROTO_ERR_BAD_JSON, "$", "expected a JSON object");
        return NULL;
    }
    return doc;
}

/* INVALID_PARAM for the first member of doc not in allowed (NULL-terminated). */
static int only_members(json_t *doc, const char *const *allowed, struct proto_err *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char q[64], path[80];
            proto_quote(key, q, sizeof q);
            snprintf(path, sizeof path, "$.%.60s", key);
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, path, "unknown member %s", q);
        }
    }
    return 0;
}

int proto_gallery_name_body(const unsigned char *body, size_t len, char **name, struct proto_err *e)
{
    *name = NULL;
    json_t *doc = parse_object(body, len, e);
    if (!doc)
        return -1;
    static const char *const allowed[] = {"name", NULL};
    json_t *n = json_object_get(doc, "name");
    int rc = only_members(doc, allowed, e);
    if (!rc && !json_is_string(n))
        rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.name", "expected the subject's name as a string");
    if (!rc && strlen(json_string_value(n)) != json_string_length(n))
        rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.name", "the name holds a NUL character");
    if (!rc && !(*name = strdup(json_string_value(n))))
        rc = proto_err_nomem(e, "$.name");
    json_decref(doc);
    return rc;
}

void proto_gallery_embeddings_release(struct proto_gallery_embeddings *e)
{
    for (size_t i = 0; i < e->n_images; i++)
        free(e->image[i]);
    free(e->emb);
    memset(e, 0, sizeof *e);
}

static int one_embedding(json_t *a, float *out, const char *path, struct proto_err *e)
{
    if (!json_is_array(a))
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, path, "expected an array of %d numbers", PROTO_GAL_DIM);
    if (json_array_size(a) != PROTO_GAL_DIM)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, path, "expected %d numbers, got %zu", PROTO_GAL_DIM,
                             json_array_size(a));
    for (size_t i = 0; i < PROTO_GAL_DIM; i++) {
        json_t *v = json_array_get(a, i);
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || fabs(d) > 1e6) {
            char p[PROTO_ERR_FIELD_MAX];
            snprintf(p, sizeof p, "%.100s[%zu]", path, i);
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, p, "expected a finite number");
        }
        out[i] = (float)d;
    }
    return 0;
}

/* "embeddings": [[...], ...] or, when single is set, "embedding": [...] into out. */
static int read_embeddings(json_t *doc, int single_ok, struct proto_gallery_embeddings *out, struct proto_err *e)
{
    json_t *one = single_ok ? json_object_get(doc, "embedding") : NULL;
    json_t *many = json_object_get(doc, "embeddings");
    if (one && many)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.embedding", "send \"embedding\" or \"embeddings\", not both");
    if (!one && !many)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, single_ok ? "$.embedding" : "$.embeddings",
                             "expected %s: arrays of %d numbers", single_ok ? "\"embedding\" or \"embeddings\"" : "\"embeddings\"",
                             PROTO_GAL_DIM);
    size_t n = one ? 1 : json_is_array(many) ? json_array_size(many) : 0;
    if (many && (!json_is_array(many) || n == 0 || n > PROTO_GAL_MAX_EMBEDDINGS))
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.embeddings", "expected 1 to %d arrays of %d numbers",
                             PROTO_GAL_MAX_EMBEDDINGS, PROTO_GAL_DIM);
    out->emb = malloc(n * sizeof *out->emb);
    if (!out->emb)
        return proto_err_nomem(e, "$.embeddings");
    out->n = n;
    if (one)
        return one_embedding(one, out->emb[0], "$.embedding", e);
    for (size_t i = 0; i < n; i++) {
        char p[48];
        snprintf(p, sizeof p, "$.embeddings[%zu]", i);
        if (one_embedding(json_array_get(many, i), out->emb[i], p, e))
            return -1;
    }
    return 0;
}

static int read_fingerprint(json_t *doc, int required, struct proto_gallery_embeddings *out, struct proto_err *e)
{
    json_t *fp = json_object_get(doc, "model_fingerprint");
    if (!fp && !required)
        return 0;
    const char *s = json_string_value(fp);
    size_t n = s ? strlen(s) : 0;
    int hex = n == 64;
    for (size_t i = 0; hex && i < n; i++)
        hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!hex)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.model_fingerprint",
                             "expected the recognition model's fingerprint (64 lower-case hex digits, GET /v1/gallery)");
    memcpy(out->fingerprint, s, 65);
    return 0;
}

/* Photos as base64 (key "images_b64": an array, or "image_b64": one string) and every other scalar
 * member but `skip` as an option in text form. */
static int read_photos(json_t *doc, const char *key, const char *const *skip, struct proto_gallery_embeddings *out,
                       struct proto_err *e)
{
    json_t *v = json_object_get(doc, key);
    int many = strcmp(key, "images_b64") == 0;
    size_t n = many ? (json_is_array(v) ? json_array_size(v) : 0) : 1;
    char field[48];
    if (many && (n == 0 || n > PROTO_GAL_MAX_PHOTOS))
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.images_b64", "expected 1 to %d base64 photos",
                             PROTO_GAL_MAX_PHOTOS);
    if (!many && !json_is_string(v))
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.image_b64", "expected a base64 photo");
    for (size_t i = 0; i < n; i++) {
        const struct proto_val pv = {.json = many ? json_array_get(v, i) : v};
        if (many)
            snprintf(field, sizeof field, "$.images_b64[%zu]", i);
        else
            snprintf(field, sizeof field, "$.image_b64");
        uint8_t *img = NULL;
        size_t len = 0;
        if (proto_val_image_b64(field, &pv, &img, &len, e))
            return -1;
        out->image[out->n_images] = img;
        out->image_len[out->n_images++] = len;
    }
    const char *k;
    json_t *m;
    json_object_foreach(doc, k, m)
    {
        int skipped = strcmp(k, key) == 0;
        for (const char *const *s = skip; *s && !skipped; s++)
            skipped = strcmp(*s, k) == 0;
        if (skipped || json_is_null(m))
            continue;
        snprintf(field, sizeof field, "$.%.40s", k);
        if (out->n_options == PROTO_GAL_MAX_OPTIONS || strlen(k) >= sizeof out->option_key[0])
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, field, "unknown parameter");
        char *val = out->option_value[out->n_options];
        size_t vs = sizeof out->option_value[0];
        if (json_is_string(m) && json_string_length(m) < vs)
            snprintf(val, vs, "%s", json_string_value(m));
        else if (json_is_boolean(m))
            snprintf(val, vs, "%s", json_is_true(m) ? "true" : "false");
        else if (json_is_integer(m))
            snprintf(val, vs, "%lld", (long long)json_integer_value(m));
        else if (json_is_real(m))
            snprintf(val, vs, "%.17g", json_real_value(m));
        else
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, field, "expected a number, a boolean or a short string");
        snprintf(out->option_key[out->n_options++], sizeof out->option_key[0], "%s", k);
    }
    return 0;
}

int proto_gallery_enroll_body(const unsigned char *body, size_t len, struct proto_gallery_embeddings *out,
                              struct proto_err *e)
{
    memset(out, 0, sizeof *out);
    json_t *doc = parse_object(body, len, e);
    if (!doc)
        return -1;
    static const char *const allowed[] = {"embeddings", "model_fingerprint", NULL};
    int rc;
    if (json_object_get(doc, "images_b64"))
        rc = read_photos(doc, "images_b64", allowed + 2, out, e);
    else
        rc = only_members(doc, allowed, e) || read_embeddings(doc, 0, out, e) || read_fingerprint(doc, 1, out, e)
                 ? -1
                 : 0;
    json_decref(doc);
    if (rc)
        proto_gallery_embeddings_release(out);
    return rc;
}

void proto_identify_opts_init(struct proto_identify_opts *o)
{
    o->top_k = PROTO_GAL_TOP_K_DEFAULT;
    o->match_threshold = ENG_FACE_MATCH_THRESHOLD;
}

static int set_opt(struct proto_identify_opts *o, const char *key, const struct proto_val *v, const char *field,
                   struct proto_err *e)
{
    if (strcmp(key, "top_k") == 0)
        return proto_val_set_int(&o->top_k, 1, PROTO_GAL_TOP_K_MAX, field, v, e);
    if (strcmp(key, "match_threshold") == 0) {
        double d;
        if (proto_val_number(v, &d) || !(d > 0) || d > 4)
            return proto_val_bad(e, field, "a distance above 0 and at most 4", v);
        o->match_threshold = d;
        return 0;
    }
    return 1;
}

int proto_identify_opt_text(struct proto_identify_opts *o, const char *key, const char *value, struct proto_err *e)
{
    const struct proto_val v = {.str = value};
    return set_opt(o, key, &v, key, e);
}

int proto_identify_body(const unsigned char *body, size_t len, struct proto_gallery_embeddings *out,
                        struct proto_identify_opts *o, struct proto_err *e)
{
    memset(out, 0, sizeof *out);
    json_t *doc = parse_object(body, len, e);
    if (!doc)
        return -1;
    static const char *const allowed[] = {"embedding", "embeddings", "model_fingerprint", "top_k", "match_threshold",
                                          NULL};
    static const char *const options[] = {"top_k", "match_threshold", NULL};
    int rc = json_object_get(doc, "image_b64")
                 ? read_photos(doc, "image_b64", options, out, e) != 0
                 : only_members(doc, allowed, e) || read_embeddings(doc, 1, out, e) || read_fingerprint(doc, 0, out, e);
    const char *keys[] = {"top_k", "match_threshold"};
    for (int i = 0; !rc && i < 2; i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (v && !json_is_null(v)) {
            const struct proto_val pv = {.json = v};
            char field[32];
            snprintf(field, sizeof field, "$.%s", keys[i]);
            rc = set_opt(o, keys[i], &pv, field, e) != 0;
        }
    }
    json_decref(doc);
    if (rc)
        proto_gallery_embeddings_release(out);
    return rc ? -1 : 0;
}

void proto_cursor_encode(const char *name, char *out, size_t size)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && j + 3 <= size; p++, j += 2)
        snprintf(out + j, 3, "%02x", *p);
    if (size)
        out[j < size ? j : size - 1] = '\0';
}

int proto_cursor_decode(const char *cursor, char *out, size_t size, struct proto_err *e)
{
    size_t n = strlen(cursor);
    if (n % 2 || n / 2 + 1 > size)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "cursor", "not a cursor this server gave out");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(cursor + 2 * i, "%2x", &v) != 1 || v == 0)
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "cursor", "not a cursor this server gave out");
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return 0;
}

/* ---- answers ---- */

/* RFC 3339 UTC with milliseconds. */
static json_t *time_json(long long ms)
{
    char buf[40];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        return json_null();
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03lldZ", ms % 1000);
    return json_string(buf);
}

static json_t *subject_obj(const struct proto_gal_subject *s)
{
    return json_pack("{s:o,s:I,s:o}", "name", proto_json_str(s->name), "face_count", (json_int_t)s->face_count,
                     "created_at", time_json(s->created_ms));
}

char *proto_subject_json(const struct proto_gal_subject *s) { return proto_json_dump(subject_obj(s)); }

char *proto_subjects_json(const struct proto_gal_subject *v, size_t n, const char *next_cursor)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, subject_obj(&v[i])))
            json_decref(a), a = NULL;
    return proto_json_dump(json_pack("{s:o,s:o}", "subjects", a, "next_cursor",
                                     next_cursor ? proto_json_str(next_cursor) : json_null()));
}

static json_t *box_obj(const double b[4])
{
    if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
        return json_null();
    return json_pack("{s:o,s:o,s:o,s:o}", "x_min", num(b[0], 0.01), "y_min", num(b[1], 0.01), "x_max",
                     num(b[2], 0.01), "y_max", num(b[3], 0.01));
}

char *proto_gal_faces_json(const char *subject, const struct proto_gal_face *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *f = json_pack("{s:I,s:o,s:o,s:o,s:o}", "face_id", (json_int_t)v[i].id, "model_fingerprint",
                              proto_json_str(v[i].fingerprint), "det_score", num(v[i].det_score, 1e-4), "box",
                              box_obj(v[i].box), "created_at", time_json(v[i].created_ms));
        if (f && v[i].fallback && json_object_set_new(f, "fallback", json_true()))
            json_decref(f), f = NULL;
        if (json_array_append_new(a, f))
            json_decref(a), a = NULL;
    }
    return proto_json_dump(json_pack("{s:o,s:o}", "subject", proto_json_str(subject), "faces", a));
}

char *proto_subject_deleted_json(const char *name, long long faces)
{
    return proto_json_dump(
        json_pack("{s:{s:o,s:I}}", "deleted", "subject", proto_json_str(name), "faces", (json_int_t)faces));
}

char *proto_face_deleted_json(long long id, const char *subject)
{
    return proto_json_dump(
        json_pack("{s:{s:I,s:o}}", "deleted", "face_id", (json_int_t)id, "subject", proto_json_str(subject)));
}

static json_t *candidate_obj(const struct proto_identify_candidate *c)
{
    return json_pack("{s:o,s:I,s:o,s:o}", "subject", proto_json_str(c->subject), "face_id", (json_int_t)c->face_id,
                     "distance", num(c->distance, 1e-6), "confidence", num(eng_face_confidence(c->distance), 1e-4));
}

char *proto_identify_json(const char *request_id, const struct proto_identify_face *v, size_t n, double threshold,
                          double total_ms)
{
    json_t *faces = json_array();
    for (size_t i = 0; faces && i < n; i++) {
        json_t *cands = json_array();
        for (size_t k = 0; cands && k < v[i].n_cand; k++)
            if (json_array_append_new(cands, candidate_obj(&v[i].cand[k])))
                json_decref(cands), cands = NULL;
        int match = v[i].n_cand > 0 && v[i].cand[0].distance < threshold;
        json_t *f = json_pack("{s:o,s:o,s:o,s:o}", "box", v[i].detected ? box_obj(v[i].box) : json_null(),
                              "det_score", v[i].detected ? num(v[i].det_score, 1e-4) : json_null(), "match",
                              match ? candidate_obj(&v[i].cand[0]) : json_null(), "candidates", cands);
        if (json_array_append_new(faces, f))
            json_decref(faces), faces = NULL;
    }
    return proto_json_dump(json_pack("{s:o*,s:o,s:o,s:{s:o}}", "request_id",
                                     request_id ? proto_json_str(request_id) : NULL, "match_threshold",
                                     num(threshold, 1e-6), "faces", faces, "timing_ms", "total", num(total_ms, 0.01)));
}

char *proto_gallery_info_json(const struct proto_gallery_info *g)
{
    return proto_json_dump(json_pack(
        "{s:s,s:b,s:o,s:I,s:I,s:{s:s,s:s,s:I,s:I,s:I,s:I}}", "backend", g->backend, "connected", g->connected,
        "model_fingerprint", proto_json_str(g->fingerprint), "subjects", (json_int_t)g->subjects, "faces",
        (json_int_t)g->faces, "index", "kind", "exact", "score", "nearest_face", "faces", (json_int_t)g->index_faces,
        "subjects", (json_int_t)g->index_subjects, "memory_bytes", (json_int_t)g->index_bytes, "change_seq",
        (json_int_t)g->index_seq));
}

char *proto_ds_register_json(void)
{
    return proto_json_dump(json_pack("{s:b,s:s}", "success", 1, "message", "face added"));
}

char *proto_ds_recognize_json(const struct proto_ds_recognized *v, size_t n, double duration_ms)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *p = json_pack("{s:o,s:o,s:i,s:i,s:i,s:i}", "userid", proto_json_str(v[i].userid), "confidence",
                              num(v[i].confidence, 1e-4), "x_min", v[i].x_min, "y_min", v[i].y_min, "x_max",
                              v[i].x_max, "y_max", v[i].y_max);
        if (json_array_append_new(a, p))
            json_decref(a), a = NULL;
    }
    return proto_json_dump(
        json_pack("{s:b,s:o,s:o}", "success", 1, "predictions", a, "duration", num(duration_ms, 0.01)));
}

char *proto_ds_list_json(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, proto_json_str(names[i])))
            json_decref(a), a = NULL;
    return proto_json_dump(json_pack("{s:b,s:o}", "success", 1, "faces", a));
}

char *proto_ds_success_json(void) { return proto_json_dump(json_pack("{s:b}", "success", 1)); }

/* ---- export / import lines ---- */

static char *dump_full(json_t *doc)
{
    char *s = doc ? json_dumps(doc, PROTO_JSON_FLAGS_FULL) : NULL;
    json_decref(doc);
    return s;
}

char *proto_gallery_export_header(const char *fingerprint)
{
    return dump_full(json_pack("{s:i,s:o}", "visiond_gallery", 1, "model_fingerprint", proto_json_str(fingerprint)));
}

char *proto_gallery_export_face(const char *name, const float *emb, double det_score, const double box[4],
                                long long created_ms)
{
    json_t *a = json_array();
    for (int i = 0; a && i < PROTO_GAL_DIM; i++)
        if (json_array_append_new(a, json_real(emb[i])))
            json_decref(a), a = NULL;
    return dump_full(json_pack("{s:o,s:o,s:f,s:[f,f,f,f],s:I}", "subject", proto_json_str(name), "embedding", a,
                               "det_score", det_score, "box", box[0], box[1], box[2], box[3], "created_ms",
                               (json_int_t)created_ms));
}

char *proto_gallery_export_end(long long faces)
{
    return dump_full(json_pack("{s:b,s:I}", "end", 1, "faces", (json_int_t)faces));
}

static int finite_number(json_t *v, double *out)
{
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

int proto_gallery_import_line(const char *line, size_t len, enum proto_gal_line_kind *kind, char *fingerprint,
                              struct proto_gal_import_face *face, long long *faces, struct proto_err *e)
{
    json_t *doc = parse_object((const unsigned char *)line, len, e);
    if (!doc)
        return -1;
    int rc = 0;
    if (json_object_get(doc, "visiond_gallery")) {
        static const char *const allowed[] = {"visiond_gallery", "model_fingerprint", NULL};
        struct proto_gallery_embeddings tmp = {0};
        *kind = PROTO_GAL_LINE_HEADER;
        if (only_members(doc, allowed, e))
            rc = -1;
        else if (json_integer_value(json_object_get(doc, "visiond_gallery")) != 1)
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.visiond_gallery", "expected format 1");
        else if (read_fingerprint(doc, 1, &tmp, e))
            rc = -1;
        else
            memcpy(fingerprint, tmp.fingerprint, 65);
    } else if (json_object_get(doc, "end")) {
        static const char *const allowed[] = {"end", "faces", NULL};
        json_t *n = json_object_get(doc, "faces");
        *kind = PROTO_GAL_LINE_END;
        if (only_members(doc, allowed, e))
            rc = -1;
        else if (!json_is_true(json_object_get(doc, "end")) || !json_is_integer(n) || json_integer_value(n) < 0)
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.faces", "expected the number of faces");
        else
            *faces = (long long)json_integer_value(n);
    } else {
        static const char *const allowed[] = {"subject", "embedding", "det_score", "box", "created_ms", NULL};
        json_t *name = json_object_get(doc, "subject"), *box = json_object_get(doc, "box");
        json_t *t = json_object_get(doc, "created_ms");
        *kind = PROTO_GAL_LINE_FACE;
        memset(face, 0, sizeof *face);
        if (only_members(doc, allowed, e))
            rc = -1;
        else if (!json_is_string(name) || json_string_length(name) >= sizeof face->name ||
                 strlen(json_string_value(name)) != json_string_length(name))
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.subject", "expected the subject's name");
        else if (one_embedding(json_object_get(doc, "embedding"), face->emb, "$.embedding", e))
            rc = -1;
        else if (finite_number(json_object_get(doc, "det_score"), &face->det_score))
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.det_score", "expected a number");
        else if (!json_is_array(box) || json_array_size(box) != 4)
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.box", "expected 4 numbers");
        else if (!json_is_integer(t) || json_integer_value(t) < 0)
            rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.created_ms", "expected a time in ms");
        for (int i = 0; rc == 0 && i < 4; i++)
            if (finite_number(json_array_get(box, (size_t)i), &face->box[i]))
                rc = proto_err_set(e, PROTO_ERR_INVALID_PARAM, "$.box", "expected 4 numbers");
        if (rc == 0) {
            memcpy(face->name, json_string_value(name), json_string_length(name) + 1);
            face->created_ms = (long long)json_integer_value(t);
        }
    }
    json_decref(doc);
    return rc;
}
