"""The one mechanism that turns any rule into a backward step for one op.

A :class:`~xai_cli.engine.rules.LinearRule` runs one modified forward pass per term, maps
the incoming relevance to a gradient per term, takes each term's vector-Jacobian
product, and reduces them to each input's share. A
:class:`~xai_cli.engine.rules.FlowRule` passes relevance through or follows the gradient.
The rule's ``split`` then divides the relevance between an op's inputs: as computed
(a sum's terms by their contribution), uniformly (the factors of a bilinear product,
each of whose shares alone holds all of it) or all to the signal (passing through a
gate, an element-wise product, treats the gate as a constant).
"""

from __future__ import annotations

from dataclasses import dataclass

from keras import ops

from ..errors import XaiError
from . import attention, backends, recurrent
from .layers import Op
from .rules import SIGNAL, UNIFORM, AttentionRule, FlowRule, LinearRule, RecurrentRule


@dataclass(frozen=True)
class Facts:
    """What the graph guarantees about one op, so that exactly-zero rule terms are skipped.

    ``nonnegative_input``: the inputs are >= 0 (after a ReLU): terms of negative inputs
    vanish. ``silent_where_negative``: the output feeds a ReLU whose relevance is zero
    wherever the ReLU is off, so a rule's cheaper ``where_silent`` form applies.
    """

    nonnegative_input: bool = False
    silent_where_negative: bool = False
    constant_inputs: tuple[bool, ...] = ()   # per input: it depends on the input's shape only

    def skips(self, term) -> bool:
        return self.nonnegative_input and term.vanishes_on_nonnegative_input

    def cheapest(self, rule: LinearRule) -> LinearRule:
        """``rule``, or its cheaper form where its output is silent where negative."""
        if self.silent_where_negative and rule.where_silent is not None:
            return rule.where_silent
        return rule


def backward(op: Op, rule, inputs: list, output, relevance, bounds=None,
             facts: Facts = Facts(), reference=None) -> list:
    """Relevance of each input of ``op``, given the relevance of its output.

    ``output`` is the op's forward output (reused by identity terms so that LRP-epsilon
    costs no extra forward pass); ``bounds`` is ``(low, high)`` for zB; ``reference`` the
    op's inputs and output for DeepLIFT's reference input.
    Returns one tensor (or ``None`` for "no relevance") per input.
    """
    if isinstance(rule, RecurrentRule):
        return recurrent.relevance(op.cell, rule.linear, rule.epsilon, inputs, relevance, op.params)
    if isinstance(rule, AttentionRule):
        return attention.relevance(op.mechanism, rule.mode, rule.epsilon, inputs, relevance)
    if isinstance(rule, LinearRule):
        shares = _linear(op, rule, inputs, output, relevance, bounds, facts)
    else:
        shares = _flow(op, rule, inputs, output, relevance, reference)
    return _split(op, rule, inputs, shares, relevance, facts.constant_inputs)


def _split(op: Op, rule, inputs: list, shares: list, relevance, constant=()) -> list:
    """Each input's relevance from its share by ``rule.split`` (see
    :data:`~xai_cli.engine.rules.PROPORTIONAL`); a ``constant`` input (per input) is
    never the signal."""
    if rule.split == UNIFORM:
        return [None if s is None else s / len(shares) for s in shares]
    if rule.split == SIGNAL:
        signal = next((j for j, x in enumerate(inputs)
                       if tuple(x.shape)[1:] == tuple(relevance.shape)[1:]
                       and not (constant and constant[j])), None)
        if signal is None:
            raise XaiError(f"rule {rule.name} on '{op.name}' ({op.layer_type}): its input and "
                           f"output shapes differ; {rule.name} suits element-wise layers only")
        return [s if j == signal else None for j, s in enumerate(shares)]
    return shares


def _weights(fn, weights):
    """``fn(weights)``, computed once when the explainer is traced (outside the trace),
    not again for every batch: modified and transposed kernels depend on nothing else."""
    with backends.current().outside_trace():
        return fn(ops.convert_to_tensor(weights))


def _vjp(op: Op, inputs: list, params: dict, forward=None, output=None):
    """The op's output and a function mapping a gradient to the inputs' VJPs.

    The one place that picks the VJP: an op with an ``input_vjp`` (a LINEAR op's
    transposed map) needs no autodiff, and runs its forward pass only where ``output``
    (the output, where the caller knows it) is not given; any other op takes the
    backend's VJP of its forward pass.
    """
    forward = forward or op.forward
    if op.input_vjp is not None:
        kernel, shape = _weights(op.input_vjp.kernel, params["kernel"]), ops.shape(inputs[0])
        z = output if output is not None else forward(inputs, params)
        return z, lambda grad: [op.input_vjp.apply(grad, kernel, shape)]
    z, vjp = backends.current().vjp(lambda xs: forward(xs, params), inputs)
    return (output if output is not None else z), vjp


def _constant_pass(op: Op, term, inputs, params, low, high):
    """A term's input and output where its input does not depend on ``x``: computed
    once, for one input, when the explainer is traced; both broadcast over the batch."""
    def run(inputs):
        xs = [term.input(ops.zeros_like(x[:1]), low, high) for x in inputs]
        return xs, (op.linear_forward or op.forward)(xs, params)
    if any(d is None for x in inputs for d in x.shape[1:]):
        return run(inputs)   # a length known only at run time (a model of any length)
    with backends.current().outside_trace():
        return run([ops.zeros((1, *x.shape[1:]), x.dtype) for x in inputs])


