"""Methods that explain by running the model on altered copies of the input: occlusion
(Zeiler & Fergus 2014) and RISE (Petsiuk et al. 2018).

Their cost is forward passes, as many as they alter copies. The copies of a whole batch
run through the model in chunks (:func:`chunk_size` copies of each input), in a loop inside the compiled
function; the masks are built per chunk from small per-axis tables made in NumPy (the
same on every backend), never held all at once.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from ..catalogue import OCCLUSION_SHARE
from ..errors import XaiError
from . import grids
from .baselines import baseline

COPY_VALUES = 2 ** 20   # about how many input values a chunk holds per input explained
MAX_CHUNK = 16          # and at most this many copies of each


def scores(e, copies, targets, values):
    """The target scores ``(K, N)`` of altered copies ``(K, N, *input)`` of the batch."""
    k = copies.shape[0]
    named = {name: ops.reshape(ops.tile(values[spec.tensor][None], (k,) + (1,) * (len(spec.shape) + 1)),
                               (-1, *spec.shape))
             for name, spec in e.graph.named.items()}
    logits = e.propagator.forward(ops.reshape(copies, (-1, *copies.shape[2:])), named)[e.graph.output]
    return picked(ops.reshape(logits, (k, -1, logits.shape[-1])), targets)


def picked(logits, targets):
    """Each input's score of its target class: ``(..., N, classes)`` -> ``(..., N)``."""
    return ops.sum(logits * ops.one_hot(targets, logits.shape[-1], dtype=logits.dtype), axis=-1)


def spread(values, x):
    """A value per position shared evenly by its channels, shaped like ``x``: the map a
    picture shows (the channel sum) and a word's relevance are the method's value."""
    return ops.zeros_like(x) + ops.expand_dims(values, -1) / x.shape[-1]


def spatial_shape(x, method: str) -> tuple[int, ...]:
    """The grid a method alters: the input's axes between the batch and the channels."""
    shape = tuple(x.shape[1:-1])
    if not shape or any(side is None for side in shape):
        raise XaiError(f"method {method} needs inputs of a fixed shape with positions and "
                       f"channels; this model's input is {tuple(x.shape[1:])}")
    return shape


