"""Batch Normalization on Tensors: F.batch_norm and nn.BatchNorm1d (REFERENCE.md section 10).

The oracles, independent of the library:
    closed_form   the matrix form of REFERENCE 10.2, written out below in numpy
    lecture       the formulas of 10.1 (forward) and 10.4 (running statistics, inference)
    torch         F.batch_norm, nn.BatchNorm1d and autograd (skipped without torch: the `torch`
                  fixture calls importorskip, so the numpy-oracle tests still run)
    fd            central differences through tl.gradcheck (h = 1e-6, rtol 1e-6, atol 1e-8)
    scalar        scalar.batch_norm, the lecture's per-element version on Values

Tolerances (REFERENCE 13): one float64 forward/backward against another expression of the same
quantity, rtol 1e-12 and atol 1e-14 (observed <= 3e-16, Appendix A); finite differences as in
tl.gradcheck; float32 against torch float32 at rtol 1e-5, atol 1e-6.
The scalar version (sums in its own order) is covered by tests/test_scalar_batchnorm.py; here it
is only a cross-check of the Tensor version.
"""

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensor_factory import FORWARD_ATOL as ATOL
from tensor_factory import FORWARD_RTOL as RTOL

import tinygrad_lec as tl
from tinygrad_lec import Tensor, nn, scalar
from tinygrad_lec import functional as F
from tinygrad_lec.gradcheck import FD_ATOL, FD_EPS, FD_RTOL
from tinygrad_lec.graph import topological_order

B, C, EPS = 7, 4, 1e-5  # REFERENCE 10.4, test recipe
STAGES = {"batchnorm/mean", "batchnorm/variance", "batchnorm/normalize", "batchnorm/scale_shift"}
STATE_KEYS = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# -- oracles -----------------------------------------------------------------------------------------


def lecture_forward(Z, gamma, beta, eps=EPS):
    """REFERENCE 10.1 per column: gamma (z - mu_B) / sqrt(var_B + eps) + beta, biased variance."""
    return gamma * (Z - Z.mean(axis=0)) / np.sqrt(Z.var(axis=0) + eps) + beta


def closed_form(Z, G, gamma, eps=EPS):
    """REFERENCE 10.2, matrix form for Z, G in R^{B x C}:
        dbeta = colsum(G),  dgamma = colsum(G * U),
        dZ = (gamma / (B s)) * (B G - colsum(G) - U * colsum(G * U))."""
    n = Z.shape[0]
    s = np.sqrt(Z.var(axis=0) + eps)
    U = (Z - Z.mean(axis=0)) / s
    col_g, col_gu = G.sum(axis=0), (G * U).sum(axis=0)
    return gamma / (n * s) * (n * G - col_g - U * col_gu), col_gu, col_g


def jacobian_formula(z, gamma, eps=EPS):
    """REFERENCE 10.2, one neuron: J = (gamma/s) (I - 11^T/B - u u^T/B)."""
    n = len(z)
    s = np.sqrt(z.var() + eps)
    u = (z - z.mean()) / s
    return gamma / s * (np.eye(n) - np.ones((n, n)) / n - np.outer(u, u) / n)


def problem(seed=0, shape=(B, C)):
    """z (shifted and scaled, so that mean and variance matter), G, gamma (either sign), beta."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    Z = 3.0 * rng.standard_normal(shape) + rng.uniform(-2, 2, (1, c) + (1,) * (len(shape) - 2))
    G = rng.standard_normal(shape)
    gamma = rng.uniform(0.5, 2.0, c) * rng.choice((-1.0, 1.0), c)
    beta = rng.standard_normal(c)
    return Z, G, gamma, beta


def ours(Z, G, gamma, beta, eps=EPS, **kw):
    """F.batch_norm in training (unless kw says otherwise); output and grads of sum(G * out)."""
    z = Tensor(Z.copy(), requires_grad=True)
    w = Tensor(gamma.copy(), requires_grad=True)
    b = Tensor(beta.copy(), requires_grad=True)
    kw.setdefault("training", True)
    out = F.batch_norm(z, kw.pop("running_mean", None), kw.pop("running_var", None), w, b, eps=eps, **kw)
    out.backward(G)
    return out.data, z.grad, w.grad, b.grad


def theirs(torch, Z, G, gamma, beta, eps=EPS, running_mean=None, running_var=None, training=True):
    """torch's F.batch_norm and autograd, float64."""
    z, w, b = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (Z, gamma, beta))
    out = torch.nn.functional.batch_norm(z, running_mean, running_var, w, b, training=training, eps=eps)
    out.backward(torch.tensor(G))
    return out.detach().numpy(), z.grad.numpy(), w.grad.numpy(), b.grad.numpy()


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def torch_bn(torch, ours_bn):
    """torch.nn.BatchNorm1d with the same settings and state as ours_bn (float64)."""
    t = torch.nn.BatchNorm1d(ours_bn.num_features, eps=ours_bn.eps, momentum=ours_bn.momentum,
                             affine=ours_bn.affine, track_running_stats=ours_bn.track_running_stats,
                             dtype=torch.float64)
    t.load_state_dict({k: torch.tensor(v) for k, v in ours_bn.state_dict().items()})
    return t


def batches(n, seed=1, shape=(B, C)):
    rng = np.random.default_rng(seed)
    centers = (1, shape[1]) + (1,) * (len(shape) - 2)  # per channel, broadcast over N (and L)
    return [2.0 * rng.standard_normal(shape) + rng.uniform(-3, 3, centers) for _ in range(n)]


def snapshot(bn):
    """Everything a failed call must leave alone: state_dict values and parameter grads."""
    grads = {name: None if p.grad is None else p.grad.copy() for name, p in bn.named_parameters()}
    return bn.state_dict(), grads


def assert_same_state(bn, before):
    state, grads = before
    now_state, now_grads = snapshot(bn)
    assert list(now_state) == list(state)
    for key in state:
        assert np.array_equal(now_state[key], state[key]), key
    for name in grads:
        assert (now_grads[name] is None) == (grads[name] is None), name
        if grads[name] is not None:
            assert np.array_equal(now_grads[name], grads[name]), name