def _linear(op: Op, rule: LinearRule, inputs, output, relevance, bounds, facts: Facts):
    rule = facts.cheapest(rule)
    params = {k: v for k, v in op.params.items() if rule.bias or k != "bias"}
    low, high = bounds if bounds is not None else (None, None)
    reuse_output = rule.bias or "bias" not in op.params
    term_inputs, outputs, vjps, kernels = [], [], [], []
    for term in rule.terms:
        if facts.skips(term):
            term_inputs.append([None] * len(inputs))
            outputs.append(ops.zeros_like(output))
            vjps.append(None)
            continue
        modified = {k: _weights(term.bias if k == "bias" else term.kernel, v)
                    for k, v in params.items()}
        kernels.append(modified.get("kernel"))
        if term.ignores_input and op.input_vjp is not None:
            xs, z = _constant_pass(op, term, inputs, modified, low, high)
            vjp = _vjp(op, xs, modified, output=z)[1]
        else:
            xs = [term.input_of(x, low, high, facts.nonnegative_input) for x in inputs]
            z, vjp = _vjp(op, xs, modified, op.linear_forward,
                          output if term.is_identity and reuse_output else None)
        outputs.append(z)
        term_inputs.append(xs)
        vjps.append(vjp)
    grads = rule.mapper(relevance, outputs)
    if rule.shared_gradient and len(kernels) == len(rule.terms) > 1 and _stackable(op, inputs):
        products = _stacked_vjps(op, [xs[0] for xs in term_inputs], kernels, grads[0],
                                 rule.shared_gradient)
    else:
        products = [vjp(g) if vjp is not None and g is not None else [None] * len(inputs)
                    for vjp, g in zip(vjps, grads)]
    return [rule.reducer([xs[j] for xs in term_inputs], [p[j] for p in products])
            for j in range(len(inputs))]


_STACKABLE = {"Dense", "Conv1D", "Conv2D", "Conv3D"}   # kernel (..., input channels, outputs)


def _stackable(op: Op, inputs) -> bool:
    """Whether the op's kernels can be stacked on their input channels: a dense layer or
    a convolution of one group (its kernel takes all the input's channels)."""
    kernel = op.params.get("kernel")
    return op.layer_type in _STACKABLE and len(inputs) == 1 and kernel is not None \
        and len(kernel.shape) >= 2 and kernel.shape[-2] == inputs[0].shape[-1]


def _stacked_vjps(op: Op, term_inputs: list, kernels: list, grad, signs) -> list:
    """The terms' VJPs of one gradient, ``sign * grad``, as one VJP of the terms' kernels
    stacked on their input channels: ``[x_1, ..., x_n] -> sum_t W_t x_t`` takes the
    gradient to each term's VJP side by side."""
    with backends.current().outside_trace():   # once per explainer, as every kernel
        stacked = ops.concatenate([ops.convert_to_tensor(k) for k in kernels], axis=-2)
        transposed = op.input_vjp and op.input_vjp.kernel(stacked)
    channels = term_inputs[0].shape[-1]
    if op.input_vjp is not None:
        shape = (*ops.shape(term_inputs[0])[:-1], channels * len(kernels))
        vjp = op.input_vjp.apply(grad, transposed, shape)
    else:
        side_by_side = ops.concatenate([ops.broadcast_to(x, ops.shape(term_inputs[0]))
                                        for x in term_inputs], axis=-1)
        _, pullback = backends.current().vjp(lambda xs: op.forward(xs, {"kernel": stacked}),
                                             [side_by_side])
        vjp = pullback(grad)[0]
    return [[sign * vjp[..., t * channels:(t + 1) * channels]] for t, sign in enumerate(signs)]


RESCALE_EPSILON = 1e-10   # DeepLIFT: below this input difference the secant is the gradient


def _flow(op: Op, rule: FlowRule, inputs, output, relevance, reference=None):
    if rule.mode == "none":
        return [None] * len(inputs)
    if rule.mode == "pass":
        return [relevance] * len(inputs)
    if rule.mode == "deconvnet":
        return [ops.relu(relevance)]
    grad = ops.relu(relevance) if rule.mode == "guided" else relevance
    _, vjp = _vjp(op, list(inputs), op.params, output=output)
    if rule.mode == "rescale":
        return [_rescale(op, inputs, output, relevance, reference, vjp)]
    return vjp(grad)


def _rescale(op: Op, inputs, output, relevance, reference, vjp):
    """DeepLIFT's Rescale rule for an element-wise op: the incoming multiplier times
    ``(y - y0) / (x - x0)``, the op's secant from the reference; its gradient where the
    two inputs (almost) agree."""
    if reference is None or len(inputs) != 1:
        raise XaiError(f"rule rescale on '{op.name}' ({op.layer_type}) needs one input and the "
                       "reference's values (DeepLIFT)")
    (x0,), y0 = reference
    delta = inputs[0] - x0
    near = ops.abs(delta) < RESCALE_EPSILON
    secant = relevance * (output - y0) / ops.where(near, ops.ones_like(delta), delta)
    return ops.where(near, vjp(relevance)[0], secant)

