#!/usr/bin/env python
"""Zennit 0.5.1 (PyTorch) side by side with `xai bench`: the same architectures, batch and
input size, random weights, timed the same way (round-robin, median after two warm-ups).

The README's comparison table comes from this script and `xai bench` run in turn on the
same machine. Run it in its own virtual environment (it does not import xai):

    python3 -m venv /work/zennit-venv
    /work/zennit-venv/bin/pip install torch torchvision zennit==0.5.1
    /work/zennit-venv/bin/python scripts/zennit_bench.py resnet50 7 [out.json]
    .venv/bin/xai bench -m lrp -m sa -r lrp-epsilon -r epsilon-gamma-box --arch resnet50 \
        --input-size 64 --batch-size 16 --repeats 7

VGG16's head is built as Keras builds it at 64x64 (flatten of the 2x2x512 map, no
adaptive pooling), so that both toolboxes run the same network. lrp-epsilon is
Epsilon(1e-6) on every Conv2d and Linear (Norm on Add and average pooling, activations
pass); epsilon-gamma-box is Zennit's EpsilonGammaBox(low=0, high=1) -- xai's configs of
those names. BatchNorm is merged by the ResNet canonizer, as xai's merge-batchnorm does.
"""
import contextlib
import copy
import json
import sys
import time

import numpy as np
import torch
import torchvision
import zennit
from zennit.attribution import Gradient
from zennit.composites import EpsilonGammaBox, LayerMapComposite, layer_map_base
from zennit.rules import Epsilon
from zennit.torchvision import ResNetCanonizer, VGGCanonizer

BATCH = 16
SIZE = 64
TARGET = 0


def build_model(arch):
    if arch == 'vgg16':
        model = torchvision.models.vgg16(weights=None, num_classes=1000)
        # Keras VGG16 head at 64x64: no adaptive pooling, flatten 2x2x512 = 2048 features
        model.avgpool = torch.nn.Identity()
        model.classifier[0] = torch.nn.Linear(2048, 4096)
    elif arch == 'resnet50':
        model = torchvision.models.resnet50(weights=None, num_classes=1000)
    else:
        raise SystemExit(f'unknown arch {arch!r}; use vgg16 or resnet50')
    return model.eval()


def make_canonizer(arch):
    return ResNetCanonizer() if arch == 'resnet50' else VGGCanonizer()


