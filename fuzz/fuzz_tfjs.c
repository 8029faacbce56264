/* fuzz_tfjs.c - libFuzzer target for engine/tfjs.c's manifest loader (eng_tfjs_load).
 *
 * Input: a weights manifest (JSON), a 0 byte, then the bytes of the shard "a.bin". The loader only reads
 * files, so both go to a private temporary folder (in /dev/shm when there is one: no disk I/O per run);
 * the manifest names "a.bin" (fuzz/tfjs.dict), or other names that must then fail cleanly. A loaded table
 * must be consistent: every tensor findable by name with its own shape, the sizes adding up. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tfjs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], manifest[96], shard[96];

static void remove_dir(void)
{
    unlink(manifest);
    unlink(shard);
    rmdir(dir);
}

static int setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_tfjs.XXXXXX", base);
    if (!mkdtemp(dir))
        return -1;
    snprintf(manifest, sizeof manifest, "%s/model-weights_manifest.json", dir);
    snprintf(shard, sizeof shard, "%s/a.bin", dir);
    atexit(remove_dir);
    return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void check_table(const struct eng_tfjs_weights *w)
{
    size_t total = 0;
    for (int i = 0; i < w->n; i++) {
        const struct eng_tfjs_tensor *t = &w->tensors[i];
        size_t n = 1;
        for (int d = 0; d < t->rank; d++)
            n *= (size_t)t->shape[d];
        struct eng_err err;
        if (n != t->size || !t->data || t->data < w->data || t->data + t->size > w->data + w->total ||
            eng_tfjs_find(w, t->name) == NULL || !eng_tfjs_get(w, t->name, t->rank, t->shape, &err))
            abort();
        total += t->size;
    }
    if (total != w->total)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready && setup() == 0)
        ready = 1;
    if (!ready)
        abort(); /* no temporary folder: nothing can be tested */
    const uint8_t *nul = memchr(data, 0, size);
    const size_t mlen = nul ? (size_t)(nul - data) : size;
    if (write_file(manifest, data, mlen) || write_file(shard, nul ? nul + 1 : data, nul ? size - mlen - 1 : 0))
        abort();
    struct eng_tfjs_weights *w = NULL;
    struct eng_err err;
    if (eng_tfjs_load(manifest, &w, &err) == 0)
        check_table(w);
    else if (w || err.kind == ENG_ERR_NONE || !err.msg[0])
        abort();
    eng_tfjs_free(w);
    return 0;
}
