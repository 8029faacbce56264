/* proto_labels.c - COCO's canonical label names on the DeepStack routes (see proto_labels.h). */
#include <string.h>

#include "proto_labels.h"

const char *const proto_coco80_names[PROTO_COCO_CLASSES] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
};

/* darknet's coco.names (and VOC's) spellings of the six that differ, by class id. */
static const struct {
    int id;
    const char *darknet;
} DARKNET_SPELLING[] = {
    {3, "motorbike"}, {4, "aeroplane"}, {57, "sofa"}, {58, "pottedplant"}, {60, "diningtable"},
    {62, "tvmonitor"},
};

static int same_class(int i, const char *name)
{
    if (!name)
        return 0;
    if (!strcmp(name, proto_coco80_names[i]))
        return 1;
    for (size_t k = 0; k < sizeof DARKNET_SPELLING / sizeof *DARKNET_SPELLING; k++)
        if (DARKNET_SPELLING[k].id == i && !strcmp(name, DARKNET_SPELLING[k].darknet))
            return 1;
    return 0;
}

int proto_net_is_coco80(const struct eng_net *net)
{
    if (!net || net->classes != PROTO_COCO_CLASSES || !net->class_names)
        return 0;
    for (int i = 0; i < PROTO_COCO_CLASSES; i++)
        if (!same_class(i, net->class_names[i]))
            return 0;
    return 1;
}

const char *proto_class_label(const struct eng_net *net, enum proto_dialect dialect, int i, char *buf,
                              size_t size)
{
    if (dialect == PROTO_DIALECT_DEEPSTACK && i >= 0 && i < PROTO_COCO_CLASSES &&
        proto_net_is_coco80(net))
        return proto_coco80_names[i];
    return eng_net_class_name(net, i, buf, size);
}

int proto_class_find(const struct eng_net *net, enum proto_dialect dialect, const char *name)
{
    if (dialect == PROTO_DIALECT_DEEPSTACK && proto_net_is_coco80(net))
        for (int i = 0; i < PROTO_COCO_CLASSES; i++)
            if (!strcmp(name, proto_coco80_names[i]))
                return i;
    return eng_net_class_find(net, name);
}
