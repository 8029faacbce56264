/* eng_blas.c - OpenBLAS's thread count and core name (eng_blas.h). */
#include <pthread.h>
#include <stdatomic.h>

#include <cblas.h>

#include "eng_blas.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static atomic_int blas_threads_chosen;

static void blas_default(void)
{
    if (!atomic_load(&blas_threads_chosen))
        openblas_set_num_threads(1);
}

void eng_blas_init(void)
{
    pthread_once(&blas_once, blas_default);
}

void eng_blas_set_threads(int n)
{
    atomic_store(&blas_threads_chosen, 1);
    openblas_set_num_threads(n > 0 ? n : 1);
}

const char *eng_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}
