"""Options shared by several commands, declared once so that the commands cannot drift apart.

`data_options` are those of every command that reads a model and a batch of inputs,
`render_options` those of the commands that draw heatmaps, `perturbation_options` those
of the commands that measure faithfulness; the callbacks turn option text into values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..catalogue import (
    IG_STEPS,
    REPLACEMENTS,
    RISE_MASKS,
    SIGNAL_REPLACEMENTS,
    SMOOTHGRAD_NOISE,
    SMOOTHGRAD_SAMPLES,
    WORD_REPLACEMENTS,
)
from ..io import storage
from ..io.render import COLOUR_BLIND_SAFE, DEFAULT_CLIP, DEFAULT_OPACITY, DIVERGING_MAPS, SEQUENTIAL_MAPS

if TYPE_CHECKING:
    from ..io.render import Style

    F = TypeVar("F", bound=Callable[..., Any])   # a command function, decorated in place

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got '{value}'") from None


# --param: one method's parameter, typed by engine.methods.method_params when the job runs
param_option = click.option(
    "--param", "params", multiple=True, metavar="METHOD.NAME=VALUE",
    help=f"A method's parameter; repeat for several: integrated-gradients.steps (default "
         f"{IG_STEPS}), smoothgrad.samples (default {SMOOTHGRAD_SAMPLES}), smoothgrad.noise "
         f"(the noise std as a share of each input's value range, default "
         f"{SMOOTHGRAD_NOISE:g}), deeplift.baseline (zero, grey, mean or blur; deeplift.sigma "
         f"the blur's), occlusion.patch, .stride and .baseline, rise.masks (default "
         f"{RISE_MASKS}), .cells, .keep and .baseline, lime.samples, .segments, .width and "
         f".baseline, kernelshap.samples, .segments and .baseline (docs/methods.md). Wins over "
         f"the rule config's methods: key.")


# --layer: where Grad-CAM reads, the shorthand of --param gradcam.layer=NAME (and gradcam++)
layer_option = click.option(
    "--layer", "cam_layer", metavar="NAME",
    help="The layer gradcam and gradcam++ read (names: xai rules MODEL). Default: the last "
         "with a map like the input's, the last convolutional block.")


RAY_ADDRESS = re.compile(r"auto|local|(ray|https?)://\S+|[\w.-]+:\d+")


def _ray_address(ctx, param, value: str | None) -> str | None:
    """``--ray`` takes an optional address, and Click gives it the next argument: a path
    there means the flag came before the inputs."""
    if value and not RAY_ADDRESS.fullmatch(value):
        raise click.BadParameter(
            f"'{value}' is not a Ray address (ray://HOST:PORT, HOST:PORT or auto); to use "
            "RAY_ADDRESS or a local cluster, put --ray after the inputs or write --ray=",
            ctx, param)
    return value


def _output_folder(ctx, param, value: str) -> Path:
    """The output folder; a URL is refused, since outputs are written to files (Path
    would quietly make ``s3:/bucket`` a local folder)."""
    if storage.is_url(value):
        raise click.BadParameter(
            f"'{value}' is a URL; xai writes to a folder: one every node mounts (a shared file "
            "system, or the bucket through s3fs or gcsfuse), or a local one to copy afterwards "
            "(aws s3 sync, gcloud storage rsync)", ctx, param)
    return Path(value)


def ray_options(fn: F) -> F:
    """--ray and its pool: explain, evaluate and spray on a Ray cluster."""
    options = [
        click.option("--ray", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
                     callback=_ray_address,
                     help="Run on a Ray cluster (pip install 'xai[ray]'): at ADDRESS "
                          "(ray://HOST:PORT), else the one RAY_ADDRESS names, else a new "
                          "local one. The same files and records as a local run; workers that "
                          "die are replaced and their batches rerun. Put it after the inputs, "
                          "or write --ray=ADDRESS."),
        click.option("--ray-actors", type=click.IntRange(min=1), default=1, show_default=True,
                     metavar="N", help="With --ray: explaining actors, each with its own "
                                       "compiled model."),
        click.option("--ray-gpus-per-actor", type=click.FloatRange(min=0), default=0,
                     show_default=True, metavar="G",
                     help="With --ray: GPUs each actor holds (a fraction shares one)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def data_options(fn: F) -> F:
    """Options shared by the commands that read a model and a batch of inputs."""
    options = [
        click.argument("model", type=click.Path(dir_okay=False)),
        click.argument("images", nargs=-1, required=True),
        click.option("--rules", "-r", metavar="CFG",
                     help="Rule config for lrp: a built-in name (see `xai rules --list`) or a "
                          "YAML file. Default: context-gamma-box (text models: text-epsilon; "
                          "signal models: signal-epsilon-alpha)."),
        click.option("--preprocess", "-p", metavar="PRESET",
                     help="Input preprocessing: caffe, tf, torch, unit ([0,1]), raw ([0,255]) "
                          "or none (.npy inputs as they are). Overrides the rule config's "
                          "input.preprocess. Default: unit (signal models: raw, their values as "
                          "they are, per channel with --mean/--std). For pictures it also fixes "
                          "the valid input range used by zbox and by evaluate's uniform "
                          "replacement."),
        click.option("--resize", type=click.Choice(["squash", "crop", "pad"]), default="squash",
                     show_default=True,
                     help="How pictures whose aspect ratio differs from the model's input are "
                          "fitted: squash (scale both sides, distorting), crop (scale the "
                          "shorter side, cut the centre: the ImageNet convention) or pad "
                          "(scale the longer side, centre on black). Heatmaps, overlays and "
                          "--masks follow what the model saw."),
        click.option("--scale", type=float, help="Explicit preprocessing: multiply pixels "
                                                 "in [0,255] by this."),
        click.option("--mean", callback=_floats, metavar="M[,M,M]",
                     help="Explicit preprocessing: subtract per channel after scaling."),
        click.option("--std", callback=_floats, metavar="S[,S,S]",
                     help="Explicit preprocessing: divide per channel after the mean."),
        click.option("--target", "-t", default="top1", show_default=True,
                     help="Class to explain: top1, a class index, or a class name (with --labels)."),
        click.option("--labels", metavar="FILE|imagenet",
                     help="Class names: a text file with one per line, in output order, or "
                          "imagenet (the 1,000 ILSVRC-2012 classes in the order of "
                          "keras.applications, built in)."),
        click.option("--batch-size", "-b", type=int, default=32, show_default=True,
                     help="Inputs per compiled call (the last batch may be shorter)."),
        click.option("--out", "-o", type=click.Path(file_okay=False), callback=_output_folder,
                     default="xai-out", show_default=True, help="Output folder."),
        click.option("--shard", metavar="K/N",
                     help="Process only the K-th of N deterministic slices of the inputs."),
        click.option("--skip-existing", is_flag=True,
                     help="Resume a killed job: skip inputs whose outputs exist (evaluate "
                          "and spray: whose batch is stored in OUT/parts/ by a run with the "
                          "same arguments)."),
        click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for smoothgrad noise, random perturbation orders, uniform "
                          "and ROAD noise, and the bootstrap of paired comparisons."),
        param_option,
        click.option("--lines", is_flag=True,
                     help="Text models: every non-empty line of a file (or of stdin, -) is a "
                          "document; without it every file is one."),
        click.option("--vocab", metavar="FILE",
                     help="Text models that take token ids: their vocabulary, one token per "
                          "line in index order from index 2 (0 pads, 1 is unknown), as "
                          "TextVectorization(vocabulary=FILE) reads it. Documents are lower-cased, "
                          "stripped of ASCII punctuation and split on whitespace, as "
                          "TextVectorization does by default."),
        click.option("--max-tokens", type=click.IntRange(min=1), metavar="N",
                     help="Text models: read at most the first N tokens of a document (the "
                          "rest are cut, and the heatmaps say how many words). A model of any "
                          "length reads whole documents without it (up to 100,000 tokens; a "
                          "longer one is refused); a fixed-length model reads at most its "
                          "length."),
        click.option("--frames", metavar="N|A:B",
                     help="Video models: the frames of a clip the model's steps are taken from: "
                          "the first N, or A to B-1 (counted from 0). Default: the whole clip. "
                          "A clip with more frames than the model takes gives it frames spread "
                          "evenly over that range (or every --stride-th from its start); one "
                          "with fewer has its last frame repeated. The record lists the frames "
                          "the model saw."),
        click.option("--stride", type=click.IntRange(min=1), metavar="S",
                     help="Video models: take every S-th frame (default: spread evenly)."),
        click.option("--sample-rate", type=click.FloatRange(min=0, min_open=True), metavar="HZ",
                     help="Signal models: the samples per second the model takes. Audio files "
                          "at another rate are resampled to it; CSV and .npy signals are taken "
                          "as they are, their time axis labelled in seconds. With a rate, each "
                          "signal also gets its relevance over a spectrogram."),
        click.option("--offset", type=click.FloatRange(min=0), metavar="T",
                     help="Signal models: where the model's window starts in a longer signal, "
                          "in seconds (in samples for a signal without a rate). Default: its "
                          "start. A signal too short for the window is reported and skipped."),
        click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
                     show_default=True, help="Where the Keras backend runs (auto: its GPU, if "
                                             "it sees one)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def render_style(kwargs: dict[str, Any]) -> Style:
    """The rendering options of ``kwargs`` (removed from it) as a render.Style."""
    from ..io.render import Style
    try:
        return Style.choose(kwargs.pop("clip"), kwargs.pop("cmaps"),
                            kwargs.pop("opacity", DEFAULT_OPACITY))
    except ValueError as exc:
        raise click.UsageError(f"--cmap: {exc}") from None


def render_options(overlay: bool) -> Callable[[F], F]:
    """How heatmaps are drawn: options of the commands that draw them."""
    maps = ", ".join(f"{m}*" if m in COLOUR_BLIND_SAFE else m for m in DIVERGING_MAPS)
    sequential = ", ".join(f"{m}*" if m in COLOUR_BLIND_SAFE else m for m in SEQUENTIAL_MAPS)
    options = [
        click.option("--clip", type=click.FloatRange(50, 100, min_open=True),
                     default=DEFAULT_CLIP, show_default=True, metavar="PERCENTILE",
                     help="The percentile of |relevance| that gets the strongest colour; "
                          "stronger pixels are clipped to it (100: the maximum). Below 100 a "
                          "few extreme pixels no longer make the rest of the map pale. The "
                          ".npy files stay unclipped."),
        click.option("--cmap", "cmaps", multiple=True, metavar="NAME",
                     type=click.Choice(DIVERGING_MAPS + SEQUENTIAL_MAPS),
                     help=f"Colour map; repeat for both kinds. Diverging, for signed methods: "
                          f"{maps}. Sequential, for magnitudes: {sequential}. Default: "
                          f"{DIVERGING_MAPS[0]} and {SEQUENTIAL_MAPS[0]}; * = safe for "
                          "colour-blind readers."),
    ]
    if overlay:
        options.append(click.option(
            "--opacity", type=click.FloatRange(0, 1), default=DEFAULT_OPACITY, show_default=True,
            metavar="ALPHA",
            help="Opacity of --overlay heatmaps where relevance is strongest (weaker "
                 "relevance is more transparent)."))

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def clusters_count(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
    if value == "auto" or value.isdigit():
        return value if value == "auto" else int(value)
    raise click.BadParameter(f"expected 'auto' or a number, got '{value}'")


def patch_size(ctx: click.Context, param: click.Parameter, value: str | None
               ) -> tuple[int, ...] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) > 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected HxW (e.g. 9x9), TxHxW for a clip (e.g. 2x9x9), W for "
                                 f"a signal, or one size for every axis, got '{value}'")
    return tuple(int(p) for p in parts)


def perturbation_options(replace_default: tuple[str, ...], every_kind: bool = False
                         ) -> Callable[[F], F]:
    """Options of the region-perturbation measurement, shared by evaluate and tune;
    ``every_kind`` adds the protocols of text and signal models, and --words."""
    replacements = list(dict.fromkeys([*REPLACEMENTS, *(WORD_REPLACEMENTS + SIGNAL_REPLACEMENTS
                                                        if every_kind else ())]))
    every_kind_help = (" Default: uniform. Text models delete words instead: zero (the word's "
                 "embedding becomes zero, as Arras et al.; the default for them), unknown (it "
                 "becomes the unknown token) or pad (padding, which a mask_zero model skips). "
                 "Signal models replace a window by linear (a straight line across it from the "
                 "steps that are left; the default for them), mean (each channel's), zero or "
                 "noise (Gaussian, with each channel's mean and spread).") if every_kind else ""

    def decorate(fn):
        options = [
            click.option("--perturb", callback=patch_size, metavar="HxW|TxHxW|W",
                         help="Size of the non-overlapping regions that are perturbed: HxW "
                              "pixels of an image (default 9x9), TxHxW frames and pixels of a "
                              "clip (default 2x9x9; 1xHxW with the frame's size deletes whole "
                              "frames), W time steps of a signal on all its channels (default: "
                              "a 25th of the signal). One size: the same on every axis."),
            click.option("--steps", type=click.IntRange(min=0),
                         help="Perturbation steps (one patch each). Default: all patches, at "
                              "most 100."),
            click.option("--replace", multiple=True, type=click.Choice(replacements),
                         default=replace_default, show_default=bool(replace_default),
                         help="Values of perturbed pixels: uniform over the valid input range, "
                              "the image mean, a blurred copy, or road (ROAD, Rong et al. 2022: "
                              "each removed pixel becomes the weighted mean of its neighbours, "
                              "plus a little noise, so the shape of the removed region tells "
                              "the model nothing). Repeat to measure several protocols on the "
                              "same heatmaps." + every_kind_help),
            click.option("--score", type=click.Choice(["logit", "prob"]), default="logit",
                         show_default=True,
                         help="Track the pre-softmax score or the softmax probability."),
        ]
        if every_kind:
            options.append(click.option("--words", type=click.IntRange(min=1), default=1,
                                        show_default=True,
                                        help="Text models: words deleted per step."))
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate

