"""CI gates: what ``--require`` can name in evaluate and spray, and the verdict (exit 3).

Requirements are parsed (`xai_cli.jobs.requirements`) and checked against the options before
any work starts, so that a typo or a figure the run will not measure is a usage error
(exit 2) and not a failed gate after an hour. After the run each requirement is checked
against the results: every one is reported on stderr with its values, and the exit code
is 3 if any is not met (the outputs are written either way).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import XaiError
from ..measures.localisation import FIGURES as LOCALISATION_FIGURES
from ..measures.perturbation import REPLACEMENTS, WORD_REPLACEMENTS
from . import requirements

if TYPE_CHECKING:   # the CLI imports this module for its help, before Keras
    from ..session import Report
    from .evaluate import Results

REQUIREMENTS_NOT_MET = 3
RANDOM = "random"

# evaluate: function -> (most arguments, the option that must be on for it)
EVALUATE_FUNCTIONS = {
    "aopc": (2, None), "ratio": (2, None), "aopc_lerf": (2, "--lerf"), "area": (2, "--lerf"),
    **{figure: (1, "--masks") for figure in LOCALISATION_FIGURES},
    "sanity": (1, "--sanity"), "sanity_mean": (1, "--sanity"),
    **dict.fromkeys(("beats", "won"), (3, None)),
}
PAIRED = ("beats", "won")   # (method, versus[, replace]): comparisons.csv
EVALUATE_PREDICATES = ("beats",)
EVALUATE_HELP = ("Fail with exit code 3 unless EXPR holds, e.g. 'beats(lrp, gradxinput)', "
                 "'lrp > random', 'aopc(lrp) >= 1.2 * aopc(random)', 'pointing(lrp) >= 0.8', "
                 "'sanity(lrp) < 0.5'. Repeatable. Names: aopc, ratio (to random), aopc_lerf, "
                 "area (method[, replace]); beats (alone: A ahead of B beyond noise; as a "
                 "number: the lower end of the 95% bootstrap CI of the paired AOPC difference "
                 "A - B), won (share of the inputs on which A's AOPC is higher) (A, B[, "
                 "replace]); pointing, mass, rank_accuracy (--masks); sanity (|rank correlation| "
                 "with everything randomised), sanity_mean (its mean over the cascade) "
                 "(--sanity); a bare method name is its aopc; n_images.")
SPRAY_HELP = ("Fail with exit code 3 unless EXPR holds, e.g. 'clusters <= 1' (one strategy "
              "only) or 'largest >= 0.9' (share of the largest cluster). Repeatable. Names: "
              "clusters, largest, n_images.")


def evaluate_requirements(texts: Iterable[str], methods: Iterable[str], replace: Collection[str],
                          lerf: bool, masks: bool, sanity: bool) -> list[requirements.Requirement]:
    """Parse and check ``--require`` of evaluate against what the run will measure."""
    on = {"--lerf": lerf, "--masks": masks, "--sanity": sanity}
    names = (*methods, RANDOM)
    parsed = [requirements.parse(text, {f: n for f, (n, _) in EVALUATE_FUNCTIONS.items()},
                                 (*names, "n_images"), (*names, *REPLACEMENTS, *WORD_REPLACEMENTS),
                                 EVALUATE_PREDICATES)
              for text in texts]
    for requirement in parsed:
        for name, args in requirement.references():
            needs = EVALUATE_FUNCTIONS.get(name, (0, None))[1]
            if needs and not on[needs]:
                raise XaiError(f"--require '{requirement.text}': {name}() needs {needs}")
            if args and args[0] not in names:
                raise XaiError(f"--require '{requirement.text}': {name}({', '.join(args)}): "
                               f"the first argument is a method ({', '.join(names)})")
            if name in PAIRED:
                if len(args) < 2 or args[1] not in names or args[1] == args[0]:
                    raise XaiError(f"--require '{requirement.text}': {name}({', '.join(args)}): "
                                   f"compares two different methods of this run, e.g. "
                                   f"{name}({names[0]}, {RANDOM}) ({', '.join(names)})")
                args = (args[0], *args[2:])
            if len(args) == 2 and args[1] not in replace:
                raise XaiError(f"--require '{requirement.text}': {name}({', '.join(args)}): "
                               f"the {'third' if name in PAIRED else 'second'} argument is a "
                               f"--replace protocol of this run ({', '.join(replace)})")
            if name.startswith("sanity") and args[0] == RANDOM:
                raise XaiError(f"--require '{requirement.text}': the random baseline has no "
                               "heatmap to randomise")
    return parsed


def evaluate_lookup(results: Results) -> Callable:
    """``lookup(name, args)`` over evaluate's results."""
    summary, sanity_rows = results.summary, results.sanity
    first_replace = summary[0]["replace"]
    methods = {row["method"] for row in summary}

    def lookup(name: str, args: tuple[str, ...]) -> float:
        if not args and name in methods:
            name, args = "aopc", (name,)
        if name == "n_images":
            return float(summary[0]["n_images"])
        if name.startswith("sanity"):
            steps = [_number(r["abs_rank_correlation"]) for r in sanity_rows
                     if r["method"] == args[0]]
            if not steps:
                return float("nan")
            return float(np.mean(steps)) if name == "sanity_mean" else steps[-1]
        if name in PAIRED:
            return _paired(results.comparisons, name, *args[:2],
                           args[2] if len(args) > 2 else first_replace)
        replace = args[1] if len(args) > 1 else first_replace
        row = next(r for r in summary if r["method"] == args[0] and r["replace"] == replace)
        return _number(row["aopc_vs_random" if name == "ratio" else name])
    return lookup


def _paired(comparisons: list[dict], name: str, method: str, versus: str, replace: str) -> float:
    """beats (the CI's lower end) or won of ``method`` against ``versus``; comparisons.csv
    has each pair once, so the other way round is read from the mirrored row."""
    for row in comparisons:
        if row["replace"] != replace or {row["method"], row["versus"]} != {method, versus}:
            continue
        same = row["method"] == method
        if name == "won":
            return _number(row["won"]) if same else 1 - _number(row["won"])
        return _number(row["ci_low"]) if same else -_number(row["ci_high"])
    return float("nan")


def spray_requirements(texts: Iterable[str]) -> list[requirements.Requirement]:
    return [requirements.parse(text, {}, ("clusters", "largest", "n_images"), ())
            for text in texts]


def spray_lookup(labels: np.ndarray) -> Callable:
    """``lookup(name, ())`` over SpRAy's cluster labels."""
    counts = np.bincount(labels) if len(labels) else np.zeros(1)
    values = {"clusters": float(len(np.unique(labels))), "n_images": float(len(labels)),
              "largest": float(counts.max() / max(len(labels), 1))}
    return lambda name, args: values[name]


def verdict(parsed: list[requirements.Requirement], lookup: Callable, report: Report) -> int:
    """Check every requirement, say each outcome on stderr; 3 if any is not met, else 0."""
    failed = 0
    for requirement in parsed:
        outcome = requirement.check(lookup)
        report.note(f"requirement {'met' if outcome.passed else 'NOT met'}: {outcome.detail}")
        failed += not outcome.passed
    return REQUIREMENTS_NOT_MET if failed else 0


def _number(value) -> float:
    return float("nan") if value is None else float(value)
