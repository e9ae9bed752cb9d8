"""Explanations that say nothing: relevance that vanished on the way to the input.

LRP starts from the explained score and hands it down layer by layer; a stabiliser
(epsilon) that is large against the activations absorbs it, and a config can zero it
(e.g. ``zero`` rules where every contribution cancels). The heatmap is then a white
square that looks like "nothing matters", so the record says so instead.
"""

from __future__ import annotations

import numpy as np

VANISHING = 1e-3  # input relevance below this fraction of the explained score


def vanishing(method, relevance: np.ndarray, score: float) -> str | None:
    """A warning if ``relevance`` (of ``method`` for a score ``score``) has vanished."""
    total = float(np.abs(relevance).sum())
    if method.uses_composite and score == 0:
        return (f"{method.name}: the explained score is 0, so there is no relevance to "
                "distribute; explain another class with --target")
    if total == 0:
        what = "the rule config passes no relevance to the input" if method.uses_composite \
            else method.silent
        return f"{method.name}: relevance is zero everywhere: {what}; check it layer by " \
               "layer with `xai rules MODEL --rules CFG --check IMAGE`"
    if method.uses_composite and total < VANISHING * abs(score):
        return (f"{method.name}: relevance vanishes (sum |R| = {total:.3g} for an explained "
                f"score of {score:.3g}): the rules' stabilisers absorb it; try a smaller "
                "epsilon (e.g. --rules lrp-0) and check it layer by layer with "
                "`xai rules MODEL --rules CFG --check IMAGE`")
    return None
