"""Toy datasets: sizes, labels, reproducibility and clear errors (API.md, "data")."""

import numpy as np
import pytest

from tinygrad_lec.data import make_moons, make_spirals


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_moons_has_n_samples_in_two_balanced_classes(n):
    X, y = make_moons(n, seed=0)
    assert X.shape == (n, 2) and X.dtype == np.float64 and y.shape == (n,) and y.dtype == np.int64
    assert set(y.tolist()) <= {0, 1} and abs(int((y == 0).sum()) - int((y == 1).sum())) <= 1


def test_moons_without_noise_lie_on_the_two_half_circles():
    X, y = make_moons(50, noise=0.0, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-12)


@pytest.mark.parametrize("n,k", [(3, 3), (10, 3), (300, 3), (9, 2)])
def test_spirals_split_the_samples_evenly_over_the_classes(n, k):
    X, y = make_spirals(n, n_classes=k, seed=0)
    counts = np.bincount(y, minlength=k)
    assert X.shape == (n, 2) and counts.sum() == n and counts.max() - counts.min() <= 1


@pytest.mark.parametrize("make", [make_moons, make_spirals])
def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(make):
    a, b, c = make(60, seed=1), make(60, seed=1), make(60, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("make", [make_moons, make_spirals])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_sample_count_names_n_samples(make, bad):
    with pytest.raises(ValueError, match="n_samples"):
        make(bad)


@pytest.mark.parametrize("make", [make_moons, make_spirals])
def test_a_negative_or_non_finite_noise_names_noise(make):
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="noise"):
            make(10, noise=bad)


def test_spirals_reject_zero_classes():
    with pytest.raises(ValueError, match="n_classes"):
        make_spirals(10, n_classes=0)
