/* srv_config_value.c - one setting's value: parsed from text by its type, checked against its bounds
 * and its own check (addresses, model names, CORS origins), with messages naming where it came from. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srv_config_setting.h"

/* ---- value checks beyond type and bounds ---- */

int srv_config_check_bind(char *value, char *why, size_t why_size)
{
    unsigned char addr[16];
    if (strcasecmp(value, "localhost") == 0) {
        memcpy(value, "127.0.0.1", 10); /* same length; the HTTP layer wants a numeric address */
        return 0;
    }
    if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1)
        return 0;
    snprintf(why, why_size, "expected an IPv4 or IPv6 address (such as 127.0.0.1, 0.0.0.0, ::1) or localhost");
    return -1;
}

int srv_config_check_model_name(char *value, char *why, size_t why_size)
{
    for (const char *p = value; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            snprintf(why, why_size, "expected a model folder name (letters, digits, '-', '_', '.')");
            return -1;
        }
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0) {
        snprintf(why, why_size, "expected a model folder name, not '%s'", value);
        return -1;
    }
    return 0;
}

/* An origin as browsers send it: scheme://host[:port], no path; or "*". */
int srv_config_check_origin(char *value, char *why, size_t why_size)
{
    if (strcmp(value, "*") == 0)
        return 0;
    const char *host = NULL;
    if (strncasecmp(value, "http://", 7) == 0)
        host = value + 7;
    else if (strncasecmp(value, "https://", 8) == 0)
        host = value + 8;
    bool ok = host && *host && strlen(value) <= 200;
    for (const char *p = host; ok && *p; p++)
        if (*p == '/' || *p <= ' ' || *p == 0x7f || *p == '?' || *p == '#' || *p == '"' || *p == '\\')
            ok = false;
    if (!ok) {
        snprintf(why, why_size,
                 "expected origins like https://example.com or http://host:8123 (scheme, host, "
                 "optional port, no path), or *");
        return -1;
    }
    return 0;
}

/* ---- parsing one value ---- */

int srv_config_parse_int(const char *text, long long *out)
{
    if (!*text || isspace((unsigned char)*text))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Bytes: digits, optionally k/K, M or G (powers of 1024), optionally followed by "iB" or "B". */
static int parse_size(const char *text, long long *out)
{
    if (!isdigit((unsigned char)*text))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return -1;
    unsigned long long mul = 1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1ull << 10;
        end++;
        break;
    case 'M':
        mul = 1ull << 20;
        end++;
        break;
    case 'G':
        mul = 1ull << 30;
        end++;
        break;
    default:
        return -1;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end)
        return -1;
    if (v > (unsigned long long)LLONG_MAX / mul)
        return -1;
    *out = (long long)(v * mul);
    return 0;
}

int srv_config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

/* Writes a size the way a user would: 20M rather than 20971520 when exact. */
void srv_config_format_size(long long v, char *buf, size_t size)
{
    if (v > 0 && v % (1ll << 30) == 0)
        snprintf(buf, size, "%lldG", v >> 30);
    else if (v > 0 && v % (1ll << 20) == 0)
        snprintf(buf, size, "%lldM", v >> 20);
    else if (v > 0 && v % (1ll << 10) == 0)
        snprintf(buf, size, "%lldk", v >> 10);
    else
        snprintf(buf, size, "%lld", v);
}

void srv_config_format_bounds(const struct setting *s, char *buf, size_t size)
{
    char lo[32], hi[32];
    switch (s->type) {
    case T_SIZE:
        srv_config_format_size((long long)s->min, lo, sizeof lo);
        srv_config_format_size((long long)s->max, hi, sizeof hi);
        snprintf(buf, size, "%s..%s", lo, hi);
        break;
    case T_FLOAT:
        snprintf(buf, size, "%g..%g", s->min, s->max);
        break;
    default:
        snprintf(buf, size, "%lld..%lld", (long long)s->min, (long long)s->max);
        break;
    }
}

