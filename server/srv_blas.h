/* srv_blas.h - make sure OpenBLAS runs its best kernels for this CPU, and set its thread count. */
#ifndef SRV_BLAS_H
#define SRV_BLAS_H

/* Debian's OpenBLAS 0.3.21 does not know recent Xeons and falls back to generic kernels, up to 5x
 * slower. The core type is read only when the library loads, so if the active core is generic but the
 * CPU has AVX-512 or AVX2, this sets OPENBLAS_CORETYPE and re-executes the program (once; an explicit
 * OPENBLAS_CORETYPE from the user is respected). Returns only if no re-exec was needed or it failed. */
void srv_blas_ensure_best_core(char **argv);

/* The active OpenBLAS core name (borrowed, static). */
const char *srv_blas_core(void);

/* Threads OpenBLAS may use for one GEMM. */
void srv_blas_set_threads(int n);

#endif
