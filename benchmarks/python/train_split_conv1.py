#!/usr/bin/env python3
"""RLA's conv1 in a training step: over cat(x, h), or split into conv(x) + conv(h) (no concatenation).

One forward + backward of the 3x3 convolution that reads [x, h] at each CIFAR stage (rla_resnet20,
k = 12, batch 128, channels-last, one thread), three ways, alternated; medians of 5 rounds of 3:
    cat            conv2d(cat([x, h]), W)                                  (what the trainer does)
    split          conv2d(x, W[:, :C]) + conv2d(h, W[:, C:])
    split_inplace  the same with the sum in place
PyTorch 1.13 runs the same ATen / oneDNN kernels as the C++ trainer. Run it with glibc's heap kept,
as the trainer keeps it (util/memory.h); on glibc's default heap fresh pages are faulted in at
every step and the concatenation alone looks several times slower:
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456 \\
        /usr/bin/python3 benchmarks/python/train_split_conv1.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
CL = torch.channels_last


def tensor(*shape):
    return torch.randn(*shape).contiguous(memory_format=CL).requires_grad_()


def main():
    batch, k = 128, 12
    for c, size in [(16, 32), (32, 16), (64, 8)]:
        x, h = tensor(batch, c, size, size), tensor(batch, k, size, size)
        w = tensor(c, c + k, 3, 3)
        g = torch.randn(batch, c, size, size).contiguous(memory_format=CL)

        def cat():
            F.conv2d(torch.cat([x, h], 1), w, padding=1).backward(g)

        def split():
            (F.conv2d(x, w[:, :c], padding=1) + F.conv2d(h, w[:, c:], padding=1)).backward(g)

        def split_inplace():
            F.conv2d(x, w[:, :c], padding=1).add_(F.conv2d(h, w[:, c:], padding=1)).backward(g)

        ways = {"cat": cat, "split": split, "split_inplace": split_inplace}
        for f in ways.values():
            f()
        times = {name: [] for name in ways}
        for _ in range(5):
            for name, f in ways.items():
                t0 = time.perf_counter()
                for _ in range(3):
                    f()
                times[name].append((time.perf_counter() - t0) / 3 * 1e3)
        medians = ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in times.items())
        print(f"C={c} k={k} {size}x{size}: ms per forward + backward (median): {medians}")


if __name__ == "__main__":
    main()
