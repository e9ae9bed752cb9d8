"""From SIGNALS arguments to model inputs: signal files found, read and cut to the model's window.

A signal classifier takes ``(T, C)``: T time steps of C channels (audio, a time series).
A signal is a ``.npy`` array ``(T', C)`` (or a batch ``(N, T', C)``), a CSV file (a column
per channel, a row per step, an optional header naming the channels) or an audio file:
integer PCM WAV through the standard library, and float WAV, FLAC and OGG through the
optional ``soundfile`` (the ``audio`` extra). Unlike an image's ``.npy``, a signal's holds
the signal's values, not the model input: every format is preprocessed alike, per
channel. A :class:`Timing` (``--sample-rate``, ``--offset``) says where the model's
window of T steps starts and at which rate the model takes audio: audio at another rate
is resampled, a CSV or ``.npy`` only gets its time axis labelled.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, XaiError
from . import inputs, storage
from .inputs import InputItem
from .preprocess import Preprocessing

try:
    import soundfile
except (ImportError, OSError):   # OSError: the package without its libsndfile
    soundfile = None

_SOUNDFILE_EXTENSIONS = (".flac", ".ogg")
AUDIO_EXTENSIONS = (".wav", *(_SOUNDFILE_EXTENSIONS if soundfile else ()))
SIGNAL_EXTENSIONS = (".npy", ".csv", *AUDIO_EXTENSIONS)
_PCM_SCALE = {1: 128, 2: 2 ** 15, 3: 2 ** 31, 4: 2 ** 31}   # 24-bit samples are read as the top of 32


@dataclass(frozen=True)
class Timing:
    """``--sample-rate`` and ``--offset``.

    Attributes
    ----------
    sample_rate : float, optional
        The rate (Hz) the model takes: audio at another rate is resampled to it; a CSV's or
        ``.npy``'s time axis is labelled with it.
    offset : float
        Where the model's window starts: seconds when the signal has a rate, else samples.
    """

    sample_rate: float | None = None
    offset: float = 0.0

    @classmethod
    def parse(cls, sample_rate: float | None, offset: float | None) -> Timing:
        """The options as given (either may be None)."""
        rate = None if sample_rate is None else _number(sample_rate, "--sample-rate")
        if rate is not None and not (math.isfinite(rate) and rate > 0):
            raise XaiError(f"--sample-rate must be a positive number of hertz, got {sample_rate}")
        start = 0.0 if offset is None else _number(offset, "--offset")
        if not (math.isfinite(start) and start >= 0):
            raise XaiError(f"--offset must be a finite number, at least 0, got {offset}")
        return cls(rate, start)


def _number(value, option: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise XaiError(f"{option} must be a number, got {value!r}") from None


@dataclass
class Signal:
    """A loaded signal.

    Attributes
    ----------
    item : InputItem
    x : ndarray
        float32 ``(T, C)`` model input, preprocessed.
    raw : ndarray
        float32 ``(T, C)``: the same window before preprocessing, in the file's units
        (audio in [-1, 1)), as plots draw it.
    rate : float, optional
        Samples per second of ``x`` (after resampling); None when unknown (a CSV or
        ``.npy`` without ``--sample-rate``).
    start : int
        The first sample the model sees, counted in samples of the (resampled) source.
    source_length : int
        Samples of the whole (resampled) source.
    channels : tuple of str
        The channels' names: a CSV header's, else ``channel 0``, ... (one: ``signal``).
    source_rate : float, optional
        An audio file's own rate, before resampling.
    mixed : int, optional
        How many channels the audio had when it was mixed down to the model's one.
    """

    item: InputItem
    x: np.ndarray
    raw: np.ndarray
    rate: float | None
    start: int
    source_length: int
    channels: tuple[str, ...]
    source_rate: float | None = None
    mixed: int | None = None


def _refusal(path: str) -> str | None:
    """Why a named file is no signal that can be read here; None when it may be one."""
    name = path.lower()
    if name.endswith(SIGNAL_EXTENSIONS):
        return None
    if name.endswith(inputs.IMAGE_EXTENSIONS):
        return "is a picture, not a signal: the model takes (T, C)"
    if name.endswith(inputs.VIDEO_EXTENSIONS):
        return "is a video, not a signal: the model takes (T, C)"
    if name.endswith(_SOUNDFILE_EXTENSIONS):
        return f"reading {Path(name).suffix} files needs soundfile: pip install 'xai[audio]'"
    return f"not a signal file ({', '.join(SIGNAL_EXTENSIONS)})"


def _signal_files(paths) -> list[str]:
    return sorted((str(p) for p in paths if os.path.isfile(p) and str(p).lower().endswith(SIGNAL_EXTENSIONS)),
                  key=inputs.natural_key)


def expand(arg: str) -> tuple[list[str], str | None]:
    """The signal files one argument names: a file, a folder (searched recursively) or a
    glob pattern; numbers in names sort as numbers."""
    if storage.is_url(arg):
        return storage.expand(arg, SIGNAL_EXTENSIONS, key=inputs.natural_key)
    if os.path.isdir(arg):
        found = _signal_files(Path(arg).rglob("*"))
        return found, None if found else f"no signal files ({', '.join(SIGNAL_EXTENSIONS)}) found"
    if os.path.lexists(arg):
        problem = _refusal(arg)
        return ([], problem) if problem else ([arg], None)
    if glob.has_magic(arg):
        found = _signal_files(glob.glob(arg, recursive=True))
        return found, None if found else "no signal files match this pattern"
    return [], "no such file"


def discover(args, stdin=None):
    """Signals named on the command line, as :func:`~xai_cli.io.inputs.discover` finds
    images: in argument order, folders and globs sorted, a ``(N, T, C)`` array one per row."""
    return inputs.discover(args, stdin, expand, "T,C")


def load(item: InputItem, shape: tuple[int, int], preprocessing: Preprocessing, timing: Timing) -> Signal:
    """Read one signal, fit its channels and rate to the model's, cut the model's window of
    ``shape[0]`` steps from ``timing.offset`` and preprocess it.

    Raises
    ------
    InputError
        When this signal cannot be used.
    XaiError
        When the preprocessing does not fit the model's channels.
    """
    steps, channels = shape
    values, names, source_rate = _read(item)
    values, mixed = _fit_channels(values, channels, audio=source_rate is not None)
    rate = timing.sample_rate
    if source_rate is not None:
        values, rate = _resample(values, source_rate, rate)
    start = _start(timing.offset, rate)
    if start + steps > len(values):
        raise InputError(_too_short(len(values), start, steps, rate, timing.offset))
    raw = np.array(values[start:start + steps], np.float32)
    if not np.isfinite(raw).all():
        raise InputError("the signal has NaN or Inf values (or values beyond float32)")
    x = np.array(preprocessing.apply(raw), np.float32)   # a copy, also where the preprocessing is none
    if not np.isfinite(x).all():
        raise InputError("the preprocessed signal has values beyond float32")
    if mixed or names is None:
        names = ("signal",) if channels == 1 else tuple(f"channel {i}" for i in range(channels))
    return Signal(item, x, raw, rate, start, len(values), names, source_rate, mixed)


def _read(item: InputItem) -> tuple[np.ndarray, tuple[str, ...] | None, float | None]:
    """A signal's values ``(T', C)``, its channels' names where the file gives them, and an
    audio file's rate (None for other files)."""
    problem = _refusal(item.source)
    if problem:
        raise InputError(problem)
    name = item.source.lower()
    if name.endswith(".npy"):
        return _npy(item), None, None
    if name.endswith(".csv"):
        return *_csv(item.source), None
    values, rate = _audio(item.source)
    return values, None, rate


