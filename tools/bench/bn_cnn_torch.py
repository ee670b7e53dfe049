#!/usr/bin/python3
"""examples/mnist_bn_cnn in PyTorch 1.13, the reference side of bn_cnn_compare.py.

    Conv2d 32 3x3 -> BatchNorm2d -> ReLU -> MaxPool 2 ->
    Conv2d 64 3x3 -> BatchNorm2d -> ReLU -> MaxPool 2 ->
    Flatten -> Linear 64 ReLU -> Linear 10 (cross-entropy on the logits)

The same init scheme as the C example (Keras: glorot-uniform weights, zero
biases; BatchNorm gamma 1, beta 0), optimizer (Adam lr 1e-3, eps 1e-7), batch
size (32, reshuffled every epoch), data (the IDX files, .gz or raw) and
BatchNorm settings: torch.nn.BatchNorm2d's own defaults, eps 1e-5 and momentum
0.1, which is tapegrad's 0.9 (tapegrad follows Keras: the weight of the old
running value); --bn-momentum takes tapegrad's number. Both keep the running
variance from the unbiased batch variance.

Prints one line per epoch, then the test set in evaluation mode (running
statistics) and in training mode (batch statistics, running ones restored):
    epoch <i> loss <l> accuracy <a> seconds <s>
    test loss <l> accuracy <a> train_mode_accuracy <a>
Run with /usr/bin/python3 (Debian's python3-torch); one thread unless
OMP_NUM_THREADS says otherwise.
"""
import argparse
import copy
import gzip
import os
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


def load(directory, prefix):
    x = read_idx(find(directory, prefix + "-images-idx3-ubyte")).float().div_(255).unsqueeze(1)
    y = read_idx(find(directory, prefix + "-labels-idx1-ubyte")).long()
    return x, y


def model(bn_momentum):
    p = 1.0 - bn_momentum  # PyTorch's convention
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32, eps=1e-5, momentum=p), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64, eps=1e-5, momentum=p), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 64), nn.ReLU(), nn.Linear(64, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


@torch.no_grad()
def evaluate(net, x, y, batch, loss_fn):
    total, correct = 0.0, 0
    for i in range(0, x.shape[0], batch):
        out = net(x[i:i + batch])
        total += loss_fn(out, y[i:i + batch]).item() * out.shape[0]
        correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return total / x.shape[0], correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                   "examples", "data", "mnist-10k"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=0, help="0: all")
    ap.add_argument("--bn-momentum", type=float, default=0.9,
                    help="tapegrad's (Keras's) convention: PyTorch's momentum is 1 - this")
    args = ap.parse_args()
    if args.epochs < 1 or args.batch < 1 or args.train_samples < 0:
        ap.error("--epochs and --batch must be >= 1, --train-samples >= 0")
    if not 0.0 <= args.bn_momentum <= 1.0:
        ap.error(f"--bn-momentum {args.bn_momentum} outside [0, 1]")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(args.seed)
    x, y = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    if args.train_samples:
        if args.train_samples > x.shape[0]:
            ap.error(f"--train-samples {args.train_samples}: the training set has "
                     f"{x.shape[0]} images")
        x, y = x[:args.train_samples], y[:args.train_samples]
    net = model(args.bn_momentum)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    for epoch in range(1, args.epochs + 1):
        net.train()
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
        print(f"epoch {epoch} loss {total / n:.6f} accuracy {correct / n:.6f} "
              f"seconds {elapsed:.4f}", flush=True)
    net.eval()
    test_loss, test_acc = evaluate(net, x_test, y_test, args.batch, loss_fn)
    # Training mode on a copy, so that the running statistics stay as they were.
    batch_net = copy.deepcopy(net).train()
    _, train_mode_acc = evaluate(batch_net, x_test, y_test, args.batch, loss_fn)
    print(f"test loss {test_loss:.6f} accuracy {test_acc:.6f} "
          f"train_mode_accuracy {train_mode_acc:.6f}")


if __name__ == "__main__":
    main()
