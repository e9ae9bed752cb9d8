"""Linear maps along one axis of a grid: resizing and blurring as small matrices.

Grad-CAM upsamples a layer's map to the input, RISE upsamples coarse random masks, and
DeepLIFT may start from a blurred input. Each is separable: one ``(out, in)`` matrix per
spatial axis, made once in NumPy and applied with ``keras.ops`` (:func:`along`). So the
maps are the same on every backend and for any number of spatial axes (a signal's time,
an image's height and width), and the tests can check a matrix against the library
whose convention it follows.
"""

from __future__ import annotations

import numpy as np


def mirror(index: np.ndarray, size: int) -> np.ndarray:
    """Indices outside ``[0, size)`` reflected about the end pixels' centres
    (``d c b | a b c d | c b a``, NumPy's ``reflect``), repeatedly for long reaches."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def linear_resize(source: int, target: int, edge: str = "clamp") -> np.ndarray:
    """``(target, source)`` matrix of linear interpolation with half-pixel centres
    (``src = (dst + 0.5) * source / target - 0.5``).

    ``edge='clamp'`` holds the end values beyond the outer centres (PyTorch's and
    TensorFlow's bilinear resize, ``align_corners=False``); ``'mirror'`` interpolates
    with the reflected neighbours there (scikit-image's ``resize(order=1,
    mode='reflect')``, which RISE's authors used for their masks).
    """
    position = (np.arange(target) + 0.5) * source / target - 0.5
    if edge == "clamp":
        position = np.clip(position, 0, source - 1)
    low = np.floor(position).astype(int)
    weight = position - low
    matrix = np.zeros((target, source))
    rows = np.arange(target)
    for index, share in ((low, 1 - weight), (low + 1, weight)):
        index = np.minimum(index, source - 1) if edge == "clamp" else mirror(index, source)
        np.add.at(matrix, (rows, index), share)
    return matrix


def gaussian_blur(size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` matrix of a Gaussian blur truncated at 3 sigma, with reflected
    borders (the blur that evaluate's ``--replace blur`` applies)."""
    radius = max(1, int(3 * sigma))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    matrix = np.zeros((size, size))
    rows = np.arange(size)[:, None]
    np.add.at(matrix, (np.broadcast_to(rows, (size, len(taps))), mirror(rows + taps, size)),
              np.broadcast_to(kernel, (size, len(taps))))
    return matrix


def along(x, matrices, first_axis: int = 1):
    """``x`` with ``matrices[k]`` applied to axis ``first_axis + k``: one ``(out, in)``
    matrix per axis, the other axes (batch, channels) left as they are."""
    from keras import ops  # here: evaluate's blur reaches this module from the CLI's help, before Keras

    for k, matrix in enumerate(matrices):
        axis = first_axis + k
        transposed = ops.convert_to_tensor(np.asarray(matrix.T, np.float32))
        x = ops.moveaxis(ops.matmul(ops.moveaxis(x, axis, -1), transposed), -1, axis)
    return x
