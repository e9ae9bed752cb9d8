"""Clips ``(T, H, W, C)`` of a video classifier: clips in, frame heatmaps and relevance over
time out.

Clips are found and decoded by :mod:`~xai_cli.io.clips` (folders of frames, GIFs, videos,
``.npy``), their frames chosen by ``--frames``/``--stride`` and preprocessed as images.
A clip's explanation is drawn by :mod:`~xai_cli.io.clipmaps`: a grid of its frames with a
row of heatmaps per method, an animated heatmap per method and relevance over time. The
perturbation unit of ``xai evaluate`` is a space-time patch ``--perturb TxHxW``; a patch
of one whole frame (``1xHxW``) deletes frames, most relevant first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..catalogue import CLIP_REPLACEMENTS
from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import clipmaps, clips, inputs, preprocess, render
from ..io.outputs import atomic_write, out_path, save_csv, save_npy
from ..measures import faithfulness
from .base import Batch, ExplainOptions, InputKind

TOP_FRAMES = 3
DEFAULT_PATCH = (2, 9, 9)


def frame_maps(relevance: np.ndarray) -> np.ndarray:
    """A clip's relevance ``(T, H, W, C)`` as its frames' maps: channels summed."""
    return np.asarray(relevance, np.float64).sum(axis=-1)


class Clip(InputKind):
    name = "clip"
    plural = "clips"
    audience = "video models"
    shape = "a clip (T, H, W, C)"
    default_config = "context-gamma-box"
    commands = ("explain", "evaluate")
    replacements = CLIP_REPLACEMENTS

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is None and len(graph.input_shape) == 4

    @property
    def article(self) -> str:
        return "a video model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        given = [name for name, value in (("lines", options.lines), ("vocab", options.vocab),
                                          ("max-tokens", options.max_tokens)) if value]
        if given:
            raise XaiError(f"--{given[0]} is for text models; "
                           f"model input shape {self.graph.input_shape} is a video model's")
        self.selection = clips.Selection.parse(options.frames, options.stride)
        self.preprocessing = preprocess.first_given(composite.preprocess, options.preprocess,
                                                    options.scale, options.mean, options.std)
        self.resize = options.resize
        return self.preprocessing

    def discover(self, args, stdin):
        return clips.discover(args, stdin)

    def load(self, item: inputs.InputItem) -> clips.Clip:
        return clips.load(item, self.graph.input_shape, self.preprocessing, self.selection, self.resize)

    def convert(self, x, batch_size: int = 32) -> Batch:
        shape = self.graph.input_shape
        expected = "give one clip (T, H, W, C) or a batch (N, T, H, W, C) of numbers, " \
                   f"(T, H, W, C) = {shape}"
        try:
            x = np.asarray(x, np.float32)
        except (TypeError, ValueError):
            raise XaiError(f"inputs of type {type(x).__name__} do not fit the video model's "
                           f"input: {expected}") from None
        one = x.shape == shape
        if one:
            x = x[None]
        if x.shape[1:] != shape:
            raise XaiError(f"inputs of shape {x.shape} do not fit the video model's input: {expected}")
        return Batch([], x, unbatched=one)

    def synthetic(self, count: int, rng: np.random.Generator) -> Batch:
        """Uniform noise in [0, 1]."""
        return Batch([], rng.uniform(0, 1, (count, *self.graph.input_shape)).astype(np.float32))

    def check_explain(self, options: ExplainOptions) -> None:
        pass

    def output_names(self, stem: str, options: ExplainOptions) -> list[str]:
        names = [f"{stem}.grid.png", f"{stem}.time.png", f"{stem}.time.csv"]
        for method in options.methods:
            names.append(f"{stem}.{method}.gif")
            if options.overlay:
                names.append(f"{stem}.{method}.overlay.gif")
            if options.save_raw:
                names.append(f"{stem}.{method}.npy")
        return [*names, f"thumbs/{stem}.gif"]

    def record_fields(self, sample: clips.Clip, maps) -> dict:
        """The frames the model saw, and per method the frames with the most positive
        relevance (the evidence for the class), most first."""
        top = {}
        for method, relevance in maps.items():
            positive, _ = clipmaps.over_time(relevance)
            ranked = [sample.frames[s] for s in np.argsort(-positive, kind="stable")]
            top[method] = list(dict.fromkeys(ranked))[:TOP_FRAMES]
        return {"frames": sample.frames, "source_frames": sample.source_frames,
                "resize": sample.fit.mode, "source_size": list(sample.fit.source_size),
                "top_frames": top}

    def write(self, out: Path, sample: clips.Clip, maps: Mapping[str, np.ndarray],
              options: ExplainOptions, caption: str) -> list[str]:
        stem, style, written, panels, curves = sample.item.stem, options.style, [], [], {}

        def save(suffix, write):
            path = out_path(out, stem, suffix)
            atomic_write(path, write)
            written.append(str(path))

        for method, relevance in maps.items():
            signed, summed = METHODS[method].signed, frame_maps(relevance)
            heat = render.heatmap(summed, signed, style)   # one colour scale for the clip
            save(f".{method}.gif", lambda f, heat=heat: clipmaps.animation(
                clipmaps.side_by_side(sample.display, heat), f, sample.frame_ms))
            if options.overlay:
                shown = render.overlay(heat, sample.display, summed, signed, style)
                save(f".{method}.overlay.gif",
                     lambda f, shown=shown: clipmaps.animation(shown, f, sample.frame_ms))
            if options.save_raw:
                path = out_path(out, stem, f".{method}.npy")
                save_npy(path, relevance.astype(np.float32))
                written.append(str(path))
            panels.append(render.Panel(method, heat, signed, render.scale(summed, style.clip),
                                       style.cmap(signed)))
            curves[method] = clipmaps.over_time(relevance)
        save(".grid.png", lambda f: clipmaps.grid(sample.display, panels, sample.frames, f,
                                                  title=f"{stem}: {caption}"))
        save(".time.png", lambda f: clipmaps.time_plot(curves, sample.frames, f,
                                                       title=f"{stem}: relevance over time"))
        path = out_path(out, stem, ".time.csv")
        save_csv(path, ("step", "frame", "method", "positive", "negative"),
                 [(s, frame, method, float(p[s]), float(n[s])) for method, (p, n) in curves.items()
                  for s, frame in enumerate(sample.frames)])
        written.append(str(path))
        return [*written, *self.thumbnails(out, sample)]

    def thumbnails(self, out: Path, sample: clips.Clip) -> list[str]:
        """The clip as the model saw it, animated, small."""
        path = out_path(out / "thumbs", sample.item.stem, ".gif")
        small = clipmaps.cells(sample.display, (1, 160))
        atomic_write(path, lambda f: clipmaps.animation(small, f, sample.frame_ms))
        return [str(path)]

    def evaluation(self, options, masks=False, heatmaps=False):
        if masks or heatmaps or options.sanity:
            given = "--masks" if masks else "--save-heatmaps" if heatmaps else "--sanity"
            raise XaiError(f"{given} is for image models; a video model's clips are evaluated "
                           "by space-time perturbation")
        if options.perturb is None:
            options = dataclasses.replace(options, perturb=DEFAULT_PATCH)
        if len(options.perturb) != 3:
            raise XaiError(f"--perturb {'x'.join(map(str, options.perturb))} is an image's patch; "
                           "a clip's is TxHxW (frames, height, width), e.g. 2x9x9, or 1xHxW "
                           "for whole frames")
        options = super().evaluation(options)
        self._valid_range(options)   # refused before anything is written
        return options

    def _valid_range(self, options):
        return faithfulness.checked_valid_range(self.preprocessing, self.graph.input_shape[-1],
                                                options)

    def steps(self, options) -> int:
        return faithfulness.steps_for(self.graph.input_shape[:3], options)

    def evaluate_batch(self, explainers, scorer, batch: Batch, targets, index, options, seed):
        return faithfulness.evaluate_batch(explainers, scorer, batch.x, targets, index, options,
                                           self._valid_range(options), seed)
