"""From CLIPS arguments to model inputs: clips found, their frames chosen and decoded.

A clip is a folder of frames (sorted by name, numbers in names compared as numbers), an
animated GIF, a video file (decoded by the ffmpeg that ``imageio-ffmpeg`` bundles: the
optional ``video`` extra), or a ``.npy`` array of preprocessed frames ``(T, H, W, C)``
or a batch of clips ``(N, T, H, W, C)``. A :class:`Selection` (``--frames``,
``--stride``) says which of a clip's frames the model's steps see; only those are
decoded. Frames are fitted and preprocessed as images are (:mod:`~xai_cli.io.inputs`).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError, XaiError
from . import inputs, storage
from .inputs import VIDEO_EXTENSIONS, Fit, InputItem
from .preprocess import Preprocessing

FRAME_EXTENSIONS = tuple(e for e in inputs.IMAGE_EXTENSIONS if e != ".gif")
CLIP_EXTENSIONS = (".gif", ".npy", *VIDEO_EXTENSIONS)
MAX_FRAMES = 100_000   # a clip's frames, read or counted, beyond which it is refused


@dataclass(frozen=True)
class Selection:
    """Which frames of a clip the model sees: those from ``start`` up to ``stop`` (all by
    default), every ``stride``-th (by default spread evenly over that range)."""

    start: int = 0
    stop: int | None = None
    stride: int | None = None

    @classmethod
    def parse(cls, frames: str | None, stride: int | None) -> Selection:
        """``--frames`` (``N``: the first N frames; ``A:B``: frames A to B-1, either end
        left out for the clip's) and ``--stride``."""
        if stride is not None and stride < 1:
            raise XaiError(f"--stride must be at least 1, got {stride}")
        if frames is None:
            return cls(stride=stride)
        match = re.fullmatch(r"\s*(\d*)\s*(:?)\s*(\d*)\s*", frames)
        if not match or not (match[1] or match[3]) or (not match[2] and not match[1]):
            raise XaiError(f"invalid --frames '{frames}': expected N (the first N frames) or "
                           "A:B (frames A to B-1, counted from 0)")
        start, stop = (0, int(match[1])) if not match[2] else \
            (int(match[1] or 0), int(match[3]) if match[3] else None)
        if stop is not None and stop <= start:
            raise XaiError(f"invalid --frames '{frames}': the range holds no frame")
        return cls(start, stop, stride)

    def indices(self, count: int, steps: int) -> list[int]:
        """The frame each of the model's ``steps`` sees, of a clip of ``count`` frames; a
        clip with fewer frames to give has its last one repeated."""
        if self.start >= count:
            raise InputError(f"the clip has {count} frame{'s' * (count != 1)}; --frames starts "
                             f"at frame {self.start}")
        stop = count if self.stop is None else min(self.stop, count)
        if self.stride is not None:
            chosen = list(range(self.start, stop, self.stride))[:steps]
        elif stop - self.start > steps:
            chosen = [int(i) for i in np.round(np.linspace(self.start, stop - 1, steps))]
        else:
            chosen = list(range(self.start, stop))
        return chosen + chosen[-1:] * (steps - len(chosen))


@dataclass
class Clip:
    """A loaded clip.

    Attributes
    ----------
    item : InputItem
    x : ndarray
        float32 ``(T, H, W, C)`` model input, preprocessed.
    display : ndarray
        uint8 ``(T, H, W, 3)`` RGB frames, drawn under the heatmaps.
    fit : Fit
        How every frame was fitted to the model's input.
    frames : list of int
        The clip's frame that each step shows (counted from 0).
    source_frames : int
        How many frames the clip has.
    frame_ms : float, optional
        The clip's time between frames, where it says (a GIF, a video).
    """

    item: InputItem
    x: np.ndarray
    display: np.ndarray
    fit: Fit
    frames: list[int]
    source_frames: int
    frame_ms: float | None = None


def frame_files(folder: str) -> list[Path]:
    """A folder's frames: its pictures (not GIFs, which are clips), in name order."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.is_file() and p.name.lower().endswith(FRAME_EXTENSIONS)), key=inputs.natural_key)


def _is_clip(path: Path) -> bool:
    return (path.is_file() and path.name.lower().endswith(CLIP_EXTENSIONS)) or \
        (path.is_dir() and bool(frame_files(str(path))))


def expand(arg: str) -> tuple[list[str], str | None]:
    """The clips one argument names: a folder of frames is one clip; another folder is
    searched for clip files and folders of frames. At a URL: clip files only."""
    if storage.is_url(arg):
        return storage.expand(arg, CLIP_EXTENSIONS)
    if os.path.isdir(arg):
        if frame_files(arg):
            return [arg], None
        found = sorted(str(p) for p in Path(arg).rglob("*") if _is_clip(p))
        return found, None if found else "no clips in directory (GIFs, videos, .npy, folders of frames)"
    if os.path.lexists(arg):
        return [arg], None
    if glob.has_magic(arg):
        found = sorted(p for p in glob.glob(arg, recursive=True) if _is_clip(Path(p)))
        return found, None if found else "no clips match this pattern"
    return [], "no such file"


def discover(args, stdin=None):
    """Clips named on the command line, as :func:`~xai_cli.io.inputs.discover` finds
    images: in argument order, folders and globs sorted, a batch array one per clip."""
    return inputs.discover(args, stdin, expand, "T,H,W,C")


def load(item: InputItem, shape: tuple[int, ...], preprocessing: Preprocessing, selection: Selection,
         resize: str = "squash") -> Clip:
    """Decode the chosen frames of one clip, fit and preprocess them.

    Raises
    ------
    InputError
        When this clip cannot be used.
    XaiError
        When no clip of this kind can be used (a video without the decoder, pictures
        with ``--preprocess none``).
    """
    steps, height, width, channels = shape
    source = item.source
    if source.lower().endswith(".npy"):
        return _load_array(item, shape, preprocessing, selection)
    inputs.check_pictures(channels, preprocessing)
    if os.path.isdir(source):
        files = frame_files(source)
        chosen = selection.indices(len(files), steps)
        opened = {i: inputs.open_image(str(files[i]), channels) for i in set(chosen)}
        pictures, frame_ms = [opened[i] for i in chosen], None
        count = len(files)
    elif source.lower().endswith(VIDEO_EXTENSIONS):
        pictures, chosen, count, frame_ms = _video(source, selection, steps, channels)
    else:
        pictures, chosen, count, frame_ms = _animation(source, selection, steps, channels)
    sizes = {p.size for p in pictures}
    if len(sizes) > 1:
        raise InputError(f"the frames differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})")
    fit = Fit.of(resize, pictures[0].size, (width, height))
    decoded = {i: inputs.fitted(picture, fit, channels, preprocessing)   # a repeated frame once
               for i, picture in dict(zip(chosen, pictures)).items()}
    x = np.stack([decoded[i][0] for i in chosen])
    display = np.stack([decoded[i][1] for i in chosen])
    return Clip(item, x, display, fit, chosen, count, frame_ms)


def _animation(path: str, selection: Selection, steps: int, channels: int):
    """The chosen frames of an animated picture (GIF; a still picture is a clip of one)."""
    try:
        with Image.open(path) as image:
            count = getattr(image, "n_frames", 1)
            if image.width * image.height > inputs.MAX_PIXELS or count > MAX_FRAMES:
                raise InputError(f"animation of {count} frames of {image.width} x {image.height} "
                                 f"pixels; xai reads up to {MAX_FRAMES:,} frames of up to "
                                 f"{inputs.MAX_PIXELS / 1e6:g} megapixels")
            chosen = selection.indices(count, steps)
            pictures = {}
            for i in sorted(set(chosen)):
                image.seek(i)
                pictures[i] = inputs.convert(image.copy(), channels)
            frame_ms = image.info.get("duration")
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"frames larger than the {inputs.MAX_PIXELS / 1e6:g}-megapixel limit") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"not a readable animation: {exc}") from None
    return [pictures[i] for i in chosen], chosen, count, float(frame_ms) if frame_ms else None


def _video(path: str, selection: Selection, steps: int, channels: int):
    """The chosen frames of a video file, decoded by the bundled ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise XaiError("reading video files needs the ffmpeg of imageio-ffmpeg: pip install "
                       "'xai[video]' (or give clips as GIFs, folders of frames or .npy arrays)"
                       ) from None
    try:
        count, _ = imageio_ffmpeg.count_frames_and_secs(path)
        if not 0 < count <= MAX_FRAMES:
            raise InputError(f"video has {count} frames; xai reads clips of 1 to {MAX_FRAMES:,}")
        chosen = selection.indices(count, steps)
        wanted, pictures = set(chosen), {}
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
        meta = next(reader)
        width, height = meta["size"]
        for i, frame in enumerate(reader):
            if i in wanted:
                pixels = np.frombuffer(frame, np.uint8).reshape(height, width, 3)
                pictures[i] = inputs.convert(Image.fromarray(pixels), channels)
            if len(pictures) == len(wanted):
                break
        reader.close()
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError, StopIteration) as exc:
        raise InputError(f"not a readable video: {str(exc).splitlines()[0] if str(exc) else exc}"
                         ) from None
    missing = [i for i in chosen if i not in pictures]
    if missing:
        raise InputError(f"video ended before frame {missing[0]} of the {count} it counts")
    fps = meta.get("fps")
    return [pictures[i] for i in chosen], chosen, count, 1000 / fps if fps else None


def _load_array(item: InputItem, shape, preprocessing: Preprocessing, selection: Selection) -> Clip:
    """Preprocessed frames from a ``.npy`` array ``(T', H, W, C)``, T' any number."""
    array = inputs.item_array(item)
    if array.ndim != 4 or array.shape[1:] != tuple(shape[1:]):
        raise InputError(f"array shape {array.shape} does not hold frames of the model input "
                         f"{tuple(shape[1:])}: expected (T, {', '.join(map(str, shape[1:]))})")
    if not len(array):
        raise InputError("array holds no frames")
    chosen = selection.indices(len(array), shape[0])
    x, display = inputs.array_input(np.asarray(array[chosen]), preprocessing)
    return Clip(item, x, display, Fit.identity((shape[2], shape[1])), chosen, len(array))