def _npy(item: InputItem) -> np.ndarray:
    """The signal in a ``.npy`` array, memory-mapped: only the window is read later."""
    array = inputs.item_array(item)
    if array.ndim != 2:
        raise InputError(f"array shape {array.shape} is not a signal: expected (T, C)")
    if array.dtype.kind not in "fiu":
        raise InputError(f"array dtype {array.dtype} is not a real number type")
    return array


def _csv(path: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """A CSV file's values and, where its first row is not all numbers, its header's names."""
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            first = next((line for line in file if line.strip()), "")
            file.seek(0)
            reader = csv.reader(file, delimiter=";" if ";" in first else "\t" if "\t" in first else ",")
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):   # blank lines skipped
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise InputError("not a CSV file: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file: {exc}") from None
    if not rows:
        raise InputError("empty file")
    names = None
    if _numbers([rows[0]]) is None:
        names = tuple(cell.strip() or f"channel {i}" for i, cell in enumerate(rows[0]))
        if len(rows) == 1:
            raise InputError(f"no data rows: only the header on line {lines[0]}")
    width = len(rows[0])
    ragged = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if ragged is not None:
        count = len(rows[ragged])
        raise InputError(f"line {lines[ragged]} has {count} column{'s' * (count != 1)}; line {lines[0]} "
                         f"has {width}")
    body = rows[1:] if names else rows
    values = _numbers(body)
    if values is None:
        raise InputError(_bad_cell(body, lines[len(rows) - len(body):]))
    return values, names


def _numbers(rows: list[list[str]]) -> np.ndarray | None:
    """The rows' cells as numbers, parsed by numpy at once; None if one is not a number."""
    try:
        return np.array(rows, np.float64)
    except ValueError:
        return None