def epsilon_composite(arch):
    # Epsilon(1e-6) on Conv2d and Linear; layer_map_base: Pass on activations, Norm on Sum (residual add)
    # and AvgPool (incl. AdaptiveAvgPool2d), Pass on BatchNorm (merged away by the canonizer anyway).
    layer_map = [*layer_map_base(stabilizer=1e-6),
                 ((torch.nn.Conv2d, torch.nn.Linear), Epsilon(epsilon=1e-6))]
    return LayerMapComposite(layer_map=layer_map, canonizers=[make_canonizer(arch)])


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    arch, reps = sys.argv[1], int(sys.argv[2])

    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f'torch {torch.__version__}  torchvision {torchvision.__version__}  zennit '
          f'{getattr(zennit, "__version__", None) or _dist_version("zennit")}  '
          f'num_threads {torch.get_num_threads()}')

    model = build_model(arch)
    for p in model.parameters():
        p.requires_grad_(False)   # no weight gradients anywhere; only input gradients are needed

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((BATCH, 3, SIZE, SIZE), dtype=np.float32))
    with torch.no_grad():
        y = model(x)
    print(f'{arch}: forward check at {SIZE}x{SIZE}: output {tuple(y.shape)}')
    assert y.shape == (BATCH, 1000)

    onehot = torch.zeros(BATCH, 1000)
    onehot[:, TARGET] = 1.0

    def attr_output_fn(out):
        return out * onehot   # relevance starts from the explained logit

    # separate model copies: canonizers modify the model in place (BN merge, patched ResNet forward),
    # so the two composites cannot be registered on the same model at once
    model_eps = copy.deepcopy(model)
    model_egb = copy.deepcopy(model)
    comp_eps = epsilon_composite(arch)
    comp_egb = EpsilonGammaBox(low=0.0, high=1.0, canonizers=[make_canonizer(arch)])

    with contextlib.ExitStack() as stack:
        # hooks/canonizers registered once for the whole timing loop
        attr_eps = stack.enter_context(Gradient(model_eps, comp_eps))
        attr_egb = stack.enter_context(Gradient(model_egb, comp_egb))
        print(f'hook handles registered: lrp-epsilon {len(comp_eps.handles)}, '
              f'epsilon-gamma-box {len(comp_egb.handles)}')

        # sanity check (untimed): conservation for lrp-epsilon
        out, rel = attr_eps(x, attr_output_fn)
        logit = out[:, TARGET].detach()
        rsum = rel.detach().sum(dim=(1, 2, 3))
        ratio = (rsum / logit).numpy()
        diff_plain = (out.detach() - y).abs().max().item()
        print(f'lrp-epsilon conservation: sum(R_input)/logit{TARGET}: mean {ratio.mean():.4f} '
              f'min {ratio.min():.4f} max {ratio.max():.4f}  (logit mean {logit.mean().item():.4g}; '
              f'canonized vs plain output max|diff| {diff_plain:.2e})')
        out_g, rel_g = attr_egb(x, attr_output_fn)
        ratio_g = (rel_g.detach().sum(dim=(1, 2, 3)) / out_g[:, TARGET].detach()).numpy()
        print(f'epsilon-gamma-box (info): sum(R_input)/logit{TARGET}: mean {ratio_g.mean():.4f} '
              f'min {ratio_g.min():.4f} max {ratio_g.max():.4f}')
        a, b = rel.detach().flatten(), rel_g.detach().flatten()
        corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        print(f'lrp-epsilon vs epsilon-gamma-box relevance: corr {corr:.4f}, '
              f'max|diff| {(a - b).abs().max().item():.3e}')

        def f_forward():
            with torch.no_grad():
                model(x)

        def f_gradient():
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            out[:, TARGET].sum().backward()
            return xg.grad.numpy()

        def f_eps():
            _, r = attr_eps(x, attr_output_fn)
            return r.detach().numpy()

        def f_egb():
            _, r = attr_egb(x, attr_output_fn)
            return r.detach().numpy()

        callables = [('forward', f_forward), ('gradient', f_gradient),
                     ('lrp-epsilon', f_eps), ('epsilon-gamma-box', f_egb)]
        for _ in range(2):                    # warm-up
            for _, fn in callables:
                fn()
        times = {name: [] for name, _ in callables}
        for _ in range(reps):                 # interleaved round-robin
            for name, fn in callables:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)

    med_fwd = float(np.median(times['forward']))
    results = {}
    print(f'\n{arch}  batch {BATCH}  {SIZE}x{SIZE}  reps {reps}  threads {torch.get_num_threads()}')
    print(f'{"method":<20}{"img/s (median)":>16}{"x forward":>12}{"img/s (min)":>14}')
    for name, _ in callables:
        med = float(np.median(times[name]))
        mn = float(np.min(times[name]))
        results[name] = {
            'times_s': times[name], 'median_s': med, 'min_s': mn,
            'images_per_s': BATCH / med, 'x_forward': med / med_fwd, 'images_per_s_min': BATCH / mn,
        }
        print(f'{name:<20}{BATCH / med:>16.2f}{med / med_fwd:>12.2f}{BATCH / mn:>14.2f}')

    payload = {
        'arch': arch, 'batch': BATCH, 'input_shape': [BATCH, 3, SIZE, SIZE], 'target': TARGET, 'reps': reps,
        'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'zennit': getattr(zennit, '__version__', None) or _dist_version('zennit'),
        'num_threads': torch.get_num_threads(),
        'conservation_lrp_epsilon': {'mean': float(ratio.mean()), 'min': float(ratio.min()),
                                     'max': float(ratio.max())},
        'results': results,
    }
    if len(sys.argv) == 4:
        with open(sys.argv[3], 'w') as fd:
            json.dump(payload, fd, indent=2)


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == '__main__':
    main()
