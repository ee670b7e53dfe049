#!/usr/bin/env bash
# Builds tapegrad and runs every Check suite twice: a plain build, then one with
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included).
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
    meson setup "$dir" -Dtests=enabled "$@" >/dev/null
    ninja -C "$dir" >/dev/null
    local status=0
    meson test -C "$dir" --verbose --num-processes 2 || status=$?
    local log="$dir/meson-logs/testlog.json"
    passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
    failed=$((failed + $(grep -vc '"result": "OK"' "$log" || true)))
    return $status
}

overall=0
run_suite plain build-tests -Dwerror=true || overall=1
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite sanitizer build-tests-asan -Db_sanitize=address,undefined -Db_lundef=false \
    || overall=1
echo "test programs (both builds): $passed passed, $failed failed"
exit $overall
