"""DeepLIFT, Grad-CAM, occlusion and RISE against what must hold and against plain NumPy
loops over the Keras model itself (the toolboxes' maps are in test_method_references.py).

DeepLIFT's Rescale rule sums to the score's difference to the baseline on a network of
ReLUs and linear layers, and coincides with LRP-0 (and gradient x input) where the
baseline is zero and the biases are too; occlusion and RISE are checked window by window
and mask by mask against the model's own predictions.
"""

import math

import keras
import numpy as np
import pytest
import scipy.ndimage
import skimage.transform

from conftest import explain
from xai_cli.engine import composites, grids, perturbing
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.errors import XaiError
from xai_cli.io import preprocess

pytestmark = pytest.mark.backends


def relu_net(shape=(12, 12, 3), biases=True, seed=0):
    """Convolutions, ReLUs, average pooling and a dense head: DeepLIFT's Rescale is exact."""
    keras.utils.set_random_seed(seed)
    conv = keras.layers.Conv2D if len(shape) == 3 else keras.layers.Conv1D
    pool = keras.layers.AveragePooling2D if len(shape) == 3 else keras.layers.AveragePooling1D
    gap = keras.layers.GlobalAveragePooling2D if len(shape) == 3 else keras.layers.GlobalAveragePooling1D
    inputs = keras.Input(shape)
    h = conv(6, 3, activation="relu", name="first")(inputs)
    h = pool(2)(h)
    h = conv(5, 3, activation="relu", name="last")(h)
    outputs = keras.layers.Dense(3, name="head")(gap()(h))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape) if biases else 0 * bias])
    return model


def inputs(shape, n=3, seed=1):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def target_score(model, x, targets):
    return np.asarray(model.predict(x, verbose=0))[np.arange(len(x)), targets]


TARGETS = np.array([0, 2, 1], np.int32)


@pytest.mark.parametrize("baseline", ["zero", "blur"])
def test_deeplift_sums_to_the_difference_from_its_baseline(baseline):
    model, x = relu_net(), inputs((12, 12, 3))
    relevance = explain(model, x, TARGETS, method="deeplift", preprocessing="unit",
                        rules=f"name: t\nmethods: {{deeplift: {{baseline: {baseline}, sigma: 1.0}}}}\n"
                              "rules: []\ndefault: {rule: epsilon}\n").relevance
    x0 = np.zeros_like(x) if baseline == "zero" else \
        scipy.ndimage.gaussian_filter(x, (0, 1, 1, 0), mode="mirror", truncate=3)
    delta = target_score(model, x, TARGETS) - target_score(model, x0, TARGETS)
    np.testing.assert_allclose(relevance.sum(axis=(1, 2, 3)), delta, rtol=1e-4, atol=1e-5)
    assert np.abs(relevance).max() > 1e-3


def test_deeplift_is_lrp_0_and_gradient_times_input_without_biases_from_zero():
    model, x = relu_net(biases=False), inputs((12, 12, 3))
    deeplift = explain(model, x, TARGETS, method="deeplift").relevance
    lrp = explain(model, x, TARGETS, method="lrp", rules="lrp-0").relevance
    gradxinput = explain(model, x, TARGETS, method="gradxinput").relevance
    np.testing.assert_allclose(deeplift, gradxinput, atol=1e-6 * np.abs(gradxinput).max())
    # LRP-0 divides by z unstabilised: near-zero z amplifies rounding (as test_invariants)
    np.testing.assert_allclose(deeplift, lrp, rtol=1e-3, atol=5e-4 * np.abs(lrp).max())
    with_biases = relu_net(biases=True)   # the identity needs them zero: not a tautology
    assert not np.allclose(explain(with_biases, x, TARGETS, method="deeplift").relevance,
                           explain(with_biases, x, TARGETS, method="gradxinput").relevance, atol=1e-4)


def occlusion_by_loop(model, x, targets, patch, stride, value):
    """Every window hidden in turn, the drop averaged over the windows covering an element."""
    shape = x.shape[1:-1]
    before = target_score(model, x, targets)
    total, count = np.zeros(x.shape[:-1]), np.zeros(shape)
    starts = [range(0, max(side - patch, 0) + stride, stride) for side in shape]
    for corner in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape)):
        where = tuple(slice(c, c + patch) for c in corner)
        hidden = x.copy()
        hidden[(slice(None), *where)] = value
        total[(slice(None), *where)] += (before - target_score(model, hidden, targets))[
            (slice(None),) + (None,) * len(shape)]
        count[where] += 1
    return np.repeat((total / count)[..., None] / x.shape[-1], x.shape[-1], axis=-1)


@pytest.mark.parametrize("shape, patch, stride", [((12, 12, 3), 4, 3), ((12, 12, 3), 3, 3),
                                                  ((30, 2), 5, 2)])
