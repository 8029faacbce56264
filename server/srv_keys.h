/* srv_keys.h - the API keys file.
 *
 * The keys file holds one key per line; blank lines and lines starting with '#' are ignored, and
 * surrounding whitespace is trimmed. A line is either "sha256:" and the 64 hex digits of the key's
 * SHA-256 (`printf %s KEY | sha256sum`: the file then holds no key), or the key itself, at least
 * SRV_KEYS_MIN_LEN printable characters; then, after white space, an optional scope: `scope=admin`
 * (every route, the gallery's administration too) or `scope=inference` (the default: the inference
 * routes). Only the SHA-256 of each key is kept in memory; the line buffers are wiped. No function
 * here writes a key (or any part of one) into an error message. */
#ifndef SRV_KEYS_H
#define SRV_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "eng_err.h"
#include "srv_http.h" /* enum srv_scope */

#define SRV_KEYS_MIN_LEN 16

struct srv_keys;

/* Reads the keys file. Returns a new key set (free with srv_keys_free), or NULL with *err filled:
 * ENG_ERR_IO if it cannot be read, ENG_ERR_INVALID (where = file:line) for a too short key or a file
 * without keys, ENG_ERR_NOMEM. */
struct srv_keys *srv_keys_load(const char *path, struct eng_err *err);

/* NULL is a no-op. */
void srv_keys_free(struct srv_keys *keys);

/* Number of keys loaded. */
size_t srv_keys_count(const struct srv_keys *keys);

/* True if presented_key (NUL-terminated; NULL counts as absent) is one of the keys. Hashes it and
 * compares the digest with every stored hash without stopping at a match or mismatch, so the time
 * taken does not depend on which key, or how much of a key, matched. Thread-safe (read-only). */
bool srv_keys_check(const struct srv_keys *keys, const char *presented_key);

/* The scope of presented_key: SRV_SCOPE_INFERENCE or SRV_SCOPE_ADMIN, or SRV_SCOPE_PUBLIC (0) if it is
 * not one of the keys. In the same constant time as srv_keys_check. Thread-safe (read-only). */
enum srv_scope srv_keys_scope(const struct srv_keys *keys, const char *presented_key);

#endif

