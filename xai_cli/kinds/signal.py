"""Signals ``(T, C)`` of an audio or time-series classifier: ``.npy``, CSV and WAV files in,
the signal drawn with its relevance out.

Signals are found and decoded by :mod:`~xai_cli.io.signals` (cut to the model's length
from ``--offset``, audio resampled to ``--sample-rate``) and preprocessed per channel as
images are, though from their own values, not pixels: the default preprocessing is none
at all (``raw``), and a signal has no valid range, so a rule that needs one (zB) takes
its bounds from the rule config. A signal's explanation is drawn by
:mod:`~xai_cli.io.signalmaps`: each channel a line coloured by its relevance, red for the
class and blue against (Becker et al. 2018), and for audio the relevance over a
spectrogram. The perturbation unit of ``xai evaluate`` is a window of ``--perturb W`` time
steps on every channel, replaced by a straight line across it, the channel's mean, zero
or noise.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..catalogue import SIGNAL_REPLACEMENTS
from ..engine.methods import METHODS
from ..errors import XaiError
from ..io import preprocess, signalmaps, signals
from ..io.outputs import atomic_write, out_path, save_csv, save_npy
from .base import ExplainOptions
from .image import Image

TOP_WINDOWS = 3   # the record's most relevant windows per method
WINDOWS = 25      # xai evaluate's default window: this many to a signal
BENCH_STEPS = 1_000   # rows of xai bench's made-up CSV signals


class Signal(Image):
    """Signals, preprocessed and perturbed as images are (what is not drawing or decoding
    is :class:`~xai_cli.kinds.image.Image`'s)."""

    name = "signal"
    plural = "signals"
    audience = "signal models (audio, time series)"
    options = ("sample_rate", "offset")
    shape = "a signal (T, C)"
    default_config = "signal-epsilon-alpha"
    default_preprocess = "raw"
    commands = ("explain", "evaluate")
    replacements = SIGNAL_REPLACEMENTS
    patch_axes = "W (time steps)"
    perturbed_by = "time-window perturbation"

    @classmethod
    def fits(cls, graph) -> bool:
        return graph.text is None and len(graph.input_shape) == 2

    @property
    def article(self) -> str:
        return "a signal model"

    @property
    def patch(self) -> tuple[int]:
        """xai evaluate's default window: a :data:`WINDOWS`-th of the signal."""
        return (max(1, -(-self.graph.input_shape[0] // WINDOWS)),)

    def prepare(self, options, composite) -> preprocess.Preprocessing:
        self.timing = signals.Timing.parse(options.sample_rate, options.offset)
        super().prepare(options, composite)
        self.preprocessing = dataclasses.replace(self.preprocessing, bounded=False)
        return self.preprocessing

    def discover(self, args, stdin):
        return signals.discover(args, stdin)

    def reader(self):
        return functools.partial(signals.load, shape=self.graph.input_shape,
                                 preprocessing=self.preprocessing, timing=self.timing)

    def bench_files(self, folder: Path, count: int):
        """CSV files of noise, :data:`BENCH_STEPS` rows each (a model's window cut from
        them); one tiny Conv1D, pooling and a dense layer."""
        import keras
        made = folder / "signals"
        made.mkdir()
        rng = np.random.default_rng(0)
        steps, channels = self.graph.input_shape
        for i in range(count):
            values = rng.standard_normal((max(BENCH_STEPS, steps), channels))
            np.savetxt(made / f"{i:04d}.csv", values, fmt="%.6f", delimiter=",")
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(self.graph.input_shape),
                                  keras.layers.Conv1D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(10)])
        model.save(folder / "trivial.keras")
        rows = max(BENCH_STEPS, steps)
        return folder / "trivial.keras", made, {"steps": rows, "what": f"CSV signals of {rows} rows"}

    def check_explain(self, options: ExplainOptions) -> None:
        if options.overlay or options.grid:
            raise XaiError(f"--{'overlay' if options.overlay else 'grid'} is for images; a "
                           "signal's plot draws the relevance on the signal itself")

    def output_names(self, stem: str, options: ExplainOptions) -> list[str]:
        names = []
        for method in options.methods:
            names.append(f"{stem}.{method}.png")
            if self.timing.sample_rate is not None:
                names.append(f"{stem}.{method}.spectrogram.png")
            if options.save_raw:
                names += [f"{stem}.{method}.npy", f"{stem}.{method}.csv"]
        return [*names, f"thumbs/{stem}.png"]

    def record_fields(self, sample: signals.Signal, maps) -> dict:
        """Where the window the model saw lies in the signal, and per method the windows
        (of evaluate's default width) with the most positive relevance, most first."""
        steps = len(sample.x)
        fields = {"samples": [sample.start, sample.start + steps],
                  "source_samples": sample.source_length, "channels": list(sample.channels)}
        if sample.rate is not None:
            fields["sample_rate"] = sample.rate
            fields["seconds"] = [sample.start / sample.rate, (sample.start + steps) / sample.rate]
        if sample.source_rate not in (None, sample.rate):
            fields["source_rate"] = sample.source_rate
        if sample.mixed:
            fields["mixed_channels"] = sample.mixed
        fields["top_windows"] = {method: [self._window(sample, *w)
                                          for w in signalmaps.top_windows(relevance, self.patch[0],
                                                                          TOP_WINDOWS)]
                                 for method, relevance in maps.items()}
        return fields

    @staticmethod
    def _window(sample: signals.Signal, first: int, stop: int, positive: float) -> dict:
        """A window of the model's input, also in the signal's samples and seconds, with
        its positive relevance."""
        window = {"steps": [first, stop], "samples": [sample.start + first, sample.start + stop],
                  "positive": positive}
        if sample.rate is not None:
            window["seconds"] = [(sample.start + first) / sample.rate,
                                 (sample.start + stop) / sample.rate]
        return window

    def write(self, out: Path, sample: signals.Signal, maps: Mapping[str, np.ndarray],
              options: ExplainOptions, caption: str) -> list[str]:
        stem, style, written = sample.item.stem, options.style, []

        def save(suffix, write):
            path = out_path(out, stem, suffix)
            atomic_write(path, write)
            written.append(str(path))

        for method, relevance in maps.items():
            signed = METHODS[method].signed
            title = f"{stem}: {caption} ({method})"
            save(f".{method}.png", lambda f, r=relevance, s=signed, t=title: signalmaps.plot(
                sample.raw, r, f, signed=s, style=style, rate=sample.rate, start=sample.start,
                channels=sample.channels, title=t))
            if sample.rate is not None:
                save(f".{method}.spectrogram.png", lambda f, r=relevance, s=signed, t=title:
                     signalmaps.spectrogram(sample.raw, r, sample.rate, f, signed=s, style=style,
                                            start=sample.start, title=t))
            if options.save_raw:
                path = out_path(out, stem, f".{method}.npy")
                save_npy(path, relevance.astype(np.float32))
                path_csv = out_path(out, stem, f".{method}.csv")
                save_csv(path_csv, ("sample", *sample.channels),
                         ([sample.start + t, *map(float, row)] for t, row in enumerate(relevance)))
                written += [str(path), str(path_csv)]
        return [*written, *self.thumbnails(out, sample)]

    def thumbnails(self, out: Path, sample: signals.Signal) -> list[str]:
        """The signal the model saw, small."""
        path = out_path(out / "thumbs", sample.item.stem, ".png")
        atomic_write(path, lambda f: signalmaps.thumbnail(sample.raw, f))
        return [str(path)]

    def _valid_range(self, options):
        return None   # no signal protocol draws from a valid range
