"""`tinygrad-lec optimizers` (REFERENCE 2-5): SGD, momentum, Nesterov, RMSprop and Adam on an
ill-conditioned bowl and on Rosenbrock."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lec import Tensor
from tinygrad_lec.cli import main
from tinygrad_lec.lecture import optimizers

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "optimizers.py"
BOWL, ROSENBROCK = optimizers.PROBLEMS["bowl"], optimizers.PROBLEMS["rosenbrock"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers")
    return out, optimizers.run(out=out, quick=True, progress=False)


def test_quick_run_writes_the_three_plots(quick):
    out, result = quick
    names = ["optimizers_bowl.png", "optimizers_rosenbrock.png", "optimizers_loss.png"]
    assert sorted(Path(f).name for f in result.files) == sorted(names)
    assert all((out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in names)


def test_table_has_a_row_per_optimizer_with_steps_and_final_loss(quick):
    result = quick[1]
    assert [row[0] for row in result.rows] == list(optimizers.OPTIMIZERS)
    text = result.report()
    assert "Rosenbrock steps" in text and "bowl final loss" in text and "not reached" in text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_momentum_nesterov_and_adam_need_fewer_steps_than_sgd_on_the_bowl(seed):
    steps = {}
    for name in optimizers.OPTIMIZERS:
        _, losses = optimizers.optimize(BOWL, name, optimizers.start_point(BOWL, seed), BOWL.steps)
        steps[name] = optimizers.steps_to_tolerance(losses, optimizers.TOLERANCE)
    assert steps["SGD"] is not None  # SGD gets there too: the claim is about speed, not failure
    for name in ("momentum", "Nesterov", "Adam"):
        assert steps[name] is not None and steps[name] < 0.5 * steps["SGD"], (name, steps)


def test_on_rosenbrock_momentum_converges_within_the_quick_budget_and_sgd_does_not(quick):
    steps = quick[1].numbers["steps"]["rosenbrock"]
    assert steps["momentum"] is not None and steps["SGD"] is None
    assert quick[1].numbers["final_loss"]["rosenbrock"]["SGD"] > optimizers.TOLERANCE


def test_run_numbers_match_the_table(quick):
    result = quick[1]
    sgd_row = result.rows[0]
    assert sgd_row[2] == str(result.numbers["steps"]["bowl"]["SGD"])
    assert sgd_row[3] == result.numbers["final_loss"]["bowl"]["SGD"]
    assert len(result.numbers["losses"]["rosenbrock"]["Adam"]) == ROSENBROCK.quick_steps + 1


def test_loss_gradients_from_autodiff_match_the_closed_forms():
    x, y = 0.7, -1.3
    for loss, expected in [(optimizers.bowl_loss, [x, optimizers.CONDITION * y]),
                           (optimizers.rosenbrock_loss, [-2 * (1 - x) - 400 * x * (y - x * x),
                                                         200 * (y - x * x)])]:
        w = Tensor([x, y], requires_grad=True)
        loss(w).backward()
        np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


def test_loss_functions_take_grids_for_the_contours():
    X, Y = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(0, 2, 3))
    Z = optimizers.rosenbrock_loss(Tensor(np.stack([X, Y]))).data
    np.testing.assert_allclose(Z, (1 - X) ** 2 + 100 * (Y - X**2) ** 2)


def test_one_sgd_step_is_the_library_update_on_the_autodiff_gradient():
    start = np.array([-4.0, 1.0])
    points, losses = optimizers.optimize(BOWL, "SGD", start, 1)
    lr = optimizers.HYPERPARAMETERS["bowl"]["SGD"]
    np.testing.assert_allclose(points[1], start - lr * np.array([start[0], optimizers.CONDITION * start[1]]))
    assert losses[0] == pytest.approx(0.5 * (16 + optimizers.CONDITION))


def test_nesterov_is_not_plain_momentum():
    start = optimizers.start_point(BOWL, 0)
    a, _ = optimizers.optimize(BOWL, "momentum", start, 20, lr=0.005)
    b, _ = optimizers.optimize(BOWL, "Nesterov", start, 20, lr=0.005)
    assert np.abs(a - b).max() > 1e-3


def test_steps_to_tolerance_counts_until_the_loss_stays_below():
    assert optimizers.steps_to_tolerance(np.array([5.0, 1e-7, 3.0, 1e-7, 1e-8]), 1e-6) == 3
    assert optimizers.steps_to_tolerance(np.array([1e-9, 1e-9]), 1e-6) == 0
    assert optimizers.steps_to_tolerance(np.array([5.0, 1e-7, 3.0]), 1e-6) is None  # passed through
    assert optimizers.steps_to_tolerance(np.array([5.0, np.nan]), 1e-6) is None     # blew up


def test_a_diverging_run_stops_and_reports_not_reached():
    points, losses = optimizers.optimize(BOWL, "SGD", np.array([-4.0, 1.0]), 2000, lr=0.05)
    assert not np.isfinite(losses[-1]) and len(losses) < 2001 and len(points) == len(losses)
    assert optimizers.steps_to_tolerance(losses, 1e-6) is None


def test_the_seed_moves_the_start_slightly():
    starts = [optimizers.start_point(BOWL, seed) for seed in range(4)]
    assert all(0 < np.linalg.norm(s - np.array(BOWL.start)) < 0.5 for s in starts)
    assert len({tuple(s) for s in starts}) == 4
    np.testing.assert_array_equal(optimizers.start_point(BOWL, 3), starts[3])


def test_same_seed_same_trajectories():
    for name in optimizers.OPTIMIZERS:
        a, b = (optimizers.optimize(ROSENBROCK, name, optimizers.start_point(ROSENBROCK, 5), 50)[0]
                for _ in range(2))
        np.testing.assert_array_equal(a, b)


def test_unknown_optimizer_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown optimizer 'Adagrad'"):
        optimizers.make_optimizer("Adagrad", [Tensor([1.0], requires_grad=True)], 0.1)


def test_example_script_prints_the_table(tmp_path):
    args = ["--quick", "--no-progress", "--rosenbrock-steps", "100", "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "optimizer" in done.stdout and "momentum" in done.stdout
    assert (tmp_path / "optimizers_loss.png").exists()


@pytest.mark.parametrize("args, what", [(["--tolerance", "0"], "--tolerance"),
                                        (["--tolerance", "abc"], "--tolerance"),
                                        (["--bowl-steps", "0"], "--bowl-steps"),
                                        (["--rosenbrock-steps", "-3"], "--rosenbrock-steps")])
def test_bad_arguments_are_argparse_errors(capsys, args, what):
    with pytest.raises(SystemExit) as exited:
        main(["optimizers", *args])
    assert exited.value.code == 2
    assert what in capsys.readouterr().err


def test_cli_subcommand_runs(tmp_path, capsys):
    assert main(["optimizers", "--quick", "--no-progress", "--rosenbrock-steps", "100", "--out",
                 str(tmp_path)]) == 0
    assert "steps until the loss stays below" in capsys.readouterr().out
