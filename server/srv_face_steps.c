/* srv_face_steps.c - face pipeline steps shared by the face routes and the CLI (see the header). */
#include "srv_face_steps.h"

#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int srv_face_detect(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                    const struct proto_face_options *o, struct eng_face *faces, int cap,
                    struct proto_face_timing *t, const char *field, struct proto_err *e)
{
    struct eng_face_params p;
    struct eng_err err = {0};
    eng_face_params_default(&p);
    p.score_threshold = o->det_threshold;
    p.input_size = o->input_size;
    const double t0 = now_ms();
    const int found = eng_face_detect(m, ctx, img, &p, faces, cap, &err);
    if (found < 0)
        return proto_err_from_eng(e, &err, field);
    int n = 0;
    for (int i = 0; i < found; i++) {
        const struct eng_face_rect crop = eng_face_box_crop(&faces[i].box, img->width, img->height);
        if (crop.w > 0 && crop.h > 0)
            faces[n++] = faces[i];
    }
    eng_face_sort_largest(faces, n);
    t->detect += now_ms() - t0;
    return n;
}

int srv_face_describe(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                      struct eng_face *faces, int n, float (*emb)[ENG_FACE_DESCRIPTOR],
                      struct proto_face_timing *t, const char *field, struct proto_err *e)
{
    struct eng_err err = {0};
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (eng_face_landmarks(m, ctx, img, &faces[i], &err))
            return proto_err_from_eng(e, &err, field);
        t->landmarks += now_ms() - t0;
        if (!emb)
            continue;
        t0 = now_ms();
        if (eng_face_descriptor(m, ctx, img, &faces[i], emb[i], &err))
            return proto_err_from_eng(e, &err, field);
        t->embedding += now_ms() - t0;
    }
    return 0;
}

int srv_face_find(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                  const struct proto_face_request *p, struct eng_face *faces,
                  float (*emb)[ENG_FACE_DESCRIPTOR], struct proto_face *out, int cap,
                  struct proto_face_timing *t, struct proto_err *e)
{
    int n = srv_face_detect(m, ctx, img, &p->opt, faces, cap, t, "image", e);
    if (n < 0)
        return -1;
    if (p->limit > 0 && n > p->limit)
        n = p->limit;
    if ((p->landmarks || p->embedding) &&
        srv_face_describe(m, ctx, img, faces, n, p->embedding ? emb : NULL, t, "image", e))
        return -1;
    for (int i = 0; i < n; i++)
        out[i] = (struct proto_face){.box = faces[i].box, .det_score = faces[i].score,
                                     .landmarks = p->landmarks ? &faces[i].landmarks[0].x : NULL,
                                     .embedding = p->embedding ? emb[i] : NULL};
    return n;
}

int srv_face_verify_image(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                          const struct eng_image *img, const struct proto_verify_request *p,
                          struct eng_face *faces, int cap, float out[ENG_FACE_DESCRIPTOR],
                          struct proto_verify_face *vf, struct proto_face_timing *t, const char *field,
                          struct proto_err *e)
{
    struct eng_err err = {0};
    *vf = (struct proto_verify_face){0};
    if (p->aligned) {
        const double t0 = now_ms();
        if (eng_face_descriptor_aligned(m, ctx, img, out, &err))
            return proto_err_from_eng(e, &err, field);
        t->embedding += now_ms() - t0;
        return 0;
    }
    int n = srv_face_detect(m, ctx, img, &p->opt, faces, cap, t, field, e);
    if (n < 0)
        return -1;
    int pick = eng_face_select(faces, n, p->face_select == PROTO_FACE_SELECT_BEST
                                             ? ENG_FACE_SELECT_BEST
                                             : ENG_FACE_SELECT_LARGEST);
    int fallback = 0;
    if (pick < 0 && p->min_det_threshold < p->opt.det_threshold) {
        /* the user asserts a face: the best one down to the floor (a side photo, a dim one) */
        struct proto_face_options floor = p->opt;
        floor.det_threshold = p->min_det_threshold;
        if ((n = srv_face_detect(m, ctx, img, &floor, faces, cap, t, field, e)) < 0)
            return -1;
        pick = eng_face_select(faces, n, ENG_FACE_SELECT_BEST);
        fallback = 1;
    }
    if (pick < 0)
        return proto_face_err_no_face(e, field, &p->opt);
    float (*emb)[ENG_FACE_DESCRIPTOR] = (float (*)[ENG_FACE_DESCRIPTOR])out;
    if (srv_face_describe(m, ctx, img, &faces[pick], 1, emb, t, field, e))
        return -1;
    *vf = (struct proto_verify_face){.detected = 1, .box = faces[pick].box,
                                     .det_score = faces[pick].score, .faces_in_image = n,
                                     .fallback = fallback};
    return 0;
}
