/* eng_blas.h - the engine's use of OpenBLAS: its thread count and which core it runs.
 *
 * The engine parallelises layers itself (team.h); OpenBLAS's own threads would split a GEMM into
 * blocks whose edges depend on the thread count, and its Haswell kernels round those edge blocks
 * differently, so results would change with OPENBLAS_NUM_THREADS and differ between callers (the
 * daemon set one thread, the engine's test helpers did not: docs/FACES.md, "one answer"). So every
 * context the engine creates (eng_ctx_new) first makes OpenBLAS single-threaded, unless the
 * application chose a count with eng_blas_set_threads (the daemon's blas_threads setting). */
#ifndef ENG_BLAS_H
#define ENG_BLAS_H

/* Once per process: OpenBLAS to one thread, unless eng_blas_set_threads ran first. Thread-safe. */
void eng_blas_init(void);

/* Threads OpenBLAS may use for one GEMM (n < 1 means 1). Call before serving, not during a GEMM. */
void eng_blas_set_threads(int n);

/* The OpenBLAS core in use, e.g. "Haswell" (borrowed, static; "unknown" if the library does not say). */
const char *eng_blas_core(void);

#endif
