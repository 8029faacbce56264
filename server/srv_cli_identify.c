/* srv_cli_identify.c - the CLI commands that run the face networks against a gallery, without a daemon:
 * `visiond identify [--gallery SPEC] IMAGE...`: who is in each image; one JSON line per image, the body
 * POST /v1/identify answers for it (same face steps, srv_face_steps.h; same search, gallery/gal.h; same
 * encoder). Exit 0, 1 if an image could not be read or the gallery not opened, 2 for bad usage.
 * `visiond gallery enroll DIR` (srv_cli_gallery.c): DIR/<subject name>/<photos>, one face a photo, all
 * in one transaction, with a progress line on a terminal. */
#include <dirent.h>
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"
#include "image.h"
#include "proto_gallery.h"
#include "srv_cli.h"
#include "srv_cli_common.h"
#include "srv_face_steps.h"
#include "srv_gallery.h"

static const char usage_text[] =
    "usage: visiond identify [--gallery SPEC] [--data-dir DIR] [--models-dir DIR] [--aligned]\n"
    "                        [--det-threshold 0.5] [--top-k 3] [--match-threshold 0.6] IMAGE...\n"
    "  One JSON line per image, the body POST /v1/identify answers: each face's candidates and match\n"
    "  (null: nobody known). --gallery: sqlite:PATH or postgres://...; default sqlite:DATA_DIR/gallery.db.\n";

struct identify_cli {
    struct eng_face_models *models;
    struct eng_face_ctx *ctx;
    struct eng_face faces[SRV_MAX_FACES];
    float emb[SRV_MAX_FACES][ENG_FACE_DESCRIPTOR];
    struct proto_identify_face info[SRV_MAX_FACES];
    struct proto_verify_request v;
    struct proto_identify_opts o;
    struct gal_index *ix;
    struct gal_candidate cand[SRV_MAX_FACES * PROTO_GAL_TOP_K_MAX];
    struct proto_identify_candidate pc[SRV_MAX_FACES * PROTO_GAL_TOP_K_MAX];
};

static int one_image(struct identify_cli *c, const char *path)
{
    struct eng_image img = {0};
    struct eng_err err = {0};
    struct proto_err e = {0};
    struct proto_face_timing t = {0};
    const struct eng_decode_opts dopts = {.apply_exif = c->v.opt.exif};
    int n = 0;
    if (eng_image_load(path, &dopts, &img, NULL, &err)) {
        proto_err_from_eng(&e, &err, "image");
        n = -1;
    } else if (c->v.aligned) {
        struct proto_verify_face vf;
        n = srv_face_verify_image(c->models, c->ctx, &img, &c->v, c->faces, SRV_MAX_FACES, c->emb[0], &vf, &t,
                                  "image", &e) ? -1 : 1;
        c->info[0] = (struct proto_identify_face){0};
    } else {
        n = srv_face_detect(c->models, c->ctx, &img, &c->v.opt, c->faces, SRV_MAX_FACES, &t, "image", &e);
        if (n > 0 && srv_face_describe(c->models, c->ctx, &img, c->faces, n, c->emb, &t, "image", &e))
            n = -1;
        for (int i = 0; i < n; i++) {
            const struct eng_box *b = &c->faces[i].box;
            c->info[i] = (struct proto_identify_face){1, {b->x1, b->y1, b->x2, b->y2}, c->faces[i].score, NULL, 0};
        }
    }
    eng_image_release(&img);
    if (n < 0) {
        srv_cli_print_line(proto_error_line(path, &e));
        fprintf(stderr, "visiond: %s: %s\n", path, e.msg);
        return 1;
    }
    struct gal_candidate *cand = c->cand;
    struct proto_identify_candidate *pc = c->pc;
    size_t nc[SRV_MAX_FACES];
    struct gal_err ge;
    const int k = c->o.top_k;
    struct gal_snap *snap = gal_index_acquire(c->ix);
    int rc = n > 0 ? gal_snap_search(snap, &c->emb[0][0], (size_t)n, (size_t)k, cand, nc, &ge) : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        c->info[i].cand = pc + i * k;
        c->info[i].n_cand = nc[i];
        for (size_t j = 0; j < nc[i]; j++)
            pc[i * k + (int)j] = (struct proto_identify_candidate){cand[i * k + (int)j].subject,
                                                                   cand[i * k + (int)j].face_id,
                                                                   cand[i * k + (int)j].distance};
    }
    if (rc == 0)
        srv_cli_print_line(proto_identify_json(NULL, c->info, (size_t)n, c->o.match_threshold, 0));
    gal_snap_release(snap);
    return rc ? 1 : 0;
}

