"""The PyTorch backend: eager under ``no_grad`` (``torch.compile`` is not used yet: it
has not been measured on a GPU), ``torch.func.vjp``, one CPU generator per input."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from . import example

NAME = "torch"


def start() -> None:
    torch.zeros(1)


def constant(value):
    """A detached tensor: a Keras variable's tensor is a Parameter that autograd would track."""
    value = getattr(value, "value", value)
    return value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def outside_trace():
    return contextlib.nullcontext()


def vjp(fn, inputs: list):
    z, pullback = torch.func.vjp(lambda *xs: fn(list(xs)), *inputs)
    return z, lambda grad: list(pullback(grad))


def compile(fn, signature: list, jit: bool):
    """``fn`` under ``no_grad`` (``torch.func.vjp`` still differentiates inside), run now
    on a batch of one so that rule errors surface before any output."""
    from keras.src.backend.torch.core import convert_to_tensor

    def run(*arrays):
        with torch.no_grad():
            out = fn(*(convert_to_tensor(np.asarray(a), s[1]) for a, s in zip(arrays, signature)))
        return tuple(_numpy(t) for t in out) if isinstance(out, (tuple, list)) else _numpy(out)

    run(*(np.zeros((1, *example(shape)), dtype) for shape, dtype in signature))
    return run


def _numpy(t):
    return t.detach().cpu().numpy()


def normal(shape, index, seed: int, sample):
    """Each input's noise from its own generator seeded by ``(seed, sample, index)``: PyTorch
    has no stateless per-row normal, so this loops over the batch (smoothgrad only)."""
    rows = []
    for i in index.tolist():
        state = np.random.SeedSequence([seed, int(sample), i]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state) >> 1)
        rows.append(torch.randn(tuple(shape), generator=generator))
    return torch.stack(rows).to(index.device)


def gpu_available() -> bool:
    return torch.cuda.is_available()


def device_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def peak_memory_mb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
