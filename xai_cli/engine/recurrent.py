"""Recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) and their relevance.

Each direction of a recurrent layer is one RECURRENT op whose forward pass is a scan
over time on ``keras.ops``, exact to the Keras layer (masked steps carry the state
over). Its LRP backward pass follows Arras et al. 2017 ("Explaining recurrent neural
network predictions in sentiment analysis"):

- a product of a gate and a signal sends all relevance to the signal, none to the gate
  ("signal-take-all": ``o * tanh(c)`` to ``c``, ``i * g`` to ``g``, GRU's
  ``(1 - z) * n`` to ``n`` and ``r * (h U)`` to ``h U``);
- a sum of the carried memory and the new signal (``c = f c' + i g``; GRU's
  ``h = z h' + (1 - z) n``) is split in proportion, as an epsilon step;
- the signal's pre-activation is a linear map of the step's input and the previous
  state, and takes the configured linear rule (one denominator over both).

The backward pass is one reverse scan carrying the relevance of the state (and of
LSTM's cell); everything that does not depend on it is computed for all steps at once
beforehand, and the input's relevance after the scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops

from ..errors import XaiError
from .rules import LinearRule, stabilise


@dataclass(frozen=True)
class Cell:
    """One direction of a recurrent layer, as its op's forward and backward passes need it.

    ``align``: a backward direction inside Bidirectional, whose sequence output is
    flipped back into time order.
    """

    kind: str                 # "lstm", "gru" or "simple"
    units: int
    activation: object
    recurrent_activation: object
    reset_after: bool
    go_backwards: bool
    return_sequences: bool
    zero_output_for_mask: bool
    align: bool = False

    @property
    def signal(self) -> slice:
        """The columns of the signal (LSTM's g, GRU's n) in the kernels."""
        h = self.units
        return {"lstm": slice(2 * h, 3 * h), "gru": slice(2 * h, 3 * h), "simple": slice(0, h)}[self.kind]


KINDS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple"}


def cell_of(layer, align: bool = False) -> tuple[Cell, dict]:
    """The :class:`Cell` of a SimpleRNN, LSTM or GRU layer and its parameters."""
    kind = KINDS[type(layer).__name__]
    if getattr(layer, "stateful", False) or getattr(layer, "return_state", False):
        raise XaiError(f"layer '{layer.name}' ({type(layer).__name__}) is stateful or returns "
                       "its states; xai explains stateless recurrent layers with one output")
    cell = layer.cell
    params = {"kernel": cell.kernel, "recurrent_kernel": cell.recurrent_kernel}
    if cell.use_bias:
        if kind == "gru" and cell.reset_after:
            params["bias"], params["recurrent_bias"] = cell.bias[0], cell.bias[1]
        else:
            params["bias"] = cell.bias
    recurrent_activation = getattr(cell, "recurrent_activation", None)
    return Cell(kind, cell.units, cell.activation, recurrent_activation,
                bool(getattr(cell, "reset_after", False)), layer.go_backwards,
                layer.return_sequences, bool(layer.zero_output_for_mask), align), params


def _time_major(x, cell: Cell):
    """``(N, T, ...)`` to ``(T, N, ...)`` in the order the cell reads it."""
    x = ops.moveaxis(x, 1, 0)
    return ops.flip(x, 0) if cell.go_backwards else x


def _batch_major(x, cell: Cell, sequence_output: bool):
    """Back from processing order to ``(N, T, ...)``: time order for the input's relevance
    and for an aligned output; a go_backwards layer's own sequence output stays reversed,
    as Keras returns it."""
    if cell.go_backwards and (not sequence_output or cell.align):
        x = ops.flip(x, 0)
    return ops.moveaxis(x, 0, 1)


def _mask(xs, cell: Cell):
    """The op's mask as ``(T, N, 1)`` booleans in processing order (all on without one)."""
    if len(xs) < 2:
        return ops.ones_like(_time_major(xs[0][..., :1], cell), dtype="bool")
    return _time_major(ops.expand_dims(xs[1], -1), cell) > 0.5


def _projection(x_steps, params):
    """``x W + b`` for all steps and gates at once, GRU's recurrent bias kept apart."""
    z = ops.matmul(x_steps, params["kernel"])
    return z + params["bias"] if "bias" in params else z


