/* proto_errors.h - the one table of error codes the API answers with, and the error reply bodies.
 *
 * Every failure a client can see has a code here, with its HTTP status and a default message. The HTTP
 * layer never writes a status next to a code: it asks this table (proto_code_status), so the code and
 * the status can't disagree. Error bodies:
 *   native API      {"error":{"code":"BAD_IMAGE","message":"...","field":"image"},"request_id":"..."}
 *   DeepStack alias {"success":false,"error":"...","code":400,"request_id":"..."}
 * All functions here are pure (no state) and thread-safe. */
#ifndef PROTO_ERRORS_H
#define PROTO_ERRORS_H

#include <stddef.h>

#include "eng_err.h"

/* Table order; PROTO_OK (0) is "no error", so a zeroed struct proto_err means success. */
enum proto_code {
    PROTO_OK = 0,
    PROTO_ERR_BAD_REQUEST,            /* 400 malformed request (no image, bad multipart, ...) */
    PROTO_ERR_INVALID_PARAM,          /* 400 a parameter is unknown, of the wrong type or out of range */
    PROTO_ERR_BAD_JSON,               /* 400 the body is not JSON, or not a JSON object */
    PROTO_ERR_BAD_IMAGE,              /* 400 the image is corrupt, truncated or empty */
    PROTO_ERR_UNAUTHORIZED,           /* 401 missing or wrong API key */
    PROTO_ERR_FORBIDDEN,              /* 403 the API key's scope does not reach the route's */
    PROTO_ERR_NOT_FOUND,              /* 404 no such route */
    PROTO_ERR_MODEL_NOT_FOUND,        /* 404 no model loaded under that name */
    PROTO_ERR_METHOD_NOT_ALLOWED,     /* 405 the route exists, the method doesn't */
    PROTO_ERR_PAYLOAD_TOO_LARGE,      /* 413 body over the byte limit (never truncated) */
    PROTO_ERR_IMAGE_TOO_LARGE,        /* 413 image declares more pixels than the limit */
    PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, /* 415 Content-Type we don't accept */
    PROTO_ERR_UNSUPPORTED_IMAGE,      /* 415 the bytes are not PNG, JPEG, WebP, HEIC or AVIF */
    PROTO_ERR_NO_FACE,                /* 422 no face in the image (face routes) */
    PROTO_ERR_UNPROCESSABLE,          /* 422 well-formed but unusable */
    PROTO_ERR_QUEUE_FULL,             /* 503 job queue full: retry later (send Retry-After) */
    PROTO_ERR_NOT_READY,              /* 503 starting up or over the queue's high-water mark */
    PROTO_ERR_TIMEOUT,                /* 504 the deadline passed before the job ran */
    PROTO_ERR_INTERNAL,               /* 500 a bug or out of memory */
    PROTO_ERR_IO,                     /* 500 the OS failed a read (model files; the CLI's inputs) */
    /* the gallery's (proto_gallery.h) */
    PROTO_ERR_SUBJECT_NOT_FOUND,      /* 404 no subject of that name */
    PROTO_ERR_FACE_NOT_FOUND,         /* 404 no face of that id */
    PROTO_ERR_SUBJECT_EXISTS,         /* 409 the name is taken */
    PROTO_ERR_MULTIPLE_FACES,         /* 422 an enrolment photo holds several faces and no face_select */
    PROTO_ERR_MODEL_MISMATCH,         /* 422 embeddings of another recognition model */
    PROTO_ERR_GALLERY_UNAVAILABLE,    /* 503 the gallery's database cannot be reached (Retry-After) */
    PROTO_CODE_COUNT
};

/* The error shape a route answers in. */
enum proto_dialect {
    PROTO_DIALECT_NATIVE = 0, /* /v1/detect, /v1/faces, ...: {"error":{"code",...}} */
    PROTO_DIALECT_DEEPSTACK,  /* /v1/vision/...: {"success":false,"error":"...","code":<status>} */
};

struct proto_code_info {
    const char *name;    /* "BAD_IMAGE": the wire form of the code */
    int status;          /* HTTP status */
    const char *message; /* default message, used when none is given */
};

/* The table entry for a code; an out-of-range code gives PROTO_ERR_INTERNAL's. Borrowed, static. */
const struct proto_code_info *proto_code_info(enum proto_code code);

/* Shorthands for proto_code_info(code)->name / ->status / ->message. */
const char *proto_code_name(enum proto_code code);
int proto_code_status(enum proto_code code);
const char *proto_code_message(enum proto_code code);

/* Looks a code up by its wire name ("QUEUE_FULL"); returns -1 if unknown, else 0 and sets *out. */
int proto_code_from_name(const char *name, enum proto_code *out);

/* The code for an engine failure: INVALID -> BAD_IMAGE, UNSUPPORTED -> UNSUPPORTED_IMAGE,
 * TOO_LARGE -> IMAGE_TOO_LARGE, IO -> IO, NOMEM -> INTERNAL, NONE -> INTERNAL (a failure without a
 * kind is a bug). Meant for errors of image decoding and detection; model loading errors are startup
 * errors, not replies. */
enum proto_code proto_code_from_eng(enum eng_err_kind kind);

/* A failure to report to a client: the code, the place (a JSON path like "$.conf" or "$.classes[1]",
 * or a parameter/form field name like "conf" or "image"; "" when there is none) and a message that
 * starts with that place ("$.conf: expected a number between 0 and 1"). */
#define PROTO_ERR_FIELD_MAX 128
#define PROTO_ERR_MSG_MAX 448

struct proto_err {
    enum proto_code code;
    char field[PROTO_ERR_FIELD_MAX];
    char msg[PROTO_ERR_MSG_MAX];
};

/* Fills *err (if not NULL) with code, field (NULL = none) and the message "<field>: <fmt...>" (just
 * "<fmt...>" without a field); returns -1 so callers can `return proto_err_set(...)`. */
int proto_err_set(struct proto_err *err, enum proto_code code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Converts an engine error into *out (if not NULL): code by proto_code_from_eng, the given field
 * (e.g. "image"; NULL = none), message "<field>: <engine message>" (the engine's place is dropped: it
 * names a memory buffer or a file of the server, not something the client sent). Returns -1. */
int proto_err_from_eng(struct proto_err *out, const struct eng_err *e, const char *field);

/* The one encoder of error replies, in the route's dialect:
 *   NATIVE    {"error":{"code":"...","message":"...","field":"..."},"request_id":"..."}
 *   DEEPSTACK {"success":false,"error":"<message>","code":<HTTP status>,"request_id":"..."}
 * An empty err->msg gives the code's default message, an empty err->field no "field" key, a NULL
 * request_id no "request_id" key. Bytes that are not valid UTF-8 are replaced by '?'. Reply with
 * proto_code_status(err->code) as the status (DeepStack does so too). New string, caller frees with
 * free(); NULL only if out of memory. */
char *proto_error_body(enum proto_dialect dialect, const struct proto_err *err, const char *request_id);

/* The command-line tools' line for an input file that failed (`visiond detect`, `faces`, `verify`):
 * {"image":"<path>","error":{"code":"...","message":"...","field":"..."}} (no "field" key when
 * err->field is empty). New string, caller frees; NULL if out of memory. */
char *proto_error_line(const char *image, const struct proto_err *err);

#endif
