#!/usr/bin/env bash
# Builds tapegrad and runs every Check suite: a plain build with warnings as
# errors, one with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# included), and, when clang is installed, a clang build with warnings as errors.
# Then, when clang and its sanitizer runtimes are there, every libFuzzer
# harness for FUZZ_SECONDS (default 30) each, two at a time with a fixed seed
# (tools/fuzz/run.sh), and the ThreadSanitizer run (tools/tsan.sh).
# Installs meson, ninja, pkg-config and Check first when they are missing, and
# tries to install clang and its runtimes (TG_NO_CLANG_INSTALL=1: don't).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
tg_install_deps with-check
tg_install_clang_runtime

passed=0
failed=0
run_suite() { # name, build dir, meson options...
    local name=$1 dir=$2
    shift 2
    echo "==> $name build ($dir)"
    rm -rf "$dir"
    # Called under ||, where set -e is off: every step checks for itself.
    meson setup "$dir" -Dtests=enabled "$@" >/dev/null || { failed=$((failed + 1)); return 1; }
    ninja -C "$dir" >/dev/null || { failed=$((failed + 1)); return 1; }
    local status=0
    meson test -C "$dir" --verbose --num-processes 2 || status=$?
    local log="$dir/meson-logs/testlog.json" ok=0 all=0
    if [ -f "$log" ]; then
        ok=$(grep -c '"result": "OK"' "$log" || true)
        all=$(grep -c '"result"' "$log" || true)
    fi
    passed=$((passed + ok))
    failed=$((failed + all - ok))
    return $status
}

overall=0
run_suite plain build-tests -Dwerror=true || overall=1
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite sanitizer build-tests-asan -Db_sanitize=address,undefined -Db_lundef=false \
    || overall=1
# A third compiler's warnings, when one is installed (clang is optional).
if command -v clang >/dev/null 2>&1; then
    CC=clang run_suite clang build-tests-clang -Dwerror=true || overall=1
fi
# Fuzzing and TSan: 77 means the toolchain is missing, which is not a failure.
extra=""
step() { # name, command...
    local name=$1 status=0
    shift
    "$@" || status=$?
    case $status in
    0) extra="$extra, $name ok" ;;
    77) extra="$extra, $name skipped" ;;
    *) extra="$extra, $name FAILED"; overall=1 ;;
    esac
}
step fuzz tools/fuzz/run.sh -t "${FUZZ_SECONDS:-30}" -j 2 -s 1
step tsan tools/tsan.sh
echo "suites: $passed passed, $failed failed$extra"
exit $overall
