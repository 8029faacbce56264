#!/bin/sh
# test_hardening.sh - checksec-style checks of the Release binary (CMakeLists.txt's VISIOND_HARDEN_*):
# a position-independent executable, full RELRO (GNU_RELRO + BIND_NOW), no executable stack, no text
# relocations, the stack protector and fortified libc calls linked in, and every compilation unit
# of our own sources built with -fstack-protector-strong and -fstack-clash-protection (from the
# DW_AT_producer of its debug info).
#
# usage: sh tests/test_hardening.sh path/to/visiond
# Exits 77 (skipped) for builds that are not hardened on purpose: Asan, Tsan, Valgrind, Debug.
set -u

VISIOND=${1:?usage: sh tests/test_hardening.sh path/to/visiond}
CACHE=$(dirname "$VISIOND")/CMakeCache.txt
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$CACHE" 2>/dev/null)
case "$type" in
Release | RelWithDebInfo) ;;
*)
    echo "test_hardening: skipped: build type '$type' is not hardened"
    exit 77
    ;;
esac
command -v readelf >/dev/null || { echo "test_hardening: readelf missing (binutils)" >&2; exit 1; }

failures=0
check() { # check NAME STATUS: one line per property
    if [ "$2" -eq 0 ]; then
        echo "ok   $1"
    else
        echo "FAIL $1" >&2
        failures=$((failures + 1))
    fi
}

T=$(mktemp -d "${TMPDIR:-/tmp}/visiond-harden.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
readelf -hW "$VISIOND" >"$T/header" && readelf -lW "$VISIOND" >"$T/segments" &&
    readelf -dW "$VISIOND" >"$T/dynamic" && readelf --dyn-syms -W "$VISIOND" >"$T/dynsym" ||
    { echo "test_hardening: readelf failed on $VISIOND" >&2; exit 1; }

grep -q 'Type: *DYN' "$T/header" && grep -q 'FLAGS_1.*PIE' "$T/dynamic"
check "PIE (position-independent executable)" $?
grep -q 'GNU_RELRO' "$T/segments"
check "RELRO segment" $?
grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' "$T/dynamic"
check "BIND_NOW (full RELRO: GOT read-only after start)" $?
grep 'GNU_STACK' "$T/segments" | grep -Eq ' RW +0x'
check "non-executable stack (GNU_STACK RW, not RWE)" $?
! grep -q 'TEXTREL' "$T/dynamic"
check "no text relocations" $?
grep -q ' __stack_chk_fail' "$T/dynsym"
check "stack protector (__stack_chk_fail)" $?
fortified=$(grep -Eo ' __[a-z_]+_chk\b' "$T/dynsym" | grep -v __stack_chk_fail | sort -u | wc -l)
[ "$fortified" -ge 3 ]
check "fortified libc calls ($fortified __*_chk functions)" $?

# Each compilation unit's producer string holds the flags it was built with; ours are the CUs
# whose name is under the source tree.
src=$(cd "$(dirname "$0")/.." && pwd)
readelf --debug-dump=info "$VISIOND" 2>/dev/null | awk -v src="$src/" '
    /DW_TAG_compile_unit/ { prod = ""; inside = 1 }
    inside && /DW_AT_producer/ { prod = $0 }
    inside && /DW_AT_name/ {
        inside = 0
        name = $NF
        if (index(name, src) != 1) next
        n++
        if (prod !~ /-fstack-protector-strong/ || prod !~ /-fstack-clash-protection/) {
            print "  built without the hardening flags: " name > "/dev/stderr"
            bad++
        }
    }
    END { printf "%d %d\n", n, bad }' >"$T/cus"
read -r units unhardened <"$T/cus"
[ "$units" -ge 20 ] && [ "$unhardened" -eq 0 ]
check "all $units of our compilation units built with stack protector + clash protection" $?

[ "$failures" -eq 0 ] || { echo "test_hardening: $failures check(s) failed" >&2; exit 1; }
echo "test_hardening: all checks passed"
