/* srv_sha256.h - SHA-256 (FIPS 180-4), for hashing API keys. No other hashing in visiond needs it.
 *
 * Usage: either srv_sha256() on one buffer, or init / update (any number of times) / final.
 * The context is plain data on the caller's stack; functions are thread-safe on distinct contexts. */
#ifndef SRV_SHA256_H
#define SRV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SRV_SHA256_SIZE 32 /* digest bytes */

struct srv_sha256 {
    uint32_t state[8];
    uint64_t total;        /* bytes hashed so far */
    unsigned char block[64];
    size_t used;           /* bytes waiting in block */
};

void srv_sha256_init(struct srv_sha256 *ctx);
void srv_sha256_update(struct srv_sha256 *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context (it held message bytes). */
void srv_sha256_final(struct srv_sha256 *ctx, unsigned char out[SRV_SHA256_SIZE]);

/* One-shot digest of data[0..len). */
void srv_sha256(const void *data, size_t len, unsigned char out[SRV_SHA256_SIZE]);

#endif
