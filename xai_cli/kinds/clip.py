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

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import PIL.Image

from ..catalogue import CLIP_REPLACEMENTS
from ..engine.methods import METHODS
from ..io import clipmaps, clips, preprocess, render
from ..io.outputs import atomic_write, out_path, save_csv, save_npy
from .base import ExplainOptions
from .image import PHOTO_SIZE, Image, pixels

TOP_FRAMES = 3
BENCH_FRAMES = 16   # frames of xai bench's made-up clips
THUMBNAIL_SIZES = (96, 160)   # pixels: a clip's thumbnail's shorter side at least, longer at most


class Clip(Image):
    """Clips, frames preprocessed and perturbed as images are (what is not drawing or
    decoding is :class:`~xai_cli.kinds.image.Image`'s)."""

    name = "clip"
    plural = "clips"
    audience = "video models"
    options = ("frames", "stride")
    shape = "a clip (T, H, W, C)"
    commands = ("explain", "evaluate")
    replacements = CLIP_REPLACEMENTS
    patch, patch_axes = (2, 9, 9), "TxHxW (frames, height, width; 1xHxW deletes whole frames)"
    perturbed_by = "space-time perturbation"

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is None and len(graph.input_shape) == 4

    @property
    def article(self) -> str:
        return "a video model"

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        self.selection = clips.Selection.parse(options.frames, options.stride)
        return super().prepare(options, composite)

    def discover(self, args, stdin):
        return clips.discover(args, stdin)

    def reader(self):
        return functools.partial(clips.load, shape=self.graph.input_shape,
                                 preprocessing=self.preprocessing, selection=self.selection,
                                 resize=self.resize)

    def bench_files(self, folder: Path, count: int):
        """GIFs of noise, :data:`BENCH_FRAMES` frames of a photo's size each; one tiny
        Conv3D, pooling and a dense layer."""
        import keras
        made = folder / "clips"
        made.mkdir()
        rng = np.random.default_rng(0)
        for i in range(count):
            frames = [PIL.Image.fromarray(rng.integers(0, 256, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3), np.uint8))
                      for _ in range(BENCH_FRAMES)]
            frames[0].save(made / f"{i:04d}.gif", save_all=True, append_images=frames[1:])
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(self.graph.input_shape),
                                  keras.layers.Conv3D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling3D(), keras.layers.Dense(10)])
        model.save(folder / "trivial.keras")
        return folder / "trivial.keras", made, {
            "photo_size": list(PHOTO_SIZE), "frames": BENCH_FRAMES,
            "what": "GIF clips of {} frames of {}x{}".format(BENCH_FRAMES, *PHOTO_SIZE)}

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
            signed, summed = METHODS[method].signed, pixels(relevance)   # each frame's map
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
        atomic_write(path, lambda f: clipmaps.animation(sample.display, f, sample.frame_ms,
                                                        THUMBNAIL_SIZES))
        return [str(path)]
