"""Writing results: atomic files, JSON lines, and file writes off the compute thread.

Every file is written under a temporary name in its folder and renamed into place,
so a killed job never leaves a half-written output under its final name (and
--skip-existing can trust whatever it finds).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, BinaryIO, TextIO

import numpy as np
from PIL import Image


def out_path(out_dir: Path, stem: str, suffix: str) -> Path:
    """The output file ``out_dir/<stem><suffix>``.

    Parameters
    ----------
    out_dir : Path
        Output folder.
    stem, suffix : str
        File name parts; stems are sanitised by :mod:`xai_cli.io.inputs` already.

    Returns
    -------
    Path
        ``out_dir / f"{stem}{suffix}"``.

    Raises
    ------
    ValueError
        If the name would not be a file directly inside ``out_dir`` (e.g. ``../x``).
    """
    name = f"{stem}{suffix}"
    root = Path(os.path.abspath(out_dir))
    if Path(os.path.abspath(root / name)).parent != root:
        raise ValueError(f"output name '{name}' leaves the output folder")
    return Path(out_dir) / name


@contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A new temporary file next to ``path``, renamed onto it if the block succeeds.

    Parameters
    ----------
    path : Path
        Final name; missing parent folders are created.
    mode : {'wb', 'w'}
        Binary, or UTF-8 text with no newline translation (as :mod:`csv` wants).

    Yields
    ------
    file object
        Flushed and fsynced before the rename. If the block raises, the temporary
        file is removed and whatever was at ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name[:200]}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with open(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create or replace ``path`` atomically with what ``write(file)`` writes.

    Parameters
    ----------
    path : Path
        Final name; see :func:`atomic_open`.
    write : callable
        Called with a binary file object; if it raises, ``path`` is left as it was.
    """
    with atomic_open(path) as f:
        write(f)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 ``(H, W, 3)`` RGB or ``(H, W)`` grey image as PNG, atomically."""
    atomic_write(path, lambda f: Image.fromarray(image).save(f, format="PNG"))


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` in ``.npy`` format to exactly ``path``, atomically."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


THUMBNAIL = 160   # pixels on the long side of an input's thumbnail


def thumbnail_path(out_dir: Path, stem: str) -> Path:
    """``OUT/thumbs/<stem>.jpg``, the picture of an input on the report page."""
    return out_path(Path(out_dir) / "thumbs", stem, ".jpg")


def save_thumbnail(out_dir: Path, stem: str, image: np.ndarray) -> str:
    """Write the input as the model saw it (uint8 ``(H, W, 3)``) as a small JPEG at
    :func:`thumbnail_path`, so that the report page shows it wherever the original lies;
    returns the path for the input's record."""
    picture = Image.fromarray(image)
    picture.thumbnail((THUMBNAIL, THUMBNAIL))
    path = thumbnail_path(out_dir, stem)
    atomic_write(path, lambda f: picture.save(f, format="JPEG", quality=85))
    return str(path)


def _cell(value):
    return format(value, ".9g") if isinstance(value, (float, np.floating)) else value


class CsvRows:
    """CSV rows written as they come, floats to 9 significant digits (byte-reproducible).

    Parameters
    ----------
    handle : text file object
        Opened with ``newline=''``, e.g. by ``atomic_open(path, 'w')``.
    header : sequence of str
        Column names, written at once.
    """

    def __init__(self, handle: TextIO, header: Sequence[str]):
        self._writer = csv.writer(handle, lineterminator="\n")
        self._writer.writerow(header)

    def write(self, rows: Iterable[Sequence]) -> None:
        """Append ``rows``."""
        self._writer.writerows([_cell(v) for v in row] for row in rows)