def trained_bn(momentum=0.1, n_batches=2, **kw):
    """A BatchNorm1d with non-trivial gamma, beta, running stats and parameter grads."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=momentum, **kw)
    _, _, gamma, beta = problem(5)
    if bn.affine:
        bn.weight.data[...] = gamma
        bn.bias.data[...] = beta
    for Z in batches(n_batches, seed=9):
        out = bn(Tensor(Z))
        if bn.affine:
            out.backward(np.ones_like(Z) + Z)
    return bn


# -- recipe 1: forward (REFERENCE 10.1) --------------------------------------------------------------


def test_forward_equals_the_lecture_formula():
    """REFERENCE 10.1: gamma (z - mu_B)/sqrt(var_B + eps) + beta with the biased variance."""
    Z, G, gamma, beta = problem()
    close(ours(Z, G, gamma, beta)[0], lecture_forward(Z, gamma, beta))


def test_forward_matches_torch_functional_batch_norm(torch):
    """REFERENCE 10.4 recipe 1: F.batch_norm(z, None, None, gamma, beta, training=True, eps)."""
    Z, G, gamma, beta = problem()
    close(ours(Z, G, gamma, beta)[0], theirs(torch, Z, G, gamma, beta)[0])


def test_module_train_forward_matches_torch(torch):
    """REFERENCE 10.4 recipe 1 through nn.BatchNorm1d (gamma and beta set) vs torch's module."""
    Z, _, gamma, beta = problem()
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=0.1)
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    t = torch_bn(torch, bn)
    close(bn(Tensor(Z)).data, t(torch.tensor(Z)).detach().numpy())


# -- recipe 2: backward (REFERENCE 10.2) -------------------------------------------------------------


def test_closed_form_oracle_matches_torch_autograd(torch):
    """The closed form written in this file agrees with torch (so it can judge our autodiff)."""
    Z, G, gamma, beta = problem()
    _, dz, dgamma, dbeta = theirs(torch, Z, G, gamma, beta)
    for mine, expected in zip(closed_form(Z, G, gamma), (dz, dgamma, dbeta)):
        close(mine, expected)


def test_autodiff_equals_the_closed_form_of_reference_10_2():
    """REFERENCE 10.4 recipe 2(a) vs 2(b): dz, dgamma, dbeta for a random upstream G."""
    Z, G, gamma, beta = problem()
    _, dz, dgamma, dbeta = ours(Z, G, gamma, beta)
    cf_dz, cf_dgamma, cf_dbeta = closed_form(Z, G, gamma)
    close(dz, cf_dz)
    close(dgamma, cf_dgamma)
    close(dbeta, cf_dbeta)


def test_autodiff_matches_torch_autograd(torch):
    """REFERENCE 10.4 recipe 2(a) vs 2(c): dz, dgamma, dbeta."""
    Z, G, gamma, beta = problem()
    for mine, expected in zip(ours(Z, G, gamma, beta)[1:], theirs(torch, Z, G, gamma, beta)[1:]):
        close(mine, expected)


def test_module_gradients_equal_the_closed_form():
    """REFERENCE 10.2 through nn.BatchNorm1d: weight.grad = dgamma, bias.grad = dbeta, input dz."""
    Z, G, gamma, beta = problem()
    bn = nn.BatchNorm1d(C, eps=EPS)
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    z = Tensor(Z, requires_grad=True)
    bn(z).backward(G)
    cf_dz, cf_dgamma, cf_dbeta = closed_form(Z, G, gamma)
    close(z.grad, cf_dz)
    close(bn.weight.grad, cf_dgamma)
    close(bn.bias.grad, cf_dbeta)


# -- recipe 3: the Jacobian of one column ------------------------------------------------------------


def our_jacobian(Z, gamma, beta, column):
    """J[i, j] = d out[i, column] / d z[j, column] by B backward passes with one-hot upstreams."""
    n = Z.shape[0]
    J = np.empty((n, n))
    for i in range(n):
        E = np.zeros_like(Z)
        E[i, column] = 1.0
        J[i] = ours(Z, E, gamma, beta)[1][:, column]
    return J


def test_jacobian_of_one_column_equals_the_formula_of_10_2():
    """REFERENCE 10.2: J = (gamma/s)(I - 11^T/B - u u^T/B)."""
    Z, _, gamma, beta = problem()
    close(our_jacobian(Z, gamma, beta, 2), jacobian_formula(Z[:, 2], gamma[2]))


def test_jacobian_of_one_column_matches_torch(torch):
    """REFERENCE 10.4 recipe 3: vs torch.autograd.functional.jacobian of z[:, c] -> out[:, c]."""
    Z, _, gamma, beta = problem()
    column = 1
    tZ, tw, tb = (torch.tensor(a) for a in (Z, gamma, beta))

    def f(col):
        z = torch.cat([tZ[:, :column], col[:, None], tZ[:, column + 1:]], dim=1)
        return torch.nn.functional.batch_norm(z, None, None, tw, tb, training=True, eps=EPS)[:, column]

    expected = torch.autograd.functional.jacobian(f, tZ[:, column].clone()).numpy()
    close(our_jacobian(Z, gamma, beta, column), expected)


def test_jacobian_is_symmetric():
    """REFERENCE 10.3 property 4: J = dout/dz of one neuron is symmetric."""
    Z, _, gamma, beta = problem(3)
    J = our_jacobian(Z, gamma, beta, 0)
    close(J, J.T)
    assert np.abs(J).max() > 0.1  # a nonzero Jacobian, so symmetry says something


def test_channels_are_independent():
    """REFERENCE 10.1: statistics are per neuron; out[:, c] does not depend on z[:, c'] for c' != c."""
    Z, _, gamma, beta = problem()
    E = np.zeros_like(Z)
    E[:, 1] = np.arange(1.0, B + 1)
    dz = ours(Z, E, gamma, beta)[1]
    assert np.all(dz[:, [0, 2, 3]] == 0)
    assert np.abs(dz[:, 1]).max() > 0.1


# -- recipe 4: finite differences --------------------------------------------------------------------


