"""Every Tensor op against torch float64 (REFERENCE 13): the factory's table (tests/tensor_factory.py)
run through torch, forward and gradients with a random upstream gradient; and the corners where
conventions could differ: var(correction=1), max with ties, repeated indices, logits at +-1000.

Tolerances: rtol 1e-12, atol 1e-14 (REFERENCE 13) where both sides compute the same expression;
rows with sums (reductions, matmul, softmax) carry SUM_ORDER_TOL = (1e-12, 1e-13) in the table,
because torch adds in a different order than numpy (see tensor_factory.SUM_ORDER_TOL).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tensor_factory as factory  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tensor_factory import CASES  # noqa: E402

from tinygrad_lec import Tensor  # noqa: E402

EXAMPLES = min(15, settings().max_examples)
cases = pytest.mark.parametrize("case", CASES, ids=str)


def torch_operands(example):
    """Leaves needing grad at "t" positions, constant tensors at "a", Python floats at "n"."""
    out = []
    for x, kind in zip(example.args, example.kinds):
        if kind == "t":
            out.append(torch.tensor(x, dtype=torch.float64, requires_grad=True))
        elif kind == "a":
            out.append(torch.tensor(x, dtype=torch.float64))
        else:
            out.append(float(x))
    return out


def torch_call(case, example, operands):
    return (case.torch_op or case.op)(*operands, **example.kwargs)


@cases
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_forward_matches_torch_float64(case, data):
    example = data.draw(case.examples, label="example")
    ours = factory.call(case, example).out
    theirs = torch_call(case, example, torch_operands(example)).detach().numpy()
    assert ours.shape == theirs.shape
    rtol, atol = case.torch_tol
    np.testing.assert_allclose(ours.data, theirs, rtol=rtol, atol=atol)


@cases
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_gradients_match_torch_float64(case, data):
    example = data.draw(case.examples, label="example")
    run = factory.call(case, example)
    upstream = factory.draw_upstream(data, run.out.shape)
    run.out.backward(upstream)
    operands = torch_operands(example)
    torch_call(case, example, operands).backward(torch.from_numpy(upstream))
    rtol, atol = case.torch_tol
    for i in example.tensor_positions:
        np.testing.assert_allclose(run.leaves[i].grad, operands[i].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of operand {i}")


# -- corners, each against torch --------------------------------------------------------------------

def both(data):
    return Tensor(np.array(data, dtype=np.float64), requires_grad=True), \
        torch.tensor(data, dtype=torch.float64, requires_grad=True)


def assert_same(ours, theirs, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)], ids=repr)
def test_var_correction1_is_torch_var_unbiased(axis):
    data = [[0.5, -1.25, 3.0], [2.0, 0.75, -0.5]]
    x, tx = both(data)
    ours = x.var(axis=axis, correction=1)
    theirs = torch.var(tx, dim=axis, unbiased=True)
    upstream = np.full(ours.shape, 0.75)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    assert_same(ours.data, theirs)
    assert_same(x.grad, tx.grad)


@pytest.mark.parametrize("data, axis", [
    ([1.0, 3.0, 3.0], None), ([4.0, 4.0, 4.0], None), ([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]], 1),
    ([[2.0, 2.0], [2.0, 1.0]], 0), ([[7.0, 7.0], [7.0, 1.0]], None),
], ids=["vector", "all_tied", "rows", "columns", "three_way"])
def test_max_with_ties_splits_the_gradient_like_torch_amax(data, axis):
    x, tx = both(data)
    ours = x.max(axis=axis)
    theirs = tx.amax(dim=tuple(range(tx.ndim)) if axis is None else axis)
    upstream = np.arange(1.0, ours.data.size + 1).reshape(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    assert_same(ours.data, theirs)
    assert_same(x.grad, tx.grad)


@pytest.mark.parametrize("index", [
    np.array([0, 2, 0, 0]), [1, 1], (np.array([0, 0, 1]), np.array([2, 2, 0])),
    (slice(None), np.array([1, 1, 0])), (np.array([[0, 0], [1, 0]]), slice(1, None)),
], ids=["rows", "list", "pairs", "columns", "2d_index_then_slice"])
def test_getitem_with_repeated_indices_accumulates_like_torch(index):
    data = np.arange(12.0).reshape(3, 4) / 7
    x, tx = both(data)
    ours = x[index]
    theirs = tx[tuple(torch.as_tensor(i) if isinstance(i, (list, np.ndarray)) else i for i in index)
                if isinstance(index, tuple) else torch.as_tensor(index)]
    upstream = np.linspace(-1.0, 1.0, ours.data.size).reshape(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    assert_same(ours.data, theirs)
    assert_same(x.grad, tx.grad)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("data", [[1000.0, -1000.0, 0.0], [1000.0, 1000.0], [-1000.0, -1000.0],
                                  [[-1000.0, -999.0, 1000.0], [0.5, -1000.0, 1000.0]]],
                         ids=["mixed", "plus", "minus", "rows"])
def test_softmax_at_logits_plus_minus_1000_matches_torch(name, data):
    x, tx = both(data)
    ours = getattr(x, name)(axis=-1)
    theirs = getattr(torch, name)(tx, dim=-1)
    upstream = np.linspace(-2.0, 2.0, ours.data.size).reshape(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    assert np.all(np.isfinite(ours.data)) and np.all(np.isfinite(x.grad))
    assert_same(ours.data, theirs)
    assert_same(x.grad, tx.grad)
