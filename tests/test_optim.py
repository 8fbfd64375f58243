"""tinygrad_lec.optim as a specification (API.md "optim"; REFERENCE 2-7, 13, 14).

* Gradient replay against torch (REFERENCE 2 recipe 1): one table row per optimizer option, K = 200
  pre-drawn gradients, every iterate at rtol 1e-12, atol 1e-14 (REFERENCE 13).
* The lecture forms (REFERENCE 2, 4, 5) against numpy loops of the lecture's formulas written here,
  their equality with torch at eps = 0, and the exact first steps.
* The documented non-equivalences must show (REFERENCE 2, 4, 6): eps placement, coupled vs decoupled
  weight decay, lecture momentum under a learning-rate change.
* Nesterov closed loop (REFERENCE 3), weight decay as an L2 penalty and parameter groups (REFERENCE 6).
* Values as parameters, state_dict/load_state_dict, argument validation, grads that are None or of the
  wrong shape, zero_grad, and a hypothesis property against torch.

Torch comparisons take the ``torch`` fixture (or call importorskip), so the numpy-reference tests run
without torch. Every hyperparameter is passed explicitly (REFERENCE 13).
"""

import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lec import Tensor, Value, optim

REPLAY_RTOL, REPLAY_ATOL = 1e-12, 1e-14  # REFERENCE 13: optimizer, gradient replay, <= 200 steps
LOOP_RTOL = 1e-9  # REFERENCE 13: optimizer, closed loop, <= 50 steps
MUST_DIFFER = 1e-3  # REFERENCE 13: documented non-equivalences
EPS_MUST_DIFFER = 1e-2  # REFERENCE 4 recipe 4: the eps-placement test
K, D = 200, 6  # REFERENCE 2 recipe 1


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# -- gradient replay ------------------------------------------------------------------------------

def gradients(seed=0, k=K, d=D, scale=1.0):
    """REFERENCE 2 recipe 1: entries N(0,1) exp(U(-3,1)), magnitudes spread over four decades."""
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((k, d)) * np.exp(rng.uniform(-3.0, 1.0, (k, d)))


def start(seed=0, d=D):
    return np.random.default_rng(seed + 1000).standard_normal(d)


def replay(make, G, theta0, before_step=None):
    """Iterates theta_1..theta_K of the optimizer ``make([p])`` fed the gradients G, one row per step.
    ``before_step(k, p, opt)`` runs before step k (to change lr, or to decay weights by hand)."""
    p = Tensor(theta0.copy(), requires_grad=True)
    opt = make([p])
    out = []
    for k, g in enumerate(G):
        if before_step is not None:
            before_step(k, p, opt)
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    return np.array(out)


def replay_torch(torch, name, hyper, G, theta0, before_step=None):
    """The same replay through ``torch.optim.<name>(..., foreach=False)`` in float64."""
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, name)([p], foreach=False, **hyper)
    out = []
    for k, g in enumerate(G):
        if before_step is not None:
            before_step(k, p, opt)
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def ours(name, **hyper):
    return lambda params: getattr(optim, name)(params, **hyper)


def assert_replay_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=REPLAY_RTOL, atol=REPLAY_ATOL)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


HYPER = {  # every hyperparameter explicit (REFERENCE 13); the rows below override some
    "SGD": dict(lr=0.05, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "RMSprop": dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    maximize=False),
    "Adam": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False),
    "AdamW": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False, maximize=False),
    "Rprop": dict(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), maximize=False),
}


def row(name, option, **overrides):
    return pytest.param(name, {**HYPER[name], **overrides}, id=f"{name}-{option}")


TORCH_ROWS = [
    row("SGD", "plain"),
    row("SGD", "momentum", momentum=0.9),
    row("SGD", "dampening", momentum=0.9, dampening=0.3),
    row("SGD", "nesterov", momentum=0.9, nesterov=True),
    row("SGD", "weight_decay", weight_decay=0.1),
    row("SGD", "momentum+weight_decay", momentum=0.9, weight_decay=0.1),
    row("SGD", "maximize", maximize=True),
    row("SGD", "maximize+momentum", momentum=0.9, maximize=True),
    row("SGD", "nesterov+weight_decay+maximize", momentum=0.5, nesterov=True, weight_decay=0.2,
        maximize=True),
    row("RMSprop", "eps=0", eps=0.0),
    row("RMSprop", "eps=1e-8"),
    row("RMSprop", "eps=1e-2", eps=1e-2),
    row("RMSprop", "alpha=0.9", alpha=0.9),
    row("RMSprop", "alpha=0", alpha=0.0),
    row("RMSprop", "weight_decay", weight_decay=0.1),
    row("RMSprop", "momentum", momentum=0.5),
    row("RMSprop", "centered", centered=True),
    row("RMSprop", "centered+momentum", centered=True, momentum=0.5),
    row("RMSprop", "centered+momentum+weight_decay+eps=0", centered=True, momentum=0.9, weight_decay=0.1,
        eps=0.0, alpha=0.9),
    row("RMSprop", "maximize", maximize=True),
    row("RMSprop", "maximize+momentum+weight_decay", maximize=True, momentum=0.5, weight_decay=0.1),
    row("Adam", "default"),
    row("Adam", "eps=0", eps=0.0),
    row("Adam", "eps=1e-3", eps=1e-3),
    row("Adam", "betas=(0.5,0.9)", betas=(0.5, 0.9)),
    row("Adam", "beta1=0", betas=(0.0, 0.99)),  # lerp weight 1: torch's second lerp formula
    row("Adam", "beta1=0.3", betas=(0.3, 0.999)),  # lerp weight 0.7 >= 0.5: the second formula
    row("Adam", "weight_decay", weight_decay=0.1),
    row("Adam", "amsgrad", amsgrad=True),
    row("Adam", "amsgrad+weight_decay+eps=0", amsgrad=True, weight_decay=0.1, eps=0.0),
    row("Adam", "maximize", maximize=True),
    row("Adam", "maximize+amsgrad", maximize=True, amsgrad=True),
    row("AdamW", "default"),
    row("AdamW", "weight_decay=0.1+amsgrad", weight_decay=0.1, amsgrad=True),
    row("AdamW", "betas+eps=0", betas=(0.8, 0.99), eps=0.0),
    row("AdamW", "maximize", maximize=True),
    row("Rprop", "default"),
    row("Rprop", "etas", etas=(0.3, 1.5)),
    row("Rprop", "step_sizes", step_sizes=(1e-3, 0.05)),
    row("Rprop", "lr=0.1", lr=0.1),
    row("Rprop", "maximize", maximize=True),
]

