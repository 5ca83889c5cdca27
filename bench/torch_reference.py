#!/usr/bin/env python3
"""Same-step PyTorch reference for `foolmap bench --reference torch`.

Runs, for the same models, batch sizes and input sizes as foolmap's bench, and on the same
cores (or GPU):

* ``inference``  -- a forward pass under ``torch.no_grad()``;
* ``train``      -- cross-entropy, backward, Adam step;
* ``fool``       -- the fooling step of foolmap (docs/method.md): forward, the interpreter's map
  at the tap (Grad-CAM, SimpleGrad) through ``torch.autograd.grad(..., create_graph=True)``,
  the Location loss ``CE + lambda * mean((M - H)^2)``, backward through all of it, Adam.

Models are in eval mode throughout (BatchNorm statistics frozen, no dropout), as in foolmap's
fooling runs. The tap is the *input* of the tap module (spec section 2 / docs/method.md):
ResNet-20 ``layer3.2`` (8x8), SqueezeNet 1.0 ``features.12`` (13x13), VGG-16 ``features.28``
(14x14), ResNet-50 ``layer4.2`` (7x7).

LRP is not timed here: in PyTorch it needs a hand-written explicit backward per layer type
(foolmap's design), which this reference does not re-implement; its rows are reported as
missing rather than approximated.

Data are random tensors made before timing (the step alone). Figures are medians of the timed
repetitions after warm-up. Peak memory: host ``VmHWM`` (reset per row through
``/proc/self/clear_refs``) on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Output: one JSON object on stdout (or ``--json FILE``) with the rows and the environment.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- models (torchvision layouts)


class BasicBlockA(nn.Module):
    """CIFAR ResNet BasicBlock with the option-A (zero-pad) shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = (cout - cin) // 2 if (stride != 1 or cin != cout) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is None:
            s = x
        else:
            s = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + s)


class CifarResNet(nn.Module):
    def __init__(self, n=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, w in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlockA(cin, w, stride))
                cin = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


