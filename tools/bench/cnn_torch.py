#!/usr/bin/python3
"""The article's MNIST CNN in PyTorch, the reference side of cnn_bench.py.

Same model, init scheme (Keras: glorot-uniform weights, zero biases), optimizer
(Adam lr 1e-3), batch size (32) and data as examples/mnist_cnn. Trains for the
given number of epochs on one thread and prints one line per epoch:
    epoch_seconds <s> loss <l> accuracy <a>
then `max_rss_kib <k>`. Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import gzip
import os
import resource
import struct
import time

import torch
import torch.nn as nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(os.path.join(directory, stem))


def model():
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 64), nn.ReLU(), nn.Linear(64, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                   "examples", "data", "mnist-10k"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    # One thread unless cnn_bench.py --threads says otherwise.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(args.seed)
    x = read_idx(find(args.data, "train-images-idx3-ubyte")).float().div_(255).unsqueeze(1)
    y = read_idx(find(args.data, "train-labels-idx1-ubyte")).long()
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(n)
        total, correct = 0.0, 0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            out = net(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        elapsed = time.perf_counter() - start
        print(f"epoch_seconds {elapsed:.4f} loss {total / n:.4f} accuracy {correct / n:.4f}",
              flush=True)
    print(f"max_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


if __name__ == "__main__":
    main()
