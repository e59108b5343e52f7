#!/usr/bin/env python3
"""Time per oneDNN convolution of one forward, from oneDNN's verbose log, grouped by shape.

    ONEDNN_VERBOSE=1 ./build/benchmarks/profile_ops --model resnet50 --mode infer --batch 32 \\
        --size 224 --fast --steps 6 --no-profile > log.txt
    python3 benchmarks/onednn_layers.py log.txt 32

For a training step (--train), the last step of `profile_ops --mode train --no-profile` is read
and every shape gets its forward, backward-data and backward-weights time:

    ONEDNN_VERBOSE=1 ./build/benchmarks/profile_ops --model rla_resnet20 --threads 1 --steps 4 \
        --no-profile > log.txt
    python3 benchmarks/onednn_layers.py log.txt 128 --train

The last forward of the log is read: the steps before it warm the heap and oneDNN's caches (in the
first forwards, and in profile_ops' profiled pass, several 1x1 convolutions ran 3-10x slower).
A forward starts at the stem convolution (3 input channels; set --first for another marker).
GFLOP/s = 2 * batch * C_in * C_out * H_out * W_out * k_h * k_w / time, per group of shapes.

Beside ONNX Runtime, shape by shape (the same model exported by bench_deploy --onnx-dir or rla export):
    node benchmarks/onnxruntime_profile.js NODE_MODULES 2 resnet50.onnx 32 > ort.txt
    python3 benchmarks/onednn_layers.py log.txt 32 --join ort.txt
"""
import argparse
import collections
import re

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("log")
parser.add_argument("batch", type=int)
parser.add_argument("--first", default="ic3oc", help="problem text of a forward's first primitive")
parser.add_argument("--top", type=int, default=25)
parser.add_argument("--join", metavar="ORT_OUTPUT",
                    help="output of benchmarks/onnxruntime_profile.js for the same model and batch: "
                         "print ONNX Runtime's time and rate beside ours, shape by shape (a strided 1x1 "
                         "convolution that our fast path runs on a subsampled input logs as stride 1 on "
                         "the smaller map, without the copy, and pairs with nothing)")
parser.add_argument("--train", action="store_true",
                    help="the log is of training steps: read the last one, forward and both backward passes")
args = parser.parse_args()

rows = [line.strip().split(",") for line in open(args.log) if "_verbose,exec," in line]
rows = [r for r in rows if r[3] == "convolution"]
starts = [i for i, r in enumerate(rows) if args.first in r[-2] and r[5].startswith("forward")]
if not starts:
    raise SystemExit(f"{args.log}: no convolution matching {args.first!r} (was ONEDNN_VERBOSE=1 set?)")
last = rows[starts[-1]:]


def problem_flops(problem):
    m = re.match(r"(?:g(\d+))?ic(\d+)oc(\d+)_ih\d+oh(\d+)kh(\d+).*?ow(\d+)kw(\d+)", problem)
    g, ic, oc, oh, kh, ow, kw = (int(v) if v else 1 for v in m.groups())
    return 2.0 * args.batch * ic * oc * oh * ow * kh * kw / g


