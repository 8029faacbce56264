/* srv_face_steps.h - the face pipeline steps that the face routes (srv_faces.c) and the command-line
 * tools (srv_cli_faces.c) share, so that `visiond faces` and `visiond verify` print exactly what
 * POST /v1/faces and POST /v1/verify answer for the same image and parameters.
 *
 * Every step runs the networks on one eng_face_ctx (so on one thread at a time), adds the time it took
 * to a struct proto_face_timing, and reports a failure as a proto error whose field is the image's name
 * in the request ("image", "image1", "image2"). Models and images are borrowed and only read. */
#ifndef SRV_FACE_STEPS_H
#define SRV_FACE_STEPS_H

#include "face.h"
#include "image.h"
#include "proto_errors.h"
#include "proto_face.h"

#define SRV_MAX_FACES 256 /* faces one detection may report */

/* Detects faces in img with o->det_threshold and o->input_size (the models must support that size),
 * drops boxes without a pixel inside the image (eng_face_box_crop: the detector puts some in its zero
 * padding at very low thresholds; they have no face to describe), then orders them largest box first
 * (eng_face_sort_largest). Writes at most cap faces (landmarks not computed) and returns their number
 * (0 = no face), or -1 with *e. t->detect grows. */
int srv_face_detect(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                    const struct proto_face_options *o, struct eng_face *faces, int cap,
                    struct proto_face_timing *t, const char *field, struct proto_err *e);

/* Landmarks (and the aligned chip) of faces[0..n), and when emb is not NULL their descriptors into
 * emb[0..n). Returns 0, or -1 with *e. t->landmarks and t->embedding grow. */
int srv_face_describe(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                      struct eng_face *faces, int n, float (*emb)[ENG_FACE_DESCRIPTOR],
                      struct proto_face_timing *t, const char *field, struct proto_err *e);

/* The faces of one POST /v1/faces answer: detection (srv_face_detect), the first p->limit faces
 * (0 = all), their landmarks when p->landmarks or p->embedding, descriptors when p->embedding; then
 * out[i] describes faces[i], pointing into faces and emb (so those must outlive out). Returns the
 * number of faces in out, or -1 with *e. faces, emb and out hold cap entries. */
int srv_face_find(const struct eng_face_models *m, struct eng_face_ctx *ctx, const struct eng_image *img,
                  const struct proto_face_request *p, struct eng_face *faces,
                  float (*emb)[ENG_FACE_DESCRIPTOR], struct proto_face *out, int cap,
                  struct proto_face_timing *t, struct proto_err *e);

/* The descriptor of one image side of a verification, into out. p->aligned: the whole image is the
 * face chip (vf->detected = 0). Else detection, the face p->face_select picks, its landmarks and its
 * descriptor, described in *vf; no face is NO_FACE naming `field`. faces: room for cap faces (scratch).
 * Returns 0, or -1 with *e. */
int srv_face_verify_image(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                          const struct eng_image *img, const struct proto_verify_request *p,
                          struct eng_face *faces, int cap, float out[ENG_FACE_DESCRIPTOR],
                          struct proto_verify_face *vf, struct proto_face_timing *t, const char *field,
                          struct proto_err *e);

#endif
