/* proto_labels.h - the label names each dialect reports for a detection model's classes.
 *
 * DeepStack, CodeProject.AI and their clients (Frigate's labelmap, Home Assistant's object types) use
 * the 80 category names of the COCO annotations ("motorcycle", "airplane", "couch", "potted plant",
 * "dining table", "tv"); darknet's coco.names spells six of them differently ("motorbike",
 * "aeroplane", "sofa", "pottedplant", "diningtable", "tvmonitor"). A model counts as COCO-80 when its
 * names are the 80 COCO classes in COCO's order, each in either spelling; on the DeepStack routes such
 * a model's labels are COCO's names, anywhere else (and for any other model) the model's own names.
 * The tables are static: every pointer returned lives as long as the program or the net. Thread-safe. */
#ifndef PROTO_LABELS_H
#define PROTO_LABELS_H

#include "net.h"
#include "proto_request.h"

#define PROTO_COCO_CLASSES 80

/* COCO's 80 category names, in the order of the darknet/COCO-80 class ids. */
extern const char *const proto_coco80_names[PROTO_COCO_CLASSES];

/* Nonzero if net's class names are COCO-80 (see above). */
int proto_net_is_coco80(const struct eng_net *net);

/* The label of class i for a dialect: COCO's name on the DeepStack dialect for a COCO-80 net, else
 * the net's name (or "class_<i>" written into buf). */
const char *proto_class_label(const struct eng_net *net, enum proto_dialect dialect, int i, char *buf,
                              size_t size);

/* The class id whose label in `dialect` is name (exact): COCO's names count too on the DeepStack
 * dialect for a COCO-80 net, so a DeepStack client may filter on the names it receives. -1 if none. */
int proto_class_find(const struct eng_net *net, enum proto_dialect dialect, const char *name);

#endif