def test_occlusion_is_the_mean_drop_over_the_windows_covering_each_element(shape, patch, stride):
    model, x = relu_net(shape), inputs(shape)
    rules = f"name: t\nmethods: {{occlusion: {{patch: {patch}, stride: {stride}}}}}\nrules: []\n" \
            "default: {rule: epsilon}\n"
    relevance = explain(model, x, TARGETS, method="occlusion", rules=rules).relevance
    expected = occlusion_by_loop(model, x, TARGETS, patch, stride, 0.5)   # grey in [0, 1]
    np.testing.assert_allclose(relevance, expected, atol=2e-5 * np.abs(expected).max())


def test_occlusion_windows_cover_the_edge_as_captums_do():
    np.testing.assert_array_equal(perturbing.window_starts(24, 5, 3), [0, 3, 6, 9, 12, 15, 18, 21])
    np.testing.assert_array_equal(perturbing.window_starts(24, 4, 4), [0, 4, 8, 12, 16, 20])
    np.testing.assert_array_equal(perturbing.window_starts(3, 5, 2), [0])


def test_rise_masks_are_the_authors_upsampled_and_shifted_grids():
    shape, cells = (30, 23), 4
    grid, upsample, shifts = perturbing.rise_tables(shape, cells, 6, 0.5, seed=3)
    masks = keras.ops.convert_to_numpy(perturbing.rise_masks(
        keras.ops.convert_to_tensor(grid), [keras.ops.convert_to_tensor(m) for m in upsample],
        keras.ops.convert_to_tensor(shifts), shape))
    steps = [math.ceil(s / cells) for s in shape]
    for g, (dy, dx), mask in zip(grid, shifts, masks):
        up = skimage.transform.resize(g, [(cells + 1) * s for s in steps], order=1, mode="reflect",
                                      anti_aliasing=False)
        np.testing.assert_allclose(mask, up[dy:dy + shape[0], dx:dx + shape[1]], atol=1e-6)
    assert 0 <= masks.min() < masks.max() <= 1 and 0.2 < grid.mean() < 0.8