def test_gradients_match_central_differences():
    """REFERENCE 10.4 recipe 4: central differences, h = 1e-6, rtol 1e-6 (tl.gradcheck)."""
    Z, _, gamma, beta = problem()
    inputs = [Tensor(a.copy(), requires_grad=True) for a in (Z, gamma, beta)]
    assert tl.gradcheck(lambda z, w, b: F.batch_norm(z, None, None, w, b, training=True, eps=EPS),
                        inputs, eps=FD_EPS, rtol=FD_RTOL, atol=FD_ATOL)


def test_module_gradients_match_central_differences():
    """REFERENCE 10.4 recipe 4 through nn.BatchNorm1d in training (running stats not involved)."""
    Z, _, gamma, beta = problem(4)
    bn = nn.BatchNorm1d(C, eps=EPS)
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    z = Tensor(Z, requires_grad=True)
    assert tl.gradcheck(lambda z, w, b: bn(z), [z, bn.weight, bn.bias], eps=FD_EPS, rtol=FD_RTOL,
                        atol=FD_ATOL)


# -- recipe 5: properties of REFERENCE 10.3 ----------------------------------------------------------


def test_input_gradient_sums_to_zero_over_the_batch():
    """REFERENCE 10.3 property 1: 1^T dL/dz = 0 per neuron (J 1 = 0)."""
    Z, G, gamma, beta = problem()
    dz = ours(Z, G, gamma, beta)[1]
    np.testing.assert_allclose(dz.sum(axis=0), 0.0, atol=1e-13)
    assert np.abs(dz).max() > 0.1


def test_constant_upstream_gradient_gives_zero_input_gradient():
    """REFERENCE 10.3 property 3: g constant over the batch => dL/dz = 0 (each neuron its own g)."""
    Z, _, gamma, beta = problem()
    G = np.tile([0.7, -1.3, 2.0, 5.0], (B, 1))
    _, dz, _, dbeta = ours(Z, G, gamma, beta)
    np.testing.assert_allclose(dz, 0.0, atol=1e-13)
    close(dbeta, B * G[0])


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 1.0])
def test_scaled_direction_gradient_follows_the_eps_formula(eps):
    """REFERENCE 10.3 property 2: u^T dL/dz = (gamma/s)(u^T g) eps/(var + eps); not 0 when eps > 0."""
    Z, G, gamma, beta = problem()
    dz = ours(Z, G, gamma, beta, eps=eps)[1]
    var = Z.var(axis=0)
    s = np.sqrt(var + eps)
    U = (Z - Z.mean(axis=0)) / s
    expected = gamma / s * (U * G).sum(axis=0) * eps / (var + eps)
    # u^T dz is a sum of terms of size |gamma|/s |g| ~ 1 that cancel to ~eps: the rounding error
    # is absolute, a few ulps of those terms (observed ~1e-16).
    np.testing.assert_allclose((U * dz).sum(axis=0), expected, rtol=1e-9, atol=1e-14)


def test_bias_before_batchnorm_gets_zero_gradient():
    """REFERENCE 10.1 and 10.3 property 1: Linear -> BatchNorm1d -> sigmoid, the bias grad is ~1e-16."""
    rng = np.random.default_rng(0)
    linear = nn.Linear(3, C, seed=0)
    bn = nn.BatchNorm1d(C, eps=EPS)
    bn.weight.data[...] = problem()[2]
    x = Tensor(rng.standard_normal((B, 3)))
    bn(linear(x)).sigmoid().backward(rng.standard_normal((B, C)))
    assert np.abs(linear.bias.grad).max() < 1e-14
    assert np.abs(linear.weight.grad).max() > 1e-2  # the gradient did reach the linear layer


# -- recipe 6: running statistics with momentum (REFERENCE 10.4) -------------------------------------


def test_running_stats_follow_the_ema_with_unbiased_variance():
    """REFERENCE 10.4 recipe 6: r <- 0.9 r + 0.1 stat over 5 batches, var with B/(B-1); init 0 and 1."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=0.1)
    mean, var = np.zeros(C), np.ones(C)
    for Z in batches(5):
        bn(Tensor(Z))
        mean = 0.9 * mean + 0.1 * Z.mean(axis=0)
        var = 0.9 * var + 0.1 * Z.var(axis=0, ddof=1)
        close(bn.running_mean, mean)
        close(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 5


def test_running_stats_and_outputs_match_torch_over_five_batches(torch):
    """REFERENCE 10.4 recipe 6 vs torch.nn.BatchNorm1d(momentum=0.1): outputs and buffers."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=0.1)
    bn.weight.data[...], bn.bias.data[...] = problem()[2:]
    t = torch_bn(torch, bn)
    for Z in batches(5):
        close(bn(Tensor(Z)).data, t(torch.tensor(Z)).detach().numpy())
        close(bn.running_mean, t.running_mean.numpy())
        close(bn.running_var, t.running_var.numpy())
    assert int(bn.num_batches_tracked) == int(t.num_batches_tracked) == 5


# -- recipe 7: momentum=None is the lecture's test-time average --------------------------------------


