"""The pool of large arrays (pool.py): it must never hand out an array anyone can still see."""

import numpy as np
import pytest
import tensor_factory as factory
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lec import Tensor, pool
from tinygrad_lec.functional import linear


@pytest.fixture
def pool_everything(monkeypatch):
    """Every array of every op goes through the pool (normally only those of 64 KiB and more)."""
    monkeypatch.setattr(pool, "MIN_BYTES", 0)
    pool.clear()
    yield
    pool.clear()


def mlp_step(params, x, y):
    """Forward and backward of a small MLP; returns the loss, the logits array and the grads."""
    W1, b1, W2, b2 = params
    h = linear(Tensor(x), W1, b1).relu()
    logits = linear(h, W2, b2)
    loss = -logits.log_softmax(axis=1)[np.arange(len(y)), y].mean()
    loss.backward()
    grads = [p.grad for p in params]
    for p in params:
        p.grad = None
    return loss.item(), logits.data, grads


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.normal(size=s) * 0.3, requires_grad=True) for s in ((16, 8), (16,), (4, 16), (4,))]


def test_results_are_the_same_with_and_without_the_pool(monkeypatch):
    rng = np.random.default_rng(1)
    batches = [(rng.normal(size=(6, 8)), rng.integers(0, 4, 6)) for _ in range(5)]
    monkeypatch.setattr(pool, "MIN_BYTES", None)
    params = make_params()
    plain = [mlp_step(params, x, y) for x, y in batches]
    monkeypatch.setattr(pool, "MIN_BYTES", 0)
    pool.clear()
    params = make_params()
    pooled = [mlp_step(params, x, y) for x, y in batches]
    pool.clear()
    for (l1, z1, g1), (l2, z2, g2) in zip(plain, pooled, strict=True):
        assert l1 == l2
        np.testing.assert_array_equal(z1, z2)
        for a, b in zip(g1, g2, strict=True):
            np.testing.assert_array_equal(a, b)


def test_an_array_the_user_keeps_is_never_reused(pool_everything):
    params = make_params()
    rng = np.random.default_rng(2)
    kept = []
    for _ in range(6):  # every step's graph dies; the kept arrays must not change
        _, logits, grads = mlp_step(params, rng.normal(size=(6, 8)), rng.integers(0, 4, 6))
        kept.append((logits, logits.copy(), grads, [g.copy() for g in grads]))
    for logits, logits_then, grads, grads_then in kept:
        np.testing.assert_array_equal(logits, logits_then)
        for g, g_then in zip(grads, grads_then, strict=True):
            np.testing.assert_array_equal(g, g_then)
    assert len({id(k[0]) for k in kept}) == len(kept)


def test_arrays_of_a_dead_graph_go_to_the_pool_only_when_unreferenced(pool_everything):
    x = Tensor(np.ones((3, 5)), requires_grad=True)
    y = (x * 2.0).relu()
    kept = y.data
    del y
    pooled = [a for arrays in pool._waiting.values() for a in arrays]
    assert pooled, "the product's array should have been taken back"
    assert all(a is not kept for a in pooled)


def test_a_pooled_array_is_handed_out_again(pool_everything):
    x = Tensor(np.ones((3, 5)), requires_grad=True)
    y = x.relu()
    address = y.data.__array_interface__["data"][0]
    del y
    z = x.relu()
    assert z.data.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(z.data, np.ones((3, 5)))


def test_clear_pool_empties_it(pool_everything):
    x = Tensor(np.ones((3, 5)), requires_grad=True)
    y = x.relu()
    del y
    assert pool.held() > 0
    pool.clear()
    assert pool.held() == 0


def test_the_pool_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(pool, "MIN_BYTES", None)
    pool.clear()
    x = Tensor(np.ones((300, 300)), requires_grad=True)
    y = x.relu()
    del y
    assert pool.held() == 0


# -- every op of the table with every array going through the pool --------------------------------



@pytest.mark.parametrize("case", factory.CASES, ids=str)
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data())
def test_every_op_is_exact_and_alias_free_with_the_pool_on_for_every_array(case, data):
    saved = pool.MIN_BYTES
    pool.MIN_BYTES = 0
    try:
        for _ in range(2):  # the second round runs on arrays the first one gave back
            example = data.draw(case.examples, label="example")
            factory.check_gradient(case, example, data)
            factory.check_no_gradient_aliases(case, example, np.float64, data)
            factory.check_inputs_not_mutated(case, example, np.float64, data)
    finally:
        pool.MIN_BYTES = saved
        pool.clear()
