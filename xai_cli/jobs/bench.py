"""`xai bench`: images per second per method, as ratios to the plain gradient and the forward pass.

Every figure is the median of several timed repetitions after warm-up (compilation),
on the same model and batch in the same process, so the ratios hold on a noisy
machine. The plain gradient is the Keras backend's own autodiff of the target logit; the
evaluate figure compares a perturbation run with the bare forward passes it needs.
The end-to-end figures run the explain job itself on generated photos, once with a
trivial model and once with the bench's model, to show whether the input pipeline
(decode, render, write) or the model bounds a real job. For a text model of any length,
the bucketing figure explains documents of mixed lengths as a job does (sorted into
length buckets) and padded to the longest, as a fixed-length model would need.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from keras import ops

from ..engine import backends, composites
from ..engine.explainers import make_explainer
from ..engine.graph import build_graph
from ..engine.methods import METHODS, method_params
from ..engine.propagation import Propagator, Scorer
from ..errors import XaiError
from ..io import preprocess
from ..kinds import of as kind_of
from ..models.loading import load
from ..session import Options, Report, open_session
from . import explain

ARCHITECTURES = {
    "vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet50v2": "ResNet50V2",
    "mobilenet": "MobileNet", "mobilenetv2": "MobileNetV2", "densenet121": "DenseNet121",
    "inceptionv3": "InceptionV3", "xception": "Xception", "efficientnetb0": "EfficientNetB0",
}
CLIP_FRAMES = 16   # --arch c3d's clips (Tran et al. 2015)
END_TO_END_BATCHES = 4
MODEL_BOUND = 0.8  # below this share of the trivial model's rate, the model bounds a job


def _model(model_path, arch, input_size):
    if model_path:
        return load(model_path)
    import keras
    if arch not in (*ARCHITECTURES, "c3d"):
        raise XaiError(f"unknown --arch '{arch}'; expected one of {', '.join(ARCHITECTURES)}, c3d")
    keras.utils.set_random_seed(0)
    if arch == "c3d":
        return _c3d(input_size or 112)
    return getattr(keras.applications, ARCHITECTURES[arch])(
        weights=None, input_shape=(input_size or 224, input_size or 224, 3), classes=1000)


def _c3d(size: int):
    """C3D (Tran et al. 2015), the video network of 3x3x3 convolutions: eight Conv3D in
    five blocks, two dense layers of 4,096, 487 classes (Sports-1M); random weights."""
    import keras
    layers = keras.layers
    inp = layers.Input((CLIP_FRAMES, size, size, 3))
    h = inp
    for block, (filters, convs) in enumerate(((64, 1), (128, 1), (256, 2), (512, 2), (512, 2))):
        for _ in range(convs):
            h = layers.Conv3D(filters, 3, padding="same", activation="relu")(h)
        if block == 4:
            h = layers.ZeroPadding3D((0, 1, 1))(h)
        h = layers.MaxPooling3D((1, 2, 2) if block == 0 else 2)(h)
    h = layers.Flatten()(h)
    for _ in range(2):
        h = layers.Dense(4096, activation="relu")(h)
    return keras.Model(inp, layers.Dense(487)(h), name="c3d")


def _medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, timed in turn, round after round, after two
    warm-up calls each (tracing, compilation, allocator): a change in a shared machine's
    load then hits every figure alike, and their ratios hold."""
    for fn in fns.values():
        fn()
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _peak_memory_mb() -> float:
    on_gpu = backends.current().peak_memory_mb()
    if on_gpu is not None:
        return on_gpu
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run(model_path: str | None, arch: str | None, input_size: int, batch_size: int,
        methods: tuple[str, ...], configs: tuple[str, ...], repeats: int = 5,
        evaluate_steps: int = 16, end_to_end: bool = True, xla: bool = False,
        autodiff: bool = False, params: tuple[str, ...] = ()) -> dict:
    """Time forward, gradient, each method (LRP once per config), evaluate and, unless
    ``end_to_end`` is false, the explain job with the first method (and config). With
    ``xla`` (TensorFlow; JAX always compiles with XLA), the forward pass and every method
    not random are timed XLA-compiled too; with ``autodiff``, every method is timed with the
    backend's autodiff in place of the transposed-kernel VJPs too. ``params``: the methods'
    parameters, as ``--param`` gives them."""
    given = method_params(params)
    backend = backends.current()
    xla = xla and backend.NAME == "tensorflow"
    graph = build_graph(_model(model_path, arch, input_size))
    kind = kind_of(graph)
    batch = kind.synthetic(batch_size, np.random.default_rng(0))
    inputs = [batch.x, *batch.named.values()]
    targets = np.zeros(batch_size, np.int32)
    index = np.arange(batch_size, dtype=np.int64)
    forward = Propagator(graph, [])

    def plain_forward(x, *named):
        return forward.forward(x, dict(zip(graph.named, named)))[graph.output]

    def plain_gradient(x, *named):
        logits, pullback = backend.vjp(lambda xs: plain_forward(xs[0], *named), [x])
        first_class = ops.zeros_like(logits[:, 0], dtype="int32")
        return pullback(ops.one_hot(first_class, graph.num_classes))[0]

    compiled, gradient = (backend.compile(fn, graph.signature, jit=False)
                          for fn in (plain_forward, plain_gradient))
    fns = {"forward": lambda: compiled(*inputs), "gradient": lambda: gradient(*inputs)}
    if xla:
        with_xla = backend.compile(plain_forward, graph.signature, jit=True)
        fns["forward +xla"] = lambda: with_xla(*inputs)
    unit = preprocess.resolve("unit")
    runs = [(f"{method}:{config}" if config else method, method, config) for method in methods
            for config in (configs if METHODS[method].uses_composite else (None,))]
    first = None
    variants = [("", graph, False)] + [(" +xla", graph, True)] * xla \
        + [(" +autodiff", _without_transposes(graph), False)] * autodiff
    for name, method, config in runs:
        for suffix, variant, jit in variants:
            if jit and METHODS[method].random:
                continue
            composite = composites.load(config or kind.default_config)
            explainer = make_explainer(variant, METHODS[method], composite, unit, jit_compile=jit,
                                       params=given.get(method))
            fns[name + suffix] = lambda e=explainer: batch.explain(e, targets, index)
            first = first or explainer
    figures = _medians(fns, repeats)
    timed = kind.timed_evaluation(Scorer(graph), batch, evaluate_steps)
    if timed is not None:
        curves = _medians(dict(zip(("curves", "forwards"), timed)), repeats)
    result = {
        "backend": backend.NAME, "device": _device_name(), "model": model_path or arch,
        "batch_size": batch_size, "input_shape": list(graph.input_shape), "inputs": kind.plural,
        "repeats": repeats,
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "methods": {name: {**_rate(t, batch_size),
                           "ratio_to_gradient": round(t / figures["gradient"], 3),
                           "ratio_to_forward": round(t / figures["forward"], 3)}
                    for name, t in figures.items()},
        "evaluate": None if timed is None else {
            "steps": evaluate_steps, "seconds": round(curves["curves"], 5),
            "forward_seconds": round(curves["forwards"], 5),
            "ratio_to_forward": round(curves["curves"] / curves["forwards"], 3)},
        "bucketing": _bucketing(kind, runs[0][0], first, batch_size, repeats),
        "end_to_end": None,
    }
    if end_to_end:
        result["end_to_end"] = _end_to_end(kind, *runs[0], batch_size, repeats, params)
    return result


