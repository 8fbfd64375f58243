"""scalar.batch_norm: the lecture's per-element BatchNorm on Values (REFERENCE.md section 10)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lec as tl
from tinygrad_lec import scalar, testing
from tinygrad_lec.graph import topological_order

batches = st.lists(testing.floats(-5, 5), min_size=2, max_size=6).filter(lambda zs: np.var(zs) > 1e-3)
upstreams = st.lists(testing.floats(-2, 2), min_size=6, max_size=6)
affine = st.tuples(testing.floats(0.2, 3), testing.floats(-2, 2))


def run(zs, g, gamma, beta, eps=1e-5):
    """Leaves, outputs and gradients of L = sum_i g_i * out_i."""
    z = [tl.Value(v) for v in zs]
    gm, bt = tl.Value(gamma), tl.Value(beta)
    out = scalar.batch_norm(z, gm, bt, eps=eps)
    loss = sum(gi * o for gi, o in zip(g, out))
    loss.backward()
    return z, gm, bt, out


@given(batches, affine)
def test_forward_matches_the_lecture_formula(zs, ab):
    gamma, beta = ab
    eps = 1e-5
    out = scalar.batch_norm([tl.Value(v) for v in zs], gamma, beta, eps=eps)
    z = np.array(zs)
    expected = gamma * (z - z.mean()) / np.sqrt(z.var() + eps) + beta  # biased variance, 10.1
    np.testing.assert_allclose([o.data for o in out], expected, rtol=1e-12, atol=1e-12)


@given(batches, upstreams, affine)
def test_gradients_equal_the_closed_form_of_reference_10_2(zs, up, ab):
    gamma, beta = ab
    eps = 1e-5
    B = len(zs)
    g = np.array(up[:B])
    z, gm, bt, _ = run(zs, g, gamma, beta, eps)
    zv = np.array(zs)
    s = math.sqrt(zv.var() + eps)
    u = (zv - zv.mean()) / s
    dz = gamma / (B * s) * (B * g - g.sum() - u * (g * u).sum())  # the collapsed form
    np.testing.assert_allclose([v.grad for v in z], dz, rtol=1e-10, atol=1e-12)
    assert gm.grad == pytest.approx((g * u).sum(), rel=1e-12, abs=1e-12)
    assert bt.grad == pytest.approx(g.sum(), rel=1e-12, abs=1e-12)


@given(batches, upstreams, affine)
def test_gradients_over_the_batch_sum_to_zero(zs, up, ab):
    z, *_ = run(zs, up[: len(zs)], *ab)
    assert abs(sum(v.grad for v in z)) < 1e-12  # REFERENCE 10.3 property 1


@given(batches, testing.floats(-2, 2), affine)
def test_constant_upstream_gradient_gives_zero_dz(zs, c, ab):
    z, *_ = run(zs, [c] * len(zs), *ab)
    assert max(abs(v.grad) for v in z) < 1e-12  # property 3


@given(batches, affine)
def test_jacobian_is_symmetric(zs, ab):
    B = len(zs)
    J = np.zeros((B, B))
    for i in range(B):  # row i: gradient of out_i
        e = [0.0] * B
        e[i] = 1.0
        z, *_ = run(zs, e, *ab)
        J[i] = [v.grad for v in z]
    np.testing.assert_allclose(J, J.T, rtol=1e-10, atol=1e-12)  # property 4


def test_every_output_depends_on_every_input_through_mean_and_variance():
    zs = [tl.Value(v, label=f"z{i}") for i, v in enumerate((1.0, 2.0, 4.0))]
    out = scalar.batch_norm(zs)
    for o in out:
        ancestors = set(map(id, topological_order(o)))
        assert all(id(z) in ancestors for z in zs)


def test_nodes_carry_the_lecture_stage_scopes():
    out = scalar.batch_norm([tl.Value(1.0), tl.Value(3.0)])
    scopes = {v.scope for v in topological_order(out[0]) if v.op}
    assert scopes == {"batchnorm/mean", "batchnorm/variance", "batchnorm/normalize",
                      "batchnorm/scale_shift"}


def test_a_batch_of_one_is_a_value_error_like_torch():
    with pytest.raises(ValueError, match="more than 1 value"):
        scalar.batch_norm([tl.Value(1.0)])


def test_non_values_are_rejected_by_name():
    with pytest.raises(TypeError, match=r"zs\[1\]"):
        scalar.batch_norm([tl.Value(1.0), 2.0])


@given(batches, upstreams, affine)
def test_matches_torch_batch_norm(zs, up, ab):
    torch = pytest.importorskip("torch")
    gamma, beta = ab
    B = len(zs)
    g = up[:B]
    z, gm, bt, out = run(zs, g, gamma, beta, 1e-5)
    tz = torch.tensor(zs, dtype=torch.float64).reshape(B, 1).requires_grad_()
    tg = torch.tensor([gamma], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([beta], dtype=torch.float64, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tz, None, None, tg, tb, training=True, eps=1e-5)
    (ty[:, 0] * torch.tensor(g, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose([o.data for o in out], ty[:, 0].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([v.grad for v in z], tz.grad[:, 0].numpy(), rtol=1e-10, atol=1e-12)
    assert gm.grad == pytest.approx(tg.grad.item(), rel=1e-12, abs=1e-13)
    assert bt.grad == pytest.approx(tb.grad.item(), rel=1e-12, abs=1e-13)
