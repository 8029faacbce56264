/* srv_cli_gallery.c - `visiond gallery export|import FILE`: the gallery as JSON Lines
 * (proto_gallery.h has the format), online while daemons serve it.
 *
 * export reads one consistent snapshot (one read transaction: SQLite's WAL snapshot, PostgreSQL's
 * REPEATABLE READ) and writes it to FILE ('-': stdout) through a temporary file renamed at the end, so
 * FILE is never half-written. import checks the whole file first (format, model fingerprint, every line,
 * the end line's count: a truncated file is refused) and then writes it in one transaction: all or
 * nothing. Daemons on the same gallery notice the import through the change sequence. On a terminal, a
 * progress line counts the faces. Exit 0, 1 on failure (message on stderr), 2 for bad usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gal.h"
#include "proto_gallery.h"
#include "srv_cli.h"
#include "srv_gallery.h"

static const char usage_text[] =
    "usage: visiond gallery export FILE|- [--gallery SPEC] [--data-dir DIR] [--models-dir DIR]\n"
    "       visiond gallery import FILE   [--gallery SPEC] [--data-dir DIR] [--models-dir DIR]\n"
    "       visiond gallery enroll DIR    [--aligned] [--gallery SPEC] [--data-dir DIR] [--models-dir DIR]\n"
    "  The face gallery as JSON Lines (the recognition model's fingerprint first). --gallery: sqlite:PATH\n"
    "  or postgres://...; default sqlite:DATA_DIR/gallery.db (--data-dir, default ./data). export is a\n"
    "  consistent snapshot while daemons serve; import adds every face of FILE in one transaction, or none.\n"
    "  enroll: DIR/<subject name>/<photos>, one face a photo (--aligned: 150x150 chips), all or none.\n";

struct export_ctx {
    FILE *out;
    long long n;
    int tty;
};

static int export_face(void *user, const char *name, const struct gal_face *f, struct gal_err *err)
{
    struct export_ctx *x = user;
    const double box[4] = {f->box[0], f->box[1], f->box[2], f->box[3]};
    char *line = proto_gallery_export_face(name, f->emb, f->det_score, box, f->created_ms);
    if (!line || fprintf(x->out, "%s\n", line) < 0) {
        free(line);
        return gal_err_set(err, GAL_ERR_NOMEM, NULL, "cannot write the export");
    }
    free(line);
    if (x->tty && ++x->n % 10000 == 0)
        fprintf(stderr, "\rexported %lld faces", x->n);
    else if (!x->tty)
        x->n++;
    return 0;
}

static int do_export(struct gal_store *s, const char *path)
{
    char tmp[4200];
    FILE *out = stdout;
    if (strcmp(path, "-") != 0) {
        snprintf(tmp, sizeof tmp, "%s.partial", path);
        if (!(out = fopen(tmp, "w"))) {
            perror(tmp);
            return 1;
        }
    }
    struct export_ctx x = {out, 0, isatty(2)};
    struct gal_err err;
    char *head = proto_gallery_export_header(gal_store_fingerprint(s));
    int64_t seq;
    int rc = !head || fprintf(out, "%s\n", head) < 0 || gal_store_scan(s, export_face, &x, &seq, &err);
    free(head);
    char *end = rc ? NULL : proto_gallery_export_end(x.n);
    rc = rc || !end || fprintf(out, "%s\n", end) < 0 || fflush(out) != 0 || (out != stdout && fsync(fileno(out)));
    free(end);
    if (out != stdout && fclose(out) != 0)
        rc = 1;
    if (x.tty)
        fprintf(stderr, "\r");
    if (!rc && out != stdout && rename(tmp, path) != 0) {
        perror(path);
        rc = 1;
    }
    if (rc) {
        if (out != stdout)
            unlink(tmp);
        char line[600];
        fprintf(stderr, "visiond: export failed: %s\n", err.msg[0] ? gal_err_format(&err, line, sizeof line) : "write error");
        return 1;
    }
    fprintf(stderr, "visiond: exported %lld faces (change %lld)\n", x.n, (long long)seq);
    return 0;
}

/* Reads FILE twice: checked whole first, then written; one line at a time (no size limit). */
static int import_pass(struct gal_store *s, FILE *in, const char *path, int write, long long *n_out)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long lineno = 0, n = 0, end_n = -1;
    struct proto_err e = {0};
    struct gal_err ge = {0};
    int rc = 0, tty = isatty(2);
    rewind(in);
    while (rc == 0 && (len = getline(&line, &cap, in)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            fprintf(stderr, "visiond: %s:%lld: the file is cut short (no end of line)\n", path, lineno);
            rc = 1;
            break;
        }
        enum proto_gal_line_kind kind;
        char fp[65];
        struct proto_gal_import_face f;
        long long faces;
        if (proto_gallery_import_line(line, (size_t)len - 1, &kind, fp, &f, &faces, &e)) {
            fprintf(stderr, "visiond: %s:%lld: %s\n", path, lineno, e.msg);
            rc = 1;
        } else if ((lineno == 1) != (kind == PROTO_GAL_LINE_HEADER) || end_n >= 0) {
            fprintf(stderr, "visiond: %s:%lld: %s\n", path, lineno,
                    end_n >= 0 ? "a line after the end line" : "the first line must be the header");
            rc = 1;
        } else if (kind == PROTO_GAL_LINE_HEADER && strcmp(fp, gal_store_fingerprint(s)) != 0) {
            fprintf(stderr, "visiond: %s: made by another recognition model (fingerprint %.12s..., this "
                            "gallery's is %.12s...): nothing imported\n", path, fp, gal_store_fingerprint(s));
            rc = 1;
        } else if (kind == PROTO_GAL_LINE_END) {
            end_n = faces;
        } else if (kind == PROTO_GAL_LINE_FACE) {
            struct gal_face g = {0};
            memcpy(g.emb, f.emb, sizeof g.emb);
            memcpy(g.fingerprint, gal_store_fingerprint(s), sizeof g.fingerprint);
            g.det_score = (float)f.det_score;
            for (int k = 0; k < 4; k++)
                g.box[k] = (float)f.box[k];
            g.created_ms = f.created_ms;
            if ((write ? gal_import_face(s, f.name, &g, &ge) : gal_name_check(f.name, &ge) || gal_embedding_check(g.emb, &ge))) {
                char buf[600];
                fprintf(stderr, "visiond: %s:%lld: %s\n", path, lineno, gal_err_format(&ge, buf, sizeof buf));
                rc = 1;
            }
            n++;
            if (write && tty && n % 10000 == 0)
                fprintf(stderr, "\rimported %lld faces", n);
        }
    }
    free(line);
    if (rc == 0 && (end_n < 0 || end_n != n)) {
        fprintf(stderr, "visiond: %s: %s: nothing imported\n", path,
                end_n < 0 ? "no end line: the file is cut short" : "the end line's count differs from the faces read");
        rc = 1;
    }
    if (write && tty)
        fprintf(stderr, "\r");
    *n_out = n;
    return rc;
}

