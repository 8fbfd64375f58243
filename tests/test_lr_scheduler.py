"""tinygrad_lec.optim.lr_scheduler as a specification (API.md: torch's names and semantics; REFERENCE 1,
2, 13).

The protocol is torch's: read the lr, ``optimizer.step()``, then ``scheduler.step()`` once per epoch.
Schedules are checked against their closed forms in numpy and against torch.optim.lr_scheduler over
20 epochs (rtol 1e-15: torch multiplies the previous lr by gamma each epoch, the closed form takes one
power, so the two differ by a few rounding errors), with one or several parameter groups; an optimizer
driven by a schedule follows torch's trajectory; state_dict round trips resume the schedule.
"""

import pickle

import numpy as np
import pytest

from tinygrad_lec import Tensor, optim

lr_scheduler = optim.lr_scheduler

EPOCHS = 20
LR_RTOL = 1e-15
REPLAY_RTOL, REPLAY_ATOL = 1e-12, 1e-14  # REFERENCE 13: optimizer, gradient replay


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def sgd(lrs, momentum=0.0):
    """Our SGD with one group per lr, each over a parameter of two zeros."""
    groups = [{"params": [Tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], momentum=momentum, dampening=0.0, weight_decay=0.0, nesterov=False)


def torch_sgd(torch, lrs, momentum=0.0):
    groups = [{"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=momentum, dampening=0.0, weight_decay=0.0,
                           nesterov=False, foreach=False)


def assert_lrs_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=LR_RTOL, atol=0)


def lr_sequence(opt, sched, epochs=EPOCHS):
    """The lr of every group during each epoch (rows: epochs, columns: groups)."""
    seq = []
    for _ in range(epochs):
        seq.append([group["lr"] for group in opt.param_groups])
        opt.step()
        sched.step()
    return np.array(seq)


def sqrt_decay(k):
    return 1 / (1 + k) ** 0.5


def wavy(k):
    return 0.95**k * (1 + k % 3)


# (builder over a scheduler module -- ours or torch's --, closed form lr_k / base_lr)
SCHEDULES = [
    pytest.param(lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), lambda k: 0.5 ** (k // 3),
                 id="StepLR(3,0.5)"),
    pytest.param(lambda m, o: m.StepLR(o, step_size=1, gamma=0.1), lambda k: 0.1**k, id="StepLR(1,0.1)"),
    pytest.param(lambda m, o: m.StepLR(o, step_size=7, gamma=0.3), lambda k: 0.3 ** (k // 7),
                 id="StepLR(7,0.3)"),
    pytest.param(lambda m, o: m.ExponentialLR(o, gamma=0.9), lambda k: 0.9**k, id="ExponentialLR(0.9)"),
    pytest.param(lambda m, o: m.ExponentialLR(o, gamma=0.7), lambda k: 0.7**k, id="ExponentialLR(0.7)"),
    pytest.param(lambda m, o: m.LambdaLR(o, lr_lambda=sqrt_decay), sqrt_decay, id="LambdaLR(1/sqrt(1+k))"),
    pytest.param(lambda m, o: m.LambdaLR(o, lr_lambda=wavy), wavy, id="LambdaLR(wavy)"),
]
LRS = [0.1, 0.03, 1.0]


@pytest.mark.parametrize("build, factor", SCHEDULES)
def test_schedule_follows_its_closed_form(build, factor):
    """StepLR: base gamma^(k // step_size); ExponentialLR: base gamma^k; LambdaLR: base lr_lambda(k)."""
    opt = sgd([0.1])
    got = lr_sequence(opt, build(lr_scheduler, opt))[:, 0]
    assert_lrs_close(got, [0.1 * factor(k) for k in range(EPOCHS)])


@pytest.mark.parametrize("build, factor", SCHEDULES)
def test_schedule_matches_torch(torch, build, factor):
    """The same lr sequence as torch.optim.lr_scheduler over 20 epochs."""
    opt, theirs = sgd([0.1]), torch_sgd(torch, [0.1])
    assert_lrs_close(lr_sequence(opt, build(lr_scheduler, opt)),
                     lr_sequence(theirs, build(torch.optim.lr_scheduler, theirs)))


@pytest.mark.parametrize("build, factor", SCHEDULES)
def test_schedule_scales_each_group_from_its_own_lr(build, factor):
    """Groups with lrs 0.1, 0.03, 1.0: group i follows lr_i factor(k)."""
    opt = sgd(LRS)
    expected = [[lr * factor(k) for lr in LRS] for k in range(EPOCHS)]
    assert_lrs_close(lr_sequence(opt, build(lr_scheduler, opt)), expected)


@pytest.mark.parametrize("build, factor", SCHEDULES)
def test_schedule_with_groups_matches_torch(torch, build, factor):
    opt, theirs = sgd(LRS), torch_sgd(torch, LRS)
    assert_lrs_close(lr_sequence(opt, build(lr_scheduler, opt)),
                     lr_sequence(theirs, build(torch.optim.lr_scheduler, theirs)))


@pytest.mark.parametrize("build, factor", SCHEDULES)
def test_get_last_lr_matches_torch(torch, build, factor):
    """get_last_lr(): the list of the groups' lrs just set, as torch's after every step."""
    opt, theirs = sgd(LRS), torch_sgd(torch, LRS)
    mine, other = build(lr_scheduler, opt), build(torch.optim.lr_scheduler, theirs)
    for _ in range(EPOCHS):
        assert isinstance(mine.get_last_lr(), list)
        assert_lrs_close(mine.get_last_lr(), other.get_last_lr())
        opt.step()
        theirs.step()
        mine.step()
        other.step()


@pytest.mark.parametrize("decay", [1.0, 0.1, 0.0])
def test_inverse_time_lr_is_lr0_over_one_plus_decay_k(decay):
    """REFERENCE 1: lr_k = lr_0 / (1 + decay k), sum lr_k = inf and sum lr_k^2 < inf; per group."""
    opt = sgd(LRS)
    got = lr_sequence(opt, lr_scheduler.InverseTimeLR(opt, decay=decay))
    expected = [[lr / (1 + decay * k) for lr in LRS] for k in range(EPOCHS)]
    assert_lrs_close(got, expected)


def test_sgd_driven_by_a_schedule_follows_torch(torch):
    """REFERENCE 2: with a schedule, torch scales the momentum buffer by the current lr; SGD(momentum)
    under StepLR replays torch's iterates (rtol 1e-12, atol 1e-14)."""
    rng = np.random.default_rng(0)
    G = rng.standard_normal((30, 4)) * np.exp(rng.uniform(-3, 1, (30, 4)))
    theta0 = rng.standard_normal(4)
    p = Tensor(theta0.copy(), requires_grad=True)
    q = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    hyper = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    opt, theirs = optim.SGD([p], **hyper), torch.optim.SGD([q], foreach=False, **hyper)
    mine, other = lr_scheduler.StepLR(opt, step_size=10, gamma=0.5), \
        torch.optim.lr_scheduler.StepLR(theirs, step_size=10, gamma=0.5)
    for g in G:
        p.grad, q.grad = g.copy(), torch.tensor(g, dtype=torch.float64)
        opt.step()
        theirs.step()
        mine.step()
        other.step()
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=REPLAY_RTOL, atol=REPLAY_ATOL)


ROUND_TRIP = SCHEDULES + [
    pytest.param(lambda m, o: m.InverseTimeLR(o, decay=0.5), lambda k: 1 / (1 + 0.5 * k),
                 id="InverseTimeLR(0.5)"),
]


def resume(build, module, make_opt, opt_state, sched_state, load_optimizer_first):
    """A fresh optimizer (built with other lrs) and scheduler loaded from the state_dicts. torch's
    documented order builds both, then loads both; scripts often load the optimizer first."""
    opt = make_opt([5.0] * len(LRS))
    if load_optimizer_first:
        opt.load_state_dict(opt_state)
        sched = build(module, opt)
    else:
        sched = build(module, opt)
        opt.load_state_dict(opt_state)
    sched.load_state_dict(sched_state)
    return opt, sched


def interrupted(build, module, make_opt, load_optimizer_first):
    """The lrs of 7 epochs, a checkpoint, and 13 epochs after resuming from it."""
    first = make_opt(LRS)
    sched = build(module, first)
    head = lr_sequence(first, sched, epochs=7)
    opt_state, sched_state = first.state_dict(), sched.state_dict()
    opt, resumed = resume(build, module, make_opt, opt_state, sched_state, load_optimizer_first)
    return np.concatenate([head, lr_sequence(opt, resumed, epochs=EPOCHS - 7)])


@pytest.mark.parametrize("build, factor", ROUND_TRIP)
def test_state_dict_round_trip_resumes_the_schedule(build, factor):
    """torch's checkpointing: after 7 epochs save the optimizer's and the scheduler's state_dicts, build
    a fresh optimizer and scheduler, load both, continue: the lrs equal an uninterrupted run's."""
    opt = sgd(LRS)
    full = lr_sequence(opt, build(lr_scheduler, opt))
    np.testing.assert_array_equal(interrupted(build, lr_scheduler, sgd, load_optimizer_first=False), full)


@pytest.mark.parametrize("build, factor", ROUND_TRIP)
def test_resuming_with_the_optimizer_loaded_before_the_scheduler_is_built_resumes_the_schedule(build, factor):
    """The other common resume order: load the optimizer, then build and load the scheduler. Loading
    the scheduler sets the scheduled lr again, so the lrs equal an uninterrupted run's. (torch's
    LambdaLR runs one epoch at base_lr * lr_lambda(0) in this order; its chainable StepLR and
    ExponentialLR resume, as ours do: see the next test.)"""
    opt = sgd(LRS)
    full = lr_sequence(opt, build(lr_scheduler, opt))
    np.testing.assert_array_equal(interrupted(build, lr_scheduler, sgd, load_optimizer_first=True), full)


@pytest.mark.parametrize("build, factor", [s for s in SCHEDULES if "Lambda" not in s.id])
def test_resuming_with_the_optimizer_loaded_before_the_scheduler_is_built_matches_torch(torch, build, factor):
    """torch's StepLR and ExponentialLR are chainable (lr_k = lr_{k-1} * factor), so building them
    keeps the optimizer's loaded lr and the run resumes: the same lrs as ours."""
    theirs = interrupted(build, torch.optim.lr_scheduler, lambda lrs: torch_sgd(torch, lrs),
                         load_optimizer_first=True)
    assert_lrs_close(interrupted(build, lr_scheduler, sgd, load_optimizer_first=True), theirs)


def test_state_dict_is_picklable_without_the_optimizer_or_the_lambda():
    """As torch: a scheduler's state_dict holds neither the optimizer nor a lambda, so it pickles."""
    opt = sgd(LRS)
    sched = lr_scheduler.LambdaLR(opt, lr_lambda=lambda k: 0.5**k)
    sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    assert state["last_epoch"] == 1
    assert not any(value is opt for value in state.values())


@pytest.mark.parametrize("build, error", [
    pytest.param(lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, id="StepLR-step_size=0"),
    pytest.param(lambda o: lr_scheduler.StepLR(o, step_size=-2), ValueError, id="StepLR-step_size<0"),
    pytest.param(lambda o: lr_scheduler.StepLR(o, step_size=1.5), ValueError, id="StepLR-step_size=1.5"),
    pytest.param(lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=-0.5), ValueError, id="StepLR-gamma<0"),
    pytest.param(lambda o: lr_scheduler.ExponentialLR(o, gamma=-0.9), ValueError, id="ExponentialLR-gamma<0"),
    pytest.param(lambda o: lr_scheduler.InverseTimeLR(o, decay=-1.0), ValueError, id="InverseTimeLR-decay<0"),
    pytest.param(lambda o: lr_scheduler.StepLR(object(), step_size=2), TypeError, id="not-an-optimizer"),
])
def test_invalid_arguments_raise(build, error):
    with pytest.raises(error):
        build(sgd([0.1]))


