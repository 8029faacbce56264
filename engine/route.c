/* route.c - [route]: concatenate earlier layers' outputs along channels; with groups/group_id
 * (yolov4-tiny) each input contributes only its group_id-th slice of channels. */
#include <stdio.h>
#include <string.h>

#include "layer.h"

/* Output channels [lo, hi): each input's slice is one run of planes, copied where it meets the range. */
static void route_channels(const struct eng_layer *l, const struct eng_fwd *f, int lo, int hi)
{
    const struct eng_route *r = &l->p.route;
    const size_t plane = (size_t)l->out.h * l->out.w;
    for (int i = 0, at = 0; i < r->n && at < hi; i++) {
        const int part = r->channels[i] / r->groups, a = lo > at ? lo : at, b = hi < at + part ? hi : at + part;
        if (b > a) {
            const float *src = f->outs[r->inputs[i]] + ((size_t)part * r->group_id + (size_t)(a - at)) * plane;
            memcpy(f->out + (size_t)a * plane, src, sizeof(float) * (size_t)(b - a) * plane);
        }
        at += part;
    }
}

/* Split by channels across the team: yolov4-tiny's routes copy up to 5 MB (128 x 104 x 104), which on
 * one thread was a serial part of the 2-thread pass; a small copy is not worth waking a helper. */
static void route_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    if (eng_shape_size(l->out) < 65536)
        route_channels(l, f, 0, l->out.c);
    else
        eng_fwd_split(l, f, l->out.c, route_channels);
}

int eng_route_setup(struct eng_layer *l, const struct eng_layer *layers, char *why, size_t why_size)
{
    struct eng_route *r = &l->p.route;
    if (r->n <= 0) {
        snprintf(why, why_size, "route needs at least one layer");
        return -1;
    }
    if (r->groups <= 0 || r->group_id < 0 || r->group_id >= r->groups) {
        snprintf(why, why_size, "group_id=%d must be in 0..groups-1 (groups=%d)", r->group_id,
                 r->groups);
        return -1;
    }
    int channels = 0;
    for (int i = 0; i < r->n; i++) {
        const int idx = r->inputs[i];
        if (idx < 0 || idx >= l->index) {
            snprintf(why, why_size, "layer %d does not exist before layer %d", idx, l->index);
            return -1;
        }
        const struct eng_shape s = layers[idx].out;
        if (i > 0 && (s.h != l->out.h || s.w != l->out.w)) {
            snprintf(why, why_size, "layer %d is %dx%d but layer %d is %dx%d", idx, s.w, s.h,
                     r->inputs[0], l->out.w, l->out.h);
            return -1;
        }
        if (s.c % r->groups) {
            snprintf(why, why_size, "layer %d has %d channels, not divisible by groups=%d", idx,
                     s.c, r->groups);
            return -1;
        }
        r->channels[i] = s.c;
        l->out.h = s.h;
        l->out.w = s.w;
        channels += s.c / r->groups;
    }
    l->out.c = channels;
    l->forward = route_forward;
    return 0;
}
