/* fuzz_gallery.c - libFuzzer target for the gallery's parsers in proto/ (proto_gallery.h): the JSON
 * bodies of POST /v1/subjects and PATCH (a name), POST /v1/subjects/{name}/faces (embeddings) and
 * POST /v1/identify (embeddings and options), the paging cursor, and the lines of a
 * `visiond gallery import` file. The whole input goes to each body parser; then each line (split at
 * '\n') to the import line parser, and the first line, NUL-terminated, to the cursor decoder. Every
 * failure must carry a code; every success must hold what it promises (128 finite values, a 64-digit
 * fingerprint, a name without NUL; or, for photos sent as base64, 1..PROTO_GAL_MAX_PHOTOS decoded images
 * and no embeddings). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_gallery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A body with "images_b64"/"image_b64" succeeds with photos to decode and no embeddings (the route
 * computes them); its other members come back as options, each key and value NUL-terminated. */
static int check_photos(const struct proto_gallery_embeddings *g)
{
    if (g->n_images == 0)
        return 0;
    if (g->n || g->emb || g->n_images > PROTO_GAL_MAX_PHOTOS || g->n_options > PROTO_GAL_MAX_OPTIONS)
        abort();
    for (size_t i = 0; i < g->n_images; i++)
        if (!g->image[i])
            abort();
    for (size_t i = 0; i < g->n_options; i++)
        if (!memchr(g->option_key[i], '\0', sizeof g->option_key[i]) ||
            !memchr(g->option_value[i], '\0', sizeof g->option_value[i]))
            abort();
    return 1;
}

static void check_embeddings(const struct proto_gallery_embeddings *g)
{
    if (g->n == 0 || g->n > PROTO_GAL_MAX_EMBEDDINGS)
        abort();
    for (size_t i = 0; i < g->n; i++)
        for (int k = 0; k < PROTO_GAL_DIM; k++)
            if (!isfinite(g->emb[i][k]))
                abort();
    if (g->fingerprint[0] && strlen(g->fingerprint) != 64)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_err e;
    char *name = NULL;
    memset(&e, 0, sizeof e);
    if (proto_gallery_name_body(data, size, &name, &e) == 0) {
        if (!name)
            abort();
        free(name);
    } else if (!e.code || name) {
        abort();
    }
    struct proto_gallery_embeddings g;
    memset(&e, 0, sizeof e);
    if (proto_gallery_enroll_body(data, size, &g, &e) == 0) {
        if (!check_photos(&g)) {
            check_embeddings(&g);
            if (!g.fingerprint[0])
                abort();
        }
        proto_gallery_embeddings_release(&g);
    } else if (!e.code || g.emb || g.n_images) {
        abort();
    }
    struct proto_identify_opts o;
    proto_identify_opts_init(&o);
    memset(&e, 0, sizeof e);
    if (proto_identify_body(data, size, &g, &o, &e) == 0) {
        if (!check_photos(&g))
            check_embeddings(&g);
        if (o.top_k < 1 || o.top_k > PROTO_GAL_TOP_K_MAX || !(o.match_threshold > 0))
            abort();
        proto_gallery_embeddings_release(&g);
    } else if (!e.code || g.emb || g.n_images) {
        abort();
    }
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        enum proto_gal_line_kind kind;
        char fp[65];
        struct proto_gal_import_face f;
        long long n;
        memset(&e, 0, sizeof e);
        if (proto_gallery_import_line(p, len, &kind, fp, &f, &n, &e) == 0) {
            if (kind == PROTO_GAL_LINE_FACE && (memchr(f.name, '\0', sizeof f.name) == NULL || f.created_ms < 0))
                abort();
            if (kind == PROTO_GAL_LINE_END && n < 0)
                abort();
        } else if (!e.code) {
            abort();
        }
        p += len + 1;
    }
    char cursor[512], out[130];
    size_t cl = size < sizeof cursor - 1 ? size : sizeof cursor - 1;
    memcpy(cursor, data, cl);
    cursor[cl] = '\0';
    memset(&e, 0, sizeof e);
    if (proto_cursor_decode(cursor, out, sizeof out, &e) != 0 && !e.code)
        abort();
    return 0;
}
