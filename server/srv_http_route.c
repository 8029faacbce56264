/* srv_http_route.c - which row of the route table a request goes to: the method, the path matched
 * against each row's pattern (its "{name}" segments captured), the 405's Allow header. The rows and
 * what they do: srv_routes.c; the requests themselves: srv_http.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_http_internal.h"

enum srv_method srv_http_parse_method(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return SRV_GET;
    if (strcmp(m, "POST") == 0)
        return SRV_POST;
    if (strcmp(m, "OPTIONS") == 0)
        return SRV_OPTIONS;
    if (strcmp(m, "HEAD") == 0)
        return SRV_HEAD;
    if (strcmp(m, "PATCH") == 0)
        return SRV_PATCH;
    if (strcmp(m, "DELETE") == 0)
        return SRV_DELETE;
    return 0;
}

/* With caps, the "{name}" segments are captured (new strings: the caller frees them). On the DeepStack
 * dialect's rows one trailing slash is accepted ("/v1/vision/detection/", as DeepStack does); native
 * paths stay exact. */
int srv_http_path_matches(const struct srv_route *row, const char *path, struct srv_caps *caps)
{
    const char *pattern = row->path;
    int n = 0;
    while (*pattern && *path) {
        if (*pattern != '{') {
            if (*pattern++ != *path++)
                return 0;
            continue;
        }
        const char *close = strchr(pattern, '}');
        const size_t seg = strcspn(path, "/");
        if (!close || seg == 0 || n >= SRV_HTTP_MAX_CAPTURES)
            return 0;
        if (caps) {
            caps->v[n].name = pattern + 1;
            caps->v[n].name_len = (size_t)(close - pattern - 1);
            if (!(caps->v[n].value = strndup(path, seg)))
                return 0;
            caps->n = n + 1;
        }
        n++;
        pattern = close + 1;
        path += seg;
    }
    return !*pattern &&
           (!*path || (row->dialect == PROTO_DIALECT_DEEPSTACK && path[0] == '/' && !path[1]));
}

static int is_prefix_row(const struct srv_route *row)
{
    return row->methods == 0;
}

/* The row for path and method into *route. None: *route stays NULL, and *path_row says whether
 * another method would have matched (405 rather than 404); *dialect is then the prefix row's. */
void srv_http_find_route(const struct srv_http *h, const char *path, enum srv_method method,
                         const struct srv_route **route, const struct srv_route **path_row,
                         enum proto_dialect *dialect)
{
    for (int i = 0; i < h->n_routes; i++) {
        const struct srv_route *row = &h->routes[i];
        if (is_prefix_row(row)) {
            if (strncmp(path, row->path, strlen(row->path)) == 0 && !*path_row)
                *dialect = row->dialect;
            continue;
        }
        if (!srv_http_path_matches(row, path, NULL))
            continue;
        *dialect = row->dialect;
        if (!*path_row)
            *path_row = row;
        if ((row->methods & method) || (method == SRV_OPTIONS && !*route))
            *route = row; /* OPTIONS: the first row of the path, for its preflight */
        if (row->methods & method)
            break;
    }
}

/* "GET, HEAD, OPTIONS": the methods the rows of path answer, for the Allow header a
 * 405 must carry. */
void srv_http_allowed_methods(const struct srv_http *h, const char *path, char *buf, size_t size)
{
    static const struct {
        enum srv_method method;
        const char *name;
    } names[] = {{SRV_GET, "GET"},     {SRV_HEAD, "HEAD"},       {SRV_POST, "POST"},
                 {SRV_PATCH, "PATCH"}, {SRV_DELETE, "DELETE"}, {SRV_OPTIONS, "OPTIONS"}};
    unsigned methods = SRV_OPTIONS;
    for (int i = 0; i < h->n_routes; i++)
        if (!is_prefix_row(&h->routes[i]) && srv_http_path_matches(&h->routes[i], path, NULL))
            methods |= h->routes[i].methods;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && used < size; i++)
        if (methods & names[i].method)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", names[i].name);
}
