/* kern_avx512.c - the kernels of kern_isa.inc for AVX-512F: 16 floats a vector, 8 x 2 accumulators
 * of the 32 zmm registers in a pointwise tile. Chosen at run time (kern.c); empty off x86-64. */
#include "kern.h"

#if ENG_KERN_X86
#pragma GCC target("avx512f,avx2,fma")
#define KERN_VL 16
#define KERN_MB 8
#define KERN_GEMM_MR 6
#define KERN_GEMM_NV 4
#define KERN_TABLE eng_kern_avx512
#define KERN_ISA ENG_ISA_AVX512
#define KERN_NAME "avx512"
#include "kern_isa.inc"
#endif
