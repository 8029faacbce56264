/* gal_f16.h - IEEE half precision (binary16) conversion for the gallery index (gal_index.c keeps a
 * half-precision copy of the embeddings for its scan; see docs/GALLERY.md).
 *
 * Round to nearest even from float, exact to float. The instruction set (AVX-512F, F16C, or portable C)
 * is chosen at first use, or forced by VISIOND_KERNELS=c|avx2|avx512 as for the engine's kernels; all
 * give bit-identical results. No allocation, no errors: the caller owns both buffers (n values each). */
#ifndef GAL_F16_H
#define GAL_F16_H

#include <stddef.h>
#include <stdint.h>

#define GAL_F16_DIM 128 /* the row length gal_f16_dots works on (GAL_DIM) */

void gal_f16_from_f32(uint16_t *dst, const float *src, size_t n);
void gal_f16_to_f32(float *dst, const uint16_t *src, size_t n);
/* dots[q * n + r] = queries[q] . rows[r], for the n rows (n x GAL_F16_DIM halves) and nq float queries
 * (nq x GAL_F16_DIM), accumulated in float (an estimate: the sets may differ in the last bits). */
void gal_f16_dots(float *dots, const uint16_t *rows, size_t n, const float *queries, size_t nq);
/* "avx512", "avx2" (F16C) or "c": the set chosen; static. */
const char *gal_f16_isa(void);
/* The portable C versions, whatever is chosen (tests compare the chosen set with them). */
void gal_f16_from_f32_c(uint16_t *dst, const float *src, size_t n);
void gal_f16_to_f32_c(float *dst, const uint16_t *src, size_t n);

#endif
