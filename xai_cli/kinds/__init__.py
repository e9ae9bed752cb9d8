"""Kinds of input: one :class:`~xai_cli.kinds.base.InputKind` per module, chosen once from
the model's graph by :func:`of`.

Adding a kind: its module here (the interface is :mod:`~xai_cli.kinds.base`), its entry in
:data:`KINDS`, and its tests; see docs/extending.md.
"""

from __future__ import annotations

from ..engine.graph import Graph
from ..errors import XaiError
from .base import InputKind
from .clip import Clip
from .document import Document
from .image import Image
from .signal import Signal

KINDS: tuple[type[InputKind], ...] = (Image, Document, Clip, Signal)   # the first that fits a graph wins


def of(graph: Graph) -> InputKind:
    """The kind of input ``graph`` takes, bound to it."""
    for kind in KINDS:
        if kind.fits(graph):
            return kind(graph, KINDS)
    shapes = [k.shape for k in KINDS]
    raise XaiError(f"model input shape {graph.input_shape} is not {', '.join(shapes[:-1])} or "
                   f"{shapes[-1]}")
