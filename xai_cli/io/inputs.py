"""From IMAGES arguments to model inputs: discovery, sharding, decoding, batching.

Discovery is deterministic (sorted, duplicates removed) so that shards and resumed
jobs see the same list. A job's inputs are a :class:`Listing`: counted and walked in
order as often as needed, without being held all at once (documents of a long file).
Every per-input problem becomes an :class:`InputError` with a one-line reason; output
stems are sanitised so that no input name can lead outside the output folder, and
oversized images are refused before they are decoded.
"""

from __future__ import annotations

import glob
import os
import re
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError, XaiError
from . import storage
from .preprocess import Preprocessing

# NumPy parses a .npy header with ast.literal_eval, and CPython 3.11's ast module counts
# its recursion per process, not per thread: loader threads parsing headers at once (a
# garbage collection between them is enough) fail with "SystemError: AST constructor
# recursion depth mismatch". Every .npy is opened under this lock; its data is read after.
_NPY_OPEN = threading.Lock()

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
INPUT_EXTENSIONS = (*IMAGE_EXTENSIONS, ".npy")   # what a folder of an image model's inputs holds
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
MAX_PIXELS = 64_000_000

warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class InputItem:
    """One input: a file, or sample ``index`` of a batch in a ``.npy`` file.

    Attributes
    ----------
    source : str
        The path as given or found.
    stem : str
        Output name stem, unique within the run and safe as a file name.
    index : int, optional
        Sample index in an ``(N, H, W, C)`` array, or line number; ``None`` otherwise.
    text : str, optional
        The input itself where discovery read it (a line of a file): carried with the
        item while it is in flight, never compared.
    """

    source: str
    stem: str
    index: int | None = None
    text: str | None = field(default=None, compare=False, repr=False)


class Listing(Protocol):
    """A job's inputs in order: counted, and walked as often as needed (a list, or the
    lines of files read as they go)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[InputItem]: ...


RESIZE_MODES = ("squash", "crop", "pad")


@dataclass(frozen=True)
class Fit:
    """How a picture of ``source_size`` became the model's input of ``size`` (both
    ``(width, height)``): the region ``box`` of the picture (its pixels) was scaled onto
    the region ``frame`` of the input (its pixels); outside ``frame`` the input is black.

    ``squash`` scales the whole picture to the input, changing its aspect ratio; ``crop``
    (the ImageNet convention) scales the shorter side to the input and cuts the centre;
    ``pad`` scales the longer side to the input and centres the picture on black. Boxes
    and masks given in the picture's pixels follow the same mapping.
    """

    mode: str
    source_size: tuple[int, int]
    size: tuple[int, int]
    box: tuple[float, float, float, float]
    frame: tuple[int, int, int, int]

    @classmethod
    def of(cls, mode: str, source_size: tuple[int, int], size: tuple[int, int]) -> Fit:
        (w, h), (width, height) = source_size, size
        box, frame = (0.0, 0.0, float(w), float(h)), (0, 0, width, height)
        if mode == "crop" and w * height != h * width:
            seen = min(w, h * width / height), min(h, w * height / width)
            box = ((w - seen[0]) / 2, (h - seen[1]) / 2, (w + seen[0]) / 2, (h + seen[1]) / 2)
        elif mode == "pad" and w * height != h * width:
            scale = min(width / w, height / h)
            inner = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
            left, top = (width - inner[0]) // 2, (height - inner[1]) // 2
            frame = (left, top, left + inner[0], top + inner[1])
        elif mode not in RESIZE_MODES:
            raise XaiError(f"unknown resize mode '{mode}'; expected {', '.join(RESIZE_MODES)}")
        return cls(mode, tuple(source_size), tuple(size), box, frame)

    @classmethod
    def identity(cls, size: tuple[int, int]) -> Fit:
        """The fit of an input given at the model's size (``.npy``): nothing resized."""
        return cls("none", tuple(size), tuple(size), (0.0, 0.0, *map(float, size)), (0, 0, *size))

    def apply(self, image: Image.Image, resample: Image.Resampling = Image.BILINEAR) -> Image.Image:
        """``image`` (the picture, or a mask of it at any resolution) as the model sees it."""
        sx, sy = image.width / self.source_size[0], image.height / self.source_size[1]
        box = (self.box[0] * sx, self.box[1] * sy, self.box[2] * sx, self.box[3] * sy)
        inner = (self.frame[2] - self.frame[0], self.frame[3] - self.frame[1])
        if inner == self.size and box == (0, 0, *image.size):
            return image if image.size == self.size else image.resize(self.size, resample)
        placed = image.resize(inner, resample, box=box)
        if inner == self.size:
            return placed
        canvas = Image.new(image.mode, self.size)
        canvas.paste(placed, self.frame[:2])
        return canvas

    def to_input(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Picture coordinates (pixels) to input coordinates (pixels)."""
        sx = (self.frame[2] - self.frame[0]) / (self.box[2] - self.box[0])
        sy = (self.frame[3] - self.frame[1]) / (self.box[3] - self.box[1])
        return self.frame[0] + (x - self.box[0]) * sx, self.frame[1] + (y - self.box[1]) * sy


@dataclass
class Sample:
    """A loaded input.

    Attributes
    ----------
    item : InputItem
    x : ndarray
        float32 ``(H, W, C)`` model input, preprocessed.
    display : ndarray
        uint8 ``(H, W, 3)`` RGB picture for overlays and grids.
    fit : Fit
        How the picture was mapped onto the model's input (``.npy``: the identity), so
        that coordinates in the original (bounding boxes, masks) can be mapped too.
    """

    item: InputItem
    x: np.ndarray
    display: np.ndarray
    fit: Fit


def _is_npy(path: str) -> bool:
    return path.lower().endswith(".npy")


def _expand(arg: str) -> tuple[list[str], str | None]:
    if storage.is_url(arg):
        return storage.expand(arg, INPUT_EXTENSIONS)
    if os.path.isdir(arg):
        found = sorted(str(p) for p in Path(arg).rglob("*")
                       if p.is_file() and p.name.lower().endswith(INPUT_EXTENSIONS))
        return found, None if found else "no images in directory"
    if os.path.lexists(arg):
        return [arg], None
    if glob.has_magic(arg):
        found = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
        return found, None if found else "no files match this pattern"
    return [], "no such file"


def sanitise(name: str) -> str:
    """A file-name stem that is safe inside the output folder.

    Only ``[A-Za-z0-9._-]`` is kept (others become ``_``), leading dots are dropped and
    the result is at most 100 characters; ``'input'`` when nothing is left.
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:100] or "input"


