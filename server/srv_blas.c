#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_blas.h"
#include "srv_blas.h"

#define REEXEC_GUARD "VISIOND_BLAS_REEXEC"

static const char *best_core_for_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

static int core_is_generic(const char *core)
{
    static const char *generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                    "Atom", "Katmai", "Coppermine", "Northwood", "Banias"};
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (strcmp(core, generic[i]) == 0)
            return 1;
    return 0;
}

void srv_blas_ensure_best_core(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv(REEXEC_GUARD))
        return;
    const char *best = best_core_for_cpu();
    if (!best || !core_is_generic(srv_blas_core()))
        return;
    setenv("OPENBLAS_CORETYPE", best, 1);
    setenv(REEXEC_GUARD, "1", 1);
    /* The resolved path keeps the process name (ps, top) "visiond"; /proc/self/exe would name it "exe".
     * The latter stays as the fallback for a binary replaced on disk since it started. */
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        execv(path, argv);
    }
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the generic kernels rather than not at all. */
    unsetenv("OPENBLAS_CORETYPE");
}

const char *srv_blas_core(void)
{
    return eng_blas_core();
}

void srv_blas_set_threads(int n)
{
    eng_blas_set_threads(n);
}
