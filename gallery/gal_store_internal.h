/* gal_store_internal.h - what the store's sources share (gal_store.c: open, validation, writes;
 * gal_read.c: reads). Private to gallery/. */
#ifndef GAL_STORE_INTERNAL_H
#define GAL_STORE_INTERNAL_H

#include "gal.h"
#include "gal_db.h"

struct gal_store {
    const struct gal_db_ops *ops;
    void *db;
    char fingerprint[GAL_FP_HEX + 1];
    int64_t last_seq;
    char token[33]; /* the current write transaction's (write_begin) */
    int64_t import_seq;                    /* the import transaction's sequence */
    char import_name[GAL_NAME_MAX + 1];    /* the last subject an import wrote to, and its row id */
    int64_t import_sid;
};

int64_t gal_now_ms(void); /* Unix time in ms */
/* The subject's row id, or -1 with GAL_ERR_NOT_FOUND. */
int gal_subject_id(struct gal_store *s, const char *name, int64_t *id, struct gal_err *err);

#endif
