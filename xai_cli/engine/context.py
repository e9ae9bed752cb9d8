"""Where a linear op sits in the graph, for rule configs that match by context.

The right rule for a convolution depends on what its output feeds: gamma and z+
assume that a ReLU will drop the negative outputs, which holds in VGG-style blocks
but not for the linear bottleneck of an inverted residual block, whose output goes
into an ``Add`` with its negative part intact (Pahde et al. 2023). This module
names what follows each op (``followed_by``) and whether its output stays linear
up to the next layer with weights (``linear_output``).

Per-channel affine layers (BatchNormalization that was not folded, LayerScale) and
ops that only move values (padding, reshaping, dropout, concatenation, max pooling)
are looked through: they change neither the sign structure nor the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .graph import Graph
from .layers import ACTIVATION, AFFINE, ATTENTION, GATE, LINEAR, NORMALIZATION, POOLING, STRUCTURAL

ELEMENTWISE = {"BatchNormalization", "LayerNormalization", "LayerScale"}  # linear, shape-keeping
RELU = {"relu", "relu6"}
MERGES = {"Add", "Average", "Subtract"}
FOLLOWERS = ("relu", "activation", "add", "pooling", "normalization", "gate", "linear", "output")


@dataclass(frozen=True)
class Context:
    """What an op's output feeds.

    ``followers``: for every path out of the op, the first op that is not looked
    through, named by one of :data:`FOLLOWERS` (a ReLU is both ``relu`` and
    ``activation``). ``linear_output``: no non-linear activation or gate lies between
    the op and the next layer with weights (or the model output) on any path.
    """

    followers: tuple[frozenset[str], ...]
    linear_output: bool

    def followed_by(self, wanted: set[str]) -> bool:
        """Every path out of the op meets one of ``wanted`` first."""
        return bool(self.followers) and all(f & wanted for f in self.followers)

    def describe(self) -> str:
        names = sorted({min(f, key=FOLLOWERS.index) for f in self.followers},
                       key=FOLLOWERS.index)
        return ", ".join(names) + ("; linear output" if self.linear_output else "")


def _looked_through(op) -> bool:
    return op.kind == STRUCTURAL or (op.kind == LINEAR and op.layer_type in ELEMENTWISE)


def _category(op) -> frozenset[str]:
    if op.kind == ACTIVATION:
        return frozenset({"relu", "activation"} if op.activation in RELU else {"activation"})
    if op.kind == POOLING:
        if op.layer_type in MERGES:
            return frozenset({"add"})
        return frozenset({"normalization" if op.layer_type in ELEMENTWISE else "pooling"})
    if op.kind == NORMALIZATION:
        return frozenset({"normalization"})
    if op.kind == GATE:
        return frozenset({"gate"})
    return frozenset({"linear"})  # LINEAR with weights, AFFINE, attention


def contexts(graph: Graph) -> dict[int, Context]:
    """The context of every linear op, by op index."""
    consumers: dict[int, list] = {}
    for op in graph.ops:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)

    @cache
    def followers(tensor: int) -> tuple[frozenset[str], ...]:
        found = (frozenset({"output"}),) if tensor == graph.output else ()
        for op in consumers.get(tensor, []):
            found += followers(op.output) if _looked_through(op) else (_category(op),)
        return found

    @cache
    def stays_linear(tensor: int) -> bool:
        for op in consumers.get(tensor, []):
            if op.kind in (ACTIVATION, GATE, ATTENTION):   # attention: a softmax of q and k
                return False
            if op.kind in (STRUCTURAL, POOLING, NORMALIZATION, AFFINE) or _looked_through(op):
                if not stays_linear(op.output):
                    return False
        return True

    return {index: Context(followers(op.output), stays_linear(op.output))
            for index, op in enumerate(graph.ops) if op.kind == LINEAR}