def unique_stem(base: str, taken: set[str]) -> str:
    """``base``, or ``base__2``, ``base__3``...: a stem no other input of the run has
    (compared without case, for case-insensitive file systems); added to ``taken``."""
    stem, n = base, 2
    while stem.lower() in taken:
        stem, n = f"{base}__{n}", n + 1
    taken.add(stem.lower())
    return stem


def open_npy(path: str) -> np.ndarray:
    """The array in a .npy file (at a URL: of its local copy), memory-mapped (only its
    header is read here)."""
    local = storage.array(path) if storage.is_url(path) else path
    with _NPY_OPEN:
        return np.load(local, mmap_mode="r", allow_pickle=False)


def item_array(item: InputItem) -> np.ndarray:
    """An input's array: the whole ``.npy`` file, or its row ``item.index`` of a batch
    (memory-mapped); raises :class:`InputError` for this input only."""
    try:
        array = open_npy(item.source)
        return array if item.index is None else array[item.index]
    except (OSError, ValueError, EOFError, IndexError) as exc:
        raise InputError(f"not a readable .npy array: {exc}") from None


def natural_key(path: str | Path) -> list:
    """Sort key of a path that compares the numbers in its names as numbers (s2 < s10,
    frame_2 < frame_10), folder by folder."""
    return [[int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]
            for name in Path(path).parts]


def _npy_count(path: str, axes: str) -> int | None:
    """How many inputs the array holds: None for one input of ``axes`` (``H,W,C``), N for
    a batch ``(N, ...)``."""
    try:
        shape = open_npy(path).shape
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable .npy array: {exc}") from None
    rank = axes.count(",") + 1
    if len(shape) == rank:
        return None
    if len(shape) == rank + 1 and shape[0] > 0:
        return shape[0]
    raise InputError(f"expected ({axes}) or (N,{axes}) array, got shape {shape}")


def _lines(stdin: TextIO | None) -> list[str]:
    return [line.rstrip("\r\n") for line in (stdin or []) if line.strip()]