@pytest.mark.parametrize("shape", [(12, 12, 3), (40, 2)])
def test_rise_is_the_mask_weighted_score_less_the_mean(shape):
    model, x = relu_net(shape), inputs(shape)
    relevance = explain(model, x, TARGETS, method="rise",
                        rules="name: t\nmethods: {rise: {masks: 40, cells: 3}}\nrules: []\n"
                              "default: {rule: epsilon}\n").relevance
    grid, upsample, shifts = perturbing.rise_tables(shape[:-1], 3, 40, 0.5, seed=0)
    if len(shape) == 3:
        masks = np.stack([upsample[0][dy:dy + 12] @ g @ upsample[1][dx:dx + 12].T
                          for g, (dy, dx) in zip(grid, shifts)])
    else:
        masks = np.stack([upsample[0][d:d + shape[0]] @ g for g, (d,) in zip(grid, shifts)])
    scores = np.stack([target_score(model, x * m[None, ..., None], TARGETS) for m in masks])
    expected = np.einsum("kn,k...->n...", scores - scores.mean(axis=0), masks) / (40 * 0.5)
    np.testing.assert_allclose(relevance.sum(axis=-1), expected, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(relevance[..., 0], relevance[..., -1])


@pytest.mark.parametrize("method", ["occlusion", "rise", "gradcam", "gradcam++", "deeplift"])
def test_each_input_is_explained_alone_whatever_its_batch(method):
    model, x = relu_net(), inputs((12, 12, 3), n=5)
    targets = np.array([0, 1, 2, 1, 0], np.int32)
    whole = explain(model, x, targets, method=method).relevance
    alone = np.concatenate([explain(model, x[i:i + 1], targets[i:i + 1], method=method).relevance
                            for i in range(len(x))])
    # up to rounding: RISE sums a thousand masked scores, whose float32 forward passes round
    # by batch size (on this machine 1.6e-5 of the map's range apart; other CPUs less)
    np.testing.assert_allclose(whole, alone, atol=1e-4 * np.abs(whole).max())


def test_gradcam_reads_the_last_map_and_spreads_it_over_the_channels():
    model, x = relu_net(), inputs((12, 12, 3))
    default = explain(model, x, TARGETS, method="gradcam").relevance
    named = explain(model, x, TARGETS, method="gradcam",
                    rules="name: t\nmethods: {gradcam: {layer: last}}\nrules: []\n"
                          "default: {rule: epsilon}\n").relevance
    np.testing.assert_array_equal(default, named)
    first = explain(model, x, TARGETS, method="gradcam",
                    rules="name: t\nmethods: {gradcam: {layer: first}}\nrules: []\n"
                          "default: {rule: epsilon}\n").relevance
    assert not np.allclose(first, default)
    assert default.min() >= 0 and np.allclose(default[..., 0], default[..., 1])


def test_grid_matrices_resize_and_blur_as_the_libraries_do():
    a = np.random.default_rng(0).random((5, 7))
    matrix = grids.linear_resize(5, 13), grids.linear_resize(7, 20)
    resized = matrix[0] @ a @ matrix[1].T
    assert resized.shape == (13, 20)
    # bilinear, half-pixel centres, held at the edges: skimage's edge mode
    np.testing.assert_allclose(resized, skimage.transform.resize(a, (13, 20), order=1, mode="edge",
                                                                 anti_aliasing=False), atol=1e-6)
    blurred = grids.gaussian_blur(5, 1.0) @ a @ grids.gaussian_blur(7, 1.0).T
    np.testing.assert_allclose(blurred, scipy.ndimage.gaussian_filter(a, 1.0, mode="mirror", truncate=3),
                               atol=1e-6)


def test_bad_method_parameters_are_named():
    model, x = relu_net(), inputs((12, 12, 3))
    with pytest.raises(XaiError, match=r"no layer 'nope'.*first"):
        explain(model, x, TARGETS, method="gradcam",
                rules="name: t\nmethods: {gradcam: {layer: nope}}\nrules: []\ndefault: {rule: epsilon}\n")
    with pytest.raises(XaiError, match="'head' gives \\(3,\\)"):
        explain(model, x, TARGETS, method="gradcam",
                rules="name: t\nmethods: {gradcam: {layer: head}}\nrules: []\ndefault: {rule: epsilon}\n")
    with pytest.raises(XaiError, match="expected one of zero, grey, mean, blur, got 'pink'"):
        explain(model, x, TARGETS, method="occlusion",
                rules="name: t\nmethods: {occlusion: {baseline: pink}}\nrules: []\n"
                      "default: {rule: epsilon}\n")


def shapley_by_definition(model, x, baseline, labels, target):
    """Every segment's Shapley value from all coalitions: sum over S of |S|!(M-|S|-1)!/M!
    times the score's gain when the segment joins S."""
    count = labels.max() + 1
    coalitions = (np.arange(2 ** count)[:, None] >> np.arange(count)) & 1
    kept = coalitions[:, labels][..., None]
    values = target_score(model, x[None] * kept + baseline * (1 - kept),
                          np.full(len(coalitions), target))
    phi = np.zeros(count)
    for j in range(count):
        without = coalitions[:, j] == 0
        size = coalitions[without].sum(axis=1)
        weight = np.array([math.factorial(s) * math.factorial(count - s - 1) for s in size]) \
            / math.factorial(count)
        phi[j] = weight @ (values[np.flatnonzero(without) + 2 ** j] - values[without])
    return phi


def blocks(n=3, seed=1):
    """12x12 images of 3x3 blocks of one colour each: superpixels SLIC can find."""
    grid = np.random.default_rng(seed).random((n, 4, 4, 3)).astype(np.float32)
    return np.repeat(np.repeat(grid, 3, axis=1), 3, axis=2)


def test_kernelshap_with_every_coalition_gives_the_exact_shapley_values():
    from xai_cli.engine import surrogates
    model, x = relu_net(), blocks()
    rules = "name: t\nmethods: {kernelshap: {segments: 6, samples: 200}}\nrules: []\n" \
            "default: {rule: epsilon}\n"
    relevance = explain(model, x, TARGETS, method="kernelshap", rules=rules).relevance
    for i, labels in enumerate(surrogates.segments(x, 6, tokens=False)):
        assert 3 <= labels.max() + 1 <= 7   # 2^M - 2 <= 200: every coalition
        phi = shapley_by_definition(model, x[i], 0.5, labels, TARGETS[i])
        np.testing.assert_allclose(relevance[i].sum(axis=-1), phi[labels], atol=1e-5 * np.abs(phi).max())


@pytest.mark.parametrize("method", ["kernelshap", "lime"])
def test_sampled_surrogates_are_seeded_per_input(method):
    """Sampled coalitions depend on (seed, input): the same map in any batch; KernelSHAP's
    values still sum to the score's difference to the all-grey input."""
    from xai_cli.engine import surrogates
    model, x = relu_net(), blocks(n=4, seed=2)
    targets = np.array([0, 1, 2, 1], np.int32)
    rules = f"name: t\nmethods: {{{method}: {{segments: 20, samples: 60}}}}\nrules: []\n" \
            "default: {rule: epsilon}\n"
    explainer = make_explainer(build_graph(model), METHODS[method], composites.parse(rules, "t"),
                               preprocess.resolve("unit"))
    whole = explainer.explain(x, targets).relevance
    alone = np.concatenate([explainer.explain(x[i:i + 1], targets[i:i + 1], np.array([i])).relevance
                            for i in range(len(x))])
    # up to rounding: the sampled copies' forward passes round by batch size (PyTorch on this
    # machine: 2e-6 of the map's range apart)
    np.testing.assert_allclose(whole, alone, atol=1e-5 * np.abs(whole).max())
    if method == "kernelshap":
        for i, labels in enumerate(surrogates.segments(x, 20, tokens=False)):
            assert labels.max() + 1 > 8   # too many for every coalition: sampled
            phi = np.array([whole[i].sum(axis=-1)[labels == s][0] for s in range(labels.max() + 1)])
            grey = np.full_like(x[:1], 0.5)
            delta = target_score(model, x[i:i + 1], targets[i:i + 1]) \
                - target_score(model, grey, targets[i:i + 1])
            np.testing.assert_allclose(phi.sum(), delta[0], rtol=1e-4, atol=1e-6)