LECTURE_ROWS = [
    row("RMSprop", "lecture", eps_inside_sqrt=True),
    row("RMSprop", "lecture+centered+momentum", eps_inside_sqrt=True, centered=True, momentum=0.5),
    row("Adam", "lecture", eps_inside_sqrt=True),
    row("Adam", "lecture+amsgrad", eps_inside_sqrt=True, amsgrad=True),
]


@pytest.mark.parametrize("name, hyper", TORCH_ROWS)
def test_replay_matches_torch_at_every_iterate(torch, name, hyper):
    """REFERENCE 2 recipe 1, 4 recipe 2, 5 recipes 2 and 5, 6 recipe 4, 7: the update rules are torch's."""
    G, theta0 = gradients(), start()
    assert_replay_close(replay(ours(name, **hyper), G, theta0),
                        replay_torch(torch, name, hyper, G, theta0))


def test_sgd_momentum_follows_torch_when_lr_changes_mid_run(torch):
    """REFERENCE 2: torch scales the stored buffer b by the lr in force, so a torch-compatible SGD must
    store b, not the lecture's dW; halving group["lr"] at step 10 keeps the replay equal to torch."""
    hyper = {**HYPER["SGD"], "lr": 0.1, "momentum": 0.9}

    def halve_at_10(k, p, opt):
        if k == 10:
            opt.param_groups[0]["lr"] = 0.05

    G, theta0 = gradients(k=30), start()
    assert_replay_close(replay(ours("SGD", **hyper), G, theta0, halve_at_10),
                        replay_torch(torch, "SGD", hyper, G, theta0, halve_at_10))


def test_a_parameter_without_grad_is_skipped_and_keeps_its_own_step_count_as_torch(torch):
    """REFERENCE 5: torch skips a parameter whose grad is None (no move, no state, no step count); Adam's
    bias correction uses the per-parameter count, so a parameter that misses steps follows torch."""
    hyper = {**HYPER["Adam"], "lr": 0.1}
    G, theta0 = gradients(k=12, d=4), start(d=4)
    missing = {0, 1, 2, 6, 7}  # steps at which the second parameter has no gradient

    def run(make_param, make_grad, make_opt, to_numpy):
        a, b = make_param(theta0[:2]), make_param(theta0[2:])
        opt = make_opt([a, b])
        out = []
        for k, g in enumerate(G):
            a.grad = make_grad(g[:2])
            b.grad = None if k in missing else make_grad(g[2:])
            opt.step()
            out.append(np.concatenate([to_numpy(a), to_numpy(b)]))
        return np.array(out)

    mine = run(lambda x: Tensor(x.copy(), requires_grad=True), np.copy, ours("Adam", **hyper),
               lambda p: p.data.copy())
    theirs = run(lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True),
                 lambda g: torch.tensor(g, dtype=torch.float64),
                 lambda ps: torch.optim.Adam(ps, foreach=False, **hyper), lambda p: p.detach().numpy().copy())
    assert_replay_close(mine, theirs)


# -- the lecture forms (REFERENCE 2, 4, 5), written independently in numpy ---------------------------

def lecture_momentum(G, theta0, lrs, beta):
    """REFERENCE 2: dW(k) = beta dW(k-1) - eta_k g_k, W(k) = W(k-1) + dW(k), dW(0) = 0."""
    W, dW, out = theta0.copy(), np.zeros_like(theta0), []
    for g, eta in zip(G, lrs):
        dW = beta * dW - eta * g
        W = W + dW
        out.append(W)
    return np.array(out)


def lecture_rmsprop(G, theta0, eta, gamma, eps):
    """REFERENCE 4: E_k = gamma E_{k-1} + (1 - gamma) g_k^2, w <- w - eta g_k / sqrt(E_k + eps), E_0 = 0."""
    w, E, out = theta0.copy(), np.zeros_like(theta0), []
    for g in G:
        E = gamma * E + (1 - gamma) * g**2
        w = w - eta * g / np.sqrt(E + eps)
        out.append(w)
    return np.array(out)


def lecture_adam(G, theta0, eta, delta, gamma, eps):
    """REFERENCE 5: m, v with decays delta, gamma; bias-corrected; w <- w - eta m_hat / sqrt(v_hat + eps)."""
    w, m, v, out = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0), []
    for k, g in enumerate(G, start=1):
        m = delta * m + (1 - delta) * g
        v = gamma * v + (1 - gamma) * g**2
        m_hat, v_hat = m / (1 - delta**k), v / (1 - gamma**k)
        w = w - eta * m_hat / np.sqrt(v_hat + eps)
        out.append(w)
    return np.array(out)


def test_sgd_momentum_equals_the_lecture_momentum_at_constant_lr():
    """REFERENCE 2, exact mapping: with beta = momentum, dampening 0 and constant eta, W(k) = theta_k."""
    G, theta0 = gradients(), start()
    hyper = {**HYPER["SGD"], "lr": 0.05, "momentum": 0.9}
    assert_replay_close(replay(ours("SGD", **hyper), G, theta0),
                        lecture_momentum(G, theta0, [0.05] * K, 0.9))


@pytest.mark.parametrize("scale", [1.0, 1e-4], ids=["grads~1", "grads~1e-4"])
@pytest.mark.parametrize("eps", [0.0, 1e-8, 1e-2])
def test_rmsprop_lecture_mode_is_the_lecture_formula(eps, scale):
    """REFERENCE 4 recipe 3: eps_inside_sqrt=True gives w - eta g / sqrt(E + eps) (gamma = alpha)."""
    G, theta0 = gradients(scale=scale), start()
    hyper = {**HYPER["RMSprop"], "lr": 0.01, "alpha": 0.9, "eps": eps}
    assert_replay_close(replay(ours("RMSprop", eps_inside_sqrt=True, **hyper), G, theta0),
                        lecture_rmsprop(G, theta0, 0.01, 0.9, eps))


@pytest.mark.parametrize("scale", [1.0, 1e-4], ids=["grads~1", "grads~1e-4"])
@pytest.mark.parametrize("eps", [0.0, 1e-8, 1e-2])
def test_adam_lecture_mode_is_the_lecture_formula(eps, scale):
    """REFERENCE 5: eps_inside_sqrt=True gives w - eta m_hat / sqrt(v_hat + eps) (delta, gamma = betas)."""
    G, theta0 = gradients(scale=scale), start()
    hyper = {**HYPER["Adam"], "lr": 0.01, "betas": (0.8, 0.95), "eps": eps}
    assert_replay_close(replay(ours("Adam", eps_inside_sqrt=True, **hyper), G, theta0),
                        lecture_adam(G, theta0, 0.01, 0.8, 0.95, eps))


