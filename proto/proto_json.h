/* proto_json.h - jansson helpers shared by the proto/ sources (internal: not for server/ or tests).
 *
 * jansson refuses strings that are not valid UTF-8 (json_string returns NULL), and names from .names
 * files, request ids or echoed parameter values may not be; these helpers replace such bytes by '?'
 * instead of failing the whole document. */
#ifndef PROTO_JSON_H
#define PROTO_JSON_H

#include <jansson.h>

/* Compact, key order as inserted, 6 significant digits at most for reals. */
#define PROTO_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6) | JSON_PRESERVE_ORDER)
/* With PROTO_PRECISION_FULL (proto_output.h): 9 digits, which read back as the same float. */
#define PROTO_JSON_FLAGS_FULL (JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_PRESERVE_ORDER)

/* New JSON string for s (NULL -> JSON null); invalid UTF-8 bytes become '?'. NULL if out of memory. */
json_t *proto_json_str(const char *s);

/* Serializes doc with PROTO_JSON_FLAGS and drops the reference (doc may be NULL: returns NULL).
 * New string, caller frees. */
char *proto_json_dump(json_t *doc);

/* v rounded to a multiple of unit (0.01 px, 1e-4 confidence): more digits would be noise; v itself
 * with PROTO_PRECISION_FULL (proto_output.h). NULL for a
 * v that is not finite (as json_real), so the document being built fails instead of carrying garbage. */
json_t *proto_json_round(double v, double unit);

#endif