def discover(args: Sequence[str], stdin: TextIO | None = None,
             expand: Callable[[str], tuple[list[str], str | None]] = _expand, axes: str = "H,W,C"
             ) -> tuple[list[InputItem], list[tuple[str, str]]]:
    """Inputs named on the command line.

    Parameters
    ----------
    args : sequence of str
        Files, folders (searched recursively for images and ``.npy``), glob patterns,
        or ``-`` for one path per line on ``stdin``.
    stdin : text file, optional
    expand : callable
        One argument's paths and the problem if it names none (another kind's inputs:
        :mod:`~xai_cli.io.clips`).
    axes : str
        An input's axes, which a ``.npy`` array holds, or a batch of them.

    Returns
    -------
    items : list of InputItem
        In argument order, folders and globs sorted, duplicates removed; a batch
        array gives one item per sample.
    problems : list of (str, str)
        ``(argument, reason)`` for names that give no input; reported like failed
        inputs.
    """
    paths, problems = [], []
    for name in (line for arg in args for line in (_lines(stdin) if arg == "-" else [arg])):
        found, problem = expand(name)
        paths.extend(found)
        if problem:
            problems.append((name, problem))
    items, seen, taken = [], set(), set()

    def add(source: str, base: str, index: int | None = None) -> None:
        items.append(InputItem(source, unique_stem(base, taken), index))

    for path in paths:
        key = path if storage.is_url(path) else os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        base = sanitise(Path(storage.name(path)).stem if storage.is_url(path)
                        else Path(path).stem if os.path.isfile(path) else Path(path).name)
        try:
            count = _npy_count(path, axes) if _is_npy(path) else None
        except InputError as exc:
            problems.append((path, str(exc)))
            continue
        if count is None:
            add(path, base)
        else:
            width = len(str(count - 1))
            for i in range(count):
                add(path, f"{base}-{i:0{width}d}", i)
    return items, problems


