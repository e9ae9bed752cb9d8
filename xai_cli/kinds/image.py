"""Images ``(H, W, C)``: picture files and ``.npy`` arrays in, heatmap pictures out.

Pictures are decoded, fitted to the model's size and preprocessed by
:mod:`~xai_cli.io.inputs`; a relevance map is drawn with its channels summed. The
perturbation unit of ``xai evaluate`` is a patch of ``--perturb HxW`` pixels (region
perturbation, :mod:`~xai_cli.measures.faithfulness`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import PIL.Image

from ..catalogue import REPLACEMENTS
from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import inputs, preprocess, render
from ..io.outputs import atomic_write, out_path, save_npy, save_png, save_thumbnail
from ..measures import faithfulness, perturbation
from .base import Batch, ExplainOptions, InputKind

PHOTO_SIZE = (500, 375)   # width, height of xai bench's made-up photos


def pixels(relevance: np.ndarray) -> np.ndarray:
    """A relevance map ``(H, W, C)`` (or a clip's, ``(T, H, W, C)``) as the picture shows
    it: channels summed."""
    return np.asarray(relevance, np.float64).sum(axis=-1)


class Image(InputKind):
    name = "image"
    plural = "images"
    audience = "images"
    shape = "an image (H, W, C)"
    default_config = "context-gamma-box"
    default_preprocess = preprocess.DEFAULT
    commands = ("explain", "evaluate", "spray", "tune", "cluster")
    replacements = REPLACEMENTS
    patch, patch_axes = (9, 9), "HxW"   # xai evaluate's default perturbation unit
    perturbed_by: str | None = None   # image kinds that take no image-only measures: their unit

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is None and len(graph.input_shape) == 3

    @property
    def article(self) -> str:
        return "an image model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        self.refuse_others_options(options)
        self.preprocessing = preprocess.first_given(composite.preprocess, options.preprocess,
                                                    options.scale, options.mean, options.std,
                                                    self.default_preprocess)
        self.resize = options.resize
        return self.preprocessing

    def discover(self, args, stdin):
        return inputs.discover(args, stdin)

    def reader(self):
        return functools.partial(inputs.load, shape=self.graph.input_shape,
                                 preprocessing=self.preprocessing, resize=self.resize)

    def convert(self, x, batch_size: int = 32) -> Batch:
        axes = self.shape[self.shape.index("("):]
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and any(isinstance(i, str) for i in x)):
            raise XaiError(f"text does not fit the model's input {self.graph.input_shape}: "
                           f"{self.article} takes arrays, one {axes} or a batch (N, {axes[1:]}")
        try:
            x = np.asarray(x, np.float32)
        except (TypeError, ValueError):
            raise XaiError(f"inputs of type {type(x).__name__} do not fit the model's input "
                           f"{self.graph.input_shape}: give one {axes} or a batch (N, {axes[1:]} "
                           "of numbers") from None
        one = x.shape == self.graph.input_shape
        if one:
            x = x[None]
        if x.shape[1:] != self.graph.input_shape:
            raise XaiError(f"inputs of shape {x.shape} do not fit the model's input "
                           f"{self.graph.input_shape}: give one {axes} or a batch (N, {axes[1:]}")
        return Batch([], x, unbatched=one)

    def synthetic(self, count: int, rng: np.random.Generator) -> Batch:
        """Uniform noise in [0, 1], of the model's input shape."""
        return Batch([], rng.uniform(0, 1, (count, *self.graph.input_shape)).astype(np.float32))

    def timed_evaluation(self, scorer, batch: Batch, steps: int):
        """Region perturbation with patches of 1/8 of each side (of a clip, 1/4 of its
        frames), random order, mean fill."""
        x = batch.x
        ids, patches = perturbation.patch_ids(x.shape[1:-1], self._bench_patch(x.shape[1:-1]))
        rng = [np.random.default_rng(i) for i in range(len(x))]
        ranks = perturbation.pixel_ranks(
            perturbation.patch_order(np.zeros((len(x), patches)), "random", rng), ids)
        replacement = perturbation.replacement_values(x, "mean", None, rng, sigma=1)
        rows = len(x) * (steps + 1)
        copies = np.repeat(x, steps + 1, axis=0)

        def forwards():
            for start in range(0, rows, 256):
                scorer(copies[start:start + 256])

        def curves():
            perturbation.perturbation_curves(lambda b, i: scorer(b)[:, 0], x, ranks,
                                             replacement, steps)
        return curves, forwards

    @staticmethod
    def _bench_patch(shape):
        return tuple(max(1, n // (4 if axis < len(shape) - 2 else 8)) for axis, n in enumerate(shape))

    def bench_files(self, folder: Path, count: int):
        """Noise pictures of a photo's size (decoding and resizing cost what they do on
        photos), JPEG and PNG in turn; one tiny conv, pooling and a dense layer."""
        import keras
        images = folder / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(count):
            noise = rng.integers(0, 256, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3), np.uint8)
            PIL.Image.fromarray(noise).save(images / f"{i:04d}.{('jpg', 'png')[i % 2]}")
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(self.graph.input_shape),
                                  keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
        model.save(folder / "trivial.keras")
        return folder / "trivial.keras", images, {
            "photo_size": list(PHOTO_SIZE), "what": "JPEG/PNG files of {}x{}".format(*PHOTO_SIZE)}

    def check_explain(self, options: ExplainOptions) -> None:
        pass

    def output_names(self, stem: str, options: ExplainOptions) -> list[str]:
        names = []
        for method in options.methods:
            names.append(f"{stem}.{method}.png")
            if options.overlay:
                names.append(f"{stem}.{method}.overlay.png")
            if options.save_raw:
                names.append(f"{stem}.{method}.npy")
        if options.grid:
            names.append(f"{stem}.grid.png")
        return [*names, f"thumbs/{stem}.jpg"]

    def record_fields(self, sample: inputs.Sample, maps) -> dict:
        return {"resize": sample.fit.mode, "source_size": list(sample.fit.source_size)}

    def write(self, out: Path, sample: inputs.Sample, maps: Mapping[str, np.ndarray],
              options: ExplainOptions, caption: str) -> list[str]:
        stem, written = sample.item.stem, []

        def save(suffix, saver, data):
            path = out_path(out, stem, suffix)
            saver(path, data)
            written.append(str(path))

        style, panels = options.style, []
        for method, relevance in maps.items():
            signed, summed = METHODS[method].signed, pixels(relevance)
            heat = render.heatmap(summed, signed, style)
            save(f".{method}.png", save_png, heat)
            if options.overlay:
                save(f".{method}.overlay.png", save_png,
                     render.overlay(heat, sample.display, summed, signed, style))
            if options.save_raw:
                save(f".{method}.npy", save_npy, relevance.astype(np.float32))
            panels.append(render.Panel(method, heat, signed, render.scale(summed, style.clip),
                                       style.cmap(signed)))
        if options.grid:
            path = out_path(out, stem, ".grid.png")
            atomic_write(path, lambda f: render.grid(sample.display, panels, f, title=stem))
            written.append(str(path))
        written.append(save_thumbnail(out, stem, sample.display))
        return written

    def thumbnails(self, out: Path, sample: inputs.Sample) -> list[str]:
        return [save_thumbnail(out, sample.item.stem, sample.display)]

    def evaluation(self, options, masks=False, heatmaps=False):
        if self.perturbed_by and (masks or heatmaps or options.sanity):
            given = "--masks" if masks else "--save-heatmaps" if heatmaps else "--sanity"
            raise XaiError(f"{given} is for image models; {self.article}'s {self.plural} are "
                           f"evaluated by {self.perturbed_by}")
        if options.perturb is None:
            options = dataclasses.replace(options, perturb=self.patch)
        elif len(options.perturb) == 1:   # one size: the same on every axis
            options = dataclasses.replace(options, perturb=options.perturb * len(self.patch))
        if len(options.perturb) != len(self.patch):
            raise XaiError(f"--perturb {'x'.join(map(str, options.perturb))} does not fit "
                           f"{self.plural}: theirs is {self.patch_axes} ({'x'.join(map(str, self.patch))} "
                           "by default)")
        options = super().evaluation(options, masks, heatmaps)
        self._valid_range(options)   # refused before anything is written
        return options

    def _valid_range(self, options):
        return faithfulness.checked_valid_range(self.preprocessing, self.graph.input_shape[-1],
                                                options)

    def steps(self, options) -> int:
        return faithfulness.steps_for(self.graph.input_shape[:-1], options)

    def evaluate_batch(self, explainers, scorer, batch: Batch, targets, index, options, seed):
        return faithfulness.evaluate_batch(explainers, scorer, batch.x, targets, index, options,
                                           self._valid_range(options), seed)
