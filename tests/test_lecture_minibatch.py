"""`tinygrad-lec minibatch` (REFERENCE 1): incremental, minibatch and full-batch SGD, and the variance
of the minibatch gradient against the batch size."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lec import nn
from tinygrad_lec.cli import main
from tinygrad_lec.lecture import minibatch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minibatch.py"
SMALL = dict(samples=32, epochs=2, minibatches=20)  # for the runs that only check plumbing


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("minibatch")
    return out, minibatch.run(out=out, quick=True, progress=False)


def test_quick_run_writes_the_loss_and_variance_plots(quick):
    out, result = quick
    names = ["minibatch_loss.png", "minibatch_variance.png"]
    assert sorted(Path(f).name for f in result.files) == names
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in names)


def test_table_has_every_batch_size_and_the_one_over_k_run(quick):
    result, n = quick[1], quick[1].numbers["n"]
    assert result.numbers["sizes"] == minibatch.batch_sizes(n) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert [row[0] for row in result.rows][-2:] == [f"{n} (full)", "1, lr 0.5/(1+k/N)"]
    assert [row[1] for row in result.rows[:-1]] == [n // b for b in result.numbers["sizes"]]
    assert "variance x B" in result.report()


def test_gradient_variance_decreases_with_the_batch_size(quick):
    numbers = quick[1].numbers
    variances = [numbers["variance"][b] for b in numbers["sizes"]]
    assert all(later < earlier for earlier, later in zip(variances, variances[1:]))
    assert variances[-1] < 1e-20  # B = N: every minibatch is the whole set


def test_variance_times_b_over_the_finite_population_factor_is_the_per_example_variance(quick):
    # Sampling without replacement: Var = sigma^2 / B * (N - B)/(N - 1), so the ratio is 1 in theory;
    # 150 minibatches per B leave about 10% noise, hence the generous band.
    ratios = quick[1].numbers["ratio"]
    assert len(ratios) == 7
    assert all(2 / 3 < r < 1.5 for r in ratios.values()), ratios


def test_without_the_correction_variance_times_b_falls_at_large_b(quick):
    numbers, n = quick[1].numbers, quick[1].numbers["n"]
    half = numbers["variance"][n // 2] * (n // 2) / numbers["sigma2"]
    assert half < 0.75  # (N - B)/(N - 1) = 0.504 at B = N/2: plain 1/B overstates the variance


def test_inverse_time_schedule_brings_b1_sgd_closer_to_the_optimum(quick):
    numbers = quick[1].numbers
    assert 0 <= numbers["inverse_time_excess"] < 0.2 * numbers["excess"][1]


def test_inverse_time_schedule_wins_on_another_seed_too():
    X, y = minibatch.moons(128, seed=1)
    _, loss_star, _ = minibatch.optimum(X, y)
    constant, decaying = (minibatch.train(X, y, 1, 6, seed=1, inverse_time=flag)["loss"][-1] - loss_star
                          for flag in (False, True))
    assert 0 <= decaying < 0.2 * constant


def test_every_batch_size_sees_the_same_number_of_examples(quick):
    numbers = quick[1].numbers
    for b in numbers["sizes"]:
        curve = numbers["curves"][b]
        assert curve["updates"][-1] == numbers["epochs"] * curve["updates_per_epoch"]
    assert numbers["excess"][16] < numbers["excess"][numbers["n"]]  # more updates per epoch win here


def test_newton_finds_the_optimum(quick):
    numbers = quick[1].numbers
    assert numbers["optimum_grad_norm"] < 1e-10
    assert min(numbers["excess"].values()) > -1e-12


def test_autodiff_gradient_matches_the_logistic_regression_closed_form():
    X, y = minibatch.moons(20, seed=3)
    model = nn.Linear(2, 1, seed=1)
    theta = np.concatenate([p.data.ravel() for p in model.parameters()])
    A = np.hstack([X, np.ones((20, 1))])
    p = 1 / (1 + np.exp(-A @ theta))
    np.testing.assert_allclose(minibatch.gradient(model, X, y), A.T @ (p - y) / 20, rtol=1e-10, atol=1e-14)


def test_per_example_variance_matches_the_closed_form():
    X, y = minibatch.moons(30, seed=2)
    theta = np.array([0.5, -1.0, 0.2])
    A = np.hstack([X, np.ones((30, 1))])
    grads = A * (1 / (1 + np.exp(-A @ theta)) - y)[:, None]
    expected = np.mean(np.sum((grads - grads.mean(axis=0)) ** 2, axis=1))
    assert minibatch.per_example_variance(X, y, theta) == pytest.approx(expected, rel=1e-10)


def test_finite_population_factor():
    assert minibatch.finite_population_factor(100, 1) == 1.0
    assert minibatch.finite_population_factor(100, 100) == 0.0
    assert minibatch.finite_population_factor(101, 51) == 0.5


def test_batch_sizes_are_powers_of_two_then_the_full_batch():
    assert minibatch.batch_sizes(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert minibatch.batch_sizes(2) == [1, 2]


def test_same_seed_same_numbers(tmp_path):
    a = minibatch.run(out=tmp_path, progress=False, seed=4, **SMALL).numbers
    b = minibatch.run(out=tmp_path, progress=False, seed=4, **SMALL).numbers
    assert a["variance"] == b["variance"] and a["final_loss"] == b["final_loss"]


def test_example_script_prints_the_table(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--no-progress", "--samples", "32", "--epochs", "2",
                           "--minibatches", "20", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "updates/epoch" in done.stdout and "32 (full)" in done.stdout
    assert (tmp_path / "minibatch_variance.png").exists()


@pytest.mark.parametrize("args, what", [(["--epochs", "0"], "--epochs"), (["--samples", "1"], "--samples"),
                                        (["--minibatches", "many"], "--minibatches")])
def test_bad_arguments_are_argparse_errors(capsys, args, what):
    with pytest.raises(SystemExit) as exited:
        main(["minibatch", *args])
    assert exited.value.code == 2
    assert what in capsys.readouterr().err


def test_cli_subcommand_runs(tmp_path, capsys):
    assert main(["minibatch", "--no-progress", "--samples", "32", "--epochs", "2", "--minibatches", "20",
                 "--out", str(tmp_path)]) == 0
    assert "gradient variance" in capsys.readouterr().out
