"""What explain, evaluate and spray share: options, set-up checks, and reporting.

Everything that can make a whole run fail (model, config, preprocessing, target,
labels, shard) is checked here, before any output is written. Per-input problems are
reported by :class:`Report` and do not stop the run.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO

import numpy as np

from . import kinds
from .engine import backends, composites
from .engine.explainers import make_explainer
from .engine.graph import Graph, build_graph
from .engine.methods import METHODS, method_params
from .engine.propagation import Explainer
from .errors import InputError, XaiError
from .io import inputs, outputs, parts, preprocess
from .io.parts import Parts
from .io.report import records_path
from .kinds.base import Batch, InputKind
from .models.loading import load

# stores a batch's part file: (the inputs kept, their arrays)
SaveBatch = Callable[[Sequence[inputs.InputItem], dict[str, np.ndarray]], None]


@dataclass
class Options:
    """The options the data commands share (parsed by the CLI)."""

    model: str
    images: tuple[str, ...]
    rules: str | None = None
    preprocess: str | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    target: str = "top1"
    labels: str | None = None
    batch_size: int = 32
    out: Path = Path("xai-out")
    shard: str | None = None
    skip_existing: bool = False
    fail_fast: bool = False
    seed: int = 0
    resize: str = "squash"
    device: str = "auto"
    lines: bool = False
    vocab: str | None = None
    max_tokens: int | None = None
    frames: str | None = None      # a video model's frames: N or A:B (--frames)
    stride: int | None = None      # ... every S-th of them (--stride)
    sample_rate: float | None = None   # a signal model's samples per second (--sample-rate)
    offset: float | None = None        # ... where its window starts in a signal (--offset)
    params: tuple[str, ...] = ()   # METHOD.NAME=VALUE (--param)


@dataclass(frozen=True)
class RayCluster:
    """Where a job runs with --ray: the cluster's address ("": the one ``ray.init()``
    finds) and the pool of actors that explain."""

    address: str
    actors: int = 1
    gpus_per_actor: float = 0


@dataclass
class Session:
    """A checked set-up: model graph, the kind of its inputs, rule config, preprocessing,
    target and inputs."""

    options: Options
    graph: Graph
    kind: InputKind
    composite: composites.Composite
    preprocessing: preprocess.Preprocessing
    target: int
    labels: list[str] | None
    listing: inputs.Listing   # the inputs of the whole, unsharded job, in order
    problems: list[tuple[str, str]]
    params: dict[str, dict[str, object]] = field(default_factory=dict)   # --param, by method
    ray: RayCluster | None = None   # --ray: the job's batches run on this cluster

    @property
    def shard(self) -> tuple[int, int] | None:
        return inputs.parse_shard(self.options.shard)

    @property
    def count(self) -> int:
        """How many inputs this run has (its shard's)."""
        return inputs.shard_size(len(self.listing), self.window, self.shard)

    @property
    def window(self) -> int:
        """Inputs per batch of the job (the kind's choice, see
        :meth:`~xai_cli.kinds.base.InputKind.window`)."""
        return self.kind.window(self.options.batch_size)

    def label(self, index: int) -> str | None:
        return self.labels[index] if self.labels else None

    def explainers(self, methods: Iterable[str], report: Report) -> dict[str, Explainer]:
        """A compiled explainer per method; what applies to the whole run (a Keras 2 file
        loaded by rewriting, a removed softmax, the rule config's warnings) is said once on
        stderr, as every command does."""
        warnings: list[str] = []
        made = {m: make_explainer(self.graph, METHODS[m], self.composite, self.preprocessing,
                                  self.options.seed, warnings.append, params=self.params.get(m))
                for m in methods}
        rewrites = getattr(self.graph.model, "legacy_h5_rewrites", None)
        if rewrites is not None:
            report.note("a Keras 2 .h5 file: loaded by rewriting its config for Keras 3 ("
                        + "; ".join(rewrites or ("nothing to change",)) + ")")
        if self.graph.softmax_stripped:
            report.note("the model ends in a softmax: explaining the pre-softmax score (logit)")
        for warning in dict.fromkeys(warnings):
            report.note(f"warning: {warning}")
        return made

    def explainer(self, graph: Graph, method: str) -> Explainer:
        """An explainer of ``method`` with this run's config on another ``graph`` (the
        sanity check's randomised copies)."""
        return make_explainer(graph, METHODS[method], self.composite, self.preprocessing,
                              self.options.seed, params=self.params.get(method))

    @functools.cached_property
    def runs_on(self) -> dict[str, str]:
        """The Keras backend and the device (a GPU's name, or ``cpu``) the job runs on."""
        return backends.runs_on(self.options.device)

    def job(self, command: str) -> str:
        """``command``, or ``<command>-shard-K-of-N`` with --shard: the name of this run's
        parts and records, so that shards writing into one folder keep them apart."""
        if self.options.shard is None:
            return command
        k, n = (int(v) for v in self.options.shard.split("/"))
        return f"{command}-shard-{k}-of-{n}"

    def report(self, command: str) -> Report:
        """The run's :class:`Report`; it also keeps every record in ``OUT/records/`` for the
        report page, appending to an earlier run's with --skip-existing."""
        return Report(fail_fast=self.options.fail_fast, keep=outputs.JsonLines(
            records_path(self.options.out, self.job(command)), self.options.skip_existing))

    def parts(self, command: str, options: dict) -> Parts:
        """The part files of this run of ``command`` in ``OUT/parts/``, reusable by a rerun
        with --skip-existing only if it has the same model, config, preprocessing, resize,
        target, seed, batch size, number of inputs, shard, Keras backend, --param and
        command ``options``. Shards keep their parts apart."""
        identity = {"model": parts.file_digest(self.options.model),
                    "rules": self.composite.fingerprint(),
                    "preprocessing": repr(self.preprocessing), "resize": self.options.resize,
                    **({"frames": [self.options.frames, self.options.stride]}
                       if self.options.frames or self.options.stride else {}),
                    **({"timing": [self.options.sample_rate, self.options.offset]}
                       if self.options.sample_rate or self.options.offset else {}),
                    "target": self.target,
                    "seed": self.options.seed, "batch_size": self.options.batch_size,
                    "inputs": len(self.listing), "shard": self.options.shard,
                    "backend": self.runs_on["backend"],
                    **({"window": self.window} if self.window != self.options.batch_size else {}),
                    **({"parameters": self.params} if self.params else {}), **options}
        return parts.Parts(self.options.out / "parts" / self.job(command), identity,
                           self.options.skip_existing)

    def unfinished(self, stored: Parts, report: Report,
                   progress: Callable[[int], None] | None = None
                   ) -> Iterator[tuple[Batch, np.ndarray, SaveBatch]]:
        """Batches ``(batch, positions, save)`` of the inputs without a complete part;
        ``save(kept_items, arrays)`` stores the batch's part. Says how many were done."""
        todo = self.todo(stored, report, progress)
        for number, window, batch, index in self._loaded(report, todo, progress):
            yield batch, index, functools.partial(stored.save, number, [i for _, i in window])

    def todo(self, stored: Parts, report: Report, progress: Callable[[int], None] | None = None
             ) -> Iterator[tuple[int, inputs.Window]]:
        """The windows of the batches without a complete part; says how many inputs were
        done by an earlier run (and counts them as progress)."""
        done = sum(len(items) for number, items in self.batches() if stored.complete(number, items))
        if done:
            report.note(f"{done} inputs were done by an earlier run; computing the other "
                        f"{self.count - done} (--skip-existing)")
            if progress is not None:
                progress(done)
        return ((number, window) for number, window in self.windows()
                if not stored.complete(number, [item for _, item in window]))

    def windows(self) -> Iterator[tuple[int, inputs.Window]]:
        """This run's batches ``(number, [(position, input), ...])``, numbered in the whole
        job, each input with its position in it: a shard's batches are batches of the
        unsharded job (see :func:`inputs.windows`). Read as they are needed."""
        return inputs.windows(self.listing, self.window, self.shard)

    def batches(self) -> Iterator[tuple[int, list[inputs.InputItem]]]:
        """This run's batches ``(number, inputs)``, as :meth:`windows` without positions."""
        return ((number, [item for _, item in window]) for number, window in self.windows())

    def loaded(self, report: Report, windows: Iterable[tuple[int, inputs.Window]] | None = None,
               progress: Callable[[int], None] | None = None
               ) -> Iterator[tuple[Batch, np.ndarray]]:
        """Batches ``(batch, positions)``, made by the kind; inputs that fail are reported
        and left out.

        ``positions`` number the inputs over the whole, unsharded job, so that seeded
        methods depend neither on batching nor on sharding. ``windows`` defaults to all of
        this run's (:meth:`windows`).
        """
        for _, _, batch, index in self._loaded(report, windows, progress):
            yield batch, index

    def _loaded(self, report, windows, progress):
        """:meth:`loaded`, each batch with its window's number and inputs."""
        for source, reason in self.problems:
            report.error(source, reason)
        todo = self.windows() if windows is None else windows
        groups = (((number, window), [item for _, item in window]) for number, window in todo)
        for (number, window), loaded in inputs.batches(groups, self.kind.load):
            assembled = self.assembled(window, loaded, report)
            if assembled is not None:
                yield number, window, *assembled
            if progress is not None:
                progress(len(loaded))

    def assembled(self, window: inputs.Window,
                  loaded: Sequence[tuple[inputs.InputItem, object]], report: Report
                  ) -> tuple[Batch, np.ndarray] | None:
        """The batch ``(batch, positions)`` of a window's decoded inputs (samples, or the
        InputError of each that failed, which goes to ``report``); None if all failed."""
        samples, positions = [], []
        for (position, _), (item, sample) in zip(window, loaded):
            if isinstance(sample, InputError):
                report.error(item.source, str(sample), item.index)
            else:
                samples.append(sample)
                positions.append(position)
        return (self.kind.batch(samples), np.array(positions, np.int64)) if samples else None


def open_session(options: Options, stdin: TextIO | None = None, discover: bool = True) -> Session:
    """Check everything a run needs; raises :class:`XaiError` before any output.

    ``discover=False`` leaves the inputs out (a Ray actor: the driver hands it batches)."""
    if options.batch_size < 1:
        raise XaiError(f"--batch-size must be at least 1, got {options.batch_size}")
    params = method_params(options.params)
    graph = build_graph(load(options.model))
    kind = kinds.of(graph)
    composite = composites.load(options.rules or kind.default_config)
    labels = _labels(options.labels, graph.num_classes)
    target = parse_target(options.target, labels, graph.num_classes)
    preprocessing = kind.prepare(options, composite)
    inputs.parse_shard(options.shard)   # a bad --shard is refused before discovery
    everything, problems = kind.discover(options.images, stdin or sys.stdin) if discover else ([], [])
    return Session(options, graph, kind, composite, preprocessing, target, labels, everything,
                   problems, params)


BUILTIN_LABELS = ("imagenet",)   # xai_cli/io/labels/<name>.txt


def _labels(spec: str | None, num_classes: int) -> list[str] | None:
    """Class names from a file, or a built-in list by name (a file of that name wins)."""
    if spec is None:
        return None
    if spec in BUILTIN_LABELS and not Path(spec).is_file():
        text, what = resources.files("xai_cli.io").joinpath(f"labels/{spec}.txt").read_text(
            "utf-8"), f"built-in labels '{spec}'"
    else:
        try:
            text, what = Path(spec).read_text(encoding="utf-8"), f"labels file '{spec}'"
        except OSError as exc:
            raise XaiError(f"cannot read labels file '{spec}': {exc.strerror} (built-in "
                           f"lists: {', '.join(BUILTIN_LABELS)})") from exc
    names = [n for n in (line.strip() for line in text.splitlines()) if n]
    if len(names) != num_classes:
        raise XaiError(f"{what} has {len(names)} names but the model has {num_classes} outputs")
    return names


def parse_target(spec: str, labels: Sequence[str] | None, num_classes: int) -> int:
    """-1 for top-1, else the class index."""
    if spec == "top1":
        return -1
    if spec.lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < num_classes:
            raise XaiError(f"--target {index} is out of range: the model has {num_classes} "
                           f"classes (0 to {num_classes - 1})")
        return index
    if labels is None:
        raise XaiError(f"--target '{spec}' is a class name: give the class names with --labels FILE")
    if spec not in labels:
        raise XaiError(f"--target '{spec}' is not in the labels file")
    return labels.index(spec)


@dataclass
class Report:
    """JSON lines on stdout (and in ``keep``), one-line messages on stderr, and the exit code
    they add up to."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    failed: int = 0
    fail_fast: bool = False
    keep: outputs.JsonLines | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _warned: set = field(default_factory=set, repr=False)

    def error(self, source: str, reason: str, index: int | None = None) -> None:
        with self._lock:
            self.failed += 1
            print(f"xai: {source}: {reason}", file=self.stderr)
            self._emit({"input": source, "index": index, "status": "error", "error": reason})
        if self.fail_fast:
            raise _FailFast(f"stopping at the first failed input (--fail-fast): {source}")

    def record(self, record: dict) -> None:
        with self._lock:
            self._emit(record)

    def _emit(self, record: dict) -> None:
        outputs.emit(record, self.stdout)
        if self.keep is not None:
            self.keep.write(record)

    def note(self, message: str) -> None:
        print(f"xai: {message}", file=self.stderr)

    def warn_once(self, key: str, message: str) -> None:
        """A warning on stderr the first time for ``key``; the JSON records carry the rest."""
        if key not in self._warned:
            self._warned.add(key)
            self.note(f"warning: {message} (later inputs: see the records' 'warning' field)")

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class Collected(Report):
    """A :class:`Report` that keeps what it is told, for another to say (:meth:`replay`):
    a Ray actor's batches are reported by the driver, in batch order."""

    def __init__(self):
        super().__init__(stdout=None, stderr=None)
        self.events: list[tuple] = []

    def error(self, source: str, reason: str, index: int | None = None) -> None:
        self.events.append(("error", source, reason, index))

    def record(self, record: dict) -> None:
        self.events.append(("record", record))

    def note(self, message: str) -> None:
        self.events.append(("note", message))

    def warn_once(self, key: str, message: str) -> None:
        self.events.append(("warn_once", key, message))

    def taken(self) -> list[tuple]:
        """The events so far, which are forgotten here."""
        events, self.events = self.events, []
        return events


def replay(events: Iterable[tuple], report: Report, said: set[str]) -> None:
    """Tell ``report`` what a :class:`Collected` kept; a note already in ``said`` (every
    actor says the set-up's) is said once."""
    for name, *args in events:
        if name == "note":
            if args[0] in said:
                continue
            said.add(args[0])
        getattr(report, name)(*args)


class _FailFast(InputError):
    pass
