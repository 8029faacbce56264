/* srv_cli.h - the command-line tools: `visiond detect`, `visiond forward`, `visiond bench` (srv_cli.c),
 * `visiond faces`, `visiond verify` and `visiond bench --faces` (srv_cli_faces.c), and
 * `visiond bench --sgemm` (srv_cli_sgemm.c).
 * Each returns the process exit status (0 ok, 1 failure, 2 usage error); main() exits with it. */
#ifndef SRV_CLI_H
#define SRV_CLI_H

int srv_cli_detect(int argc, char **argv);
int srv_cli_forward(int argc, char **argv);
int srv_cli_bench(int argc, char **argv); /* with --faces: srv_cli_bench_faces */
int srv_cli_faces(int argc, char **argv);
int srv_cli_verify(int argc, char **argv);
/* `visiond gallery export|import FILE` (srv_cli_gallery.c). */
int srv_cli_gallery(int argc, char **argv);
/* `visiond identify IMAGE...` against a gallery (srv_cli_identify.c). */
int srv_cli_identify(int argc, char **argv);
/* `visiond gallery enroll DIR` (srv_cli_identify.c): DIR/<name>/<photos> into s, one transaction. */
struct gal_store;
int srv_cli_gallery_enroll(struct gal_store *s, const char *dir, const char *models, int aligned);
int srv_cli_bench_faces(int argc, char **argv);
int srv_cli_bench_sgemm(int argc, char **argv); /* srv_cli_sgemm.c */

#endif
