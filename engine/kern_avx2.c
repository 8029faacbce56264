/* kern_avx2.c - the kernels of kern_isa.inc for AVX2 + FMA: 8 floats a vector, 4 x 2 accumulators
 * of the 16 ymm registers in a pointwise tile. Chosen at run time (kern.c); empty off x86-64. */
#include "kern.h"

#if ENG_KERN_X86
#pragma GCC target("avx2,fma")
#define KERN_VL 8
#define KERN_MB 4
#define KERN_GEMM_MR 6
#define KERN_GEMM_NV 2
#define KERN_TABLE eng_kern_avx2
#define KERN_ISA ENG_ISA_AVX2
#define KERN_NAME "avx2"
#include "kern_isa.inc"
#endif