@pytest.mark.parametrize("name, hyper", [
    row("RMSprop", "gamma=0.9", eps=0.0, alpha=0.9),
    row("Adam", "betas=(0.9,0.999)", eps=0.0),
    row("Adam", "amsgrad", eps=0.0, amsgrad=True),
])
def test_lecture_mode_equals_torch_at_eps_0(torch, name, hyper):
    """REFERENCE 4 recipe 1, 5 recipe 1: at eps = 0, sqrt(v + eps) and sqrt(v) + eps coincide."""
    G, theta0 = gradients(), start()
    assert_replay_close(replay(ours(name, eps_inside_sqrt=True, **hyper), G, theta0),
                        replay_torch(torch, name, hyper, G, theta0))


# Dyadic hyperparameters make the identities exact in floating point, not only in real arithmetic:
# sqrt(fl(g*g)) = |g| in binary floating point, and products with powers of two are exact.
@pytest.mark.parametrize("eps_inside_sqrt", [False, True], ids=["torch-form", "lecture-form"])
@pytest.mark.parametrize("lr, betas", [(0.125, (0.5, 0.75)), (2.0**-10, (0.75, 0.9375))])
def test_adam_first_step_at_eps_0_is_minus_lr_sign_g_exactly(lr, betas, eps_inside_sqrt):
    """REFERENCE 5 recipe 4: m_hat_1 = g_1 and v_hat_1 = g_1^2, so theta_1 - theta_0 = -lr sign(g_1)."""
    g, theta0 = gradients(k=1)[0], start()
    theta1 = replay(ours("Adam", **{**HYPER["Adam"], "lr": lr, "betas": betas, "eps": 0.0},
                         eps_inside_sqrt=eps_inside_sqrt), [g], theta0)[0]
    np.testing.assert_array_equal(theta1, theta0 - lr * np.sign(g))


@pytest.mark.parametrize("eps_inside_sqrt", [False, True], ids=["torch-form", "lecture-form"])
@pytest.mark.parametrize("lr, alpha", [(0.125, 0.75), (2.0**-10, 0.9375)])
def test_rmsprop_first_step_at_eps_0_is_minus_lr_sign_g_over_sqrt_1_minus_alpha_exactly(lr, alpha,
                                                                                        eps_inside_sqrt):
    """REFERENCE 4 recipe 5: no bias correction, E_1 = (1 - alpha) g^2, so the first step is
    -lr sign(g) / sqrt(1 - alpha) (10 lr at alpha = 0.99)."""
    g, theta0 = gradients(k=1)[0], start()
    hyper = {**HYPER["RMSprop"], "lr": lr, "alpha": alpha, "eps": 0.0}
    theta1 = replay(ours("RMSprop", eps_inside_sqrt=eps_inside_sqrt, **hyper), [g], theta0)[0]
    np.testing.assert_array_equal(theta1, theta0 - lr * np.sign(g) / np.sqrt(1 - alpha))


# -- documented non-equivalences (REFERENCE 2, 4, 5, 6) ------------------------------------------

@pytest.mark.parametrize("name", ["RMSprop", "Adam"])
def test_eps_placement_matters_for_small_gradients(name):
    """REFERENCE 4 recipe 4, 5 recipe 3: with gradients x1e-4 and eps = 1e-8, sqrt(v + eps) and
    sqrt(v) + eps move the parameters differently (displacement differs by > 1e-2 relative). The
    torch form is pinned to torch by the replay table."""
    G, theta0 = gradients(scale=1e-4), start()
    hyper = {**HYPER[name], "eps": 1e-8}
    lecture = replay(ours(name, eps_inside_sqrt=True, **hyper), G, theta0)
    torch_form = replay(ours(name, eps_inside_sqrt=False, **hyper), G, theta0)
    assert rel(lecture - theta0, torch_form - theta0) > EPS_MUST_DIFFER


def decay_by_hand(lr, lam):
    """Decoupled weight decay theta <- theta (1 - lr lambda) before each step (REFERENCE 6)."""
    def before_step(k, p, opt):
        p.data *= 1 - lr * lam
    return before_step


def test_coupled_weight_decay_equals_decoupled_for_plain_sgd():
    """REFERENCE 6 recipe 2: theta - lr (g + lambda theta) = theta (1 - lr lambda) - lr g."""
    G, theta0 = gradients(), start()
    lr, lam = 0.05, 0.3
    coupled = replay(ours("SGD", **{**HYPER["SGD"], "lr": lr, "weight_decay": lam}), G, theta0)
    decoupled = replay(ours("SGD", **{**HYPER["SGD"], "lr": lr}), G, theta0, decay_by_hand(lr, lam))
    assert_replay_close(coupled, decoupled)


def test_coupled_weight_decay_differs_from_decoupled_with_momentum():
    """REFERENCE 6 recipe 3: with momentum, lambda theta enters the buffer and is amplified ~1/(1 - mu)."""
    G, theta0 = gradients(k=50), start()
    lr, lam = 0.05, 0.3
    hyper = {**HYPER["SGD"], "lr": lr, "momentum": 0.9}
    coupled = replay(ours("SGD", **{**hyper, "weight_decay": lam}), G, theta0)
    decoupled = replay(ours("SGD", **hyper), G, theta0, decay_by_hand(lr, lam))
    assert rel(coupled - theta0, decoupled - theta0) > MUST_DIFFER


def test_adam_weight_decay_differs_from_adamw():
    """REFERENCE 6 recipe 3: Adam divides lambda theta by sqrt(v_hat) + eps, AdamW decays uniformly."""
    G, theta0 = gradients(k=50), start()
    hyper = {**HYPER["Adam"], "lr": 0.01, "weight_decay": 0.3}
    coupled = replay(ours("Adam", **hyper), G, theta0)
    decoupled = replay(ours("AdamW", **hyper), G, theta0)
    assert rel(coupled - theta0, decoupled - theta0) > MUST_DIFFER