static int do_import(struct gal_store *s, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        return 1;
    }
    long long n = 0;
    struct gal_err err;
    int rc = import_pass(s, in, path, 0, &n);
    if (rc == 0 && gal_import_begin(s, &err) == 0) {
        rc = import_pass(s, in, path, 1, &n);
        if (rc)
            gal_import_abort(s);
        else if (gal_import_commit(s, &err))
            rc = -1;
    } else if (rc == 0) {
        rc = -1;
    }
    fclose(in);
    if (rc < 0) {
        char line[600];
        fprintf(stderr, "visiond: import failed: %s\n", gal_err_format(&err, line, sizeof line));
        return 1;
    }
    if (rc == 0)
        fprintf(stderr, "visiond: imported %lld faces\n", n);
    return rc;
}

int srv_cli_gallery(int argc, char **argv)
{
    static const struct option opts[] = {{"gallery", required_argument, NULL, 'g'},
                                          {"data-dir", required_argument, NULL, 'd'},
                                          {"models-dir", required_argument, NULL, 'm'},
                                          {"aligned", no_argument, NULL, 'a'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *gallery = NULL, *data_dir = "data", *models = "models";
    int c, aligned = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'g': gallery = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'm': models = optarg; break;
        case 'a': aligned = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (argc - optind != 2 || (strcmp(argv[optind], "export") != 0 && strcmp(argv[optind], "import") != 0 &&
                               strcmp(argv[optind], "enroll") != 0)) {
        fputs(usage_text, stderr);
        return 2;
    }
    char dir[4096], fp[GAL_FP_HEX + 1], spec[4200], why[600];
    snprintf(dir, sizeof dir, "%s/faces", models);
    if (srv_gallery_fingerprint(dir, fp, why, sizeof why)) {
        fprintf(stderr, "visiond: the recognition model: %s\n", why);
        return 1;
    }
    if (gallery)
        snprintf(spec, sizeof spec, "%s", gallery);
    else
        snprintf(spec, sizeof spec, "sqlite:%s/gallery.db", data_dir);
    struct gal_err err;
    struct gal_store *s = gal_store_open(spec, fp, &err);
    if (!s) {
        char line[600];
        fprintf(stderr, "visiond: %s\n", gal_err_format(&err, line, sizeof line));
        return 1;
    }
    const char *cmd = argv[optind], *arg = argv[optind + 1];
    int rc = strcmp(cmd, "export") == 0   ? do_export(s, arg)
             : strcmp(cmd, "import") == 0 ? do_import(s, arg)
                                          : srv_cli_gallery_enroll(s, arg, models, aligned);
    gal_store_free(s);
    return rc;
}
