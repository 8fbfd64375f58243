"""Every Value op, from one table (API.md, "Value").

Each row of CASES gives an op, the same op on Python floats (the independent forward oracle) and a
hypothesis domain per operand, kept away from kinks and poles so that central differences apply.
Two parametrized properties run over the table: forward against the float reference, and
backward (with a random upstream gradient) against central finite differences. A new op gets both
by adding one row.
"""

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lec as tl
from tinygrad_lec import testing

# Operand domains.
REAL = testing.floats(-10.0, 10.0)
POSITIVE = testing.floats(0.1, 10.0)  # log, sqrt, the base of a real power
NONZERO = st.one_of(testing.floats(-10.0, -0.1), testing.floats(0.1, 10.0))  # away from a pole at 0
OFF_KINK = st.one_of(testing.floats(-10.0, -1e-3), testing.floats(1e-3, 10.0))  # relu, abs at 0
EXPONENT = testing.floats(-3.0, 3.0)
SMALL_INT = st.integers(-3, 3)
# The upstream gradient d(loss)/d(out) that backward starts from, made random by scaling the output.
UPSTREAM = st.one_of(testing.floats(-3.0, -0.1), testing.floats(0.1, 3.0))


@dataclass(frozen=True)
class OpCase:
    """One op: ``op`` is called with a Value at each operand marked "v" in ``kinds`` and with the
    plain number at each one marked "n" (so "nv" is the reflected form, e.g. ``2.0 - x``);
    ``reference`` is the same op on Python floats; ``domains`` draws each operand."""

    name: str
    op: Callable
    reference: Callable
    domains: tuple
    kinds: str

    def call(self, numbers, values):
        """``op`` with ``values`` (Values, in order) at the "v" positions, ``numbers`` elsewhere."""
        values = iter(values)
        return self.op(*(next(values) if k == "v" else x for x, k in zip(numbers, self.kinds)))


def unary(name, op, reference, domain=REAL):
    return [OpCase(name, op, reference, (domain,), "v")]


def binary(name, op, reference, left=REAL, right=REAL, kinds=("vv", "vn", "nv")):
    """Rows for Value op Value, Value op number and number op Value (the reflected form)."""
    return [OpCase(f"{name}_{k}", op, reference, (left, right), k) for k in kinds]


CASES = [
    *binary("add", lambda a, b: a + b, operator.add),
    *binary("sub", lambda a, b: a - b, operator.sub),
    *binary("mul", lambda a, b: a * b, operator.mul),
    *binary("div", lambda a, b: a / b, operator.truediv, right=NONZERO),
    *binary("pow", lambda a, b: a**b, math.pow, left=POSITIVE, right=EXPONENT),
    *binary("pow_int_exponent", lambda a, b: a**b, math.pow, left=NONZERO, right=SMALL_INT, kinds=("vn",)),
    *unary("neg", lambda a: -a, operator.neg),
    *unary("exp", lambda a: a.exp(), math.exp),
    *unary("log", lambda a: a.log(), math.log, POSITIVE),
    *unary("sqrt", lambda a: a.sqrt(), math.sqrt, POSITIVE),
    *unary("tanh", lambda a: a.tanh(), math.tanh),
    *unary("sigmoid", lambda a: a.sigmoid(), lambda x: 1.0 / (1.0 + math.exp(-x)), testing.floats(-30, 30)),
    *unary("relu", lambda a: a.relu(), lambda x: max(x, 0.0), OFF_KINK),
    *unary("abs", lambda a: a.abs(), math.fabs, OFF_KINK),
    *unary("builtin_abs", lambda a: abs(a), math.fabs, OFF_KINK),
]


def draw_operands(data, case):
    return [data.draw(domain, label=f"operand {i}") for i, domain in enumerate(case.domains)]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@given(data=st.data())
def test_forward_matches_math_reference(case, data):
    numbers = draw_operands(data, case)
    out = case.call(numbers, [tl.Value(x) for x, k in zip(numbers, case.kinds) if k == "v"])
    assert isinstance(out, tl.Value)
    assert type(out.data) is float
    assert out.data == pytest.approx(case.reference(*numbers), rel=1e-15, abs=0.0)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@given(data=st.data())
