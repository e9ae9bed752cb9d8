"""A data job on a Ray cluster (``--ray``): a local run's batches, spread over actors.

The driver checks the set-up as a local run does (it makes the job's worker: nothing is
written if that fails), lists the inputs and cuts them into the batches a local run
makes (batches keep their composition, so results are the same bytes). Ray Data runs the
pipeline: decoding tasks, then a pool of actors, each holding one job worker (a session
and its compiled explainers), which computes a batch, writes its files and its part, and
hands back what the batch said. The driver says it (records, errors, notes) in input
order, so stdout and ``OUT/records/`` are a local run's, and then builds the job's last
files from the parts as a local run does. A batch is what Ray retries: a killed actor's
batch is run again by its replacement, rewriting the same files, and said once."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np

from ..engine import backends
from ..errors import XaiError
from ..io import inputs
from ..io.parts import Parts
from ..session import Collected, Options, RayCluster, Report, Session, open_session, replay

EXTRA = "pip install 'xai[ray]'"


class Worker(Protocol):
    """A job's worker: made on each actor as ``make_worker(session, report)``."""

    def __call__(self, batch, index: np.ndarray, save: Callable | None, report: Report) -> None:
        """Compute one batch, write its files, and (evaluate, spray) ``save`` its part."""

    def drain(self) -> None:
        """Wait until the batch's files are written and its records said."""


def check(cluster: RayCluster, shard: str | None) -> None:
    """Refuse ``--ray`` where Ray is not installed, and beside ``--shard`` (before anything
    is read)."""
    if importlib.util.find_spec("ray") is None:
        raise XaiError(f"--ray needs Ray, an optional extra: {EXTRA}")
    if shard is not None:
        raise XaiError("--ray spreads the whole job over the cluster's actors: leave out --shard")
    if cluster.actors < 1 or cluster.gpus_per_actor < 0:
        raise XaiError("--ray-actors must be at least 1 and --ray-gpus-per-actor at least 0")


def run(session: Session, report: Report, windows: Iterable[tuple[int, inputs.Window]],
        make_worker: Callable[[Session, Report], Worker], parts: Parts | None = None,
        progress: Callable[[int], None] | None = None) -> None:
    """Run ``windows`` (numbered batches of the job) on the cluster ``--ray`` names."""
    cluster = session.ray   # checked where the command line was read (check)
    import ray
    _connect(ray, cluster.address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True   # the records come back in input order
    context.enable_progress_bars = False              # the command has its own
    for source, reason in session.problems:
        report.error(source, reason)
    rows = [{"window": _packed(numbered)} for numbered in windows]
    if not rows:
        return
    here = os.getcwd()   # relative paths are the driver's: workers that see its folder use it
    gpus = {"num_gpus": cluster.gpus_per_actor} if cluster.gpus_per_actor else {}
    environment = {"env_vars": {"KERAS_BACKEND": backends.requested()}}
    done = (ray.data.from_items(rows, override_num_blocks=len(rows))   # a block per batch
            .map_batches(_decode, batch_size=1, fn_kwargs={"decoder": session.kind.decoder(),
                                                           "folder": here},
                         runtime_env=environment)
            .map_batches(_Actor, batch_size=1,
                         fn_constructor_args=(session.options, make_worker, parts, here),
                         compute=ray.data.ActorPoolStrategy(size=cluster.actors),
                         num_cpus=1, runtime_env=environment, **gpus))
    said: set[str] = set()
    try:
        for row in done.iter_rows():
            count, events = pickle.loads(row["done"])
            replay(events, report, said)
            if progress is not None:
                progress(count)
    except XaiError:   # said here (--fail-fast)
        raise
    except Exception as exc:   # Ray wraps what a worker raised: a user's error stays one
        cause = _xai_error(exc)
        if cause is None:
            raise
        raise cause from exc


def _connect(ray, address: str) -> None:
    """Join the cluster at ``address`` ("": ``ray.init()``'s choice, the one RAY_ADDRESS
    names or a new local one), unless this process has joined one already."""
    if not ray.is_initialized():
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")   # not its C++ side's chatter
        ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _decode(rows: dict, decoder: Callable, folder: str) -> dict:
    """A Ray task: the inputs of each window decoded (an input that fails: its InputError)."""
    _enter(folder)
    decoded = []
    for blob in rows["window"]:
        number, window = pickle.loads(blob)
        _, loaded = next(inputs.batches([(number, [item for _, item in window])], decoder))
        decoded.append(_packed((number, window, loaded)))
    return {"decoded": np.array(decoded, dtype=object)}


class _Actor:
    """A Ray actor: one session and job worker, fed decoded windows."""

    def __init__(self, options: Options, make_worker: Callable, parts: Parts | None,
                 folder: str):
        _enter(folder)
        backends.start()
        self.report = Collected()
        self.session = open_session(options, discover=False)
        self.worker = make_worker(self.session, self.report)
        self.report.taken()   # the set-up's notes: the driver said them, checking the same
        self.parts = parts

    def __call__(self, rows: dict) -> dict:
        done = []
        for blob in rows["decoded"]:
            number, window, loaded = pickle.loads(blob)
            assembled = self.session.assembled(window, loaded, self.report)
            if assembled is not None:
                save = None if self.parts is None else \
                    functools.partial(self.parts.save, number, [item for _, item in window])
                self.worker(*assembled, save, self.report)
                self.worker.drain()
            done.append(_packed((len(window), _in_input_order(self.report.taken(), window))))
        return {"done": np.array(done, dtype=object)}


def _in_input_order(events: list[tuple], window: inputs.Window) -> list[tuple]:
    """A batch's events with its inputs' records and errors in input order (an input that
    failed to decode is said where it stands, not ahead of the batch); notes first."""
    place = {(item.source, item.index): i for i, (_, item) in enumerate(window)}

    def position(event: tuple) -> int:
        if event[0] == "record":
            return place.get((event[1]["input"], event[1]["index"]), -1)
        if event[0] == "error":
            return place.get((event[1], event[3]), -1)
        return -1
    return sorted(events, key=position)


def _enter(folder: str) -> None:
    if os.path.isdir(folder):
        os.chdir(folder)


def _packed(value: object) -> bytes:
    """Rows travel pickled: Arrow would make tables of the records' nested fields."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _xai_error(exc: BaseException | None) -> XaiError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, XaiError):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "cause", None) or exc.__cause__
    return None
