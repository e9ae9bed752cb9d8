"""The LRP / DTD rules and the gradient rules, as data.

A linear-layer rule is a :class:`LinearRule`: a list of terms (how to modify the
input and the parameters for one modified forward pass), a ``mapper`` that turns
the incoming relevance and the terms' outputs into one gradient per term, and a
``reducer`` that combines the terms' inputs and vector-Jacobian products into the
relevance of the layer's input. :mod:`xai_cli.engine.core` is the one mechanism that runs
any of them. Conventions follow Zennit 0.5.1 (stabiliser sign(0) = +1, biases take
part unless ``bias=False``). A rule's ``split`` says how an op's relevance divides between
its inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from keras import ops

STABILISER = 1e-6

# A rule's ``split``: how an op's relevance divides between its inputs, given each input's
# share as the rule computes it with the other inputs held constant.
PROPORTIONAL = "proportional"  # the shares as they are: a sum's terms by their contribution
UNIFORM = "uniform"    # shares over the number of inputs: a product's factors each take it all
SIGNAL = "signal"      # all to the input shaped like the output (a gate's signal), none to others


def _keep(t):
    return t


def _pos(t):
    return ops.maximum(t, 0.0)


def _neg(t):
    return ops.minimum(t, 0.0)


def _zero(t):
    return ops.zeros_like(t)


def _ones(t):
    return ops.ones_like(t)


def stabilise(z, epsilon):
    """``z + epsilon * sign(z)`` with sign(0) = +1 (one select and one add, not three ops);
    ``epsilon`` a number or a tensor that broadcasts against ``z``."""
    epsilon = _number(epsilon)
    return z + ops.where(z >= 0, epsilon, -epsilon)


def _number(epsilon):
    """A config's epsilon as a float (it may be an int); a tensor as it is."""
    return float(epsilon) if isinstance(epsilon, (int, float)) else epsilon


def _identity_input(x, low, high):
    return x


def _pos_input(x, low, high):
    return ops.maximum(x, 0.0)


def _neg_input(x, low, high):
    return ops.minimum(x, 0.0)


def _ones_input(x, low, high):
    return ops.ones_like(x)


def _low_input(x, low, high):
    return ops.broadcast_to(low, ops.shape(x))


def _high_input(x, low, high):
    return ops.broadcast_to(high, ops.shape(x))


@dataclass(frozen=True)
class Term:
    """One modified forward pass: ``z = f(input(x); kernel(W), bias(b))``.

    ``input`` receives ``(x, low, high)``, so that zB can substitute the bounds.
    """

    input: Callable = _identity_input
    kernel: Callable = _keep
    bias: Callable = _keep

    @property
    def is_identity(self) -> bool:
        return self.input is _identity_input and self.kernel is _keep and self.bias is _keep

    @property
    def vanishes_on_nonnegative_input(self) -> bool:
        """True when the term sees only negative inputs and no bias: zero after a ReLU."""
        return self.input is _neg_input and self.bias is _zero

    @property
    def ignores_input(self) -> bool:
        """True when the term's input is a constant (zB's bounds, flat's and w2's ones):
        its modified forward pass is the same for every input."""
        return self.input in (_low_input, _high_input, _ones_input)

    def input_of(self, x, low, high, nonnegative: bool):
        """The term's input; ``x`` itself where the term takes the positive part of an
        ``x`` known to be >= 0 (one element-wise pass less)."""
        if nonnegative and self.input is _pos_input:
            return x
        return self.input(x, low, high)


def times_input(inputs, grads):
    return sum(x * g for x, g in zip(inputs, grads) if g is not None)


def grads_only(inputs, grads):
    return sum(g for g in grads if g is not None)


