/* gal.h - the face gallery: who is known (subjects) and how they look (faces: 128-d embeddings).
 *
 * What this layer owns:
 *  - gal_store: the durable store (SQLite file by default, PostgreSQL through libpq for several
 *    replicas), its schema and forward migrations, and a change sequence every write bumps in the same
 *    transaction, so any process following the sequence sees writes made by others (a CLI import,
 *    another daemon). A write function returns 0 only after the transaction committed durably
 *    (SQLite: WAL + synchronous=FULL; PostgreSQL: synchronous_commit=on).
 *  - gal_index: an in-memory index over every face (float rows, plus a half-precision copy that the
 *    search scans before re-ranking its shortlist exactly), searched with BLAS. It is a series of
 *    immutable snapshots: a reload builds a new one off to the side and swaps a pointer; readers hold a
 *    reference to the snapshot they started with, so they never wait on a writer for more than that swap.
 *  - gal_follow: a thread that keeps an index in step with a store (polling the SQLite sequence, or
 *    LISTEN/NOTIFY plus the sequence on PostgreSQL, re-read after every reconnect).
 * It knows nothing of HTTP, JSON or images. Errors carry the SQL statement that failed (gal_err.stmt).
 * Thread safety: a gal_store is used by one thread at a time (callers lock); gal_index and gal_snap
 * functions are safe from any number of threads.
 */
#ifndef GAL_H
#define GAL_H

#include <stddef.h>
#include <stdint.h>

#define GAL_DIM 128          /* embedding length (the face recognizer's descriptor) */
#define GAL_NAME_MAX 128     /* bytes of UTF-8 in a subject name */
#define GAL_FP_HEX 64        /* a model fingerprint: SHA-256 as lower-case hex */

enum gal_err_kind {
    GAL_ERR_NONE = 0,
    GAL_ERR_INVALID,     /* bad argument: name, embedding (length, NaN), spec */
    GAL_ERR_NOT_FOUND,   /* no such subject or face */
    GAL_ERR_CONFLICT,    /* the subject name is taken */
    GAL_ERR_FINGERPRINT, /* embedding or gallery from another recognition model */
    GAL_ERR_UNAVAILABLE, /* the database cannot be reached now (retry later) */
    GAL_ERR_DB,          /* the database refused or failed a statement */
    GAL_ERR_NOMEM,
};

struct gal_err {
    enum gal_err_kind kind;
    char stmt[192]; /* the SQL statement (its start) that failed, or "" */
    char msg[320];
};

