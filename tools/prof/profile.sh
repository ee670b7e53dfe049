#!/usr/bin/env bash
# Profiles a command without perf: builds sampler.c into a temporary
# directory, runs the command with it preloaded, and prints report.py's table.
#
#   tools/prof/profile.sh [-u MICROSECONDS] [-n TOP] [-o SAMPLES] -- command args...
#
# For a kernel's share of a training run, one thread:
#   TAPEGRAD_NUM_THREADS=1 tools/prof/profile.sh -- build-rel/examples/mnist_cnn/mnist_cnn --epochs 1 --bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
us=200 top=30 out=""
while getopts "u:n:o:" opt; do
    case $opt in
    u) us=$OPTARG ;;
    n) top=$OPTARG ;;
    o) out=$OPTARG ;;
    *) echo "usage: $0 [-u us] [-n top] [-o samples] -- command..." >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "usage: $0 [-u us] [-n top] [-o samples] -- command..." >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -O2 -shared -fPIC -o "$tmp/sampler.so" "$here/sampler.c" -ldl -lrt
samples=${out:-$tmp/samples.txt}
status=0
LD_PRELOAD="$tmp/sampler.so" SAMPLER_US=$us SAMPLER_OUT=$samples "$@" || status=$?
/usr/bin/python3 "$here/report.py" "$samples" --top "$top"
exit $status
