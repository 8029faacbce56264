/* srv_model.h - finding and loading a model by name or by explicit files. */
#ifndef SRV_MODEL_H
#define SRV_MODEL_H

#include "eng_err.h"
#include "net.h"

#define SRV_DEFAULT_MODEL "yolo-fastest-1.1-xl"

struct srv_model_spec {
    const char *name;       /* looked up as <models_dir>/<name>/<name>.cfg, .weights, *.names */
    const char *models_dir; /* NULL: $VISIOND_MODELS, else ./models */
    const char *cfg, *weights, *names; /* explicit files override the lookup */
    int width, height;      /* > 0: input size override */
};

/* The models folder: `given` (--models-dir) if not NULL, else $VISIOND_MODELS, else "models".
 * Borrowed (given, the environment, or a static string). */
const char *srv_models_dir(const char *given);

/* Loads the model; *out is new (eng_net_free). Warnings about the cfg go to the log (stderr). */
int srv_model_load(const struct srv_model_spec *spec, struct eng_net **out, struct eng_err *err);

#endif
