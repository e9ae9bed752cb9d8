"""Inputs named by URL (``s3://``, ``gs://``, ``file://``...: any fsspec file system).

A URL argument is listed like a path (a file, a glob, or a prefix searched for the kind's
files) and every input keeps its URL as its source, so records and parts name it. The
decoders read local files only: :class:`Staged` gives them a local copy, fetched when
the input is decoded (a Ray job: in the decoding task, on the node that needs it) and
deleted once it is decoded. A ``.npy`` batch is fetched once per process where it is
opened, since each of its rows is an input.
"""

from __future__ import annotations

import atexit
import dataclasses
import glob
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import PurePosixPath

from ..errors import InputError, XaiError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_ARRAYS: dict[str, str] = {}   # URL of a .npy batch -> its local copy, for this process
_ARRAYS_LOCK = threading.Lock()


def is_url(name: str) -> bool:
    return bool(_URL.match(name))


def _file_system(url: str):
    """The fsspec file system of ``url`` and the path on it; a missing fsspec or
    protocol package is the user's to install (exit 2)."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise XaiError(f"'{url}': inputs at URLs need fsspec: pip install 'xai[ray]'") from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise XaiError(f"'{url}': {exc}") from None


def expand(url: str, extensions: tuple[str, ...], key: Callable[[str], object] | None = None
           ) -> tuple[list[str], str | None]:
    """The inputs a URL names, as URLs sorted by ``key``: the file itself, or the files
    with one of the kind's ``extensions`` that a glob matches or a prefix holds; and the
    problem if it names none."""
    fs, path = _file_system(url)

    def accepted(found: str) -> bool:
        return found.lower().endswith(extensions)
    try:
        if glob.has_magic(path):
            found = [p for p, info in fs.glob(path, detail=True).items()   # one listing, no
                     if info["type"] == "file" and accepted(p)]                 # call per file
            problem = "no files match this pattern"
        elif fs.isfile(path):
            return [fs.unstrip_protocol(path)], None
        elif fs.isdir(path):
            found, problem = [p for p in fs.find(path) if accepted(p)], "no inputs under this prefix"
        else:
            return [], "no such file"
    except OSError as exc:
        return [], f"cannot list: {exc}"
    return sorted((fs.unstrip_protocol(p) for p in found), key=key), None if found else problem


def name(url: str) -> str:
    """The file name at the end of a URL."""
    return PurePosixPath(url.split("://", 1)[1]).name


class Staged:
    """A kind's decoder that also decodes inputs at URLs, from a local copy (pickles
    with the decoder, for Ray's decoding tasks)."""

    def __init__(self, decode: Callable):
        self.decode = decode

    def __call__(self, item):
        if not is_url(item.source) or item.source.lower().endswith(".npy"):
            return self.decode(item)   # a .npy batch is read where it is opened (array)
        with tempfile.TemporaryDirectory(prefix="xai-input-") as folder:
            local = os.path.join(folder, name(item.source))
            _fetch(item.source, local)
            sample = self.decode(dataclasses.replace(item, source=local))
        return dataclasses.replace(sample, item=item)   # named by its URL, not the copy's


def array(url: str) -> str:
    """A local copy of the ``.npy`` batch at ``url``, fetched once per process and
    deleted when it ends."""
    with _ARRAYS_LOCK:
        if url not in _ARRAYS:
            folder = tempfile.mkdtemp(prefix="xai-arrays-")
            atexit.register(shutil.rmtree, folder, True)
            local = os.path.join(folder, name(url))
            _fetch(url, local)
            _ARRAYS[url] = local
        return _ARRAYS[url]


def _fetch(url: str, local: str) -> None:
    fs, path = _file_system(url)
    try:
        fs.get_file(path, local)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot fetch: {exc}") from None
