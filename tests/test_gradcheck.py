"""tl.gradcheck and tl.testing (API.md, "gradcheck and testing"), on Values."""

import math
import re

import pytest
from hypothesis import assume, given

import tinygrad_lec as tl
from tinygrad_lec import Value, testing

# -- functions with right and wrong gradients -----------------------------------------------------

CORRECT = {
    "tanh_exp": (lambda a, b: (a * b).tanh() + a.exp(), (0.3, -1.2)),
    "log_sqrt_div": (lambda a, b: a.log() * b.sqrt() / (a + b), (0.7, 2.5)),
    "pow_both": (lambda a, b: a**b + 2.0**b - b**3, (1.3, 0.4)),
    "relu_abs_off_kink": (lambda a: a.relu() * (-a).abs() + a.sigmoid(), (0.8,)),
    "list_output": (lambda a, b: [a * b, a.exp(), b.tanh()], (0.3, -1.2)),
    "tuple_output": (lambda a, b: (a - b, (a * b).sigmoid()), (0.3, -1.2)),
}


@pytest.mark.parametrize("f, point", CORRECT.values(), ids=CORRECT.keys())
def test_gradcheck_accepts_correct_gradients(f, point):
    assert tl.gradcheck(f, [Value(x) for x in point]) is True


def square_through_detach(x):
    return x * x.detach()  # backward gives x, the true derivative is 2x


def sin_read_from_data(x):
    return x * 0.0 + math.sin(x.data)  # the sine bypasses the graph: backward gives 0, not cos x


def identity_with_grad_off_by_1e_4(x):
    return x * 1.0001 - x.detach() * 0.0001  # value x, backward gives 1.0001 instead of 1


WRONG = {
    "detached_factor": square_through_detach,
    "op_bypassing_the_graph": sin_read_from_data,
    "wrong_list_element": lambda x: [x * x, square_through_detach(x)],
    "wrong_tuple_element": lambda x: (square_through_detach(x), x * x),
}


@pytest.mark.parametrize("f", WRONG.values(), ids=WRONG.keys())
def test_gradcheck_raises_gradcheck_error_on_a_wrong_gradient(f):
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(f, [Value(1.3)])


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(tl.GradcheckError, AssertionError)


def test_gradcheck_honours_its_tolerances():
    assert tl.gradcheck(identity_with_grad_off_by_1e_4, [Value(0.5)], rtol=1e-3)
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(identity_with_grad_off_by_1e_4, [Value(0.5)], rtol=1e-6, atol=1e-8)


def test_gradcheck_error_names_input_index_both_values_and_the_error():
    a, b = Value(0.5), Value(1.5, label="b")
    with pytest.raises(tl.GradcheckError) as info:
        tl.gradcheck(lambda a, b: a * a + square_through_detach(b), [a, b])
    message = str(info.value)
    assert "input 1" in message
    assert "'b'" in message
    assert "1.5" in message  # backward's value
    assert re.search(r"\b(3\.0000|2\.9999)", message)  # central differences' value
    assert "error" in message


# -- gradcheck leaves its inputs as it found them --------------------------------------------------


def test_gradcheck_leaves_data_and_grad_unchanged():
    a, b = Value(0.1), Value(-0.3)
    a.grad, b.grad = 0.25, -7.0
    tl.gradcheck(lambda a, b: (a * b).exp() + a, [a, b])
    assert (a.data, b.data, a.grad, b.grad) == (0.1, -0.3, 0.25, -7.0)


def test_gradcheck_leaves_data_and_grad_unchanged_when_it_raises():
    a, b = Value(0.1), Value(-0.3)
    a.grad, b.grad = 0.25, -7.0
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(lambda a, b: a * b + square_through_detach(b), [a, b])
    assert (a.data, b.data, a.grad, b.grad) == (0.1, -0.3, 0.25, -7.0)


def test_gradcheck_leaves_data_and_grad_unchanged_when_f_raises():
    a = Value(0.1)
    a.grad = 0.25

    def fails_at_the_perturbed_point(x):
        if x.data != 0.1:
            raise RuntimeError("only defined at 0.1")
        return x * x

    with pytest.raises(RuntimeError):
        tl.gradcheck(fails_at_the_perturbed_point, [a])
    assert (a.data, a.grad) == (0.1, 0.25)


# -- bad inputs -----------------------------------------------------------------------------------


def test_gradcheck_rejects_a_non_leaf_input():
    with pytest.raises(ValueError, match="leaf"):
        tl.gradcheck(lambda x: x * x, [Value(1.0) * 2.0])


def test_gradcheck_rejects_empty_inputs():
    with pytest.raises(ValueError, match="empty"):
        tl.gradcheck(lambda: Value(1.0), [])


def test_gradcheck_rejects_a_plain_number_input():
    with pytest.raises(TypeError, match="input 0"):
        tl.gradcheck(lambda x: x * x, [1.0])


# -- tl.testing for users' own property tests -----------------------------------------------------


@given(testing.values(-1.0, 2.0))
def test_values_draws_fresh_leaves_in_range(v):
    assert isinstance(v, Value)
    assert v.is_leaf and v.grad == 0.0
    assert -1.0 <= v.data <= 2.0


@given(testing.expressions(max_inputs=2, max_steps=4))
def test_expressions_respects_its_size_limits(expr):
    assert 1 <= expr.n_inputs <= 2
    assert 1 <= len(expr.steps) <= 4
    assert isinstance(expr(*(Value(0.5) for _ in range(expr.n_inputs))), Value)


def test_assert_grads_match_raises_gradcheck_error_on_a_wrong_gradient():
    with pytest.raises(tl.GradcheckError):
        testing.assert_grads_match(square_through_detach, Value(1.3))


def test_assert_grads_match_uses_the_strict_float64_tolerances():
    # REFERENCE 13: rtol 1e-6, so a relative error of 1e-4 that gradcheck's defaults allow fails.
    with pytest.raises(tl.GradcheckError):
        testing.assert_grads_match(identity_with_grad_off_by_1e_4, Value(0.5))


# What the README shows: a user's own property tests, written with tl.testing.


def softplus(x):
    return (1 + x.exp()).log()


@given(testing.values(-5, 5))
def test_users_softplus_gradient_matches_finite_differences(x):
    testing.assert_grads_match(softplus, x)


@given(testing.values(-5, 5), testing.values(0.5, 3))
def test_users_two_argument_function_gradients_match_finite_differences(x, y):
    testing.assert_grads_match(lambda x, y: softplus(x * y) / y, x, y)


@given(testing.expressions(max_inputs=1), testing.values(-2, 2))
def test_users_random_programs_match_finite_differences(program, x):
    # Central differences lose about 1e-10*|f| to rounding (eps*|f|/h): past |f| ~ 100 that
    # exceeds atol 1e-8 for a correct gradient, so such programs are skipped.
    assume(testing.finite(program(x).data, bound=100))
    testing.assert_grads_match(program, x)
