/* kern.c - chooses the kernel set (kern.h) the processor runs. */
#include "kern.h"

const struct eng_kern *eng_kern_for(enum eng_isa isa)
{
    switch (isa) {
    case ENG_ISA_C:
        return &eng_kern_c;
#if ENG_KERN_X86
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0). */
    case ENG_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &eng_kern_avx2 : NULL;
    case ENG_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") ? &eng_kern_avx512 : NULL;
#endif
    default:
        return NULL;
    }
}

const struct eng_kern *eng_kern_best(void)
{
    for (int isa = ENG_ISA_COUNT - 1; isa > ENG_ISA_C; isa--) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (k)
            return k;
    }
    return &eng_kern_c;
}
