"""Tensor semantics beyond single ops (API.md, "Graph core", "Tensor", "gradcheck and testing"):
dtypes, backward's contract, accumulation, graph building, conversions, constructors, errors,
ties and extreme logits, gradcheck and testing.tensors."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import tinygrad_lec as tl
from tinygrad_lec import Tensor, testing


def leaf(data, dtype=None):
    return Tensor(np.array(data, dtype=dtype), requires_grad=True)


# -- dtypes ----------------------------------------------------------------------------------------

NUMBERS = [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2)]
WITH_A_NUMBER = {
    "add": lambda t, c: t + c, "radd": lambda t, c: c + t,
    "sub": lambda t, c: t - c, "rsub": lambda t, c: c - t,
    "mul": lambda t, c: t * c, "rmul": lambda t, c: c * t,
    "truediv": lambda t, c: t / c, "rtruediv": lambda t, c: c / t,
    "pow": lambda t, c: t**c, "rpow": lambda t, c: c**t,
}


@pytest.mark.parametrize("number", NUMBERS, ids=lambda c: f"{type(c).__name__}")
@pytest.mark.parametrize("op", WITH_A_NUMBER.values(), ids=WITH_A_NUMBER.keys())
def test_float32_tensor_with_a_python_or_numpy_number_stays_float32(op, number):
    # as torch with a Python number: np.float64(2.0) * float32 tensor is float32, not float64
    t = Tensor(np.array([1.5, 2.5], dtype=np.float32))
    out = op(t, number)
    assert isinstance(out, Tensor)
    assert out.dtype == np.float32


@pytest.mark.parametrize("op", WITH_A_NUMBER.values(), ids=WITH_A_NUMBER.keys())
def test_float64_tensor_with_a_float32_number_stays_float64(op):
    out = op(Tensor([1.5, 2.5]), np.float32(2.0))
    assert out.dtype == np.float64


@pytest.mark.parametrize("data", [3, 3.0, True, [1, 2], [[1.0, 2.0]], np.array([1, 2]),
                                  np.array([1, 2], dtype=np.int32), np.array([1, 0], dtype=np.uint8)],
                         ids=repr)
def test_numbers_lists_and_integer_arrays_become_float64(data):
    t = Tensor(data)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floating_numpy_data_keeps_its_dtype(dtype):
    assert Tensor(np.ones(3, dtype=dtype)).dtype == dtype


def test_dtype_argument_sets_the_dtype():
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor(np.ones(2), dtype="float32").dtype == np.float32


def test_float32_and_float64_tensors_combine_to_float64():
    assert (Tensor(np.ones(2, np.float32)) * Tensor(np.ones(2))).dtype == np.float64


def test_leaf_grad_has_the_leaf_dtype_when_float32_meets_float64():
    a, b = leaf([1.0, 2.0], np.float32), leaf([3.0, 4.0], np.float64)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])


def test_float32_leaf_grad_stays_float32_with_a_float64_upstream():
    a = leaf([1.0, 2.0], np.float32)
    (a * 2.0).backward(np.array([1.0, 1.0], dtype=np.float64))
    assert a.grad.dtype == np.float32


# -- backward's contract ---------------------------------------------------------------------------

def test_backward_without_grad_on_a_non_scalar_raises_value_error_saying_so():
    t = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(ValueError, match="one-element") as info:
        t.backward()
    assert "(2,)" in str(info.value)


def test_backward_with_a_grad_of_the_wrong_shape_raises_value_error_naming_both_shapes():
    t = leaf([[1.0, 2.0, 3.0]]) * 2.0
    with pytest.raises(ValueError) as info:
        t.backward(np.ones((3, 1)))
    assert "(3, 1)" in str(info.value) and "(1, 3)" in str(info.value)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_backward_without_grad_on_a_one_element_tensor_seeds_one(shape):
    x = leaf(np.full(shape, 3.0))
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))


def test_backward_on_a_tensor_needing_no_grad_raises():
    with pytest.raises((ValueError, RuntimeError)):
        Tensor([1.0]).sum().backward()


def test_backward_accepts_a_list_as_grad():
    x = leaf([1.0, 2.0])
    (x * 3.0).backward([1.0, -1.0])
    np.testing.assert_array_equal(x.grad, [3.0, -3.0])


# -- accumulation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_leaf_grads_accumulate_to_exactly_twice_over_two_backward_calls(shape):
    x = leaf(np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape))
    y = (x * x).exp()
    upstream = np.full(shape, 0.7)
    y.backward(upstream)
    once = np.array(x.grad, copy=True)
    y.backward(upstream)
    np.testing.assert_array_equal(x.grad, 2 * once)


def test_interior_grad_holds_only_the_latest_pass():
    x = leaf([1.0, -2.0])
    h = x * 3.0
    y = (h * h).sum()
    y.backward()
    once = np.array(h.grad, copy=True)
    y.backward()
    np.testing.assert_array_equal(h.grad, once)
    np.testing.assert_array_equal(x.grad, 2 * 3.0 * once)


@pytest.mark.parametrize("shape", [(), (1,), (3,)])
def test_leaf_used_twice_in_one_op_gets_both_contributions(shape):
    x = leaf(np.full(shape, 3.0))
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))


def test_0d_interior_node_used_twice_gets_both_contributions():
    x = leaf([1.0, 2.0])
    s = x.sum()
    (s * s).backward()  # d(s^2)/dx_i = 2 s = 6
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_0d_leaf_used_in_two_branches_gets_both_contributions():
    x = leaf(2.0)
    (x.exp() + x.exp()).backward()
    assert x.grad == pytest.approx(2 * math.exp(2.0), rel=1e-15)


def test_zero_grad_starts_accumulation_over():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    x.zero_grad()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_leaf_not_requiring_grad_gets_no_grad():
    a, b = leaf([1.0, 2.0]), Tensor([3.0, 4.0])
    (a * b).sum().backward()
    assert b.grad is None
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])


# -- data held by results and gradients ------------------------------------------------------------

ZERO_D_RESULTS = {  # op, input
    "neg": (lambda x: -x, 2.0), "exp": (lambda x: x.exp(), 2.0), "log": (lambda x: x.log(), 2.0),
    "relu": (lambda x: x.relu(), 2.0), "mul_number": (lambda x: x * 2.0, 2.0),
    "sum": (lambda x: x.sum(), [2.0, 3.0]), "mean": (lambda x: x.mean(), [2.0, 3.0]),
    "var": (lambda x: x.var(), [2.0, 3.0]), "max": (lambda x: x.max(), [2.0, 3.0]),
    "getitem_integer": (lambda x: x[0], [2.0, 3.0]), "vector_dot": (lambda x: x @ x, [2.0, 3.0]),
}


@pytest.mark.parametrize("op, data", ZERO_D_RESULTS.values(), ids=ZERO_D_RESULTS.keys())
def test_0d_results_hold_a_0d_ndarray_not_a_numpy_scalar(op, data):
    out = op(leaf(data))
    assert out.shape == ()
    assert isinstance(out.data, np.ndarray), f"data is a {type(out.data).__name__}"


def test_0d_leaf_grad_is_a_0d_ndarray():
    x = leaf(2.0)
    x.exp().backward()
    assert isinstance(x.grad, np.ndarray), f"grad is a {type(x.grad).__name__}"


def test_vector_dot_product_gradients_are_the_other_vector():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    (a @ b).backward()
    np.testing.assert_array_equal(a.grad, [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0, 3.0])


# -- graph building --------------------------------------------------------------------------------

def test_op_on_a_tensor_needing_grad_records_op_and_parents():
    a, b = leaf([1.0]), Tensor([2.0])
    out = a * b
    assert out.op == "*" and out.requires_grad
    assert out.parents[0] is a


def test_no_grad_result_is_a_leaf_and_graph_building_resumes_after_the_block():
    x = leaf([1.0, 2.0])
    with tl.no_grad():
        inside = x * 2.0
    outside = x * 2.0
    assert inside.op == "" and not inside.requires_grad and inside.is_leaf
    assert outside.op == "*" and outside.requires_grad


def test_no_grad_resumes_graph_building_after_an_exception():
    x = leaf([1.0])
    with pytest.raises(RuntimeError), tl.no_grad():
        raise RuntimeError
    assert (x * 2.0).requires_grad


def test_detach_shares_data_and_is_a_leaf_needing_no_grad():
    x = leaf([1.0, 2.0])
    y = (x * 2.0).detach()
    assert y.is_leaf and y.op == "" and not y.requires_grad
    d = x.detach()
    assert np.shares_memory(d.data, x.data)


def test_gradient_does_not_flow_through_detach():
    x = leaf([1.0, 2.0])
    (x * x.detach()).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])  # not 2x


# -- conversions -----------------------------------------------------------------------------------

def test_numpy_returns_the_data_array_like_torch():
    x = Tensor([1.0, 2.0])
    arr = x.numpy()
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, [1.0, 2.0])
    assert np.shares_memory(arr, x.data)


@pytest.mark.parametrize("data", [2.5, [2.5], [[2.5]], np.array([2.5], dtype=np.float32)], ids=repr)
def test_item_of_a_one_element_tensor_is_a_python_float(data):
    value = Tensor(data).item()
    assert type(value) is float and value == 2.5


def test_item_of_a_multi_element_tensor_raises_value_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        Tensor(np.ones((2, 2))).item()


def test_np_asarray_of_a_tensor_is_its_data():
    x = Tensor([[1.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(x), [[1.0, 2.0]])
    assert np.asarray(x, dtype=np.float32).dtype == np.float32


def test_shape_ndim_dtype_and_T_describe_the_data():
    x = Tensor(np.zeros((2, 3), dtype=np.float32))
    assert (x.shape, x.ndim, x.dtype, x.T.shape) == ((2, 3), 2, np.float32, (3, 2))


# -- constructors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, fill", [(Tensor.zeros, 0.0), (Tensor.ones, 1.0)], ids=["zeros", "ones"])
@pytest.mark.parametrize("args, shape", [((2, 3), (2, 3)), (((2, 3),), (2, 3)), ((4,), (4,)), ((), ())],
                         ids=["varargs", "tuple", "one_side", "no_sides"])
def test_zeros_and_ones_take_a_shape_as_varargs_or_tuple(make, fill, args, shape):
    t = make(*args)
    assert t.shape == shape and t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.full(shape, fill))


def test_randn_has_the_shape_and_float64():
    t = Tensor.randn(2, 3, seed=0)
    assert t.shape == (2, 3) and t.dtype == np.float64
    assert Tensor.randn((4, 1), seed=0).shape == (4, 1)


def test_randn_with_the_same_seed_repeats_and_with_another_differs():
    np.testing.assert_array_equal(Tensor.randn(5, seed=7).data, Tensor.randn(5, seed=7).data)
    assert not np.array_equal(Tensor.randn(5, seed=7).data, Tensor.randn(5, seed=8).data)


def test_randn_draws_a_standard_normal():
    x = Tensor.randn(20000, seed=1).data
    se = 1 / math.sqrt(x.size)
    assert abs(x.mean()) < 5 * se
    assert abs(x.std() - 1.0) < 5 * se  # the standard error of the std is ~1/sqrt(2n) < se


# -- errors ----------------------------------------------------------------------------------------

BINARY_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
              "/": lambda a, b: a / b, "**": lambda a, b: a**b}


@pytest.mark.parametrize("name, op", BINARY_OPS.items(), ids=BINARY_OPS.keys())
def test_binary_shape_mismatch_raises_value_error_naming_op_and_both_shapes(name, op):
    with pytest.raises(ValueError) as info:
        op(Tensor(np.ones((2, 3))), Tensor(np.ones(4)))
    message = str(info.value)
    assert name in message and "(2, 3)" in message and "(4,)" in message


@pytest.mark.parametrize("a, b", [((2, 3), (4, 2)), ((3,), (4,)), ((2, 3, 4), (3, 4, 5)), ((5, 2), (3,))],
                         ids=["matrices", "vectors", "batch_dims", "matrix_vector"])
def test_matmul_shape_mismatch_raises_value_error_naming_matmul_and_both_shapes(a, b):
    with pytest.raises(ValueError) as info:
        Tensor(np.ones(a)) @ Tensor(np.ones(b))
    message = str(info.value)
    assert "matmul" in message or "@" in message
    assert str(a) in message and str(b) in message


def test_matmul_with_a_0d_operand_raises_value_error():
    with pytest.raises(ValueError):
        Tensor(2.0) @ Tensor(np.ones(2))


@pytest.mark.parametrize("shape", [(4,), (-1, -1), (7, -1), (2.5, 2)], ids=repr)
def test_reshape_to_an_impossible_shape_raises_value_error_naming_both_shapes(shape):
    with pytest.raises(ValueError, match="reshape") as info:
        Tensor(np.ones((2, 3))).reshape(*shape)
    assert "(2, 3)" in str(info.value)


@pytest.mark.parametrize("axes", [(0, 0), (0,), (0, 1, 2), (3, 0), (-3, 0), (1, 2)], ids=repr)
def test_transpose_with_axes_not_a_permutation_raises_value_error_naming_transpose(axes):
    with pytest.raises(ValueError, match="transpose"):
        Tensor(np.ones((2, 3))).transpose(*axes)


@pytest.mark.parametrize("data", ["a", ["a", "b"], None, {"a": 1}, object(), 1 + 2j, [[1.0, 2.0], [3.0]]],
                         ids=["str", "list_of_str", "None", "dict", "object", "complex", "ragged"])
def test_non_numeric_data_raises_type_error(data):
    with pytest.raises(TypeError):
        Tensor(data)


def test_var_with_no_degrees_of_freedom_raises_value_error():
    # torch returns nan (with a warning) for N - correction <= 0; this library refuses
    with pytest.raises(ValueError, match="var"):
        Tensor([1.0, 2.0]).var(axis=0, correction=2)


# -- max with ties ---------------------------------------------------------------------------------

@pytest.mark.parametrize("x, kwargs, upstream, expected", [
    ([1.0, 3.0, 3.0], {}, 1.0, [0.0, 0.5, 0.5]),
    ([4.0, 4.0, 4.0], {}, 3.0, [1.0, 1.0, 1.0]),
    ([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]], {"axis": 1}, [1.0, 4.0], [[0.5, 0.5, 0.0], [0.0, 2.0, 2.0]]),
    ([[2.0, 2.0], [2.0, 1.0]], {"axis": 0, "keepdims": True}, [[1.0, 1.0]], [[0.5, 1.0], [0.5, 0.0]]),
    ([[7.0, 7.0], [7.0, 1.0]], {"axis": None}, 1.0, [[1 / 3, 1 / 3], [1 / 3, 0.0]]),
], ids=["vector", "all_tied", "axis", "keepdims", "three_way"])
def test_max_splits_the_gradient_evenly_between_tied_maxima_like_torch_amax(x, kwargs, upstream, expected):
    t = leaf(x)
    t.max(**kwargs).backward(np.array(upstream))
    np.testing.assert_allclose(t.grad, expected, rtol=1e-15)


# -- softmax at extreme logits ---------------------------------------------------------------------

EXTREME = [
    ([1000.0, -1000.0, 0.0], [1.0, 0.0, 0.0], [0.0, -2000.0, -1000.0]),
    ([1000.0, 1000.0], [0.5, 0.5], [-math.log(2.0)] * 2),
    ([-1000.0, -1000.0], [0.5, 0.5], [-math.log(2.0)] * 2),
    ([-1000.0, -999.0], [1 / (1 + math.e), math.e / (1 + math.e)],
     [-1.0 - math.log1p(math.exp(-1.0)), -math.log1p(math.exp(-1.0))]),
]


@pytest.mark.parametrize("x, softmax, log_softmax", EXTREME, ids=["mixed", "plus_1000", "minus_1000", "near"])
def test_softmax_of_logits_near_plus_minus_1000_is_finite_and_exact(x, softmax, log_softmax):
    t = leaf(x)
    out = t.softmax()
    out.backward(np.arange(len(x), dtype=float))
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad))
    np.testing.assert_allclose(out.data, softmax, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("x, softmax, log_softmax", EXTREME, ids=["mixed", "plus_1000", "minus_1000", "near"])
def test_log_softmax_of_logits_near_plus_minus_1000_is_finite_and_exact(x, softmax, log_softmax):
    t = leaf(x)
    out = t.log_softmax()
    out.backward(np.arange(len(x), dtype=float))
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad))
    np.testing.assert_allclose(out.data, log_softmax, rtol=1e-12)
    # d/dx sum(g * log_softmax) = g - softmax * sum(g)
    g = np.arange(len(x), dtype=float)
    np.testing.assert_allclose(t.grad, g - np.array(softmax) * g.sum(), rtol=1e-12, atol=1e-15)


@given(testing.tensors(shape=testing.shapes(min_dims=1), min_value=-50, max_value=50), st.data())
@settings(max_examples=20)
def test_softmax_sums_to_one_along_its_axis(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    np.testing.assert_allclose(x.softmax(axis=axis).data.sum(axis=axis), 1.0, rtol=1e-14)


# -- gradcheck -------------------------------------------------------------------------------------

def test_gradcheck_passes_on_float64_tensors_with_a_non_scalar_output():
    x, y = leaf([[0.3, -1.2], [0.5, 2.0]]), leaf([0.7, -0.4])
    assert tl.gradcheck(lambda x, y: (x * y).tanh() @ y + x.exp(), [x, y]) is True


def test_gradcheck_catches_a_wrong_gradient_naming_input_and_index():
    x = leaf([0.5, 1.5])
    # x * x.detach() has backward gradient x, its finite differences give 2x
    with pytest.raises(tl.GradcheckError, match="input 0.*index 0"):
        tl.gradcheck(lambda x: (x * x.detach()).sum(), [x])


def test_gradcheck_rejects_float32_tensors_with_a_clear_error():
    with pytest.raises(ValueError, match="float64"):
        tl.gradcheck(lambda x: x.sum(), [leaf([1.0], np.float32)])


def test_gradcheck_leaves_the_inputs_data_and_grad_as_they_were():
    x = leaf([0.5, 1.5])
    data = x.data
    tl.gradcheck(lambda x: (x * x).sum(), [x])
    assert x.data is data
    np.testing.assert_array_equal(x.data, [0.5, 1.5])
    assert x.grad is None


# -- testing.tensors -------------------------------------------------------------------------------

@given(testing.tensors())
@settings(max_examples=30)
def test_tensors_by_default_draws_small_float64_leaves_requiring_grad(t):
    assert isinstance(t, Tensor) and t.is_leaf and t.requires_grad
    assert t.dtype == np.float64
    assert t.ndim <= 3 and all(1 <= n <= 4 for n in t.shape)
    assert np.all((-10.0 <= t.data) & (t.data <= 10.0))


@given(testing.tensors(shape=(2, 3), min_value=-0.5, max_value=0.25, requires_grad=False))
@settings(max_examples=20)
def test_tensors_with_a_fixed_shape_and_bounds_draws_exactly_that(t):
    assert t.shape == (2, 3) and not t.requires_grad
    assert np.all((-0.5 <= t.data) & (t.data <= 0.25))


@given(testing.tensors(shape=st.sampled_from([(1,), (5, 2)])))
@settings(max_examples=20)
def test_tensors_with_a_shape_strategy_draws_shapes_from_it(t):
    assert t.shape in [(1,), (5, 2)]


def test_tensors_in_float32_accepts_bounds_float32_cannot_represent():
    @given(testing.tensors(shape=(4,), min_value=0.1, max_value=0.9, dtype=np.float32))
    @settings(max_examples=20)
    def check(t):
        assert t.dtype == np.float32
        assert np.all((0.1 <= t.data) & (t.data <= 0.9))

    try:
        check()
    except InvalidArgument as e:
        pytest.fail(f"testing.tensors(min_value=0.1, dtype=float32) cannot draw: {e}")


def test_backward_with_a_non_finite_grad_raises_value_error_saying_so():
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError, match="backward: grad must be finite"):
        y.backward(np.array([1.0, np.nan]))
    assert x.grad is None


def test_gradcheck_rejects_non_finite_inputs():
    x = tl.Tensor([1.0, np.inf], requires_grad=True)
    with pytest.raises(ValueError, match="input 0 holds nan or inf"):
        tl.gradcheck(lambda t: (t * t).sum(), [x])


def test_a_backward_that_fails_halfway_leaves_every_leaf_grad_as_it_was():
    from tinygrad_lec.tensor import _node

    def broken(g):
        raise MemoryError("simulated failure inside a vjp")

    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    w = tl.Tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward()
    before = x.grad.copy(), w.grad.copy()
    y = _node("broken", x.data * 2.0, x, broken) + (x * w)  # x gets one good and one failing path
    with pytest.raises(MemoryError):
        y.sum().backward()
    np.testing.assert_array_equal(x.grad, before[0])
    np.testing.assert_array_equal(w.grad, before[1])


@settings(max_examples=25)
@given(testing.tensors(min_value=-3, max_value=3), st.integers(0, 2**32 - 1))
def test_a_tensor_times_itself_keeps_both_edges_and_the_exact_gradient(x, seed):
    """``x * x`` has x as both parents (viz draws two edges) and one vjp, 2 (g x), which is
    g x + g x bit for bit."""
    t = Tensor(x, requires_grad=True)
    g = np.random.default_rng(seed).uniform(-2, 2, np.shape(x))
    out = t * t
    assert out.parents == (t, t)
    out.backward(g)
    np.testing.assert_array_equal(t.grad, g * x + g * x)


@pytest.mark.parametrize("large", [False, True], ids=["small", "pooled"])
def test_gradients_borrowed_along_identity_edges_end_in_arrays_of_their_own(large):
    """``+`` and ``-`` hand the upstream gradient on as it is; the receiving node borrows that
    array for the rest of the pass (no copy), and a second contribution or the end of the pass
    gives it one of its own: afterwards no two gradients share memory, and the values are
    those of plain accumulation."""
    n = 20_000 if large else 3
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal(n), requires_grad=True)
    c = Tensor(rng.standard_normal(n), requires_grad=True)
    y = x + 1.0  # y borrows z's gradient, x borrows y's: a chain of identity edges
    z = y - c
    w = (x - x.mean()) * 2.0 + z  # x: identity, then mean's and the first product's contributions
    g = rng.standard_normal(n)
    w.backward(g)
    grads = {"x": x.grad, "c": c.grad, "y": y.grad, "z": z.grad, "w": w.grad}
    for (a, ga), (b, gb) in itertools.combinations(grads.items(), 2):
        assert not np.shares_memory(ga, gb), f"{a}.grad shares memory with {b}.grad"
    np.testing.assert_allclose(x.grad, g + 2 * (g - g.mean()), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(c.grad, -g)
    np.testing.assert_array_equal(y.grad, g)
    before = x.grad.copy()
    (x + 0.0).backward(g)  # a leaf that had a gradient: its own array, summed into
    np.testing.assert_array_equal(x.grad, before + g)
