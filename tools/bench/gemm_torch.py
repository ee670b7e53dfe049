#!/usr/bin/python3
"""GFLOP/s of torch.mm at one thread on the GEMM shapes of the MNIST CNN, the
reference side of tools/bench/gemm_bench.c (same shapes, same timing rule:
median of 9 timings of enough calls to last about 20 ms).

    /usr/bin/python3 tools/bench/gemm_torch.py [--f64]
        prints "<name> <GFLOP/s>" per shape for torch alone.
    /usr/bin/python3 tools/bench/gemm_torch.py --tapegrad build-k/tools/gemm_bench [--f64]
        runs both, alternating shape by shape, and prints a table with the
        ratio tapegrad / torch (above 1: tapegrad is faster).

Transposed operands are passed as transposed views (.t()), which torch hands
to its BLAS as a transpose flag, as the op layer does with tg__gemm.
"""
import argparse
import subprocess
import time

import torch

# name, trans_a, trans_b, M, N, K, beta: keep in step with gemm_bench.c.
SHAPES = [
    ("conv1.fwd", False, False, 32, 676, 9, 0),
    ("conv1.dw", False, True, 32, 9, 676, 1),
    ("conv2.fwd", False, False, 64, 121, 288, 0),
    ("conv2.dx", True, False, 288, 121, 64, 0),
    ("conv2.dw", False, True, 64, 288, 121, 1),
    ("dense1.fwd", False, False, 32, 64, 1600, 0),
    ("dense1.dx", False, True, 32, 1600, 64, 0),
    ("dense1.dw", True, False, 1600, 64, 32, 0),
    ("dense2.fwd", False, False, 32, 10, 64, 0),
    ("square256", False, False, 256, 256, 256, 0),
]
REPEATS = 9


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
        rates.append(2.0 * m * n * k * calls / (time.perf_counter() - t0) * 1e-9)
    rates.sort()
    return rates[REPEATS // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--f64", action="store_true", help="float64 instead of float32")
    ap.add_argument("--tapegrad", metavar="GEMM_BENCH", help="path of the gemm_bench program")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dtype = torch.float64 if args.f64 else torch.float32
    if not args.tapegrad:
        for s in SHAPES:
            print(f"{s[0]:<11} {bench(s, dtype):7.2f}", flush=True)
        return
    print(f"{'shape':<11} {'ta':>2} {'tb':>2} {'M':>5} {'N':>5} {'K':>5}"
          f" {'tapegrad':>9} {'torch':>7} {'ratio':>6}   (GFLOP/s, 1 thread, "
          f"{'float64' if args.f64 else 'float32'})")
    ratios = []
    for s in SHAPES:
        out = subprocess.run([args.tapegrad, "f64" if args.f64 else "f32", s[0]],
                             check=True, capture_output=True, text=True).stdout.split()
        ours, theirs = float(out[-1]), bench(s, dtype)
        ratios.append(ours / theirs)
        print(f"{s[0]:<11} {int(s[1]):>2} {int(s[2]):>2} {s[3]:>5} {s[4]:>5} {s[5]:>5}"
              f" {ours:9.2f} {theirs:7.2f} {ours / theirs:6.2f}", flush=True)
    geo = 1.0
    for r in ratios:
        geo *= r
    print(f"geometric mean ratio: {geo ** (1.0 / len(ratios)):.2f}")


if __name__ == "__main__":
    main()