def test_lecture_momentum_and_sgd_agree_until_the_lr_changes_then_differ():
    """REFERENCE 2 recipe 3: the lecture scales each past gradient by the eta of its step, torch the
    whole buffer by the current lr; halving lr at step 10 separates them (> 1e-3 over 30 steps)."""
    G, theta0 = gradients(k=30), start()
    lrs = [0.1] * 10 + [0.05] * 20

    def schedule(k, p, opt):
        opt.param_groups[0]["lr"] = lrs[k]

    sgd = replay(ours("SGD", **{**HYPER["SGD"], "lr": 0.1, "momentum": 0.9}), G, theta0, schedule)
    lecture = lecture_momentum(G, theta0, lrs, 0.9)
    assert_replay_close(sgd[:10], lecture[:10])
    assert rel(sgd - theta0, lecture - theta0) > MUST_DIFFER


# -- closed loop on f(x) = 1/2 x^T Q x + c^T x + sum log cosh x_i (REFERENCE 2 recipe 2, 3) ----------

def objective(seed=0, d=5):
    """Q symmetric positive definite, c, and a starting point."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    return A @ A.T / d + 0.5 * np.eye(d), rng.standard_normal(d), 2.0 * rng.standard_normal(d)


def f_tensor(x, Q, c):
    """f from Tensor ops, so its gradient comes from our autodiff."""
    log_cosh = ((x.exp() + (-x).exp()) * 0.5).log()
    return (x @ (Tensor(Q) @ x)) * 0.5 + (Tensor(c) * x).sum() + log_cosh.sum()


def grad_f(y, Q, c):
    return Q @ y + c + np.tanh(y)


@pytest.fixture(scope="module")
def nesterov_run():
    """Our SGD(nesterov=True) iterates theta_k (gradients by autodiff) and the lecture's look-ahead form
    W(k), dW(k) in numpy, lr = 0.05, mu = beta = 0.9, K = 50 (REFERENCE 3)."""
    lr, mu, steps = 0.05, 0.9, 50
    Q, c, x0 = objective()
    x = Tensor(x0.copy(), requires_grad=True)
    opt = optim.SGD([x], lr=lr, momentum=mu, dampening=0.0, weight_decay=0.0, nesterov=True, maximize=False)
    theta, buf = [], []
    for _ in range(steps):
        opt.zero_grad()
        f_tensor(x, Q, c).backward()
        opt.step()
        theta.append(x.data.copy())
        buf.append(opt.state[0]["momentum_buffer"].copy())
    W, dW, Ws, dWs = x0.copy(), np.zeros_like(x0), [], []
    for _ in range(steps):
        dW = mu * dW - lr * grad_f(W + mu * dW, Q, c)
        W = W + dW
        Ws.append(W)
        dWs.append(dW)
    return dict(lr=lr, mu=mu, theta=np.array(theta), buf=np.array(buf), W=np.array(Ws), dW=np.array(dWs))


def test_nesterov_parameters_are_the_lecture_look_ahead_points(nesterov_run):
    """REFERENCE 3: theta_k = W(k) + beta dW(k)."""
    r = nesterov_run
    assert rel(r["theta"], r["W"] + r["mu"] * r["dW"]) <= LOOP_RTOL


def test_nesterov_lecture_weights_are_theta_plus_lr_mu_buffer(nesterov_run):
    """REFERENCE 3: W(k) = theta_k + lr mu b_k, b_k = opt.state[0]["momentum_buffer"]."""
    r = nesterov_run
    assert rel(r["W"], r["theta"] + r["lr"] * r["mu"] * r["buf"]) <= LOOP_RTOL


def test_nesterov_parameters_are_not_the_lecture_weights(nesterov_run):
    """REFERENCE 3: guards against a "lecture W" implementation; they differ by lr mu b_k (~30 %)."""
    r = nesterov_run
    assert rel(r["theta"], r["W"]) > MUST_DIFFER


def closed_loop(opt_name, hyper, penalty, steps=50):
    """Iterates on f (+ (penalty/2) ||x||^2 built from Tensor ops when penalty > 0)."""
    Q, c, x0 = objective()
    x = Tensor(x0.copy(), requires_grad=True)
    opt = getattr(optim, opt_name)([x], **hyper)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = f_tensor(x, Q, c)
        if penalty:
            loss = loss + (penalty / 2) * (x * x).sum()
        loss.backward()
        opt.step()
        out.append(x.data.copy())
    return np.array(out)


@pytest.mark.parametrize("name, hyper", [
    row("SGD", "plain"),
    row("SGD", "momentum", momentum=0.9),
    row("RMSprop", "default"),
    row("Adam", "default"),
])
def test_weight_decay_is_the_gradient_of_half_lambda_norm_squared(name, hyper):
    """REFERENCE 6 recipe 1: optimizing L + (lambda/2)||W||^2 (penalty by autodiff) equals
    weight_decay=lambda on L (torch's coupled decay), lambda = 0.3, 50 closed-loop steps."""
    lam = 0.3
    assert_replay_close(closed_loop(name, {**hyper, "weight_decay": 0.0}, penalty=lam),
                        closed_loop(name, {**hyper, "weight_decay": lam}, penalty=0.0))


# -- parameter groups (REFERENCE 6) ----------------------------------------------------------------

def replay_two(make, G, theta0, split):
    """Replay with two parameters theta0[:split] (weights) and theta0[split:] (bias); returns both
    trajectories side by side."""
    w = Tensor(theta0[:split].copy(), requires_grad=True)
    b = Tensor(theta0[split:].copy(), requires_grad=True)
    opt = make(w, b)
    out = []
    for g in G:
        w.grad, b.grad = g[:split].copy(), g[split:].copy()
        opt.step()
        out.append(np.concatenate([w.data, b.data]))
    return np.array(out)


def test_bias_group_without_weight_decay_follows_the_lambda_zero_trajectory():
    """REFERENCE 6 recipe 5: groups [{weights, weight_decay: lambda}, {biases, weight_decay: 0}]: the
    bias moves as with lambda = 0 everywhere, the weights as with lambda everywhere."""
    G, theta0, split, lam = gradients(k=50), start(), 4, 0.3
    base = {**HYPER["SGD"], "lr": 0.05, "momentum": 0.9}

    def grouped_sgd(w, b):
        return optim.SGD([{"params": [w], "weight_decay": lam}, {"params": [b], "weight_decay": 0.0}], **base)

    grouped = replay_two(grouped_sgd, G, theta0, split)
    no_decay = replay_two(lambda w, b: optim.SGD([w, b], **{**base, "weight_decay": 0.0}), G, theta0, split)
    all_decay = replay_two(lambda w, b: optim.SGD([w, b], **{**base, "weight_decay": lam}), G, theta0, split)
    np.testing.assert_array_equal(grouped[:, split:], no_decay[:, split:])
    np.testing.assert_array_equal(grouped[:, :split], all_decay[:, :split])
    assert rel(no_decay[:, split:], all_decay[:, split:]) > MUST_DIFFER  # the groups are distinguishable


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW", "Rprop"])
def test_each_parameter_group_uses_its_own_lr(name):
    """torch's parameter groups: a group's options override the defaults for its parameters only."""
    G, theta0, split = gradients(k=30), start(), 4
    hyper = HYPER[name]
    grouped = replay_two(lambda w, b: getattr(optim, name)([{"params": [w]}, {"params": [b], "lr": 0.5}],
                                                           **hyper), G, theta0, split)
    default_lr = replay_two(lambda w, b: getattr(optim, name)([w, b], **hyper), G, theta0, split)
    other_lr = replay_two(lambda w, b: getattr(optim, name)([w, b], **{**hyper, "lr": 0.5}), G, theta0, split)
    np.testing.assert_array_equal(grouped[:, :split], default_lr[:, :split])
    np.testing.assert_array_equal(grouped[:, split:], other_lr[:, split:])


# -- Values as parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("name, hyper", TORCH_ROWS + LECTURE_ROWS)
def test_value_parameters_follow_one_element_tensors_exactly(name, hyper):
    """API.md optim: optimizers work on anything with .data and .grad; a Value is a 0-d parameter and
    takes bit-for-bit the path of a one-element Tensor."""
    G, theta0 = gradients(d=1), start(d=1)
    tensor_path = replay(ours(name, **hyper), G, theta0)[:, 0]
    v = Value(float(theta0[0]))
    opt = getattr(optim, name)([v], **hyper)
    value_path = []
    for g in G[:, 0]:
        v.grad = float(g)
        opt.step()
        value_path.append(v.data)
    np.testing.assert_array_equal(value_path, tensor_path)


@pytest.mark.parametrize("name", list(HYPER))
def test_a_value_parameter_stays_a_python_float(name):
    """API.md Value: .data is a float, also after an optimizer step."""
    v = Value(0.5)
    opt = getattr(optim, name)([v], **HYPER[name])
    v.grad = 0.25
    opt.step()
    assert type(v.data) is float and v.data != 0.5


# -- state_dict / load_state_dict ------------------------------------------------------------------

STATEFUL_ROWS = [
    row("SGD", "momentum", momentum=0.9),
    row("SGD", "nesterov+weight_decay", momentum=0.9, nesterov=True, weight_decay=0.1),
    row("RMSprop", "centered+momentum", centered=True, momentum=0.5),
    row("RMSprop", "lecture", eps_inside_sqrt=True),
    row("Adam", "amsgrad", amsgrad=True),
    row("Adam", "lecture", eps_inside_sqrt=True),
    row("AdamW", "default"),
    row("Rprop", "default"),
]

SHAPES = [(3,), (2, 2)]


def make_params(seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def grads_for(k, shapes=SHAPES):
    rng = np.random.default_rng(100 + k)
    return [rng.standard_normal(s) * np.exp(rng.uniform(-3, 1, s)) for s in shapes]


def run_steps(opt, params, ks):
    out = []
    for k in ks:
        for p, g in zip(params, grads_for(k)):
            p.grad = g
        opt.step()
        out.append([p.data.copy() for p in params])
    return out


def assert_same_tree(a, b):
    """Dicts, lists and arrays equal bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b)
        assert np.shape(a) == np.shape(b)
    else:
        assert a == b


@pytest.mark.parametrize("name, hyper", STATEFUL_ROWS)
def test_state_dict_round_trip_resumes_the_trajectory_bitwise(name, hyper):
    """torch's checkpointing: k steps, state_dict, a fresh optimizer over copies of the parameters,
    load_state_dict, continue; the iterates equal an uninterrupted run bit for bit."""
    uninterrupted = make_params()
    full = run_steps(getattr(optim, name)(uninterrupted, **hyper), uninterrupted, range(20))

    first = make_params()
    opt = getattr(optim, name)(first, **hyper)
    head = run_steps(opt, first, range(7))
    saved = opt.state_dict()
    copies = [Tensor(p.data.copy(), requires_grad=True) for p in first]
    resumed = getattr(optim, name)(copies, **hyper)
    resumed.load_state_dict(saved)
    tail = run_steps(resumed, copies, range(7, 20))
    assert_same_tree(head + tail, full)


@pytest.mark.parametrize("name, hyper", STATEFUL_ROWS)
def test_state_dict_is_a_copy(name, hyper):
    """Later steps and lr changes of the optimizer do not change a state_dict taken earlier."""
    params = make_params()
    opt = getattr(optim, name)(params, **hyper)
    run_steps(opt, params, range(5))
    saved = opt.state_dict()
    snapshot = copy.deepcopy(saved)
    run_steps(opt, params, range(5, 10))
    opt.param_groups[0]["lr"] = 123.0
    assert_same_tree(saved, snapshot)


@pytest.mark.parametrize("name, hyper", STATEFUL_ROWS)
def test_load_state_dict_does_not_alias_the_dict(name, hyper):
    """Steps after load_state_dict leave the loaded dict as it was (it can be loaded again)."""
    params = make_params()
    opt = getattr(optim, name)(params, **hyper)
    run_steps(opt, params, range(5))
    saved = opt.state_dict()
    snapshot = copy.deepcopy(saved)
    other = make_params()
    resumed = getattr(optim, name)(other, **hyper)
    resumed.load_state_dict(saved)
    run_steps(resumed, other, range(5, 10))
    resumed.param_groups[0]["lr"] = 123.0
    assert_same_tree(saved, snapshot)


def test_load_state_dict_restores_the_hyperparameters_of_the_groups():
    """As torch: the saved groups' options (lr, betas, ...) replace those the optimizer was built with."""
    params = make_params()
    opt = optim.Adam(params, **{**HYPER["Adam"], "lr": 0.02, "betas": (0.8, 0.9)})
    run_steps(opt, params, range(3))
    fresh = optim.Adam(make_params(), **{**HYPER["Adam"], "lr": 0.5})
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["lr"] == 0.02 and tuple(fresh.param_groups[0]["betas"]) == (0.8, 0.9)


@pytest.mark.parametrize("other_shapes", [[(3,)], [(3,), (2, 2), (1,)], [(2, 2), (3,)], [(3,), (4,)]],
                         ids=["fewer-params", "more-params", "swapped-shapes", "wrong-shape"])
def test_load_state_dict_with_mismatched_parameters_raises_and_changes_nothing(other_shapes):
    """load_state_dict checks the number of parameters and every state array's shape before it changes
    anything (ValueError)."""
    params = make_params()
    opt = optim.Adam(params, **HYPER["Adam"])
    run_steps(opt, params, range(3))
    before = opt.state_dict()
    other_params = make_params(shapes=other_shapes)
    other = optim.Adam(other_params, **{**HYPER["Adam"], "lr": 0.5})
    for _ in range(2):
        for p in other_params:
            p.grad = np.ones(p.shape)
        other.step()
    with pytest.raises(ValueError):
        opt.load_state_dict(other.state_dict())
    assert_same_tree(opt.state_dict(), before)


def test_load_state_dict_with_a_different_number_of_groups_raises_and_changes_nothing():
    """A state_dict with two groups does not load into an optimizer with one."""
    params = make_params()
    opt = optim.SGD(params, **{**HYPER["SGD"], "momentum": 0.9})
    run_steps(opt, params, range(3))
    before = opt.state_dict()
    a, b = make_params()
    two = optim.SGD([{"params": [a]}, {"params": [b]}], **{**HYPER["SGD"], "momentum": 0.9})
    with pytest.raises(ValueError):
        opt.load_state_dict(two.state_dict())
    assert_same_tree(opt.state_dict(), before)


# -- validation, None and wrong-shaped grads, zero_grad --------------------------------------------

def p0():
    return [Tensor(np.zeros(2), requires_grad=True)]


INVALID = [
    pytest.param(lambda: optim.SGD(p0(), lr=-0.1), "lr", id="SGD-lr<0"),
    pytest.param(lambda: optim.SGD(p0(), lr=0.1, momentum=-0.5), "momentum", id="SGD-momentum<0"),
    pytest.param(lambda: optim.SGD(p0(), lr=0.1, weight_decay=-1.0), "weight_decay", id="SGD-weight_decay<0"),
    pytest.param(lambda: optim.SGD(p0(), lr=0.1, nesterov=True), "nesterov", id="SGD-nesterov-no-momentum"),
    pytest.param(lambda: optim.SGD(p0(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov",
                 id="SGD-nesterov-dampening"),
    pytest.param(lambda: optim.SGD([{"params": p0(), "lr": -1.0}], lr=0.1), "lr", id="SGD-group-lr<0"),
    pytest.param(lambda: optim.RMSprop(p0(), lr=-0.01), "lr", id="RMSprop-lr<0"),
    pytest.param(lambda: optim.RMSprop(p0(), eps=-1e-8), "eps", id="RMSprop-eps<0"),
    pytest.param(lambda: optim.RMSprop(p0(), alpha=-0.1), "alpha", id="RMSprop-alpha<0"),
    pytest.param(lambda: optim.RMSprop(p0(), momentum=-0.1), "momentum", id="RMSprop-momentum<0"),
    pytest.param(lambda: optim.RMSprop(p0(), weight_decay=-0.1), "weight_decay", id="RMSprop-weight_decay<0"),
    pytest.param(lambda: optim.Adam(p0(), lr=-1e-3), "lr", id="Adam-lr<0"),
    pytest.param(lambda: optim.Adam(p0(), eps=-1e-8), "eps", id="Adam-eps<0"),
    pytest.param(lambda: optim.Adam(p0(), weight_decay=-0.1), "weight_decay", id="Adam-weight_decay<0"),
    pytest.param(lambda: optim.Adam(p0(), betas=(1.0, 0.999)), "beta", id="Adam-beta1=1"),
    pytest.param(lambda: optim.Adam(p0(), betas=(-0.1, 0.999)), "beta", id="Adam-beta1<0"),
    pytest.param(lambda: optim.Adam(p0(), betas=(0.9, 1.0)), "beta", id="Adam-beta2=1"),
    pytest.param(lambda: optim.Adam(p0(), betas=(0.9, 1.5)), "beta", id="Adam-beta2>1"),
    pytest.param(lambda: optim.AdamW(p0(), betas=(0.9, 1.0)), "beta", id="AdamW-beta2=1"),
    pytest.param(lambda: optim.AdamW(p0(), weight_decay=-0.01), "weight_decay", id="AdamW-weight_decay<0"),
    pytest.param(lambda: optim.AdamW(p0(), lr=-1e-3), "lr", id="AdamW-lr<0"),
    pytest.param(lambda: optim.Rprop(p0(), lr=-0.01), "lr", id="Rprop-lr<0"),
    pytest.param(lambda: optim.Rprop(p0(), etas=(1.5, 1.2)), "etas", id="Rprop-eta_minus>1"),
    pytest.param(lambda: optim.Rprop(p0(), etas=(0.5, 0.9)), "etas", id="Rprop-eta_plus<1"),
    pytest.param(lambda: optim.Rprop(p0(), etas=(0.0, 1.2)), "etas", id="Rprop-eta_minus=0"),
    pytest.param(lambda: optim.Rprop(p0(), step_sizes=(1.0, 0.1)), "step_sizes",
                 id="Rprop-step_sizes:min>max"),
]


@pytest.mark.parametrize("build, argument", INVALID)
def test_invalid_hyperparameters_raise_value_error_naming_the_argument(build, argument):
    """torch's constructor checks (REFERENCE 2: nesterov needs momentum > 0 and dampening 0)."""
    with pytest.raises(ValueError, match=argument):
        build()


@pytest.mark.parametrize("name", list(HYPER))
def test_an_empty_parameter_list_raises_value_error(name):
    with pytest.raises(ValueError, match="empty"):
        getattr(optim, name)([], **HYPER[name])


@pytest.mark.parametrize("name, hyper", STATEFUL_ROWS)
def test_a_parameter_with_grad_none_does_not_move_and_gets_no_state(name, hyper):
    """As torch: step() skips parameters whose grad is None; no state is created for them."""
    a, b = make_params()
    before = b.data.copy()
    opt = getattr(optim, name)([a, b], **hyper)
    a.grad, b.grad = np.ones(a.shape), None
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert not opt.state.get(1) and not opt.state_dict()["state"].get(1)
    assert opt.state.get(0)  # ... while the other parameter got its state


@pytest.mark.parametrize("name, hyper", STATEFUL_ROWS)
def test_a_grad_of_the_wrong_shape_raises_and_moves_no_parameter(name, hyper):
    """step() is atomic: every grad's shape is checked before any parameter moves (ValueError)."""
    params = make_params()
    opt = getattr(optim, name)(params, **hyper)
    run_steps(opt, params, range(2))
    data_before, state_before = [p.data.copy() for p in params], opt.state_dict()
    params[0].grad = np.ones(params[0].shape)  # fine, and listed first
    params[1].grad = np.ones((4,))  # the parameter has shape (2, 2)
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    for p, d in zip(params, data_before):
        np.testing.assert_array_equal(p.data, d)
    assert_same_tree(opt.state_dict(), state_before)


def test_zero_grad_sets_tensor_grads_to_none_and_value_grads_to_zero():
    """torch's zero_grad() (set_to_none=True) for Tensors; a Value's grad is a float, 0.0 when cleared."""
    t, v = Tensor(np.ones(3), requires_grad=True), Value(1.0)
    opt = optim.SGD([t, v], **HYPER["SGD"])
    t.grad, v.grad = np.ones(3), 2.0
    opt.zero_grad()
    assert t.grad is None
    assert v.grad == 0.0 and type(v.grad) is float


def test_zero_grad_without_set_to_none_gives_zero_arrays():
    """torch's zero_grad(set_to_none=False): grads become zero arrays of the parameter's shape."""
    t = Tensor(np.ones((2, 3)), requires_grad=True)
    opt = optim.SGD([t], **HYPER["SGD"])
    t.grad = np.full((2, 3), 5.0)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(t.grad, np.zeros((2, 3)))


def test_gradients_from_backward_drive_the_step():
    """The usual loop: zero_grad, backward, step; one SGD step on sum(w^2) is w - lr 2 w."""
    w = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    opt = optim.SGD([w], **{**HYPER["SGD"], "lr": 0.25})
    for _ in range(2):  # the second backward must not see the first one's gradient
        opt.zero_grad()
        (w * w).sum().backward()
        expected = w.data - 0.25 * 2 * w.data
        opt.step()
        np.testing.assert_array_equal(w.data, expected)


# -- a property against torch ----------------------------------------------------------------------

def _magnitudes(lo, hi):
    return st.one_of(st.floats(-hi, -lo), st.floats(lo, hi))


@st.composite
def hyperparameters(draw):
    """(optimizer name, hyperparameters) anywhere in the valid ranges."""
    name = draw(st.sampled_from(["SGD", "RMSprop", "Adam"]))
    lr = draw(st.floats(1e-4, 1.0))
    unit = st.floats(0.0, 0.999)
    decay = st.one_of(st.just(0.0), st.floats(1e-4, 1.0))
    maximize = draw(st.booleans())
    if name == "SGD":
        momentum = draw(st.one_of(st.just(0.0), unit))
        nesterov = momentum > 0 and draw(st.booleans())
        dampening = 0.0 if nesterov else draw(st.floats(0.0, 1.0))
        return name, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=draw(decay),
                          nesterov=nesterov, maximize=maximize)
    eps = draw(st.one_of(st.just(0.0), st.floats(1e-10, 1e-2)))
    if name == "RMSprop":
        # centered: v - mean(g)^2 is the variance of the last ~1/(1 - alpha) gradients; at small alpha (or
        # constant gradients) it cancels to rounding noise, where torch's fused addcmul and any other
        # rounding give unrelated numbers. alpha >= 0.5 keeps it >= alpha^10 ~ 1e-3 of v.
        centered = draw(st.booleans())
        alpha = draw(st.floats(0.5, 0.999) if centered else unit)
        return name, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=draw(decay),
                          momentum=draw(st.one_of(st.just(0.0), unit)), centered=centered, maximize=maximize)
    return name, dict(lr=lr, betas=(draw(unit), draw(unit)), eps=eps, weight_decay=draw(decay),
                      amsgrad=draw(st.booleans()), maximize=maximize)


@settings(max_examples=min(40, settings().max_examples))
@given(choice=hyperparameters(),
       G=hnp.arrays(np.float64, (10, 3), elements=_magnitudes(1e-3, 1e2)),
       theta0=hnp.arrays(np.float64, 3, elements=st.floats(-10.0, 10.0)))
def test_property_sgd_rmsprop_adam_match_torch_for_random_hyperparameters(choice, G, theta0):
    """REFERENCE 13: replay of 10 random gradients (|g| in [1e-3, 1e2]) at random valid
    hyperparameters equals torch at rtol 1e-12, atol 1e-14."""
    torch = pytest.importorskip("torch")
    name, hyper = choice
    assert_replay_close(replay(ours(name, **hyper), G, theta0),
                        replay_torch(torch, name, hyper, G, theta0))


# -- hardening (issue 8): bad input raises errors naming the optimizer, and changes nothing ---------

@pytest.mark.parametrize("name", list(HYPER))
@pytest.mark.parametrize("params", [1.0, None, 3, {"w": 1.0}], ids=["float", "None", "int", "dict"])
def test_params_that_are_not_an_iterable_of_parameters_raise_type_error_naming_the_optimizer(name, params):
    with pytest.raises(TypeError, match=f"^{name}: params must be an iterable"):
        getattr(optim, name)(params, **HYPER[name])


WRONG_TYPES = [
    pytest.param("SGD", dict(lr="0.1"), TypeError, "lr", id="SGD-lr-str"),
    pytest.param("SGD", dict(momentum={}), TypeError, "momentum", id="SGD-momentum-dict"),
    pytest.param("SGD", dict(nesterov=np.array([True, False])), TypeError, "nesterov",
                 id="SGD-nesterov-array"),
    pytest.param("SGD", dict(lr=10**400), ValueError, "lr", id="SGD-lr-huge-int"),
    pytest.param("SGD", dict(lr=float("inf")), ValueError, "lr", id="SGD-lr-inf"),
    pytest.param("RMSprop", dict(alpha=None), TypeError, "alpha", id="RMSprop-alpha-None"),
    pytest.param("RMSprop", dict(eps=1j), TypeError, "eps", id="RMSprop-eps-complex"),
    pytest.param("RMSprop", dict(centered="yes"), TypeError, "centered", id="RMSprop-centered-str"),
    pytest.param("Adam", dict(betas=0.9), TypeError, "betas", id="Adam-betas-float"),
    pytest.param("Adam", dict(betas=(0.9, "x")), TypeError, r"betas\[1\]", id="Adam-beta2-str"),
    pytest.param("AdamW", dict(weight_decay=None), TypeError, "weight_decay", id="AdamW-weight_decay-None"),
    pytest.param("Rprop", dict(etas=1.0), TypeError, "etas", id="Rprop-etas-float"),
    pytest.param("Rprop", dict(step_sizes=(None, 50)), TypeError, r"step_sizes\[0\]",
                 id="Rprop-step_sizes-None"),
]


@pytest.mark.parametrize("name, overrides, error, argument", WRONG_TYPES)
def test_hyperparameters_of_a_wrong_type_raise_naming_the_optimizer_and_the_argument(name, overrides, error,
                                                                                     argument):
    """TypeError for the wrong kind of thing, ValueError for a number out of range (never a bare
    comparison error or an OverflowError)."""
    with pytest.raises(error, match=f"^{name}: {argument}"):
        getattr(optim, name)(p0(), **{**HYPER[name], **overrides})


def test_hyperparameters_are_kept_as_python_floats_and_tuples():
    opt = optim.Adam(p0(), lr=np.float64(0.01), betas=[0.8, np.float32(0.5)], eps=0, amsgrad=np.bool_(True))
    group = opt.param_groups[0]
    assert type(group["lr"]) is float and type(group["eps"]) is float and group["amsgrad"] is True
    assert group["betas"] == (0.8, 0.5) and all(type(b) is float for b in group["betas"])


BAD_GRADS = [
    pytest.param(np.array([1 + 1j, 2.0]), TypeError, "complex", id="complex"),
    pytest.param([None, 1.0], TypeError, "real numeric", id="None-inside"),
    pytest.param([[1.0], [2.0, 3.0]], TypeError, "real numeric", id="ragged"),
    pytest.param(np.array(["a", "b"]), TypeError, "real numeric", id="str"),
    pytest.param(np.array([1e100, 0.0]), ValueError, "overflows", id="overflows-float32"),
]


@pytest.mark.parametrize("name", list(HYPER))
@pytest.mark.parametrize("grad, error, problem", BAD_GRADS)
def test_a_bad_grad_raises_naming_the_optimizer_and_moves_no_parameter(name, grad, error, problem):
    """Every gradient is checked before any parameter moves: a complex one (numpy would only warn and
    drop the imaginary part), None inside (numpy would make it nan), one a float32 parameter cannot
    hold (it would become inf)."""
    good, bad = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2, np.float32), requires_grad=True)
    opt = getattr(optim, name)([good, bad], **HYPER[name])
    good.grad, bad.grad = np.ones(2), grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error, match=f"^{name}: the grad of parameter 1 .*{problem}"):
            opt.step()
    np.testing.assert_array_equal(good.data, np.ones(2))
    np.testing.assert_array_equal(bad.data, np.ones(2, np.float32))
    assert opt.state == {}