/* Fills *err (if not NULL); returns -1. */
int gal_err_set(struct gal_err *err, enum gal_err_kind kind, const char *stmt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "msg (in: stmt)" into buf; returns buf. */
const char *gal_err_format(const struct gal_err *err, char *buf, size_t size);

/* 0 if name is a valid subject name (1..128 bytes of valid UTF-8, no control characters, no '/'),
 * else -1 with GAL_ERR_INVALID and why. */
int gal_name_check(const char *name, struct gal_err *err);
/* 0 if fp is 64 lower-case hex digits. */
int gal_fingerprint_check(const char *fp, struct gal_err *err);
/* 0 if every value is finite (no NaN or infinity). */
int gal_embedding_check(const float emb[GAL_DIM], struct gal_err *err);

struct gal_face {
    int64_t id;                       /* assigned by the store; never reused */
    float emb[GAL_DIM];
    char fingerprint[GAL_FP_HEX + 1]; /* the recognition model's */
    float det_score;                  /* detector score of the face, 0 when enrolled as an embedding */
    float box[4];                     /* x_min, y_min, x_max, y_max in the photo's pixels (0s if none) */
    int64_t created_ms;               /* Unix time in ms, set by the store */
};

struct gal_subject {
    char name[GAL_NAME_MAX + 1];
    int64_t n_faces;
    int64_t created_ms;
};

/* ---- store ---------------------------------------------------------------------------------- */

struct gal_store;

/* Opens (creating and migrating as needed) the store named by spec: "sqlite:PATH", a bare PATH (taken
 * as SQLite), or a libpq URI "postgres://..." / "postgresql://...". fingerprint is the recognition
 * model's; a gallery already holding faces of another fingerprint is refused (GAL_ERR_FINGERPRINT).
 * New, caller frees with gal_store_free. */
struct gal_store *gal_store_open(const char *spec, const char *fingerprint, struct gal_err *err);
void gal_store_free(struct gal_store *s);
const char *gal_store_backend(const struct gal_store *s); /* "sqlite" or "postgres"; static */
const char *gal_store_fingerprint(const struct gal_store *s); /* borrowed, valid until free */

/* spec with any password replaced by "***", into buf (for logs and --print-config); returns buf. */
const char *gal_spec_redact(const char *spec, char *buf, size_t size);

int gal_subject_create(struct gal_store *s, const char *name, struct gal_err *err);
int gal_subject_get(struct gal_store *s, const char *name, struct gal_subject *out, struct gal_err *err);
int gal_subject_rename(struct gal_store *s, const char *name, const char *new_name, struct gal_err *err);
/* Deletes the subject and all its faces; *n_faces (if not NULL) gets how many faces went. */
int gal_subject_delete(struct gal_store *s, const char *name, int64_t *n_faces, struct gal_err *err);
/* Subjects whose names sort after `after` (byte order; NULL or "" from the start), at most max of
 * them, with their face counts. *out is new (caller frees), *n may be 0. */
int gal_subject_list(struct gal_store *s, const char *after, size_t max, struct gal_subject **out,
                     size_t *n, struct gal_err *err);
/* Adds n faces to the subject in one transaction: all or none. create: make the subject if it does
 * not exist (else GAL_ERR_NOT_FOUND). Every face's fingerprint must be the store's. ids (n entries,
 * may be NULL) get the new face ids; on success faces[].id and created_ms are set too. */
int gal_faces_add(struct gal_store *s, const char *name, int create, struct gal_face *faces,
                  size_t n, int64_t *ids, struct gal_err *err);
/* Bulk writes (import, benchmarks): one transaction holding any number of faces of any subjects,
 * created as needed; nothing of it is visible or durable before gal_import_commit returns 0, and
 * gal_import_abort (or a crash) leaves the gallery as it was. Faces keep their created_ms when it is
 * not 0. Between begin and commit/abort the store is used for nothing else. */
int gal_import_begin(struct gal_store *s, struct gal_err *err);
int gal_import_face(struct gal_store *s, const char *name, const struct gal_face *face, struct gal_err *err);
int gal_import_commit(struct gal_store *s, struct gal_err *err);
void gal_import_abort(struct gal_store *s);

/* The subject's faces, oldest first. *out is new (caller frees). */
int gal_faces_list(struct gal_store *s, const char *name, struct gal_face **out, size_t *n,
                   struct gal_err *err);
/* Deletes one face; *subject (if not NULL, GAL_NAME_MAX + 1 bytes) gets its subject's name. */
int gal_face_delete(struct gal_store *s, int64_t id, char *subject, struct gal_err *err);
/* Counts of subjects and faces. */
int gal_store_counts(struct gal_store *s, int64_t *subjects, int64_t *faces, struct gal_err *err);

/* The change sequence: bumped by every committed write, from any process. */
int64_t gal_store_last_write_seq(const struct gal_store *s); /* our last committed write's, or 0 */
int gal_store_seq(struct gal_store *s, int64_t *seq, struct gal_err *err);
/* Waits up to timeout_ms for the sequence to move past known (PostgreSQL: a notification; SQLite: a
 * poll); *seq gets the current one. Returns 0 (moved or timed out: compare *seq), -1 on error (the
 * connection is re-tried on the next call). */
int gal_store_wait(struct gal_store *s, int64_t known, int timeout_ms, int64_t *seq, struct gal_err *err);

/* Calls fn for every face, grouped by subject, inside one read transaction (a consistent snapshot
 * while others write); *seq gets the sequence that snapshot is at. fn returns non-zero to stop (the
 * scan then fails with GAL_ERR_INVALID and fn's error text in err if it set one). `name` is borrowed
 * for the call. */
typedef int (*gal_scan_fn)(void *user, const char *name, const struct gal_face *face, struct gal_err *err);
int gal_store_scan(struct gal_store *s, gal_scan_fn fn, void *user, int64_t *seq, struct gal_err *err);
/* gal_store_scan of the faces whose id is above after_id (ids grow in commit order: every write holds
 * the gallery's write lock from its start); *reshape (may be NULL) gets the sequence of the last write
 * that removed or renamed, read in the same snapshot. */
int gal_store_scan_since(struct gal_store *s, int64_t after_id, gal_scan_fn fn, void *user, int64_t *seq,
                         int64_t *reshape, struct gal_err *err);

/* ---- index ---------------------------------------------------------------------------------- */

/* One immutable snapshot of the gallery: the faces as a row-major matrix, their subjects. */
struct gal_snap;

struct gal_candidate {
    const char *subject; /* borrowed from the snapshot: valid while the caller holds it */
    int64_t face_id;     /* the subject's nearest face */
    float distance;      /* Euclidean distance to that face */
};

struct gal_index;
struct gal_index *gal_index_new(void); /* empty; new, caller frees */
void gal_index_free(struct gal_index *ix); /* after every snapshot reference is released */
/* Builds a snapshot from the whole store and swaps it in. The store must not be used by others during
 * the call. */
int gal_index_load(struct gal_index *ix, struct gal_store *s, struct gal_err *err);
/* Brings the index up to the store: appends the faces added since the current snapshot when nothing
 * was removed or renamed since (a copy of the matrix, not a reload), else a full gal_index_load. The
 * same thread-safety as gal_index_load; readers keep their snapshots either way. */
int gal_index_update(struct gal_index *ix, struct gal_store *s, struct gal_err *err);
/* The current snapshot, with a new reference: release it with gal_snap_release. Never NULL. */
struct gal_snap *gal_index_acquire(struct gal_index *ix);
void gal_snap_release(struct gal_snap *snap);

size_t gal_snap_faces(const struct gal_snap *snap);
size_t gal_snap_subjects(const struct gal_snap *snap);
int64_t gal_snap_seq(const struct gal_snap *snap);
size_t gal_snap_bytes(const struct gal_snap *snap); /* memory the snapshot holds */
int64_t gal_index_seq(struct gal_index *ix);        /* the current snapshot's sequence */

/* Search. For each of the nq queries (row-major nq x GAL_DIM), the top_k (at most 64) subjects by
 * their nearest face's distance, ascending, into out[q * top_k ...]; n_out[q] gets how many (fewer
 * than top_k when the gallery has fewer subjects). A subject's score is its nearest face (documented
 * in docs/GALLERY.md). The scan runs over the half-precision copy of the embeddings and shortlists
 * top_k + 32 subjects; those are re-ranked exactly (distance in double over all their float faces), so
 * the subjects, face ids and distances are exactly gal_snap_search_exact's whenever its top_k subjects
 * are on the shortlist (recall measured in docs/GALLERY.md). Errors: GAL_ERR_INVALID for a non-finite
 * query, GAL_ERR_NOMEM. Thread-safe; allocates a work buffer per call. */
int gal_snap_search(const struct gal_snap *snap, const float *queries, size_t nq, size_t top_k,
                    struct gal_candidate *out, size_t *n_out, struct gal_err *err);
/* The same over the float embeddings: exact (the reference for tests and bench/gallery's recall). */
int gal_snap_search_exact(const struct gal_snap *snap, const float *queries, size_t nq, size_t top_k,
                          struct gal_candidate *out, size_t *n_out, struct gal_err *err);

/* ---- follower ------------------------------------------------------------------------------- */

/* A thread that opens its own connection (spec, fingerprint) and reloads ix whenever the store's
 * sequence moves past the index's (and at least every poll_ms on SQLite). New, caller frees. */
struct gal_follow;
struct gal_follow *gal_follow_start(struct gal_index *ix, const char *spec, const char *fingerprint,
                                    int poll_ms, struct gal_err *err);
/* Asks for a prompt re-check (after a write of our own). */
void gal_follow_kick(struct gal_follow *f);
/* Waits up to timeout_ms until the index reached at least seq; 0 if it did, -1 if not. */
int gal_follow_wait_seq(struct gal_follow *f, int64_t seq, int timeout_ms);
/* 1 while the follower's connection to the store works. */
int gal_follow_connected(struct gal_follow *f);
void gal_follow_stop(struct gal_follow *f);

#endif