def chunk_size(x, total: int) -> int:
    """Copies of each input per forward pass: as many as keep a chunk near
    :data:`COPY_VALUES` values per input (7 for 224x224 RGB), at most :data:`MAX_CHUNK`."""
    return max(1, min(total, MAX_CHUNK, COPY_VALUES // math.prod(x.shape[1:])))


def chunked(total: int, x, body, initial):
    """``body(ids, valid, carry)`` over the ``total`` alterations in chunks: ``ids`` are
    :func:`chunk_size` alteration numbers (the last chunk repeats the last one, ``valid``
    0 there)."""
    size = chunk_size(x, total)

    def step(i, carry):
        ids = i * size + ops.arange(size, dtype="int32")
        valid = ops.cast(ids < total, x.dtype)
        return body(ops.minimum(ids, total - 1), valid, carry)

    return ops.fori_loop(0, math.ceil(total / size), step, initial)


# occlusion

def window_starts(side: int, patch: int, stride: int) -> np.ndarray:
    """Where the windows along one axis start: every ``stride`` from 0 until one reaches
    the end; the last may stick out and is cut there (Captum's ``Occlusion``)."""
    return np.arange(math.ceil(max(side - patch, 0) / stride) + 1) * stride


def occlusion_tables(shape: tuple[int, ...], patch: int, stride: int) -> tuple[list, np.ndarray]:
    """Per axis, which positions each window covers ``(windows, side)``, and per window its
    index on every axis ``(windows, axes)``."""
    covers = []
    for side in shape:
        starts = window_starts(side, patch, stride)
        position = np.arange(side)
        covers.append(((position >= starts[:, None]) & (position < starts[:, None] + patch))
                      .astype(np.float32))
    grid = np.stack(np.meshgrid(*[np.arange(len(c)) for c in covers], indexing="ij"), -1)
    return covers, grid.reshape(-1, len(shape)).astype(np.int32)


def outer(rows: list):
    """``(K, *sides)`` from per-axis ``(K, side)`` factors: their outer product per k."""
    mask = rows[0]
    for factor in rows[1:]:
        mask = ops.expand_dims(mask, -1) * ops.reshape(factor, (factor.shape[0],) + (1,) *
                                                       (len(mask.shape) - 1) + (factor.shape[1],))
    return mask


def occlusion(e, x, values, targets, index):
    """Each position's mean over the windows that cover it of the score's drop when the
    window (all channels) is replaced by the baseline; a text model's windows are words."""
    shape = spatial_shape(x, "occlusion")
    patch = e.params["patch"] or (1 if e.graph.text is not None   # a word at a time
                                  else max(1, round(max(shape) / OCCLUSION_SHARE)))
    covers, grid = occlusion_tables(shape, patch, e.params["stride"] or max(1, patch // 2))
    base = baseline(e.params["baseline"], x, e.valid_range)
    before = picked(values[e.graph.output], targets)
    covers_t = [ops.convert_to_tensor(c) for c in covers]
    grid_t = ops.convert_to_tensor(grid)

    def body(ids, valid, total):
        where = ops.take(grid_t, ids, axis=0)
        mask = outer([ops.take(c, where[:, a], axis=0) for a, c in enumerate(covers_t)])
        hidden = ops.expand_dims(ops.expand_dims(mask, 1), -1)        # (K, 1, *shape, 1)
        copies = x[None] * (1 - hidden) + base[None] * hidden
        drop = (before[None] - scores(e, copies, targets, values)) * valid[:, None]
        return total + ops.tensordot(ops.transpose(drop), mask, axes=1)

    total = chunked(len(grid), x, body, ops.zeros((ops.shape(x)[0], *shape), x.dtype))
    count = np.maximum(_outer_sum(covers), 1).astype(np.float32)
    return spread(total / ops.convert_to_tensor(count), x)


def _outer_sum(covers: list) -> np.ndarray:
    """How many windows cover each position (the tables' outer product, summed)."""
    count = np.ones(())
    for c in covers:
        count = np.multiply.outer(count, c.sum(axis=0))
    return count


# RISE

def rise_tables(shape: tuple[int, ...], cells: int, masks: int, keep: float, seed: int):
    """RISE's masks, as their authors draw them: per mask a grid of ``cells`` a side whose
    cells are kept with probability ``keep``, upsampled linearly to ``cells + 1`` cells
    of ``ceil(side / cells)`` positions and cut at a random shift below one cell.

    Returns the grids ``(masks, *[cells] * axes)``, per axis the upsampling matrix
    ``(upsampled, cells)`` and each mask's shift per axis ``(masks, axes)``.
    """
    rng = np.random.default_rng(seed)
    grids_ = (rng.random((masks, *[cells] * len(shape))) < keep).astype(np.float32)
    steps = [math.ceil(side / cells) for side in shape]
    upsample = [grids.linear_resize(cells, (cells + 1) * step, edge="mirror").astype(np.float32)
                for step in steps]
    shifts = np.stack([rng.integers(0, step, masks) for step in steps], -1).astype(np.int32)
    return grids_, upsample, shifts


def rise_masks(grid, upsample: list, shift, shape):
    """The masks ``(K, *shape)`` of ``K`` grids and their shifts (tensors)."""
    mask = grid
    for axis, (matrix, side) in enumerate(zip(upsample, shape)):
        rows = ops.take(matrix, shift[:, axis:axis + 1] + ops.arange(side, dtype="int32")[None], axis=0)
        moved = ops.moveaxis(mask, axis + 1, -1)                       # (K, ..., cells)
        moved = ops.einsum("k...c,ksc->k...s", moved, rows)
        mask = ops.moveaxis(moved, -1, axis + 1)
    return mask


def rise(e, x, values, targets, index):
    """The scores of masked copies, weighted by their masks, over ``masks * keep``, less
    the mean score times each position's coverage.

    The authors' map, ``E[f(x * M) | M_i = 1]``, is the mean score plus the positions'
    differences; the mean is what every position shares, so it is taken off (in
    expectation a constant; in a sample it also takes off the noise of how often the
    masks happened to cover each position). Positive: keeping the position raises the score.
    """
    shape = spatial_shape(x, "rise")
    if len(shape) > 2:
        raise XaiError(f"method rise explains images and signals; this input has {len(shape)} "
                       "axes of positions")
    masks, keep = e.params["masks"], e.params["keep"]
    grid, upsample, shift = rise_tables(shape, e.params["cells"], masks, keep, e.seed)
    grid, shift = ops.convert_to_tensor(grid), ops.convert_to_tensor(shift)
    upsample = [ops.convert_to_tensor(m) for m in upsample]
    base = baseline(e.params["baseline"], x, e.valid_range)

    def body(ids, valid, totals):
        weighted, coverage, score = totals
        mask = rise_masks(ops.take(grid, ids, axis=0), upsample, ops.take(shift, ids, axis=0), shape)
        mask = mask * ops.reshape(valid, (-1,) + (1,) * len(shape))
        shown = ops.expand_dims(ops.expand_dims(mask, 1), -1)         # (K, 1, *shape, 1)
        copies = x[None] * shown + base[None] * (1 - shown)
        scored = scores(e, copies, targets, values) * valid[:, None]
        return (weighted + ops.tensordot(ops.transpose(scored), mask, axes=1),
                coverage + ops.sum(mask, axis=0), score + ops.sum(scored, axis=0))

    n = ops.shape(x)[0]
    weighted, coverage, score = chunked(masks, x, body, (
        ops.zeros((n, *shape), x.dtype), ops.zeros(shape, x.dtype), ops.zeros((n,), x.dtype)))
    mean = ops.reshape(score / masks, (-1,) + (1,) * len(shape))
    return spread((weighted - mean * coverage) / (masks * keep), x)
