#!/usr/bin/env bash
# Sourced by tools/fuzz/run.sh and tools/tsan.sh: builds the library's sources
# (every lib/**/*.c, as the meson files list them) with clang and a tool's own
# flags into one static archive. Without meson, so that each tool picks its
# sanitizers and per-file workarounds freely.
#
#   tg_clang_lib OUTDIR CFLAGS...   ->  OUTDIR/libtapegrad.a
#
# TG_CLANG_JOBS (default 2) files compile at once. CFLAGS must not contain
# spaces inside one flag.

# True when clang can compile and link a program with these flags (for
# example -fsanitize=fuzzer, which needs clang's runtime package). Add
# -DTG_PROBE_FUZZER for a fuzzer target (libFuzzer brings its own main).
tg_clang_can() {
    local tmp status
    tmp=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; return (int)n & 0; }' \
        '#ifndef TG_PROBE_FUZZER' 'int main(void) { return 0; }' '#endif' >"$tmp/probe.c"
    "${CC:-clang}" "$@" "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1 && "$tmp/probe" \
        -runs=0 >/dev/null 2>&1
    status=$?
    rm -rf "$tmp"
    return $status
}

tg_clang_lib() {
    local out=$1
    shift
    # Up to date: same flags, and no source or header newer than the archive.
    if [ -f "$out/libtapegrad.a" ] && [ "$(cat "$out/flags" 2>/dev/null)" = "$*" ] &&
        [ -z "$(find lib include tools/clang-lib.sh -newer "$out/libtapegrad.a" -print -quit)" ]; then
        return 0
    fi
    rm -rf "$out/obj"
    mkdir -p "$out/obj"
    # The kernels are built as meson builds them (lib/kernels/meson.build):
    # with -ffp-contract=off, so every kernel gives the same bytes.
    find lib -name '*.c' | sort |
        TG_CC="${CC:-clang}" TG_FLAGS="$*" TG_OBJ="$out/obj" xargs -P "${TG_CLANG_JOBS:-2}" -n 1 \
            sh -c 'extra=""; case "$0" in lib/kernels/*) extra=-ffp-contract=off;; esac;
                   obj="$TG_OBJ/$(echo "$0" | tr / _).o";
                   exec $TG_CC $TG_FLAGS $extra -c "$0" -o "$obj"' || return 1
    rm -f "$out/libtapegrad.a"
    ar rcs "$out/libtapegrad.a" "$out"/obj/*.o
    printf '%s' "$*" >"$out/flags"
}
