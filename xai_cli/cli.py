"""The command line: parses options and delegates; errors become messages and exit codes here.

Exit codes: 0 all done, 1 some inputs failed (the others were written), 2 usage or
configuration error (nothing written; also unexpected internal errors), 3 a --require was
not met (outputs written), 130 interrupted.
"""

from __future__ import annotations

import functools
import importlib
import sys
import traceback
from contextlib import nullcontext
from pathlib import Path

import click

from . import __version__
from .catalogue import METHOD_DESCRIPTIONS, METHOD_NAMES
from .catalogue import list_configs as list_configs_text
from .engine import tfsetup
from .errors import XaiError
from .io.render import COLOUR_BLIND_SAFE, DEFAULT_CLIP, DEFAULT_OPACITY, DIVERGING_MAPS, SEQUENTIAL_MAPS
from .jobs.gates import EVALUATE_HELP, SPRAY_HELP

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got '{value}'") from None


def data_options(fn):
    """Options shared by the commands that read a model and a batch of inputs."""
    options = [
        click.argument("model", type=click.Path(dir_okay=False)),
        click.argument("images", nargs=-1, required=True),
        click.option("--rules", "-r", metavar="CFG",
                     help="Rule config for lrp: a built-in name (see `xai rules --list`) or a "
                          "YAML file. Default: context-gamma-box."),
        click.option("--preprocess", "-p", metavar="PRESET",
                     help="Input preprocessing: caffe, tf, torch, unit ([0,1]), raw ([0,255]) "
                          "or none (.npy inputs as they are). Overrides the rule config's "
                          "input.preprocess. Default: unit. It also fixes the valid input "
                          "range used by zbox and by evaluate's uniform replacement."),
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
        click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("xai-out"), show_default=True, help="Output folder."),
        click.option("--shard", metavar="K/N",
                     help="Process only the K-th of N deterministic slices of the inputs."),
        click.option("--skip-existing", is_flag=True,
                     help="Resume a killed job: skip inputs whose outputs exist (evaluate "
                          "and spray: whose batch is stored in OUT/parts/ by a run with the "
                          "same arguments)."),
        click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for smoothgrad noise and random perturbation orders."),
        click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
                     show_default=True, help="Where TensorFlow runs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _style(kwargs):
    """The rendering options of ``kwargs`` (removed from it) as a render.Style."""
    from .io.render import Style
    try:
        return Style.choose(kwargs.pop("clip"), kwargs.pop("cmaps"),
                            kwargs.pop("opacity", DEFAULT_OPACITY))
    except ValueError as exc:
        raise click.UsageError(f"--cmap: {exc}") from None


def render_options(overlay: bool):
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


def _job(name: str):
    """The job module ``name``, imported when a command runs, with TensorFlow's start-up
    noise hidden: TensorFlow takes seconds to import, and --help or --version never need it."""
    tfsetup.import_tensorflow()
    return importlib.import_module(f"{__package__}.jobs.{name}")


