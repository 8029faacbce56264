/* face.h - face detection, 68-point landmarks and 128-d descriptors with face-api's models.
 *
 * The models are those of the npm package @vladmandic/face-api 1.7.15 (folder model/), read from
 * their TF.js manifests (tfjs.h) and run as engine layer arrays:
 *   tiny_face_detector_model      Tiny-YOLOv2 with depthwise-separable convolutions, 5 anchors, 1 class;
 *   face_landmark_68_model        four dense blocks of separable convolutions + a dense layer, 112x112;
 *   face_recognition_model        dlib's ResNet-29 (convolutions with a per-channel scale), 150x150 -> 128 values.
 * Every step reproduces face-api's own (src/ of the package), including its quirks, so results can be
 * compared with it number for number:
 *   detection  - the image padded with zeros at the bottom or right to a square, resized with TF.js's
 *                resizeBilinear (no half-pixel centres) to input_size, minus the mean RGB
 *                (117.001, 114.697, 97.404), / 255; box = sigmoid offsets in the cell and anchor *
 *                exp(size), score = sigmoid(objectness) > score_threshold; NMS (eng_nms) at IoU 0.4;
 *                boxes in image pixels, not clipped to the image (face-api does not clip them either).
 *   landmarks  - the box clipped to the image and floored, that crop padded to a square (centred),
 *                resized to 112, minus (122.782, 117.001, 104.298), / 255; the 136 outputs mapped back
 *                to the crop and shifted by the box's (unclipped) top-left corner.
 *   descriptor - the chip: face-api's "dlib alignment" of the landmarks (a square whose side is the mean
 *                eye-to-mouth distance / 0.45, placed from the centre of eyes and mouth), an axis-aligned
 *                crop, not a rotation; padded to a square, resized to 150, minus the landmark net's mean,
 *                / 255; 128 values.
 *
 * Ownership and threads: eng_face_models is immutable once loaded and shared by any number of threads.
 * An eng_face_ctx holds every activation and scratch buffer, sized when it is created, and belongs to
 * one thread at a time; the detect/landmarks/descriptor calls never allocate. */
#ifndef ENG_FACE_H
#define ENG_FACE_H

#include <stddef.h>

#include "detect.h"
#include "eng_err.h"
#include "image.h"

#define ENG_FACE_LANDMARKS 68
#define ENG_FACE_DESCRIPTOR 128
#define ENG_FACE_CHIP 150           /* the recognition net's input side */
#define ENG_FACE_LANDMARK_INPUT 112 /* the landmark net's input side */
#define ENG_FACE_INPUT_DEFAULT 416  /* face-api's default detector input size */
#define ENG_FACE_INPUT_MAX_DEFAULT 416
#define ENG_FACE_INPUT_LIMIT 1024
#define ENG_FACE_MATCH_THRESHOLD 0.6 /* Euclidean distance below which face-api/dlib call a match */

/* The model files looked for in the folder given to eng_face_models_load. */
#define ENG_FACE_DETECTOR_MANIFEST "tiny_face_detector_model-weights_manifest.json"
#define ENG_FACE_LANDMARK_MANIFEST "face_landmark_68_model-weights_manifest.json"
#define ENG_FACE_RECOGNITION_MANIFEST "face_recognition_model-weights_manifest.json"

struct eng_face_models;
struct eng_face_ctx;

struct eng_face_load_opts {
    int max_input_size; /* largest detector input size contexts support: a multiple of 32 in
                         * 32..ENG_FACE_INPUT_LIMIT; 0 = ENG_FACE_INPUT_MAX_DEFAULT (416). A
                         * context's memory grows with its square: 71 MB at 416, 132 MB at 608,
                         * 342 MB at 1024 (measured). */
};

/* Loads the three models from folder `dir` (the ENG_FACE_*_MANIFEST files and their shards) into a
 * new *out (caller frees with eng_face_models_free). opts may be NULL. Every problem is an error
 * naming its place: a tensor that is missing or has the wrong shape (where = tensor name), a corrupt
 * manifest or truncated shard (see tfjs.h). */
int eng_face_models_load(const char *dir, const struct eng_face_load_opts *opts,
                         struct eng_face_models **out, struct eng_err *err);
void eng_face_models_free(struct eng_face_models *m); /* NULL is a no-op */

/* The largest detector input size the models were loaded for. */
int eng_face_models_max_input(const struct eng_face_models *m);
/* Multiply-adds x 2 of one detector pass at input_size (0 if the size is not supported), one
 * landmark pass, one descriptor pass. */
double eng_face_models_flops(const struct eng_face_models *m, int input_size, double *landmark_flops,
                             double *descriptor_flops);

/* A new context for m (caller frees with eng_face_ctx_free; free it before m), or NULL with err. */
struct eng_face_ctx *eng_face_ctx_new(const struct eng_face_models *m, struct eng_err *err);
void eng_face_ctx_free(struct eng_face_ctx *ctx); /* NULL is a no-op */

/* The three networks of a face context run one after the other and share one activation arena (each
 * reads its outputs before the next runs): this many floats, the largest of the three (0 if out of
 * memory). eng_face_ctx_new allocates it; eng_face_ctx_new_shared borrows the caller's (at least this
 * long; see eng_ctx_new_shared for the rules of sharing, e.g. with a worker's darknet contexts). */
size_t eng_face_ctx_arena_floats(const struct eng_face_models *m);
struct eng_face_ctx *eng_face_ctx_new_shared(const struct eng_face_models *m, float *arena, size_t floats,
                                             struct eng_err *err);

struct eng_team;
/* Splits the face networks' layers across team (borrowed, may be NULL), as eng_ctx_set_team. */
int eng_face_ctx_set_team(struct eng_face_ctx *ctx, struct eng_team *team, struct eng_err *err);

