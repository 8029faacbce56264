/* box.c - IoU and greedy non-max suppression, shared by every detector. */
#include <stdlib.h>

#include "detect.h"

float eng_box_iou(struct eng_box a, struct eng_box b)
{
    const float iw = (a.x2 < b.x2 ? a.x2 : b.x2) - (a.x1 > b.x1 ? a.x1 : b.x1);
    const float ih = (a.y2 < b.y2 ? a.y2 : b.y2) - (a.y1 > b.y1 ? a.y1 : b.y1);
    if (!(iw > 0.0f) || !(ih > 0.0f))
        return 0.0f;
    const float inter = iw * ih;
    const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
    const float area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
    const float uni = area_a + area_b - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

/* Descending confidence; ties broken by class and coordinates so the order (and so NMS) is a total,
 * deterministic function of the candidates whatever qsort does with equal keys. */
static int by_confidence_desc(const void *pa, const void *pb)
{
    const struct eng_detection *a = pa, *b = pb;
    if (a->confidence != b->confidence)
        return a->confidence < b->confidence ? 1 : -1;
    if (a->class_id != b->class_id)
        return a->class_id < b->class_id ? -1 : 1;
    const float ka[4] = {a->box.x1, a->box.y1, a->box.x2, a->box.y2};
    const float kb[4] = {b->box.x1, b->box.y1, b->box.x2, b->box.y2};
    for (int i = 0; i < 4; i++)
        if (ka[i] != kb[i])
            return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

int eng_nms(struct eng_detection *dets, int n, float iou_thresh, int agnostic, int max_det)
{
    if (n > 1)
        qsort(dets, (size_t)n, sizeof *dets, by_confidence_desc);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (max_det > 0 && kept >= max_det)
            break;
        int suppressed = 0;
        for (int k = 0; k < kept && !suppressed; k++) {
            if (!agnostic && dets[k].class_id != dets[i].class_id)
                continue;
            suppressed = eng_box_iou(dets[k].box, dets[i].box) > iou_thresh;
        }
        if (!suppressed)
            dets[kept++] = dets[i];
    }
    return kept;
}