def _without_transposes(graph):
    """``graph`` with the backend's autodiff for every VJP (no transposed-kernel maps)."""
    return dataclasses.replace(graph, ops=[dataclasses.replace(op, input_vjp=None)
                                           for op in graph.ops])


def _rate(seconds: float, count: int, unit: str = "images") -> dict:
    return {"seconds": round(seconds, 5), f"{unit}_per_s": round(count / seconds, 2)}


def _bucketing(kind, name, explainer, batch_size, repeats) -> dict | None:
    """Documents of mixed lengths, a job's batch of them, explained in length buckets and
    padded to the longest (None where the kind's inputs have one shape)."""
    count = kind.window(batch_size)
    made = kind.bucketing(count, np.random.default_rng(1), batch_size)
    if made is None:
        return None
    targets, index = np.zeros(count, np.int32), np.arange(count, dtype=np.int64)
    bucketed, padded, described = made
    seconds = _medians({key: lambda b=batch: b.explain(explainer, targets, index)
                        for key, batch in (("bucketed", bucketed), ("padded_to_longest", padded))},
                       repeats)
    return {"method": name, "documents": count, **described,
            **{key: _rate(t, count, "documents") for key, t in seconds.items()},
            "speedup": round(seconds["padded_to_longest"] / seconds["bucketed"], 3)}


