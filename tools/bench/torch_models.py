#!/usr/bin/python3
"""The PyTorch side of tools/bench/model_bench.c: the same three workloads,
the same data, shapes, initial weights' scheme and optimizers, each the
median of repeats, printed in model_bench's "key value" lines.

    /usr/bin/python3 tools/bench/torch_models.py infer|mlp|step321 [data-dir]

infer    the article's CNN in eval mode under torch.no_grad(), softmax
         probabilities, the 31 full batches of 256 of the 8,000 training
         images (images/s)
mlp      784-128-10 (ReLU), cross-entropy on the logits, Adam lr 1e-3,
         batch 64, one epoch of the 8,000 training images shuffled (us/step)
step321  the worked example's 3-2-1 sigmoid network, BCE against y = 1,
         SGD lr 0.5, float32 (ns/step)

Threads: OMP_NUM_THREADS (default 1), also given to torch.set_num_threads;
run_all.py sets it. Uses Debian's python3-torch (with libopenblas0-pthread
installed, its BLAS is OpenBLAS).
"""
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnn_torch import find, model as cnn_model, read_idx  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def report(unit, value, repeats):
    print(f"kernel torch-{torch.__version__}")
    print(f"threads {torch.get_num_threads()}")
    print(f"result {value:.6g} {unit}")
    print(f"repeats {repeats}")
    print(f"max_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


def images(directory):
    return read_idx(find(directory, "train-images-idx3-ubyte")).float().div_(255).unsqueeze(1)


def labels(directory):
    return read_idx(find(directory, "train-labels-idx1-ubyte")).long()


def bench_infer(directory, repeats=7, batch=256):
    x = images(directory)
    net = cnn_model().eval()
    full = x.shape[0] // batch
    rates = []
    with torch.no_grad():
        for r in range(-1, repeats):  # -1: warm-up
            t0 = time.perf_counter()
            for i in range(full):
                p = torch.softmax(net(x[i * batch:(i + 1) * batch]), dim=1)
            if r >= 0:
                rates.append(full * batch / (time.perf_counter() - t0))
    report("images/s", statistics.median(rates), repeats)
    print(f"checksum {float(p[0, 0]):.6f}")


def bench_mlp(directory, repeats=5, batch=64):
    x, y = images(directory), labels(directory)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    per_step = []
    for r in range(-1, repeats):
        perm = torch.randperm(n)
        steps = 0
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss_value = loss.item()  # as tg_tensor_item on the C side
            steps += 1
        if r >= 0:
            per_step.append((time.perf_counter() - t0) / steps * 1e6)
    report("us/step", statistics.median(per_step), repeats)
    print(f"final_loss {loss_value:.4f}")


def bench_step321(repeats=7, steps=2000):
    x = torch.tensor([[0.5, -0.2, 0.1]])
    y = torch.tensor([[1.0]])
    w1 = torch.tensor([[0.15, -0.3], [0.2, 0.1], [-0.1, 0.25]], requires_grad=True)
    b1 = torch.tensor([0.05, -0.05], requires_grad=True)
    w2 = torch.tensor([[0.4], [-0.6]], requires_grad=True)
    b2 = torch.tensor([0.1], requires_grad=True)
    opt = torch.optim.SGD([w1, b1, w2, b2], lr=0.5)
    per_step = []
    for r in range(-1, repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            h = torch.sigmoid(x @ w1 + b1)
            out = torch.sigmoid(h @ w2 + b2)
            loss = nn.functional.binary_cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = loss.item()
        if r >= 0:
            per_step.append((time.perf_counter() - t0) / steps * 1e9)
    report("ns/step", statistics.median(per_step), repeats)
    print(f"final_loss {loss_value:.6f}")


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(1)
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    directory = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "examples", "data",
                                                                   "mnist-10k")
    if what == "infer":
        bench_infer(directory)
    elif what == "mlp":
        bench_mlp(directory)
    elif what == "step321":
        bench_step321()
    else:
        sys.exit(f"usage: {sys.argv[0]} infer|mlp [data-dir] | step321")


if __name__ == "__main__":
    main()
