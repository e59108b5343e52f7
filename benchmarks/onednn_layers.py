#!/usr/bin/env python3
"""Time per oneDNN convolution of one forward, from oneDNN's verbose log, grouped by shape.

    ONEDNN_VERBOSE=1 ./build/benchmarks/profile_ops --model resnet50 --mode infer --batch 32 \\
        --size 224 --fast --steps 6 --no-profile > log.txt
    python3 benchmarks/onednn_layers.py log.txt 32

The last forward of the log is read: the steps before it warm the heap and oneDNN's caches (in the
first forwards, and in profile_ops' profiled pass, several 1x1 convolutions ran 3-10x slower).
A forward starts at the stem convolution (3 input channels; set --first for another marker).
GFLOP/s = 2 * batch * C_in * C_out * H_out * W_out * k_h * k_w / time, per group of shapes.
"""
import argparse
import collections
import re

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("log")
parser.add_argument("batch", type=int)
parser.add_argument("--first", default="ic3oc", help="problem text of a forward's first primitive")
parser.add_argument("--top", type=int, default=25)
args = parser.parse_args()

rows = [line.strip().split(",") for line in open(args.log) if "_verbose,exec," in line]
rows = [r for r in rows if r[3] == "convolution"]
starts = [i for i, r in enumerate(rows) if args.first in r[-2]]
if not starts:
    raise SystemExit(f"{args.log}: no convolution matching {args.first!r} (was ONEDNN_VERBOSE=1 set?)")
last = rows[starts[-1]:]
groups = collections.defaultdict(lambda: [0, 0.0, 0.0, ""])
for r in last:
    problem = re.sub(r"^mb\d+_", "", r[-2])
    m = re.match(r"(?:g(\d+))?ic(\d+)oc(\d+)_ih\d+oh(\d+)kh(\d+).*?ow(\d+)kw(\d+)", problem)
    g, ic, oc, oh, kh, ow, kw = (int(v) if v else 1 for v in m.groups())
    g_ = groups[problem]
    g_[0] += 1
    g_[1] += float(r[-1])
    g_[2] += 2.0 * args.batch * ic * oc * oh * ow * kh * kw / g
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
