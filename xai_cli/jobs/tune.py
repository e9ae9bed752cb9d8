"""The tune job: search rule configs for faithfulness on the user's own images.

Which LRP rules explain a network best depends on its architecture (Kohlbrenner et
al. 2020; Pahde et al. 2023), so the search space is built from graph context: one
rule for each *slot* (the first layer, depthwise convolutions, convolutions that feed
a ReLU, convolutions whose output stays linear, other convolutions, dense layers).
Slots that match no layer of the model are dropped. Coordinate ascent from the
default config tries every option of one slot while the others stay fixed and moves on.
Every candidate is scored with the evaluate machinery on a training split of the images,
image by image, so that candidates are compared paired on the same images: a slot only
changes its rule when the gain over the current choice is beyond noise (the lower end of
its 95% bootstrap interval above zero), never for a difference the images' spread could
make. The winner and the default are then measured on the held-out split, so that the
user sees whether the choice generalises.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..engine import composites
from ..engine.explainers import apply_composite, make_explainer
from ..engine.graph import Graph
from ..engine.methods import METHODS
from ..engine.propagation import Scorer
from ..errors import XaiError
from ..io.outputs import atomic_write, save_csv, text_table
from ..kinds.base import Batch, InputKind
from ..measures import paired
from ..measures.faithfulness import (
    RANDOM,
    EvaluateOptions,
    Tally,
    bootstrap_rng,
)
from ..measures.perturbation import mean_and_stderr
from ..session import Report, Session

DEFAULT_STABILISER = {"rule": "epsilon", "epsilon": 1.0e-6}


@dataclass(frozen=True)
class Slot:
    """A group of layers that gets one rule, and the rules tried for it (the first is the
    default config's choice, where the search starts)."""

    name: str
    match: dict
    options: tuple[dict, ...]


def _gammas(*values):
    return tuple({"rule": "gamma", "gamma": g} for g in values)


def _epsilons(*values):
    return tuple({"rule": "epsilon", "epsilon": e} for e in values)


ZPLUS = {"rule": "zplus"}
SLOTS = (
    Slot("first", {"first": True},
         ({"rule": "zbox"}, {"rule": "flat"}, {"rule": "w2"}, *_epsilons(1.0e-6))),
    Slot("depthwise", {"type": "DepthwiseConvolution", "linear_output": False},
         (*_gammas(0.25), *_epsilons(1.0e-6, 0.25), *_gammas(1.0), ZPLUS)),
    Slot("conv-relu", {"type": "Convolution", "followed_by": "relu"},
         (*_gammas(0.25, 0.1, 0.5, 1.0), ZPLUS, *_epsilons(1.0e-6, 0.25))),
    Slot("conv-linear", {"type": "Convolution", "linear_output": True},
         (*_epsilons(1.0e-6, 0.25), *_gammas(0.25, 1.0))),
    Slot("conv-other", {"type": "Convolution"},
         (*_gammas(0.25), *_epsilons(1.0e-6, 0.25), ZPLUS)),
    Slot("dense", {"type": "Dense"}, _epsilons(1.0e-6, 0.01, 0.25)),
)


def describe(option: dict) -> str:
    """``gamma 0.25``, ``zbox``: an option as the candidates table shows it."""
    return " ".join([option["rule"], *(f"{v:g}" for k, v in option.items() if k != "rule")])


@dataclass
class TuneOptions:
    evaluation: EvaluateOptions
    holdout: float = 0.5
    rounds: int = 1
    objective: str = "aopc"   # or "area": LeRF minus MoRF (needs the LeRF curves)


def config_text(choice: dict[str, dict], slots: Iterable[Slot], preprocess: dict | None = None,
                header: str = "") -> str:
    """The YAML of a candidate: one entry per slot, in slot order, first match wins."""
    config = {"name": "tuned", "description": "rules chosen by xai tune",
              "canonizers": ["merge-batchnorm"]}
    if preprocess:
        config["input"] = preprocess
    config["rules"] = [{"match": s.match, **choice[s.name]} for s in slots]
    config["default"] = DEFAULT_STABILISER
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


def used_slots(graph: Graph, preprocess: dict | None = None) -> list[Slot]:
    """The slots that match at least one layer of ``graph`` (after the earlier slots)."""
    start = {s.name: s.options[0] for s in SLOTS}
    composite = composites.parse(config_text(start, SLOTS, preprocess), "tune")
    used = {a.source for a in apply_composite(graph, composite).assignments}
    return [s for s, entry in zip(SLOTS, composite.entries) if entry.source in used]


@dataclass
class Split:
    """Preprocessed images held in memory (tune scores every candidate on the same ones)."""

    x: np.ndarray
    index: np.ndarray
    sources: list[str]

    def take(self, rows: np.ndarray) -> Split:
        return Split(self.x[rows], self.index[rows], [self.sources[i] for i in rows])


def split(data: Split, holdout: float, seed: int) -> tuple[Split, Split]:
    """A seeded random split into (train, held out); ``holdout`` is the held-out share."""
    order = np.random.default_rng([seed, 7]).permutation(len(data.x))
    held = round(holdout * len(order))
    if len(order) - held < 1 or (holdout > 0 and held < 1):
        raise XaiError(f"--holdout {holdout} leaves {len(order) - held} training and {held} "
                       f"held-out images of {len(order)}: give more images")
    return data.take(np.sort(order[held:])), data.take(np.sort(order[:held]))


def measure(explainers: dict, scorer: Scorer, data: Split, target: int, options: EvaluateOptions,
            kind: InputKind, seed: int, batch_size: int) -> Tally:
    """Per-image figures of every explainer (and the random baseline, if ``options`` asks)
    on ``data`` (inputs of ``kind``), added up batch by batch as ``xai evaluate`` does."""
    tally = Tally(options)
    for start in range(0, len(data.x), batch_size):
        rows = slice(start, start + batch_size)
        x = data.x[rows]
        result = kind.evaluate_batch(explainers, scorer, Batch([], x),
                                     np.full(len(x), target, np.int32), data.index[rows], options,
                                     seed)
        for i, reason in result.faults.items():   # every candidate must score the same images
            raise XaiError(f"{data.sources[start + i]}: {reason}")
        tally.add(result)
    return tally


def _summary(tally: Tally, name: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``{figure: {replace: (mean, stderr)}}`` of one explainer (area only where measured)."""
    return {f: {r: mean_and_stderr(tally.values[f, name, r]) for r in tally.options.replace
                if (f, name, r) in tally.values} for f in ("aopc", "area")}


def _per_image(tally: Tally, name: str, kind: str) -> np.ndarray:
    """The objective of each image: its AOPC (or LeRF-MoRF area) averaged over the
    protocols."""
    return np.mean([tally.values[kind, name, r] for r in tally.options.replace
                    if (kind, name, r) in tally.values], axis=0)


class Candidates:
    """The candidates table: scored configs, kept on disk after each one so a killed
    run resumes where it stopped."""

    def __init__(self, path: Path, slots: list[Slot], figures: list[tuple[str, str]]):
        self.path, self.slots, self.figures = path, slots, figures
        self.columns = ["candidate", "round", "slot", *(s.name for s in slots), "objective",
                        "gain", "gain_low", "gain_high",
                        *(c for f, r in figures for c in (f"{f}_{r}", f"{f}_{r}_stderr")),
                        "per_image"]
        self.rows: list[dict] = []

    def key(self, choice: dict) -> tuple:
        return tuple(describe(choice[s.name]) for s in self.slots)

    def load(self) -> None:
        """The candidates of an earlier run in the same folder (``--skip-existing``)."""
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames != self.columns:
                    raise XaiError(f"--skip-existing: {self.path} has other columns than this "
                                   "search writes (another model's slots, or an older xai "
                                   "without per-image scores); use another --out or drop "
                                   "--skip-existing")
                self.rows = list(reader)

    def find(self, choice: dict) -> np.ndarray | None:
        """The per-image objective of a candidate scored before, or None."""
        key = self.key(choice)
        row = next((r for r in self.rows if tuple(r[s.name] for s in self.slots) == key), None)
        return None if row is None else _values(row["per_image"])

    def add(self, choice: dict, round_: int, slot: str, values: np.ndarray,
            summary: dict[str, dict[str, tuple[float, float]]], seed: int) -> dict:
        """A scored candidate, with its gain over the first one (the start), paired."""
        start = values if not self.rows else _values(self.rows[0]["per_image"])
        gain = paired.compare(values, start, bootstrap_rng(seed))
        row = {"candidate": len(self.rows), "round": round_, "slot": slot,
               **dict(zip((s.name for s in self.slots), self.key(choice))),
               "objective": float(values.mean()), "gain": gain.difference,
               "gain_low": gain.low, "gain_high": gain.high,
               "per_image": " ".join(map(repr, values.tolist()))}
        for figure, replace in self.figures:
            row[f"{figure}_{replace}"], row[f"{figure}_{replace}_stderr"] = summary[figure][replace]
        self.rows.append(row)
        save_csv(self.path, self.columns, [[r[c] for c in self.columns] for r in self.rows])
        return row


def run(session: Session, options: TuneOptions, report: Report,
        progress: Callable[[int], None] | None = None) -> dict:
    """Search the rule space on a training split, write ``best.yaml``, ``candidates.csv``
    and ``holdout.csv``; returns the final record."""
    graph, opts, evaluation = session.graph, session.options, options.evaluation
    if options.objective == "area":
        evaluation = dataclasses.replace(evaluation, lerf=True)
    evaluation = session.kind.evaluation(evaluation)
    rules_explainer = session.explainers(("lrp",), report)["lrp"]
    preprocess = _preprocess_spec(opts)
    slots = used_slots(graph, preprocess)
    data = load_all(session, report)
    train, held = split(data, options.holdout, opts.seed)
    opts.out.mkdir(parents=True, exist_ok=True)
    _check_resume(opts, data, options, evaluation)
    figures = [(f, r) for f in (("aopc", "area") if evaluation.lerf else ("aopc",))
               for r in evaluation.replace]
    table = Candidates(opts.out / "candidates.csv", slots, figures)
    if opts.skip_existing:
        table.load()
    scorer = Scorer(graph)
    measure_args = (scorer, train, session.target, dataclasses.replace(evaluation, baseline=False),
                    session.kind, opts.seed, opts.batch_size)

    def score(choice, round_, slot):
        if progress is not None:
            progress(1)
        found = table.find(choice)
        if found is not None:
            return found
        composite = composites.parse(config_text(choice, slots, preprocess), "candidate")
        explainer = make_explainer(graph, METHODS["lrp"], composite, session.preprocessing,
                                   opts.seed)
        tally = measure({"lrp": explainer}, *measure_args)
        summary = _summary(tally, "lrp")
        values = _per_image(tally, "lrp", options.objective)
        row = table.add(choice, round_, slot, values, summary, opts.seed)
        report.record({"candidate": row["candidate"], "slot": slot,
                       "config": {s.name: describe(choice[s.name]) for s in slots},
                       "objective": row["objective"],
                       "gain_over_start": {"mean": row["gain"], "low": row["gain_low"],
                                           "high": row["gain_high"]},
                       options.objective: {
                           r: summary[options.objective][r][0] for r in evaluation.replace}})
        return values

    best = search(slots, score, options.rounds, opts.seed)
    best_text = config_text(best, slots, preprocess, _header(session, options, table))
    atomic_write(opts.out / "best.yaml", lambda f: f.write(best_text.encode("utf-8")))
    final = {"best": str(opts.out / "best.yaml"),
             "config": {s.name: describe(best[s.name]) for s in slots},
             "train_images": len(train.x), "held_out_images": len(held.x)}
    if len(held.x):
        final["held_out"] = _held_out(session, best_text, rules_explainer, held, evaluation,
                                      scorer, report)
    report.record(final)
    return final


def search(slots: list[Slot], score: Callable[[dict[str, dict], int, str], np.ndarray],
           rounds: int, seed: int = 0) -> dict[str, dict]:
    """Coordinate ascent: each slot in turn moves to the option that beats its current
    one by the most, the others fixed, if any beats it beyond noise.

    ``score(choice, round, slot)`` returns the objective per image (higher is better), the
    same images for every choice; an option beats the current one when the lower end of
    the bootstrap interval of their paired difference is above zero. Equal gains keep the
    earlier option, and without a clear gain the slot keeps its rule, so the default
    config stays unless something really beats it.
    """
    current = {s.name: s.options[0] for s in slots}
    for round_ in range(rounds):
        for slot in slots:
            values = [score({**current, slot.name: option}, round_, slot.name)
                      for option in slot.options]
            held = values[slot.options.index(current[slot.name])]
            gains = [paired.compare(v, held, bootstrap_rng(seed)) for v in values]
            ahead = [i for i, gain in enumerate(gains) if gain.beats]
            if ahead:
                best = max(ahead, key=lambda i: gains[i].difference)   # the first of equals
                current[slot.name] = slot.options[best]
    return current


def _values(text: str) -> np.ndarray:
    """Per-image values as candidates.csv keeps them (exact: Python's float repr)."""
    return np.array([float(v) for v in text.split()])


def steps_total(graph: Graph, options: TuneOptions) -> int:
    """Scoring calls of a search, for the progress bar."""
    return options.rounds * sum(len(s.options) for s in used_slots(graph))


def _preprocess_spec(opts) -> dict:
    """The command line's preprocessing, written into the config so that it travels with it."""
    spec = {"preprocess": opts.preprocess} if opts.preprocess else {}
    spec.update({k: v if k == "scale" else list(v) for k in ("scale", "mean", "std")
                 if (v := getattr(opts, k)) is not None})
    return spec


def load_all(session: Session, report: Report) -> Split:
    """Every input that loads, in memory: tune scores each candidate on the same images."""
    xs, index, sources = [], [], []
    for batch, positions in session.loaded(report):
        xs.extend(batch.x)
        index.extend(positions)
        sources.extend(s.item.source for s in batch.samples)
    if not xs:
        raise XaiError("no input could be loaded: nothing to tune on")
    return Split(np.stack(xs), np.asarray(index, np.int64), sources)


def _fingerprint(opts, data: Split, options: TuneOptions, evaluation: EvaluateOptions) -> dict:
    return {"model": str(Path(opts.model).resolve()), "inputs": data.sources,
            "target": opts.target, "seed": opts.seed, "holdout": options.holdout,
            "objective": options.objective, "perturb": list(evaluation.perturb),
            "steps": evaluation.steps, "replace": list(evaluation.replace),
            "score": evaluation.score, "preprocess": _preprocess_spec(opts)}


def _check_resume(opts, data, options, evaluation) -> None:
    """With --skip-existing, the folder's earlier run must have asked the same question."""
    path = opts.out / "tune.json"
    current = _fingerprint(opts, data, options, evaluation)
    if opts.skip_existing and path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in current if earlier.get(k) != current[k])
        if changed:
            raise XaiError(f"--skip-existing: {opts.out} holds a tune run with other "
                           f"{', '.join(changed)}; use another --out or drop --skip-existing")
    atomic_write(path, lambda f: f.write(json.dumps(current, indent=1).encode("utf-8")))


def _header(session: Session, options: TuneOptions, table: Candidates) -> str:
    evaluation = options.evaluation
    return (f"# written by xai tune for {session.options.model}: chosen from {len(table.rows)} "
            f"candidates by {options.objective}, a rule changed only for a gain beyond noise "
            f"on the same images\n# (region perturbation "
            f"{'x'.join(map(str, evaluation.perturb))}, {', '.join(evaluation.replace)}, seed "
            f"{session.options.seed}); candidates.csv has every score, holdout.csv the check.\n")


HOLDOUT_COLUMNS = ("config", "replace", "n_images", "aopc", "aopc_stderr", "aopc_vs_random",
                   "gain_over_default", "gain_stderr", "area", "area_stderr")


def _held_out(session, best_text, rules_explainer, held, evaluation, scorer, report) -> dict:
    """The tuned config, the default config, the --rules config (if another) and the random
    order on the held-out images: holdout.csv, a table on stderr, and the record's part.

    The gain over the default is the mean per-image difference of AOPC (a paired
    comparison: the spread between images, which dwarfs the difference between configs,
    cancels out)."""
    opts = session.options
    default = composites.load(session.kind.default_config)
    configs = {"tuned": composites.parse(best_text, "best.yaml"),
               f"{default.name} (default)": default}
    explainers = {name: make_explainer(session.graph, METHODS["lrp"], c, session.preprocessing,
                                       opts.seed) for name, c in configs.items()}
    if opts.rules and session.composite.name != default.name:
        explainers[f"{session.composite.name} (--rules)"] = rules_explainer
    tally = measure(explainers, scorer, held, session.target, evaluation, session.kind,
                    opts.seed, opts.batch_size)
    rows, record = [], {}
    random = _summary(tally, RANDOM)["aopc"]
    default_name = f"{default.name} (default)"
    for name in [*explainers, RANDOM]:
        summary = _summary(tally, name)
        for replace, (aopc, stderr) in summary["aopc"].items():
            ratio = aopc / random[replace][0] if random[replace][0] > 0 else None
            gain = mean_and_stderr(np.subtract(tally.values["aopc", name, replace],
                                               tally.values["aopc", default_name, replace]))
            area = summary.get("area", {}).get(replace, (None, None))
            rows.append((name, replace, len(held.x), aopc, stderr, ratio, *gain, *area))
            record.setdefault(name, {})[replace] = aopc
    save_csv(opts.out / "holdout.csv", HOLDOUT_COLUMNS, rows)
    report.note(f"held-out images ({len(held.x)}):\n" + _format(rows))
    return record


def _format(rows) -> str:
    def cell(v):
        return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
    header = ("config", "replace", "images", "aopc", "stderr", "x random", "gain", "stderr",
              "area", "stderr")
    return text_table([header, *[[cell(v) for v in r] for r in rows]], indent="  ")
