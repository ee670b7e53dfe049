#!/usr/bin/python3
"""The PyTorch side of tiny_step.c: nanoseconds per training step of the same
2-8-1 tanh network on XOR (MSE, plain SGD), one thread, median of repeats."""
import statistics
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(1)
x = torch.tensor([[0., 0], [0, 1], [1, 0], [1, 1]])
y = torch.tensor([[0.], [1], [1], [0]])
w1 = (torch.rand(2, 8) * 2 - 1).requires_grad_()
b1 = torch.zeros(8, requires_grad=True)
w2 = (torch.rand(8, 1) * 2 - 1).requires_grad_()
b2 = torch.zeros(1, requires_grad=True)
params = [w1, b1, w2, b2]
STEPS, REPEATS = 2000, 7
times = []
for _ in range(REPEATS):
    t0 = time.perf_counter()
    for _ in range(STEPS):
        h = torch.tanh(x @ w1 + b1)
        loss = ((h @ w2 + b2 - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad.zero_()
    times.append((time.perf_counter() - t0) / STEPS)
print(f"tiny_step_ns {statistics.median(times) * 1e9:.0f} (median of {REPEATS} x {STEPS} steps; "
      f"final loss {loss.item():.4f})")
