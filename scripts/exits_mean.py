#!/usr/bin/env python3
"""The exit study over seeds: mean tables from several `rla exits -o DIR` report folders.

Reads every <run>_depth.csv and <run>_dynamic.csv of the given folders, where <run> is a head
run's folder name, <model>-seed<N>-<input> (or <model>-<input> for a single seed) and <input> is
state (h alone), main (x alone) or both (cat(x, h)). Prints Markdown: per backbone, the top-1 error
at every exit on all / easy / hard test images as the mean of the seeds with every seed's value,
the differences between head inputs per seed, and the dynamic-inference sweep averaged over seeds.
A run that appears in several folders (resnet32 is in every report of its seed) counts once: its
depth sweep from the first folder, its timings averaged over all of them.

    python3 scripts/exits_mean.py experiments/cifar/exits/report-*-seed[01]
"""
import csv
import os
import re
import statistics
import sys

NAME = re.compile(r"^(?P<model>.+?)(?:-seed(?P<seed>\d+))?-(?P<input>state|main|both)_(?P<kind>depth|dynamic)\.csv$")
LABEL = {"state": "h", "main": "x", "both": "(x, h)"}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load(folders):
    depth, dynamic = {}, {}  # (model, input) -> {seed: rows}; dynamic: {seed: [rows, ...]}
    for folder in folders:
        for name in sorted(os.listdir(folder)):
            m = NAME.match(name)
            if not m:
                continue
            key, seed = (m["model"], m["input"]), int(m["seed"] or 0)
            rows = read_csv(os.path.join(folder, name))
            if m["kind"] == "depth":
                depth.setdefault(key, {}).setdefault(seed, rows)
            else:
                dynamic.setdefault(key, {}).setdefault(seed, []).append(rows)
    return depth, dynamic


def mean(values):
    return statistics.fmean(values) if values else float("nan")


def cell(values, signed=False):
    """'mean (v0 / v1 / ...)' or the single value, two decimals (with its sign when `signed`)."""
    f = "+.2f" if signed else ".2f"
    text = f"{mean(values):{f}}"
    if len(values) > 1:
        text += f" ({' / '.join(f'{v:{f}}' for v in values)})"
    return text.replace("-", "−")


def error_table(model, inputs, depth, column):
    seeds = sorted(set.intersection(*(set(depth[(model, i)]) for i in inputs)))
    first = depth[(model, inputs[0])][seeds[0]]
    head = " | ".join(f"reads {LABEL[i]}" for i in inputs)
    macs_head = " / ".join(LABEL[i] for i in inputs)
    out = [f"| exit | block | MACs (M), {macs_head} | {head} |", "|---:|---|---:|" + "---:|" * len(inputs)]
    for e, row in enumerate(first):
        cells = [cell([float(depth[(model, i)][s][e][column]) for s in seeds]) for i in inputs]
        macs = " / ".join(f"{int(depth[(model, i)][seeds[0]][e]['macs_per_image']) / 1e6:.1f}" for i in inputs)
        out.append(f"| {e + 1} | {row['block_name']} | {macs} | " + " | ".join(cells) + " |")
    return seeds, out


def difference_table(model, depth, pairs):
    seeds = sorted(set.intersection(*(set(depth[(model, i)]) for p in pairs for i in p)))
    first = depth[(model, pairs[0][0])][seeds[0]]
    cols = [(a, b, c) for a, b in pairs for c in ("error_all", "error_easy", "error_hard")]
    head = " | ".join(f"{LABEL[a]} − {LABEL[b]}, {c.split('_')[1]}" for a, b, c in cols)
    out = [f"| exit | {head} |", "|---:|" + "---:|" * len(cols)]
    for e in range(len(first)):
        cells = []
        for a, b, c in cols:
            d = [float(depth[(model, a)][s][e][c]) - float(depth[(model, b)][s][e][c]) for s in seeds]
            same_sign = len(d) > 1 and (all(v < 0 for v in d) or all(v > 0 for v in d))
            text = cell(d, signed=True)
            cells.append(f"**{text}**" if same_sign else text)
        out.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return out


def dynamic_table(keys, dynamic):
    taus = [r["tau"] for r in next(iter(next(iter(dynamic[keys[0]].values()))))]
    head = " | ".join(f"{m} reads {LABEL[i]}" for m, i in keys)
    out = [f"| τ | {head} |", "|---:|" + "---:|" * len(keys)]
    for t, tau in enumerate(taus):
        cells = []
        for key in keys:
            per_seed = dynamic[key]
            acc = [float(rs[0][t]["accuracy"]) for rs in per_seed.values()]
            macs = [float(rs[0][t]["mean_macs_per_image"]) / 1e6 for rs in per_seed.values()]
            ms = [mean([float(r[t]["ms_per_image"]) for r in rs]) for rs in per_seed.values()]
            cells.append(f"{mean(acc):.2f} %, {mean(macs):.1f} M, {mean(ms):.2f} ms")
        out.append(f"| {tau} | " + " | ".join(cells) + " |")
    return out


def main():
    folders = sys.argv[1:]
    if not folders:
        sys.exit(__doc__)
    for folder in folders:
        if not os.path.isdir(folder):
            sys.exit(f"exits_mean: no report folder {folder}")
    depth, dynamic = load(folders)
    if not depth:
        sys.exit(f"exits_mean: no <run>_depth.csv in {' '.join(folders)}")
    models = sorted({m for m, _ in depth})
    rla = [m for m in models if all((m, i) in depth for i in LABEL)]
    plain = [m for m in models if m not in rla]
    for model in rla:
        inputs = list(LABEL)
        for column, what in (("error_all", "all"), ("error_easy", "easy"), ("error_hard", "hard")):
            seeds, table = error_table(model, inputs, depth, column)
            print(f"\n### {model}: top-1 error (%) on {what} test images, mean of seeds {', '.join(map(str, seeds))} "
                  "(each seed in parentheses)\n")
            print("\n".join(table))
        print(f"\n### {model}: differences between head inputs, points of error (negative: the first input "
              "is better; bold: the same sign in every seed)\n")
        print("\n".join(difference_table(model, depth, [("state", "main"), ("both", "main")])))
    for model in plain:
        inputs = [i for i in LABEL if (model, i) in depth]
        seeds, table = error_table(model, inputs, depth, "error_all")
        print(f"\n### {model}: top-1 error (%) on all test images, mean of seeds {', '.join(map(str, seeds))}\n")
        print("\n".join(table))
    keys = [(m, i) for m in rla + plain for i in LABEL if (m, i) in dynamic]
    print("\n### Dynamic inference, mean of the seeds: accuracy, mean MACs per image, ms per image\n")
    print("\n".join(dynamic_table(keys, dynamic)))


if __name__ == "__main__":
    main()
