"""From IMAGES arguments to model inputs: discovery, sharding, decoding, batching.

Discovery is deterministic (sorted, duplicates removed) so that shards and resumed
jobs see the same list. Every per-input problem becomes an :class:`InputError` with a
one-line reason; output stems are sanitised so that no input name can lead outside
the output folder.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence, TextIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError, XaiError
from .preprocess import Preprocessing

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class InputItem:
    """One input: a file, or sample ``index`` of a batch in a ``.npy`` file."""

    source: str
    stem: str
    index: int | None = None


@dataclass
class Sample:
    """A loaded input: ``x`` for the model, ``display`` (uint8 RGB) for pictures."""

    item: InputItem
    x: np.ndarray
    display: np.ndarray


def _is_input_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS + (".npy",))


def _expand(arg: str) -> tuple[list[str], str | None]:
    if os.path.isdir(arg):
        found = sorted(str(p) for p in Path(arg).rglob("*") if p.is_file() and _is_input_file(p.name))
        return found, None if found else "no images in directory"
    if os.path.exists(arg) or os.path.islink(arg):
        return [arg], None
    if glob.has_magic(arg):
        found = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
        return found, None if found else "no files match this pattern"
    return [], "no such file"


def sanitise(name: str) -> str:
    """A file-name stem that is safe inside the output folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:100]
    return stem or "input"


def _npy_count(path: str) -> int | None:
    """Number of samples in a batch array; None for a single (H,W,C) array."""
    shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    if len(shape) == 4:
        return shape[0]
    if len(shape) == 3:
        return None
    raise ValueError(f"expected an (H,W,C) or (N,H,W,C) array, got shape {shape}")


def discover(args: Sequence[str], stdin: TextIO | None = None):
    """Inputs named by ``args`` (files, folders, globs, ``-`` for stdin), and problems.

    Returns ``(items, problems)``; a problem is ``(argument, reason)`` and is reported
    like a failed input.
    """
    paths, problems = [], []
    for arg in args:
        if arg == "-":
            lines = (stdin.read() if stdin else "").split("\n")
            named = [line.rstrip("\r") for line in lines if line.strip()]
        else:
            named = [arg]
        for name in named:
            found, problem = _expand(name)
            paths.extend(found)
            if problem:
                problems.append((name, problem))
    items, seen, stems = [], set(), set()

    def add(source, base, index=None):
        stem = base
        n = 2
        while stem in stems:
            stem, n = f"{base}__{n}", n + 1
        stems.add(stem)
        items.append(InputItem(source, stem, index))

    for path in paths:
        key = os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        base = sanitise(Path(path).stem)
        if not path.lower().endswith(".npy"):
            add(path, base)
            continue
        try:
            count = _npy_count(path)
        except (OSError, ValueError) as exc:
            problems.append((path, f"cannot read array: {exc}"))
            continue
        if count is None:
            add(path, base)
        else:
            width = len(str(max(count - 1, 0)))
            for i in range(count):
                add(path, f"{base}-{i:0{width}d}", i)
    return items, problems


def shard(items: list[InputItem], spec: str | None) -> list[InputItem]:
    """The K-th of N interleaved slices (``spec`` = 'K/N', 1-based)."""
    if spec is None:
        return items
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise XaiError(f"invalid --shard '{spec}': expected K/N with 1 <= K <= N")
    k, n = int(match[1]), int(match[2])
    return [item for i, item in enumerate(items) if i % n == k - 1]


def _decode(path: str, channels: int, size: tuple[int, int]) -> Image.Image:
    try:
        if os.path.getsize(path) == 0:
            raise InputError("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.width * image.height > MAX_PIXELS:
                raise InputError(f"image is {image.width} x {image.height} pixels, larger than "
                                 f"the {MAX_PIXELS // 1_000_000}-megapixel limit")
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError:
        raise InputError("not a recognised image") from None
    except OSError as exc:
        if exc.strerror:
            raise InputError(f"cannot read: {exc.strerror}") from None
        raise InputError(f"truncated or corrupt image: {exc}") from None
    except (ValueError, SyntaxError) as exc:
        raise InputError(f"truncated or corrupt image: {exc}") from None
    return _to_mode(image, channels).resize((size[1], size[0]), Image.BILINEAR) \
        if image.size != (size[1], size[0]) else _to_mode(image, channels)


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scale = 1 / 257 if image.mode.startswith("I;16") or np.asarray(image).max() > 255 else 1
        image = Image.fromarray(np.clip(np.asarray(image, np.float64) * scale, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    elif image.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def _rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels[..., :3]


def load(item: InputItem, shape: tuple[int, int, int], preprocessing: Preprocessing) -> Sample:
    """Decode, resize and preprocess one input; raises :class:`InputError`."""
    height, width, channels = shape
    if channels not in (1, 3) and not item.source.lower().endswith(".npy"):
        raise XaiError(f"the model takes {channels}-channel inputs; images give 1 or 3 "
                       "channels: pass preprocessed .npy arrays")
    if item.source.lower().endswith(".npy"):
        return _load_array(item, shape, preprocessing)
    if preprocessing.name == "none":
        raise XaiError("--preprocess none is for .npy inputs; images need a preset")
    image = _decode(item.source, channels, (height, width))
    pixels = np.asarray(image, np.float32).reshape(height, width, channels)
    return Sample(item, preprocessing.apply(pixels), _rgb(pixels))


def _load_array(item: InputItem, shape, preprocessing: Preprocessing) -> Sample:
    try:
        array = np.load(item.source, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read array: {exc}") from None
    if item.index is not None:
        array = array[item.index]
    if array.shape != tuple(shape):
        raise InputError(f"array shape {array.shape} does not match the model input {tuple(shape)}")
    if array.dtype.kind not in "fiu":
        raise InputError(f"array dtype {array.dtype} is not a real number type")
    x = np.asarray(array, np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError("array contains NaN or Inf values")
    if preprocessing.name == "none":
        low, high = x.min(), x.max()
        pixels = (x - low) / (high - low) * 255 if high > low else np.zeros_like(x)
    else:
        pixels = preprocessing.invert(x)
    return Sample(item, x, _rgb(pixels))


def batches(items: Sequence[InputItem], load_fn: Callable[[InputItem], Sample], batch_size: int,
            workers: int = 4) -> Iterator[list]:
    """Batches of ``(item, Sample or InputError)`` in input order, decoded in parallel.

    At most two batches are decoded ahead, so memory does not grow with the job.
    """
    def attempt(item):
        try:
            return item, load_fn(item)
        except InputError as exc:
            return item, exc

    chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    with ThreadPoolExecutor(workers) as pool:
        ahead: deque = deque()
        for chunk in chunks:
            ahead.append([pool.submit(attempt, item) for item in chunk])
            if len(ahead) > 2:
                yield [f.result() for f in ahead.popleft()]
        while ahead:
            yield [f.result() for f in ahead.popleft()]