def save_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Write a whole CSV file atomically; same input, same bytes (see :class:`CsvRows`)."""
    with atomic_open(path, "w") as f:
        CsvRows(f, header).write(rows)


def text_table(rows: Sequence[Sequence], indent: str = "") -> str:
    """Rows as aligned columns (two spaces apart) for a terminal; cells are shown with str()."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in cells)


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit(record: dict, stream: TextIO | None = None) -> None:
    """Print ``record`` as one compact JSON line and flush.

    Parameters
    ----------
    record : dict
        JSON-able values; NaN and infinities become ``null`` (strict JSON), numpy
        scalars become Python numbers. Key order is kept.
    stream : text file object, optional
        Defaults to ``sys.stdout``.
    """
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(_plain(record), separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


class JsonLines:
    """A JSON-lines file that a run adds its records to as they come (see :func:`emit`).

    Each record is written as one whole line and flushed, so a killed run leaves whole
    lines and at most a partial last one, which a resumed run cuts off before it appends.
    The first record starts the file (anew, unless ``resume``): a run that stops before
    any record leaves an earlier file as it was.

    Parameters
    ----------
    path : Path
        The file; missing parent folders are created.
    resume : bool
        Append to what an earlier run wrote (``--skip-existing``).
    """

    def __init__(self, path: Path, resume: bool = False):
        self.path, self._resume, self._started = Path(path), resume, False

    def write(self, record: dict) -> None:
        """Append ``record`` as one line."""
        if not self._started:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            earlier = self.path.read_bytes() if self._resume and self.path.is_file() else b""
            with open(self.path, "ab") as f:
                f.truncate(earlier.rfind(b"\n") + 1)
            self._started = True
        with open(self.path, "a", encoding="utf-8") as f:
            emit(record, f)


class BackgroundWriter:
    """Runs file writes on worker threads so the device is not stalled by PNG encoding,
    and each write's follow-up (its JSON record) in submission order.

    The writes themselves run in parallel and finish in any order; a follow-up runs
    exactly once, after its own write and every earlier follow-up, on whichever thread
    finds it next in line, so records come out in input order and only after their files
    are on disk. A write that fails has no follow-up; later follow-ups still run, so the
    records of files that were written are not lost. The first failure in submission
    order (of a write or a follow-up) is raised by every later :meth:`submit` and
    :meth:`drain`.

    At most ``max_pending`` jobs are queued, running or waiting for their turn at any
    time, so :meth:`submit` blocks rather than letting images pile up in memory. Submit
    from one thread. Follow-ups must be quick (a writer that finishes meanwhile waits for
    its turn) and must not submit. As a context manager it drains and stops on leaving
    the block.

    Parameters
    ----------
    workers : int
        Writer threads.
    max_pending : int
        Jobs not yet followed up before :meth:`submit` blocks.
    """

    def __init__(self, workers: int = 2, max_pending: int = 64):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="xai-writer")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._turn = threading.Lock()   # one thread at a time runs follow-ups
        self._line: deque[tuple[Future, Callable | None]] = deque()
        self._error: BaseException | None = None

    def submit(self, fn: Callable, *args: object, then: Callable | None = None) -> None:
        """Queue ``fn(*args)``, waiting while ``max_pending`` jobs are outstanding; then
        ``then(result)`` runs in submission order once ``fn`` has returned."""
        self._raise()
        self._slots.acquire()
        future = self._pool.submit(fn, *args)
        with self._turn:
            self._line.append((future, then))
        future.add_done_callback(self._follow_up)

    def _follow_up(self, _future: Future | None = None) -> None:
        """Run the follow-ups of the finished jobs at the head of the line."""
        with self._turn:
            while self._line and self._line[0][0].done():
                future, then = self._line.popleft()
                try:
                    result = future.result()
                    if then is not None:
                        then(result)
                except BaseException as exc:
                    self._error = self._error or exc
                finally:
                    self._slots.release()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait for every submitted job and its follow-up, then raise the first failure."""
        with self._turn:
            pending = [future for future, _ in self._line]
        wait(pending)
        self._follow_up()  # a worker may still be in its done callback: the lock waits for it
        self._raise()

    def close(self) -> None:
        """:meth:`drain`, then stop the worker threads (even if a job failed)."""
        try:
            self.drain()
        finally:
            self._pool.shutdown()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.close()
        except Exception:
            if kind is None:
                raise
