#!/usr/bin/python3
"""Reference outputs of torchvision 0.14 for tests/unit/test_augment.cpp (a test reference only;
the library never runs Python).

    augment_reference.py DIR

reads what the C++ test wrote to DIR (torch.save files) and writes torchvision's answers beside:

  cases.pt             float64 [K, 2]: (op index, magnitude) rows; the op index is a position in
                       TrivialAugmentWide._augmentation_space(31), the order rla::data::AugmentOp uses
  image_<name>.pt      uint8 [C, H, W]
  -> ops_<name>.pt     uint8 [K, C, H, W]: autoaugment._apply_op(image, op, magnitude, NEAREST,
                       fill=None) for each case (checked here to equal fill=[0.0] * C)
  -> tables_<name>.pt  {"{ta,ra}_magnitudes": float64 [14, 31], "{ta,ra}_signed": [14],
                       "{ta,ra}_scalar": [14]}: the _augmentation_space tables of
                       TrivialAugmentWide(31) and RandAugment(num_magnitude_bins=31) for the
                       image's size; ops without a magnitude table have scalar 1 and zeros
  mix_images.pt, mix_labels.pt (float [N, C, H, W], int64 [N]), mix_params.pt float64
  [lambda, r_x, r_y, num_classes]
  -> mix_out.pt        RandomMixup / RandomCutmix of references/classification/transforms.py
                       with their random draws replaced by those parameters
"""
import glob
import math
import os
import sys

import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op

# rla::data::AugmentOp, in enum order.
EXPECTED_OPS = [
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
]
BINS = 31


def op_names():
    names = list(TrivialAugmentWide()._augmentation_space(BINS).keys())
    ra_names = list(RandAugment()._augmentation_space(BINS, (32, 32)).keys())
    if names != EXPECTED_OPS or ra_names != EXPECTED_OPS:
        sys.exit(f"augment_reference: torchvision's op order {names} / {ra_names} differs from {EXPECTED_OPS}")
    return names


def apply_cases(image, cases, names):
    outputs = []
    channels = image.shape[0]
    for op_index, magnitude in cases.tolist():
        name = names[int(op_index)]
        out = _apply_op(image, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
        filled = _apply_op(image, name, magnitude, interpolation=InterpolationMode.NEAREST,
                           fill=[0.0] * channels)
        if not torch.equal(out, filled):
            sys.exit(f"augment_reference: {name}({magnitude}) differs between fill=None and fill=0")
        outputs.append(out)
    return torch.stack(outputs)


def tables(height, width):
    result = {}
    spaces = {
        "ta": TrivialAugmentWide()._augmentation_space(BINS),
        "ra": RandAugment()._augmentation_space(BINS, (height, width)),
    }
    for prefix, space in spaces.items():
        magnitudes = torch.zeros(len(space), BINS, dtype=torch.float64)
        signed = torch.zeros(len(space), dtype=torch.int64)
        scalar = torch.zeros(len(space), dtype=torch.int64)
        for i, (values, is_signed) in enumerate(space.values()):
            signed[i] = int(is_signed)
            if values.ndim == 0:
                scalar[i] = 1
            else:
                magnitudes[i] = torch.tensor([float(v) for v in values.tolist()], dtype=torch.float64)
        result[f"{prefix}_magnitudes"] = magnitudes
        result[f"{prefix}_signed"] = signed
        result[f"{prefix}_scalar"] = scalar
    return result


def reference_mix(batch, target, num_classes, lam, r_x, r_y):
    """RandomMixup.forward and RandomCutmix.forward (torchvision references/classification/
    transforms.py, v0.14), line by line, with torch's random draws replaced by arguments."""
    one_hot = F.one_hot(target, num_classes=num_classes).to(dtype=batch.dtype)

    # RandomMixup
    images = batch.clone()
    targets = one_hot.clone()
    batch_rolled = images.roll(1, 0)
    target_rolled = targets.roll(1, 0)
    batch_rolled.mul_(1.0 - lam)
    images.mul_(lam).add_(batch_rolled)
    target_rolled.mul_(1.0 - lam)
    targets.mul_(lam).add_(target_rolled)
    out = {"mixup_images": images, "mixup_targets": targets}

    # RandomCutmix
    images = batch.clone()
    targets = one_hot.clone()
    batch_rolled = images.roll(1, 0)
    target_rolled = targets.roll(1, 0)
    H, W = images.shape[-2:]
    r = 0.5 * math.sqrt(1.0 - lam)
    r_w_half = int(r * W)
    r_h_half = int(r * H)
    x1 = int(torch.clamp(torch.tensor(r_x - r_w_half), min=0))
    y1 = int(torch.clamp(torch.tensor(r_y - r_h_half), min=0))
    x2 = int(torch.clamp(torch.tensor(r_x + r_w_half), max=W))
    y2 = int(torch.clamp(torch.tensor(r_y + r_h_half), max=H))
    images[:, :, y1:y2, x1:x2] = batch_rolled[:, :, y1:y2, x1:x2]
    lam = float(1.0 - (x2 - x1) * (y2 - y1) / (W * H))
    target_rolled.mul_(1.0 - lam)
    targets.mul_(lam).add_(target_rolled)
    out.update({"cutmix_images": images, "cutmix_targets": targets,
                "cutmix_lambda": torch.tensor([lam], dtype=torch.float64)})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    names = op_names()
    cases = torch.load(os.path.join(folder, "cases.pt"))
    for path in sorted(glob.glob(os.path.join(folder, "image_*.pt"))):
        name = os.path.basename(path)[len("image_"):-len(".pt")]
        image = torch.load(path)
        torch.save(apply_cases(image, cases, names), os.path.join(folder, f"ops_{name}.pt"))
        torch.save(tables(image.shape[1], image.shape[2]), os.path.join(folder, f"tables_{name}.pt"))
    if os.path.exists(os.path.join(folder, "mix_params.pt")):
        params = torch.load(os.path.join(folder, "mix_params.pt")).tolist()
        lam, r_x, r_y, num_classes = params[0], int(params[1]), int(params[2]), int(params[3])
        out = reference_mix(torch.load(os.path.join(folder, "mix_images.pt")),
                            torch.load(os.path.join(folder, "mix_labels.pt")), num_classes, lam, r_x, r_y)
        torch.save(out, os.path.join(folder, "mix_out.pt"))


if __name__ == "__main__":
    main()