def cumulative_bn():
    """reset_running_stats() after some other training, then one pass over 5 batches (10.4 (i)-(iii))."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=None)
    bn.weight.data[...], bn.bias.data[...] = problem()[2:]
    for Z in batches(3, seed=7):
        bn(Tensor(Z))
    bn.reset_running_stats()
    for Z in batches(5):
        bn(Tensor(Z))
    return bn


def test_momentum_none_gives_the_lecture_mean_and_unbiased_variance():
    """REFERENCE 10.4: mu_BN = mean of mu_B, var_BN = B/(B-1) * mean of var_B (biased)."""
    bn = cumulative_bn()
    Zs = batches(5)
    close(bn.running_mean, np.mean([Z.mean(axis=0) for Z in Zs], axis=0))
    close(bn.running_var, B / (B - 1) * np.mean([Z.var(axis=0) for Z in Zs], axis=0))


def test_momentum_none_matches_torch(torch):
    """REFERENCE 10.4 recipe 7 vs torch.nn.BatchNorm1d(momentum=None) with reset_running_stats()."""
    bn = cumulative_bn()
    t = torch.nn.BatchNorm1d(C, eps=EPS, momentum=None, dtype=torch.float64)
    for Z in batches(3, seed=7):
        t(torch.tensor(Z))
    t.reset_running_stats()
    for Z in batches(5):
        t(torch.tensor(Z))
    close(bn.running_mean, t.running_mean.numpy())
    close(bn.running_var, t.running_var.numpy())


def test_eval_output_after_momentum_none_is_the_lecture_inference_formula():
    """REFERENCE 10.4: z_hat = gamma (z - mu_BN)/sqrt(var_BN + eps) + beta, a fixed affine map."""
    bn = cumulative_bn().eval()
    Zs = batches(5)
    mu_bn = np.mean([Z.mean(axis=0) for Z in Zs], axis=0)
    var_bn = B / (B - 1) * np.mean([Z.var(axis=0) for Z in Zs], axis=0)
    Z = problem(11)[0]
    gamma, beta = problem()[2:]
    close(bn(Tensor(Z)).data, gamma * (Z - mu_bn) / np.sqrt(var_bn + EPS) + beta)


# -- recipe 8: momentum=1.0 ---------------------------------------------------------------------------


def test_momentum_one_keeps_the_unbiased_variance_of_the_last_batch():
    """REFERENCE 10.4 recipe 8: running_var = var(unbiased) and running_mean = mean of the last batch."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=1.0)
    Zs = batches(3)
    for Z in Zs:
        bn(Tensor(Z))
    close(bn.running_var, Zs[-1].var(axis=0, ddof=1))
    close(bn.running_mean, Zs[-1].mean(axis=0))


