/* srv_ui.c - serves the compiled-in web page (srv_ui.h). */
#include "srv_ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_app.h"
#include "srv_config.h"
#include "srv_http.h"

/* The page runs no inline script and fetches nothing but its own origin (issue 16's policy). */
#define UI_CSP                                                                                       \
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'; "    \
    "base-uri 'none'"

const struct srv_ui_asset *srv_ui_find(const char *path)
{
    for (int i = 0; i < srv_ui_n_assets; i++)
        if (strcmp(srv_ui_assets[i].path, path) == 0)
            return &srv_ui_assets[i];
    return NULL;
}

/* If-None-Match: "*" or a comma-separated list of (possibly weak) tags. */
static int etag_matches(const char *header, const char *etag)
{
    if (!header)
        return 0;
    if (strcmp(header, "*") == 0)
        return 1;
    const size_t n = strlen(etag);
    for (const char *p = header; (p = strstr(p, etag)); p += n) {
        const char *end = p + n;
        if (*end == '\0' || *end == ',' || *end == ' ')
            return 1;
    }
    return 0;
}

void srv_ui_handler(struct srv_req *req, void *app)
{
    const struct srv_app *gen = app;
    const char *file = srv_req_path_param(req, "file"); /* NULL: the row of "/" */
    char path[256];
    const int n = snprintf(path, sizeof path, "/ui/%s", file ? file : "");
    const struct srv_ui_asset *a = gen->cfg->ui != SRV_UI_ON || n >= (int)sizeof path ? NULL
                                   : srv_ui_find(file ? path : "/");
    if (!a) {
        srv_req_reply_code(req, PROTO_ERR_NOT_FOUND, NULL, "no such route");
        return;
    }
    /* no-cache: the browser revalidates with the ETag each time, so an upgraded daemon's page is
     * never mixed with a cached older script. */
    const char *const headers[] = {"Content-Security-Policy", UI_CSP,
                                   "X-Content-Type-Options", "nosniff",
                                   "Referrer-Policy", "no-referrer",
                                   "Cache-Control", "no-cache",
                                   "ETag", a->etag,
                                   NULL};
    if (etag_matches(srv_req_header(req, "If-None-Match"), a->etag)) {
        srv_req_reply(req, 304, NULL, NULL, 0, headers);
        return;
    }
    char *copy = malloc(a->len ? a->len : 1);
    if (!copy) {
        srv_req_reply_code(req, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    memcpy(copy, a->data, a->len);
    srv_req_reply(req, 200, a->content_type, copy, a->len, headers);
}
