/* proto_param.h - what proto/'s request parsers share (internal: not for server/ or tests).
 *
 * A parameter's value arrives as text (query argument, form field) or as a member of a JSON body; a
 * struct proto_val holds either, so each parameter's rules and messages are written once for both.
 * Readers return 0 and the value, or -1 when the value is not of the type (no message); setters check
 * the range as well and fill a struct proto_err: INVALID_PARAM "<field>: expected <what>, got <value>".
 * Everything here is pure (no state) and thread-safe. */
#ifndef PROTO_PARAM_H
#define PROTO_PARAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_errors.h"

/* A parameter's value as received: exactly one of the two is set. Both borrowed. */
struct proto_val {
    const char *str; /* text (query/form) */
    json_t *json;    /* a JSON value, never JSON null (null means "not given") */
};

/* s in double quotes for a message: printable ASCII kept, other bytes as '?', cut at 40 characters
 * (then "..."). buf gets "" if size < 8. */
void proto_quote(const char *s, char *buf, size_t size);

/* What v is, for a message: the quoted text, or "the string \"..\"", "an array", "1.5", "null", ... */
void proto_val_describe(const struct proto_val *v, char *buf, size_t size);

/* INVALID_PARAM "<field>: expected <what>, got <v described>". Returns -1. */
int proto_val_bad(struct proto_err *err, const char *field, const char *what, const struct proto_val *v);

/* INTERNAL "<field>: out of memory". Returns -1. */
int proto_err_nomem(struct proto_err *err, const char *field);

/* A JSON number, or text that is a decimal number (digits, sign, '.', exponent only: no "nan", "inf",
 * hex or spaces) and finite. */
int proto_val_number(const struct proto_val *v, double *out);

/* A JSON integer, or text of an optional sign and digits; out of range of long long reads as
 * LLONG_MAX/MIN (out of any range the callers check). */
int proto_val_integer(const struct proto_val *v, long long *out);

/* JSON true/false, or text "true"/"false" (case-insensitive), "1"/"0". */
int proto_val_bool(const struct proto_val *v, int *out);

/* The text, or a JSON string's value; NULL for any other JSON value. Borrowed from v. */
const char *proto_val_string(const struct proto_val *v);

/* Setters: *dst only changes on success. */
int proto_val_set_unit(float *dst, const char *field, const struct proto_val *v, struct proto_err *err);
int proto_val_set_int(int *dst, long long lo, long long hi, const char *field, const struct proto_val *v,
                      struct proto_err *err);
int proto_val_set_bool(int *dst, const char *field, const struct proto_val *v, struct proto_err *err);
/* A string value copied into *dst (new, the request frees it). */
int proto_val_set_string(char **dst, const char *field, const struct proto_val *v, struct proto_err *err);

/* An image sent as text: plain base64 or a "data:image/<type>;base64,..." URI (proto_base64_decode's
 * rules). On success *out is a new buffer (caller frees) of *out_len bytes. Errors: INVALID_PARAM (not a
 * string, malformed URI, bad base64), UNSUPPORTED_MEDIA_TYPE (a data: URI of a non-image type). */
int proto_val_image_b64(const char *field, const struct proto_val *v, uint8_t **out, size_t *out_len,
                        struct proto_err *err);

/* "<prefix><key>" in buf, the key's bytes outside printable ASCII replaced by '?', so it can be echoed. */
void proto_field_name(const char *prefix, const char *key, char *buf, size_t size);

/* The name among names[0..n) a mistyped key most likely meant: one is a prefix of the other (at least 3
 * characters, case-insensitive), else the nearest by edit distance if at most 2 edits; NULL if none.
 * Borrowed: one of names. */
const char *proto_suggest(const char *key, const char *const *names, size_t n);

/* ---- parameter schemas: a route's parameters as a table, read the same way from every form ---- */

/* The message for an "image" text field where a file or image_b64 was meant. */
#define PROTO_IMAGE_AS_TEXT_HINT \
    "send the image as a multipart file field, as the raw body, or base64-encoded as image_b64"

/* One parameter name (aliases are rows of their own with the same kind and bit). */
struct proto_param_def {
    const char *name;
    int kind;           /* the request type's own enum: what apply does with the value */
    unsigned bit;       /* the request's "given" bit */
    unsigned routes;    /* the routes of the request type that take it (the type's own bits) */
    int side;           /* /v1/verify's per-image parameters: 0 or 1 */
    int deepstack_only; /* a name only the DeepStack dialect knows */
};

/* A request type's parameters and what it does with them. */
struct proto_schema {
    const struct proto_param_def *params;
    size_t n;
    /* Applies the value of parameter p (found by name) to the request: 0, or -1 with *err. field is
     * the name to put in messages ("conf", or "$.conf" from a JSON body). */
    int (*apply)(void *req, const struct proto_param_def *p, const char *field, const struct proto_val *v,
                 struct proto_err *err);
    /* The error for a key that names no parameter of the route (text: a query argument or form field;
     * else a JSON member). Always -1. Not called in the DeepStack dialect, which ignores such keys. */
    int (*unknown)(void *req, const char *key, const char *field, int text, struct proto_err *err);
};

/* The row named key that route takes in dialect, or NULL. Borrowed from the schema. */
const struct proto_param_def *proto_schema_find(const struct proto_schema *s, const char *key, unsigned route,
                                                enum proto_dialect dialect);

/* A query argument or form text field (value NULL reads as ""): found and applied, or refused by
 * s->unknown (ignored in the DeepStack dialect, as DeepStack ignores fields it does not know). */
int proto_schema_set(const struct proto_schema *s, void *req, unsigned route, enum proto_dialect dialect,
                     const char *key, const char *value, struct proto_err *err);

/* A JSON body: one object whose members are parameters, each applied as a JSON value (null: not given),
 * unknown members refused as by proto_schema_set. Stops at the first error. */
int proto_schema_parse_json(const struct proto_schema *s, void *req, unsigned route, enum proto_dialect dialect,
                            const char *body, size_t len, struct proto_err *err);

/* Parses a JSON body that must be one object (body borrowed, need not be NUL-terminated; NULL = empty).
 * On success *out is a new reference (caller json_decref()s). Errors: BAD_JSON with field "$" (not JSON:
 * the message gives line and column; or not an object), INTERNAL when out of memory. */
int proto_json_load_object(const char *body, size_t len, json_t **out, struct proto_err *err);

#endif
