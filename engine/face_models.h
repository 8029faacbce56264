/* face_models.h - what engine/face_load.c (building the networks) and engine/face.c (running them)
 * share about the loaded face models. Private to engine/. */
#ifndef FACE_MODELS_H
#define FACE_MODELS_H

#include <stddef.h>

#include "net.h"

#define DET_ANCHORS 5
#define DET_BOX 5 /* x, y, w, h, score: one class, so no class scores (TinyYolov2Base.boxEncodingSize) */

/* Immutable once loaded; shared read-only by every context. */
struct eng_face_models {
    float *params; /* every converted tensor */
    size_t n_params;
    int max_input;
    int n_det;
    struct eng_net **det; /* det[i] takes input 32 * (i + 1) */
    struct eng_net *lm, *rec;
};

#endif
