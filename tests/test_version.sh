#!/bin/sh
# test_version.sh - `visiond --version` names the build: version, the git commit built (from
# cmake/version.cmake, regenerated at every build), the build type, the kernel set and the BLAS core.
#
# usage: sh tests/test_version.sh path/to/visiond   (from the project root, as ctest runs it)
set -u
VISIOND=${1:?usage: sh tests/test_version.sh path/to/visiond}
out=$("$VISIOND" --version) || { echo "FAIL --version exits $?"; exit 1; }
failed=0
fail() { echo "FAIL $*"; echo "$out" | sed 's/^/    /'; failed=1; }

version=$(sed -n 's/^project(visiond VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
first=$(echo "$out" | sed -n 1p)
case "$first" in
"visiond $version (commit "*", "*" build)") ;;
*) fail "first line is not 'visiond $version (commit ..., TYPE build)': $first" ;;
esac
commit=$(git rev-parse --short=12 HEAD 2>/dev/null)
if [ -n "$commit" ]; then
    case "$first" in
    *"(commit $commit"*) ;;
    *) fail "the commit is not HEAD's ($commit): $first" ;;
    esac
fi
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$(dirname "$VISIOND")/CMakeCache.txt" 2>/dev/null)
[ -z "$type" ] || case "$first" in *", $type build)") ;; *) fail "the build type is not $type: $first" ;; esac
echo "$out" | grep -q -E '^kernels: (c|avx2|avx512) ' || fail "no 'kernels: SET' line"
echo "$out" | grep -q -E '^blas: OpenBLAS, core [A-Za-z0-9]+' || fail "no 'blas: OpenBLAS, core NAME' line"
[ "$failed" -eq 0 ] && echo "test_version: ok: $first"
exit "$failed"
