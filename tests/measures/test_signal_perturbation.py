"""Time-window perturbation of signals ``(N, T, C)``: its replacements against values
written out by hand, and curves that remove windows in order."""

import numpy as np
import pytest

from xai_cli.measures import perturbation as pa
from xai_cli.measures.faithfulness import EvaluateOptions, evaluate_batch, measured


def _rngs(n, seed=0):
    return [np.random.default_rng([seed, i]) for i in range(n)]


def test_linear_interpolation_draws_a_line_across_each_run_of_removed_steps():
    """Steps 2-4 and 7 removed: a line from step 1 to step 5 and from 6 to 8, per channel;
    the ends held at the nearest step still there; all removed: each channel's mean."""
    x = np.stack([np.array([0, 1, 9, 9, 9, 5, 6, 9, 8, 9], np.float32),
                  np.array([10, 10, -9, -9, -9, 20, 0, -9, 4, 4], np.float32)], axis=-1)[None]
    removed = np.zeros((1, 10), bool)
    removed[0, [2, 3, 4, 7, 9]] = True
    filled = pa.replacement_values(x, "linear", None, [], sigma=1)(np.array([0]), removed)[0]
    np.testing.assert_allclose(filled[:, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 8])
    np.testing.assert_allclose(filled[:, 1], [10, 10, 12.5, 15, 17.5, 20, 0, 2, 4, 4])
    start = np.zeros((1, 10), bool)
    start[0, :2] = True                      # before the first step still there: its value
    filled = pa.replacement_values(x, "linear", None, [], sigma=1)(np.array([0]), start)[0]
    np.testing.assert_allclose(filled[:3], [[9, -9]] * 3)
    everything = pa.replacement_values(x, "linear", None, [], sigma=1)(np.array([0]),
                                                                      np.ones((1, 10), bool))[0]
    np.testing.assert_allclose(everything, np.broadcast_to(x[0].mean(axis=0), (10, 2)), rtol=1e-6)


def test_zero_mean_and_noise_replacements_are_per_signal_and_channel():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(2, 4000, 2)) * [1.0, 5.0] + [3.0, -2.0]).astype(np.float32)
    assert not pa.replacement_values(x, "zero", None, [], sigma=1).any()
    mean = pa.replacement_values(x, "mean", None, [], sigma=1)
    np.testing.assert_allclose(mean[1, 17], x[1].mean(axis=0), rtol=1e-5)
    noise = pa.replacement_values(x, "noise", None, _rngs(2), sigma=1)
    np.testing.assert_allclose(noise.mean(axis=1), x.mean(axis=1), atol=0.3)
    np.testing.assert_allclose(noise.std(axis=1), x.std(axis=1), rtol=0.06)
    again = pa.replacement_values(x[1:], "noise", None, _rngs(2)[1:], sigma=1)
    np.testing.assert_array_equal(noise[1:], again)   # one generator per signal: batching does not matter
    with pytest.raises(ValueError, match="one generator per input"):
        pa.replacement_values(x, "noise", None, _rngs(1), sigma=1)


@pytest.mark.parametrize("replace", ["linear", "mean", "zero", "noise"])
def test_windows_are_removed_most_relevant_first(replace):
    """A linear score sum(w * x) on one channel, windows of 3 steps: step k of the curve
    is the signal with its k most relevant windows replaced, whatever the protocol."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=(1, 11, 2))
    x = rng.normal(size=(1, 11, 2)).astype(np.float32)

    class Linear:
        def explain(self, batch, targets, index, named=None):
            return type("R", (), {"relevance": w * batch, "targets": np.zeros(len(batch), int)})

    def scorer(batch):
        return np.stack([(batch * w).sum(axis=(1, 2)), np.zeros(len(batch))], axis=1)

    options = EvaluateOptions(("linear",), (3,), None, replace=(replace,))
    result = evaluate_batch({"linear": Linear()}, scorer, x, np.zeros(1, int), np.arange(1), options)
    curve = result.curves["linear", replace, "morf"][0]
    assert len(curve) == 5   # ceil(11 / 3) windows, all removed
    by_window = np.add.reduceat((w * x)[0].sum(axis=1), [0, 3, 6, 9])
    order = np.argsort(-by_window, kind="stable")
    values = pa.replacement_values(x, replace, None, [np.random.default_rng([0, 0, 7])], sigma=1)
    for k in range(5):
        removed = np.isin(np.arange(11) // 3, order[:k])[None]
        filled = values(np.array([0]), removed) if callable(values) else values
        copy = np.where(removed[..., None], filled, x)
        assert curve[k] == pytest.approx(float((copy * w).sum()), rel=1e-5, abs=1e-6)
    assert measured(options.unit) == "signals" and options.unit == "3"
