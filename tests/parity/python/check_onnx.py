#!/usr/bin/python3
"""Checks ONNX files written by `rla export --format onnx` with ONNX's own checker and OpenCV's dnn
module (a test reference only; the library never runs Python).

    check_onnx.py DIR

For every DIR/<name>.onnx the C++ test wrote <name>.input.bin and <name>.logits.bin (raw float32,
the eager forward of the input) and <name>.shapes (their dims, one line each). Each model must pass
onnx.checker.check_model with full shape inference, and OpenCV's readNetFromONNX must reproduce the
logits within 1e-4 (max abs difference, scaled by the largest logit when that exceeds 1).

Two limits of OpenCV 4.6 are known, reported and not failed:
  * it reads Clip only in its opset-6 form (min/max as attributes), while opset 13 gives them as
    inputs, so models with ReLU6 (the MobileNetV2 family) do not load;
  * with a free batch its shape check rejects a broadcasting Mul ([N, C, H, W] * [N, C, 1, 1], the
    squeeze-excitation gate); such a model is run again with the batch fixed in the file.
Any other rejection fails. Prints one line per model; exits 1 when any fails.
"""
import glob
import os
import sys
import tempfile

import cv2
import numpy as np
import onnx

TOLERANCE = 1e-4


def read_case(directory, name):
    with open(os.path.join(directory, name + ".shapes")) as f:
        shapes = [[int(d) for d in line.split()] for line in f if line.strip()]
    x = np.fromfile(os.path.join(directory, name + ".input.bin"), dtype=np.float32).reshape(shapes[0])
    y = np.fromfile(os.path.join(directory, name + ".logits.bin"), dtype=np.float32).reshape(shapes[1])
    return x, y


def run_opencv(path, x):
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x)
    return net.forward()


def main():
    directory = sys.argv[1]
    files = sorted(glob.glob(os.path.join(directory, "*.onnx")))
    if not files:
        sys.exit("no .onnx files in " + directory)
    failed = 0
    for path in files:
        name = os.path.basename(path)[: -len(".onnx")]
        x, want = read_case(directory, name)
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported
            print(f"{name}: onnx checker FAILED: {str(e).splitlines()[0]}")
            failed += 1
            continue
        note = ""
        try:
            try:
                got = run_opencv(path, x)
            except cv2.error as e:
                if "shape_utils.hpp" not in str(e):
                    raise
                model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = x.shape[0]
                model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = x.shape[0]
                with tempfile.TemporaryDirectory() as scratch:
                    fixed = os.path.join(scratch, "fixed-batch.onnx")
                    onnx.save(model, fixed)
                    got = run_opencv(fixed, x)
                note = " (with the batch fixed)"
        except Exception as e:  # noqa: BLE001
            if any(node.op_type == "Clip" for node in model.graph.node):
                print(f"{name}: checker ok, OpenCV {cv2.__version__} rejects Clip with min/max inputs (expected)")
                continue
            print(f"{name}: checker ok, OpenCV FAILED: {' '.join(str(e).split())[:300]}")
            failed += 1
            continue
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        ok = diff <= TOLERANCE * max(1.0, float(np.abs(want).max()))
        print(f"{name}: checker ok, OpenCV {cv2.__version__}{note} max abs difference {diff:.2e} "
              f"(logits up to {np.abs(want).max():.2f}) {'ok' if ok else 'TOO LARGE'}")
        failed += not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
