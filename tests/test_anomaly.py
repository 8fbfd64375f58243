"""detect_anomaly: the first nan or inf in forward or backward raises, naming the op, its scope
and label, its inputs and the pass; off by default; per thread."""

import threading

import numpy as np
import pytest

import tinygrad_lec as tl
from tinygrad_lec import Tensor, Value


def test_value_forward_overflow_raises_naming_op_scope_and_input():
    with tl.detect_anomaly(), tl.name_scope("head"):
        with pytest.raises(tl.AnomalyError, match=r"forward: op 'exp' in scope 'head' produced inf.*1000.0"):
            Value(1000.0).exp()


def test_tensor_forward_nan_raises_naming_op_and_the_count_of_bad_values():
    a = Tensor([1.0, np.inf, 3.0], requires_grad=True)
    with tl.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(tl.AnomalyError, match=r"forward: op '-' produced nan in 1 of 3 values"):
            a - a


def test_tensor_backward_inf_raises_naming_op_label_and_operand_and_keeps_leaf_grads():
    x = Tensor([0.0, 1.0, 4.0, 9.0, 16.0], requires_grad=True)
    x.grad = np.full(5, 7.0)
    y = x.sqrt()
    y.label = "root"
    loss = y.sum()
    with tl.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(tl.AnomalyError, match=r"backward: op 'sqrt' \(label 'root'\) produced inf in 1 "
                                                  r"of 5 values of the gradient for operand 1.*shape \(5,\)"):
            loss.backward()
    np.testing.assert_array_equal(x.grad, np.full(5, 7.0))


def test_value_backward_raises_and_keeps_leaf_grads():
    x = Value(0.0)
    x.grad = 2.5
    y = x.sqrt() * 3.0
    with tl.detect_anomaly():
        with pytest.raises(tl.AnomalyError, match=r"backward: op 'sqrt'.*non-finite gradient inf"):
            y.backward()
    assert x.grad == 2.5


def test_off_by_default_nan_and_inf_flow_through():
    assert not tl.is_anomaly_enabled()
    with np.errstate(all="ignore"):
        out = Tensor([1000.0], requires_grad=True).exp()
    assert np.isinf(out.data).all()
    assert Value(1000.0).exp().data == float("inf")


def test_finite_graphs_are_untouched_by_detection():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with tl.detect_anomaly():
        (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    v = Value(3.0)
    with tl.detect_anomaly():
        (v * v + v.exp()).backward()
    assert v.grad == pytest.approx(6.0 + np.exp(3.0))


def test_set_detect_anomaly_switches_it_for_the_thread_and_detect_anomaly_false_inside():
    def worker(result):
        tl.set_detect_anomaly(True)
        result.append(tl.is_anomaly_enabled())
        with tl.detect_anomaly(False):
            result.append(tl.is_anomaly_enabled())
        result.append(tl.is_anomaly_enabled())

    result = []
    t = threading.Thread(target=worker, args=(result,))
    t.start()
    t.join()
    assert result == [True, False, True]
    assert not tl.is_anomaly_enabled()  # this thread never switched it on


def test_detect_anomaly_as_a_decorator_and_with_no_grad():
    @tl.detect_anomaly()
    def f():
        with tl.no_grad():
            return tl.is_anomaly_enabled(), tl.is_grad_enabled()

    assert f() == (True, False)
    assert not tl.is_anomaly_enabled()
