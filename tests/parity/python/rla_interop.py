#!/usr/bin/python3
"""Builds and checks PyTorch files for the C++ interop tests (tests/parity/test_parity_interop.cpp).

The model below is the official RLA_ResNet / RLA_Bottleneck (docs/models.md, "The RLA cell"), written out here
so that the test owns its reference: same module names, same forward.

  make-checkpoint CKPT IO --layers 2,1,1,1   official-style DDP checkpoint + input/logits
  check WEIGHTS IO --layers 2,1,1,1          load a C++-written state dict with weights_only=True,
                                             strict, and compare logits with the C++ ones in IO
  make-zoo OUT                               every value kind the C++ reader must understand
  make-features WEIGHTS IO --layers 3,4,6,3  random weights of a full-width RLA-ResNet, an input and
                                             the official mmdetection backbone's stage outputs (the
                                             main path after every stage, `outs.append(x)`)
"""
import argparse
import sys
from collections import OrderedDict

import torch
import torch.nn as nn


def conv3x3(cin, cout, stride=1, groups=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class RLA_Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, rla_channel=32, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes + rla_channel, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.averagePooling = nn.AvgPool2d(2, 2) if downsample is not None and stride != 1 else None

    def forward(self, x, h):
        identity = x
        out = self.relu(self.bn1(self.conv1(torch.cat((x, h), dim=1))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        y = out
        if self.downsample is not None:
            identity = self.downsample(identity)
        if self.averagePooling is not None:
            h = self.averagePooling(h)
        # As in the official code: in-place, so y (an alias of out) becomes the block output.
        out += identity
        out = self.relu(out)
        return out, y, h


class RLA_ResNet(nn.Module):
    def __init__(self, layers, num_classes=10, rla_channel=32, width_per_group=16):
        super().__init__()
        self.inplanes = 64
        self.rla_channel = rla_channel
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, bns, conv_outs, recurrent = [], [], [], []
        for i, planes in enumerate([64, 128, 256, 512]):
            blocks, stage_bns = self._make_layer(planes, layers[i], 1 if i == 0 else 2)
            stages.append(blocks)
            bns.append(stage_bns)
            conv_outs.append(conv1x1(planes * 4, rla_channel))
            recurrent.append(conv3x3(rla_channel, rla_channel))
        self.conv_outs = nn.ModuleList(conv_outs)
        self.recurrent_convs = nn.ModuleList(recurrent)
        self.stages = nn.ModuleList(stages)
        self.stage_bns = nn.ModuleList(bns)
        self.tanh = nn.Tanh()
        self.bn2 = nn.BatchNorm2d(rla_channel)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * 4 + rla_channel, num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * 4, stride), nn.BatchNorm2d(planes * 4))
        layers = [RLA_Bottleneck(self.inplanes, planes, stride, downsample, self.rla_channel, 1, self.base_width)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(RLA_Bottleneck(self.inplanes, planes, 1, None, self.rla_channel, 1, self.base_width))
        return nn.ModuleList(layers), nn.ModuleList([nn.BatchNorm2d(self.rla_channel) for _ in range(blocks)])

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        n, _, hh, ww = x.size()
        h = torch.zeros(n, self.rla_channel, hh, ww, dtype=x.dtype)
        for blocks, bns, conv_out, recurrent_conv in zip(self.stages, self.stage_bns, self.conv_outs,
                                                         self.recurrent_convs):
            for block, bn in zip(blocks, bns):
                x, y, h = block(x, h)
                h = recurrent_conv(self.tanh(bn(h + conv_out(y))))
        h = self.relu(self.bn2(h))
        x = torch.flatten(self.avgpool(torch.cat((x, h), dim=1)), 1)
        return self.fc(x)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(17)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("weight") and t.dim() > 1:
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if name.endswith("bn.weight") else 0.0))


def layers_arg(s):
    return [int(v) for v in s.split(",")]


