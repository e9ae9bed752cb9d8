"""Localisation: does the relevance lie on the object?

Three scores per heatmap and object mask (Arras et al. 2022, "CLEVR-XAI"; Quantus calls
them PointingGame, RelevanceMassAccuracy and RelevanceRankAccuracy), computed on the
relevance summed over channels:

- pointing: 1 if the largest relevance lies in the mask (ties count if any tied pixel
  is inside), 0 otherwise; a constant heatmap points nowhere;
- mass: the share of the positive relevance that lies in the mask (0 when there is none);
- rank: with K mask pixels, the share of the K most relevant pixels that lie in the mask.

A heatmap of random values scores the mask's share of the image on all three, which is
what the ``random`` row reports. Masks come from a folder (an image or ``.npy`` per input
with the input's output stem, non-zero = object) or from a CSV of bounding boxes
``image,x0,y0,x1,y1`` in pixels of the original image (several rows for one image are
united); either is mapped onto the model's input the way the picture was resized.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError, XaiError
from ..io.inputs import Fit, Sample

FIGURES = ("pointing", "mass", "rank_accuracy")
MASK_SUFFIXES = (".png", ".npy", ".bmp", ".gif", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
BOX_COLUMNS = ("image", "x0", "y0", "x1", "y1")


class Masks:
    """Where the object is in each input: a folder of masks or a CSV of boxes (``--masks``).

    A box row names its image by the input's output stem, file name, file stem or path.
    """

    def __init__(self, spec: str):
        self.spec, path = spec, Path(spec)
        self.boxes: dict[str, list[tuple[float, ...]]] | None = None
        if path.is_file() and path.suffix.lower() == ".csv":
            self.boxes = _read_boxes(path)
        elif not path.is_dir():
            raise XaiError(f"--masks '{spec}' is neither a folder of masks nor a .csv of "
                           f"boxes ({','.join(BOX_COLUMNS)})")

    def mask(self, sample: Sample) -> np.ndarray | None:
        """(H, W) bool mask of ``sample`` on the model's input; None if it has none.

        Raises InputError for a mask that cannot be read or marks no pixel.
        """
        if self.boxes is not None:
            source = Path(sample.item.source)
            names = dict.fromkeys((sample.item.stem, source.name, source.stem, str(source)))
            boxes = [box for name in names for box in self.boxes.get(name, ())]
            mask = _box_mask(boxes, sample.fit) if boxes else None
        else:
            found = [p for p in (Path(self.spec) / f"{sample.item.stem}{s}" for s in MASK_SUFFIXES)
                     if p.is_file()]
            mask = _read_mask(found[0], sample.fit) if found else None
        if mask is not None and not mask.any():
            raise InputError("its mask marks no pixel as the object")
        return mask


def _read_mask(path: Path, fit: Fit) -> np.ndarray:
    """A mask of the original picture (at any resolution) mapped onto the input as the
    picture was."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
            array = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
            if array.ndim != 2:
                raise InputError(f"mask {path} has shape {array.shape}; expected (H, W)")
            image = Image.fromarray((array != 0).astype(np.uint8) * 255)
        else:
            with Image.open(path) as opened:
                image = opened.convert("L")
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read mask {path}: {exc}") from None
    return np.asarray(fit.apply(image, Image.NEAREST)) != 0


def _read_boxes(path: Path) -> dict[str, list[tuple[float, ...]]]:
    """``{image: [(x0, y0, x1, y1), ...]}``; a malformed file stops the run (file and line)."""
    boxes: dict[str, list[tuple[float, ...]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [c.strip() for c in next(reader, [])]
        if header != list(BOX_COLUMNS):
            raise XaiError(f"{path}:1: the header must be {','.join(BOX_COLUMNS)}, got "
                           f"{','.join(header) or 'nothing'}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            try:
                x0, y0, x1, y1 = (float(v) for v in row[1:])
            except ValueError:
                raise XaiError(f"{path}:{line}: expected an image and four numbers, got "
                               f"{','.join(row)}") from None
            if not (0 <= x0 < x1 and 0 <= y0 < y1):
                raise XaiError(f"{path}:{line}: a box needs 0 <= x0 < x1 and 0 <= y0 < y1, "
                               f"got {x0:g},{y0:g},{x1:g},{y1:g}")
            boxes.setdefault(row[0].strip(), []).append((x0, y0, x1, y1))
    return boxes


def _box_mask(boxes, fit: Fit) -> np.ndarray:
    """The input pixels whose centres fall in a box (at least the one under its centre),
    with the boxes mapped from the picture onto the input as the picture was."""
    width, height = fit.size
    mask = np.zeros((height, width), bool)
    centres_x, centres_y = np.arange(width) + 0.5, np.arange(height) + 0.5
    for box in boxes:
        (x0, x1), (y0, y1) = fit.to_input(np.array(box[::2]), np.array(box[1::2]))
        inside = ((centres_y >= y0) & (centres_y < y1))[:, None] \
            & ((centres_x >= x0) & (centres_x < x1))[None]
        if not inside.any():
            row, col = int((y0 + y1) / 2), int((x0 + x1) / 2)
            if 0 <= row < height and 0 <= col < width:
                inside[row, col] = True
        mask |= inside
    return mask


def scores(relevance: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image pointing, mass and rank accuracy.

    Parameters
    ----------
    relevance : (N, H, W) relevance summed over channels.
    masks : (N, H, W) bool, each with at least one True pixel.
    """
    flat = relevance.reshape(len(relevance), -1).astype(np.float64)
    inside = masks.reshape(len(masks), -1)
    top = flat.max(axis=1, keepdims=True)
    pointing = ((flat == top) & inside).any(axis=1) & (top[:, 0] > flat.min(axis=1))
    positive = np.clip(flat, 0, None)
    total = positive.sum(axis=1)
    mass = np.divide((positive * inside).sum(axis=1), total, out=np.zeros(len(flat)),
                     where=total > 0)
    count = inside.sum(axis=1)
    order = np.argsort(-flat, axis=1, kind="stable")
    hits = np.cumsum(np.take_along_axis(inside, order, axis=1), axis=1)   # inside among top k
    rank = hits[np.arange(len(flat)), count - 1] / count
    return {"pointing": pointing.astype(np.float64), "mass": mass, "rank_accuracy": rank}


def mask_fraction(masks: np.ndarray) -> np.ndarray:
    """Each mask's share of the image: what a random heatmap scores on every figure."""
    return masks.reshape(len(masks), -1).mean(axis=1)


def part_arrays(relevance: dict[str, np.ndarray], masks: list[np.ndarray | None]
                ) -> dict[str, np.ndarray]:
    """A batch's scores as part-file arrays ``loc/<figure>/<method>`` and
    ``loc/mask_fraction``, NaN for the inputs without a mask."""
    has = np.array([m is not None for m in masks])
    out = {"loc/mask_fraction": np.full(len(masks), np.nan)}
    if has.any():
        stacked = np.stack([m for m in masks if m is not None])
        out["loc/mask_fraction"][has] = mask_fraction(stacked)
    for method, maps in relevance.items():
        for figure in FIGURES:
            out[f"loc/{figure}/{method}"] = np.full(len(masks), np.nan)
        if has.any():
            for figure, values in scores(maps[has], stacked).items():
                out[f"loc/{figure}/{method}"][has] = values
    return out
