#!/usr/bin/python3
"""Every tapegrad benchmark beside PyTorch (and numpy for SGEMM), in one run,
on 1 thread and on all of them, as one table.

    /usr/bin/python3 tools/bench/run_all.py [--build build-release] [--repeats 3]
        [--threads 1,2] [--only cnn_train,infer,mlp,step321,sgemm] [--data DIR]

Workloads (each side's program is named in brackets; tapegrad's are built by
meson in BUILD, a release build: meson setup build-release --buildtype=release):
  cnn_train  one epoch of the article's CNN on the 8,000 digits, batch 32, Adam
             [examples/mnist_cnn --bench | tools/bench/cnn_torch.py], s/epoch
  infer      the same CNN's inference, batch 256, images/s
             [tools/model_bench infer | tools/bench/torch_models.py infer]
  mlp        784-128-10 MLP, Adam, batch 64, us/step   [model_bench mlp | ... mlp]
  step321    the 3-2-1 sigmoid MLP step, SGD, ns/step  [model_bench step321 | ...]
  sgemm      GFLOP/s at the CNN's GEMM shapes, torch.mm and numpy.matmul
             [tools/gemm_bench through tools/bench/gemm_torch.py]

Each program reports the median of its own repeats; this script runs the
pair --repeats times, interleaved (the side that goes first alternates), and
prints the median of those medians. "speedup" is how many times faster
tapegrad is (above 1: tapegrad wins): PyTorch's time / tapegrad's, or
tapegrad's rate / PyTorch's. Peak RSS is each process's ru_maxrss as
/usr/bin/time reports it (the whole process: PyTorch's includes the
interpreter and its libraries), the largest over the repeats. "tape" is tapegrad's tape arena:
tg_tape_high_water / tg_tape_bytes after the run. The header names the CPU,
the kernel tapegrad chose (tg_kernel_name), torch's BLAS, the OpenBLAS core
(OPENBLAS_VERBOSE=2; on an AVX-512 CPU that OpenBLAS misdetects, the script sets
OPENBLAS_CORETYPE=SkylakeX unless --openblas keep) and the load average
before and after. Each "# run" line
gives the host's steal time during each side's run (all CPUs, from
/proc/stat): on a shared VM, a run with a second or more of it was slowed by
the host, most of all on two threads. A benchmark, not a test: nothing
asserts a time.
"""
import argparse
import datetime
import math
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"
ALL = ["cnn_train", "infer", "mlp", "step321", "sgemm"]
EXTRA = ["fashion_train"]  # long: only when --only names it


