/* activation.c - darknet's activation functions, applied in place. */
#include <math.h>
#include <string.h>

#include "kern.h"

static const struct {
    const char *name;
    enum eng_act act;
} act_names[] = {
    {"linear", ENG_ACT_LINEAR}, {"leaky", ENG_ACT_LEAKY}, {"relu", ENG_ACT_RELU},
    {"logistic", ENG_ACT_LOGISTIC}, {"tanh", ENG_ACT_TANH}, {"mish", ENG_ACT_MISH},
    {"swish", ENG_ACT_SWISH},
};

int eng_act_parse(const char *name, enum eng_act *act)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++) {
        if (strcmp(name, act_names[i].name) == 0) {
            *act = act_names[i].act;
            return 0;
        }
    }
    return -1;
}

const char *eng_act_name(enum eng_act act)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (act_names[i].act == act)
            return act_names[i].name;
    return "?";
}

static inline float logistic(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* darknet's softplus with threshold 20: exact enough and never overflows expf. */
static inline float softplus(float x)
{
    if (x > 20.0f)
        return x;
    if (x < -20.0f)
        return expf(x);
    return log1pf(expf(x));
}

/* The vector kernels (kern_isa.inc) do linear, leaky and relu themselves and call this for the rest. */
void eng_act_ref(float *x, size_t n, enum eng_act act)
{
    switch (act) {
    case ENG_ACT_LINEAR:
        return;
    case ENG_ACT_LEAKY:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.1f * x[i];
        return;
    case ENG_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    case ENG_ACT_LOGISTIC:
        for (size_t i = 0; i < n; i++)
            x[i] = logistic(x[i]);
        return;
    case ENG_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
        return;
    case ENG_ACT_MISH:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * tanhf(softplus(x[i]));
        return;
    case ENG_ACT_SWISH:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * logistic(x[i]);
        return;
    }
}

void eng_activate(float *x, size_t n, enum eng_act act)
{
    eng_kern_best()->act(x, n, act);
}

const char *eng_layer_kind_name(enum eng_layer_kind kind)
{
    static const char *names[] = {
        [ENG_LAYER_CONV] = "convolutional", [ENG_LAYER_MAXPOOL] = "maxpool",
        [ENG_LAYER_AVGPOOL] = "avgpool",     [ENG_LAYER_UPSAMPLE] = "upsample",
        [ENG_LAYER_ROUTE] = "route",         [ENG_LAYER_SHORTCUT] = "shortcut",
        [ENG_LAYER_DROPOUT] = "dropout",     [ENG_LAYER_YOLO] = "yolo",
        [ENG_LAYER_REGION] = "region",       [ENG_LAYER_DENSE] = "dense",
        [ENG_LAYER_ADD] = "add",
    };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
