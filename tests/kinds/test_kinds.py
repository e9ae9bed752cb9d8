"""Kinds of input: chosen once from the graph, each with its own protocols, commands,
batches and API conversion."""

import keras
import numpy as np
import pytest

from conftest import FIXTURES
from xai_cli import kinds
from xai_cli.engine.graph import build_graph
from xai_cli.errors import XaiError
from xai_cli.kinds.document import Document
from xai_cli.kinds.image import Image
from xai_cli.kinds.signal import Signal
from xai_cli.measures.faithfulness import EvaluateOptions
from xai_cli.models.loading import load
from xai_cli.session import Options

TEXT_MODEL = FIXTURES / "arras_lstm" / "model.keras"


@pytest.fixture(scope="module")
def image():
    kind = kinds.of(build_graph(load(FIXTURES / "digits.keras")))
    kind.prepare(Options("digits.keras", (), preprocess="unit"), _NoConfig())
    return kind


@pytest.fixture(scope="module")
def document():
    kind = kinds.of(build_graph(load(TEXT_MODEL)))
    kind.prepare(Options("model.keras", ()), _NoConfig())
    return kind


class _NoConfig:
    """A rule config without an ``input`` section."""

    @property
    def preprocess(self):
        return {}


def test_the_kind_is_chosen_from_the_graph(image, document):
    assert type(image) is Image and type(document) is Document
    signal = keras.Sequential([keras.Input((20, 3)), keras.layers.Conv1D(4, 3),
                               keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    assert type(kinds.of(build_graph(signal))) is Signal
    volume = keras.Sequential([keras.Input((4, 6, 6, 6, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(2)])
    with pytest.raises(XaiError, match=r"input shape \(4, 6, 6, 6, 1\) is not an image \(H, W, C\), "
                                       r"a text model's .*, a clip \(T, H, W, C\) or a signal \(T, C\)"):
        kinds.of(build_graph(volume))


def test_each_kind_has_its_own_protocols(image, document):
    """No --replace: the kind's first protocol; another kind's protocol is refused, naming
    the models it is for."""
    assert image.evaluation(EvaluateOptions(replace=())).replace == ("uniform",)
    assert document.evaluation(EvaluateOptions(replace=())).replace == ("zero",)
    with pytest.raises(XaiError, match="--replace blur is for images; documents take zero"):
        document.evaluation(EvaluateOptions(replace=("zero", "blur")))
    with pytest.raises(XaiError, match="--replace pad is for text models; images take uniform"):
        image.evaluation(EvaluateOptions(replace=("pad",)))
    for refused, kwargs in (("--masks", {"masks": True}), ("--save-heatmaps", {"heatmaps": True}),
                            ("--sanity", {})):
        options = EvaluateOptions(sanity=not kwargs)
        with pytest.raises(XaiError, match=f"{refused} is for image"):
            document.evaluation(options, **kwargs)


def test_commands_are_the_kinds_own(image, document):
    for command in image.commands:
        image.check_command(command)
    document.check_command("explain")
    with pytest.raises(XaiError, match="xai spray works on image models; for a text model use "
                                       "xai explain or xai evaluate"):
        document.check_command("spray")


def test_a_document_batch_carries_the_padding_mask_as_a_named_input(document):
    ids = np.array([[5, 6, 7] + [0] * (document.graph.input_shape[0] - 3)])
    batch = document.convert(ids[0])
    assert batch.unbatched and batch.x.shape == (1, *document.graph.input_shape)
    assert not document.graph.text.mask_zero   # Arras et al.'s model: no padding is masked
    np.testing.assert_array_equal(batch.named["mask"], np.ones(ids.shape, np.float32))
    assert [w for w, _ in batch.samples[0].words] == ["5", "6", "7"]   # no vocabulary: the ids
    again = document.batch(batch.samples)
    np.testing.assert_array_equal(again.x, batch.x)
    np.testing.assert_array_equal(again.named["mask"], batch.named["mask"])
    taken = again.take(np.array([0]))
    assert taken.samples == again.samples and taken.named["mask"].shape == (1, ids.shape[1])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3), np.int32), "do not fit the text model's input"),
    (np.zeros((1, 7, 2), np.int32), "do not fit"),
    (np.zeros((1, 7)), "of integers"),
    (np.full((1, 7), 10**6), r"must lie in \[0, 30\)"),
])
def test_token_ids_that_do_not_fit_are_refused(document, bad, message):
    assert document.graph.input_shape[0] == 7   # the fixture's length
    with pytest.raises(XaiError, match=message):
        document.convert(bad)


def test_an_image_batch_is_the_stacked_arrays(image):
    x = np.random.default_rng(0).uniform(0, 1, image.graph.input_shape).astype(np.float32)
    one = image.convert(x)
    assert one.unbatched and one.named == {} and one.x.shape == (1, *x.shape)
    assert not image.convert(x[None]).unbatched
    with pytest.raises(XaiError, match=r"give one \(H, W, C\) or a batch"):
        image.convert(x[:3])


def test_maps_sum_each_position(image, document):
    relevance = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(image.maps(relevance), relevance.sum(axis=-1))
    np.testing.assert_array_equal(document.maps(relevance[0]), relevance[0].sum(axis=-1))