# -- hardening (issue 8): bad options raise errors naming the scheduler, and change nothing -------

S = lr_scheduler


@pytest.mark.parametrize("build, error, argument", [
    pytest.param(lambda o: S.StepLR(o, step_size="3"), TypeError, "step_size", id="StepLR-step_size-str"),
    pytest.param(lambda o: S.StepLR(o, step_size=2, gamma="x"), TypeError, "gamma", id="StepLR-gamma-str"),
    pytest.param(lambda o: S.StepLR(o, step_size=2, gamma=np.array([0.1, 0.2])), TypeError, "gamma",
                 id="StepLR-gamma-array"),
    pytest.param(lambda o: S.ExponentialLR(o, gamma=None), TypeError, "gamma", id="ExponentialLR-None"),
    pytest.param(lambda o: S.ExponentialLR(o, gamma=10**400), ValueError, "gamma",
                 id="ExponentialLR-huge-int"),
    pytest.param(lambda o: S.InverseTimeLR(o, decay=[1.0]), TypeError, "decay", id="InverseTimeLR-list"),
    pytest.param(lambda o: S.InverseTimeLR(o, decay=float("nan")), ValueError, "decay",
                 id="InverseTimeLR-nan"),
    pytest.param(lambda o: S.LambdaLR(o, lr_lambda=None), TypeError, "lr_lambda", id="LambdaLR-None"),
    pytest.param(lambda o: S.LambdaLR(o, lr_lambda=lambda: 1.0), TypeError, "lr_lambda",
                 id="LambdaLR-no-argument"),
    pytest.param(lambda o: S.LambdaLR(o, lr_lambda=lambda k: "x"), TypeError, r"lr_lambda\(0\)",
                 id="LambdaLR-returns-str"),
    pytest.param(lambda o: S.LambdaLR(o, lr_lambda=lambda k: float("nan")), ValueError, r"lr_lambda\(0\)",
                 id="LambdaLR-returns-nan"),
    pytest.param(lambda o: S.LambdaLR(o, lr_lambda=lambda k: -1.0), ValueError, r"lr_lambda\(0\)",
                 id="LambdaLR-returns-negative"),
])
def test_bad_options_raise_naming_the_scheduler_and_leave_the_optimizer_alone(build, error, argument):
    opt = sgd(LRS)
    with pytest.raises(error, match=r"^\w+LR: " + argument):
        build(opt)
    assert [g["lr"] for g in opt.param_groups] == LRS


