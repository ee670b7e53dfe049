#!/usr/bin/env bash
# Runs every test suite under valgrind's leak checker, in-process (CK_FORK=no)
# so leaks and invalid accesses are seen. Uses the build dir given (default
# build/), which must already be built with tests. The exhaustive tanh case
# is left out (CK_EXCLUDE_CASES; set VALGRIND_EXCLUDE_CASES= to keep it): it
# takes about two minutes natively, hours under valgrind, and checks values,
# not memory.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
status=0
for exe in "$dir"/tests/check_*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    if CK_FORK=no CK_EXCLUDE_CASES=${VALGRIND_EXCLUDE_CASES-tanh} valgrind --leak-check=full --error-exitcode=9 -q "$exe" >/dev/null; then
        echo "ok    $(basename "$exe")"
    else
        echo "FAIL  $(basename "$exe")"
        status=1
    fi
done
exit $status
