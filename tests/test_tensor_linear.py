"""linear(x, W, b): the one op with three operands (its numeric checks are rows of tensor_factory)."""

import numpy as np
import pytest

import tinygrad_lec as tl
from tinygrad_lec.functional import linear
from tinygrad_lec.graph import topological_order


def layer(dtype=np.float64):
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.normal(size=(4, 3)).astype(dtype))
    W = tl.Tensor(rng.normal(size=(5, 3)).astype(dtype), requires_grad=True)
    b = tl.Tensor(rng.normal(size=(5,)).astype(dtype), requires_grad=True)
    return x, W, b


def test_parents_are_input_weight_and_bias_in_order():
    x, W, b = layer()
    out = linear(x, W, b)
    assert out.op == "linear"
    assert [p is q for p, q in zip(out.parents, (x, W, b), strict=True)] == [True] * 3


def test_the_internal_join_of_weight_and_bias_never_shows_in_a_walk():
    x, W, b = layer()
    nodes = topological_order(linear(x, W, b).sum())
    assert all(isinstance(v, tl.Tensor) for v in nodes)
    assert {id(v) for v in (x, W, b)} <= {id(v) for v in nodes}


def test_weight_gradient_is_row_major_like_the_weight():
    x, W, b = layer()
    linear(x, W, b).sum().backward()
    assert W.grad.flags.c_contiguous and W.grad.shape == W.shape


def test_float32_stays_float32_in_output_and_gradients():
    x, W, b = layer(np.float32)
    out = linear(x, W, b)
    (out * 2.0).sum().backward()
    assert out.dtype == np.float32 and W.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_no_grad_gives_a_leaf():
    x, W, b = layer()
    with tl.no_grad():
        out = linear(x, W, b)
    assert out.op == "" and out.parents == () and not out.requires_grad


def test_backward_twice_doubles_weight_and_bias_grads_exactly():
    x, W, b = layer()
    out = linear(x, W, b).tanh().sum()
    out.backward()
    first = W.grad.copy(), b.grad.copy()
    out.backward()
    assert np.array_equal(W.grad, 2 * first[0]) and np.array_equal(b.grad, 2 * first[1])


def test_mismatched_weight_names_linear_and_both_shapes():
    x, W, _ = layer()
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 3\).*weight of shape \(3, 5\)"):
        linear(x, W.T.detach())


def test_bias_of_the_wrong_shape_names_the_expected_shape():
    x, W, _ = layer()
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\), got \(4,\)"):
        linear(x, W, tl.Tensor(np.zeros(4)))