def _float16_run(name, dtype, grads, emulate_rounding=False):
    t = Tensor(np.array([1.0, -2.0, 0.5, 3.0], dtype), requires_grad=True)
    opt = getattr(optim, name)([t], **HYPER[name])
    for g in grads:
        t.grad = g.astype(dtype)
        opt.step()
        if emulate_rounding:
            t.data[...] = t.data.astype(np.float16)
    return t, opt


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "Rprop"])
def test_float16_parameters_are_updated_in_float32_and_rounded_back(name):
    """In float16, eps=1e-8 rounds to 0 and g^2 underflows: Adam and RMSprop would give 0/0 = nan for
    a zero gradient. The update runs in float32 (state in float32) and is rounded to float16, so it
    equals a float32 run whose parameters are rounded to float16 after every step."""
    grads = [np.array([0.0, 1e-5, -3.0, 2.0], np.float16)] * 3
    half, opt = _float16_run(name, np.float16, grads)
    assert half.data.dtype == np.float16 and not np.isnan(half.data).any()
    emulated, _ = _float16_run(name, np.float32, grads, emulate_rounding=True)
    np.testing.assert_array_equal(half.data, emulated.data.astype(np.float16))
    state = opt.state_dict()["state"][0]
    assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("bad", [np.array([True, False]), "yes", None, 2])