def test_train_output_uses_the_biased_variance_even_with_momentum_one():
    """REFERENCE 10.4 recipe 8: the training forward divides by B, not B - 1."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=1.0)
    Z = batches(1)[0]
    out = bn(Tensor(Z)).data
    centered = Z - Z.mean(axis=0)
    close(out, centered / np.sqrt(Z.var(axis=0) + EPS))
    unbiased = centered / np.sqrt(Z.var(axis=0, ddof=1) + EPS)
    assert np.max(np.abs(out - unbiased) / np.abs(unbiased)) > 1e-3  # sqrt(7/6): the two differ


# -- recipe 9: a batch of one -------------------------------------------------------------------------


def test_functional_training_on_a_batch_of_one_is_a_value_error():
    """REFERENCE 10.3 property 5: torch raises 'Expected more than 1 value per channel when training'."""
    with pytest.raises(ValueError, match=r"more than 1 value.*\(1, 4\)"):
        F.batch_norm(Tensor(np.ones((1, C))), None, None, training=True, eps=EPS)


def test_module_training_on_a_batch_of_one_is_a_value_error():
    """REFERENCE 10.3 property 5, through nn.BatchNorm1d."""
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(C, eps=EPS)(Tensor(np.ones((1, C))))


def test_eval_on_a_batch_of_one_uses_the_running_stats():
    """REFERENCE 10.3 property 5: eval with B = 1 is fine (running statistics, no batch statistics)."""
    bn = trained_bn().eval()
    z = problem(2)[0][:1]
    expected = bn.weight.data * (z - bn.running_mean) / np.sqrt(bn.running_var + EPS) + bn.bias.data
    close(bn(Tensor(z)).data, expected)


def test_eval_without_running_stats_is_a_value_error_like_torch():
    """API.md (torch semantics where it is silent): F.batch_norm with training=False normalizes with
    the running statistics, so without them there is nothing to normalize with. torch raises
    'running_mean must be defined in evaluation mode'; silently using the batch statistics instead
    would also make an eval batch of one come out as beta with no error (REFERENCE 10.3.5)."""
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(Tensor(problem()[0]), None, None, training=False, eps=EPS)


# -- hypothesis: random sizes and scales -------------------------------------------------------------


@st.composite
def bn_problems(draw):
    """B in [2, 8], C in [1, 5]; z, gamma, beta each at its own scale (1e-3 .. 1e3), z off-center."""
    n, c = draw(st.integers(2, 8), label="B"), draw(st.integers(1, 5), label="C")
    scales = st.sampled_from([1e-3, 1e-1, 1.0, 1e1, 1e3])
    unit = st.one_of(st.just(0.0), st.floats(1e-3, 1.0), st.floats(-1.0, -1e-3))  # scale set by `scales`
    z_scale, gamma_scale, beta_scale = draw(scales), draw(scales), draw(scales)
    Z = draw(hnp.arrays(np.float64, (n, c), elements=unit)) * z_scale
    Z = Z + draw(st.floats(-10, 10)) * z_scale
    G = draw(hnp.arrays(np.float64, (n, c), elements=unit)) * 2.0
    gamma = draw(hnp.arrays(np.float64, c, elements=unit)) * gamma_scale
    beta = draw(hnp.arrays(np.float64, c, elements=unit)) * beta_scale
    return Z, G, gamma, beta


def condition(Z, eps=EPS):
    """Per column, 1 + max|z|/s: the centered values z - mu carry the rounding of z itself,
    ulp(max|z|), which is large next to s when the batch sits far from 0."""
    return 1.0 + np.abs(Z).max(axis=0) / np.sqrt(Z.var(axis=0) + eps)


def term_scale(Z, G, gamma, eps=EPS):
    """What rounding errors in dz are ulps of, per column: dz_i is a difference of terms of size
    (|gamma|/s) B max|g| and may cancel to ~0 (so a pure rtol would be wrong), times the
    condition of z - mu. (10.2's closed form drops a term, sum_i (z_i - mu), that is 0 only in
    exact arithmetic; autodiff keeps it, so the two differ by about that much.)"""
    s = np.sqrt(Z.var(axis=0) + eps)
    return np.abs(gamma) / s * Z.shape[0] * np.abs(G).max(axis=0) * condition(Z, eps)


# Tolerances of the random tests: rtol 1e-10 plus 1e-13 of the scale the rounding errors are ulps
# of. Autodiff and the oracles compute the same quantities in different orders; over 6000 drawn
# examples they differed by <= 3e-16 of that scale, so 1e-13 leaves ~300x headroom, while a real
# error (a term of 10.2 missing or wrong, a biased/unbiased or eps mix-up) is O(1e-9) to O(1) of it.
RANDOM_RTOL, RANDOM_ATOL = 1e-10, 1e-13
EXAMPLES = min(50, settings().max_examples)  # ~0.5 s per property; the dev profile's 20 if lower


@settings(max_examples=EXAMPLES)
@given(bn_problems())
def test_forward_equals_the_lecture_formula_at_random_sizes_and_scales(p):
    """REFERENCE 10.1 for any B, C and scales of z, gamma, beta."""
    Z, G, gamma, beta = p
    out = ours(Z, G, gamma, beta)[0]
    scale = np.abs(gamma) * np.sqrt(Z.shape[0]) * condition(Z) + np.abs(beta)  # |u| <= sqrt(B - 1)
    expected = lecture_forward(Z, gamma, beta)
    assert np.all(np.abs(out - expected) <= RANDOM_RTOL * np.abs(expected) + RANDOM_ATOL * scale)


@settings(max_examples=EXAMPLES)
@given(bn_problems())
def test_autodiff_equals_closed_form_at_random_sizes_and_scales(p):
    """REFERENCE 10.2 for any B, C and scales: dz, dgamma, dbeta (tolerance: RANDOM_RTOL, RANDOM_ATOL
    of term_scale; rtol alone cannot work, since dz_i may cancel to ~0)."""
    Z, G, gamma, beta = p
    _, dz, dgamma, dbeta = ours(Z, G, gamma, beta)
    cf_dz, cf_dgamma, cf_dbeta = closed_form(Z, G, gamma)
    assert np.all(np.abs(dz - cf_dz) <= RANDOM_RTOL * np.abs(cf_dz) + RANDOM_ATOL * term_scale(Z, G, gamma))
    gu_scale = np.sqrt(Z.shape[0]) * np.abs(G).sum(axis=0) * condition(Z)  # |u_i| <= sqrt(B - 1)
    assert np.all(np.abs(dgamma - cf_dgamma) <= RANDOM_RTOL * np.abs(cf_dgamma) + RANDOM_ATOL * gu_scale)
    assert np.all(np.abs(dbeta - cf_dbeta) <= RANDOM_ATOL * np.abs(G).sum(axis=0))


@settings(max_examples=EXAMPLES)
@given(bn_problems())
def test_input_gradient_sums_to_zero_at_random_sizes_and_scales(p):
    """REFERENCE 10.3 property 1 for any B, C and scales, to 1e-12 of term_scale (observed 3e-16)."""
    Z, G, gamma, beta = p
    dz = ours(Z, G, gamma, beta)[1]
    assert np.all(np.abs(dz.sum(axis=0)) <= 1e-12 * term_scale(Z, G, gamma))


# -- (N, C, L) inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3, 4), (1, 3, 4)], ids=["N5", "N1"])
def test_three_d_input_matches_torch_functional(torch, shape):
    """REFERENCE 10.1 over N and L: out, dz, dgamma, dbeta and running stats (N L/(N L - 1)) vs torch.
    A single sample with L > 1 is more than one value per channel: torch trains on it."""
    Z, G, gamma, beta = problem(6, shape)
    rm, rv = np.linspace(-1, 1, 3), np.linspace(0.5, 2, 3)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    mine = ours(Z, G, gamma, beta, running_mean=rm, running_var=rv, momentum=0.1)
    for a, b in zip(mine, theirs(torch, Z, G, gamma, beta, running_mean=trm, running_var=trv)):
        close(a, b)
    close(rm, trm.numpy())
    close(rv, trv.numpy())


def test_three_d_input_equals_the_two_d_version_of_its_rows():
    """(N, C, L) normalizes each channel over N and L: the same as (N L, C) with the L axis moved."""
    N, L = 5, 4
    Z, G, gamma, beta = problem(6, (N, C, L))

    def flat(a):
        return a.transpose(0, 2, 1).reshape(N * L, C)

    rm3, rv3, rm2, rv2 = np.zeros(C), np.ones(C), np.zeros(C), np.ones(C)
    out3, dz3, dg3, db3 = ours(Z, G, gamma, beta, running_mean=rm3, running_var=rv3)
    out2, dz2, dg2, db2 = ours(flat(Z), flat(G), gamma, beta, running_mean=rm2, running_var=rv2)
    for a, b in [(flat(out3), out2), (flat(dz3), dz2), (dg3, dg2), (db3, db2), (rm3, rm2), (rv3, rv2)]:
        close(a, b)


def test_three_d_module_matches_torch_in_train_and_eval(torch):
    """nn.BatchNorm1d on (N, C, L): outputs, gradients and buffers vs torch over train and eval."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=0.1)
    bn.weight.data[...], bn.bias.data[...] = problem()[2:]
    t = torch_bn(torch, bn)
    for Z in batches(3, shape=(5, C, 3)):
        G = np.cos(Z)
        z, tz = Tensor(Z, requires_grad=True), torch.tensor(Z, requires_grad=True)
        out, tout = bn(z), t(tz)
        out.backward(G)
        tout.backward(torch.tensor(G))
        close(out.data, tout.detach().numpy())
        close(z.grad, tz.grad.numpy())
    close(bn.weight.grad, t.weight.grad.numpy())
    close(bn.bias.grad, t.bias.grad.numpy())
    close(bn.running_mean, t.running_mean.numpy())
    close(bn.running_var, t.running_var.numpy())
    Z = batches(1, seed=4, shape=(2, C, 3))[0]
    close(bn.eval()(Tensor(Z)).data, t.eval()(torch.tensor(Z)).detach().numpy())


# -- nn.BatchNorm1d details vs torch ------------------------------------------------------------------


def test_num_batches_tracked_counts_training_calls_like_torch(torch):
    """torch: += 1 per training forward, unchanged in eval; a 0-d int64."""
    bn = nn.BatchNorm1d(C, eps=EPS)
    t = torch_bn(torch, bn)
    for Z, training in zip(batches(6), [True, True, False, True, False, True]):
        bn.train(training)
        t.train(training)
        bn(Tensor(Z))
        t(torch.tensor(Z))
        assert int(bn.num_batches_tracked) == int(t.num_batches_tracked)
    assert int(bn.num_batches_tracked) == 4
    state = bn.state_dict()["num_batches_tracked"]
    assert state.dtype == np.int64 and state.shape == ()


