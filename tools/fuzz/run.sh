#!/usr/bin/env bash
# Builds every tools/fuzz/fuzz_*.c as a libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined; UB and leaks are fatal) against the
# library sources, then runs each for a fixed time on a scratch copy of its
# seed corpus, tools/fuzz/corpus/<name>/. A new fuzz_<name>.c is picked up
# without changes here (give it a corpus directory; an empty one is made).
#
# usage: tools/fuzz/run.sh [-t SECONDS] [-j N] [-s SEED] [-b] [NAME...]
#   -t  seconds per harness (default 30)
#   -j  harnesses run at once (default 1; each is one process)
#   -s  libFuzzer's random seed (default: a new one each run; CI fixes it
#       so that a failure there can be replayed)
#   -b  build only
#   NAME...  run only these (fuzz_NAME.c), e.g. idx ops
# env: FUZZ_BUILD (default build-fuzz), CC (default clang), FUZZ_ARGS (more
#      libFuzzer flags, e.g. "-max_len=8192").
# Findings are saved as $FUZZ_BUILD/artifacts/<name>-crash-*; reproduce one
# with $FUZZ_BUILD/fuzz_<name> FILE. Exit status: 0 clean, 1 a finding or a
# build failure, 77 when clang or its fuzzer runtime is missing (skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/clang-lib.sh

seconds=30 jobs=1 build_only=0 seed=""
while getopts "t:j:s:b" opt; do
    case $opt in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    s) seed="-seed=$OPTARG" ;;
    b) build_only=1 ;;
    *) sed -n '2,23p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

export CC=${CC:-clang}
build=${FUZZ_BUILD:-build-fuzz}
if ! command -v "$CC" >/dev/null 2>&1 ||
    ! tg_clang_can -DTG_PROBE_FUZZER -fsanitize=fuzzer,address,undefined; then
    echo "fuzz: skipped ($CC with libFuzzer not available; on Debian: apt-get install clang" \
        "libclang-rt-<version>-dev)"
    exit 77
fi

names=()
if [ $# -gt 0 ]; then
    names=("$@")
else
    for f in tools/fuzz/fuzz_*.c; do
        n=${f##*/fuzz_}
        names+=("${n%.c}")
    done
fi

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-std=c11 -g -O1 -fno-omit-frame-pointer $sanitize -Iinclude -Ilib -D_FILE_OFFSET_BITS=64"
echo "==> fuzz: building the library ($build)"
tg_clang_lib "$build" "$cflags -fsanitize=fuzzer-no-link"
for n in "${names[@]}"; do
    echo "==> fuzz: building fuzz_$n"
    "$CC" $cflags -fsanitize=fuzzer "tools/fuzz/fuzz_$n.c" "$build/libtapegrad.a" -lm -pthread \
        -o "$build/fuzz_$n"
done
[ "$build_only" = 1 ] && exit 0

mkdir -p "$build/artifacts"
# Leaks are findings; a huge request inside the library must fail cleanly
# (the harnesses cap single allocations), so a NULL from malloc is allowed.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

run_one() { # name -> log in $build/fuzz_<name>.log
    local n=$1 seeds="tools/fuzz/corpus/$1" work="$build/corpus/$1"
    mkdir -p "$work" "$seeds"
    "$build/fuzz_$n" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$n-" $seed ${FUZZ_ARGS:-} \
        "$work" "$seeds" >"$build/fuzz_$n.log" 2>&1
}

status=0
pids=() running=()
for n in "${names[@]}"; do
    echo "==> fuzz: running fuzz_$n for ${seconds}s"
    run_one "$n" &
    pids+=($!) running+=("$n")
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || { status=1; echo "fuzz_${running[0]}: FINDING, see $build/fuzz_${running[0]}.log"; }
        pids=("${pids[@]:1}") running=("${running[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { status=1; echo "fuzz_${running[$i]}: FINDING, see $build/fuzz_${running[$i]}.log"; }
done

# One line per harness: executions, coverage (edges), features, corpus size.
printf '%-12s %12s %8s %8s %8s %8s\n' harness execs exec/s cov ft corpus
for n in "${names[@]}"; do
    log="$build/fuzz_$n.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    printf '%-12s %12s %8s %8s %8s %8s\n' "$n" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}"
    if grep -qE '^==[0-9]+==ERROR|runtime error|fuzz invariant failed|deadly signal' "$log"; then
        status=1
        grep -m1 -E 'ERROR|runtime error|invariant failed|deadly signal' "$log"
    fi
done
exit $status
