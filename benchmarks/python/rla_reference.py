"""Eager-PyTorch reference of RLA-ResNet (docs/models.md) and the CIFAR-style RLA/plain ResNets,
written for the side-by-side benchmark and parity checks. Parameter names follow the official
RLA_ResNet so that state_dicts written by `rla` load here by name."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, stride=1, groups=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)


class Block(nn.Module):
    """Bottleneck or basic residual block; `k` extra input channels carry the RLA state."""

    def __init__(self, inplanes, planes, stride, bottleneck, k, groups=1, base_width=64,
                 state_from_output=True):
        super().__init__()
        self.bottleneck = bottleneck
        # The official RLA_Bottleneck's `y` aliases its output (in-place add and ReLU), so the
        # state reads relu(branch + shortcut); CIFAR models read what --state-input says (docs/models.md).
        self.state_from_output = state_from_output
        exp = 4 if bottleneck else 1
        out = planes * exp
        if bottleneck:
            width = int(planes * (base_width / 64.0)) * groups
            self.conv1 = conv(inplanes + k, width, 1)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = conv(width, width, 3, stride, groups)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = conv(width, out, 1)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = conv(inplanes + k, planes, 3, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = conv(planes, planes, 3)
            self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(conv(inplanes, out, 1, stride), nn.BatchNorm2d(out))
        self.pool_state = self.downsample is not None and stride != 1
        self.out_channels = out

    def forward(self, x, h):
        z = x if h is None else torch.cat((x, h), 1)
        y = F.relu(self.bn1(self.conv1(z)))
        if self.bottleneck:
            y = F.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
        else:
            y = self.bn2(self.conv2(y))
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(y + identity)
        return out, (out if self.state_from_output else y)


class RLAResNet(nn.Module):
    """k > 0: RLA-ResNet with official names; k == 0: plain ResNet (layer1.. names)."""

    def __init__(self, layers, planes=(64, 128, 256, 512), bottleneck=True, k=32, num_classes=1000,
                 cifar_stem=False, in_channels=3, groups=1, width_per_group=64, state_from_output=True):
        super().__init__()
        self.k, self.cifar_stem = k, cifar_stem
        stem = planes[0] if cifar_stem else 64
        self.conv1 = conv(in_channels, stem, 3) if cifar_stem else conv(in_channels, stem, 7, 2)
        self.bn1 = nn.BatchNorm2d(stem)
        stages, inplanes = [], stem
        for s, (n, p) in enumerate(zip(layers, planes)):
            blocks = []
            for b in range(n):
                blk = Block(inplanes, p, 2 if (b == 0 and s > 0) else 1, bottleneck, k, groups,
                            width_per_group, state_from_output)
                inplanes = blk.out_channels
                blocks.append(blk)
            stages.append(nn.ModuleList(blocks))
        if k > 0:
            self.conv_outs = nn.ModuleList([conv(st[0].out_channels, k, 1) for st in stages])
            self.recurrent_convs = nn.ModuleList([conv(k, k, 3) for _ in stages])
            self.stages = nn.ModuleList(stages)
            self.stage_bns = nn.ModuleList([nn.ModuleList([nn.BatchNorm2d(k) for _ in st]) for st in stages])
            self.bn2 = nn.BatchNorm2d(k)
        else:
            for i, st in enumerate(stages):
                setattr(self, f"layer{i + 1}", st)
            self.stages = None
        self._stage_list = stages
        self.fc = nn.Linear(inplanes + k, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if not self.cifar_stem:
            x = F.max_pool2d(x, 3, 2, 1)
        h = None
        if self.k > 0:
            h = torch.zeros(x.size(0), self.k, x.size(2), x.size(3), dtype=x.dtype, device=x.device)
        for s, stage in enumerate(self._stage_list):
            for b, blk in enumerate(stage):
                x, y = blk(x, h)
                if h is not None:
                    if blk.pool_state:
                        h = F.avg_pool2d(h, 2, 2, ceil_mode=True)
                    h = self.recurrent_convs[s](torch.tanh(self.stage_bns[s][b](h + self.conv_outs[s](y))))
        if h is not None:
            x = torch.cat((x, F.relu(self.bn2(h))), 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def conv_bn_relu6(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(conv(cin, cout, k, stride, groups), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class RLAInvertedResidual(nn.Module):
    """Official dsRLA inverted residual (docs/models.md): h joins after the 1x1 expansion and goes
    through the depthwise 3x3 with the expanded features; `y` is the projected output."""

    def __init__(self, inp, oup, stride, t, k):
        super().__init__()
        hidden = inp * t
        self.use_res = stride == 1 and inp == oup
        self.stride = stride
        if t != 1:
            self.conv1x1 = conv_bn_relu6(inp, hidden, 1)
        else:
            self.conv1x1 = None
        dw = hidden + k
        self.conv = nn.Sequential(conv_bn_relu6(dw, dw, 3, stride, dw), conv(dw, oup, 1), nn.BatchNorm2d(oup))

    def forward(self, x, h):
        z = x if self.conv1x1 is None else self.conv1x1(x)
        y = self.conv(torch.cat((z, h), 1))
        return (x + y if self.use_res else y), y


class DSRLAMobileNetV2(nn.Module):
    """dsrla_mobilenetv2_k{k}: one depthwise recurrent conv shared by the whole network."""

    SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]

    def __init__(self, k=32, num_classes=1000, depthwise=True):
        super().__init__()
        self.k = k
        self.conv1 = conv_bn_relu6(3, 32, 3, 2)
        inp, stages, outs, bns = 32, [], [], []
        for t, c, n, s in self.SETTING:
            row = []
            for i in range(n):
                row.append(RLAInvertedResidual(inp, c, s if i == 0 else 1, t, k))
                inp = c
            stages.append(nn.ModuleList(row))
            outs.append(conv(c, k, 1))
            bns.append(nn.ModuleList([nn.BatchNorm2d(k) for _ in range(n)]))
        self.stages = nn.ModuleList(stages)
        self.conv_outs = nn.ModuleList(outs)
        self.recurrent_dsconv = conv(k, k, 3, 1, k if depthwise else 1)
        self.stage_bns = nn.ModuleList(bns)
        self.conv2 = conv_bn_relu6(inp + k, 1280, 1)
        self.bn2 = nn.BatchNorm2d(k)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.conv1(x)
        h = torch.zeros(x.size(0), self.k, x.size(2), x.size(3), dtype=x.dtype, device=x.device)
        for j, row in enumerate(self.stages):
            for i, blk in enumerate(row):
                x, y = blk(x, h)
                if blk.stride != 1:
                    h = F.avg_pool2d(h, 2, 2, ceil_mode=True)
                h = self.recurrent_dsconv(torch.tanh(self.stage_bns[j][i](h + self.conv_outs[j](y))))
        x = torch.cat((x, F.relu6(self.bn2(h))), 1)
        x = torch.flatten(F.adaptive_avg_pool2d(self.conv2(x), 1), 1)
        return self.classifier(x)


def create(name):
    """The benchmark's models by their `rla` registry names."""
    cifar = {"resnet20": 3, "resnet56": 9, "rla_resnet20": 3, "rla_resnet56": 9}
    if name in cifar:
        n, k = cifar[name], (12 if name.startswith("rla_") else 0)
        return RLAResNet([n, n, n], planes=(16, 32, 64), bottleneck=False, k=k, num_classes=10, cifar_stem=True,
                         state_from_output=False)
    if name in ("resnet50", "rla_resnet50"):
        return RLAResNet([3, 4, 6, 3], k=32 if name.startswith("rla_") else 0)
    if name == "dsrla_mobilenetv2_k32":
        return DSRLAMobileNetV2(32)
    raise ValueError(f"rla_reference.create: unknown model {name!r}")
