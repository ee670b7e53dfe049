#!/usr/bin/env bash
# ThreadSanitizer run: builds the library and tools/tsan_train.c with clang
# -fsanitize=thread and runs two trainings (a CNN with Adam, an MLP with SGD)
# in two threads at once, each on its own tape; then compares them bitwise
# with the same trainings run one at a time (see tools/tsan_train.c).
#
# usage: tools/tsan.sh [steps]     (default 30)
# env: TSAN_BUILD (default build-tsan), CC (default clang)
# Exit status: 0 clean, 1 a race or a difference, 77 when clang's TSan
# runtime is missing (skipped).
#
# gemm.c's target_clones (an ifunc resolved during relocation, before the TSan
# runtime is up) crashes TSan builds before main (issue 11 item 11); until the
# kernels dispatch through a function pointer, tools/clang-lib.sh builds such a
# file without its multiversioning branch (the baseline kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/clang-lib.sh

export CC=${CC:-clang}
build=${TSAN_BUILD:-build-tsan}
if ! command -v "$CC" >/dev/null 2>&1 || ! tg_clang_can -fsanitize=thread -pthread; then
    echo "tsan: skipped ($CC with ThreadSanitizer not available)"
    exit 77
fi
cflags="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=thread -Iinclude -Ilib -pthread"
echo "==> tsan: building the library ($build)"
tg_clang_lib "$build" "$cflags"
"$CC" $cflags tools/tsan_train.c "$build/libtapegrad.a" -lm -o "$build/tsan_train"
echo "==> tsan: two trainings in two threads"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    "$build/tsan_train" "${1:-30}"