if args.train:
    # One step: forward_training, backward_data and backward_weights of every convolution.
    kinds = ("forward_training", "backward_data", "backward_weights")
    steps = collections.defaultdict(lambda: {k: [0, 0.0] for k in kinds})
    for r in last:
        if r[5] not in kinds:
            continue
        cell = steps[re.sub(r"^mb\d+_", "", r[-2])][r[5]]
        cell[0] += 1
        cell[1] += float(r[-1])
    per_kind = {k: sum(v[k][1] for v in steps.values()) for k in kinds}
    total = sum(per_kind.values())
    print(f"one training step, batch {args.batch}: convolutions {total:.1f} ms (forward "
          f"{per_kind['forward_training']:.1f}, backward data {per_kind['backward_data']:.1f}, "
          f"backward weights {per_kind['backward_weights']:.1f})")
    print("| calls | forward ms | bwd data ms | bwd weights ms | all ms | share | GFLOP/s | shape |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    order = sorted(steps.items(), key=lambda kv: -sum(c[1] for c in kv[1].values()))
    for problem, cells in order[: args.top]:
        ms = sum(c[1] for c in cells.values())
        calls = cells["forward_training"][0]
        # GFLOP/s over the passes that ran: each does the forward's work (2 FLOPs per multiply-add),
        # so three times it for most shapes, twice for the stem (no backward data).
        work = problem_flops(problem) * sum(c[0] for c in cells.values())
        shape = re.sub(r"dh0|dw0|_iw\d+", "", problem)
        print(f"| {calls} | {cells['forward_training'][1]:.2f} | {cells['backward_data'][1]:.2f} | "
              f"{cells['backward_weights'][1]:.2f} | {ms:.2f} | {100 * ms / total:.0f} % | {work / ms / 1e6:.0f} | {shape} |")
    raise SystemExit(0)

groups = collections.defaultdict(lambda: [0, 0.0, 0.0, ""])
for r in last:
    problem = re.sub(r"^mb\d+_", "", r[-2])
    g_ = groups[problem]
    g_[0] += 1
    g_[1] += float(r[-1])
    g_[2] += problem_flops(problem)
    g_[3] = r[7].strip() or "-"
total = sum(v[1] for v in groups.values())
flops = sum(v[2] for v in groups.values())
print(f"one forward, batch {args.batch}: {len(last)} convolutions, {total:.1f} ms, "
      f"{flops / total / 1e6:.0f} GFLOP/s overall")
print("| calls | ms | share | GFLOP/s | shape | post-ops |")
print("|---:|---:|---:|---:|---|---|")
for problem, (calls, ms, fl, post) in sorted(groups.items(), key=lambda kv: -kv[1][1])[: args.top]:
    shape = re.sub(r"dh0|dw0|_iw\d+", "", problem)
    print(f"| {calls} | {ms:.1f} | {100 * ms / total:.0f} % | {fl / ms / 1e6:.0f} | {shape} | {post} |")

if args.join:
    # "| calls | ms | GFLOP/s | icCoK_ihHohHkhKshS |" rows of onnxruntime_profile.js
    ort = {}
    for line in open(args.join):
        m = re.match(r"\| (\d+) \| ([\d.]+) \| (\d+) \| (ic\d+oc\d+_ih\d+oh\d+kh\d+sh\d+) \|", line)
        if m:
            ort[m.group(4)] = (int(m.group(1)), float(m.group(2)))
    ours = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for problem, (calls, ms, fl, _) in groups.items():
        m = re.match(r"(?:g\d+)?ic(\d+)oc(\d+)_ih(\d+)oh(\d+)kh(\d+)sh(\d+)", problem)
        key = "ic{}oc{}_ih{}oh{}kh{}sh{}".format(*m.groups())
        ours[key][0] += calls
        ours[key][1] += ms
        ours[key][2] += fl
    print(f"\nagainst ONNX Runtime ({args.join}), by shape; ours / ORT > 1: ORT is faster")
    print("| shape | calls | ours ms | ORT ms | ours GFLOP/s | ORT GFLOP/s | ours / ORT |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    both_ours = both_ort = 0.0
    for key, (calls, ms, fl) in sorted(ours.items(), key=lambda kv: -kv[1][1]):
        if key not in ort:
            print(f"| {key} | {calls} | {ms:.1f} | - | {fl / ms / 1e6:.0f} | - | - |")
            continue
        o_ms = ort[key][1]
        both_ours += ms
        both_ort += o_ms
        print(f"| {key} | {calls} | {ms:.1f} | {o_ms:.1f} | {fl / ms / 1e6:.0f} | {fl / o_ms / 1e6:.0f} | "
              f"{ms / o_ms:.2f} |")
    missing = sorted(set(ort) - set(ours))
    print(f"shapes in both: ours {both_ours:.1f} ms, ORT {both_ort:.1f} ms ({both_ours / max(both_ort, 1e-9):.2f}x); "
          f"ORT-only shapes: {', '.join(missing) or 'none'}")
