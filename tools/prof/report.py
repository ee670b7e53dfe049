#!/usr/bin/python3
"""Turns sampler.c's samples ("object offset" lines) into a table of the
functions they fall in, most samples first, with `nm` of each object (static
symbols too, so a kernel's local helpers show by name).

    tools/prof/report.py SAMPLES [--top 30]
"""
import argparse
import bisect
import collections
import subprocess


def symbols(path, cache={}):
    """Sorted (start addresses, names) of the text symbols of one object."""
    if path not in cache:
        rows = []
        for flags in (["--defined-only"], ["-D", "--defined-only"]):
            out = subprocess.run(["nm", "-n"] + flags + [path], capture_output=True,
                                 text=True).stdout
            rows = [(int(w[0], 16), w[2]) for w in (line.split() for line in out.splitlines())
                    if len(w) >= 3 and w[1] in "tTwWiI"]
            if rows:  # a stripped library has dynamic symbols only
                break
        rows.sort()
        cache[path] = ([a for a, _ in rows], [n for _, n in rows])
    return cache[path]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("samples")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    counts = collections.Counter()
    with open(args.samples) as f:
        for line in f:
            obj, offset = line.split()
            if obj == "?":
                counts["?"] += 1
                continue
            starts, names = symbols(obj)
            i = bisect.bisect_right(starts, int(offset, 16)) - 1
            counts[obj.rsplit("/", 1)[-1] + ":" + (names[i] if i >= 0 else "?")] += 1
    total = sum(counts.values())
    print(f"{total} samples")
    for name, n in counts.most_common(args.top):
        print(f"{n:8d} {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