def steal_seconds():
    """CPU time the hypervisor gave to others while this VM wanted it, all
    CPUs together (the 8th figure of /proc/stat's cpu line), or None where
    there is no such figure. A run with seconds of it was slowed by the host,
    not by its own work: two threads suffer most, since a stolen thread
    holds up the ones waiting for its part of a product."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_rss(cmd, threads):
    """stdout of cmd, its peak RSS in KiB and the steal seconds during it
    (steal_seconds; None if unknown), with every thread knob set to
    threads. GNU time forks the program and reads its ru_maxrss: forked from
    this script instead, the program would inherit the interpreter's ~10 MiB
    (Linux keeps the high-water mark across exec); from time, ~2 MiB at most."""
    t = str(threads)
    env = dict(os.environ, TAPEGRAD_NUM_THREADS=t, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t,
               MKL_NUM_THREADS=t)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        s0 = steal_seconds()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name] + cmd, env=env,
                           capture_output=True, text=True)
        s1 = steal_seconds()
        if p.returncode:
            sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        steal = s1 - s0 if s0 is not None and s1 is not None else None
        return p.stdout, int(f.read().split()[-1]), steal


def keyvals(out):
    kv = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) >= 2:
            kv.setdefault(w[0], w[1:])
    return kv


class Pair:
    """One workload: a command per side, what to read from their output."""

    def __init__(self, name, unit, higher_better, ours, theirs, parse):
        self.name, self.unit, self.higher = name, unit, higher_better
        self.ours, self.theirs, self.parse = ours, theirs, parse


def parse_result(out):
    kv = keyvals(out)
    return {"value": float(kv["result"][0]), "kernel": kv.get("kernel", ["?"])[0],
            "tape_hw": int(kv.get("tape_high_water_bytes", ["0"])[0]),
            "tape": int(kv.get("tape_bytes", ["0"])[0])}


def parse_epoch(out):
    kv = keyvals(out)
    return {"value": float(kv["epoch_seconds"][0]), "kernel": kv.get("kernel", ["?"])[0],
            "tape_hw": int(kv.get("tape_high_water_bytes", ["0"])[0]),
            "tape": int(kv.get("tape_bytes", ["0"])[0])}


def pairs(build, data, fashion):
    mb = os.path.join(build, "tools", "model_bench")
    tm = os.path.join(HERE, "torch_models.py")
    cnn = os.path.join(build, "examples", "mnist_cnn", "mnist_cnn")
    return {
        "cnn_train": Pair("CNN train, 1 epoch of 8k", "s/epoch", False,
                          [cnn, "--epochs", "1", "--bench", "--verbose", "0", "--data", data],
                          [PY, os.path.join(HERE, "cnn_torch.py"), "--epochs", "1",
                           "--data", data], parse_epoch),
        "fashion_train": Pair("CNN train, 1 epoch of Fashion 60k", "s/epoch", False,
                              [cnn, "--epochs", "1", "--bench", "--verbose", "0", "--data",
                               fashion],
                              [PY, os.path.join(HERE, "cnn_torch.py"), "--epochs", "1",
                               "--data", fashion], parse_epoch),
        "infer": Pair("CNN inference, batch 256", "images/s", True, [mb, "infer", data],
                      [PY, tm, "infer", data], parse_result),
        "mlp": Pair("MLP 784-128-10 Adam, b64", "us/step", False, [mb, "mlp", data],
                    [PY, tm, "mlp", data], parse_result),
        "step321": Pair("3-2-1 sigmoid MLP step", "ns/step", False, [mb, "step321"],
                        [PY, tm, "step321"], parse_result),
    }


def sgemm(build, threads, repeats):
    """Per shape: medians over the repeats of tapegrad, torch and numpy GFLOP/s."""
    gb = os.path.join(build, "tools", "gemm_bench")
    rows, head, rss_ours, rss_py, kernels = {}, "", 0, 0, set()
    for _ in range(repeats):
        out, rss, _ = run_rss([PY, os.path.join(HERE, "gemm_torch.py"), "--threads", str(threads),
                            "--tapegrad", gb], threads)
        rss_py = max(rss_py, rss)
        for line in out.splitlines():
            w = line.split()
            if line.startswith("tapegrad kernel"):
                head = line
                kernels.add(w[2].rstrip(","))
            elif line.startswith("peak RSS"):
                rss_ours = max(rss_ours, float(w[3]) * 1024)
            elif len(w) == 11 and w[0] not in ("shape",):
                rows.setdefault(w[0], {"shape": f"{w[3]}x{w[4]}x{w[5]}", "t": [], "p": [],
                                       "n": []})
                rows[w[0]]["t"].append(float(w[6]))
                rows[w[0]]["p"].append(float(w[7]))
                rows[w[0]]["n"].append(float(w[8]))
    return head, rows, rss_ours, rss_py, "/".join(sorted(kernels))


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                f = line.split()
                return ", ".join(x for x in ("avx2", "fma", "avx512f") if x in f)
    except OSError:
        pass
    return "?"


# OpenBLAS cores with 512-bit kernels: on a CPU with AVX-512, any other core
# is a misdetection (OpenBLAS 0.3.21 takes Sapphire Rapids for a Prescott) and
# would make PyTorch and numpy look several times slower than they are.
AVX512_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")


def openblas_core(env=None):
    """The core OpenBLAS chose for numpy in this environment (OPENBLAS_VERBOSE=2
    prints it on the first product), or "?" when it says nothing."""
    e = dict(env if env is not None else os.environ, OPENBLAS_VERBOSE="2")
    p = subprocess.run([PY, "-c", "import numpy; numpy.ones((8, 8)) @ numpy.ones((8, 8))"],
                       env=e, capture_output=True, text=True)
    for line in (p.stdout + p.stderr).splitlines():
        if line.startswith("Core:"):
            return line.split(":", 1)[1].strip()
    return "?"


def fair_openblas(mode):
    """Sets OPENBLAS_CORETYPE for the PyTorch and numpy runs when OpenBLAS
    misdetects an AVX-512 CPU (mode "auto"), and returns the header line that
    says which core they run."""
    core = openblas_core()
    if mode == "keep" or "OPENBLAS_CORETYPE" in os.environ:
        note = f"OpenBLAS core {core}"
        if "avx512f" in cpu_flags() and core not in AVX512_CORES + ("?",):
            note += (f" -- WARNING: not an AVX-512 core on an AVX-512 CPU, PyTorch runs "
                     f"slower than it can (OPENBLAS_CORETYPE=SkylakeX fixes it)")
        return note
    if "avx512f" in cpu_flags() and core not in AVX512_CORES + ("?",):
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
        fixed = openblas_core()
        return (f"OpenBLAS core {fixed} (it detected {core} on this AVX-512 CPU; "
                f"OPENBLAS_CORETYPE=SkylakeX set for PyTorch and numpy, --openblas keep: don't)")
    return f"OpenBLAS core {core}"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def mib(kib):
    return f"{kib / 1024:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}",
                    help="comma-separated thread counts (default 1 and all CPUs)")
    ap.add_argument("--only", default=",".join(ALL),
                    help="comma-separated: " + ",".join(ALL + EXTRA))
    ap.add_argument("--data", default=os.path.join(ROOT, "examples", "data", "mnist-10k"))
    ap.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist",
                    help="full Fashion-MNIST for fashion_train (apt-get install "
                         "dataset-fashion-mnist)")
    ap.add_argument("--openblas", choices=("auto", "keep"), default="auto",
                    help="auto (default): when OpenBLAS picks a non-AVX-512 core on an "
                         "AVX-512 CPU, set OPENBLAS_CORETYPE=SkylakeX for the fair "
                         "comparison; keep: leave OpenBLAS's choice")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    only = [w for w in args.only.split(",") if w]
    for w in only:
        if w not in ALL + EXTRA:
            sys.exit(f"unknown workload {w}; choose from {','.join(ALL + EXTRA)}")
    threads = sorted({int(t) for t in args.threads.split(",")})
    for prog in (os.path.join(build, "tools", "model_bench"),
                 os.path.join(build, "tools", "gemm_bench"),
                 os.path.join(build, "examples", "mnist_cnn", "mnist_cnn")):
        if not os.path.exists(prog):
            sys.exit(f"{prog} not found: meson setup {args.build} --buildtype=release && "
                     f"ninja -C {args.build}")
    torch_ver = subprocess.run([PY, "-c", "import torch; print(torch.__version__)"],
                               capture_output=True, text=True).stdout.strip()
    start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {start}; {cpu_name()}, {os.cpu_count()} CPUs ({cpu_flags()}); "
          f"load average {loadavg()} (1, 5, 15 min)")
    print(f"# {fair_openblas(args.openblas)}")
    print(f"# tapegrad {build}; torch {torch_ver}; {args.repeats} interleaved runs per "
          f"cell, median shown")
    table = []
    gemm_tables = []
    for t in threads:
        ps = pairs(build, args.data, args.fashion)
        results = {w: {"ours": [], "theirs": [], "rss_o": 0, "rss_t": 0} for w in ps}
        for r in range(args.repeats):
            for w in only:
                if w not in ps:
                    continue
                p, res = ps[w], results[w]
                sides = [("ours", p.ours), ("theirs", p.theirs)]
                steal = {}
                for side, cmd in (sides if r % 2 == 0 else sides[::-1]):
                    out, rss, steal[side] = run_rss(cmd, t)
                    res[side].append(p.parse(out))
                    key = "rss_o" if side == "ours" else "rss_t"
                    res[key] = max(res[key], rss)
                # One line a run, so that an interrupted run still shows its figures.
                stolen = ("" if None in steal.values() else
                          f" (host steal {steal['ours']:.2f} s, {steal['theirs']:.2f} s)")
                print(f"# run {r + 1}/{args.repeats}, {t} thread(s), {w}: tapegrad "
                      f"{res['ours'][-1]['value']:.6g}, pytorch {res['theirs'][-1]['value']:.6g}"
                      f" {p.unit}{stolen}", flush=True)
        for w in only:
            if w not in ps:
                continue
            p, res = ps[w], results[w]
            o = statistics.median(x["value"] for x in res["ours"])
            th = statistics.median(x["value"] for x in res["theirs"])
            speed = o / th if p.higher else th / o
            hw = max(x["tape_hw"] for x in res["ours"])
            tb = max(x["tape"] for x in res["ours"])
            kernels = "/".join(sorted({x.get("kernel", "?") for x in res["ours"]}))
            table.append((t, p.name, p.unit, o, th, None, speed, None, res["rss_o"],
                          res["rss_t"], f"{hw / 2**20:.1f}/{tb / 2**20:.1f}", kernels))
        if "sgemm" in only:
            head, rows, rss_o, rss_p, gk = sgemm(build, t, args.repeats)
            gemm_tables.append((t, head))
            gt, gn = [], []
            for name, v in rows.items():
                o, th, nu = (statistics.median(v[k]) for k in ("t", "p", "n"))
                gt.append(o / th)
                gn.append(o / nu)
                table.append((t, f"SGEMM {name} {v['shape']}", "GFLOP/s", o, th, nu, o / th,
                              o / nu, rss_o, rss_p, "-", gk))
            geo = lambda rs: math.exp(sum(math.log(x) for x in rs) / len(rs))  # noqa: E731
            table.append((t, "SGEMM geometric mean", "ratio", None, None, None, geo(gt),
                          geo(gn), rss_o, rss_p, "-", gk))
        print(f"# {t} thread(s) done, load average {loadavg()}", flush=True)
    for t, head in gemm_tables:
        print(f"# sgemm, {t} thread(s): {head}")
    print(f"# load average after: {loadavg()}")
    hdr = (f"{'thr':>3} {'workload':<34} {'unit':<9} {'tapegrad':>10} {'pytorch':>10} "
           f"{'numpy':>8} {'speedup':>7} {'vs np':>6} {'RSS tg':>7} {'RSS pt':>7} "
           f"{'tape MiB':>9} kernel")
    print(hdr)
    print("-" * len(hdr))
    def fmt(v, wd):
        return f"{'-':>{wd}}" if v is None else f"{v:>{wd}.{3 if v < 10 else 2 if v < 100 else 1}f}"
    for t, name, unit, o, th, nu, sp, spn, ro, rt, tape, kern in table:
        print(f"{t:>3} {name:<34} {unit:<9} {fmt(o, 10)} {fmt(th, 10)} {fmt(nu, 8)} "
              f"{sp:>6.2f}x {'-' if spn is None else f'{spn:.2f}x':>6} {mib(ro):>7} "
              f"{mib(rt):>7} {tape:>9} {kern}")
    print("speedup: above 1 tapegrad is faster (time ratio pytorch/tapegrad, or rate ratio "
          "tapegrad/pytorch); RSS in MiB (peak, whole process); tape: high-water/held MiB; "
          "kernel: tg_kernel_name() in tapegrad's runs")


if __name__ == "__main__":
    main()
