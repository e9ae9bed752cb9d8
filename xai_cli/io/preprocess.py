"""Input preprocessing presets, and the valid input range each one implies.

A preset maps pixels in [0, 255] to the model's input space, as the Keras
applications do. Its image of the pixel range is what zB uses as bounds and what
evaluate draws uniform replacement values from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import XaiError


@dataclass(frozen=True)
class Preprocessing:
    """``x = (pixels[..., order] * scale - mean) / std``, per channel.

    Attributes
    ----------
    name : str
        A preset name, or ``'custom'`` for explicit values.
    scale : float
        Factor applied to pixels in [0, 255] first.
    mean, std : tuple of float, optional
        One value for every channel, or one per channel in the model's channel order
        (BGR when ``bgr``). A 1-channel model gets the average of several values.
    bgr : bool
        Reverse RGB to BGR before the mean is subtracted (caffe).
    bounded : bool
        Whether the raw values are pixels in [0, 255], which gives the input a valid
        range; a signal's values have none.
    """

    name: str
    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    bgr: bool = False
    bounded: bool = True

    def _stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        def per_channel(values, default):
            values = np.asarray(default if values is None else values, np.float32)
            if values.size in (1, channels):
                return np.broadcast_to(values, (channels,))
            if channels == 1:
                return values.mean(keepdims=True)
            raise XaiError(f"preprocessing '{self.name}' has {values.size} channel values "
                           f"but the model input has {channels} channels")
        return per_channel(self.mean, 0.0), per_channel(self.std, 1.0)

    def _order(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::-1] if self.bgr and x.shape[-1] == 3 else x

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Map pixels to model input.

        Parameters
        ----------
        raw : ndarray
            Pixels in [0, 255], channels last, any leading dimensions.

        Returns
        -------
        ndarray
            float32 model input of the same shape (``raw`` itself for ``'none'``).
        """
        raw = np.asarray(raw, np.float32)
        if self.name == "none":
            return raw
        mean, std = self._stats(raw.shape[-1])
        return ((self._order(raw) * self.scale - mean) / std).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Map model input back to pixels, clipped to [0, 255], for display."""
        x = np.asarray(x, np.float32)
        if self.name == "none":
            return np.clip(x, 0, 255)
        mean, std = self._stats(x.shape[-1])
        return np.clip(self._order(x * std + mean) / self.scale, 0, 255)

    def valid_range(self, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel bounds of the model input.

        Parameters
        ----------
        channels : int
            Number of input channels of the model.

        Returns
        -------
        (low, high) : tuple of ndarray, or None
            Arrays of shape ``(channels,)``: the images of pixel values 0 and 255 (ordered
            so that ``low <= high``); ``None`` for ``'none'`` and for values that are not
            pixels, whose range is unknown.
        """
        if self.name == "none" or not self.bounded:
            return None
        ends = self.apply(np.array([[0.0] * channels, [255.0] * channels], np.float32))
        return ends.min(axis=0), ends.max(axis=0)


PRESETS: dict[str, Preprocessing] = {
    "caffe": Preprocessing("caffe", mean=(103.939, 116.779, 123.68), bgr=True),
    "tf": Preprocessing("tf", scale=1 / 127.5, mean=(1.0,)),
    "torch": Preprocessing("torch", scale=1 / 255, mean=(0.485, 0.456, 0.406),
                           std=(0.229, 0.224, 0.225)),
    "unit": Preprocessing("unit", scale=1 / 255),
    "raw": Preprocessing("raw"),
    "none": Preprocessing("none"),
}


def _values(v: float | Sequence[float]) -> tuple[float, ...]:
    return tuple(float(x) for x in np.atleast_1d(np.asarray(v, np.float64)))


def resolve(name: str | None = None, scale: float | None = None,
            mean: Sequence[float] | float | None = None,
            std: Sequence[float] | float | None = None) -> Preprocessing:
    """A preset by name, with explicit values overriding its fields.

    Parameters
    ----------
    name : str, optional
        One of :data:`PRESETS`; without it explicit values start from ``'raw'``.
    scale, mean, std : optional
        Explicit values; any of them makes the result ``'custom'``.

    Returns
    -------
    Preprocessing

    Raises
    ------
    XaiError
        For an unknown name, values that are not finite numbers, a zero scale or std,
        or explicit values combined with ``'none'``.
    """
    if name is not None and name not in PRESETS:
        raise XaiError(f"unknown preprocessing '{name}'; expected one of {', '.join(PRESETS)}")
    base = PRESETS[name or "raw"]
    try:
        overrides = {k: float(v) if k == "scale" else _values(v)
                     for k, v in (("scale", scale), ("mean", mean), ("std", std)) if v is not None}
    except (TypeError, ValueError):
        raise XaiError(f"preprocessing scale, mean and std must be numbers, got "
                       f"scale={scale!r} mean={mean!r} std={std!r}") from None
    if not overrides:
        return base
    if base.name == "none":
        raise XaiError("--preprocess none cannot be combined with --scale/--mean/--std")
    values = [overrides.get("scale", 1.0), *overrides.get("mean", ()), *overrides.get("std", ())]
    if not np.all(np.isfinite(values)):
        raise XaiError("preprocessing scale, mean and std must be finite numbers")
    if overrides.get("scale") == 0 or 0 in overrides.get("std", ()):
        raise XaiError("preprocessing scale and std must not be 0")
    return replace(base, name="custom", **overrides)


DEFAULT = "unit"


def first_given(config: Mapping, name: str | None = None, scale: float | None = None,
                mean: Sequence[float] | float | None = None,
                std: Sequence[float] | float | None = None, default: str = DEFAULT) -> Preprocessing:
    """The command line's preprocessing (``name``, ``scale``, ``mean``, ``std``), else the
    rule config's ``input`` section (``config``), else ``default`` (a preset: pixels in
    [0, 1] for images, :data:`DEFAULT`)."""
    from_cli = {k: v for k, v in (("scale", scale), ("mean", mean), ("std", std)) if v is not None}
    if name or from_cli:
        return resolve(name, **from_cli)
    spec = dict(config)
    name = spec.pop("preprocess", None)
    if name or spec:
        return resolve(name, **spec)
    return resolve(default)