def _equations(cell: Cell, params, xw, h, c) -> dict:
    """The cell's equations for any leading shape (one step in the scan, or all steps at
    once from the states before them): the new ``h`` and ``c``, and the gates the relevance
    needs. ``xw`` is the input projection with its bias (:func:`_projection`)."""
    u, units = params["recurrent_kernel"], cell.units
    if cell.kind == "simple":
        return {"h": cell.activation(xw + ops.matmul(h, u)), "c": c}
    act = cell.recurrent_activation
    if cell.kind == "lstm":
        z = xw + ops.matmul(h, u)
        i, f, o = act(z[..., :units]), act(z[..., units:2 * units]), act(z[..., 3 * units:])
        g = cell.activation(z[..., 2 * units:3 * units])
        c_new = f * c + i * g
        return {"h": o * cell.activation(c_new), "c": c_new, "i": i, "f": f, "g": g}
    recurrent = ops.matmul(h, u[:, :2 * units])
    if "recurrent_bias" in params:
        recurrent = recurrent + params["recurrent_bias"][:2 * units]
    z = act(xw[..., :units] + recurrent[..., :units])
    r = act(xw[..., units:2 * units] + recurrent[..., units:])
    n = cell.activation(xw[..., 2 * units:] + _candidate_recurrent(cell, params, h, r))
    return {"h": z * h + (1 - z) * n, "c": c, "z": z, "r": r, "n": n}


def _candidate_recurrent(cell: Cell, params, h, r):
    """GRU's recurrent part of the candidate: ``r * (h U + b)`` (reset after the matmul,
    Keras' default) or ``(r * h) U``."""
    u = params["recurrent_kernel"][:, 2 * cell.units:]
    if not cell.reset_after:
        return ops.matmul(r * h, u)
    hu = ops.matmul(h, u)
    if "recurrent_bias" in params:
        hu = hu + params["recurrent_bias"][2 * cell.units:]
    return r * hu


def states(cell: Cell, xw, mask, params):
    """The states after every step, ``(T, N, H)`` in processing order (and LSTM's cells),
    from the input projection ``xw`` ``(T, N, gates * H)`` and the mask ``(T, N, 1)``."""
    zeros = ops.zeros_like(xw[0, :, :cell.units])

    def step(carry, inputs):
        h, c = carry
        xw_t, m_t = inputs
        new = _equations(cell, params, xw_t, h, c)
        h_new, c_new = ops.where(m_t, new["h"], h), ops.where(m_t, new["c"], c)
        return (h_new, c_new), (h_new, c_new)

    _, (hs, cs) = _scan(step, (zeros, zeros), (xw, mask))
    return hs, cs


def _scan(step, carry, sequences, reverse: bool = False):
    """``ops.scan`` over several sequences ``(T, N, width)``, packed into one along the
    last axis and unpacked for ``step`` (boolean ones as booleans again): Keras' TensorFlow
    scan cannot check several sequences whose length is known only at run time (a model of
    any length)."""
    widths = [s.shape[-1] for s in sequences]
    flags = [s.dtype == "bool" for s in sequences]
    dtype = next(s.dtype for s in sequences if s.dtype != "bool")
    packed = ops.concatenate([ops.cast(s, dtype) for s in sequences], axis=-1)
    ends = np.cumsum(widths).tolist()

    def unpacked(state, row):
        parts = [row[..., end - width:end] for end, width in zip(ends, widths)]
        return step(state, [p > 0.5 if flag else p for p, flag in zip(parts, flags)])
    return ops.scan(unpacked, carry, packed, reverse=reverse)


def forward(cell: Cell):
    """The op's forward pass: inputs ``[x]`` or ``[x, mask]`` (float 0/1, ``(N, T)``)."""
    def run(xs, params):
        mask = _mask(xs, cell)
        hs, _ = states(cell, _projection(_time_major(xs[0], cell), params), mask, params)
        if not cell.return_sequences:
            return hs[-1]
        if cell.zero_output_for_mask:
            hs = ops.where(mask, hs, 0.0)
        return _batch_major(hs, cell, sequence_output=True)
    return run


@dataclass(frozen=True)
class _Signal:
    """The signal's pre-activation as a linear map of ``[x, h_side]`` at every step:
    ``x W + scale * (h_side U + recurrent_bias) + bias``. The relevance of ``h_side``
    goes to the state (GRU with the reset before the matmul: ``h_side = r * h``)."""

    x_kernel: object
    h_kernel: object
    h_side: object                 # (T, N, H)
    scale: object = 1.0            # GRU's reset gate (T, N, H), a constant of the step
    bias: object = None            # (H,)
    recurrent_bias: object = None  # (H,), GRU's, reset after the matmul


def _columns(params, name, columns):
    return params[name][..., columns] if name in params else None


