#!/usr/bin/env bash
# ThreadSanitizer run of the threaded paths: builds with clang and
# -fsanitize=thread in build-tsan/ and runs the suites that drive the thread
# pool (check_threads: pool, CNN training with 1-3 threads; check_kernels:
# GEMM with 1-3 threads; check_nn: training), with 3 threads by default.
# Also shows that the kernel choice works under TSan (an ifunc resolver
# crashed such builds before main: issue 11). Needs clang.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang >/dev/null || { echo "tsan.sh: clang not found" >&2; exit 1; }
if [ ! -f build-tsan/build.ninja ]; then
    CC=clang meson setup build-tsan -Dtests=enabled -Db_sanitize=thread -Db_lundef=false \
        >/dev/null
fi
ninja -C build-tsan >/dev/null
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
export TAPEGRAD_NUM_THREADS=${TAPEGRAD_NUM_THREADS:-3}
status=0
for suite in check_threads check_kernels check_nn; do
    echo "==> $suite (TSan, $TAPEGRAD_NUM_THREADS threads)"
    ./build-tsan/tests/$suite || status=1
done
exit $status
