"""Writing results: atomic files, JSON lines, and writes off the compute thread.

Every file is written to a temporary name in its folder and renamed into place, so
a killed job never leaves a half-written output under its final name.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence

import numpy as np
from PIL import Image


def out_path(out_dir: Path, stem: str, suffix: str) -> Path:
    """``out_dir/<stem><suffix>``, refusing anything that would land outside ``out_dir``."""
    path = Path(out_dir) / f"{stem}{suffix}"
    if Path(os.path.abspath(path)).parent != Path(os.path.abspath(out_dir)):
        raise ValueError(f"output name '{stem}{suffix}' leaves the output folder")
    return path


_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import; temporary files are 0600, outputs should not be


@contextmanager
def atomic_open(path: Path, mode: str = "wb"):
    """A temporary file next to ``path``, renamed onto it when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False,
                                         **({} if "b" in mode else {"newline": ""}))
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o666 & ~_UMASK)
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write via ``write(file)`` to a temporary file, then rename it onto ``path``."""
    with atomic_open(path) as handle:
        write(handle)


def save_png(path: Path, image: np.ndarray) -> None:
    atomic_write(path, lambda f: Image.fromarray(np.asarray(image, np.uint8)).save(f, format="PNG"))


def save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _cell(value):
    return format(value, ".9g") if isinstance(value, (float, np.floating)) else value


class CsvRows:
    """Rows written as they come, with floats to 9 significant digits (byte-reproducible)."""

    def __init__(self, handle, header: Sequence[str]):
        self._writer = csv.writer(handle, lineterminator="\n")
        self._writer.writerow(header)

    def write(self, rows: Iterable[Sequence]) -> None:
        self._writer.writerows([_cell(v) for v in row] for row in rows)


def save_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    """A whole CSV file, atomically."""
    with atomic_open(path, "w") as handle:
        CsvRows(handle, header).write(rows)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def emit(record: dict, stream) -> None:
    """One JSON object on one line (non-finite numbers as null), flushed."""
    stream.write(json.dumps(_finite(record), separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


class BackgroundWriter:
    """Runs file writes on worker threads so that encoding PNGs does not stall the device.

    At most ``max_pending`` writes wait at any time (bounded memory); the first
    failure is raised by the next :meth:`submit` or :meth:`drain`.
    """

    def __init__(self, workers: int = 1, max_pending: int = 64):
        self._pool = ThreadPoolExecutor(workers)
        self._slots = threading.Semaphore(max_pending)
        self._futures = []

    def submit(self, fn: Callable, *args) -> None:
        self._raise_failures()
        self._slots.acquire()
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _raise_failures(self, wait: bool = False) -> None:
        pending = []
        for future in self._futures:
            if wait or future.done():
                future.result()
            else:
                pending.append(future)
        self._futures = pending

    def drain(self) -> None:
        """Wait for every submitted write; re-raise the first failure."""
        self._raise_failures(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        try:
            if kind is None:
                self.drain()
            else:
                for future in self._futures:
                    future.exception()
        finally:
            self._pool.shutdown(wait=True)
        return False
