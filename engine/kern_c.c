/* kern_c.c - the kernels of kern_isa.inc for any processor: SSE2 on x86-64 (4 floats a vector),
 * the compiler's generic vectors elsewhere. The fallback that makes the binary run everywhere. */
#define KERN_VL 4
#define KERN_MB 4
#define KERN_TABLE eng_kern_c
#define KERN_ISA ENG_ISA_C
#define KERN_NAME "c"
#include "kern_isa.inc"