/* Splits a comma-separated list into a new NULL-terminated array of trimmed, non-empty items. */
static int parse_list(const struct setting *s, const char *text, const struct place *pl, union value *v,
                      struct eng_err *err)
{
    char *copy = strdup(text);
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    char **items = calloc(cap + 1, sizeof *items);
    if (!copy || !items) {
        free(copy);
        free(items);
        return srv_config_place_err(err, ENG_ERR_NOMEM, pl, s, "out of memory");
    }
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = srv_config_trim(tok);
        if (!*tok)
            continue;
        char why[200] = "";
        if (s->check && s->check(tok, why, sizeof why) < 0) {
            srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: bad item '%.80s': %s", s->name, tok, why);
            goto fail;
        }
        if (!(items[n] = strdup(tok))) {
            srv_config_place_err(err, ENG_ERR_NOMEM, pl, s, "out of memory");
            goto fail;
        }
        n++;
    }
    if (n < s->min || n > s->max) {
        srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: expected %lld..%lld comma-separated items, got %zu",
                  s->name, (long long)s->min, (long long)s->max, n);
        goto fail;
    }
    free(copy);
    v->list.items = items;
    v->list.n = n;
    return 0;
fail:
    free(copy);
    srv_config_free_list(items);
    return -1;
}

/* Parses `text` for setting s into *v (new memory for strings and lists). Errors name the place. */
int srv_config_parse_value(const struct setting *s, const char *text, const struct place *pl, union value *v,
                       struct eng_err *err)
{
    char bounds[80];
    srv_config_format_bounds(s, bounds, sizeof bounds);
    switch (s->type) {
    case T_INT:
    case T_LONG:
        if (srv_config_parse_int(text, &v->i) < 0 || v->i < s->min || v->i > s->max)
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: expected an integer in %s, got '%.80s'",
                             s->name, bounds, text);
        return 0;
    case T_SIZE:
        if (parse_size(text, &v->i) < 0 || v->i < s->min || v->i > s->max)
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s,
                             "%s: expected a size in bytes in %s (like 20971520, 512k, 20M, 1G), got '%.80s'",
                             s->name, bounds, text);
        return 0;
    case T_FLOAT: {
        char *end;
        errno = 0;
        v->f = strtod(text, &end);
        if (!*text || isspace((unsigned char)*text) || *end || errno || !isfinite(v->f) || v->f < s->min ||
            v->f > s->max)
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: expected a number in %s, got '%.80s'", s->name,
                             bounds, text);
        return 0;
    }
    case T_BOOL:
        if (srv_config_parse_bool(text, &v->b) < 0)
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s,
                             "%s: expected yes/no, true/false, on/off or 1/0, got '%.80s'", s->name, text);
        return 0;
    case T_ENUM:
        for (size_t i = 0; s->choices[i]; i++)
            if (strcasecmp(text, s->choices[i]) == 0)
                return v->i = (long long)i, 0;
        {
            char list[160] = "";
            for (size_t i = 0; s->choices[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         s->choices[i]);
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: expected one of %s, got '%.80s'", s->name, list,
                             text);
        }
    case T_STRING: {
        size_t len = strlen(text);
        if (len < s->min || len > s->max)
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: expected %lld..%lld characters, got %zu",
                             s->name, (long long)s->min, (long long)s->max, len);
        if (!(v->s = strdup(text)))
            return srv_config_place_err(err, ENG_ERR_NOMEM, pl, s, "out of memory");
        char why[200] = "";
        if (s->check && s->check(v->s, why, sizeof why) < 0) {
            free(v->s);
            return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: %s, got '%.80s'", s->name, why, text);
        }
        return 0;
    }
    case T_LIST:
        return parse_list(s, text, pl, v, err);
    }
    return srv_config_place_err(err, ENG_ERR_INVALID, pl, s, "%s: unknown type", s->name);
}

