#!/usr/bin/python3
"""Trains the BatchNorm CNN with tapegrad (examples/mnist_bn_cnn) and with
PyTorch (bn_cnn_torch.py) in one run, one after the other on one thread, and
prints the per-epoch training loss and accuracy side by side, the test
accuracy in evaluation mode (running statistics) and in training mode (batch
statistics), the seconds per epoch with their ratio, and each process's CPU
time (which a busy machine inflates less than the wall time).

    /usr/bin/python3 tools/bench/bn_cnn_compare.py [--epochs 5] [--train-samples N]
        [--data DIR] [--binary PATH]

Needs a build of examples/mnist_bn_cnn (by default build-release/, which
tools/run-example.sh makes; --binary for another) and Debian's python3-torch.
Both sides get the same data, batch size (32), optimizer (Adam 1e-3), init
scheme and BatchNorm settings; their random numbers differ (initial weights,
shuffling), so the curves agree in shape, not digit for digit. A comparison,
not a test: nothing asserts a value.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
           TAPEGRAD_NUM_THREADS="1")


def cpu_seconds():
    """User + system CPU time of the finished children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd, epoch_word, test_word):
    """The per-epoch (loss, accuracy, seconds), the test line's numbers and the
    CPU seconds of the whole process (start-up and testing included)."""
    before = cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    cpu = cpu_seconds() - before
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    epochs, test = [], None
    for line in proc.stdout.splitlines():
        w = line.split()
        if w and w[0] == epoch_word:
            epochs.append((float(w[3]), float(w[5]), float(w[7])))
        elif w and w[0] == test_word:
            test = {"loss": float(w[2]), "accuracy": float(w[4]), "train_mode": float(w[6])}
    if not epochs or test is None:
        sys.exit(f"no results in the output of {' '.join(cmd)}:\n{proc.stdout}")
    return epochs, test, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-samples", type=int, default=0, help="0: all")
    ap.add_argument("--data", default=os.path.join(ROOT, "examples", "data", "mnist-10k"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-release", "examples",
                                                     "mnist_bn_cnn", "mnist_bn_cnn"))
    args = ap.parse_args()
    if args.epochs < 1 or args.train_samples < 0:
        ap.error("--epochs must be >= 1 and --train-samples >= 0")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: build it first (tools/run-example.sh --help) "
                 "or pass --binary")
    common = ["--epochs", str(args.epochs), "--data", args.data]
    if args.train_samples:
        common += ["--train-samples", str(args.train_samples)]
    ours_cmd = [args.binary, "--bench", "--verbose", "0"] + common
    torch_cmd = ["/usr/bin/python3", os.path.join(ROOT, "tools", "bench", "bn_cnn_torch.py")]
    torch_cmd += common
    print("$ " + " ".join(ours_cmd), flush=True)
    ours, ours_test, ours_cpu = run(ours_cmd, "bench_epoch", "bench_test")
    print("$ " + " ".join(torch_cmd), flush=True)
    theirs, theirs_test, theirs_cpu = run(torch_cmd, "epoch", "test")

    print()
    print("epoch | loss tapegrad  pytorch | accuracy tapegrad  pytorch | "
          "seconds tapegrad  pytorch")
    for i, (o, t) in enumerate(zip(ours, theirs), 1):
        print(f"{i:5d} | {o[0]:13.4f} {t[0]:8.4f} | {o[1]:17.4f} {t[1]:8.4f} | "
              f"{o[2]:16.2f} {t[2]:8.2f}")
    print()
    print("test accuracy                      tapegrad  pytorch")
    print(f"  evaluation mode (running stats)  {ours_test['accuracy']:8.4f} "
          f"{theirs_test['accuracy']:8.4f}")
    print(f"  training mode (batch stats)      {ours_test['train_mode']:8.4f} "
          f"{theirs_test['train_mode']:8.4f}")
    print(f"  test loss (evaluation mode)      {ours_test['loss']:8.4f} "
          f"{theirs_test['loss']:8.4f}")
    t_ours = statistics.mean(o[2] for o in ours)
    t_theirs = statistics.mean(t[2] for t in theirs)
    print()
    print(f"mean seconds per epoch: tapegrad {t_ours:.2f}, pytorch {t_theirs:.2f}; "
          f"ratio tapegrad / pytorch {t_ours / t_theirs:.2f}")
    # On a shared machine the wall time of an epoch grows with the load; the
    # CPU time of each process much less so.
    print(f"CPU seconds per process (user + system, start-up and testing included): "
          f"tapegrad {ours_cpu:.1f}, pytorch {theirs_cpu:.1f}; ratio {ours_cpu / theirs_cpu:.2f}")
    print(f"load average after the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