def _session_options(kwargs):
    from .session import Options
    names = Options.__dataclass_fields__
    return Options(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def _handle_errors(fn):
    """Run a command; map XaiError to its exit code and hide tracebacks unless --debug."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            code = fn(*args, **kwargs)
        except XaiError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"xai: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("xai: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: one line for users, the traceback with --debug
            if debug:
                raise
            click.echo(f"xai: internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(2)
        sys.exit(code or 0)
    return wrapper


def _device(name: str):
    import tensorflow as tf
    if name == "auto":
        return None
    if name == "gpu" and not tf.config.list_physical_devices("GPU"):
        raise XaiError("--device gpu: TensorFlow sees no GPU on this machine")
    return tf.device("/GPU:0" if name == "gpu" else "/CPU:0")


def _progress(total: int, label: str = "explaining"):
    if not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=total, label=label, file=sys.stderr)
    return bar, bar.update


def _write_page(out: Path) -> None:
    """OUT/index.html from every record and picture in OUT (needs no TensorFlow)."""
    from .io.report import write
    click.echo(f"xai: report: {write(out)}", err=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xai")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def main(debug):
    """Explain Keras image classifiers with LRP / Deep Taylor heatmaps, and measure
    how good the explanations are.

    JSON lines go to stdout, messages to stderr. Exit codes: 0 all done, 1 some inputs
    failed (the rest were written), 2 usage or configuration error (nothing written), 3 a
    --require was not met (outputs written), 130 interrupted.
    """


@main.command(context_settings=CONTEXT)
@data_options
@click.option("--method", "-m", "methods", multiple=True, default=("lrp",), show_default=True,
              type=click.Choice(METHOD_NAMES),
              help="Explanation method; repeat for several. " + "; ".join(
                  f"{name}: {text}" for name, text in METHOD_DESCRIPTIONS.items()))
@click.option("--overlay", is_flag=True, help="Also write the heatmap over the image "
                                              "(<stem>.<method>.overlay.png).")
@click.option("--save-raw", is_flag=True, help="Also write the relevance array, shaped like "
                                               "the input (<stem>.<method>.npy).")
@click.option("--grid", is_flag=True, help="Also write one figure with the image and every "
                                           "method side by side, with colour bars "
                                           "(<stem>.grid.png).")
@render_options(overlay=True)
@_handle_errors
def explain(methods, overlay, save_raw, grid, device, **kwargs):
    """Write heatmaps <stem>.<method>.png explaining MODEL's decision on each image.

    MODEL is a .keras or .h5 file. IMAGES are image files, folders, glob patterns,
    .npy arrays of preprocessed inputs ((H,W,C) or a batch (N,H,W,C)), or - to read
    paths from stdin.
    """
    job = _job("explain")
    from .session import open_session
    style = _style(kwargs)
    options = _session_options(kwargs)
    session = open_session(options)
    report = session.report("explain")
    bar, update = _progress(len(session.items))
    with _device(device) or nullcontext(), bar or nullcontext():
        job.run(session, job.ExplainOptions(tuple(dict.fromkeys(methods)), overlay, save_raw, grid,
                                            style), report, update)
    _write_page(options.out)
    return report.exit_code


def _clusters(ctx, param, value):
    if value == "auto" or value.isdigit():
        return value if value == "auto" else int(value)
    raise click.BadParameter(f"expected 'auto' or a number, got '{value}'")


@main.command(context_settings=CONTEXT)
@data_options
@click.option("--method", "-m", default="lrp", show_default=True, type=click.Choice(METHOD_NAMES))
@click.option("--clusters", default="auto", show_default=True, callback=_clusters,
              help="Number of clusters, or auto (largest eigengap).")
@click.option("--require", "requirements", multiple=True, metavar="EXPR", help=SPRAY_HELP)
@render_options(overlay=False)
@_handle_errors
def spray(method, clusters, requirements, device, **kwargs):
    """Cluster the heatmaps of one class (--target) over many images: SpRAy.

    Finds the distinct strategies a model uses for a class, such as a watermark instead of
    the object. Writes clusters.csv, eigenvalues.csv, eigengap.png, embedding.png and, per
    cluster, cluster_<k>_mean.png and cluster_<k>_members.png. The heatmap features are
    kept in OUT/parts/: --skip-existing reuses them (after a kill, or for another
    --clusters). Needs scikit-learn (pip install 'xai[spray]').
    """
    job = _job("spray")
    from .jobs import gates
    from .session import open_session
    gated = gates.spray_requirements(requirements)
    style = _style(kwargs)
    options = _session_options(kwargs)
    session = open_session(options)
    report = session.report("spray")
    bar, update = _progress(len(session.items))
    with _device(device) or nullcontext(), bar or nullcontext():
        labels = job.run(session, method, clusters, report, update, style)
    _write_page(options.out)
    return gates.verdict(gated, gates.spray_lookup(labels), report) or report.exit_code


def _patch(ctx, param, value):
    parts = value.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected HxW (e.g. 9x9) or one size, got '{value}'")
    return int(parts[0]), int(parts[1])


def perturbation_options(replace_default: tuple[str, ...]):
    """Options of the region-perturbation measurement, shared by evaluate and tune."""
    def decorate(fn):
        options = [
            click.option("--perturb", default="9x9", show_default=True, callback=_patch,
                         help="Patch size HxW of the non-overlapping regions that are perturbed."),
            click.option("--steps", type=click.IntRange(min=0),
                         help="Perturbation steps (one patch each). Default: all patches, at "
                              "most 100."),
            click.option("--replace", multiple=True, type=click.Choice(["uniform", "mean", "blur"]),
                         default=replace_default, show_default=True,
                         help="Values of perturbed pixels: uniform over the valid input range, "
                              "the image mean, or a blurred copy. Repeat to measure several "
                              "protocols on the same heatmaps."),
            click.option("--score", type=click.Choice(["logit", "prob"]), default="logit",
                         show_default=True,
                         help="Track the pre-softmax score or the softmax probability."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


@main.command(context_settings=CONTEXT,
              short_help="Perturbation curves and AOPC per method (region perturbation).")
@data_options
@click.option("--method", "-m", "methods", multiple=True, default=("lrp",), show_default=True,
              type=click.Choice(METHOD_NAMES), help="Method to evaluate; repeat for several.")
@perturbation_options(replace_default=("uniform",))
@click.option("--order", type=click.Choice(["morf", "lerf", "random"]), default="morf",
              show_default=True, help="Most relevant first, least relevant first, or random. "
                                      "A random-order baseline is always added.")
@click.option("--lerf", is_flag=True,
              help="Also perturb every method least relevant first: summary.csv gets the LeRF "
                   "AOPC and the area between the LeRF and MoRF curves (with --order morf).")
@click.option("--masks", metavar="DIR|CSV",
              help="Where the object is: a folder with a mask per input (image or .npy named "
                   "like the input's outputs, non-zero = object) or a CSV of boxes "
                   "image,x0,y0,x1,y1 in pixels of the original image. Adds the pointing game, "
                   "relevance mass and rank accuracy (summary.csv, localisation.csv).")
@click.option("--sanity", is_flag=True,
              help="Also randomise the learned layers from the top down and report how much "
                   "each method's heatmaps still correlate with the original (sanity.csv, "
                   "sanity.png); a method that does not change explains the input, not the "
                   "model.")
@click.option("--require", "requirements", multiple=True, metavar="EXPR", help=EVALUATE_HELP)
@_handle_errors
def evaluate(methods, perturb, steps, order, replace, lerf, score, masks, sanity, requirements,
             device, **kwargs):
    """Region perturbation (Samek et al. 2017): curves.csv, summary.csv (AOPC), curves.png.

    Patches are replaced in order of relevance; a method whose curve falls faster found the
    regions the model really uses. A summary table goes to stderr. Each batch is stored in
    OUT/parts/ as soon as it is done: --skip-existing resumes a killed run. Arguments as
    for `xai explain`.
    """
    job = _job("evaluate")
    from .jobs import gates, localisation
    from .session import open_session
    measure = job.EvaluateOptions(tuple(dict.fromkeys(methods)), perturb, steps, order,
                                  tuple(dict.fromkeys(replace)), score, lerf, sanity=sanity)
    gated = gates.evaluate_requirements(requirements, measure.methods, measure.replace, lerf,
                                        masks is not None, sanity)
    located = localisation.Masks(masks) if masks else None
    options = _session_options(kwargs)
    session = open_session(options)
    report = session.report("evaluate")
    bar, update = _progress(len(session.items))
    with _device(device) or nullcontext(), bar or nullcontext():
        summary, checked = job.run(session, measure, report, update, located)
    _write_page(options.out)
    click.echo(job.table(summary, checked), err=True)
    return gates.verdict(gated, gates.evaluate_lookup(summary, checked), report) \
        or report.exit_code


@main.command(context_settings=CONTEXT,
              short_help="Search rule configs for faithfulness on your images; writes the best.")
@data_options
@perturbation_options(replace_default=("uniform", "blur"))
@click.option("--holdout", type=click.FloatRange(0, 1, max_open=True), default=0.5,
              show_default=True, help="Share of the images held out of the search, to check "
                                      "that the chosen config generalises.")
@click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Passes of coordinate ascent over the layer groups.")
@click.option("--objective", type=click.Choice(["aopc", "area"]), default="aopc",
              show_default=True, help="What to maximise, averaged over the --replace protocols: "
                                      "AOPC (most relevant first) or the area between the "
                                      "least- and most-relevant-first curves.")
@_handle_errors
def tune(perturb, steps, replace, score, holdout, rounds, objective, device, **kwargs):
    """Search LRP rule configs for the most faithful heatmaps on your own images.

    Layers are grouped by graph context (first layer, depthwise convolutions, convolutions
    feeding a ReLU, convolutions with a linear output, other convolutions, dense layers);
    each group's rule is chosen in turn by region perturbation on a training split. Writes
    best.yaml (use it with --rules), candidates.csv (every config tried and its score),
    holdout.csv (the best config, the --rules config and the random order on the held-out
    images) and tune.json; --skip-existing resumes a killed search. Candidates go to stdout
    as JSON lines, the held-out table to stderr.
    """
    job = _job("tune")
    from .jobs.evaluate import EvaluateOptions
    from .session import Report, open_session
    measure = EvaluateOptions(("lrp",), perturb, steps, "morf", tuple(dict.fromkeys(replace)),
                              score)
    options = _session_options(kwargs)
    session = open_session(options)
    report = Report(fail_fast=options.fail_fast)
    settings = job.TuneOptions(measure, holdout, rounds, objective)
    bar, update = _progress(job.steps_total(session.graph, settings), "tuning")
    with _device(device) or nullcontext(), bar or nullcontext():
        job.run(session, settings, report, update)
    return report.exit_code


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--arch", help="Instead of MODEL: a Keras application built with random weights "
                             "(vgg16, resnet50, mobilenetv2, ...).")
@click.option("--input-size", type=click.IntRange(min=8), default=224, show_default=True,
              help="Input size for --arch.")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--method", "-m", "methods", multiple=True, default=("lrp", "sa"), show_default=True,
              type=click.Choice(METHOD_NAMES))
@click.option("--rules", "-r", "configs", multiple=True, default=("lrp-epsilon", "epsilon-gamma-box"),
              show_default=True, help="Rule configs to time lrp with; repeat for several.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--end-to-end/--no-end-to-end", default=True, show_default=True,
              help="Also time the explain job (decode, explain, render, write) on generated "
                   "photos, with a trivial model and with MODEL.")
@click.option("--xla", is_flag=True,
              help="Also time the forward pass and each method compiled with XLA (jobs use "
                   "it with XAI_XLA=1).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@_handle_errors
def bench(model, arch, input_size, batch_size, methods, configs, repeats, end_to_end, xla,
          as_json):
    """Images per second of the forward pass, the plain gradient and each method, and each
    method's time as a ratio to the gradient and to the forward pass (medians after
    warm-up, one process, all timed in turn so that load changes hit them alike;
    --xla adds XLA-compiled rows, ratios still to the plain forward pass). End to end,
    the explain job with the first method runs on 4 batches of generated 500x375 JPEG/PNG
    files twice: with a trivial model, which gives the rate decoding, rendering and writing
    allow, and with MODEL; the nearer MODEL's rate is to it, the more the input pipeline
    and not the model bounds a job."""
    job = _job("bench")
    from .io.outputs import emit
    if bool(model) == bool(arch):
        raise XaiError("give either MODEL or --arch")
    result = job.run(model, arch, input_size, batch_size, tuple(dict.fromkeys(methods)),
                     tuple(dict.fromkeys(configs)), repeats, end_to_end=end_to_end, xla=xla)
    if as_json:
        emit(result, sys.stdout)
    else:
        click.echo(job.table(result))
    return 0


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--rules", "-r", metavar="CFG", help="Rule config: built-in name or YAML file.")
@click.option("--list", "list_configs", is_flag=True, help="List the built-in rule configs.")
@click.option("--check", "check_image", metavar="IMAGE",
              help="Explain IMAGE and report relevance conservation per layer.")
@click.option("--preprocess", "-p", metavar="PRESET", help="Preprocessing for --check and zbox.")
@click.option("--target", "-t", default="top1", show_default=True)
@_handle_errors
def rules(model, rules, list_configs, check_image, preprocess, target):
    """Print which rule each layer of MODEL gets from the rule config, and why."""
    if list_configs:
        click.echo(list_configs_text())
        return 0
    job = _job("rules")
    if model is None:
        raise XaiError("give a MODEL (or --list)")
    click.echo(job.table(model, rules, check_image, preprocess, target))
    return 0


@main.command(context_settings=CONTEXT, short_help="Rebuild DIR/index.html from the records in DIR.")
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False,
                                                          path_type=Path))
@_handle_errors
def report(folder):
    """Rebuild DIR/index.html, the page of the inputs, heatmaps, tables and figures that
    explain, evaluate and spray runs with --out DIR wrote: for instance once several
    --shard runs have written into DIR. Open it in a browser; it needs no server.

    Evaluate shards (--shard K/N, all N into DIR) are merged first: DIR/curves.csv,
    summary.csv and the figures become those of one unsharded run, byte for byte (same
    arguments and --batch-size in every shard)."""
    from .io.parts import shards
    found = shards(folder / "parts", "evaluate")   # TensorFlow only if there is a merge
    if found is not None:
        job = _job("evaluate")
        summary, checked = job.merge_shards(folder, *found)
        click.echo(f"xai: merged {len(found[1])} evaluate shards into {folder}", err=True)
    _write_page(folder)
    if found is not None:
        click.echo(job.table(summary, checked), err=True)
    return 0