def test_zero_grad_with_a_bad_set_to_none_raises_type_error_and_keeps_the_grads(bad):
    t = Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([t], **HYPER["SGD"])
    t.grad = np.full(2, 3.0)
    with pytest.raises(TypeError, match="^SGD.zero_grad: set_to_none"):
        opt.zero_grad(set_to_none=bad)
    np.testing.assert_array_equal(t.grad, np.full(2, 3.0))


SPOILED = [
    pytest.param(lambda sd: sd["param_groups"][0].update(lr="x"), TypeError, "lr", id="lr-str"),
    pytest.param(lambda sd: sd["param_groups"][0].update(betas=(0.9, 1.5)), ValueError, "betas",
                 id="beta2>1"),
    pytest.param(lambda sd: sd["param_groups"][0].update(foo=1), ValueError, "unknown options", id="unknown"),
    pytest.param(lambda sd: sd["param_groups"][0].pop("eps"), ValueError, "lacks", id="missing-option"),
    pytest.param(lambda sd: sd["state"][0].pop("exp_avg"), ValueError, "lacks", id="missing-state"),
    pytest.param(lambda sd: sd["state"][0].update(step="x"), TypeError, "step", id="step-str"),
    pytest.param(lambda sd: sd["state"][0].update(step=10**400), ValueError, "step", id="step-huge"),
]


