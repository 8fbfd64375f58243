"""tl.gradcheck and tl.testing (API.md, "gradcheck and testing"), on Values."""

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given

import tinygrad_lec as tl
from tinygrad_lec import Tensor, Value, testing

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


# -- bad arguments: errors naming gradcheck, inputs left as they were (issue 8) --------------------

BAD_OPTIONS = {
    "eps_zero": ({"eps": 0.0}, ValueError), "eps_negative": ({"eps": -1e-6}, ValueError),
    "eps_none": ({"eps": None}, TypeError), "eps_str": ({"eps": "1e-6"}, TypeError),
    "eps_huge_int": ({"eps": 10**400}, ValueError), "eps_nan": ({"eps": math.nan}, ValueError),
    "eps_complex": ({"eps": 1j}, TypeError), "eps_value": ({"eps": Value(0.5)}, TypeError),
    "eps_array": ({"eps": np.array([1.0, 2.0])}, TypeError),
    "atol_negative": ({"atol": -1.0}, ValueError), "atol_complex": ({"atol": 1j}, TypeError),
    "rtol_list": ({"rtol": [1e-3]}, TypeError), "rtol_huge_int": ({"rtol": 10**400}, ValueError),
    "seed_str": ({"seed": "0"}, TypeError),
}


@pytest.mark.parametrize("kind", ["values", "tensor"])
@pytest.mark.parametrize("options, error", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_gradcheck_bad_option_raises_naming_it_and_leaves_the_inputs_alone(options, error, kind):
    if kind == "values":
        inputs = [Value(0.3), Value(-0.7)]
        inputs[0].grad = 2.5
        f = lambda a, b: (a * b).tanh()  # noqa: E731
    else:
        inputs = [Tensor(np.array([0.3, -0.1]), requires_grad=True)]
        f = lambda t: (t * t).tanh().sum()  # noqa: E731
    before = [(repr(x.data), repr(x.grad)) for x in inputs]
    arrays = [x.data for x in inputs]
    with pytest.raises(error, match=rf"^gradcheck: {next(iter(options))}"):
        tl.gradcheck(f, inputs, **options)
    assert [(repr(x.data), repr(x.grad)) for x in inputs] == before
    assert all(x.data is a for x, a in zip(inputs, arrays))


@pytest.mark.parametrize("inputs", [None, "ab", {"a": Value(1.0)}, print, 3.0], ids=repr)
def test_gradcheck_inputs_that_are_not_a_list_of_nodes_is_a_type_error(inputs):
    with pytest.raises(TypeError, match="^gradcheck: inputs"):
        tl.gradcheck(lambda *xs: xs[0], inputs)


def test_gradcheck_takes_a_single_node_as_its_only_input_as_torch():
    assert tl.gradcheck(lambda x: (x * x).tanh(), Value(0.4))
    assert tl.gradcheck(lambda t: (t * t).tanh(), Tensor(np.array([0.4, -0.2]), requires_grad=True))


@pytest.mark.parametrize("result", [None, 1.5, "loss", [], [1.0], np.float64(2.0)], ids=repr)
def test_gradcheck_f_returning_something_other_than_nodes_is_a_type_error(result):
    x = Value(0.5)
    with pytest.raises(TypeError, match="^gradcheck: f must return"):
        tl.gradcheck(lambda x: result, [x])
    assert (x.data, x.grad) == (0.5, 0.0)


def test_gradcheck_f_that_is_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match="^gradcheck: f must be callable"):
        tl.gradcheck(None, [Value(0.5)])


def test_gradcheck_projects_a_list_of_tensor_outputs_of_different_shapes():
    x = Tensor(np.array([0.3, -0.2]), requires_grad=True)
    y = Tensor(np.array([[1.0, 0.5], [-0.5, 2.0]]), requires_grad=True)
    assert tl.gradcheck(lambda x, y: [x.exp(), (y * y).sum(), y.tanh() * 2.0], [x, y])
    with pytest.raises(tl.GradcheckError):
        tl.gradcheck(lambda x, y: [x.exp(), y * y.detach()], [x, y])