@dataclass(frozen=True)
class LinearRule:
    """A rule for a linear layer, in Zennit's BasicHook form.

    ``mapper(relevance, outputs) -> gradients`` (one per term; ``None`` for a term that
    only serves the denominators) and ``reducer(inputs, vjps) -> relevance`` (over the
    terms; a vanished term's input and VJP are ``None``). ``where_silent``, where set,
    is a cheaper form giving the same relevance where the output's relevance is zero
    wherever the output is <= 0 (the engine knows when: a ReLU follows). ``split``: see
    :data:`PROPORTIONAL`. ``shared_gradient``, where set, says that the mapper's gradients
    are these signs times its first: the engine may then take the terms' VJPs as one, of
    their kernels stacked (zB's three on a first layer cost what one does).
    """

    name: str
    terms: tuple[Term, ...]
    mapper: Callable
    reducer: Callable = times_input
    bias: bool = True
    needs_bounds: bool = False
    params: dict = field(default_factory=dict)
    default_bias: bool = True
    where_silent: LinearRule | None = None
    split: str = PROPORTIONAL
    shared_gradient: tuple[float, ...] = ()

    @property
    def weighs_by_input(self) -> bool:
        """Input relevance is ``x * ...``: zero wherever the input is zero."""
        return self.reducer is not grads_only

    def describe(self) -> str:
        shown = dict(self.params)
        if self.bias != self.default_bias:
            shown["bias"] = self.bias
        return self.name + "".join(f" {k}={v}" for k, v in shown.items())


@dataclass(frozen=True)
class FlowRule:
    """A rule for a non-linear or structural op: relevance passes or follows the gradient.

    ``mode`` is ``pass`` (unchanged), ``gradient`` (vector-Jacobian product),
    ``guided`` (guided backprop ReLU), ``deconvnet`` (ReLU on the signal), ``rescale``
    (DeepLIFT's multiplier: the secant from the reference's activation, see
    :meth:`~xai_cli.engine.propagation.Propagator.backward`) or ``none`` (nothing
    flows); ``pass`` splits by :data:`SIGNAL`.
    """

    name: str
    mode: str
    split: str = PROPORTIONAL

    def describe(self) -> str:
        return self.name


def _divide(relevance, z, epsilon):
    return relevance / stabilise(z, epsilon)


def _divide_positive(relevance, z, epsilon):
    """``relevance / stabilise(z, epsilon)`` for a ``z`` that is > 0 wherever the relevance
    is not 0 (or >= 0 everywhere): one addition instead of a sign test and a select;
    0 where the relevance is 0, also where ``z + epsilon`` happens to be 0."""
    return ops.divide_no_nan(relevance, z + _number(epsilon))


def zero(bias=True, name="zero"):
    """LRP-0: relevance split by contribution; 0 where z = 0."""
    return LinearRule(name, (Term(_identity_input),),
                      lambda r, zs: [ops.divide_no_nan(r, zs[0])], bias=bias)


def _proportional(name, epsilon, bias=True, relative=False, **extra):
    """One pass, relevance in proportion to contribution: ``r / stabilise(z, epsilon)``,
    with its silent form (:func:`_divide_positive`). ``relative``: the stabiliser is
    ``epsilon`` times the standard deviation of ``z`` over each input's layer output."""
    def rule(divide, **more):
        def stabiliser(z):
            if not relative:
                return epsilon
            return epsilon * ops.std(z, axis=tuple(range(1, len(z.shape))), keepdims=True)
        return LinearRule(name, (Term(_identity_input),),
                          lambda r, zs: [divide(r, zs[0], stabiliser(zs[0]))], bias=bias, **more)
    return rule(_divide, where_silent=rule(_divide_positive), **extra)


def epsilon(epsilon=1e-6, bias=True, relative=False):
    """LRP-epsilon: the stabiliser absorbs weak or contradictory relevance. With
    ``relative``, epsilon is a share of the standard deviation of the layer's
    pre-activations z, per input (Montavon et al. 2019 suggest about 0.1): the same
    config then means the same thing in every layer, whatever its activations' scale."""
    params = {"epsilon": epsilon, **({"relative": True} if relative else {})}
    return _proportional("epsilon", epsilon, bias, relative, params=params)


