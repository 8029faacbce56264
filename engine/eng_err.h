/* eng_err.h - the error report every fallible engine function fills.
 *
 * Convention (see docs/STYLE in ../shared/notes/style.md): a function returns 0 on success and -1 on
 * failure; when it fails and `err` is not NULL it writes a message and the place the problem was found
 * (cfg file:line, tensor name, image file name). `err` may always be NULL. */
#ifndef ENG_ERR_H
#define ENG_ERR_H

#include <stddef.h>

#define ENG_ERR_MSG_MAX 320
#define ENG_ERR_WHERE_MAX 256

/* Classifies a failure so callers (the HTTP layer) can map it to a status without parsing text. */
enum eng_err_kind {
    ENG_ERR_NONE = 0,
    ENG_ERR_INVALID,     /* malformed input: bad cfg value, corrupt image, truncated file */
    ENG_ERR_UNSUPPORTED, /* well-formed but not something we handle (image format, layer kind) */
    ENG_ERR_TOO_LARGE,   /* over a configured limit (pixels, bytes) */
    ENG_ERR_IO,          /* the OS failed us: open/read */
    ENG_ERR_NOMEM,       /* allocation failed */
};

struct eng_err {
    enum eng_err_kind kind;
    char where[ENG_ERR_WHERE_MAX]; /* "yolov3.cfg:42", "conv_3.weights", "dog.jpg"; "" if unknown */
    char msg[ENG_ERR_MSG_MAX];
};

/* Fills *err (if not NULL) and returns -1, so callers can write `return eng_err_set(...)`. */
int eng_err_set(struct eng_err *err, enum eng_err_kind kind, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills *err with "<where>:<line>" as the place. */
int eng_err_set_line(struct eng_err *err, enum eng_err_kind kind, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Formats "where: msg" (or "msg") into buf; returns buf. */
const char *eng_err_format(const struct eng_err *err, char *buf, size_t size);

#endif
