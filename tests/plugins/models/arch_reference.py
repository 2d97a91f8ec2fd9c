"""Second, functional implementations of the architectures, read straight off a state_dict.

Written from the published definitions (RobustBench ``wide_resnet.py`` / ``dm_wide_resnet.py``,
the kuangliu CIFAR ResNet and MobileNetV2 that ARD/RSLAD/IGDM copy) with ``torch.nn.functional``
calls only: they share no code with the plugin modules, so agreement checks the layers, the
key names and the forward semantics at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bn(x, sd, prefix):
    """Eval-mode BatchNorm with the running statistics stored under ``prefix``."""
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"],
                        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], training=False, eps=1e-5)


def swish(t):
    return t * torch.sigmoid(t)


def wrn_forward(sd, x, depth):
    """RobustBench/TRADES WideResNet: pre-activation blocks; the 1x1 shortcut reads the activated input."""
    n = (depth - 4) // 6
    out = F.conv2d(x, sd["conv1.weight"], padding=1)
    for b, stride in ((1, 1), (2, 2), (3, 2)):
        for i in range(n):
            p, s = f"block{b}.layer.{i}", stride if i == 0 else 1
            a = F.relu(bn(out, sd, f"{p}.bn1"))
            h = F.relu(bn(F.conv2d(a, sd[f"{p}.conv1.weight"], stride=s, padding=1), sd, f"{p}.bn2"))
            h = F.conv2d(h, sd[f"{p}.conv2.weight"], padding=1)
            key = f"{p}.convShortcut.weight"
            out = (F.conv2d(a, sd[key], stride=s) if key in sd else out) + h
    out = F.relu(bn(out, sd, "bn1")).mean(dim=(2, 3))
    return F.linear(out, sd["fc.weight"], sd.get("fc.bias"))


def dm_wrn_forward(sd, x, depth, mean, std, act=swish):
    """RobustBench DMWideResNet: normalize, explicit "SAME" padding before the 3x3 convs."""
    n = (depth - 4) // 6
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    out = F.conv2d(x, sd["init_conv.weight"], padding=1)
    for g, stride in enumerate((1, 2, 2)):
        for i in range(n):
            p, s = f"layer.{g}.block.{i}", stride if i == 0 else 1
            a = act(bn(out, sd, f"{p}.batchnorm_0"))
            pad = (1, 1, 1, 1) if s == 1 else (0, 1, 0, 1)
            h = F.conv2d(F.pad(a, pad), sd[f"{p}.conv_0.weight"], stride=s)
            h = F.conv2d(act(bn(h, sd, f"{p}.batchnorm_1")), sd[f"{p}.conv_1.weight"], padding=1)
            key = f"{p}.shortcut.weight"
            out = (F.conv2d(a, sd[key], stride=s) if key in sd else out) + h
    out = act(bn(out, sd, "batchnorm")).mean(dim=(2, 3))
    return F.linear(out, sd["logits.weight"], sd["logits.bias"])


def cifar_resnet_forward(sd, x, blocks, bottleneck, stem_stride=1):
    """kuangliu CIFAR ResNet: 3x3 stem, post-activation blocks, conv+BN shortcut on shape change.

    The head averages the whole last map (the official 4x4 pool on 32x32 inputs; a global
    pool in the Tiny-ImageNet variants).
    """
    out = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=stem_stride, padding=1), sd, "bn1"))
    for layer, (n, stride) in enumerate(zip(blocks, (1, 2, 2, 2)), start=1):
        for i in range(n):
            p, s = f"layer{layer}.{i}", stride if i == 0 else 1
            if bottleneck:
                h = F.relu(bn(F.conv2d(out, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                h = F.relu(bn(F.conv2d(h, sd[f"{p}.conv2.weight"], stride=s, padding=1), sd, f"{p}.bn2"))
                h = bn(F.conv2d(h, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                h = F.relu(bn(F.conv2d(out, sd[f"{p}.conv1.weight"], stride=s, padding=1), sd, f"{p}.bn1"))
                h = bn(F.conv2d(h, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            key = f"{p}.shortcut.0.weight"
            short = bn(F.conv2d(out, sd[key], stride=s), sd, f"{p}.shortcut.1") if key in sd else out
            out = F.relu(h + short)
    return F.linear(out.mean(dim=(2, 3)), sd["linear.weight"], sd["linear.bias"])


MOBILENETV2_CIFAR = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                     (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenetv2_forward(sd, x):
    """kuangliu CIFAR MobileNetV2: residual only for stride-1 blocks (1x1 conv+BN when widths differ)."""
    out = F.relu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), sd, "bn1"))
    index, cin = 0, 32
    for expansion, cout, n, first_stride in MOBILENETV2_CIFAR:
        for j in range(n):
            p, s, planes = f"layers.{index}", first_stride if j == 0 else 1, expansion * cin
            h = F.relu(bn(F.conv2d(out, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
            h = F.conv2d(h, sd[f"{p}.conv2.weight"], stride=s, padding=1, groups=planes)
            h = F.relu(bn(h, sd, f"{p}.bn2"))
            h = bn(F.conv2d(h, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            if s == 1:
                key = f"{p}.shortcut.0.weight"
                h = h + (bn(F.conv2d(out, sd[key]), sd, f"{p}.shortcut.1") if cin != cout else out)
            out, cin, index = h, cout, index + 1
    out = F.relu(bn(F.conv2d(out, sd["conv2.weight"]), sd, "bn2"))
    return F.linear(out.mean(dim=(2, 3)), sd["linear.weight"], sd["linear.bias"])


def calibrate_bn(model, in_chans=3, seed=0):
    """Give every BatchNorm distinct running statistics (one train-mode pass, momentum 1), then eval."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(2, in_chans, 32, 32, generator=g))
    return model.eval()


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())
