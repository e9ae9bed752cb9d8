"""ROAD's noisy linear imputation against a dense implementation of the paper's equations,
analytic cases, and its noise."""

import numpy as np
import pytest

from conftest import FIXTURES
from xai_cli.measures import perturbation as pa
from xai_cli.measures.imputation import NOISE, NoisyLinearImputation, impute


def dense_reference(image, removed):
    """Rong et al.'s system written out pixel by pixel over the whole image: a kept pixel's
    equation is x = its value; a removed pixel's is sum_n w_n (x - x_n) = 0 over its
    neighbours inside the image, w = 1/6 beside it and 1/12 across a corner."""
    height, width, _ = image.shape
    size = height * width
    matrix, rhs = np.zeros((size, size)), np.zeros((size, image.shape[2]))
    for y in range(height):
        for x in range(width):
            i = y * width + x
            if not removed[y, x]:
                matrix[i, i], rhs[i] = 1.0, image[y, x]
                continue
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (dy or dx) and 0 <= y + dy < height and 0 <= x + dx < width:
                        weight = 1 / 12 if dy and dx else 1 / 6
                        matrix[i, i] += weight
                        matrix[i, (y + dy) * width + x + dx] -= weight
    return np.linalg.solve(matrix, rhs).reshape(image.shape)


@pytest.mark.parametrize("seed, shape, share", [(0, (7, 9, 3), 0.3), (1, (5, 5, 1), 0.7),
                                                (2, (8, 6, 2), 0.95), (3, (4, 11, 3), 0.05)])
def test_equals_the_dense_system_of_the_paper(seed, shape, share):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=shape)
    removed = rng.random(shape[:2]) < share
    removed[0, 0] = removed[-1, -1] = True       # corners: the renormalised border weights
    removed[1, 0] = False                        # something is known
    np.testing.assert_allclose(impute(image, removed), dense_reference(image, removed),
                               rtol=0, atol=1e-10)


def test_kept_pixels_are_untouched_and_nothing_removed_is_the_image():
    rng = np.random.default_rng(4)
    image = rng.normal(size=(6, 6, 3)).astype(np.float32)
    removed = np.zeros((6, 6), bool)
    np.testing.assert_array_equal(impute(image, removed), image)
    removed[2:4, 1:5] = True
    np.testing.assert_array_equal(impute(image, removed)[~removed], image[~removed])


def test_a_hole_in_a_linear_ramp_is_filled_exactly():
    """The weights are symmetric, so a plane is its own neighbours' weighted mean: away from
    the border the imputation of a plane is the plane, whatever the hole's shape."""
    y, x = np.mgrid[0:12, 0:14].astype(np.float64)
    plane = np.stack([0.3 * y - 0.2 * x + 1, 2 * x, -y], axis=-1)
    removed = np.zeros((12, 14), bool)
    removed[3:9, 4:7] = removed[5, 2:12] = True
    np.testing.assert_allclose(impute(plane, removed), plane, atol=1e-10)


def test_every_pixel_removed_gives_the_channel_means():
    image = np.random.default_rng(5).normal(size=(4, 5, 3))
    filled = impute(image, np.ones((4, 5), bool))
    np.testing.assert_allclose(filled, np.broadcast_to(image.mean(axis=(0, 1)), image.shape))


def test_noise_is_a_hundredth_of_the_channel_spread_only_on_removed_pixels():
    rng = np.random.default_rng(6)
    x = np.stack([rng.normal(0, 1, (64, 64, 3)) * [1.0, 10.0, 0.1]
                  for _ in range(2)]).astype(np.float32)
    removed = np.zeros((2, 64, 64), bool)
    removed[:, 8:56, 8:56] = True
    values = NoisyLinearImputation(x, [np.random.default_rng(i) for i in range(2)])(
        np.array([0, 1]), removed)
    noise = values - np.stack([impute(x[i], removed[i]) for i in range(2)])
    assert np.all(noise[~removed] == 0)
    spread = noise[removed].std(axis=0) / x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(spread, NOISE, rtol=0.05)


def test_values_depend_on_the_image_and_its_seed_not_on_the_batch():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (3, 9, 9, 3)).astype(np.float32)
    removed = rng.random((3, 9, 9)) < 0.4
    whole = NoisyLinearImputation(x, [np.random.default_rng([9, i]) for i in range(3)])
    alone = NoisyLinearImputation(x[2:], [np.random.default_rng([9, 2])])
    np.testing.assert_array_equal(whole(np.array([2]), removed[2:]),
                                  alone(np.array([0]), removed[2:]))
    np.testing.assert_array_equal(whole(np.array([2, 0]), removed[[2, 0]])[0],
                                  whole(np.array([2]), removed[2:])[0])


def test_road_curves_impute_each_step_from_what_is_left():
    """Step k of a ROAD curve scores the image with its k first patches imputed from the
    pixels still there: by hand on one image, 2x2 patches, a score that sums the pixels."""
    rng = np.random.default_rng(8)
    x = rng.uniform(0, 1, (1, 4, 4, 1)).astype(np.float32)
    ids, _ = pa.patch_ids((4, 4), (2, 2))
    ranks = pa.pixel_ranks(np.array([[3, 0, 2, 1]]), ids)
    road = pa.replacement_values(x, "road", None, [np.random.default_rng(0)], sigma=1.0)
    curves = pa.perturbation_curves(lambda batch, i: batch.sum(axis=(1, 2, 3)), x, ranks, road,
                                    steps=4, chunk=3)
    expected = [x.sum()]
    for k in range(1, 5):
        removed = ranks < k
        expected.append(road(np.array([0]), removed)[0][removed[0]].sum()
                        + x[0][~removed[0]].sum())
    np.testing.assert_allclose(curves[0], expected, rtol=1e-6)
    assert curves[0, 4] == pytest.approx(x.sum() + road.noise.sum(), rel=1e-5)  # all gone: mean


def test_equals_quantus_noisy_linear_imputation():
    """Reference values from Quantus 0.6.0 (noise 0), made by scripts/make_road_fixture.py."""
    with np.load(FIXTURES / "road_quantus.npz") as cases:
        for i in range(4):
            np.testing.assert_allclose(impute(cases[f"image_{i}"], cases[f"removed_{i}"]),
                                       cases[f"filled_{i}"], rtol=0, atol=1e-10)
