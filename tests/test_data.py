"""Toy datasets, minibatches and splits: sizes, labels, reproducibility and clear errors (API.md,
"data"; DataLoader follows REFERENCE 1: each epoch a fresh permutation cut into consecutive batches).

DataLoader batches are traced back to the rows of X they came from by comparing whole rows (every
test dataset has distinct rows), so coverage, order and pairing with y are checked on the data
itself, not on the loader's internals.
"""

import re
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_lec import Tensor
from tinygrad_lec import functional as F
from tinygrad_lec.data import DataLoader, load_digits, make_moons, make_spirals, train_test_split


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


# -- DataLoader ----------------------------------------------------------------------------------

sizes = st.integers(1, 50)
batch_sizes = st.integers(1, 60)


def dataset(n, dtype=np.float64, seed=0):
    """X (n, 3) with distinct rows (column 0 is the row number), y (n,) int64 labels in 0..9."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.arange(n), rng.standard_normal((n, 2))]).astype(dtype)
    return X, rng.integers(0, 10, n)


def source_rows(X, batch):
    """The row of X that each row of ``batch`` is, found by comparing whole rows."""
    hits = (np.asarray(batch)[:, None, :] == X[None, :, :]).all(axis=2)
    assert (hits.sum(axis=1) == 1).all(), "a batch row is no row of X"
    return hits.argmax(axis=1)


def epoch(loader, X):
    """One pass: the rows of X it visits, in order, and the batch sizes."""
    batches = [(source_rows(X, xb.data), len(xb.data)) for xb, _ in loader]
    order = np.concatenate([rows for rows, _ in batches]) if batches else np.zeros(0, dtype=int)
    return order, [size for _, size in batches]


@pytest.mark.parametrize("n,batch_size,drop_last,expected", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (10, 10, False, [10]), (10, 20, False, [10]), (10, 20, True, []),
])
def test_batch_sizes_keep_or_drop_the_short_last_batch(n, batch_size, drop_last, expected):
    X, y = dataset(n)
    loader = DataLoader(X, y, batch_size=batch_size, seed=0, drop_last=drop_last)
    assert [(len(xb.data), len(yb.data)) for xb, yb in loader] == [(b, b) for b in expected]
    assert len(loader) == len(expected)


@given(n=sizes, batch_size=batch_sizes, drop_last=st.booleans())
def test_len_and_batch_sizes_follow_n_batch_size_and_drop_last(n, batch_size, drop_last):
    X, y = dataset(n)
    loader = DataLoader(X, y, batch_size=batch_size, seed=0, drop_last=drop_last)
    full, rest = divmod(n, batch_size)
    expected = [batch_size] * full + ([rest] if rest and not drop_last else [])
    for _ in range(2):
        assert epoch(loader, X)[1] == expected
    assert len(loader) == len(expected)


@given(n=sizes, batch_size=batch_sizes, drop_last=st.booleans(), shuffle=st.booleans())
def test_every_sample_appears_exactly_once_per_epoch(n, batch_size, drop_last, shuffle):
    X, y = dataset(n)
    loader = DataLoader(X, y, batch_size=batch_size, shuffle=shuffle, seed=0, drop_last=drop_last)
    for _ in range(3):
        order, _ = epoch(loader, X)
        assert len(np.unique(order)) == len(order)  # no repeat
        if drop_last:  # only the short last batch is left out
            assert len(order) == n - n % batch_size
        else:  # no loss
            assert sorted(order.tolist()) == list(range(n))


@given(n=sizes, batch_size=batch_sizes, drop_last=st.booleans())
def test_rows_of_X_and_y_stay_paired(n, batch_size, drop_last):
    X, y = dataset(n)
    for xb, yb in DataLoader(X, y, batch_size=batch_size, seed=1, drop_last=drop_last):
        np.testing.assert_array_equal(yb.data, y[source_rows(X, xb.data)])


def test_batch_size_one_gives_one_sample_per_update():
    X, y = dataset(7)
    batches = list(DataLoader(X, y, batch_size=1, seed=0))
    assert len(batches) == 7 and all(xb.shape == (1, 3) and yb.shape == (1,) for xb, yb in batches)
    assert sorted(source_rows(X, np.concatenate([xb.data for xb, _ in batches])).tolist()) == list(range(7))


@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_size_len_X_gives_the_full_batch(drop_last):
    X, y = dataset(12)
    loader = DataLoader(X, y, batch_size=len(X), seed=0, drop_last=drop_last)
    (xb, yb), = list(loader)
    assert sorted(source_rows(X, xb.data).tolist()) == list(range(12))


def test_the_same_seed_gives_the_same_sequence_of_epochs():
    X, y = dataset(30)
    a, b = (DataLoader(X, y, batch_size=7, seed=5) for _ in range(2))
    for _ in range(3):
        batches_a, batches_b = list(a), list(b)
        assert len(batches_a) == len(batches_b)
        for (xa, ya), (xb, yb) in zip(batches_a, batches_b):
            assert np.array_equal(xa.data, xb.data) and np.array_equal(ya.data, yb.data)


def test_another_seed_gives_another_order():
    X, y = dataset(30)
    a, b = (DataLoader(X, y, batch_size=7, seed=s) for s in (5, 6))
    assert not np.array_equal(epoch(a, X)[0], epoch(b, X)[0])


def test_each_epoch_takes_a_new_permutation():
    X, y = dataset(30)
    loader = DataLoader(X, y, batch_size=7, seed=0)
    orders = [epoch(loader, X)[0].tolist() for _ in range(4)]
    assert all(sorted(order) == list(range(30)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4 and list(range(30)) not in orders


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_false_keeps_the_order_of_X_every_epoch(drop_last):
    X, y = dataset(10)
    loader = DataLoader(X, y, batch_size=4, shuffle=False, drop_last=drop_last)
    kept = 8 if drop_last else 10
    for _ in range(2):
        batches = list(loader)
        np.testing.assert_array_equal(np.concatenate([xb.data for xb, _ in batches]), X[:kept])
        np.testing.assert_array_equal(np.concatenate([yb.data for _, yb in batches]), y[:kept])


def test_iterating_leaves_X_and_y_unchanged_and_batches_are_copies():
    X, y = dataset(10)
    X0, y0 = X.copy(), y.copy()
    for shuffle in (True, False):
        for xb, yb in DataLoader(X, y, batch_size=4, shuffle=shuffle, seed=0):
            xb.data[...] = -1.0  # e.g. an in-place normalisation of the batch
            yb.data[...] = -1.0
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batches_are_tensors_features_keep_their_float_dtype(dtype):
    X, y = dataset(10, dtype=dtype)
    for xb, yb in DataLoader(X, y, batch_size=4, seed=0):
        assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
        assert xb.dtype == dtype and not xb.requires_grad and not yb.requires_grad


def test_labels_are_float64_whole_numbers_that_cross_entropy_takes_as_classes():
    X, y = dataset(10)
    logits = np.random.default_rng(2).standard_normal((10, 10))
    for xb, yb in DataLoader(X, y, batch_size=4, seed=0):
        rows = source_rows(X, xb.data)
        assert yb.dtype == np.float64 and np.array_equal(yb.data, y[rows].astype(np.float64))
        z1, z2 = Tensor(logits[rows], requires_grad=True), Tensor(logits[rows], requires_grad=True)
        loss_batch, loss_int = F.cross_entropy(z1, yb), F.cross_entropy(z2, y[rows])
        loss_batch.backward()
        loss_int.backward()
        assert loss_batch.item() == loss_int.item()
        np.testing.assert_array_equal(z1.grad, z2.grad)


def test_X_and_y_of_different_lengths_raise_naming_both_shapes():
    X, y = dataset(10)
    with pytest.raises(ValueError, match=re.escape("(10, 3)") + ".*" + re.escape("(9,)")) as info:
        DataLoader(X, y[:9])
    assert "X and y" in str(info.value)


@pytest.mark.parametrize("bad", [0, -3, True, False, 2.5])
def test_a_bad_batch_size_raises_naming_batch_size_and_the_value(bad):
    X, y = dataset(10)
    with pytest.raises(ValueError, match=f"batch_size.*{re.escape(repr(bad))}"):
        DataLoader(X, y, batch_size=bad)


# -- load_digits -----------------------------------------------------------------------------------


def test_digits_are_1797_8x8_images_in_0_1_with_labels_0_to_9():
    pytest.importorskip("sklearn")
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype.kind == "i" and sorted(set(y.tolist())) == list(range(10))


def test_digits_without_scikit_learn_raise_an_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # a None entry makes the import fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=re.escape("tinygrad-lec[digits]")):
        load_digits()


# -- train_test_split ------------------------------------------------------------------------------


def test_split_sizes_follow_the_test_fraction():
    X, y = dataset(40)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.25, seed=0)
    assert (X_train.shape, X_test.shape, y_train.shape, y_test.shape) == ((30, 3), (10, 3), (30,), (10,))


def test_split_parts_are_disjoint_cover_all_rows_and_keep_pairs():
    X, y = dataset(40)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.3, seed=0)
    train, test = source_rows(X, X_train), source_rows(X, X_test)
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(40))
    np.testing.assert_array_equal(y_train, y[train])
    np.testing.assert_array_equal(y_test, y[test])


def test_split_is_shuffled_and_reproducible_with_a_seed():
    X, y = dataset(40)
    a, b, c = (train_test_split(X, y, 0.25, seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(source_rows(X, a[0]), np.sort(source_rows(X, a[0])))  # not in X's order


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan")])
def test_a_test_fraction_outside_0_1_raises_naming_it(bad):
    X, y = dataset(10)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(X, y, test_fraction=bad)


def test_split_of_X_and_y_of_different_lengths_raises():
    X, y = dataset(10)
    with pytest.raises(ValueError, match="X and y"):
        train_test_split(X, y[:9])


@pytest.mark.parametrize("n, expected_test", [(6, 2), (10, 3), (14, 4), (18, 5)])
def test_train_test_split_rounds_the_test_size_up_like_scikit_learn(n, expected_test):
    X, y = np.arange(2 * n, dtype=float).reshape(n, 2), np.arange(n)
    assert len(train_test_split(X, y, 0.25, seed=0)[1]) == expected_test


@pytest.mark.parametrize("n, fraction", [(1, 0.5), (2, 0.9)])
def test_train_test_split_that_leaves_no_training_rows_is_a_value_error(n, fraction):
    with pytest.raises(ValueError, match="no training rows"):
        train_test_split(np.zeros((n, 2)), np.arange(n), fraction, seed=0)


# -- hardening (issue 8): bad arguments raise errors naming the function and the argument --------

BAD_SEEDS = [pytest.param(-1, ValueError, id="negative"), pytest.param(1.5, TypeError, id="float"),
             pytest.param("a", TypeError, id="str"), pytest.param([1, -2], TypeError, id="list")]


@pytest.mark.parametrize("seed, error", BAD_SEEDS)
@pytest.mark.parametrize("name, call", [
    ("DataLoader", lambda seed: DataLoader(*dataset(4), seed=seed)),
    ("make_moons", lambda seed: make_moons(10, seed=seed)),
    ("make_spirals", lambda seed: make_spirals(10, seed=seed)),
    ("train_test_split", lambda seed: train_test_split(*dataset(4), seed=seed)),
])
def test_a_bad_seed_raises_naming_the_function_and_seed(name, call, seed, error):
    with pytest.raises(error, match=f"^{name}: seed"):
        call(seed)


@pytest.mark.parametrize("X, y, argument", [
    pytest.param([["a", "b"]] * 3, np.arange(3), "X", id="X-str"),
    pytest.param(np.zeros((3, 2)), ["a"] * 3, "y", id="y-str"),
    pytest.param(np.zeros((3, 2)), [None] * 3, "y", id="y-None"),
    pytest.param(np.zeros((3, 2), complex), np.arange(3), "X", id="X-complex"),
    pytest.param(None, np.arange(3), "X", id="X-None"),
])
def test_data_loader_rejects_non_numeric_data_when_built(X, y, argument):
    """Not at the first iteration, from inside Tensor, as it did."""
    with pytest.raises(TypeError, match=f"^DataLoader: {argument} must"):
        DataLoader(X, y)


@pytest.mark.parametrize("option", ["shuffle", "drop_last"])
@pytest.mark.parametrize("bad", [np.array([True, False]), "yes", None])
def test_data_loader_flags_must_be_bools(option, bad):
    with pytest.raises(TypeError, match=f"^DataLoader: {option}"):
        DataLoader(*dataset(4), **{option: bad})


@pytest.mark.parametrize("make", [make_moons, make_spirals])
@pytest.mark.parametrize("bad, error", [("0.1", TypeError), (None, TypeError), ([0.1], TypeError),
                                        (10**400, ValueError)])
def test_a_noise_of_the_wrong_type_names_noise(make, bad, error):
    with pytest.raises(error, match=f"^{make.__name__}: noise"):
        make(10, noise=bad)


@pytest.mark.parametrize("bad", ["3", None, [3]])
def test_a_sample_count_that_is_no_number_is_a_type_error(bad):
    with pytest.raises(TypeError, match="^make_moons: n_samples"):
        make_moons(bad)


@pytest.mark.parametrize("bad", [[0.5], "0.25", None, {}])
def test_a_test_fraction_that_is_no_number_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="^train_test_split: test_fraction"):
        train_test_split(*dataset(10), test_fraction=bad)


def test_a_ragged_X_is_a_value_error_naming_train_test_split():
    with pytest.raises(ValueError, match="^train_test_split: X must be an array"):
        train_test_split([[1.0, 2.0], [3.0]], np.arange(2))
