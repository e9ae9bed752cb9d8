"""The GunPoint data set of the UCR Time Series Classification Archive, read from the copy in aeon.

GunPoint (Ratanamahatana & Keogh): the X coordinate of an actor's right hand, tracked in video,
150 steps per series; one female and one male actor. Two classes:

- ``gun`` (the file's class value ``1``, "Gun-Draw"): the hand starts at the side, draws a replica
  gun from a hip holster, points it at a target for about a second, returns it to the holster
  and goes back to the side;
- ``point`` (class value ``2``): the same motion without the gun, pointing with the index finger.

50 training series (24 gun, 26 point) and 150 test series (76 gun, 74 point), as the archive
splits them. The files name the classes ``1`` and ``2`` only; 1 = Gun-Draw, 2 = Point is the
usual reading of the archive's numbering (the order its description lists them in; STUMPY's
GunPoint tutorial numbers them so too).

Where the files come from: the aeon toolkit (BSD-3-Clause) ships them in its wheel, as
``aeon/datasets/data/GunPoint/GunPoint_{TRAIN,TEST}.ts``. Get them with

    pip install aeon==1.6.0

or, without aeon's dependencies, into a folder of its own that goes on PYTHONPATH:

    pip install --no-deps --target /tmp/aeon-lib aeon==1.6.0
    PYTHONPATH=/tmp/aeon-lib python scripts/train_gunpoint.py

The package is located with ``importlib.util.find_spec("aeon")``, which does not import it
(aeon's own loaders need numba); the ``.ts`` text files are parsed here.

The series in the files are already z-normalised each, as in the original UCR archive: mean 0 and
standard deviation 1 with the n - 1 denominator (0.99666 with n), both to within 6e-9;
:func:`load` checks that and keeps the values as they are, as float32.
"""

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

NAME = "GunPoint"
LENGTH = 150
LABELS = ["gun", "point"]
CLASS_VALUES = {"1": "gun", "2": "point"}  # the file's class value -> the label
SIZES = {"TRAIN": 50, "TEST": 150}
AEON_VERSION = "1.6.0"  # the version the shipped models were trained from
NORMALISED_TOLERANCE = 1e-6


def data_dir() -> Path:
    """The folder of the GunPoint files inside the installed ``aeon`` package (not imported)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The GunPoint files come with the aeon package: pip install aeon==1.6.0 "
                         "(or pip install --no-deps --target DIR aeon==1.6.0 and PYTHONPATH=DIR)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / NAME
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: this aeon does not ship GunPoint; "
                         f"pip install aeon=={AEON_VERSION}")
    return folder


def aeon_version() -> str:
    """The installed aeon's version, from its metadata (``"unknown"`` if there is none)."""
    try:
        return importlib.metadata.version("aeon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A univariate, equal-length sktime/aeon ``.ts`` file: ``(series float64 (N, T), class values
    (N,) str, header)``. Lines starting with ``#`` are comments, ``@name value`` lines the header
    up to ``@data``; then one series a line, its values separated by commas and its class value
    after the last colon."""
    header, series, classes = {}, [], []
    in_data = False
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise ValueError(f"{path}:{number}: expected a header line (@...) before @data")
            key, _, value = line[1:].partition(" ")
            if key.lower() == "data":
                in_data = True
            else:
                header[key.lower()] = value.strip()
            continue
        values, colon, label = line.rpartition(":")
        if not colon or ":" in values:
            raise ValueError(f"{path}:{number}: expected one dimension and a class value")
        series.append([float(v) for v in values.split(",")])
        classes.append(label.strip())
    if header.get("univariate") != "true" or header.get("equallength") != "true":
        raise ValueError(f"{path}: not a univariate equal-length problem")
    if header.get("missing") != "false":
        raise ValueError(f"{path}: may have missing values")
    lengths = {len(s) for s in series}
    if lengths != {int(header["serieslength"])}:
        raise ValueError(f"{path}: series lengths {sorted(lengths)}, header {header['serieslength']}")
    return np.array(series), np.array(classes), header


def load(split: str, folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``split`` "TRAIN" or "TEST": ``(x float32 (N, 150, 1), y int64 (N,))``, y indexing LABELS."""
    folder = data_dir() if folder is None else Path(folder)
    series, classes, header = read_ts(folder / f"{NAME}_{split}.ts")
    if header.get("problemname") != NAME or header.get("classlabel", "").split()[1:] != list(CLASS_VALUES):
        raise ValueError(f"unexpected header {header}")
    if series.shape != (SIZES[split], LENGTH):
        raise ValueError(f"{NAME} {split}: {series.shape} series, expected ({SIZES[split]}, {LENGTH})")
    mean_gap = np.abs(series.mean(axis=1)).max()
    std_gap = np.abs(series.std(axis=1, ddof=1) - 1).max()
    if max(mean_gap, std_gap) > NORMALISED_TOLERANCE:
        raise ValueError(f"{NAME} {split}: not z-normalised (mean off by {mean_gap:.2g}, "
                         f"standard deviation by {std_gap:.2g})")
    y = np.array([LABELS.index(CLASS_VALUES[c]) for c in classes], dtype=np.int64)
    return series[..., None].astype(np.float32), y