int srv_cli_identify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"gallery", required_argument, NULL, 'g'},       {"data-dir", required_argument, NULL, 'd'},
        {"models-dir", required_argument, NULL, 'm'},    {"aligned", no_argument, NULL, 'a'},
        {"det-threshold", required_argument, NULL, 't'}, {"top-k", required_argument, NULL, 'k'},
        {"match-threshold", required_argument, NULL, 'x'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct identify_cli c; /* large: the faces and embeddings of an image */
    const char *gallery = NULL, *data_dir = "data", *models = "models";
    struct proto_err e;
    int ch, rc = 0;
    memset(&c, 0, sizeof c);
    proto_verify_request_init(&c.v, PROTO_DIALECT_NATIVE);
    proto_identify_opts_init(&c.o);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'g': gallery = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'm': models = optarg; break;
        case 'a': rc = proto_verify_request_set(&c.v, "aligned", "true", &e); break;
        case 't': rc = proto_verify_request_set(&c.v, "det_threshold", optarg, &e); break;
        case 'k': rc = proto_identify_opt_text(&c.o, "top_k", optarg, &e); break;
        case 'x': rc = proto_identify_opt_text(&c.o, "match_threshold", optarg, &e); break;
        case 'h': fputs(usage_text, stdout); proto_verify_request_release(&c.v); return 0;
        default: rc = -2; break;
        }
        if (rc) {
            if (rc == -1)
                fprintf(stderr, "visiond: %s\n", e.msg);
            fputs(usage_text, stderr);
            proto_verify_request_release(&c.v);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        proto_verify_request_release(&c.v);
        return 2;
    }
    char dir[4096], fp[GAL_FP_HEX + 1], spec[4200], why[600];
    struct eng_err err = {0};
    struct gal_err ge;
    snprintf(dir, sizeof dir, "%s/faces", models);
    snprintf(spec, sizeof spec, gallery ? "%s" : "sqlite:%s/gallery.db", gallery ? gallery : data_dir);
    struct gal_store *s = NULL;
    if (srv_gallery_fingerprint(dir, fp, why, sizeof why)) {
        fprintf(stderr, "visiond: the recognition model: %s\n", why);
        rc = 1;
    } else if (eng_face_models_load(dir, NULL, &c.models, &err) || !(c.ctx = eng_face_ctx_new(c.models, &err))) {
        rc = srv_cli_report(&err);
    } else if (!(s = gal_store_open(spec, fp, &ge)) || !(c.ix = gal_index_new()) || gal_index_load(c.ix, s, &ge)) {
        char line[600];
        fprintf(stderr, "visiond: %s\n", gal_err_format(&ge, line, sizeof line));
        rc = 1;
    }
    const int ready = rc == 0;
    for (int i = optind; ready && i < argc; i++)
        if (one_image(&c, argv[i]))
            rc = 1; /* the others are still answered */
    gal_index_free(c.ix);
    gal_store_free(s);
    eng_face_ctx_free(c.ctx);
    eng_face_models_free(c.models);
    proto_verify_request_release(&c.v);
    return rc;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of dir (no dot files), sorted; *n of them, new (free each and the array). */
