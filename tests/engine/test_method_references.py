"""Grad-CAM, Grad-CAM++, occlusion and DeepLIFT against the toolboxes people know them from:
Captum 0.9 and pytorch-grad-cam 1.5.7, run on a PyTorch twin of the same weights
(tests/fixtures/methods/README.md says how; its conventions are the ones xai follows).
"""

import numpy as np
import pytest

from conftest import FIXTURES, explain

pytestmark = pytest.mark.backends

HERE = FIXTURES / "methods"
MODEL = HERE / "cnn.keras"


@pytest.fixture(scope="module")
def refs():
    return dict(np.load(HERE / "references.npz"))


@pytest.fixture(scope="module")
def x():
    return np.load(HERE / "inputs.npy")


def run(x, refs, method, params=""):
    rules = f"name: t\nmethods: {{{method}: {{{params}}}}}\nrules: []\ndefault: {{rule: epsilon}}\n"
    result = explain(MODEL, x, refs["targets"], method=method, rules=rules, preprocessing="unit")
    np.testing.assert_allclose(result.logits, refs["logits"], atol=1e-6)
    return result.relevance


def close(actual, expected, tolerance=1e-5):
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(actual, expected, atol=tolerance * scale)


def test_gradcam_is_captums_upsampled_bilinearly(x, refs):
    close(run(x, refs, "gradcam").sum(axis=-1), refs["gradcam"])


def minmax(m):
    low = m.min(axis=(1, 2), keepdims=True)
    return (m - low) / (m.max(axis=(1, 2), keepdims=True) - low + 1e-7)


def test_gradcampp_is_pytorch_grad_cams_before_its_normalisation(x, refs):
    # the package min-max scales the map; bilinear resizing commutes with that
    close(minmax(run(x, refs, "gradcam++").sum(axis=-1)), refs["gradcampp"], 1e-5)


@pytest.mark.parametrize("patch, stride", [(4, 4), (5, 3), (6, 2)])
def test_occlusion_is_captums(x, refs, patch, stride):
    """Captum gives every channel the whole drop; xai shares it among them (3 here)."""
    close(run(x, refs, "occlusion", f"patch: {patch}, stride: {stride}, baseline: grey") * 3,
          refs[f"occlusion_p{patch}_s{stride}"])


@pytest.mark.parametrize("baseline", ["zero", "blur"])
def test_deeplift_is_captums_rescale_rule(x, refs, baseline):
    close(run(x, refs, "deeplift", f"baseline: {baseline}, sigma: 3.0"), refs[f"deeplift_{baseline}"])


def test_lime_is_the_lime_packages_on_the_same_superpixels(x, refs):
    """The lime package's LimeImageExplainer, given xai's superpixels, its coalitions' random
    state and a grey hidden colour (scripts/make_surrogate_fixtures.py)."""
    from xai_cli.engine import surrogates
    fixture = np.load(HERE / "surrogates.npz")
    cut = surrogates.segments(x, 16, tokens=False)
    np.testing.assert_array_equal(np.stack(cut), fixture["segments"])
    relevance = run(x, refs, "lime", "samples: 300, segments: 16")
    for i, labels in enumerate(cut):
        count = labels.max() + 1
        expected = fixture["lime"][i, :count]
        assert not np.isnan(expected).any()
        close(relevance[i].sum(axis=-1), expected[labels], 1e-4)
        np.testing.assert_array_equal(relevance[i, ..., 0], relevance[i, ..., 2])
