/* fuzz_darknet_cfg.c - libFuzzer target for engine/darknet.c's cfg parser: the whole input is a .cfg
 * file. A parsed net must be internally consistent; a rejected one must say why and where. The parse is
 * the unprepared one the loader uses (eng_darknet_parse_cfg_unprepared): preparing the layers (Winograd
 * transform, packed weights) on a seed like yolov3-tiny.cfg writes ~100 MB per input, which made this
 * target 200x slower; fuzz_darknet_weights runs the preparation on every cfg it accepts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "darknet.h"
#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_warning(void *user, const char *where, const char *msg)
{
    (void)user;
    if (!where || !msg || !msg[0])
        abort(); /* every warning names its place and says something */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct eng_darknet_opts opts = {.warn = on_warning};
    struct eng_net *net = NULL;
    struct eng_err err;
    if (eng_darknet_parse_cfg_unprepared((const char *)data, size, "fuzz.cfg", &opts, &net, &err) == 0) {
        if (!net || net->n_layers <= 0 || net->n_heads < 0 || net->n_heads > ENG_NET_MAX_HEADS ||
            net->input.c != 3)
            abort();
        for (int i = 0; i < net->n_heads; i++)
            if (net->heads[i] < 0 || net->heads[i] >= net->n_layers)
                abort();
    } else if (net || err.kind == ENG_ERR_NONE || !err.msg[0]) {
        abort();
    }
    eng_net_free(net);
    return 0;
}