def test_state_dict_keys_order_and_values_match_torch(torch):
    """torch's keys in torch's order: weight, bias, running_mean, running_var, num_batches_tracked."""
    bn = trained_bn()
    t = torch.nn.BatchNorm1d(C, eps=EPS, momentum=0.1, dtype=torch.float64)
    t.load_state_dict({k: torch.tensor(v) for k, v in bn.state_dict().items()})
    assert list(bn.state_dict()) == STATE_KEYS == list(t.state_dict())
    for key, value in t.state_dict().items():
        assert np.array_equal(bn.state_dict()[key], value.numpy()), key


def test_state_dict_returns_copies():
    """Mutating a state_dict array does not change the module (torch's state_dict detaches too, but
    shares memory; ours copies, API.md 'state_dict -> dict of np arrays')."""
    bn = trained_bn()
    state = bn.state_dict()
    before = bn.running_mean.copy()
    state["running_mean"][...] = 123.0
    assert np.array_equal(bn.running_mean, before)


def test_mlp_with_batchnorm_matches_torch_sequential(torch):
    """nn.MLP(batchnorm=True): Linear -> BatchNorm1d -> ReLU -> Linear, torch's keys; the same
    state loaded into torch gives the same train-mode output, gradients and running stats."""
    net = nn.MLP([3, 5, 2], batchnorm=True, seed=0)
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                               torch.nn.Linear(5, 2)).double()
    assert list(net.state_dict()) == list(tnet.state_dict())
    tnet.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    X = np.random.default_rng(0).standard_normal((B, 3))
    out, tout = net(Tensor(X)), tnet(torch.tensor(X))
    out.backward(np.ones((B, 2)))
    tout.backward(torch.ones(B, 2, dtype=torch.float64))
    close(out.data, tout.detach().numpy())
    grads = dict(tnet.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), rtol=1e-11, atol=1e-14, err_msg=name)
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        close(net.state_dict()[key], tnet.state_dict()[key].numpy())


def test_reset_running_stats_restores_zero_one_and_keeps_parameters(torch):
    """torch: reset_running_stats() sets mean 0, var 1, num_batches_tracked 0; gamma and beta stay."""
    bn = trained_bn()
    t = torch_bn(torch, bn)
    weight, bias = bn.weight.data.copy(), bn.bias.data.copy()
    bn.reset_running_stats()
    t.reset_running_stats()
    assert np.array_equal(bn.running_mean, np.zeros(C))
    assert np.array_equal(bn.running_var, np.ones(C))
    assert int(bn.num_batches_tracked) == 0
    assert np.array_equal(bn.weight.data, weight) and np.array_equal(bn.bias.data, bias)
    for key, value in t.state_dict().items():
        assert np.array_equal(bn.state_dict()[key], value.numpy()), key


def test_reset_running_stats_keeps_the_buffer_objects():
    """In place, so that references to the buffers (an optimizer, F.batch_norm callers) stay valid."""
    bn = trained_bn()
    running_mean = bn.running_mean
    bn.reset_running_stats()
    assert bn.running_mean is running_mean


def test_affine_false_has_no_parameters_and_matches_torch(torch):
    """affine=False: no weight or bias (plain normalization), buffers only; values as torch."""
    bn = nn.BatchNorm1d(C, eps=EPS, affine=False)
    t = torch.nn.BatchNorm1d(C, eps=EPS, affine=False, dtype=torch.float64)
    assert bn.weight is None and bn.bias is None and list(bn.parameters()) == []
    assert list(bn.state_dict()) == STATE_KEYS[2:] == list(t.state_dict())
    for Z in batches(3):
        z, tz = Tensor(Z, requires_grad=True), torch.tensor(Z, requires_grad=True)
        out, tout = bn(z), t(tz)
        close(out.data, tout.detach().numpy())
        out.backward(np.sin(Z))
        tout.backward(torch.tensor(np.sin(Z)))
        close(z.grad, tz.grad.numpy())
    close(bn.running_var, t.running_var.numpy())
    Z = problem(8)[0]
    close(bn.eval()(Tensor(Z)).data, t.eval()(torch.tensor(Z)).numpy())


def test_track_running_stats_false_uses_batch_stats_in_eval_too(torch):
    """REFERENCE 10.4: track_running_stats=False has no buffers and normalizes with the batch in eval."""
    bn = nn.BatchNorm1d(C, eps=EPS, track_running_stats=False)
    t = torch.nn.BatchNorm1d(C, eps=EPS, track_running_stats=False, dtype=torch.float64)
    assert list(bn.state_dict()) == STATE_KEYS[:2] == list(t.state_dict())
    Z, _, gamma, beta = problem()
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    with torch.no_grad():
        t.weight[...], t.bias[...] = torch.tensor(gamma), torch.tensor(beta)
    bn.eval()
    t.eval()
    close(bn(Tensor(Z)).data, lecture_forward(Z, gamma, beta))
    close(bn(Tensor(Z)).data, t(torch.tensor(Z)).detach().numpy())


