#!/usr/bin/env bash
# ThreadSanitizer run, in two parts:
#  1. two trainings (a CNN with Adam, an MLP with SGD) in two user threads at
#     once, each on its own tape, compared bitwise with the same trainings run
#     one at a time (tools/tsan_train.c), with the library built by
#     tools/clang-lib.sh;
#  2. the suites that drive the kernels' thread pool (check_threads: pool, CNN
#     training with 1-3 threads; check_kernels: GEMM with 1-3 threads;
#     check_nn: training), in a meson build with -Db_sanitize=thread.
# Both also show that the kernel choice works under TSan (an ifunc resolver
# crashed such builds before main: issue 11 item 11; the kernels now dispatch
# through a function pointer).
#
# usage: tools/tsan.sh [steps]     (default 30)
# env: TSAN_BUILD (default build-tsan), CC (default clang)
# Exit status: 0 clean, 1 a race or a difference, 77 when clang's TSan
# runtime is missing (skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/clang-lib.sh

export CC=${CC:-clang}
build=${TSAN_BUILD:-build-tsan}
if ! command -v "$CC" >/dev/null 2>&1 || ! tg_clang_can -fsanitize=thread -pthread; then
    echo "tsan: skipped ($CC with ThreadSanitizer not available)"
    exit 77
fi
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
cflags="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=thread -Iinclude -Ilib -pthread"
cflags="$cflags -DTG_HAVE_THREADS=1"
echo "==> tsan: building the library ($build)"
tg_clang_lib "$build" "$cflags"
"$CC" $cflags tools/tsan_train.c "$build/libtapegrad.a" -lm -o "$build/tsan_train"
echo "==> tsan: two trainings in two threads"
"$build/tsan_train" "${1:-30}"

suites="$build/meson"
if [ ! -f "$suites/build.ninja" ]; then
    meson setup "$suites" -Dtests=enabled -Db_sanitize=thread -Db_lundef=false >/dev/null
fi
ninja -C "$suites" >/dev/null
export TAPEGRAD_NUM_THREADS=${TAPEGRAD_NUM_THREADS:-3}
# ThreadSanitizer runs code 5-15 times slower, more on a busy machine: Check's
# per-test timeouts are sized for plain builds (a nested pool test once timed
# out here under load with no race reported).
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
status=0
for suite in check_threads check_kernels check_nn; do
    echo "==> tsan: $suite ($TAPEGRAD_NUM_THREADS threads)"
    "$suites/tests/$suite" || status=1
done
exit $status
