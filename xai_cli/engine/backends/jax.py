"""The JAX backend: ``jax.jit`` (always: op by op, JAX is slow), ``jax.vjp``,
``ensure_compile_time_eval``, threefry keys."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import example

NAME = "jax"


def start() -> None:
    jax.devices()


def constant(value):
    """A copy: Keras' JAX trainer donates its variables' buffers (``predict`` deletes
    them), which would leave the explainer holding deleted arrays."""
    return jnp.array(getattr(value, "value", value), copy=True)


def outside_trace():
    return jax.ensure_compile_time_eval()


def vjp(fn, inputs: list):
    z, pullback = jax.vjp(lambda *xs: fn(list(xs)), *inputs)
    return z, lambda grad: list(pullback(grad))


def compile(fn, signature: list, jit: bool):
    """``jax.jit(fn)``, traced now for a batch of one. XLA compiles once per batch shape
    (and sequence length, for a model of any length: documents come in a few bucket
    lengths), so batches are padded to a few sizes (:func:`padded_size`) and the padding dropped:
    every input is explained on its own, and a job's short last batch, or evaluate's
    chunks of perturbed copies, reuse a compiled size instead of compiling anew."""
    compiled = jax.jit(fn)
    jax.eval_shape(compiled, *(jax.ShapeDtypeStruct((1, *example(shape)), _dtype(dtype))
                               for shape, dtype in signature))

    def run(*arrays):
        n = len(arrays[0])
        size = padded_size(n)
        out = compiled(*(jnp.asarray(_pad(a, size), _dtype(s[1])) for a, s in zip(arrays, signature)))
        if isinstance(out, (tuple, list)):
            return tuple(np.asarray(t[:n]) for t in out)
        return np.asarray(out[:n])
    return run


def padded_size(n: int) -> int:
    """The next power of two up to 64, then the next multiple of 64."""
    return 1 << (n - 1).bit_length() if n <= 64 else -(-n // 64) * 64


def _pad(array, size: int):
    array = np.asarray(array)
    if len(array) == size:
        return array
    return np.concatenate([array, np.zeros((size - len(array), *array.shape[1:]), array.dtype)])


def _dtype(name: str):
    """64-bit integers are 32-bit unless JAX runs with x64 (the default does not)."""
    return jnp.int32 if name == "int64" and not jax.config.jax_enable_x64 else name


def normal(shape, index, seed: int, sample):
    """A threefry key per input: ``fold_in(fold_in(key(seed), sample), index)``."""
    key = jax.random.fold_in(jax.random.key(seed), sample)
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), shape))(index)


def gpu_available() -> bool:
    return any(d.platform == "gpu" for d in jax.devices())


def device_name() -> str | None:
    device = jax.devices()[0]
    return None if device.platform == "cpu" else device.device_kind


def peak_memory_mb() -> float | None:
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    return stats["peak_bytes_in_use"] / 2**20 if stats else None
