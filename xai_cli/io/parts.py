"""Per-batch part files: what makes a long evaluate or spray job resumable.

Such a job writes one part per batch into ``OUT/parts/<job>/`` the moment the batch is
done (atomically: a kill leaves whole parts or none), beside ``job.json``, which says
what was asked. A rerun with ``--skip-existing`` that asks the same question computes
only the batches without a complete part; a rerun that asks something else is refused,
so results of two questions never mix. The job's final files are always built from the
parts, in batch order, so a resumed job writes the same bytes as an uninterrupted one.

Batches keep the composition they have in an uninterrupted run (a batch with any input
missing is run whole): convolutions round differently in other batch sizes. Parts are
numbered by the batch's place in the whole, unsharded job (shards are whole batches), so
the parts of N shards together are the parts of one unsharded run (:func:`merged`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import XaiError
from .inputs import InputItem
from .outputs import atomic_write

_SOURCES = "_sources"   # every input of the batch, in order
_STEMS = "_stems"       # their output stems
_KEPT = "_kept"         # those that produced a result (the others failed)

Batches = Iterable[tuple[int, Sequence[InputItem]]]   # (number in the whole job, inputs)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file: a part is only reused for the very same model."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Parts:
    """The part files of one job in ``folder``.

    Parameters
    ----------
    folder : Path
        ``OUT/parts/<job>``; created if missing.
    identity : dict
        JSON-serialisable: everything that determines a batch's result.
    resume : bool
        ``--skip-existing``: keep the parts of an earlier run that asked the same (and
        refuse if it asked something else); otherwise start from an empty folder.
    """

    def __init__(self, folder: Path, identity: dict, resume: bool):
        self.folder = folder
        manifest = folder / "job.json"
        identity = json.loads(json.dumps(identity))   # as it reads back from disk
        if resume and manifest.is_file():
            earlier = json.loads(manifest.read_text(encoding="utf-8"))
            changed = sorted(k for k in {*identity, *earlier} if earlier.get(k) != identity.get(k))
            if changed:
                raise XaiError(f"--skip-existing: {folder} holds the parts of a run with other "
                               f"{', '.join(changed)}; use another --out, or drop "
                               "--skip-existing to start over")
        elif folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(manifest, lambda f: f.write(json.dumps(identity, indent=1).encode("utf-8")))
        self.identity = identity

    def adopt(self, identity: dict, folders: Sequence[Path]) -> int:
        """Take in the batches that the shards in ``folders`` stored (their job's
        ``identity`` but for the shard, from :func:`shards`) and this job lacks: an
        unsharded run that gathers every batch (spray's clustering) finishes a sharded job.
        Returns how many it took; raises XaiError if the shards ran another job."""
        ours = {k: v for k, v in self.identity.items() if k != "shard"}
        changed = sorted(k for k in {*ours, *identity} if ours.get(k) != identity.get(k))
        if changed:
            raise XaiError(f"the shards in {folders[0].parent} ran another job than this one "
                           f"(other {', '.join(changed)}): use their arguments, or another --out")
        taken = 0
        for folder in folders:
            for part in sorted(folder.glob("batch-*.npz")):
                if not (self.folder / part.name).exists():
                    atomic_write(self.folder / part.name, lambda f, p=part: f.write(p.read_bytes()))
                    taken += 1
        return taken

    def _path(self, batch: int) -> Path:
        return self.folder / f"batch-{batch:06d}.npz"

    def save(self, batch: int, items: Sequence[InputItem], kept: Sequence[InputItem],
             arrays: dict[str, np.ndarray]) -> None:
        """Store batch ``batch``: its inputs, those ``kept`` (with results) and their arrays."""
        sources = np.array([_key(i) for i in items], dtype=str)
        mask = np.isin(sources, [_key(i) for i in kept])
        stems = np.array([i.stem for i in items], dtype=str)
        atomic_write(self._path(batch), lambda f: np.savez(
            f, **arrays, **{_SOURCES: sources, _STEMS: stems, _KEPT: mask}))

    def load(self, batch: int, items: Sequence[InputItem]) -> dict[str, np.ndarray] | None:
        """The arrays of batch ``batch`` if its part is of exactly ``items``, else None.

        The arrays have one row per kept input; ``kept`` says which of ``items`` they are.
        """
        path = self._path(batch)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as part:
            if part[_SOURCES].tolist() != [_key(i) for i in items]:
                return None
            arrays = _arrays(part)
        return arrays

    def complete(self, batch: int, items: Sequence[InputItem]) -> bool:
        """Whether batch ``batch`` has a part of ``items`` in which every input succeeded
        (reads only the part's list of inputs, not its arrays)."""
        path = self._path(batch)
        if not path.is_file():
            return False
        with np.load(path, allow_pickle=False) as part:
            return part[_SOURCES].tolist() == [_key(i) for i in items] and bool(part[_KEPT].all())

    def stored(self, batches: Batches
               ) -> Iterator[tuple[list[InputItem], dict[str, np.ndarray]]]:
        """``(kept inputs, arrays)`` of every batch that has a part, in batch order."""
        for number, batch in batches:
            part = self.load(number, batch)
            if part is not None:
                yield [item for item, ok in zip(batch, part.pop("kept")) if ok], part

    def gather(self, batches: Batches) -> tuple[list[InputItem], dict[str, np.ndarray]]:
        """The kept inputs of all stored batches, and each array concatenated over them."""
        kept, arrays = [], {}
        for batch_kept, part in self.stored(batches):
            kept.extend(batch_kept)
            for name, array in part.items():
                arrays.setdefault(name, []).append(array)
        return kept, {name: np.concatenate(a) for name, a in arrays.items()}


def _arrays(part) -> dict[str, np.ndarray]:
    """A part's result arrays, and ``kept``: which of its inputs they are of."""
    arrays = {k: part[k] for k in part.files if k not in (_SOURCES, _STEMS, _KEPT)}
    arrays["kept"] = part[_KEPT]
    return arrays


def shards(root: Path, command: str) -> tuple[dict, list[Path]] | None:
    """The part folders of ``command``'s shards in ``root`` (``OUT/parts``) and the identity
    they share but for the shard; None if there are none.

    Raises XaiError if shards are missing, or if they ran different jobs (other N, model,
    config, options ...), naming what differs.
    """
    found = {}
    for folder in root.glob(f"{command}-shard-*-of-*"):
        match = re.fullmatch(rf"{command}-shard-(\d+)-of-(\d+)", folder.name)
        if match and (folder / "job.json").is_file():
            found[int(match[1]), int(match[2])] = folder
    if not found:
        return None
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise XaiError(f"{root} holds {command} shards of {' and '.join(map(str, counts))} "
                       "shards: keep one sharding per folder")
    n = counts[0]
    missing = [k for k in range(1, n + 1) if (k, n) not in found]
    if missing:
        raise XaiError(f"{root}: {command} shard {', '.join(f'{k}/{n}' for k in missing)} "
                       "has not started: run every shard before merging")
    folders = [found[k, n] for k in range(1, n + 1)]
    identities = [json.loads((f / "job.json").read_text(encoding="utf-8")) for f in folders]
    for identity in identities:
        identity.pop("shard")
    changed = sorted(k for other in identities[1:] for k in {*identities[0], *other}
                     if identities[0].get(k) != other.get(k))
    if changed:
        raise XaiError(f"the {command} shards in {root} ran different jobs (other "
                       f"{', '.join(dict.fromkeys(changed))}): they cannot be merged")
    return identities[0], folders


def merged(folders: Sequence[Path], batches: int
           ) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
    """``(kept stems, arrays)`` of batches ``0 .. batches - 1`` from the parts of the shards in
    ``folders``, in batch order: what one unsharded run would have stored.

    Raises XaiError naming the batches that no folder holds (a shard not finished).
    """
    paths = {int(p.stem.split("-")[1]): p for folder in folders
             for p in folder.glob("batch-*.npz")}
    missing = [b for b in range(batches) if b not in paths]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise XaiError(f"{len(missing)} of {batches} batches are not stored yet (batches "
                       f"{shown}): is every shard finished?")
    for number in range(batches):
        with np.load(paths[number], allow_pickle=False) as part:
            arrays = _arrays(part)
            stems = part[_STEMS].tolist()
        kept = arrays.pop("kept")
        yield [stem for stem, ok in zip(stems, kept) if ok], arrays


def _key(item: InputItem) -> str:
    return item.source if item.index is None else f"{item.source}[{item.index}]"
