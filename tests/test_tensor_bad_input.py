"""Bad input to the Tensor API gets an error naming the op and what was wrong (issue 8; each case
here was found by tests/test_fuzz.py), and the edge cases torch accepts work."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from tinygrad_lec import Tensor

T = Tensor


@pytest.mark.parametrize("call, error, message", [
    (lambda: T(np.array([1 + 2j])), TypeError, "Tensor: data must be real numbers, got an array"),
    (lambda: T(np.array([1 + 2j]), dtype=np.float64), TypeError, "Tensor: data must be real numbers"),
    (lambda: T(10**400), TypeError, "Tensor: data must be real numbers, got an int too large for a float"),
    (lambda: T([1.0], requires_grad=np.ones(2)), TypeError, "Tensor: requires_grad must be True or False"),
    (lambda: T([1.0], label=np.ones(2)), TypeError, "label must be a str"),
    (lambda: T(1e300, dtype=np.int64), ValueError, "Tensor: values 1e+300..1e+300 do not fit dtype int64"),
    (lambda: T.ones(2, dtype="foo"), TypeError, "Tensor.ones: unknown dtype 'foo'"),
    (lambda: T.zeros(2, dtype=3), TypeError, "Tensor.zeros: unknown dtype 3"),
    (lambda: T.zeros(2, dtype=complex), TypeError, "Tensor.zeros: dtype must be a floating, integer or bool"),
    (lambda: T.ones(2, requires_grad=np.ones(2)), TypeError, "Tensor.ones: requires_grad must be True"),
    (lambda: T.randn(2, seed=-1), ValueError, "Tensor.randn: seed must be an int >= 0, got -1"),
    (lambda: T.randn(2, seed="a"), TypeError, "Tensor.randn: seed must be None, an int >= 0"),
    (lambda: T.randn(2, dtype=np.int64), TypeError, "Tensor.randn: dtype must be floating"),
    (lambda: T([1.0]) + 10**400, ValueError, "Tensor op: the number 1000"),
    (lambda: T([True], dtype=bool) - T([True], dtype=bool), TypeError, "-: not defined for operands"),
    (lambda: T(np.array([2]), dtype=np.int64) ** T(np.array([-1]), dtype=np.int64), ValueError,
     "**: Integers to negative integer powers are not allowed"),
    (lambda: T([1.0]).clip("a"), TypeError, "clip: min must be a real number, got str 'a'"),
    (lambda: T([1.0]).clip(0.0, [1.0]), TypeError, "clip: max must be a real number, got list"),
    (lambda: T([1.0]).clip(float("nan")), ValueError, "clip: min must be a number, got nan"),
    (lambda: T([1.0]).sum(1.5), TypeError, "sum: axis must be an int or a tuple of ints, got float 1.5"),
    (lambda: T([1.0]).mean(axis="0"), TypeError, "mean: axis must be an int or a tuple of ints, got str"),
    (lambda: T([1.0]).max(axis=np.float64(0)), TypeError, "max: axis must be an int or a tuple of ints"),
    (lambda: T([1.0]).sum(keepdims=np.ones(2)), TypeError, "sum: keepdims must be True or False"),
    (lambda: T([1.0, 2.0]).var(correction="a"), TypeError, "var: correction must be an int, got str"),
    (lambda: T([1.0, 2.0]).var(correction=-1), ValueError, "var: correction must be an int >= 0, got -1"),
    (lambda: T([1.0]).softmax(axis=(0,)), TypeError, "softmax: axis must be an int, got tuple"),
    (lambda: T([1.0]).log_softmax(axis=1.0), TypeError, "log_softmax: axis must be an int, got float"),
    (lambda: T([1.0, 2.0])[::0], IndexError, "getitem: index slice(None, None, 0) for a "
                                             "tensor of shape (2,): slice step cannot be zero"),
    (lambda: T([1.0, 2.0])[[[0, 1], [0]]], IndexError, "getitem: index"),
    (lambda: T([1.0, 2.0])["a":], IndexError, "getitem: index"),
    (lambda: T([1.0, 2.0])[T([0.5])], IndexError, "getitem: a float tensor used as an index must"),
    (lambda: T([1.0, 2.0])[T([float("nan")])], IndexError, "getitem: a float tensor used as an index"),
])
def test_bad_input_is_an_error_naming_the_op(call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning / cast warning on the way
        with pytest.raises(error, match=re.escape(message)):
            call()


def test_reductions_over_the_one_axis_of_a_0d_tensor_work_as_in_torch():
    x = T(3.0, requires_grad=True)
    for out in (x.sum(0), x.mean(-1), x.max(axis=(0,)), x.var(0, correction=0), x.sum(0, keepdims=True)):
        assert out.shape == () and out.data == (0.0 if out.op == "var" else 3.0)
    assert T(2.0).softmax(0).data == 1.0 and T(2.0).log_softmax(-1).data == 0.0
    x.sum(0).backward()
    assert x.grad == 1.0


def test_softmax_of_a_zero_size_class_axis_is_empty_not_a_numpy_error():
    for shape, axis in (((2, 0), 1), ((0, 3), 0), ((0,), 0)):
        x = T(np.zeros(shape), requires_grad=True)
        for out in (x.softmax(axis), x.log_softmax(axis)):
            assert out.shape == shape
            out.backward(np.zeros(shape))
            assert x.grad.shape == shape


def test_integer_and_bool_tensors_are_promoted_to_float_by_the_smooth_ops():
    """uint8 logits once wrapped around in x - max; bool once hit numpy's boolean negative."""
    u = T(np.array([1, 200], np.uint8), dtype=np.uint8)
    np.testing.assert_allclose(u.softmax().data, T([1.0, 200.0]).softmax().data)
    np.testing.assert_allclose(u.log_softmax().data, T([1.0, 200.0]).log_softmax().data)
    b = T(np.array([True, False]), dtype=bool)
    np.testing.assert_allclose(b.sigmoid().data, T([1.0, 0.0]).sigmoid().data)
    np.testing.assert_allclose(b.softplus().data, T([1.0, 0.0]).softplus().data)


def test_a_bool_tensor_index_is_a_mask():
    x = T([1.0, 2.0, 3.0], requires_grad=True)
    out = x[T(np.array([True, False, True]), dtype=bool)]
    np.testing.assert_array_equal(out.data, [1.0, 3.0])
    out.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


def test_dividing_an_empty_tensor_by_zero_gives_the_divisor_a_zero_gradient():
    """The sum over no elements is 0; it once became 0 / -0 = nan."""
    y = T(0.0, requires_grad=True)
    (T(np.zeros(0)) / y).backward(np.zeros(0))
    assert y.grad == 0.0