def test_gradient_with_random_upstream_matches_central_differences(case, data):
    numbers = draw_operands(data, case)
    upstream = data.draw(UPSTREAM, label="upstream gradient")
    leaves = [tl.Value(x) for x, k in zip(numbers, case.kinds) if k == "v"]
    testing.assert_grads_match(lambda *values: case.call(numbers, values) * upstream, *leaves)


# -- numbers of other types ----------------------------------------------------------------------

NUMPY_SCALARS = [np.float64(2.0), np.float32(2.0), np.int64(2)]


@pytest.mark.parametrize("c", NUMPY_SCALARS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("op, expected, dx", [
    (lambda c, x: c + x, 5.0, 1.0),
    (lambda c, x: c - x, -1.0, -1.0),
    (lambda c, x: c * x, 6.0, 2.0),
    (lambda c, x: c / x, 2.0 / 3.0, -2.0 / 9.0),
    (lambda c, x: c**x, 8.0, 8.0 * math.log(2.0)),
], ids=["radd", "rsub", "rmul", "rtruediv", "rpow"])
def test_numpy_scalar_on_the_left_gives_a_value(c, op, expected, dx):
    x = tl.Value(3.0)
    out = op(c, x)
    assert isinstance(out, tl.Value)
    assert type(out.data) is float
    out.backward()
    assert out.data == pytest.approx(expected, rel=1e-15)
    assert x.grad == pytest.approx(dx, rel=1e-15)


@pytest.mark.parametrize("c", NUMPY_SCALARS, ids=lambda c: type(c).__name__)
def test_numpy_scalar_on_the_right_gives_a_value(c):
    x = tl.Value(3.0)
    out = (x * c + c) / c - x**c
    assert isinstance(out, tl.Value)
    out.backward()
    assert out.data == pytest.approx((3.0 * 2.0 + 2.0) / 2.0 - 9.0)
    assert x.grad == pytest.approx(1.0 - 6.0)


def test_value_accepts_int_and_numpy_data_as_float():
    for data in (3, np.float32(3.0), np.int64(3)):
        v = tl.Value(data)
        assert type(v.data) is float and v.data == 3.0


# -- errors --------------------------------------------------------------------------------------

DOMAIN_ERRORS = {
    "log_of_negative": (lambda: tl.Value(-1.0).log(), "log", "-1.0"),
    "log_of_zero": (lambda: tl.Value(0.0).log(), "log", "0.0"),
    "sqrt_of_negative": (lambda: tl.Value(-1).sqrt(), "sqrt", "-1"),
    "zero_to_negative_number": (lambda: tl.Value(0.0) ** -1, "**", "-1"),
    "negative_to_fractional_value": (lambda: tl.Value(-2.0) ** tl.Value(0.5), "**", "-2.0"),
    "negative_to_fractional_number": (lambda: tl.Value(-2.0) ** 0.5, "**", "-2.0"),
    "value_by_zero_value": (lambda: tl.Value(1) / tl.Value(0), "/", "0.0"),
    "value_by_zero_number": (lambda: tl.Value(1.0) / 0, "/", "0"),
    "number_by_zero_value": (lambda: 1 / tl.Value(0), "/", "0.0"),
    "zero_number_to_negative_value": (lambda: 0.0 ** tl.Value(-1), "**", "-1"),
}


def test_domain_error_is_a_value_error():
    assert issubclass(tl.DomainError, ValueError)


@pytest.mark.parametrize("make, op, value", DOMAIN_ERRORS.values(), ids=DOMAIN_ERRORS.keys())
def test_op_outside_its_domain_raises_domain_error_naming_op_and_value(make, op, value):
    with pytest.raises(tl.DomainError) as info:
        make()
    message = str(info.value)
    assert op in message
    assert value in message


@pytest.mark.parametrize("data", ["a", None, [1.0], 1 + 2j], ids=repr)
def test_value_of_a_non_real_raises_type_error(data):
    with pytest.raises(TypeError):
        tl.Value(data)


def test_exp_overflow_gives_inf_not_an_exception():
    assert tl.Value(1000.0).exp().data == math.inf


def test_sigmoid_saturates_to_one_and_zero_without_error():
    assert tl.Value(1000.0).sigmoid().data == 1.0
    assert tl.Value(-1000.0).sigmoid().data == 0.0


def test_pow_overflow_gives_signed_inf_not_an_exception():
    assert (tl.Value(10.0) ** 400).data == math.inf
    assert (tl.Value(-10.0) ** 401).data == -math.inf


def test_pow_with_infinite_exponent_follows_math_pow():
    # IEEE pow (math.pow, torch.pow): |x| > 1 gives inf, |x| < 1 gives 0, whatever the base's sign.
    for base in (-2.0, -0.5, 0.5, 2.0):
        assert (tl.Value(base) ** math.inf).data == math.pow(base, math.inf)


# -- derivatives at kinks and at the edge of the domain (torch's conventions) --------------------

@pytest.mark.parametrize("method", ["relu", "abs"])
def test_kink_gradient_at_exactly_zero_is_zero(method):
    x = tl.Value(0.0)
    getattr(x, method)().backward()
    assert x.grad == 0.0


def test_sqrt_gradient_at_zero_is_inf():
    x = tl.Value(0.0)
    x.sqrt().backward()
    assert x.grad == math.inf


def test_repr_shows_data_and_grad():
    x = tl.Value(2.5)
    assert "data=2.5" in repr(x) and "grad=0.0" in repr(x)
    (x * 3.0).backward()
    assert "data=2.5" in repr(x) and "grad=3.0" in repr(x)


# -- numbers beyond the float range, and divisors whose square underflows (issue 8) --------------

HUGE_INT = 10**400
TOO_LARGE = {
    "constructor": (lambda: tl.Value(HUGE_INT), "Value"),
    "constructor_negative": (lambda: tl.Value(-(10**5000)), "Value"),
    "add": (lambda: tl.Value(1.0) + HUGE_INT, "+"),
    "radd": (lambda: HUGE_INT + tl.Value(1.0), "+"),
    "sub": (lambda: tl.Value(1.0) - HUGE_INT, "-"),
    "rsub": (lambda: HUGE_INT - tl.Value(1.0), "-"),
    "mul": (lambda: tl.Value(1.0) * HUGE_INT, "*"),
    "div": (lambda: tl.Value(1.0) / HUGE_INT, "/"),
    "rdiv": (lambda: HUGE_INT / tl.Value(2.0), "/"),
    "pow": (lambda: tl.Value(0.5) ** HUGE_INT, "**"),
    "rpow": (lambda: HUGE_INT ** tl.Value(0.5), "**"),
    "fraction": (lambda: tl.Value(1.0) * Fraction(HUGE_INT, 3), "*"),
}


@pytest.mark.parametrize("make, op", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_a_number_beyond_the_float_range_is_a_value_error_naming_the_op(make, op):
    with pytest.raises(ValueError, match="too large for a float") as info:
        make()
    assert not isinstance(info.value, tl.DomainError)
    assert str(info.value).startswith(f"{op}:")
    assert len(str(info.value)) < 200  # the 401-digit number is shortened


@pytest.mark.parametrize("x, y, dy", [(1e-300, 1e-200, -1e100), (0.0, 1e-200, 0.0), (1.0, 5e-324, -math.inf),
                                      (-1e-300, -1e-200, 1e100)], ids=repr)
@pytest.mark.parametrize("reflected", [False, True], ids=["value/value", "number/value"])
def test_division_by_a_number_whose_square_underflows_gives_the_exact_derivative(x, y, dy, reflected):
    b = tl.Value(y)
    out = x / b if reflected else tl.Value(x) / b
    out.backward()
    assert out.data == x / y
    assert b.grad == pytest.approx(dy, rel=1e-12)