def _bad_cell(rows: list[list[str]], lines: list[int]) -> str:
    """Where the first cell that is not a number is (looked for only once one is known)."""
    line, row = next((line, row) for row, line in zip(rows, lines) if _numbers([row]) is None)
    column, cell = next((j, c) for j, c in enumerate(row, 1) if _numbers([[c]]) is None)
    what = f"{cell.strip()!r} is not a number" if cell.strip() else "empty cell"
    return f"line {line}, column {column}: {what}"


def _audio(path: str) -> tuple[np.ndarray, float]:
    """An audio file's samples ``(T', C)`` in [-1, 1), and its rate."""
    if soundfile is not None:
        try:
            values, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            raise InputError(f"not a readable audio file: {exc}") from None
        return values, float(rate)
    return _wav(path)


def _wav(path: str) -> tuple[np.ndarray, float]:
    """An integer PCM WAV file through the standard library, scaled as soundfile scales it
    (int16 / 32768, ...)."""
    try:
        with wave.open(path, "rb") as file:
            width, channels, rate = file.getsampwidth(), file.getnchannels(), file.getframerate()
            data = file.readframes(file.getnframes())
    except wave.Error as exc:
        if str(exc).startswith("unknown"):
            kind = "a float WAV" if str(exc) == "unknown format: 3" else f"a WAV of {exc}"
            raise InputError(f"{kind}: reading it needs soundfile (pip install 'xai[audio]', or pip "
                             "install soundfile); without it xai reads integer PCM WAV") from None
        raise InputError(f"not a readable WAV file: {exc}") from None
    except EOFError:
        raise InputError("not a readable WAV file: truncated") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from None
    if width not in _PCM_SCALE:
        raise InputError(f"WAV of {8 * width}-bit samples; xai reads 8, 16, 24 and 32-bit PCM")
    frames = len(data) // (width * channels)
    data = np.frombuffer(data, np.uint8, frames * width * channels)
    if width == 1:
        samples = data.astype(np.float32) - 128
    elif width == 3:
        padded = np.zeros((len(data) // 3, 4), np.uint8)
        padded[:, 1:] = data.reshape(-1, 3)
        samples = padded.view("<i4")[:, 0]
    else:
        samples = data.view(f"<i{width}")
    return (samples / np.float32(_PCM_SCALE[width])).astype(np.float32).reshape(frames, channels), float(rate)


def _fit_channels(values: np.ndarray, channels: int, audio: bool) -> tuple[np.ndarray, int | None]:
    """The signal with the model's channels: multi-channel audio for a one-channel model is
    mixed down to their mean (and their count returned); other mismatches are refused."""
    have = values.shape[1]
    if have == channels:
        return values, None
    if audio and channels == 1 and have > 1:
        return values.mean(axis=1, keepdims=True, dtype=np.float32), have
    raise InputError(f"the signal has {have} channel{'s' * (have != 1)}; the model takes {channels}")


def _resample(values: np.ndarray, source_rate: float, rate: float | None) -> tuple[np.ndarray, float]:
    """Audio at the model's rate (its own without one), resampled by a polyphase filter at
    a ratio of integers up to 1000."""
    if rate is None or rate == source_rate:
        return values, source_rate
    from scipy.signal import resample_poly

    ratio = (Fraction(rate) / Fraction(source_rate)).limit_denominator(1000)
    if not ratio:
        raise InputError(f"cannot resample {source_rate:g} Hz audio to {rate:g} Hz: more than 1000:1")
    return resample_poly(values, ratio.numerator, ratio.denominator, axis=0).astype(np.float32), rate


def _start(offset: float, rate: float | None) -> int:
    """The first sample of the model's window: ``offset`` seconds at ``rate``, else samples."""
    if rate is not None:
        return round(offset * rate)
    if offset % 1:
        raise InputError(f"--offset {offset:g} is not a whole number of samples and the signal has no "
                         "rate: give --sample-rate to give it in seconds")
    return int(offset)


def _too_short(length: int, start: int, steps: int, rate: float | None, offset: float) -> str:
    """Why the model's window does not fit in the signal, in samples (and seconds)."""
    def seconds(samples: int) -> str:
        return f" = {samples / rate:g} s" if rate else ""

    have = f"{length} samples{seconds(length)}" + (f" at {rate:g} Hz" if rate else "")
    if start:
        left = max(length - start, 0)
        have += f" ({left}{seconds(left)} from --offset {offset:g}{' s' if rate else ''})"
    return (f"the signal has {have}; the model takes {steps}{seconds(steps)}: give a longer signal"
            + (" or an earlier --offset" if start else ""))
