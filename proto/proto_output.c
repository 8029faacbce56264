/* proto_output.c - the process-wide JSON output precision (proto_output.h). */
#include <stdatomic.h>
#include <string.h>

#include "proto_output.h"

static atomic_int precision; /* an enum proto_precision */

void proto_set_precision(enum proto_precision p)
{
    atomic_store_explicit(&precision, (int)p, memory_order_relaxed);
}

enum proto_precision proto_get_precision(void)
{
    return (enum proto_precision)atomic_load_explicit(&precision, memory_order_relaxed);
}

int proto_precision_parse(const char *name, enum proto_precision *p)
{
    if (strcmp(name, "rounded") == 0)
        *p = PROTO_PRECISION_ROUNDED;
    else if (strcmp(name, "full") == 0)
        *p = PROTO_PRECISION_FULL;
    else
        return -1;
    return 0;
}