@pytest.mark.parametrize("spoil, error, problem", SPOILED)
def test_load_state_dict_rejects_spoiled_options_and_state_and_changes_nothing(spoil, error, problem):
    params = make_params()
    opt = optim.Adam(params, **HYPER["Adam"])
    run_steps(opt, params, range(2))
    before = opt.state_dict()
    spoiled = copy.deepcopy(before)
    spoil(spoiled)
    with pytest.raises(error, match=f"^Adam.load_state_dict.*{problem}"):
        opt.load_state_dict(spoiled)
    assert_same_tree(opt.state_dict(), before)


def test_load_state_dict_casts_the_state_to_the_parameters_dtype_as_torch():
    """torch casts floating state to the parameter's dtype on load; a float64 state loaded for a
    float32 parameter is float32 (and the next step runs)."""
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.Adam([t], **HYPER["Adam"])
    state = {"state": {0: {"step": 2, "exp_avg": np.full(3, 0.1), "exp_avg_sq": np.full(3, 0.01)}},
             "param_groups": [{**HYPER["Adam"], "eps_inside_sqrt": False, "params": [0]}]}
    opt.load_state_dict(state)
    assert opt.state[0]["exp_avg"].dtype == np.float32 and opt.state[0]["exp_avg_sq"].dtype == np.float32
    t.grad = np.ones(3, np.float32)
    opt.step()
    assert t.data.dtype == np.float32 and np.isfinite(t.data).all()