def norm():
    """Parameter-free linear maps (pooling, Add): relevance in proportion to contribution."""
    return _proportional("norm", STABILISER)


def gamma(gamma=0.25, bias=True):
    """LRP-gamma, Zennit's generalised form (also negative inputs and outputs).

    Zennit runs four modified passes, one per sign of input and weight. With the
    positive contributions ``P = x+ W+ + x- W- + b+`` and ``z = x W + b``, the
    denominators are ``z + gamma P`` (outputs z > 0) and ``z + gamma (z - P)`` (z < 0),
    and the input relevance is ``x+ W+^T (gamma d) + x- W-^T (gamma d) +
    x W^T (p + (1 + gamma) n)`` with ``p``, ``n`` the divided relevance of the positive
    and negative outputs and ``d = p - n``: the same values from one modified pass
    (none of negative inputs after a ReLU) and two VJPs. Where the negative outputs
    hold no relevance, :func:`_gamma_positive` needs one VJP.
    """
    terms = (Term(_pos_input, _pos, _pos), Term(_neg_input, _neg, _zero), Term(_identity_input))

    def mapper(r, zs):
        z, positive = zs[2], zs[0] + zs[1]
        # P >= 0: each denominator has the sign of z, so the stabiliser's sign is known
        p = ops.where(z > 0, r / (z + gamma * positive + STABILISER), 0.0)
        n = ops.where(z < 0, r / ((1 + gamma) * z - gamma * positive - STABILISER), 0.0)
        d = gamma * (p - n)
        return [d, d, p + (1 + gamma) * n]

    return LinearRule("gamma", terms, mapper, bias=bias, params={"gamma": gamma},
                      where_silent=_gamma_positive(gamma, bias))


def _gamma_positive(gamma, bias):
    """LRP-gamma for outputs whose relevance is zero wherever z <= 0 (before a ReLU):
    only Zennit's two passes of the positive outputs, with the gamma-modified kernels."""
    def plus(t):
        return t + gamma * _pos(t)

    def minus(t):
        return t + gamma * _neg(t)

    terms = (Term(_pos_input, plus, plus), Term(_neg_input, minus, _zero))

    def mapper(r, zs):
        g = _divide_positive(r, zs[0] + zs[1], STABILISER)  # >= z, so > 0 where r != 0
        return [g, g]

    return LinearRule("gamma", terms, mapper, bias=bias, params={"gamma": gamma})


def alpha_beta(alpha=1.0, beta=0.0, bias=True):
    """LRP-alpha-beta: positive and negative contributions weighted separately."""
    terms = (Term(_pos_input, _pos, _pos), Term(_neg_input, _neg, _zero),
             Term(_pos_input, _neg, _neg), Term(_neg_input, _pos, _zero))

    def mapper(r, zs):
        positive = _divide(r, zs[0] + zs[1], STABILISER)
        negative = _divide(r, zs[2] + zs[3], STABILISER)
        return [alpha * positive, alpha * positive, -beta * negative, -beta * negative]

    return LinearRule("alpha-beta", terms, mapper, bias=bias,
                      params={"alpha": alpha, "beta": beta})


def zplus(bias=True):
    """DTD z+: only positive contributions (equals alpha1-beta0)."""
    terms = (Term(_pos_input, _pos, _pos), Term(_neg_input, _neg, _zero))

    def mapper(r, zs):
        g = _divide_positive(r, zs[0] + zs[1], STABILISER)  # x+ W+ + x- W- + b+ >= 0
        return [g, g]

    return LinearRule("zplus", terms, mapper, bias=bias, shared_gradient=(1.0, 1.0))


def zbox(low=None, high=None, bias=True):
    """DTD zB for a first layer whose input lies in the box [low, high]."""
    terms = (Term(_identity_input), Term(_low_input, _pos, _pos), Term(_high_input, _neg, _neg))

    def mapper(r, zs):
        g = _divide(r, zs[0] - zs[1] - zs[2], STABILISER)
        return [g, -g, -g]

    params = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
    return LinearRule("zbox", terms, mapper, bias=bias, needs_bounds=True, params=params,
                      shared_gradient=(1.0, -1.0, -1.0))