def _signal_and_shares(cell: Cell, xw, hs, cs, params, epsilon):
    """The signal's linear map, and the shares of the memory's relevance that the carried
    memory keeps and that go to the signal (sums split in proportion, epsilon-stabilised),
    for all steps at once from the states before each step."""
    columns = cell.signal
    h_prev, c_prev = _previous(hs), _previous(cs)
    signal = _Signal(params["kernel"][:, columns], params["recurrent_kernel"][:, columns], h_prev,
                     bias=_columns(params, "bias", columns))
    if cell.kind == "simple":
        return signal, 0.0, 1.0
    gates = _equations(cell, params, xw, h_prev, c_prev)
    if cell.kind == "lstm":
        total = stabilise(cs, epsilon)
        return signal, gates["f"] * c_prev / total, gates["i"] * gates["g"] / total
    reset, update, total = gates["r"], gates["z"], stabilise(hs, epsilon)
    if cell.reset_after:
        signal = _Signal(signal.x_kernel, signal.h_kernel, h_prev, reset, signal.bias,
                         _columns(params, "recurrent_bias", columns))
    else:
        signal = _Signal(signal.x_kernel, signal.h_kernel, reset * h_prev, bias=signal.bias)
    return signal, update * h_prev / total, (1 - update) * gates["n"] / total


def _term_pass(term, signal: _Signal, x_steps, use_bias: bool):
    """One term's modified pre-activation of the signal, with its inputs and kernels."""
    x_in, h_in = term.input(x_steps, None, None), term.input(signal.h_side, None, None)
    x_kernel, h_kernel = term.kernel(signal.x_kernel), term.kernel(signal.h_kernel)
    h_part = ops.matmul(h_in, h_kernel)
    if use_bias and signal.recurrent_bias is not None:
        h_part = h_part + term.bias(signal.recurrent_bias)
    z = ops.matmul(x_in, x_kernel) + signal.scale * h_part
    if use_bias and signal.bias is not None:
        z = z + term.bias(signal.bias)
    return z, x_in, h_in, x_kernel, h_kernel


def _upstream(cell: Cell, relevance, mask, steps):
    """The output's relevance as ``(T, N, H)`` in processing order (only the last step's
    for a layer that returns its final state); ``steps`` may be known only at run time
    (a model of any sequence length)."""
    if not cell.return_sequences:
        last = ops.reshape(ops.arange(steps) == steps - 1, (-1, 1, 1))
        return ops.where(last, relevance[None], 0.0)
    up = _time_major(relevance, cell) if cell.align else ops.moveaxis(relevance, 1, 0)
    return ops.where(mask, up, 0.0) if cell.zero_output_for_mask else up


def relevance(cell: Cell, rule: LinearRule, epsilon: float, xs, output_relevance, params):
    """The relevance of the op's input ``(N, T, D)``, given its output's (see the module)."""
    x_steps = _time_major(xs[0], cell)
    mask, xw = _mask(xs, cell), _projection(x_steps, params)
    hs, cs = states(cell, xw, mask, params)
    signal, keep, to_signal = _signal_and_shares(cell, xw, hs, cs, params, epsilon)
    passes = [_term_pass(term, signal, x_steps, rule.bias) for term in rule.terms]
    zs, h_ins = [p[0] for p in passes], [p[2] for p in passes]
    h_kernels = [ops.transpose(p[4]) for p in passes]
    upstream = _upstream(cell, output_relevance, mask, ops.shape(x_steps)[0])
    scale = signal.scale * ops.ones_like(upstream)
    keep, to_signal = keep * ops.ones_like(upstream), to_signal * ops.ones_like(upstream)
    separate_memory = cell.kind == "lstm"

    def step(carry, inputs):
        state, memory = carry[:2]
        up, m, keep_t, to_signal_t, scale_t, *rest = inputs
        z_t, h_in_t = rest[:len(zs)], rest[len(zs):]
        total = up + state
        held = memory + total if separate_memory else total
        grads = rule.mapper(to_signal_t * held, list(z_t))
        vjps = [None if g is None else ops.matmul(g * scale_t, k) for g, k in zip(grads, h_kernels)]
        to_state = rule.reducer(h_in_t, vjps)
        kept = keep_t * held
        new_state, new_memory = (to_state, kept) if separate_memory else (to_state + kept, memory)
        grads = [ops.zeros_like(up) if g is None else ops.where(m, g, 0.0) for g in grads]
        carry = (ops.where(m, new_state, total), ops.where(m, new_memory, memory), *grads)
        return carry, carry   # Keras' scan on TensorFlow outputs what it carries

    zeros = ops.zeros_like(upstream[0])
    _, outputs = _scan(step, (zeros,) * (2 + len(zs)),
                       (upstream, mask, keep, to_signal, scale, *zs, *h_ins), reverse=True)
    grads = outputs[2:]
    x_relevance = rule.reducer([p[1] for p in passes],
                               [ops.matmul(g, ops.transpose(p[3])) for g, p in zip(grads, passes)])
    return [_batch_major(x_relevance, cell, sequence_output=False)] + [None] * (len(xs) - 1)


def _previous(seq):
    """The sequence shifted by one step: the state before each step (zeros first)."""
    return ops.concatenate([ops.zeros_like(seq[:1]), seq[:-1]], 0)