def test_a_step_whose_learning_rate_overflows_raises_and_changes_nothing():
    """gamma = 1e200: lr_1 = 1e199 is fine, lr_2 = 1e399 is not a float: ValueError, and the epoch
    count and the rates stay those of epoch 1 (Python's ** would raise OverflowError)."""
    opt = sgd([0.1])
    sched = lr_scheduler.ExponentialLR(opt, gamma=1e200)
    sched.step()
    with pytest.raises(ValueError, match="^ExponentialLR: the learning rate .* epoch 2"):
        sched.step()
    assert sched.last_epoch == 1 and opt.param_groups[0]["lr"] == 0.1 * 1e200


@pytest.mark.parametrize("change, error, argument", [
    pytest.param({"gamma": "x"}, TypeError, "gamma", id="gamma-str"),
    pytest.param({"gamma": -1.0}, ValueError, "gamma", id="gamma<0"),
    pytest.param({"base_lrs": [float("nan"), 0.03, 1.0]}, ValueError, r"base_lrs\[0\]", id="base_lr-nan"),
    pytest.param({"base_lrs": None}, TypeError, "base_lrs", id="base_lrs-None"),
    pytest.param({"last_epoch": "x"}, TypeError, "last_epoch", id="last_epoch-str"),
])
def test_load_state_dict_checks_every_value_first_and_changes_nothing(change, error, argument):
    opt = sgd(LRS)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sched.step()
    before, lrs = sched.state_dict(), [g["lr"] for g in opt.param_groups]
    with pytest.raises(error, match=f"^ExponentialLR.load_state_dict: {argument}"):
        sched.load_state_dict({**before, **change})
    assert sched.state_dict() == before and [g["lr"] for g in opt.param_groups] == lrs


def test_state_dict_does_not_share_the_base_lrs_list():
    opt = sgd(LRS)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sched.state_dict()["base_lrs"][0] = 99.0
    assert sched.base_lrs == LRS