/* The networks behind a face context, for per-layer profiles (`visiond bench --faces --profile`): the
 * net and its context (borrowed from m and ctx) that `which` runs on; for the detector, at the input
 * size it ran last. Set the context's `profile` to collect layer times. */
enum eng_face_net { ENG_FACE_NET_DETECTOR, ENG_FACE_NET_LANDMARKS, ENG_FACE_NET_DESCRIPTOR };
struct eng_net;
struct eng_ctx;
void eng_face_ctx_net(const struct eng_face_models *m, struct eng_face_ctx *ctx, enum eng_face_net which,
                      const struct eng_net **net, struct eng_ctx **net_ctx);

struct eng_face_params {
    float score_threshold; /* keep boxes with score > this; 0.5 (face-api's default); 0 keeps all */
    int input_size;        /* detector input side, a multiple of 32 up to the models' maximum; 416 */
    float iou;             /* NMS: drop a box whose IoU with a better one is above this; 0.4 */
};

void eng_face_params_default(struct eng_face_params *p);

struct eng_face_point {
    float x, y;
};

/* An integer pixel rectangle: x, y its top-left corner, w x h pixels. */
struct eng_face_rect {
    int x, y, w, h;
};

struct eng_face {
    struct eng_box box; /* detector box in image pixels, as face-api reports it (may reach past the
                         * image's borders) */
    float score;        /* detection score: sigmoid of the objectness */
    int has_landmarks;  /* the two fields below are set (by eng_face_landmarks) */
    struct eng_face_point landmarks[ENG_FACE_LANDMARKS]; /* image pixels, dlib's 68-point order */
    struct eng_face_rect chip; /* the aligned face region the descriptor is computed from, clipped to
                                * the image */
};

/* Detects faces in img. Writes at most cap faces (best score first; landmarks not computed) and
 * returns their number (0 is no face), or -1 with err for bad params. */
int eng_face_detect(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                    const struct eng_image *img, const struct eng_face_params *params,
                    struct eng_face *out, int cap, struct eng_err *err);

/* The pixels face-api cuts out of img (img_w x img_h) for a detection box, the landmark net's input:
 * the box clipped to the image, then floored (Box.clipAtImageBorders). w or h is <= 0 when the box has
 * no pixel inside the image, or is empty or NaN: at very low score thresholds the detector can place
 * boxes in the zero padding below or right of the image. Pure. */
struct eng_face_rect eng_face_box_crop(const struct eng_box *box, int img_w, int img_h);

/* Computes face->landmarks and face->chip from face->box (as eng_face_detect set it, or any box in
 * img's pixels). Returns 0, or -1 with err if the box has no pixel inside the image or the chip the
 * landmarks give is empty. */
int eng_face_landmarks(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                       const struct eng_image *img, struct eng_face *face, struct eng_err *err);

/* The 128-d descriptor of a face whose landmarks are computed: the recognition net on face->chip.
 * Returns 0, or -1 with err if face->has_landmarks is 0. */
int eng_face_descriptor(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                        const struct eng_image *img, const struct eng_face *face,
                        float out[ENG_FACE_DESCRIPTOR], struct eng_err *err);

/* The descriptor of an image that already is an aligned face chip (dlib's 150x150 chips, or what
 * face-api's computeFaceDescriptor receives): padded to a square and resized to 150 if needed. */
int eng_face_descriptor_aligned(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                                const struct eng_image *img, float out[ENG_FACE_DESCRIPTOR],
                                struct eng_err *err);

/* face-api's dlib alignment (FaceLandmarks.alignDlib): the square chip for landmarks `pts` found in a
 * crop of crop_w x crop_h pixels; same coordinates as pts, not clipped. Pure. */
struct eng_face_rect eng_face_align_dlib(const struct eng_face_point pts[ENG_FACE_LANDMARKS],
                                         int crop_w, int crop_h);

/* Orders faces[0..n) by box area (as detected, unclipped), largest first; equal areas keep their
 * order. In place, no allocation. Pure. */
void eng_face_sort_largest(struct eng_face *faces, int n);

enum eng_face_select {
    ENG_FACE_SELECT_LARGEST = 0, /* the largest box area */
    ENG_FACE_SELECT_BEST,        /* the highest detection score */
};

/* Which of faces[0..n) to use when an image must give one face: its index (the first one on ties),
 * or -1 when n is 0. Pure. */
int eng_face_select(const struct eng_face *faces, int n, enum eng_face_select how);

/* The Siamese distance ||a - b||^2 and the Euclidean ||a - b|| of two descriptors (computed in
 * double, as face-api's euclideanDistance). Pure. */
double eng_face_distance_sq(const float a[ENG_FACE_DESCRIPTOR], const float b[ENG_FACE_DESCRIPTOR]);
double eng_face_distance(const float a[ENG_FACE_DESCRIPTOR], const float b[ENG_FACE_DESCRIPTOR]);

/* The confidence score of a Euclidean descriptor distance, the one scale every route that reports a
 * "confidence" or "similarity" for a face pair uses (DeepStack's face/match and face/recognize):
 * f(d) = 0.67^(d / 0.6), decreasing, f(0) = 1 and f(ENG_FACE_MATCH_THRESHOLD) = 0.67, so DeepStack's
 * default recognition threshold (0.67) means the dlib/face-api match distance (0.6); f(1.2) = 0.449.
 * eng_face_confidence_distance is its inverse: the distance whose confidence is c (c in (0, 1]).
 * Pure. docs/FACES.md has the table. */
#define ENG_FACE_MATCH_CONFIDENCE 0.67
double eng_face_confidence(double distance);
double eng_face_confidence_distance(double confidence);

#endif
