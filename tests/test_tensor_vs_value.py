"""A Tensor with one element is a Value: the same random program (``testing.expressions``, with
relu and abs) run on Values and on 0-d, (1,) and (1, 1) float64 Tensors gives the same value and
the same gradients (API.md, "Graph core": both are nodes of one graph)."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygrad_lec import Tensor, Value, testing

# Value computes with math.*, Tensor with numpy's ufuncs (which round tanh differently from
# math.tanh in the last place about one call in four), and the two write some local derivatives
# differently (x/y's d/dy as -out/y or -x/y^2). Cancellation then turns those 1e-16 relative
# differences into absolute differences of ~1e-16 of the program's magnitudes in a much smaller
# result: x/(x^2+1) has gradient (1-x^2)/(x^2+1)^2, a sum of two terms of size ~0.5 that cancel near
# x = 1; 1 - tanh(a)^2 cancels for large a. So results agree to rtol 1e-12 (REFERENCE 13) or, when
# smaller than the program's largest magnitude M (intermediate values and gradients), to 1e-12 M.
RTOL = 1e-12
# A kink operand within this of 0 could fall on different sides of the kink in the two runs by
# that last-place difference alone, which changes a derivative outright; such programs are skipped.
KINK_MARGIN = 1e-9
EXAMPLES = min(50, settings().max_examples)
ONE_ELEMENT_SHAPES = pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=str)


@dataclass
class Reference:
    value: float
    grads: list[float]
    kink_operands: list[float]  # every operand a relu or abs saw
    magnitude: float  # the largest |intermediate value| or |gradient|, at least 1

    def close(self, got, expected):
        return math.isclose(got, expected, rel_tol=RTOL, abs_tol=RTOL * self.magnitude)


def run_on_values(expr, xs):
    """The program on Values, step by step."""
    slots = [Value(x) for x in xs]
    kink_operands = []
    for op, args in expr.steps:
        fn = testing.OPS[op][1] if op in testing.OPS else testing.KINK_OPS[op][1]
        if op in testing.KINK_OPS:
            kink_operands.append(slots[args[0]].data)
        slots.append(fn(*(slots[i] for i in args)))
    out = slots[-1]
    out.backward()
    grads = [v.grad for v in slots[: len(xs)]]
    magnitude = max([1.0] + [abs(v.data) for v in slots] + [abs(g) for g in grads])
    return Reference(out.data, grads, kink_operands, magnitude)


def inputs_reached(expr):
    """The inputs the output depends on (an unused input keeps grad None, as in torch)."""
    needed = {expr.n_inputs + len(expr.steps) - 1}
    for k in reversed(range(len(expr.steps))):
        if expr.n_inputs + k in needed:
            needed.update(expr.steps[k][1])
    return {i for i in needed if i < expr.n_inputs}


def run_on_tensors(expr, xs, shape):
    leaves = [Tensor(np.full(shape, x), requires_grad=True) for x in xs]
    with np.errstate(all="ignore"):
        out = expr(*leaves)
        out.backward()
    return out, leaves


def draw_program(data):
    expr = data.draw(testing.expressions(kinks=True), label="program")
    xs = data.draw(st.lists(testing.floats(-3.0, 3.0), min_size=expr.n_inputs, max_size=expr.n_inputs),
                   label="inputs")
    ref = run_on_values(expr, xs)
    # no overflow, no gradient that is inf or nan, no operand on the edge of a kink
    assume(testing.finite(ref.value, 1e100) and all(testing.finite(g, 1e100) for g in ref.grads))
    assume(all(abs(k) > KINK_MARGIN for k in ref.kink_operands))
    return expr, xs, ref


@ONE_ELEMENT_SHAPES
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_one_element_tensor_program_gives_the_value_programs_result(shape, data):
    expr, xs, ref = draw_program(data)
    out, _ = run_on_tensors(expr, xs, shape)
    assert out.shape == shape and out.dtype == np.float64
    got = out.item()
    assert ref.close(got, ref.value), f"Tensor {got!r}, Value {ref.value!r}"


@ONE_ELEMENT_SHAPES
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_one_element_tensor_program_gives_the_value_programs_gradients(shape, data):
    expr, xs, ref = draw_program(data)
    _, leaves = run_on_tensors(expr, xs, shape)
    reached = inputs_reached(expr)
    for i, (leaf, expected) in enumerate(zip(leaves, ref.grads)):
        if i not in reached:
            assert leaf.grad is None and expected == 0.0
            continue
        assert leaf.grad is not None and leaf.grad.shape == shape, f"input {i}: grad {leaf.grad!r}"
        got = float(np.asarray(leaf.grad).reshape(()))
        assert ref.close(got, expected), f"input {i}: Tensor grad {got!r}, Value grad {expected!r}"
