"""Eager-PyTorch side of the side-by-side benchmark (benchmarks/bench_compare.cpp).

The C++ driver starts this process once and talks to it over stdin/stdout, one JSON object per
line, so that C++ and Python workloads can alternate within one run:

  {"op": "prepare", "model": "rla_resnet20", "mode": "train"|"infer", "batch": 128, "size": 32,
   "threads": 2, "device": "cpu"}                      -> {"ok": true, "warmup_s": ...}
  {"op": "run", "iters": 5}                           -> {"seconds": ..., "hwm_kb": ...}
  {"op": "quit"}

Training is one SGD step (momentum 0.9, weight decay 1e-4) on cross-entropy of a fixed random
batch; inference is model.eval() under torch.inference_mode(). By default both use NCHW and eager
mode, the way a plain PyTorch script runs. With "tuned": true in the prepare request, the way a
speed-minded PyTorch user runs them: channels-last model and input, and for inference a traced,
frozen module through torch.jit.optimize_for_inference (BatchNorm folded, oneDNN) under
torch.inference_mode(); the heap settings come from the environment the driver starts this
process with (jemalloc preloaded, or glibc's malloc tunables). hwm_kb is the peak resident set
during the `run` (VmHWM, reset through /proc/self/clear_refs before it starts).
"""
import json
import os
import sys
import time

# Same thread setup as the C++ side (include/rla/util/threads.h): OpenBLAS single-threaded, the
# intra-op pool does the parallel work. Must be set before torch loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rla_reference  # noqa: E402


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Workload:
    def __init__(self, req):
        torch.manual_seed(0)
        torch.set_num_threads(int(req["threads"]))
        self.device = torch.device(req.get("device", "cpu"))
        tuned = bool(req.get("tuned", False))
        fmt = torch.channels_last if tuned else torch.contiguous_format
        self.model = rla_reference.create(req["model"]).to(self.device).to(memory_format=fmt)
        self.mode = req["mode"]
        b, s = int(req["batch"]), int(req["size"])
        self.x = torch.randn(b, 3, s, s, device=self.device).contiguous(memory_format=fmt)
        classes = self.model.fc.out_features if hasattr(self.model, "fc") else 1000
        self.y = torch.randint(classes, (b,), device=self.device)
        if self.mode == "train":
            self.model.train()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        else:
            self.model.eval()
            if tuned:
                with torch.no_grad():
                    traced = torch.jit.trace(self.model, self.x)
                    self.model = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def step(self):
        if self.mode == "train":
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.model(self.x), self.y)
            loss.backward()
            self.opt.step()
            loss.item()
        else:
            with torch.inference_mode():
                self.model(self.x).sum().item()

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def main():
    work = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "quit":
            break
        if op == "prepare":
            work = None
            work = Workload(req)
            t0 = time.perf_counter()
            for _ in range(int(req.get("warmup", 1))):
                work.step()
            work.sync()
            reply = {"ok": True, "warmup_s": time.perf_counter() - t0}
        elif op == "run":
            reset_hwm()
            t0 = time.perf_counter()
            for _ in range(int(req["iters"])):
                work.step()
            work.sync()
            reply = {"seconds": time.perf_counter() - t0, "hwm_kb": hwm_kb()}
        else:
            reply = {"error": f"unknown op {op!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