def w2(bias=True):
    """w^2: relevance by squared weights, independent of the input."""
    return LinearRule("w2", (Term(_ones_input, ops.square, ops.square),),
                      lambda r, zs: [_divide(r, zs[0], STABILISER)], grads_only, bias=bias)


def flat(bias=False):
    """flat: relevance spread uniformly over the receptive field (biases dropped)."""
    return LinearRule("flat", (Term(_ones_input, _ones, _ones),),
                      lambda r, zs: [_divide(r, zs[0], STABILISER)], grads_only, bias=bias,
                      default_bias=False)


def uniform(epsilon=STABILISER):
    """AttnLRP's uniform rule for a bilinear product ``z = f(a, b)`` of two tensors
    (Achtibat et al. 2024): each factor takes the epsilon rule with the other held
    constant, ``a * (df/da)^T (R / stabilise(z))``, which alone conserves all of R (f is
    linear in ``a``), and so takes half of it."""
    return LinearRule("uniform", (Term(_identity_input),),
                      lambda r, zs: [_divide(r, zs[0], epsilon)], split=UNIFORM)


@dataclass(frozen=True)
class AttentionRule:
    """A rule for attention (see :mod:`~xai_cli.engine.attention`): ``mode`` is
    ``attnlrp`` or ``cp-lrp``. On a normalisation, both hold the standard deviation
    constant (:meth:`normalization`)."""

    mode: str
    epsilon: float = STABILISER

    @property
    def name(self) -> str:
        return self.mode

    def describe(self) -> str:
        return self.mode

    def normalization(self) -> LinearRule:
        """The rule's form on a standardisation ``(x - mean) / std``: the std held
        constant (the identity rule of Achtibat et al. 2024, the constant scale of Ali
        et al. 2022), leaving a linear map whose relevance follows the contributions.
        Without a stabiliser: the relevance that reaches it is proportional to its output
        (the learned scale's rule), so that dividing by the output cancels exactly, as the
        one step of LXT's LayerNorm rule does; a stabiliser would not cancel where an
        output is near 0."""
        return zero(name=self.mode)


RECURRENT_EPSILON = 1e-3   # Arras et al. 2017's epsilon for the LSTM's linear steps and sums


@dataclass(frozen=True)
class RecurrentRule:
    """A recurrent layer's rule (Arras et al. 2017, see :mod:`~xai_cli.engine.recurrent`):
    ``linear`` for the signal's input and recurrent kernels; ``epsilon`` stabilises the
    split of the memory's and the signal's sum; gates take no relevance."""

    linear: LinearRule
    epsilon: float

    def describe(self) -> str:
        return f"{self.linear.describe()}; gates none, sums split with epsilon={self.epsilon:g}"


def recurrent(linear: LinearRule | None = None) -> RecurrentRule:
    """The rule of a recurrent layer whose linear steps take ``linear`` (default: epsilon
    as in Arras et al. 2017); the sums are split with ``linear``'s epsilon, if it has one."""
    linear = linear or epsilon(RECURRENT_EPSILON)
    return RecurrentRule(linear, float(linear.params.get("epsilon", RECURRENT_EPSILON)))


PASS = FlowRule("pass", "pass", SIGNAL)
NONE = FlowRule("none", "none")   # nothing flows: the op's inputs take no relevance or gradient
GRADIENT = FlowRule("gradient", "gradient")
GUIDED = FlowRule("guided", "guided")
DECONVNET = FlowRule("deconvnet", "deconvnet")
RESCALE = FlowRule("rescale", "rescale")

LINEAR_RULES = {"zero": zero, "epsilon": epsilon, "gamma": gamma, "alpha-beta": alpha_beta,
                "zplus": zplus, "zbox": zbox, "w2": w2, "flat": flat}
