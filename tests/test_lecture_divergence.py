"""L2 vs KL for one sigmoid perceptron (REFERENCE 9): `tinygrad-lec divergence` and lecture.divergence.

The expected numbers are REFERENCE 9's table, written out here (not imported from the module), with
tolerances set by how each is computed: grid numbers 1e-4 (they are exact functions of the grid),
random-pair statistics by their sampling error, minimizers 1e-3.
"""

import runpy
import sys

import numpy as np
import pytest

from tinygrad_lec import Tensor
from tinygrad_lec import functional as F
from tinygrad_lec.cli import main
from tinygrad_lec.lecture import divergence as D

EXAMPLE = __file__.rsplit("/tests/", 1)[0] + "/examples/divergence.py"


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The full run: 201 x 201 grid, 1e5 random pairs (a few seconds)."""
    return D.run(out=tmp_path_factory.mktemp("full"), progress=False)


# -- REFERENCE 9's table, full run ----------------------------------------------------------------------


def test_full_run_uses_the_201_by_201_grid_and_1e5_pairs(full):
    assert full.numbers["grid_step"] == 0.1 and full.numbers["pairs"] == 100_000
    grid = full.numbers["grid"]
    assert len(grid) == 201 and grid[0] == -10.0 and grid[-1] == 10.0 and grid[90] == -1.0
    assert full.numbers["l2"]["lambda_min_map"].shape == (201, 201)


def test_l2_min_hessian_eigenvalue_is_minus_0_13270_at_w_minus_1_b_0(full):
    l2 = full.numbers["l2"]
    assert l2["min_eigenvalue"] == pytest.approx(-0.13270, abs=1e-4)
    assert l2["min_eigenvalue_at"] == (-1.0, 0.0)


def test_kl_min_hessian_eigenvalue_is_plus_1_53e_7_never_negative(full):
    kl = full.numbers["kl"]
    assert kl["min_eigenvalue"] == pytest.approx(1.53e-7, rel=5e-3)
    assert np.all(kl["lambda_min_map"] >= -1e-12)
    assert np.all(kl["lambda_min_closed_map"] > 0)


def test_fraction_of_grid_with_negative_eigenvalue_is_0_688_for_l2_and_0_for_kl(full):
    assert full.numbers["l2"]["negative_fraction"] == pytest.approx(0.688, abs=1e-3)
    assert full.numbers["kl"]["negative_fraction"] == 0.0


def test_l2_min_eigenvalue_is_below_minus_1e_3(full):
    assert full.numbers["l2"]["min_eigenvalue"] < -1e-3
    assert np.min(full.numbers["l2"]["lambda_min_closed_map"]) < -1e-3


def test_midpoint_test_p_q_values_and_violation(full):
    l2, kl = full.numbers["l2"], full.numbers["kl"]
    assert l2["midpoint"] == pytest.approx((0.499977, 0.125000, 0.496642), abs=1e-6)
    assert l2["midpoint_violation"] == pytest.approx(0.18415, abs=1e-5)
    assert kl["midpoint"] == pytest.approx((15.000023, 0.693147, 7.503380), abs=1e-6)
    assert (kl["midpoint"][0] + kl["midpoint"][1]) / 2 == pytest.approx(7.846585, abs=1e-6)
    assert kl["midpoint_violation"] < 0


def test_random_pairs_violate_midpoint_convexity_for_l2_only(full):
    l2, kl = full.numbers["l2"], full.numbers["kl"]
    # 45.6 % of 1e5 pairs: standard error 0.16 %; the max is an extreme of 1e5 draws
    assert l2["pairs_positive_fraction"] == pytest.approx(0.456, abs=0.008)
    assert l2["pairs_max_violation"] == pytest.approx(0.2364, abs=0.005)
    assert kl["pairs_positive_fraction"] == 0.0
    assert kl["pairs_max_violation"] <= 0


def test_plateau_at_minus_8_0_is_flat_for_l2_and_steep_for_kl(full):
    l2, kl = full.numbers["l2"], full.numbers["kl"]
    assert l2["plateau_loss"] == pytest.approx(0.49983, abs=1e-5)
    assert l2["plateau_grad_norm"] == pytest.approx(1.68e-4, rel=5e-3)
    assert kl["plateau_loss"] == pytest.approx(12.0002, abs=1e-4)
    assert kl["plateau_grad_norm"] == pytest.approx(1.4998, abs=1e-4)


def test_engine_hessian_matches_the_closed_form_on_the_whole_grid(full):
    assert full.numbers["l2"]["hessian_error"] <= 1e-7
    assert full.numbers["kl"]["hessian_error"] <= 1e-7


def test_s_prime_minimizers_match_reference_and_differ(full):
    l2, kl = full.numbers["l2"], full.numbers["kl"]
    assert l2["argmin_s_prime"] == pytest.approx((1.0328, 0.0), abs=1e-3)
    assert kl["argmin_s_prime"] == pytest.approx((1.3511, 0.0), abs=1e-3)
    assert l2["s_prime"]["grad_norm"] < D.GRAD_NORM_STOP and kl["s_prime"]["grad_norm"] < D.GRAD_NORM_STOP
    assert full.numbers["argmins_differ"]


def test_verdicts_l2_non_convex_kl_convex(full):
    assert full.numbers["l2_nonconvex"] is True and full.numbers["kl_convex"] is True
    notes = "\n".join(full.notes)
    assert "L2: non-convex (min eigenvalue -0.1327 at (w,b)=(-1,0); midpoint violation +0.184; plateau at " \
           "(-8,0): |grad| = 1.68e-04)" in notes
    assert "KL: convex on the grid" in notes and "minimizers differ" in notes


def test_report_shows_reference_numbers_beside_ours(full):
    text = full.report()
    assert "REFERENCE 9" in text and "tinygrad_lec" in text
    row = next(line for line in text.splitlines() if line.startswith("min lambda_min"))
    assert row.count("-0.13270 at") == 2
    assert "divergence_surfaces.png" in text and "divergence_hessian.png" in text


# -- pass/fail rules exactly as REFERENCE 9 states them ------------------------------------------------------


def test_l2_rule_needs_eigenvalue_strictly_below_minus_1e_3_and_a_violation_strictly_above_1e_3():
    assert D.nonconvexity_rule(-0.1327, [0.184])
    assert not D.nonconvexity_rule(-1e-3, [0.184])          # not strictly below
    assert not D.nonconvexity_rule(-0.1327, [1e-3, -0.5])   # no violation strictly above
    assert D.nonconvexity_rule(-0.0010001, [-1.0, 0.0010001])


def test_kl_eigenvalue_rule_scales_with_each_points_hessian():
    H = np.array([[[2.0, 0.0], [0.0, 1.0]], [[1e-3, 0.0], [0.0, 0.0]]])
    assert D.eigenvalue_rule([1.0, -1e-15], H)          # -1e-15 >= -1e-12 * 1e-3
    assert not D.eigenvalue_rule([1.0, -2e-15], H)      # -2e-15 <  -1e-12 * 1e-3
    assert D.eigenvalue_rule([-2e-12, 0.0], H)          # the first point's scale is 2


def test_kl_midpoint_rule_allows_rounding_of_1e_10_times_1_plus_the_loss():
    assert D.midpoint_rule([-0.3, 1e-10], [7.8, 0.0])
    assert D.midpoint_rule([1.0e-9], [9.0])
    assert not D.midpoint_rule([1.01e-9], [9.0])


def test_each_rule_rejects_the_other_loss():
    values, rng = D.grid_values(1.0), np.random.default_rng(0)
    P, Q = rng.uniform(-10, 10, (500, 2)), rng.uniform(-10, 10, (500, 2))
    l2, kl = D.analyse("l2", values, P, Q), D.analyse("kl", values, P, Q)
    assert D.verdicts(l2, kl) == (True, True)
    assert D.verdicts(kl, l2) == (False, False)
    assert not l2["eigenvalue_rule_ok"] and not l2["pairs_rule_ok"]


# -- the losses, gradients and Hessians on the engine ----------------------------------------------------


def _random_points(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-10, 10, n), rng.uniform(-10, 10, n)


def test_l2_is_the_lectures_l2_divergence_per_pair():
    w, b = _random_points()
    loss = D.perceptron_loss("l2", Tensor(w), Tensor(b))
    for i in range(3):
        y = Tensor(w[i] * D.X_S + b[i]).sigmoid().reshape(4, 1)
        assert loss.data[i] == pytest.approx(F.l2_divergence(y, D.D_S.reshape(4, 1)).item(), rel=1e-13)


def test_kl_is_binary_cross_entropy_of_the_sigmoid_where_that_is_accurate():
    w, b = _random_points()
    w, b = w / 4, b / 4  # |a| <= 7.5: BCE of the probabilities keeps its precision
    loss = D.perceptron_loss("kl", Tensor(w), Tensor(b)).data
    for i in range(5):
        y = Tensor(w[i] * D.X_S + b[i]).sigmoid()
        assert loss[i] == pytest.approx(F.binary_cross_entropy(y, D.D_S).item(), rel=1e-12)


def test_softplus_has_slope_one_half_at_zero_and_does_not_overflow():
    z = Tensor([0.0, 800.0, -800.0, 3.0], requires_grad=True)
    y = D.softplus(z)
    y.backward(np.ones(4))
    assert np.all(np.isfinite(y.data)) and y.data[1] == 800.0
    assert z.grad.tolist() == pytest.approx([0.5, 1.0, 0.0, 1 / (1 + np.exp(-3.0))], abs=1e-15)


def test_gradient_field_at_a_equals_zero_points_is_right():
    # (w, b) = (0, 0) and (1, -1): pre-activations exactly 0, where relu/abs have kinks
    _, gw, gb = D.loss_and_gradient("kl", [0.0, 1.0], [0.0, -1.0])
    s = 1 / (1 + np.exp(-(np.array([[0.0], [1.0]]) * D.X_S + np.array([[0.0], [-1.0]]))))
    assert gw == pytest.approx(((s - D.D_S) * D.X_S).mean(axis=1), abs=1e-15)
    assert gb == pytest.approx((s - D.D_S).mean(axis=1), abs=1e-15)


def test_engine_hessian_matches_closed_form_at_random_points():
    w, b = _random_points(200, seed=1)
    for kind in D.LOSSES:
        np.testing.assert_allclose(D.hessian_autodiff(kind, w, b), D.hessian_closed_form(kind, w, b),
                                   rtol=0, atol=1e-7)


def test_closed_form_hessian_matches_torch():
    torch = pytest.importorskip("torch")
    x, d = torch.tensor(D.X_S), torch.tensor(D.D_S)
    losses = {"l2": lambda a: 0.5 * torch.nn.functional.mse_loss(torch.sigmoid(a), d),
              "kl": lambda a: torch.nn.functional.binary_cross_entropy_with_logits(a, d)}
    for w, b in [(-1.0, 0.0), (0.3, -2.5), (-8.0, 0.0), (10.0, -5.7), (4.0, 7.0)]:
        for kind, loss in losses.items():
            H = torch.autograd.functional.hessian(lambda p, loss=loss: loss(p[0] * x + p[1]),
                                                  torch.tensor([w, b], dtype=torch.float64)).numpy()
            np.testing.assert_allclose(D.hessian_closed_form(kind, w, b), H, rtol=1e-10, atol=1e-15)


def test_losses_and_gradients_match_torch_on_the_grid():
    torch = pytest.importorskip("torch")
    values = D.grid_values(0.5)
    W, B = np.meshgrid(values, values, indexing="ij")
    w, b = torch.tensor(W.ravel(), requires_grad=True), torch.tensor(B.ravel(), requires_grad=True)
    a = w[:, None] * torch.tensor(D.X_S) + b[:, None]
    d = torch.tensor(D.D_S).expand_as(a)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch_losses = {"l2": 0.5 * ((torch.sigmoid(a) - d) ** 2).mean(dim=1),
                    "kl": bce(a, d, reduction="none").mean(dim=1)}
    for kind, expected in torch_losses.items():
        gw, gb = torch.autograd.grad(expected.sum(), (w, b), retain_graph=True)
        loss, our_gw, our_gb = D.loss_and_gradient(kind, W.ravel(), B.ravel())
        np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(our_gw, gw.numpy(), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(our_gb, gb.numpy(), rtol=1e-10, atol=1e-15)


def test_s_prime_minimizers_agree_with_bfgs():
    optimize = pytest.importorskip("scipy.optimize")
    for kind in D.LOSSES:
        found = D.minimize(kind)
        def loss(p, kind=kind):
            return D.loss_values(kind, p[0], p[1], D.X_S_PRIME, D.D_S_PRIME)

        best = optimize.minimize(loss, [0.0, 0.0], method="BFGS", options={"gtol": 1e-12})
        assert found["argmin"] == pytest.approx(tuple(best.x), abs=1e-6)


def test_grid_step_must_divide_ten():
    assert D.grid_values(0.25)[1] == -9.75
    for bad in (0.3, 0.0, -0.5, 0.01, float("nan"), 20.0):
        with pytest.raises(ValueError, match="grid step"):
            D.grid_values(bad)


# -- quick mode, files, command line, example -------------------------------------------------------------


def test_the_random_pairs_follow_the_seed():
    values = D.grid_values(5.0)
    pairs = [np.random.default_rng(seed).uniform(-10, 10, (2, 300, 2)) for seed in (1, 1, 2)]
    found = [D.analyse("l2", values, *pq)["pairs_max_violation"] for pq in pairs]
    assert found[0] == found[1] != found[2]


def test_cli_quick_writes_both_plots_and_keeps_the_claims(tmp_path, capsys):
    assert main(["divergence", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for name in ("divergence_surfaces.png", "divergence_hessian.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(tmp_path / name) in text
    assert "41 x 41 grid" in text and f"{D.QUICK_PAIRS} random pairs" in text
    # (-1, 0) lies on the coarse grid too, so the minimum is the same
    row = next(line for line in text.splitlines() if line.startswith("min lambda_min"))
    assert row.count("-0.13270 at") == 2
    assert "L2: non-convex (" in text and "KL: convex on the grid (" in text and "minimizers differ" in text


@pytest.mark.parametrize("args, what", [(["--grid-step", "0.3"], "--grid-step"),
                                        (["--grid-step", "x"], "--grid-step"), (["--pairs", "0"], "--pairs")])
def test_bad_arguments_are_argparse_errors(capsys, args, what):
    with pytest.raises(SystemExit) as exited:
        main(["divergence", *args])
    assert exited.value.code == 2
    assert what in capsys.readouterr().err


def test_example_script_runs_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [EXAMPLE, "--quick", "--no-progress", "--pairs", "200",
                                      "--grid-step", "1", "--out", str(tmp_path)])
    runpy.run_path(EXAMPLE, run_name="__main__")
    assert "KL: convex on the grid" in capsys.readouterr().out
    assert (tmp_path / "divergence_surfaces.png").exists()
