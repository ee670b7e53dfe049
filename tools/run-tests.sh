#!/usr/bin/env bash
# Builds tapegrad and runs every Check suite: a plain build with warnings as
# errors, one with AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# included), and, when clang is installed, a clang build with warnings as errors.
# Installs meson, ninja, pkg-config and Check first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
tg_install_deps with-check

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
echo "suites: $passed passed, $failed failed"
exit $overall
