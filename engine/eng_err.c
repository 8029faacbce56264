#include "eng_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fill_msg(struct eng_err *err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void fill_msg(struct eng_err *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int eng_err_set(struct eng_err *err, enum eng_err_kind kind, const char *where, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->kind = kind;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    va_list ap;
    va_start(ap, fmt);
    fill_msg(err, fmt, ap);
    va_end(ap);
    return -1;
}

int eng_err_set_line(struct eng_err *err, enum eng_err_kind kind, const char *file, int line,
                     const char *fmt, ...)
{
    if (!err)
        return -1;
    err->kind = kind;
    snprintf(err->where, sizeof err->where, "%s:%d", file ? file : "?", line);
    va_list ap;
    va_start(ap, fmt);
    fill_msg(err, fmt, ap);
    va_end(ap);
    return -1;
}

const char *eng_err_format(const struct eng_err *err, char *buf, size_t size)
{
    if (err->where[0])
        snprintf(buf, size, "%s: %s", err->where, err->msg);
    else
        snprintf(buf, size, "%s", err->msg);
    return buf;
}
