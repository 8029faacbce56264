/* srv_keys.c - the API keys file (srv_keys.h): parsing, and the constant-time check of a key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_config.h" /* srv_config_trim */
#include "srv_keys.h"
#include "srv_sha256.h"

struct srv_keys {
    size_t n;
    unsigned char (*hash)[SRV_SHA256_SIZE];
    unsigned char *scope; /* enum srv_scope of each key */
};

/* Checks a key's shape without ever quoting it. */
static int check_key(const char *key, size_t len, const char *path, int lineno, struct eng_err *err)
{
    if (len < SRV_KEYS_MIN_LEN)
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                "API key too short (%zu characters; at least %d)", len, SRV_KEYS_MIN_LEN);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] >= 0x7f)
            return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                    "API key contains a space or non-printable character (at offset %zu); "
                                    "keys are printable ASCII",
                                    i);
    return 0;
}

#define KEY_HASH_PREFIX "sha256:"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A "sha256:<64 hex digits>" line: the key's digest, so the file need not hold the key itself. */
static int parse_key_hash(const char *line, size_t len, unsigned char out[SRV_SHA256_SIZE],
                          const char *path, int lineno, struct eng_err *err)
{
    const size_t plen = strlen(KEY_HASH_PREFIX);
    if (len != plen + 2 * SRV_SHA256_SIZE)
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                "a hashed key is \"" KEY_HASH_PREFIX "\" and 64 hex digits (%zu found)",
                                len - plen);
    for (size_t i = 0; i < SRV_SHA256_SIZE; i++) {
        const int hi = hex_digit(line[plen + 2 * i]), lo = hex_digit(line[plen + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                    "a hashed key is \"" KEY_HASH_PREFIX "\" and 64 hex digits (not hex at "
                                    "offset %zu)", plen + 2 * i + (hi < 0 ? 0 : 1));
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The scope after a key on its line: "" (inference), "scope=inference" or "scope=admin". */
static int parse_scope(const char *s, unsigned char *out, const char *path, int lineno, struct eng_err *err)
{
    if (!*s || strcmp(s, "scope=inference") == 0)
        *out = SRV_SCOPE_INFERENCE;
    else if (strcmp(s, "scope=admin") == 0)
        *out = SRV_SCOPE_ADMIN;
    else
        return eng_err_set_line(err, ENG_ERR_INVALID, path, lineno,
                                "after the key, only scope=admin or scope=inference may follow");
    return 0;
}

static int grow(struct srv_keys *keys, size_t *cap, const char *path, struct eng_err *err)
{
    if (keys->n < *cap)
        return 0;
    const size_t new_cap = *cap ? 2 * *cap : 8;
    void *h = realloc(keys->hash, new_cap * sizeof *keys->hash);
    if (h)
        keys->hash = h;
    void *s = h ? realloc(keys->scope, new_cap) : NULL;
    if (!s)
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
    keys->scope = s;
    *cap = new_cap;
    return 0;
}

/* Adds one line's key (plain, hashed here, or already a "sha256:" digest) and its scope to keys. */
static int add_key(struct srv_keys *keys, size_t *cap, char *line, const char *path, int lineno,
                   struct eng_err *err)
{
    const size_t len = strcspn(line, " \t");
    const char *key = line;
    const int hashed = strncmp(key, KEY_HASH_PREFIX, strlen(KEY_HASH_PREFIX)) == 0;
    if (!hashed && check_key(key, len, path, lineno, err) < 0)
        return -1;
    if (grow(keys, cap, path, err) ||
        parse_scope(srv_config_trim(line + len), &keys->scope[keys->n], path, lineno, err))
        return -1;
    if (hashed)
        return parse_key_hash(key, len, keys->hash[keys->n++], path, lineno, err);
    srv_sha256(key, len, keys->hash[keys->n++]);
    return 0;
}

struct srv_keys *srv_keys_load(const char *path, struct eng_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        eng_err_set(err, ENG_ERR_IO, path, "cannot open API keys file: %s", strerror(errno));
        return NULL;
    }
    struct srv_keys *keys = calloc(1, sizeof *keys);
    if (!keys) {
        fclose(f);
        eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory");
        return NULL;
    }
    size_t cap = 0, line_cap = 0;
    char *line = NULL;
    ssize_t n;
    int lineno = 0, rc = 0;
    errno = 0;
    while (rc == 0 && (n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if (strlen(line) != (size_t)n) {
            rc = eng_err_set_line(err, ENG_ERR_INVALID, path, lineno, "NUL byte in line");
            break;
        }
        char *key = srv_config_trim(line);
        if (!*key || *key == '#')
            continue;
        rc = add_key(keys, &cap, key, path, lineno, err);
    }
    if (rc == 0 && ferror(f))
        rc = eng_err_set(err, ENG_ERR_IO, path, "cannot read API keys file: %s", strerror(errno ? errno : EIO));
    if (rc == 0 && keys->n == 0)
        rc = eng_err_set(err, ENG_ERR_INVALID, path, "no API keys in the file (one key per line)");
    if (line)
        explicit_bzero(line, line_cap);
    free(line);
    fclose(f);
    if (rc < 0) {
        srv_keys_free(keys);
        return NULL;
    }
    return keys;
}

void srv_keys_free(struct srv_keys *keys)
{
    if (!keys)
        return;
    if (keys->hash)
        explicit_bzero(keys->hash, keys->n * sizeof *keys->hash);
    free(keys->hash);
    free(keys->scope);
    free(keys);
}

size_t srv_keys_count(const struct srv_keys *keys)
{
    return keys ? keys->n : 0;
}

enum srv_scope srv_keys_scope(const struct srv_keys *keys, const char *presented_key)
{
    if (!keys || !presented_key)
        return SRV_SCOPE_PUBLIC;
    unsigned char h[SRV_SHA256_SIZE];
    srv_sha256(presented_key, strlen(presented_key), h);
    unsigned scope = 0;
    for (size_t i = 0; i < keys->n; i++) {
        unsigned diff = 0;
        for (size_t j = 0; j < SRV_SHA256_SIZE; j++)
            diff |= (unsigned)(h[j] ^ keys->hash[i][j]);
        const unsigned match = ((diff - 1u) >> 8) & 1u; /* 1 iff diff == 0 (diff <= 255), no branch */
        scope |= (0u - match) & keys->scope[i];
    }
    explicit_bzero(h, sizeof h);
    return (enum srv_scope)scope;
}

bool srv_keys_check(const struct srv_keys *keys, const char *presented_key)
{
    return srv_keys_scope(keys, presented_key) != SRV_SCOPE_PUBLIC;
}
