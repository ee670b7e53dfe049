#!/usr/bin/python3
"""GFLOP/s of torch.mm and numpy.matmul on the GEMM shapes of the MNIST CNN
(and 256^3, 1024^3), the reference side of tools/bench/gemm_bench.c (same
shapes, same timing rule: median of 9 timings of enough calls to last about
20 ms).

    /usr/bin/python3 tools/bench/gemm_torch.py [--f64] [--threads N]
        prints "<name> <torch GFLOP/s> <numpy GFLOP/s>" per shape.
    /usr/bin/python3 tools/bench/gemm_torch.py --tapegrad build-release/tools/gemm_bench
        runs all three, shape by shape, and prints a table with the ratios
        tapegrad / torch and tapegrad / numpy (above 1: tapegrad is faster),
        the tapegrad kernel and thread count, and each side's peak RSS.

--threads N (default 1) sets TAPEGRAD_NUM_THREADS for gemm_bench and
torch.set_num_threads / OPENBLAS_NUM_THREADS / OMP_NUM_THREADS here; set
before numpy and torch load their BLAS. Debian's torch and numpy use
OpenBLAS when libopenblas0-pthread is installed (the reference BLAS
otherwise, far slower: check the printed BLAS line).

Transposed operands are passed as transposed views (.t()), which torch hands
to its BLAS as a transpose flag, as the op layer does with tg__gemm.
"""
import argparse
import os
import resource
import subprocess
import sys
import time


def threads_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# The BLAS reads these when it loads: before the imports.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = threads_from_argv()
import numpy  # noqa: E402
import torch  # noqa: E402

# name, trans_a, trans_b, M, N, K, beta: keep in step with gemm_bench.c.
SHAPES = [
    ("conv1.fwd", False, False, 32, 676, 9, 0),
    ("conv1.dw", False, True, 9, 32, 676, 1),
    ("conv2.fwd", False, False, 64, 121, 288, 0),
    ("conv2.dx", True, False, 288, 121, 64, 0),
    ("conv2.dw", False, True, 288, 64, 121, 1),
    ("dense1.fwd", False, False, 32, 64, 1600, 0),
    ("dense1.dx", False, True, 32, 1600, 64, 0),
    ("dense1.dw", True, False, 1600, 64, 32, 0),
    ("dense2.fwd", False, False, 32, 10, 64, 0),
    ("square256", False, False, 256, 256, 256, 0),
    ("square1024", False, False, 1024, 1024, 1024, 0),
]
REPEATS = 9


def timed(call, flop):
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        if time.perf_counter() - t0 > 0.02 or calls > 1 << 30:
            break
        calls *= 2
    rates = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        rates.append(flop * calls / (time.perf_counter() - t0) * 1e-9)
    rates.sort()
    return rates[REPEATS // 2]


def bench_numpy(shape, f64):
    _, ta, tb, m, n, k, beta = shape
    dt = numpy.float64 if f64 else numpy.float32
    rng = numpy.random.default_rng(0)
    a = (rng.random((k, m) if ta else (m, k)) - 0.5).astype(dt)
    b = (rng.random((n, k) if tb else (k, n)) - 0.5).astype(dt)
    c = (rng.random((m, n)) - 0.5).astype(dt)
    a = a.T if ta else a
    b = b.T if tb else b
    if beta:
        def call():
            c.__iadd__(a @ b)  # numpy has no in-place accumulate into C
    else:
        def call():
            numpy.matmul(a, b, out=c)
    return timed(call, 2.0 * m * n * k)


def bench(shape, dtype):
    _, ta, tb, m, n, k, beta = shape
    g = torch.Generator().manual_seed(0)
    a = torch.rand((k, m) if ta else (m, k), generator=g, dtype=dtype) - 0.5
    b = torch.rand((n, k) if tb else (k, n), generator=g, dtype=dtype) - 0.5
    c = torch.rand((m, n), generator=g, dtype=dtype) - 0.5
    a = a.t() if ta else a
    b = b.t() if tb else b
    if beta:
        def call():
            c.addmm_(a, b)  # C += A B, as the convolution weight gradient does
    else:
        def call():
            torch.mm(a, b, out=c)
    return timed(call, 2.0 * m * n * k)


def blas_name():
    try:
        libs = {os.path.basename(line.split()[-1]) for line in open("/proc/self/maps")
                if "blas" in line}
        return ", ".join(sorted(libs)) or "none mapped"
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--f64", action="store_true", help="float64 instead of float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tapegrad", metavar="GEMM_BENCH", help="path of the gemm_bench program")
    ap.add_argument("--only", help="one shape name")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.f64 else torch.float32
    shapes = [s for s in SHAPES if not args.only or s[0] == args.only]
    if not args.tapegrad:
        for s in shapes:
            print(f"{s[0]:<11} {bench(s, dtype):7.2f} {bench_numpy(s, args.f64):7.2f}", flush=True)
        return
    env = dict(os.environ, TAPEGRAD_NUM_THREADS=str(args.threads))
    kind = "float64" if args.f64 else "float32"
    header = None
    ratios_t, ratios_n = [], []
    rss_ours = 0
    rows = []
    for s in shapes:
        out = subprocess.run([args.tapegrad, "f64" if args.f64 else "f32", s[0]], env=env,
                             check=True, capture_output=True, text=True).stdout.splitlines()
        for line in out:
            w = line.split()
            if line.startswith("# kernel"):
                header = f"tapegrad kernel {w[2]}, {w[4]} thread(s)"
            elif line.startswith("# max_rss_kib"):
                rss_ours = max(rss_ours, int(w[2]))
            elif w and w[0] == s[0]:
                ours = float(w[-1])
        if not rows:
            print(f"{header}; torch {torch.__version__} with {args.threads} thread(s), "
                  f"numpy {numpy.__version__}; BLAS {blas_name()}; {kind}, GFLOP/s")
            print(f"{'shape':<11} {'ta':>2} {'tb':>2} {'M':>5} {'N':>5} {'K':>5}"
                  f" {'tapegrad':>9} {'torch':>7} {'numpy':>7} {'/torch':>7} {'/numpy':>7}")
        theirs, np_rate = bench(s, dtype), bench_numpy(s, args.f64)
        ratios_t.append(ours / theirs)
        ratios_n.append(ours / np_rate)
        rows.append(s)
        print(f"{s[0]:<11} {int(s[1]):>2} {int(s[2]):>2} {s[3]:>5} {s[4]:>5} {s[5]:>5}"
              f" {ours:9.2f} {theirs:7.2f} {np_rate:7.2f} {ours / theirs:7.2f}"
              f" {ours / np_rate:7.2f}", flush=True)

    def geo(rs):
        g = 1.0
        for r in rs:
            g *= r
        return g ** (1.0 / len(rs))
    print(f"geometric mean ratio: {geo(ratios_t):.2f} vs torch, {geo(ratios_n):.2f} vs numpy")
    rss_py = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: gemm_bench {rss_ours / 1024:.1f} MiB, python+torch+numpy "
          f"{rss_py / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