static char **list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    *n = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            char **w = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
            if (!w)
                break;
            v = w;
        }
        if (!(v[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    if (d)
        closedir(d);
    if (v)
        qsort(v, *n, sizeof *v, name_cmp);
    return v;
}

int srv_cli_gallery_enroll(struct gal_store *s, const char *dir, const char *models, int aligned)
{
    static struct identify_cli c;
    struct eng_err err = {0};
    struct proto_err e;
    char path[8192];
    int rc = 0, tty = isatty(2);
    long long done = 0;
    size_t subjects = 0;
    memset(&c, 0, sizeof c);
    proto_verify_request_init(&c.v, PROTO_DIALECT_NATIVE);
    if (aligned)
        proto_verify_request_set(&c.v, "aligned", "true", &e);
    snprintf(path, sizeof path, "%s/faces", models);
    if (eng_face_models_load(path, NULL, &c.models, &err) || !(c.ctx = eng_face_ctx_new(c.models, &err))) {
        rc = srv_cli_report(&err);
        goto out;
    }
    struct gal_err ge;
    if (gal_import_begin(s, &ge)) {
        fprintf(stderr, "visiond: %s\n", ge.msg);
        rc = 1;
        goto out;
    }
    size_t np = 0;
    char **people = list_dir(dir, &np);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, people[i]);
        size_t nf = 0;
        char **files = list_dir(path, &nf);
        subjects += nf > 0;
        for (size_t k = 0; rc == 0 && k < nf; k++) {
            char file[8192 + 256];
            snprintf(file, sizeof file, "%s/%s", path, files[k]);
            struct eng_image img = {0};
            struct proto_verify_face vf;
            struct proto_face_timing t = {0};
            struct gal_face f = {0};
            const struct eng_decode_opts dopts = {.apply_exif = 1};
            if (eng_image_load(file, &dopts, &img, NULL, &err)) {
                proto_err_from_eng(&e, &err, "image");
                rc = 1;
            } else if (srv_face_verify_image(c.models, c.ctx, &img, &c.v, c.faces, SRV_MAX_FACES, f.emb, &vf, &t,
                                             "image", &e)) {
                rc = 1;
            } else if (vf.detected && !vf.fallback && vf.faces_in_image > 1) { /* a fallback takes the best */
                proto_err_set(&e, PROTO_ERR_MULTIPLE_FACES, NULL, "%d faces in the photo: one face a photo",
                              vf.faces_in_image);
                rc = 1;
            }
            eng_image_release(&img);
            if (rc) {
                fprintf(stderr, "%svisiond: %s: %s: nothing enrolled\n", tty ? "\n" : "", file, e.msg);
                break;
            }
            memcpy(f.fingerprint, gal_store_fingerprint(s), sizeof f.fingerprint);
            if (vf.detected) {
                f.det_score = vf.det_score;
                f.box[0] = vf.box.x1, f.box[1] = vf.box.y1, f.box[2] = vf.box.x2, f.box[3] = vf.box.y2;
            }
            if (gal_import_face(s, people[i], &f, &ge)) {
                fprintf(stderr, "%svisiond: %s: %s: nothing enrolled\n", tty ? "\n" : "", file, ge.msg);
                rc = 1;
            }
            if (tty && ++done % 10 == 0)
                fprintf(stderr, "\renrolled %lld photos", done);
            else if (!tty)
                done++;
        }
        for (size_t k = 0; k < nf; k++)
            free(files[k]);
        free(files);
    }
    for (size_t i = 0; i < np; i++)
        free(people[i]);
    free(people);
    if (rc) {
        gal_import_abort(s);
    } else if (gal_import_commit(s, &ge)) {
        fprintf(stderr, "visiond: %s\n", ge.msg);
        rc = 1;
    } else {
        fprintf(stderr, "%svisiond: enrolled %lld photos of %zu subjects\n", tty ? "\r" : "", done, subjects);
    }
out:
    eng_face_ctx_free(c.ctx);
    eng_face_models_free(c.models);
    proto_verify_request_release(&c.v);
    return rc;
}
