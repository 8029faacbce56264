/* fuzz_darknet_weights.c - libFuzzer target for engine/darknet.c's weights loader
 * (eng_darknet_load_weights_mem).
 *
 * Input: a cfg, a 0 byte, then the weights file. The loader checks the file's size against what the
 * cfg implies before reading anything, so pairing each weights image with its own cfg lets mutations
 * reach the per-layer reading (batch-norm folding, header versions) instead of stopping at the size
 * check. Inputs whose cfg does not parse are not the loader's business and are dropped. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return -1;
    const size_t cfg_len = (size_t)(nul - data);
    struct eng_net *net = NULL;
    if (eng_darknet_parse_cfg((const char *)data, cfg_len, "fuzz.cfg", NULL, &net, NULL))
        return -1;
    /* A copy of exactly the weights bytes, so ASan sees any read past the end of the file. */
    const size_t len = size - cfg_len - 1;
    unsigned char *weights = malloc(len ? len : 1);
    if (!weights) {
        eng_net_free(net);
        return 0;
    }
    memcpy(weights, nul + 1, len);
    struct eng_err err;
    if (eng_darknet_load_weights_mem(net, weights, len, "fuzz.weights", &err) != 0 &&
        (err.kind == ENG_ERR_NONE || !err.msg[0]))
        abort(); /* a failure must say why */
    free(weights);
    eng_net_free(net);
    return 0;
}