Window = list[tuple[int, InputItem]]   # consecutive inputs, each with its position in the job
T = TypeVar("T")


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``(K, N)`` of ``--shard K/N`` (None: the whole job)."""
    if spec is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise XaiError(f"invalid --shard '{spec}': expected K/N with 1 <= K <= N")
    return int(match[1]), int(match[2])


def windows(items: Iterable[InputItem], size: int, shard: tuple[int, int] | None = None
            ) -> Iterator[tuple[int, Window]]:
    """Consecutive windows of ``size`` inputs, numbered in the whole job, each input with
    its position in it; with ``shard`` ``(K, N)`` only window ``w`` with ``w % N == K - 1``.

    Whole windows, so that every batch a shard runs is a batch of the unsharded job: the
    shards' results are then exactly the unsharded run's (convolutions round differently
    in other batch compositions), and their part files merge into it.
    """
    numbered, number = enumerate(items), 0
    while window := list(islice(numbered, size)):
        if shard is None or number % shard[1] == shard[0] - 1:
            yield number, window
        number += 1


def shard_size(total: int, size: int, shard: tuple[int, int] | None) -> int:
    """How many of ``total`` inputs in windows of ``size`` the shard ``(K, N)`` has."""
    if shard is None:
        return total
    k, n = shard
    full, last = divmod(total, size)
    count = len(range(k - 1, full, n)) * size
    return count + (last if last and full % n == k - 1 else 0)


def open_image(path: str, channels: int) -> Image.Image:
    """Decoded image, converted to grey or RGB."""
    try:
        if os.path.getsize(path) == 0:
            raise InputError("empty file")
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InputError(f"image is {image.width} x {image.height} pixels, larger than "
                                 f"the {MAX_PIXELS / 1e6:g}-megapixel limit")
            image.load()
            image = convert(image, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"image is larger than the {MAX_PIXELS / 1e6:g}-megapixel limit") from None
    except UnidentifiedImageError:
        raise InputError("not a recognised image") from None
    except OSError as exc:
        if exc.strerror:
            raise InputError(f"cannot read: {exc.strerror}") from None
        raise InputError(f"truncated or corrupt image: {exc}") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"truncated or corrupt image: {exc}") from None
    return image


def convert(image: Image.Image, channels: int) -> Image.Image:
    """A decoded picture as grey (``channels`` 1) or RGB; transparency over black."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        image = Image.fromarray(np.clip(np.asarray(image, np.float64) / 257, 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    elif image.mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        image = Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)),
                                      image.convert("RGBA"))
    return image.convert("L" if channels == 1 else "RGB")


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB picture from (H, W, C) pixels in [0, 255]; other than 3 channels: grey."""
    if pixels.shape[-1] != 3:
        pixels = np.repeat(pixels.mean(axis=-1, keepdims=True), 3, axis=-1)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def load(item: InputItem, shape: tuple[int, int, int], preprocessing: Preprocessing,
         resize: str = "squash") -> Sample:
    """Decode, resize and preprocess one input.

    Images are converted to grey or RGB, resized bilinearly to the model's size (see
    :class:`Fit`) and preprocessed; ``.npy`` arrays must have the model's shape and are
    used as they are.

    Parameters
    ----------
    item : InputItem
    shape : (H, W, C)
        The model's input shape.
    preprocessing : Preprocessing
    resize : str
        squash, crop or pad: how pictures of another aspect ratio fit the input.

    Returns
    -------
    Sample

    Raises
    ------
    InputError
        When this input cannot be used.
    XaiError
        When no image can be used with this model or preprocessing.
    """
    if _is_npy(item.source):
        return _load_array(item, tuple(shape), preprocessing)
    height, width, channels = shape
    check_pictures(channels, preprocessing)
    image = open_image(item.source, channels)
    fit = Fit.of(resize, image.size, (width, height))
    return Sample(item, *fitted(image, fit, channels, preprocessing), fit)


def check_pictures(channels: int, preprocessing: Preprocessing) -> None:
    """Refuse pictures for a model or preprocessing that cannot take any."""
    if channels not in (1, 3):
        raise XaiError(f"the model takes {channels}-channel inputs; images give 1 or 3 "
                       "channels: pass preprocessed .npy arrays")
    if preprocessing.name == "none":
        raise XaiError("--preprocess none is only for .npy inputs; images need a preset")


def fitted(image: Image.Image, fit: Fit, channels: int, preprocessing: Preprocessing
           ) -> tuple[np.ndarray, np.ndarray]:
    """A decoded picture as the model's input ``(H, W, C)``, preprocessed, and as the RGB
    picture drawn under its heatmaps."""
    width, height = fit.size
    pixels = np.asarray(fit.apply(image), np.float32).reshape(height, width, channels)
    return preprocessing.apply(pixels), _rgb(pixels)


def _load_array(item: InputItem, shape: tuple[int, int, int], preprocessing: Preprocessing) -> Sample:
    array = item_array(item)
    if array.shape != shape:
        raise InputError(f"array shape {array.shape} does not match the model input {shape}")
    return Sample(item, *array_input(array, preprocessing), Fit.identity((shape[1], shape[0])))


def array_input(array: np.ndarray, preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """An already preprocessed array as the model's input, checked, and as the RGB
    picture drawn under its heatmaps (the preprocessing inverted; for ``none``, the
    array's own range stretched)."""
    if array.dtype.kind not in "fiu":
        raise InputError(f"array dtype {array.dtype} is not a real number type")
    x = np.array(array, np.float32)
    if not np.isfinite(x).all():
        raise InputError("array contains NaN or Inf values")
    if preprocessing.name != "none":
        pixels = preprocessing.invert(x)
    elif x.max() > x.min():
        pixels = (x - x.min()) / (x.max() - x.min()) * 255
    else:
        pixels = np.zeros_like(x)
    return x, _rgb(pixels)


def worker_threads() -> int:
    """Threads for decoding inputs, and for rendering and writing outputs: one per core
    this process may use, so that both keep up with a fast device; at least 2, so that
    file access overlaps, and at most 8, past which the GIL-bound parts gain little."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(8, max(2, cores or 1))


def batches(groups: Iterable[tuple[T, Sequence[InputItem]]], load_fn: Callable[[InputItem], Sample],
            workers: int | None = None
            ) -> Iterator[tuple[T, list[tuple[InputItem, Sample | InputError]]]]:
    """Load the inputs of each group in parallel, in input order.

    Parameters
    ----------
    groups : iterable of (tag, sequence of InputItem)
        Read as they are needed; the tag comes back with the group's loaded inputs.
    load_fn : callable
        Loads one item; an :class:`InputError` it raises is returned in the batch, any
        other exception propagates.
    workers : int, optional
        Loader threads; by default :func:`worker_threads`.

    Yields
    ------
    tag, list of (InputItem, Sample or InputError)
        One per group. At most two groups are loaded ahead, so memory does not grow with
        the number of inputs.
    """
    def attempt(item):
        try:
            return item, load_fn(item)
        except InputError as exc:
            return item, exc

    pool = ThreadPoolExecutor(workers or worker_threads())
    try:
        ahead: deque = deque()
        for tag, group in groups:
            ahead.append((tag, [pool.submit(attempt, item) for item in group]))
            if len(ahead) > 2:
                tag, futures = ahead.popleft()
                yield tag, [f.result() for f in futures]
        while ahead:
            tag, futures = ahead.popleft()
            yield tag, [f.result() for f in futures]
    finally:
        pool.shutdown(cancel_futures=True)