def _end_to_end(kind, name, method, config, batch_size, repeats, params) -> dict | None:
    """The explain job over made-up input files, with a trivial model and with the kind's
    model: the trivial model's rate is what decoding, rendering and writing allow at most
    (None where the kind makes no such files)."""
    files = END_TO_END_BATCHES * batch_size
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null:
        folder = Path(tmp)
        made = kind.bench_files(folder, files)
        if made is None:
            return None
        model, inputs, described = made
        session = open_session(Options(str(model), (str(inputs),), rules=config,
                                       batch_size=batch_size, out=folder / "out", params=params))
        seconds = _medians({key: _job(dataclasses.replace(session, graph=g), method, null)
                            for key, g in (("trivial_model", session.graph),
                                           ("model", kind.graph))}, repeats)
    return {"method": name, "files": files, **described,
            **{key: _rate(t, files) for key, t in seconds.items()}}


def _job(session, method, null):
    """One explain job over the session's inputs, JSON lines to the ``null`` stream.
    Compiled once, as a long job is, so that the figure is a rate and not the tracing."""
    report = Report(null, null, fail_fast=True)  # a failed input stops it, not skews it
    explainers = session.explainers((method,), report)
    session.explainers = lambda *_: explainers
    return lambda: explain.run(session, explain.ExplainOptions((method,)), report)


def _device_name() -> str:
    gpu = backends.current().device_name()
    if gpu:
        return gpu
    return f"CPU ({_cpu_model()}, {len(os.sched_getaffinity(0))} cores)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def table(result: dict) -> str:
    """The figures as a text table."""
    lines = [f"{result['model']}  input {tuple(result['input_shape'])}  batch {result['batch_size']}"
             f"  on {result['device']} ({result['backend']})  (median of {result['repeats']}; peak memory "
             f"{result['peak_memory_mb']} MB)",
             f"{'method':40s} {result['inputs'] + '/s':>10s} {'x gradient':>11s} {'x forward':>10s}"]
    for name, f in result["methods"].items():
        lines.append(f"{name:40s} {f['images_per_s']:10.2f} {f['ratio_to_gradient']:11.3f}"
                     f" {f['ratio_to_forward']:10.3f}")
    e = result["evaluate"]
    if e:
        lines.append(f"evaluate, {e['steps']} steps: {e['seconds']:.3f} s = "
                     f"{e['ratio_to_forward']:.3f} x its forward passes ({e['forward_seconds']:.3f} s)")
    mix = result["bucketing"]
    if mix:
        lines.append(f"{mix['documents']} documents of {mix['lengths'][0]}-{mix['lengths'][1]} "
                     f"tokens, {mix['method']}: {mix['bucketed']['documents_per_s']:.2f} "
                     f"documents/s in length buckets, {mix['padded_to_longest']['documents_per_s']:.2f}"
                     f" padded to the longest ({mix['speedup']:.2f}x)")
    job = result["end_to_end"]
    if job:
        trivial, model = job["trivial_model"]["images_per_s"], job["model"]["images_per_s"]
        lines += [f"end to end, explain with {job['method']} on {job['files']} {job['what']}:",
                  f"  trivial model: {trivial:.2f} {result['inputs']}/s (decode+render+write bound)",
                  f"  {result['model']}: {model:.2f} {result['inputs']}/s ("
                  f"{'model' if model < MODEL_BOUND * trivial else 'input pipeline'} bound)"]
    return "\n".join(lines)
