"""Input preprocessing presets, and the valid input range each one implies.

A preset maps pixels in [0, 255] to the model's input space, as the Keras
applications do. Its image of the pixel range is what zB uses as bounds and what
evaluate draws uniform replacement values from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .errors import XaiError


@dataclass(frozen=True)
class Preprocessing:
    """``x = ((pixels[..., order] * scale) - mean) / std`` per channel."""

    name: str
    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    bgr: bool = False

    def _stats(self, channels: int):
        def per_channel(values, default):
            if values is None:
                return np.full(channels, default, np.float32)
            values = np.asarray(values, np.float32)
            if len(values) == 1:
                return np.full(channels, values[0], np.float32)
            if channels == 1:
                return np.full(1, values.mean(), np.float32)
            if len(values) != channels:
                raise XaiError(f"preprocessing '{self.name}' has {len(values)} channel values "
                               f"but the model input has {channels} channels")
            return values
        return per_channel(self.mean, 0.0), per_channel(self.std, 1.0)

    def _order(self, x):
        return x[..., ::-1] if self.bgr and x.shape[-1] == 3 else x

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Pixels in [0, 255] (any leading dims, channels last) to model input."""
        if self.name == "none":
            return np.asarray(raw, np.float32)
        mean, std = self._stats(raw.shape[-1])
        return ((self._order(np.asarray(raw, np.float32)) * self.scale - mean) / std).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Model input back to pixels in [0, 255], for display."""
        mean, std = self._stats(x.shape[-1])
        return np.clip(self._order(x * std + mean) / self.scale, 0, 255)

    def valid_range(self, channels: int):
        """Per-channel ``(low, high)`` of the model input, or ``None`` when unknown."""
        if self.name == "none":
            return None
        pair = self.apply(np.array([[0.0] * channels, [255.0] * channels], np.float32))
        return pair.min(axis=0), pair.max(axis=0)


PRESETS = {
    "caffe": Preprocessing("caffe", mean=(103.939, 116.779, 123.68), bgr=True),
    "tf": Preprocessing("tf", scale=1 / 127.5, mean=(1.0,)),
    "torch": Preprocessing("torch", scale=1 / 255, mean=(0.485, 0.456, 0.406),
                           std=(0.229, 0.224, 0.225)),
    "unit": Preprocessing("unit", scale=1 / 255),
    "raw": Preprocessing("raw"),
    "none": Preprocessing("none"),
}


def resolve(name: str | None = None, scale: float | None = None,
            mean: Sequence[float] | float | None = None,
            std: Sequence[float] | float | None = None) -> Preprocessing:
    """A preset by name, with explicit scale/mean/std overriding it ('custom')."""
    if name is not None and name not in PRESETS:
        raise XaiError(f"unknown preprocessing '{name}'; expected one of {', '.join(PRESETS)}")
    base = PRESETS[name or "raw"]
    overrides = {k: (tuple(v) if isinstance(v, (list, tuple)) else (v,)) if k != "scale" else v
                 for k, v in (("scale", scale), ("mean", mean), ("std", std)) if v is not None}
    if not overrides:
        return base
    if base.name == "none":
        raise XaiError("--preprocess none cannot be combined with --scale/--mean/--std")
    if any(s == 0 for s in overrides.get("std", ())):
        raise XaiError("preprocessing std must not be 0")
    if overrides.get("scale", 1) == 0:
        raise XaiError("preprocessing scale must not be 0")
    return replace(base, name="custom", **overrides)