def make_checkpoint(args):
    torch.manual_seed(0)
    model = RLA_ResNet(layers_arg(args.layers))
    randomize(model, 1)
    ddp = nn.DataParallel(model)  # the official scripts train under (D)DP: keys get "module."
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    model.train()
    loss = model(x).logsumexp(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()  # fills the optimizer's momentum buffers
    model.eval()
    with torch.no_grad():
        logits = model(x)
    ckpt = {"epoch": 7, "arch": "rla_resnet_test", "state_dict": ddp.state_dict(),
            "best_acc1": torch.tensor(71.25), "optimizer": opt.state_dict()}
    assert isinstance(ckpt["state_dict"], OrderedDict)
    torch.save(ckpt, args.ckpt)
    torch.save({"input": x, "logits_eval": logits}, args.io)


def check(args):
    model = RLA_ResNet(layers_arg(args.layers))
    sd = torch.load(args.weights, weights_only=True)
    model.load_state_dict(sd, strict=True)
    io = torch.load(args.io, weights_only=True)
    model.eval()
    with torch.no_grad():
        logits = model(io["input"])
    ref = io["logits"]
    err = ((logits - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
    print(f"python vs C++ logits: max relative difference {err:.3g}")
    return 0 if err < 1e-4 else 1


def stage_outputs(model, x):
    """The official mmdetection RLA_ResNet backbone's forward (RLANet's mmdet code): the same stem,
    blocks and state updates as the classifier, returning x after every stage; no head."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    n, _, hh, ww = x.size()
    h = torch.zeros(n, model.rla_channel, hh, ww, dtype=x.dtype)
    outs = []
    for blocks, bns, conv_out, recurrent_conv in zip(model.stages, model.stage_bns, model.conv_outs,
                                                     model.recurrent_convs):
        for block, bn in zip(blocks, bns):
            x, y, h = block(x, h)
            h = recurrent_conv(model.tanh(bn(h + conv_out(y))))
        outs.append(x)
    return outs + [h]


def make_features(args):
    torch.manual_seed(0)
    model = RLA_ResNet(layers_arg(args.layers), num_classes=1000, width_per_group=64)
    randomize(model, 3)
    model.eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        outs = stage_outputs(model, x)
    torch.save(model.state_dict(), args.weights)
    io = {"input": x, "h": outs[-1]}
    for i, t in enumerate(outs[:-1]):
        io[f"C{i + 2}"] = t
    torch.save(io, args.io)


def make_zoo(args):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = OrderedDict()
    for name, dt in [("f32", torch.float32), ("f64", torch.float64), ("f16", torch.float16),
                     ("bf16", torch.bfloat16), ("i64", torch.int64), ("i32", torch.int32), ("i16", torch.int16),
                     ("i8", torch.int8), ("u8", torch.uint8)]:
        obj[name] = (torch.arange(6) - (0 if dt == torch.uint8 else 2)).to(dt)
    obj["bool"] = torch.arange(6) % 2 == 0
    obj["base"] = base
    obj["view"] = base[1:, ::2]  # offset 6, strides (6, 2): shares base's storage
    obj["transposed"] = base.t()
    obj["scalar"] = torch.tensor(3.5)
    obj["empty"] = torch.zeros(0, 3)
    obj["param"] = nn.Parameter(torch.ones(3))
    obj["list"] = [1, -2, 2 ** 40, -(2 ** 63), 1.5, None, True, False, "h\u00e9llo"]
    obj["tuple"] = (1, (2, 3), ())
    obj["nested"] = {"a": {"b": [torch.ones(2)]}, 7: "seven"}
    torch.save(obj, args.out)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make-checkpoint")
    a.add_argument("ckpt")
    a.add_argument("io")
    a.add_argument("--layers", default="2,1,1,1")
    b = sub.add_parser("check")
    b.add_argument("weights")
    b.add_argument("io")
    b.add_argument("--layers", default="2,1,1,1")
    c = sub.add_parser("make-zoo")
    c.add_argument("out")
    d = sub.add_parser("make-features")
    d.add_argument("weights")
    d.add_argument("io")
    d.add_argument("--layers", default="3,4,6,3")
    args = p.parse_args()
    commands = {"make-checkpoint": make_checkpoint, "check": check, "make-zoo": make_zoo,
                "make-features": make_features}
    return commands[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
