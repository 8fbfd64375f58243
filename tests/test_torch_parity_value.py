"""Value against torch float64 scalar tensors: the same ops and programs give the same forward
values and gradients (REFERENCE 13: single forward/backward, rtol 1e-12, atol 1e-14), including
torch's conventions at kinks and at the edge of the domain."""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_graph import bounded
from test_value_ops import CASES, UPSTREAM

import tinygrad_lec as tl
from tinygrad_lec import testing

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-12, 1e-14


def run_value(f, xs):
    leaves = [tl.Value(x) for x in xs]
    out = f(*leaves)
    out.backward()
    return out.data, [v.grad for v in leaves]


def run_torch(f, xs):
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = f(*leaves)
    if out.requires_grad:
        out.backward()
    return out.item(), [0.0 if t.grad is None else t.grad.item() for t in leaves]


def assert_same_as_torch(f, xs):
    data, grads = run_value(f, xs)
    expected_data, expected_grads = run_torch(f, xs)
    assert data == pytest.approx(expected_data, rel=RTOL, abs=ATOL, nan_ok=True)
    assert grads == pytest.approx(expected_grads, rel=RTOL, abs=ATOL, nan_ok=True)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@given(data=st.data())
def test_op_matches_torch(case, data):
    numbers = [data.draw(domain, label=f"operand {i}") for i, domain in enumerate(case.domains)]
    upstream = data.draw(UPSTREAM, label="upstream gradient")
    xs = [x for x, k in zip(numbers, case.kinds) if k == "v"]
    assert_same_as_torch(lambda *leaves: case.call(numbers, leaves) * upstream, xs)


@given(testing.expressions(kinks=True), st.data())
def test_random_program_matches_torch(expr, data):
    xs = data.draw(st.lists(testing.floats(-3, 3), min_size=expr.n_inputs, max_size=expr.n_inputs))
    assume(bounded(expr(*(tl.Value(x) for x in xs)), 1e6))
    assert_same_as_torch(expr, xs)


CORNERS = {
    "relu_at_zero": (lambda a: a.relu(), [0.0]),  # grad 0
    "abs_at_zero": (lambda a: a.abs(), [0.0]),  # grad 0
    "sqrt_at_zero": (lambda a: a.sqrt(), [0.0]),  # grad inf
    "relu_of_a_difference_at_zero": (lambda a, b: (a - b).relu() * a, [1.5, 1.5]),
    "exp_overflow": (lambda a: a.exp(), [1000.0]),  # inf, grad inf
    "sigmoid_saturated_high": (lambda a: a.sigmoid(), [1000.0]),
    "sigmoid_saturated_low": (lambda a: a.sigmoid(), [-1000.0]),
    "tanh_saturated": (lambda a: a.tanh(), [30.0]),
    "zero_to_the_zero": (lambda a: a**0.0, [0.0]),
    "zero_to_the_zero_both_values": (lambda a, b: a**b, [0.0, 0.0]),
    "zero_to_one_half": (lambda a: a**0.5, [0.0]),  # d/da = inf
    "zero_to_one_half_both_values": (lambda a, b: a**b, [0.0, 0.5]),
    "zero_to_the_one": (lambda a: a**1.0, [0.0]),
    "zero_to_the_two_both_values": (lambda a, b: a**b, [0.0, 2.0]),
    "negative_base_integer_exponent": (lambda a: a**3, [-2.0]),
    "negative_base_negative_integer_exponent": (lambda a: a**-1, [-2.0]),
    "negative_base_value_exponent": (lambda a, b: a**b, [-2.0, 2.0]),  # d/db = nan
    "number_zero_to_value": (lambda b: 0.0**b, [2.0]),
    "number_zero_to_value_zero": (lambda b: 0.0**b, [0.0]),
    "number_negative_to_value": (lambda b: (-2.0) ** b, [2.0]),  # d/db = nan
    "number_one_to_value": (lambda b: 1.0**b, [3.0]),
    "negative_base_infinite_exponent": (lambda a: a**math.inf, [-2.0]),
}


@pytest.mark.parametrize("f, xs", CORNERS.values(), ids=CORNERS.keys())
def test_corner_case_matches_torch(f, xs):
    assert_same_as_torch(f, xs)
