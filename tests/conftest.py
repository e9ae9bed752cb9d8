"""Shared helpers: fixture paths and a one-call explanation through the library API."""

from pathlib import Path

import numpy as np
import pytest

from xai_cli.engine import composites
from xai_cli.engine.explainers import make_explainer
from xai_cli.engine.graph import build_graph
from xai_cli.engine.methods import METHODS
from xai_cli.io import preprocess
from xai_cli.models.loading import load

FIXTURES = Path(__file__).parent / "fixtures"
ORACLE = FIXTURES / "oracle"


def explain(model, x, targets, method="lrp", rules="lrp-epsilon", preprocessing="unit"):
    """Relevance of ``model`` (a keras.Model or a file) for a batch, via the library API."""
    graph = build_graph(load(model) if isinstance(model, (str, Path)) else model)
    composite = composites.parse(rules, "test config") if "\n" in rules else composites.load(rules)
    explainer = make_explainer(graph, METHODS[method], composite,
                               preprocess.resolve(preprocessing))
    return explainer.explain(np.asarray(x, np.float32), np.asarray(targets, np.int32))


def digit_inputs(root: Path) -> Path:
    """A batch job's inputs in ``root``: ten digits in ``x.npy``, a broken ``broken.png`` and
    ``masks/`` with a centred square for each digit."""
    np.save(root / "x.npy", np.load(FIXTURES / "digits_test_x.npy")[:10])
    (root / "broken.png").write_bytes(b"not an image")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    (root / "masks").mkdir()
    for i in range(10):
        np.save(root / "masks" / f"x-{i}.npy", mask)
    return root


def autodiff_vjp(fn, x, output_gradient=None):
    """The Keras backend's own autodiff of ``fn`` at ``x`` (a reference for the engine's
    gradient and transposed maps): the VJP of ``output_gradient`` (default: a random one)
    and the output gradient used."""
    from keras import ops

    from xai_cli.engine import backends
    z, pullback = backends.current().vjp(lambda xs: fn(xs[0]), [ops.convert_to_tensor(x, "float32")])
    if output_gradient is None:
        output_gradient = np.random.default_rng(0).normal(size=tuple(z.shape)).astype(np.float32)
    return ops.convert_to_numpy(pullback(ops.convert_to_tensor(output_gradient))[0]), output_gradient


def relative_max_diff(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.fixture
def rng():
    return np.random.default_rng(0)
