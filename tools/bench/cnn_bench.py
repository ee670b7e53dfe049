#!/usr/bin/python3
"""Trains the article's CNN for one epoch with tapegrad and with PyTorch on the
same machine, alternating the two, and prints each side's median seconds per
epoch, their ratio, and each side's peak memory (max RSS).

    /usr/bin/python3 tools/bench/cnn_bench.py [--repeats 5] [--threads 1] [--data DIR]

Needs a release build of examples/mnist_cnn (tools/run-example.sh makes one in
build-release/) and Debian's python3-torch (with libopenblas0-pthread, torch
uses OpenBLAS). Both sides use --threads threads (TAPEGRAD_NUM_THREADS and
OMP_NUM_THREADS), the same model, init scheme, optimizer, batch size and data.
The tapegrad kernel (TAPEGRAD_KERNEL, or the automatic choice) is printed
first. A benchmark, not a test: nothing asserts a time.
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


THREADS = "1"


def run(cmd):
    env = dict(os.environ, OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS,
               OPENBLAS_NUM_THREADS=THREADS, TAPEGRAD_NUM_THREADS=THREADS)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    seconds = rss = None
    for line in out.splitlines():
        words = line.split()
        if words and words[0] == "epoch_seconds":
            seconds = float(words[1])
        elif words and words[0] == "max_rss_kib":
            rss = int(words[1])
    if seconds is None or rss is None:
        sys.exit(f"no timing in the output of {' '.join(cmd)}:\n{out}")
    return seconds, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=os.path.join(ROOT, "examples", "data", "mnist-10k"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-release", "examples",
                                                     "mnist_cnn", "mnist_cnn"))
    args = ap.parse_args()
    global THREADS
    THREADS = str(args.threads)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: build it first (tools/run-example.sh --help)")
    ours_cmd = [args.binary, "--epochs", "1", "--bench", "--data", args.data]
    torch_cmd = ["/usr/bin/python3", os.path.join(ROOT, "tools", "bench", "cnn_torch.py"),
                 "--epochs", "1", "--data", args.data]
    # gemm_bench with no shape prints just the kernel and thread count.
    gemm_bench = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(args.binary))),
                              "tools", "gemm_bench")
    if os.path.exists(gemm_bench):
        env = dict(os.environ, TAPEGRAD_NUM_THREADS=THREADS)
        head = subprocess.run([gemm_bench, "f32", "none"], capture_output=True, text=True,
                              env=env).stdout.splitlines()[0].split()
        print(f"tapegrad kernel {head[2]}, {head[4]} thread(s); pytorch {THREADS} thread(s)")
    ours, theirs = [], []
    for i in range(args.repeats):
        ours.append(run(ours_cmd))
        theirs.append(run(torch_cmd))
        print(f"run {i + 1}/{args.repeats}: tapegrad {ours[-1][0]:.3f} s, "
              f"pytorch {theirs[-1][0]:.3f} s", flush=True)
    t_ours = statistics.median(s for s, _ in ours)
    t_theirs = statistics.median(s for s, _ in theirs)
    m_ours = max(r for _, r in ours) / 1024
    m_theirs = max(r for _, r in theirs) / 1024
    print(f"median seconds per epoch: tapegrad {t_ours:.3f}, pytorch {t_theirs:.3f}")
    print(f"speed ratio (pytorch time / tapegrad time): {t_theirs / t_ours:.2f}x")
    print(f"peak memory (max RSS): tapegrad {m_ours:.1f} MiB, pytorch {m_theirs:.1f} MiB "
          f"(ratio {m_theirs / m_ours:.1f}x)")


if __name__ == "__main__":
    main()
