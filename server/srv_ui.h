/* srv_ui.h - the web page at / and its assets under /ui/ (issue 16), served from bytes compiled into
 * the binary (ui/ui.cmake generates the table from ui/ at configure time; nothing is read at run time).
 * The assets are static and owned by the binary; srv_ui_handler replies with copies. */
#ifndef SRV_UI_H
#define SRV_UI_H

#include <stddef.h>

struct srv_req;

struct srv_ui_asset {
    const char *path;         /* "/" for index.html, "/ui/NAME" for the others */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *etag;         /* quoted: a SHA-256 prefix of the bytes */
};

extern const struct srv_ui_asset srv_ui_assets[];
extern const int srv_ui_n_assets;

/* The asset served at `path`, or NULL. */
const struct srv_ui_asset *srv_ui_find(const char *path);

/* GET/HEAD / and /ui/...: the asset with the page's security and cache headers, 304 when
 * If-None-Match names its ETag, 404 (the API's error body) for an unknown asset or with `ui = off`. */
void srv_ui_handler(struct srv_req *req, void *app); /* app: a struct srv_app (its cfg->ui) */

#endif
