"""Every Tensor op, from one table (tests/tensor_factory.py: CASES; API.md, "Tensor").

Each property below runs over every row of the table with hypothesis-drawn operands, shapes,
keyword arguments and upstream gradients; a new op gets all of them by adding a row there.
"""

import numpy as np
import pytest
import tensor_factory as factory
from hypothesis import given, settings
from hypothesis import strategies as st
from tensor_factory import CASES

cases = pytest.mark.parametrize("case", CASES, ids=str)
dtypes = st.sampled_from([np.float64, np.float32])


@cases
@settings(max_examples=factory.EXAMPLES)
@given(data=st.data())
def test_forward_matches_numpy(case, data):
    factory.check_forward(case, data.draw(case.examples, label="example"))


@cases
@settings(max_examples=factory.EXAMPLES)
@given(data=st.data())
def test_gradient_with_random_upstream_matches_central_differences(case, data):
    factory.check_gradient(case, data.draw(case.examples, label="example"), data)


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data(), dtype=dtypes)
def test_forward_and_backward_leave_inputs_and_upstream_unchanged(case, data, dtype):
    factory.check_inputs_not_mutated(case, data.draw(case.examples, label="example"), dtype, data)


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data(), dtype=dtypes)
def test_no_gradient_shares_memory_with_another_gradient_upstream_or_input(case, data, dtype):
    factory.check_no_gradient_aliases(case, data.draw(case.examples, label="example"), dtype, data)


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data(), dtype=dtypes)
def test_output_and_every_leaf_grad_keep_the_operands_dtype_and_shape(case, data, dtype):
    factory.check_leaf_grads_match_leaves(case, data.draw(case.examples, label="example"), dtype, data)


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data())
def test_graph_is_freed_by_reference_counting_when_the_last_reference_goes(case, data):
    factory.check_graph_freed(case, data.draw(case.examples, label="example"))


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data())
def test_inputs_needing_no_gradient_build_no_graph(case, data):
    factory.check_no_graph_without_grad(case, data.draw(case.examples, label="example"), under_no_grad=False)


@cases
@settings(max_examples=factory.FEW_EXAMPLES)
@given(data=st.data())
def test_no_grad_builds_no_graph(case, data):
    factory.check_no_graph_without_grad(case, data.draw(case.examples, label="example"), under_no_grad=True)
