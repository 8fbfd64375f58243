"""Property-test your own function's gradients with tinygrad_lec.testing (needs hypothesis).

    python -m pytest examples/property_test.py
"""

from hypothesis import assume, given

from tinygrad_lec import testing


def softplus(x):
    return (1 + x.exp()).log()


@given(testing.values(-5, 5))
def test_softplus_gradient_matches_finite_differences(x):
    testing.assert_grads_match(softplus, x)


@given(testing.values(-5, 5))
def test_softplus_derivative_is_the_sigmoid(x):
    y = softplus(x)
    y.backward()
    assert abs(x.grad - x.sigmoid().data) < 1e-12


@given(testing.expressions(max_inputs=1), testing.values(-2, 2))
def test_random_programs(program, x):
    assume(abs(program(x).data) < 100)  # central differences lose about 1e-10 * |f| to rounding
    testing.assert_grads_match(program, x)
