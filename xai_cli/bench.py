"""`xai bench`: images per second per method, as a ratio to the plain gradient.

Every figure is the median of several timed repetitions after warm-up (compilation),
on the same model and batch in the same process, so the ratios hold on a noisy
machine. The plain gradient is TensorFlow's own autodiff of the target logit; the
evaluate figure compares a perturbation run with the bare forward passes it needs.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import numpy as np
import tensorflow as tf

from . import composites, perturbation as pa, preprocess
from .engine import Propagator, Scorer
from .errors import XaiError
from .explainers import make_explainer
from .methods import METHODS
from .model import build_graph, load

ARCHITECTURES = {
    "vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet50v2": "ResNet50V2",
    "mobilenet": "MobileNet", "mobilenetv2": "MobileNetV2", "densenet121": "DenseNet121",
    "inceptionv3": "InceptionV3", "xception": "Xception", "efficientnetb0": "EfficientNetB0",
}


def _model(model_path, arch, input_size):
    if model_path:
        return load(model_path)
    import keras
    if arch not in ARCHITECTURES:
        raise XaiError(f"unknown --arch '{arch}'; expected one of {', '.join(ARCHITECTURES)}")
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, ARCHITECTURES[arch])(
        weights=None, input_shape=(input_size, input_size, 3), classes=1000)


def _median_seconds(fn, repeats: int) -> float:
    fn()
    fn()  # warm-up: tracing, compilation, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_memory_mb() -> float:
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run(model_path: str | None, arch: str | None, input_size: int, batch_size: int,
        methods: tuple[str, ...], configs: tuple[str, ...], repeats: int = 5,
        evaluate_steps: int = 16) -> dict:
    """Time forward, gradient, each method (LRP once per config) and evaluate."""
    graph = build_graph(_model(model_path, arch, input_size))
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (batch_size, *graph.input_shape))
                    .astype(np.float32))
    targets = tf.zeros(batch_size, tf.int32)
    index = tf.range(batch_size, dtype=tf.int64)
    forward = Propagator(graph, [])
    spec = [tf.TensorSpec((None, *graph.input_shape), tf.float32)]

    @tf.function(input_signature=spec)
    def plain_forward(batch):
        return forward.forward(batch)[graph.output]

    @tf.function(input_signature=spec)
    def plain_gradient(batch):
        with tf.GradientTape() as tape:
            tape.watch(batch)
            score = tf.reduce_sum(forward.forward(batch)[graph.output][:, 0])
        return tape.gradient(score, batch)

    figures = {"forward": _median_seconds(lambda: plain_forward(x).numpy(), repeats),
               "gradient": _median_seconds(lambda: plain_gradient(x).numpy(), repeats)}
    unit = preprocess.resolve("unit")
    for method in methods:
        for config in (configs if METHODS[method].uses_composite else (None,)):
            explainer = make_explainer(graph, METHODS[method], composites.load(config), unit)
            name = f"{method}:{config}" if config else method
            figures[name] = _median_seconds(
                lambda e=explainer: e._compiled(x, targets, index)[0].numpy(), repeats)
    evaluate, forwards = _evaluate_figures(graph, x.numpy(), evaluate_steps, repeats)
    gradient = figures["gradient"]
    return {
        "device": _device_name(), "model": model_path or arch, "batch_size": batch_size,
        "input_shape": list(graph.input_shape), "repeats": repeats,
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "methods": {name: {"seconds": round(t, 5), "images_per_s": round(batch_size / t, 2),
                           "ratio_to_gradient": round(t / gradient, 3)}
                    for name, t in figures.items()},
        "evaluate": {"steps": evaluate_steps, "seconds": round(evaluate, 5),
                     "forward_seconds": round(forwards, 5),
                     "ratio_to_forward": round(evaluate / forwards, 3)},
    }


def _evaluate_figures(graph, x, steps, repeats) -> tuple[float, float]:
    """Perturbation curves for one batch vs the bare forward passes of the same copies."""
    scorer = Scorer(graph)
    ids, patches = pa.patch_ids(x.shape[1:3], (max(1, x.shape[1] // 8),) * 2)
    rng = [np.random.default_rng(i) for i in range(len(x))]
    ranks = pa.pixel_ranks(pa.patch_order(np.zeros((len(x), patches)), "random", rng), ids)
    replacement = pa.replacement_values(x, "mean", None, rng, sigma=1)
    rows = len(x) * (steps + 1)
    copies = np.repeat(x, steps + 1, axis=0)

    def forwards():
        for start in range(0, rows, 256):
            scorer(copies[start:start + 256])

    def curves():
        pa.perturbation_curves(lambda b, i: scorer(b)[:, 0], x, ranks, replacement, steps)

    return _median_seconds(curves, repeats), _median_seconds(forwards, repeats)


def _device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU ({_cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def table(result: dict) -> str:
    """The figures as a text table."""
    lines = [f"{result['model']}  input {tuple(result['input_shape'])}  batch {result['batch_size']}"
             f"  on {result['device']}  (median of {result['repeats']}; peak memory "
             f"{result['peak_memory_mb']} MB)",
             f"{'method':40s} {'images/s':>10s} {'x gradient':>11s}"]
    for name, f in result["methods"].items():
        lines.append(f"{name:40s} {f['images_per_s']:10.2f} {f['ratio_to_gradient']:11.3f}")
    e = result["evaluate"]
    lines.append(f"evaluate, {e['steps']} steps: {e['seconds']:.3f} s = {e['ratio_to_forward']:.3f} x "
                 f"its forward passes ({e['forward_seconds']:.3f} s)")
    return "\n".join(lines)
