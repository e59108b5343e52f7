#!/usr/bin/python3
"""Checks TorchScript files written by `rla export` in Python (a test reference only; the library
never runs Python).

    check_torchscript.py DIR

For every DIR/<name>.ts.pt there is DIR/<name>.io.pt (written by the C++ test): {"input": x,
"logits": the C++ eager forward of x}. Loads the module with torch.jit.load, runs x and prints the
largest difference relative to the largest logit; exits 1 when any exceeds 1e-4 or a file fails.
"""
import glob
import os
import sys

import torch

failed = 0
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.ts.pt")))
if not files:
    sys.exit("no .ts.pt files in " + sys.argv[1])
for path in files:
    name = os.path.basename(path)[: -len(".ts.pt")]
    try:
        module = torch.jit.load(path)
        io = torch.load(os.path.join(sys.argv[1], name + ".io.pt"))
        with torch.no_grad():
            got = module(io["input"])
        want = io["logits"]
        rel = ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()
        ok = got.shape == want.shape and rel <= 1e-4
    except Exception as e:  # noqa: BLE001 - any failure is reported
        print(f"{name}: FAILED {e}")
        failed += 1
        continue
    print(f"{name}: relative difference {rel:.2e} {'ok' if ok else 'TOO LARGE'}")
    failed += not ok
sys.exit(1 if failed else 0)