def test_gradcheck_output_that_needs_no_grad_has_gradient_zero():
    x = Tensor(np.array([0.3, -0.2]), requires_grad=True)
    assert tl.gradcheck(lambda x: Tensor(np.ones(3)), [x])
    with pytest.raises(tl.GradcheckError):  # it depends on x through .data, out of backward's sight
        tl.gradcheck(lambda x: Tensor(x.data * 2.0), [x])


def test_gradcheck_never_writes_the_callers_array():
    data = np.array([0.3, -0.2])
    data.setflags(write=False)  # a perturbation written into it would fail
    x = Tensor(data, requires_grad=True)
    assert tl.gradcheck(lambda x: (x * x).tanh().sum(), [x])
    assert x.data is data and x.grad is None


@pytest.mark.parametrize("options", [{"eps": None}, {"atol": "x"}, {"rtol": Value(1.0)}], ids=repr)
def test_assert_grads_match_bad_option_raises_naming_gradcheck_and_leaves_the_inputs_alone(options):
    x = Value(0.3)
    x.grad = -1.5
    with pytest.raises(TypeError, match="^gradcheck:"):
        testing.assert_grads_match(lambda x: x * x, x, **options)
    assert (x.data, x.grad) == (0.3, -1.5)


BAD_TENSORS_ARGS = {
    "shape_int_list": ({"shape": [2, -1]}, ValueError, "shape"),
    "shape_float": ({"shape": 2.5}, TypeError, "shape"),
    "shape_object": ({"shape": object()}, TypeError, "shape"),
    "dtype_foo": ({"dtype": "foo"}, TypeError, "dtype"),
    "dtype_int": ({"dtype": np.int64}, TypeError, "dtype"),
    "dtype_3": ({"dtype": 3}, TypeError, "dtype"),
    "min_value_str": ({"min_value": "a"}, TypeError, "min_value"),
    "max_value_nan": ({"max_value": math.nan}, ValueError, "max_value"),
    "max_value_huge_int": ({"max_value": 10**400}, ValueError, "max_value"),
    "min_above_max": ({"min_value": 2.0, "max_value": 1.0}, ValueError, "min_value"),
    "float16_out_of_range": ({"min_value": 1e300, "max_value": None, "dtype": np.float16}, ValueError,
                             "float16"),
    "huge_shape": ({"shape": (2**40, 2**40)}, ValueError, "shape"),
    "requires_grad_str": ({"requires_grad": "yes"}, TypeError, "requires_grad"),
}


@pytest.mark.parametrize("kwargs, error, word", BAD_TENSORS_ARGS.values(), ids=BAD_TENSORS_ARGS.keys())
def test_testing_tensors_bad_argument_names_the_function_and_the_argument(kwargs, error, word):
    with pytest.raises(error, match=rf"^testing\.tensors: .*{word}"):
        testing.tensors(**kwargs)


@pytest.mark.parametrize("make, word", [
    (lambda: testing.values("a", 1.0), "min_value"), (lambda: testing.floats(1.0, -1.0), "min_value"),
    (lambda: testing.shapes(0, -1), "max_dims"), (lambda: testing.shapes(max_side=0), "max_side"),
    (lambda: testing.expressions(max_steps=0), "max_steps"),
    (lambda: testing.expressions(kinks="no"), "kinks"),
], ids=["values", "floats", "shapes_dims", "shapes_side", "expressions_steps", "expressions_kinks"])
def test_testing_strategies_check_their_arguments_when_called(make, word):
    with pytest.raises((TypeError, ValueError), match=rf"^testing\.\w+: {word}"):
        make()


@pytest.mark.parametrize("steps", [(("add", (0, 2)),), (("nope", (0,)),), (("add", (0,)),), "add"], ids=repr)
def test_expression_with_bad_steps_is_rejected_when_made(steps):
    with pytest.raises((TypeError, ValueError), match="^Expression: "):
        testing.Expression(2, steps)
