#!/usr/bin/env python3
"""scripts/exits_mean.py on report folders written here with known numbers (ctest: Scripts.*).

Two seeds of an RLA backbone (heads reading h, x and (x, h)) and a plain one (x), the plain run in
both folders of its seed as `rla exits` writes it. Checks the means, every seed's value, the signed
differences and their bold mark (same sign in every seed), the plain run counted once for its
errors and its timings averaged, and a missing folder as a one-line error.
    python3 tests/scripts/test_exits_mean.py scripts/exits_mean.py
"""
import os
import subprocess
import sys
import tempfile

SCRIPT = sys.argv[1]
DEPTH_HEAD = "exit,depth,block_name,macs_per_image,error_all,error_easy,error_hard\n"
DYN_HEAD = "tau,accuracy,mean_macs_per_image,ms_per_image,batch_size,share_exit_0,share_final\n"

# error_all of exits 1 and 2 per (input, seed); easy = all - 5, hard = all + 10
ERRORS = {("state", 0): (50.0, 30.0), ("state", 1): (52.0, 27.0),
          ("main", 0): (55.0, 29.0), ("main", 1): (51.0, 29.0),
          ("both", 0): (45.0, 20.0), ("both", 1): (47.0, 22.0)}


def write(folder, name, text):
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)


def depth_rows(errors, macs=(5000000, 9000000)):
    rows = ""
    for e, err in enumerate(errors):
        block = "stages.0.%d%s" % (e, " (final head)" if e == len(errors) - 1 else "")
        rows += f"{e},{e + 1},{block},{macs[e]},{err:.4f},{err - 5:.4f},{err + 10:.4f}\n"
    return DEPTH_HEAD + rows


def dynamic_rows(accuracy, ms):
    return DYN_HEAD + f"0.5,{accuracy:.4f},7000000,{ms:.5f},256,0.5,0.5\n1,{accuracy + 1:.4f},9000000,{ms + 1:.5f},256,0,1\n"


def cell_line(output, exit_number, heading):
    section = output.split(heading, 1)[1]
    for line in section.splitlines():
        if line.startswith(f"| {exit_number} |"):
            return line
    raise AssertionError(f"no row {exit_number} after '{heading}'")


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for seed in (0, 1):
            for backbone in ("rla_x", "rla_y"):  # two reports per seed; plainnet in both
                folder = os.path.join(tmp, f"report-{backbone}-seed{seed}")
                os.makedirs(folder)
                folders.append(folder)
                if backbone == "rla_x":
                    for inp in ("state", "main", "both"):
                        write(folder, f"rla_x-seed{seed}-{inp}_depth.csv", depth_rows(ERRORS[(inp, seed)]))
                        write(folder, f"rla_x-seed{seed}-{inp}_dynamic.csv", dynamic_rows(90.0 + seed, 2.0))
                ms = 1.0 if backbone == "rla_x" else 3.0  # the plain run timed twice per seed
                write(folder, f"plainnet-seed{seed}-main_depth.csv", depth_rows((60.0 + seed, 40.0)))
                write(folder, f"plainnet-seed{seed}-main_dynamic.csv", dynamic_rows(80.0, ms))
        out = subprocess.run([sys.executable, SCRIPT] + folders, capture_output=True, text=True, check=True).stdout

        row = cell_line(out, 1, "rla_x: top-1 error (%) on all test images")
        check("| 51.00 (50.00 / 52.00) | 53.00 (55.00 / 51.00) | 46.00 (45.00 / 47.00) |" in row, row)
        check("5.0 / 5.0 / 5.0" in row, row)
        row = cell_line(out, 2, "rla_x: top-1 error (%) on hard test images")
        check("| 38.50 (40.00 / 37.00) | 39.00 (39.00 / 39.00) | 31.00 (30.00 / 32.00) |" in row, row)
        row = cell_line(out, 1, "rla_x: differences between head inputs")
        # h - x: -5 and +1 (mixed signs: plain); (x, h) - x: -10 and -4 (same sign: bold)
        check("| −2.00 (−5.00 / +1.00) |" in row, row)
        check("**−7.00 (−10.00 / −4.00)**" in row, row)
        row = cell_line(out, 2, "rla_x: differences between head inputs")
        check("| −0.50 (+1.00 / −2.00) |" in row, row)  # +1 and -2: mixed, plain
        row = cell_line(out, 1, "plainnet: top-1 error (%) on all test images")
        check("| 60.50 (60.00 / 61.00) |" in row, row)
        dyn = out.split("### Dynamic inference", 1)[1]
        line = [l for l in dyn.splitlines() if l.startswith("| 0.5 |")][0]
        check("90.50 %, 7.0 M, 2.00 ms" in line, line)   # rla_x reads h: seeds 90 and 91
        check("80.00 %, 7.0 M, 2.00 ms" in line, line)   # plainnet: 1.0 and 3.0 ms averaged
        check(line.count("|") == 6, line)                 # tau + h, x, (x, h) + plainnet

        bad = subprocess.run([sys.executable, SCRIPT, os.path.join(tmp, "missing")], capture_output=True, text=True)
        check(bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "missing" in bad.stderr, bad.stderr)
    print("exits_mean: all checks passed")


if __name__ == "__main__":
    main()
