"""The commands: each parses its options and delegates to its job in :mod:`xai_cli.jobs`."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import click

from .. import __version__
from ..catalogue import METHOD_DESCRIPTIONS, METHOD_NAMES, layer_params, methods_by_family
from ..catalogue import list_configs as list_configs_text
from ..errors import XaiError
from ..jobs.gates import EVALUATE_HELP, SPRAY_HELP
from .options import (
    CONTEXT,
    clusters_count,
    data_options,
    layer_option,
    param_option,
    perturbation_options,
    ray_options,
    render_options,
    render_style,
)
from .running import (
    data_job,
    device_scope,
    handle_errors,
    job_module,
    progress_bar,
    session_options,
    write_page,
)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xai")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def main(debug):
    """Explain Keras classifiers of images, text, video and signals (and k-means clusters
    of their features) with LRP / Deep Taylor heatmaps, and measure how good the
    explanations are.

    JSON lines go to stdout, messages to stderr. Exit codes: 0 all done, 1 some inputs
    failed (the rest were written), 2 usage or configuration error (nothing written), 3 a
    --require was not met (outputs written), 130 interrupted.
    """


@main.command(context_settings=CONTEXT, epilog="\b\nMethods, by family, with their cost per input "
                                              "and their papers:\n" + methods_by_family())
@data_options
@ray_options
@layer_option
@click.option("--method", "-m", "methods", multiple=True, default=("lrp",), show_default=True,
              type=click.Choice(METHOD_NAMES),
              help="Explanation method; repeat for several (their families, costs and papers "
                   "are listed below). " + "; ".join(
                  f"{name}: {text}" for name, text in METHOD_DESCRIPTIONS.items()))
@click.option("--overlay", is_flag=True, help="Also write the heatmap over the image "
                                              "(<stem>.<method>.overlay.png).")
@click.option("--save-raw", is_flag=True, help="Also write the relevance array, shaped like "
                                               "the input (<stem>.<method>.npy).")
@click.option("--grid", is_flag=True, help="Also write one figure with the image and every "
                                           "method side by side, with colour bars "
                                           "(<stem>.grid.png).")
@render_options(overlay=True)
@handle_errors
def explain(methods, overlay, save_raw, grid, **kwargs):
    """Write heatmaps <stem>.<method>.png explaining MODEL's decision on each image.

    MODEL is a .keras or .h5 file. IMAGES are image files, folders, glob patterns,
    .npy arrays of preprocessed inputs ((H,W,C) or a batch (N,H,W,C)), or - to read
    paths from stdin.

    For a text model (an Embedding, after a TextVectorization or fed token ids with
    --vocab) they are documents: text files, folders of .txt files, or - for stdin (one
    document, or one per line with --lines). Each gets word heatmaps <stem>.<method>.html
    and .png: words red where they speak for the class, blue against.

    For a video model (input (T, H, W, C)) they are clips: folders of frames, GIFs, video
    files (with the video extra) or .npy clips; --frames and --stride choose the frames the
    model sees. Each gets a frame grid <stem>.grid.png, an animated heatmap
    <stem>.<method>.gif and its relevance over time, <stem>.time.png and .csv.

    For a signal model (input (T, C): audio, time series) they are signals: .npy arrays,
    CSV files (a column per channel) or WAV files, cut to the model's length from --offset
    and, for audio, resampled to --sample-rate. Each gets a plot <stem>.<method>.png of the
    signal coloured by its relevance (red for the class, blue against) and, with a sample
    rate, <stem>.<method>.spectrogram.png.
    """
    job = job_module("explain")
    style = render_style(kwargs)
    with data_job(kwargs, "explain") as (session, report, update):
        job.run(session, job.ExplainOptions(tuple(dict.fromkeys(methods)), overlay, save_raw, grid,
                                            style), report, update)
    return report.exit_code


@main.command(context_settings=CONTEXT)
@data_options
@ray_options
@layer_option
@click.option("--method", "-m", default="lrp", show_default=True, type=click.Choice(METHOD_NAMES))
@click.option("--clusters", default="auto", show_default=True, callback=clusters_count,
              help="Number of clusters, or auto (largest eigengap).")
@click.option("--require", "requirements", multiple=True, metavar="EXPR", help=SPRAY_HELP)
@render_options(overlay=False)
@handle_errors
def spray(method, clusters, requirements, **kwargs):
    """Cluster the heatmaps of one class (--target) over many images: SpRAy.

    Finds the distinct strategies a model uses for a class, such as a watermark instead of
    the object. Writes clusters.csv, eigenvalues.csv, eigengap.png, embedding.png and, per
    cluster, cluster_<k>_mean.png and cluster_<k>_members.png. The heatmap features are
    kept in OUT/parts/: --skip-existing reuses them (after a kill, or for another
    --clusters). Needs scikit-learn (pip install 'xai[spray]').
    """
    job = job_module("spray")
    from ..jobs import gates
    gated = gates.spray_requirements(requirements)
    style = render_style(kwargs)
    with data_job(kwargs, "spray") as (session, report, update):
        labels = job.run(session, method, clusters, report, update, style)
    return gates.verdict(gated, gates.spray_lookup(labels), report) or report.exit_code


@main.command(context_settings=CONTEXT,
              short_help="k-means on a layer's features, and why each input is in its cluster.")
@data_options
@click.option("--layer", required=True, metavar="NAME",
              help="The layer whose outputs are clustered (names: xai rules MODEL).")
@click.option("-k", "--clusters", type=click.IntRange(min=2), metavar="K",
              help="Number of clusters (k-means, 10 starts, seeded by --seed). Needed unless "
                   "--centroids.")
@click.option("--pool", type=click.Choice(["avg", "max", "none"]), default="avg", show_default=True,
              help="How a layer's map of features becomes one vector per input: averaged or "
                   "maxed over its positions, or none (flattened).")
@click.option("--beta", type=click.FloatRange(min=0, min_open=True),
              help="Stiffness of the soft minimum over the competing clusters (beta times "
                   "the membership is its log-odds). Default: one over the mean margin of the "
                   "fit inputs (Kauffmann et al.'s heuristic).")
@click.option("--fit", multiple=True, metavar="IMAGES",
              help="Fit k-means on these inputs (files, folders, globs; repeatable) instead "
                   "of the ones explained.")
@click.option("--centroids", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Reuse the centroids.npz of an earlier run instead of fitting (and its beta, "
                   "unless --beta): the same clusters for new inputs, or for every --shard.")
@click.option("--target-cluster", type=click.IntRange(min=0), metavar="C",
              help="Explain every input's membership of cluster C instead of its own.")
@click.option("--method", "-m", default="lrp", show_default=True, type=click.Choice(METHOD_NAMES))
@render_options(overlay=False)
@handle_errors
def cluster(layer, clusters, pool, beta, fit, centroids, target_cluster, method, **kwargs):
    """Cluster the inputs on a layer's features with k-means and explain why each input
    is in its cluster, down to the pixels (NEON, Kauffmann et al. 2019).

    The model is cut at --layer, its features pooled (--pool) and clustered; k-means
    becomes a layer on them (OUT/clusters.keras, which xai explain explains too) and every
    input's membership of its cluster is explained with the rule config below the layer.
    Writes clusters.csv (cluster, membership, log-odds and distance to each centroid),
    centroids.npz, a heatmap <stem>.<method>.png and .npy per input, and per cluster
    cluster_<k>_mean.png and cluster_<k>_prototypes.png (the inputs nearest its centroid).
    --skip-existing resumes; with --shard each shard fits the same k-means on all inputs,
    and a last run without --shard (with --skip-existing) writes the per-cluster files.
    Needs scikit-learn (pip install 'xai[spray]').
    """
    job = job_module("cluster")
    style = render_style(kwargs)
    settings = job.ClusterOptions(layer, clusters, pool, beta, tuple(fit), centroids,
                                  target_cluster, method, style)
    with data_job(kwargs, "cluster") as (session, report, update):
        summary = job.run(session, settings, report, update)
    click.echo(summary, err=True)
    return report.exit_code


@main.command(context_settings=CONTEXT,
              short_help="Perturbation curves and AOPC per method (region perturbation).")
@data_options
@ray_options
@layer_option
@click.option("--method", "-m", "methods", multiple=True, default=("lrp",), show_default=True,
              type=click.Choice(METHOD_NAMES), help="Method to evaluate; repeat for several.")
@perturbation_options(replace_default=(), every_kind=True)
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
@click.option("--save-heatmaps", is_flag=True,
              help="Also write each method's heatmap of each image (<stem>.<method>.png, the "
                   "relevance that was scored), shown beside the curves on the report page.")
@click.option("--require", "requirements", multiple=True, metavar="EXPR", help=EVALUATE_HELP)
@handle_errors
def evaluate(methods, perturb, steps, order, replace, lerf, score, words, masks, sanity,
             save_heatmaps, requirements, **kwargs):
    """Region perturbation (Samek et al. 2017): curves.csv, summary.csv (AOPC),
    comparisons.csv, curves.png.

    Patches are replaced in order of relevance; a method whose curve falls faster found the
    regions the model really uses. comparisons.csv pairs the methods on the same inputs:
    the mean AOPC difference, its 95% bootstrap interval and the share of inputs won. A
    summary table goes to stderr. Each batch is stored in
    OUT/parts/ as soon as it is done: --skip-existing resumes a killed run. Arguments as
    for `xai explain`.

    For a text model's documents it is word deletion (Arras et al. 2017): --words words
    are deleted per step (--replace says how), most relevant first; the same files. For a
    video model's clips the patches are space-time, --perturb TxHxW (1xHxW deletes frames).
    For a signal model's signals they are windows of --perturb W samples on every channel,
    replaced by a line across them (--replace linear, the default), the mean, zero or noise.
    """
    job = job_module("evaluate")
    from ..jobs import gates
    from ..measures import localisation
    measure = job.EvaluateOptions(tuple(dict.fromkeys(methods)), perturb, steps, order,
                                  tuple(dict.fromkeys(replace)), score, lerf, sanity=sanity,
                                  words=words)
    located = localisation.Masks(masks) if masks else None
    with data_job(kwargs, "evaluate") as (session, report, update):
        measure = session.kind.evaluation(measure, masks is not None, save_heatmaps)
        gated = gates.evaluate_requirements(requirements, measure.methods, measure.replace, lerf,
                                            masks is not None, sanity)
        results = job.run(session, measure, report, update, located, save_heatmaps)
    click.echo(results.table(), err=True)
    return gates.verdict(gated, gates.evaluate_lookup(results), report) or report.exit_code


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
@handle_errors
def tune(perturb, steps, replace, score, holdout, rounds, objective, **kwargs):
    """Search LRP rule configs for the most faithful heatmaps on your own images.

    Layers are grouped by graph context (first layer, depthwise convolutions, convolutions
    feeding a ReLU, convolutions with a linear output, other convolutions, dense layers);
    each group's rule is chosen in turn by region perturbation on a training split. Writes
    best.yaml (use it with --rules), candidates.csv (every config tried and its score),
    holdout.csv (the best config, the --rules config and the random order on the held-out
    images) and tune.json; --skip-existing resumes a killed search. Candidates go to stdout
    as JSON lines, the held-out table to stderr.
    """
    job = job_module("tune")
    from ..measures.faithfulness import EvaluateOptions
    from ..session import Report, open_session
    options = session_options(kwargs)
    session = open_session(options)
    session.kind.check_command("tune")
    measure = session.kind.evaluation(EvaluateOptions(
        ("lrp",), perturb, steps, "morf", tuple(dict.fromkeys(replace)), score))
    report = Report(fail_fast=options.fail_fast)
    settings = job.TuneOptions(measure, holdout, rounds, objective)
    bar, update = progress_bar(job.steps_total(session.graph, settings), "tuning")
    with device_scope(options.device) or nullcontext(), bar or nullcontext():
        job.run(session, settings, report, update)
    return report.exit_code


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--arch", help="Instead of MODEL: a Keras application built with random weights "
                             "(vgg16, resnet50, mobilenetv2, ...), or c3d, the video network "
                             "C3D (16 frames).")
@click.option("--input-size", type=click.IntRange(min=8),
              help="Input size for --arch (default 224; c3d: 112).")
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
              help="On TensorFlow, also time the forward pass and each method compiled with "
                   "XLA (jobs use it with XAI_XLA=1); JAX always compiles with XLA.")
@click.option("--autodiff", is_flag=True,
              help="Also time each method with the backend's autodiff for every VJP instead of "
                   "the transposed-kernel maps the engine uses: whether those pay off on this "
                   "backend and device.")
@param_option
@layer_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@handle_errors
def bench(model, arch, input_size, batch_size, methods, configs, repeats, end_to_end, xla,
          autodiff, params, cam_layer, as_json):
    """Images per second of the forward pass, the plain gradient and each method, and each
    method's time as a ratio to the gradient and to the forward pass (medians after
    warm-up, one process, all timed in turn so that load changes hit them alike;
    --xla adds XLA-compiled rows, ratios still to the plain forward pass). End to end,
    the explain job with the first method runs on 4 batches of generated 500x375 JPEG/PNG
    files twice: with a trivial model, which gives the rate decoding, rendering and writing
    allow, and with MODEL; the nearer MODEL's rate is to it, the more the input pipeline
    and not the model bounds a job. KERAS_BACKEND picks the backend, as for every command."""
    job = job_module("bench")
    from ..io.outputs import emit
    if bool(model) == bool(arch):
        raise XaiError("give either MODEL or --arch")
    result = job.run(model, arch, input_size, batch_size, tuple(dict.fromkeys(methods)),
                     tuple(dict.fromkeys(configs)), repeats, end_to_end=end_to_end, xla=xla,
                     autodiff=autodiff, params=layer_params(cam_layer) + params)
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
              help="Explain IMAGE (a text model: a document) and report relevance "
                   "conservation per layer.")
@click.option("--preprocess", "-p", metavar="PRESET", help="Preprocessing for --check and zbox.")
@click.option("--vocab", metavar="FILE", help="A text model's vocabulary, for --check (see "
                                               "`xai explain --help`).")
@click.option("--max-tokens", type=click.IntRange(min=1), metavar="N",
              help="A text model: read at most the first N tokens of the --check document.")
@click.option("--target", "-t", default="top1", show_default=True)
@handle_errors
def rules(model, rules, list_configs, check_image, preprocess, vocab, max_tokens, target):
    """Print which rule each layer of MODEL gets from the rule config, and why."""
    if list_configs:
        click.echo(list_configs_text())
        return 0
    job = job_module("rules")
    if model is None:
        raise XaiError("give a MODEL (or --list)")
    click.echo(job.table(model, rules, check_image, preprocess, target, vocab, max_tokens))
    return 0


@main.command(context_settings=CONTEXT, short_help="Rebuild DIR/index.html from the records in DIR.")
@click.argument("folder", metavar="DIR", type=click.Path(exists=True, file_okay=False,
                                                          path_type=Path))
@handle_errors
def report(folder):
    """Rebuild DIR/index.html, the page of the inputs, heatmaps, tables and figures that
    explain, evaluate and spray runs with --out DIR wrote: for instance once several
    --shard runs have written into DIR. Open it in a browser; it needs no server.

    Evaluate shards (--shard K/N, all N into DIR) are merged first: DIR/curves.csv,
    summary.csv and the figures become those of one unsharded run, byte for byte (same
    arguments and --batch-size in every shard)."""
    from ..io.parts import shards
    found = shards(folder / "parts", "evaluate")   # Keras only if there is a merge
    if found is not None:
        job = job_module("evaluate")
        results = job.merge_shards(folder, *found)
        click.echo(f"xai: merged {len(found[1])} evaluate shards into {folder}", err=True)
    write_page(folder)
    if found is not None:
        click.echo(results.table(), err=True)
    return 0

