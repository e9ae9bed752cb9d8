"""The one interface every kind of input implements: :class:`InputKind`.

A kind is chosen once, from the model's graph (:func:`xai_cli.kinds.of`), and owns
everything that differs between images, documents and the kinds to come: finding and
decoding inputs, preprocessing and the valid value range, batching them into the graph's
inputs, the default rule config, the perturbation unit of ``xai evaluate`` and its
replacements, drawing what ``xai explain`` writes, the kind's fields of the JSON record,
and the Python API's input conversion. Session, jobs, CLI and API ask the kind; they do
not branch on it.

The kinds: images, documents, clips (video, an image kind with frames) and signals
(audio and time series ``(T, C)``, an image kind with one axis of time).

A kind decides how many consecutive inputs make one batch of the job (``window``): the
unit of a part file, of a shard and of the records that come out together. Documents of
a model of any length take several compiled calls' worth and sort them by length into
buckets (:mod:`~xai_cli.kinds.buckets`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

import numpy as np

from ..engine.graph import Graph
from ..errors import XaiError
from ..io import render, storage
from ..io.inputs import InputItem, Listing
from ..io.preprocess import Preprocessing
from ..measures.faithfulness import BatchResult, EvaluateOptions

if TYPE_CHECKING:
    from ..engine.composites import Composite
    from ..engine.propagation import Explainer, Result, Scorer


@dataclass
class ExplainOptions:
    """What ``xai explain`` writes per input and method."""

    methods: tuple[str, ...] = ("lrp",)
    overlay: bool = False
    save_raw: bool = False
    grid: bool = False
    style: render.Style = render.Style()


@dataclass
class Batch:
    """Loaded inputs as the graph takes them: ``x`` ``(N, ...)`` and the graph's named
    inputs (a text model's padding mask) by name."""

    samples: list
    x: np.ndarray | None
    named: dict[str, np.ndarray] = field(default_factory=dict)
    unbatched: bool = False   # the Python API was given one input without a batch axis
    words: bool = False       # ... documents as words (text, or ids and a vocabulary)

    def __len__(self) -> int:
        return len(self.samples) if self.samples else len(self.x)

    def explain(self, explainer: Explainer, targets: np.ndarray, index: np.ndarray) -> Result:
        """The batch explained by ``explainer`` (a target of -1: the top-1 class)."""
        return explainer.explain(self.x, targets, index, self.named)

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The graph's inputs as arrays: ``x`` and the named inputs."""
        return self.x, self.named

    def take(self, rows: np.ndarray) -> Batch:
        """The batch of the inputs at ``rows``."""
        return Batch([self.samples[i] for i in rows] if self.samples else [], self.x[rows],
                     {k: v[rows] for k, v in self.named.items()})


class InputKind(ABC):
    """A kind of model input, bound to one model's graph.

    Class attributes: ``name`` (``image``), ``plural`` (``images``, in messages),
    ``audience`` (the models its options are for, in messages), ``options`` (the session
    options only its models take), ``shape`` (the model input it fits, in messages),
    ``default_config`` (the
    rule config when none is given), ``commands`` (the data commands that take it) and
    ``replacements`` (the ``--replace`` protocols of its perturbation unit, the default
    first).
    """

    name: ClassVar[str]
    plural: ClassVar[str]
    audience: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()   # the session options only this kind's models take
    shape: ClassVar[str]
    default_config: ClassVar[str]
    commands: ClassVar[tuple[str, ...]]
    replacements: ClassVar[tuple[str, ...]]

    def __init__(self, graph: Graph, others: Sequence[type[InputKind]] = ()):
        self.graph = graph
        self.others = tuple(others)   # the registered kinds, to name in messages

    @classmethod
    @abstractmethod
    def fits(cls, graph: Graph) -> bool:
        """Whether ``graph`` takes this kind of input."""

    # set-up, before anything is written

    def check_command(self, command: str) -> None:
        """Refuse a data command this kind has no meaning for."""
        if command not in self.commands:
            users = [kind for kind in self.others if command in kind.commands]
            raise XaiError(f"xai {command} works on {' and '.join(k.name for k in users)} "
                           f"models; for {self.article} use "
                           f"{' or '.join('xai ' + c for c in self.commands)}")

    @property
    def article(self) -> str:
        """This kind's model with its article, in messages (``a text model``)."""
        return f"a {self.name} model"

    def refuse_others_options(self, options) -> None:
        """Refuse the session ``options`` given that only other kinds' models take."""
        for kind in self.others:
            for name in kind.options:
                if name not in self.options and getattr(options, name) not in (None, False):
                    raise XaiError(f"--{name.replace('_', '-')} is for {kind.audience}; model "
                                   f"input shape {self.graph.input_shape} is {self.article}'s")

    @abstractmethod
    def prepare(self, options, composite: Composite) -> Preprocessing:
        """Check the session ``options`` that concern this kind and resolve its
        preprocessing (command line, else rule config, else the default)."""

    @abstractmethod
    def discover(self, args: Sequence[str], stdin: TextIO | None
                 ) -> tuple[Listing, list[tuple[str, str]]]:
        """The inputs ``args`` name (in a deterministic order; a long one read as the job
        goes), and ``(source, reason)`` for every argument that names none."""

    def load(self, item: InputItem):
        """One decoded, preprocessed input (a sample with ``item`` and ``x``); raises
        :class:`~xai_cli.errors.InputError` for this input only."""
        return self.decoder()(item)

    def decoder(self) -> Callable[[InputItem], object]:
        """What :meth:`load` does, as a function that pickles (a module function and
        plain values, no model): a Ray job decodes in tasks that hold no model. Inputs
        at URLs are decoded from a local copy."""
        return storage.Staged(self.reader())

    @abstractmethod
    def reader(self) -> Callable[[InputItem], object]:
        """The decoder of a local input (see :meth:`decoder`)."""

    def window(self, batch_size: int) -> int:
        """How many consecutive inputs make one batch of the job: ``batch_size``, the
        inputs of one compiled call."""
        return batch_size

    def batch(self, samples: Sequence) -> Batch:
        """Samples stacked into the graph's inputs."""
        return Batch(list(samples), np.stack([s.x for s in samples]))

    def maps(self, relevance: np.ndarray) -> np.ndarray:
        """Relevance ``(N, *input)`` as maps of the input's positions, one per input: summed
        over the last axis (an image's channels, a token's embedding, a frame's channels)."""
        return relevance.sum(axis=-1)

    @abstractmethod
    def convert(self, inputs, batch_size: int = 32) -> Batch:
        """The Python API's inputs (arrays as the model takes them; for a text model also
        text) as a batch, ``batch_size`` of them to a compiled call."""

    def returned(self, batch: Batch, relevance: np.ndarray | list) -> object:
        """What the Python API gives back for the relevance of ``batch`` (one array per
        input, stacked where they share a shape): as it is, or one input's for an input
        given without a batch axis."""
        return relevance[0] if batch.unbatched else relevance

    @abstractmethod
    def synthetic(self, count: int, rng: np.random.Generator) -> Batch:
        """``count`` made-up inputs of the model's shape, for ``xai bench``."""

    def bucketing(self, count: int, rng: np.random.Generator, rows: int
                  ) -> tuple[Batch, Batch, dict] | None:
        """For ``xai bench``: ``count`` made-up inputs of mixed sizes as the job batches them,
        and the same padded to the largest, ``rows`` to a compiled call, and what they are
        (None: this kind's inputs have one shape)."""
        return None

    def timed_evaluation(self, scorer: Scorer, batch: Batch, steps: int
                         ) -> tuple[Callable[[], object], Callable[[], object]] | None:
        """For ``xai bench``: perturbation curves of ``batch`` over ``steps`` steps, and the
        bare forward passes of the same copies, as two functions to time (None: this kind
        has no such figure yet)."""
        return None

    def bench_files(self, folder: Path, count: int) -> tuple[Path, Path, dict] | None:
        """For ``xai bench``'s end-to-end figure: ``count`` made-up input files and a model
        that costs next to nothing, written into ``folder``: ``(model, inputs, what the
        files are)``, the last with ``what``, the files in words (None: this kind has no
        such figure yet)."""
        return None

    # explain

    @abstractmethod
    def check_explain(self, options: ExplainOptions) -> None:
        """Refuse explain options this kind cannot draw."""

    @abstractmethod
    def output_names(self, stem: str, options: ExplainOptions) -> list[str]:
        """The files explain writes for one input, so that --skip-existing can test them."""

    @abstractmethod
    def record_fields(self, sample, maps: Mapping[str, np.ndarray]) -> dict:
        """This kind's fields of an input's JSON record."""

    @abstractmethod
    def write(self, out: Path, sample, maps: Mapping[str, np.ndarray], options: ExplainOptions,
              caption: str) -> list[str]:
        """Draw and write one input's explanations (on a writer thread); their paths."""

    @abstractmethod
    def thumbnails(self, out: Path, sample) -> list[str]:
        """The picture of the input the report page shows, where the kind has one."""

    # evaluate

    def evaluation(self, options: EvaluateOptions, masks: bool = False,
                   heatmaps: bool = False) -> EvaluateOptions:
        """``options`` checked for this kind, its default protocol filled in."""
        replace = options.replace or self.replacements[:1]
        wrong = [r for r in replace if r not in self.replacements]
        if wrong:
            owner = next((k.audience for k in self.others if wrong[0] in k.replacements),
                         "no kind of input")
            raise XaiError(f"--replace {', '.join(wrong)} is for {owner}; "
                           f"{self.plural} take {', '.join(self.replacements)}")
        return dataclasses.replace(options, replace=replace)

    @abstractmethod
    def steps(self, options: EvaluateOptions) -> int:
        """``--steps``, or the default for this kind's perturbation unit."""

    @abstractmethod
    def evaluate_batch(self, explainers: Mapping[str, Explainer], scorer: Scorer, batch: Batch,
                       targets: np.ndarray, index: np.ndarray, options: EvaluateOptions,
                       seed: int) -> BatchResult:
        """Perturbation curves of one batch for every method, protocol and order."""
