"""What "absent" means for the methods that compare the input with a reference.

Occlusion and RISE put a baseline where they hide the input; DeepLIFT explains the
difference to one. The choices are evaluate's replacements, made deterministic:
``zero`` (the model input's 0: the mean for standardising presets), ``grey`` (the middle of
the valid range, the grey square of Zeiler & Fergus; 0 where the input has no range),
``mean`` (each input's mean per channel) and ``blur`` (a Gaussian blur of the input).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from ..errors import XaiError
from . import grids

BASELINES = ("zero", "grey", "mean", "blur")

BLUR_SHARE = 1 / 22   # the blur's default sigma, as a share of the longest side (10 px at 224)


def baseline(name: str, x, valid_range, sigma: float = 0.0):
    """The baseline ``name`` for the batch ``x`` (N, *spatial, C), shaped to broadcast
    against it; ``valid_range`` is the preprocessing's per-channel ``(low, high)`` or None;
    ``sigma`` the blur's, in steps of the grid (0: :data:`BLUR_SHARE` of the longest side)."""
    spatial = tuple(x.shape[1:-1])
    if name == "zero":
        return ops.zeros_like(x[:1])
    if name == "grey":
        if valid_range is None:
            return ops.zeros_like(x[:1])
        low, high = (np.asarray(v, np.float32) for v in valid_range)
        return ops.convert_to_tensor((low + high) / 2)
    if name == "mean":
        return ops.mean(x, axis=tuple(range(1, len(x.shape) - 1)), keepdims=True)
    if name == "blur":
        sigma = sigma or max(1.0, BLUR_SHARE * max(spatial))
        return grids.along(x, [grids.gaussian_blur(side, sigma) for side in spatial])
    raise XaiError(f"unknown baseline '{name}'; expected one of {', '.join(BASELINES)}")
