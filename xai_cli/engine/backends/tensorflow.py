"""The TensorFlow backend: ``tf.function`` (XLA on request), ``GradientTape``, ``init_scope``."""

from __future__ import annotations

import tensorflow as tf

NAME = "tensorflow"


def start() -> None:
    tf.config.list_physical_devices()
    tf.zeros(1)  # initialises the devices, which logs once more
    tf.get_logger().setLevel("ERROR")  # one trace per method reads as "retracing"


def constant(value):
    """Variables stay variables: a ``tf.function`` reads them by handle, without a copy."""
    return value if isinstance(value, tf.Variable) else tf.convert_to_tensor(value)


def outside_trace():
    return tf.init_scope()


def vjp(fn, inputs: list):
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(inputs)
        z = fn(inputs)
    return z, lambda grad: tape.gradient(z, inputs, output_gradients=grad)


def compile(fn, signature: list, jit: bool):
    """``fn`` as one ``tf.function`` for any batch size (and any sequence length where the
    signature has None), traced now."""
    spec = [tf.TensorSpec((None, *shape), dtype) for shape, dtype in signature]
    compiled = tf.function(fn, input_signature=spec, reduce_retracing=True, jit_compile=jit,
                           autograph=False)   # the engine has no Python control flow on tensors
    compiled.get_concrete_function()

    def run(*arrays):
        out = compiled(*(tf.constant(a, s.dtype) for a, s in zip(arrays, spec)))
        return tuple(t.numpy() for t in out) if isinstance(out, (tuple, list)) else out.numpy()
    return run


def normal(shape, index, seed: int, sample):
    """``tf.random.stateless_normal`` per input, seeded by ``(index, seed * 1000003 + sample)``."""
    index = tf.cast(index, tf.int64)
    seeds = tf.stack([index, tf.fill(tf.shape(index), tf.cast(seed, tf.int64) * 1_000_003
                                     + tf.cast(sample, tf.int64))], axis=1)
    return tf.map_fn(lambda s: tf.random.stateless_normal(shape, s), seeds,
                     fn_output_signature=tf.float32)


def gpu_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def device_name() -> str | None:
    """The GPU's name, or None on the CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") \
        if gpus else None


def peak_memory_mb() -> float | None:
    """Peak GPU memory, or None on the CPU (the caller reads the process's)."""
    if not gpu_available():
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