class Fire(nn.Module):
    def __init__(self, cin, s, e):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, s, 1)
        self.expand1x1 = nn.Conv2d(s, e, 1)
        self.expand3x3 = nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet10(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 7, 2), nn.ReLU(inplace=True), pool(),
            Fire(96, 16, 64), Fire(128, 16, 64), Fire(128, 32, 128), pool(),
            Fire(256, 32, 128), Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256), pool(),
            Fire(512, 64, 256),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(512, classes, 1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )

    def forward(self, x):
        return self.classifier(self.features(x)).flatten(1)


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class Vgg16(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        layers, cin = [], 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(out + s)


class ResNet50(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for i, (planes, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * 4
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(arch):
    """(model, tap module, input side, classes, weights file name or None)."""
    if arch == "resnet20":
        m = CifarResNet(3, 10)
        return m, m.layer3[2], 32, 10, "resnet20_cifar10.safetensors"
    if arch == "squeezenet1_0":
        m = SqueezeNet10()
        return m, m.features[12], 224, 1000, "squeezenet1_0_imagenet.safetensors"
    if arch == "vgg16":
        m = Vgg16()
        return m, m.features[28], 224, 1000, None
    if arch == "resnet50":
        m = ResNet50()
        return m, m.layer4[2], 224, 1000, None
    raise SystemExit(f"torch_reference.py: unknown architecture `{arch}`")


def load_weights(model, path):
    """Loads a safetensors state dict when the `safetensors` package and the file exist."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        return "random (no `safetensors` package)"
    if not path or not os.path.exists(path):
        return "random"
    sd = load_file(path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit(f"torch_reference.py: {path}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return os.path.basename(path)


# ---------------------------------------------------------------- maps and the Location loss


def location_mask(h, w, device):
    k = h // 7
    m = torch.ones(h, w, device=device)
    m[k:h - k, k:w - k] = 0.0
    return m


def minmax(h):
    n = h.shape[0]
    flat = h.reshape(n, -1)
    lo = flat.min(1, keepdim=True).values
    flat = flat - lo
    hi = flat.max(1, keepdim=True).values
    return (flat / (hi + 1e-8)).reshape(h.shape)


def tap_map(interp, a, g):
    if interp == "grad_cam":
        alpha = g.mean((2, 3), keepdim=True)
        cam = F.relu((alpha * a).sum(1))
        return cam / (cam.flatten(1).max(1).values.reshape(-1, 1, 1) + 1e-8)
    if interp == "simple_grad_t":
        return minmax(F.relu(g.abs().sum(1)))
    raise ValueError(interp)


# ---------------------------------------------------------------- timing


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def timed(fn, warmup, min_reps, max_reps, budget_s, device):
    """Median seconds of one call: `warmup` untimed calls, then timed calls until there are
    `max_reps`, or at least `min_reps` that took `budget_s` seconds together (the rule of
    `foolmap bench`, trainer/src/bench/compare.rs)."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    while len(times) < max_reps and (len(times) < min_reps or sum(times) < budget_s):
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_model(arch, batch, kinds, args, device):
    torch.manual_seed(0)
    model, tap, side, classes, wfile = build(arch)
    weights = load_weights(model, os.path.join(args.weights_dir, wfile) if (wfile and args.weights_dir) else None)
    model = model.to(device).eval()
    x = torch.randn(batch, 3, side, side, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    captured = {}
    tap.register_forward_pre_hook(lambda _m, inp: captured.__setitem__("a", inp[0]))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    mask_cache = {}
    rows = []
    # 32² models: `--warmup` + `--reps` calls; 224² models: 1 + 3 to 10 calls, 3 s (foolmap's rule).
    reps = (args.warmup, args.reps, args.reps, 0.0) if side <= 64 else (1, 3, 10, 3.0)

    def infer():
        with torch.no_grad():
            model(x)

    def train():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def fool(interp):
        def step():
            opt.zero_grad(set_to_none=True)
            out = model(x)
            a = captured["a"]
            ce = F.cross_entropy(out, y)
            (g,) = torch.autograd.grad(out.gather(1, y[:, None]).sum(), a, create_graph=True)
            h = tap_map(interp, a, g)
            key = tuple(h.shape[1:])
            if key not in mask_cache:
                mask_cache[key] = location_mask(*key, device)
            loss = ce + 1.0 * ((mask_cache[key] - h) ** 2).mean((1, 2)).mean()
            loss.backward()
            opt.step()
        return step

    for kind in kinds:
        if kind == "inference":
            fn = infer
        elif kind == "train":
            fn = train
        elif kind.startswith("fool:"):
            interp = kind.split(":", 1)[1]
            if interp == "lrp_t":
                rows.append(dict(arch=arch, batch=batch, side=side, kind=kind, images_per_s=None,
                                 peak_mib=None, note="LRP not implemented in the PyTorch reference",
                                 weights=weights))
                continue
            fn = fool(interp)
        else:
            raise SystemExit(f"torch_reference.py: unknown row kind `{kind}`")
        reset_peak(device)
        t = timed(fn, *reps, device)
        rows.append(dict(arch=arch, batch=batch, side=side, kind=kind, images_per_s=batch / t,
                         seconds_per_step=t, peak_mib=peak_mib(device), weights=weights))
        print(f"torch {arch} b{batch} {kind}: {batch / t:.1f} img/s", file=sys.stderr, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--rows", default="resnet20:32,resnet20:128,squeezenet1_0:4,vgg16:2,resnet50:2",
                    help="comma-separated ARCH:BATCH")
    ap.add_argument("--kinds", default="inference,train,fool:lrp_t,fool:grad_cam,fool:simple_grad_t")
    ap.add_argument("--weights-dir", default=None, help="folder with the safetensors of ResNet-20 / SqueezeNet")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="write the result here instead of stdout")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kinds = [k for k in args.kinds.split(",") if k]
    rows = []
    for spec in args.rows.split(","):
        arch, batch = spec.split(":")
        rows += run_model(arch, int(batch), kinds, args, device)
    out = dict(
        torch_version=torch.__version__,
        device=str(device),
        device_name=torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        threads=torch.get_num_threads(),
        mkldnn=torch.backends.mkldnn.is_available(),
        rows=rows,
    )
    text = json.dumps(out, indent=1)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.json)
    else:
        print(text)


if __name__ == "__main__":
    main()