def test_float32_module_and_input_stay_float32_and_match_torch(torch):
    """API.md: float32 stays float32 (output, grads, running stats); values as torch float32."""
    bn = nn.BatchNorm1d(C, eps=EPS, dtype=np.float32)
    t = torch.nn.BatchNorm1d(C, eps=EPS, dtype=torch.float32)
    Z, G = (a.astype(np.float32) for a in problem()[:2])
    z, tz = Tensor(Z, requires_grad=True), torch.tensor(Z, requires_grad=True)
    out, tout = bn(z), t(tz)
    out.backward(G)
    tout.backward(torch.tensor(G))
    arrays = [out.data, z.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var]
    assert all(a.dtype == np.float32 for a in arrays), [a.dtype for a in arrays]
    expected = [tout.detach(), tz.grad, t.weight.grad, t.bias.grad, t.running_mean, t.running_var]
    for a, b in zip(arrays, expected):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)
    bn.eval()
    t.eval()
    np.testing.assert_allclose(bn(Tensor(Z)).data, t(torch.tensor(Z)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert bn(Tensor(Z)).dtype == np.float32


def test_eval_uses_running_stats_and_leaves_them_unchanged(torch):
    """REFERENCE 10.4: eval forward (z - running_mean)/sqrt(running_var + eps) gamma + beta; no update."""
    bn = trained_bn()
    t = torch_bn(torch, bn)
    bn.eval()
    t.eval()
    before = bn.state_dict()
    Z = problem(12)[0]
    out = bn(Tensor(Z)).data
    expected = bn.weight.data * (Z - bn.running_mean) / np.sqrt(bn.running_var + EPS) + bn.bias.data
    close(out, expected)
    close(out, t(torch.tensor(Z)).detach().numpy())
    for key, value in bn.state_dict().items():
        assert np.array_equal(value, before[key]), key


def test_eval_gradients_are_those_of_the_fixed_affine_map(torch):
    """In eval BN is affine per neuron: dz = gamma/sqrt(rv + eps) g, no coupling across the batch."""
    bn = trained_bn().eval()
    t = torch_bn(torch, bn).eval()
    Z, G = problem(13)[:2]
    z, tz = Tensor(Z, requires_grad=True), torch.tensor(Z, requires_grad=True)
    bn.zero_grad()
    bn(z).backward(G)
    t(tz).backward(torch.tensor(G))
    close(z.grad, bn.weight.data / np.sqrt(bn.running_var + EPS) * G)
    close(z.grad, tz.grad.numpy())
    close(bn.weight.grad, t.weight.grad.numpy())
    close(bn.bias.grad, t.bias.grad.numpy())


def test_train_eval_switching_matches_torch_step_by_step(torch):
    """train()/eval() return the module, set .training, and switch batch vs running statistics."""
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=0.3)
    bn.weight.data[...], bn.bias.data[...] = problem()[2:]
    t = torch_bn(torch, bn)
    for Z, mode in zip(batches(6), ["train", "train", "eval", "train", "eval", "eval"]):
        assert getattr(bn, mode)() is bn
        getattr(t, mode)()
        assert bn.training == t.training == (mode == "train")
        close(bn(Tensor(Z)).data, t(torch.tensor(Z)).detach().numpy())
        close(bn.running_mean, t.running_mean.numpy())
        close(bn.running_var, t.running_var.numpy())


def test_mlp_eval_switches_its_batchnorm_to_running_stats():
    """Module.eval() reaches the BatchNorm1d inside an MLP: a batch of one then works."""
    net = nn.MLP([3, 5, 2], batchnorm=True, seed=0)
    net(Tensor(np.random.default_rng(0).standard_normal((B, 3))))
    net.eval()
    assert not net[1].training
    assert net(Tensor(np.ones((1, 3)))).shape == (1, 2)


# -- a failed call changes nothing ---------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, None])
def test_wrong_number_of_features_raises_and_changes_nothing(momentum):
    """A ValueError that names both shapes; buffers, num_batches_tracked, parameters and grads as before."""
    bn = trained_bn(momentum)
    before = snapshot(bn)
    with pytest.raises(ValueError, match=r"4.*\(7, 5\)"):
        bn(Tensor(np.ones((B, C + 1))))
    assert_same_state(bn, before)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_batch_of_one_raises_and_changes_nothing(momentum):
    """REFERENCE 10.3 property 5: the error leaves running stats and num_batches_tracked alone
    (with momentum=None the count sets the average's weight, so a lost increment would skew it)."""
    bn = trained_bn(momentum)
    before = snapshot(bn)
    with pytest.raises(ValueError, match=r"\(1, 4\)"):
        bn(Tensor(np.ones((1, C)), requires_grad=True))
    assert_same_state(bn, before)


@pytest.mark.parametrize("bad", ["running_mean", "running_var", "weight"])
def test_functional_wrong_running_stat_shapes_raise_and_change_nothing(bad):
    """F.batch_norm checks every shape before it updates anything: running stats stay as they were."""
    Z, _, gamma, beta = problem()
    arrays = {"running_mean": np.linspace(-1, 1, C), "running_var": np.linspace(0.5, 2, C),
              "weight": gamma}
    arrays[bad] = np.ones(C + 1)
    kept = {k: v.copy() for k, v in arrays.items()}
    with pytest.raises(ValueError, match=rf"{bad}.*\(4,\).*\(5,\)"):
        F.batch_norm(Tensor(Z), arrays["running_mean"], arrays["running_var"], Tensor(arrays["weight"]),
                     Tensor(beta), training=True, momentum=0.1, eps=EPS)
    for key in arrays:
        assert np.array_equal(arrays[key], kept[key]), key


def test_functional_does_not_mutate_its_inputs():
    """Only the running stats are updated in place; x, weight, bias and the upstream gradient are not."""
    Z, G, gamma, beta = problem()
    copies = [a.copy() for a in (Z, G, gamma, beta)]
    z, w, b = (Tensor(a, requires_grad=True) for a in (Z, gamma, beta))
    F.batch_norm(z, np.zeros(C), np.ones(C), w, b, training=True, eps=EPS).backward(G)
    for a, kept in zip((Z, G, gamma, beta), copies):
        assert np.array_equal(a, kept)


# -- the graph --------------------------------------------------------------------------------------------


def test_nodes_carry_the_stage_scopes():
    """API.md name_scope: every op node F.batch_norm makes is in one of batchnorm/{mean, variance,
    normalize, scale_shift}, and every stage has nodes."""
    Z, _, gamma, beta = problem()
    z, w, b = (Tensor(a, requires_grad=True) for a in (Z, gamma, beta))
    out = F.batch_norm(z, None, None, w, b, training=True, eps=EPS)
    scopes = {node.scope for node in topological_order(out) if node.op}
    assert scopes == STAGES


def test_scopes_nest_under_an_outer_scope():
    """name_scope nests: inside "block1" the stages are "block1/batchnorm/..."."""
    z = Tensor(problem()[0], requires_grad=True)
    with tl.name_scope("block1"):
        out = nn.BatchNorm1d(C, eps=EPS)(z)
    assert {n.scope for n in topological_order(out) if n.op} == {"block1/" + s for s in STAGES}


def test_gradients_come_from_primitive_ops():
    """API.md: autodiff over primitive ops (mean, sub, mul, sqrt, div, add), no batch_norm op."""
    out = F.batch_norm(Tensor(problem()[0], requires_grad=True), None, None, training=True, eps=EPS)
    ops = {n.op for n in topological_order(out) if n.op}
    assert {"mean", "sqrt"} <= ops
    assert not any("norm" in op or "batch" in op for op in ops)


def test_no_graph_under_no_grad():
    """API.md no_grad: the output is a leaf; running stats are still updated in training."""
    bn = nn.BatchNorm1d(C, eps=EPS)
    with tl.no_grad():
        out = bn(Tensor(problem()[0], requires_grad=True))
    assert out.op == "" and out.parents == () and not out.requires_grad
    assert int(bn.num_batches_tracked) == 1


def test_graph_is_freed_when_the_output_is_dropped():
    """As tests/tensor_factory.check_graph_freed: every interior node dies with the last reference
    to the output, by reference counting alone (the garbage collector off)."""
    bn = nn.BatchNorm1d(C, eps=EPS)
    z = Tensor(problem()[0], requires_grad=True)
    out = bn(z)
    out.backward(np.ones(out.shape))
    interior = [weakref.ref(n) for n in topological_order(out) if n.op]
    assert len(interior) > 5
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del out
        alive = [r() for r in interior if r() is not None]
        assert alive == [], f"{len(alive)} nodes outlived the output: {[n.op for n in alive]}"
    finally:
        if was_enabled:
            gc.enable()
    assert z.grad is not None and bn.weight.grad is not None  # leaves keep their gradients


# -- the scalar version as a cross-check --------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7])
def test_tensor_on_one_column_equals_the_scalar_per_element_version(n):
    """scalar.batch_norm on Values (the lecture's per-element graph) and F.batch_norm on (B, 1) agree
    in values and in the gradients of z, gamma and beta (sums in different orders: rtol 1e-12)."""
    Z, G, gamma, beta = problem(n, (n, 1))
    zs = [tl.Value(float(v)) for v in Z[:, 0]]
    gm, bt = tl.Value(float(gamma[0])), tl.Value(float(beta[0]))
    outs = scalar.batch_norm(zs, gm, bt, eps=EPS)
    loss = outs[0] * float(G[0, 0])
    for o, g in zip(outs[1:], G[1:, 0]):
        loss = loss + o * float(g)
    loss.backward()
    out, dz, dgamma, dbeta = ours(Z, G, gamma, beta)
    close([o.data for o in outs], out[:, 0])
    close([v.grad for v in zs], dz[:, 0], atol=1e-13)
    close(gm.grad, dgamma[0])
    close(bt.grad, dbeta[0])


# -- bad input: errors that name batch_norm, and no partial update (issue 8, "Hardening") ------------

BAD_BATCH_NORM_ARGUMENTS = {
    "training-array": ({"training": np.array([True, False])}, TypeError, "batch_norm: training"),
    "momentum-dict": ({"momentum": {}}, TypeError, "batch_norm: momentum"),
    "eps-str": ({"eps": "1e-5"}, TypeError, "batch_norm: eps"),
    "running_mean-list": ({"running_mean": [0.0] * C}, TypeError, "batch_norm: running_mean"),
    "running_var-ints": ({"running_var": np.ones(C, np.int64)}, TypeError, "batch_norm: running_var"),
    "weight-ragged": ({"weight": [[1.0], [1.0, 2.0]]}, TypeError, "batch_norm: weight"),
    "bias-strings": ({"bias": np.array(["a"] * C)}, TypeError, "batch_norm: bias"),
    "eval-negative-running_var": ({"training": False, "running_var": -np.ones(C)}, ValueError,
                                  "batch_norm: running_var must be >= 0"),
    "eval-running_mean-strings": ({"training": False, "running_mean": np.array(["a"] * C)}, TypeError,
                                  "batch_norm: running_mean"),
}


@pytest.mark.parametrize("change, error, text", BAD_BATCH_NORM_ARGUMENTS.values(),
                         ids=BAD_BATCH_NORM_ARGUMENTS.keys())
def test_functional_bad_arguments_raise_naming_batch_norm_and_change_nothing(change, error, text):
    Z, _, gamma, beta = problem()
    kwargs = {"running_mean": np.linspace(-1, 1, C), "running_var": np.linspace(0.5, 2, C),
              "weight": Tensor(gamma), "bias": Tensor(beta), "training": True, "momentum": 0.1, "eps": EPS}
    kwargs.update(change)
    stats = [a for a in (kwargs["running_mean"], kwargs["running_var"]) if isinstance(a, np.ndarray)]
    kept = [a.copy() for a in stats]
    with pytest.raises(error) as info:
        F.batch_norm(Tensor(Z), **kwargs)
    assert text in str(info.value)
    for a, b in zip(stats, kept):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dropout", [0.0, 0.5], ids=["no-dropout", "dropout"])
def test_a_forward_failing_in_a_later_layer_undoes_the_earlier_batchnorm_and_dropout_updates(dropout):
    """(2, 4, 3) passes the first Linear and BatchNorm1d (as (N, C, L)), then the second BatchNorm1d
    refuses it: the first one's running statistics, its num_batches_tracked and the dropout
    generator must be as before the call (RELIABILITY.md 5)."""
    net = nn.MLP([3, 4, 5, 2], batchnorm=True, dropout=dropout, seed=0)
    net(Tensor(np.random.default_rng(0).normal(size=(8, 3))))
    state = net.state_dict()
    generators = [m.generator.bit_generator.state for m in net.modules() if isinstance(m, nn.Dropout)]
    with pytest.raises(ValueError, match=r"BatchNorm1d: .*\(2, 4, 5\)"):
        net(Tensor(np.ones((2, 4, 3))))
    for key, value in net.state_dict().items():
        assert np.array_equal(value, state[key]), key
    assert generators == [m.generator.bit_generator.state for m in net.modules() if isinstance(m, nn.Dropout)]
    assert int(net[1].num_batches_tracked) == 1


def test_a_failing_forward_of_a_user_module_undoes_its_children_updates():
    class TwoNorms(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.BatchNorm1d(3), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.second(self.first(x))

    net = TwoNorms()
    state = net.state_dict()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        net(Tensor(np.ones((5, 3))))
    assert all(np.array_equal(v, state[k]) for k, v in net.state_dict().items())
