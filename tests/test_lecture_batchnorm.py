"""`tinygrad-lec batchnorm` (REFERENCE 10): with vs without BatchNorm, and the lecture's test-time
statistics against BatchNorm1d's running statistics."""

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lec import Tensor, nn
from tinygrad_lec.cli import main
from tinygrad_lec.lecture import batchnorm

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "batchnorm.py"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("batchnorm")
    return out, batchnorm.run(out=out, quick=True, progress=False)


def test_with_batchnorm_the_training_loss_after_the_same_steps_is_lower(quick):
    _, result = quick
    n = result.numbers
    assert n["steps"] == 15 * 14  # 450 training points, batches of 32, last partial batch dropped
    assert n["final_train_loss"]["batchnorm"] < n["final_train_loss"]["plain"] - 0.1
    assert n["last_epoch_loss"]["batchnorm"] < n["last_epoch_loss"]["plain"] - 0.1
    assert n["test_accuracy"]["batchnorm_ema"] > n["test_accuracy"]["plain"]


def test_without_batchnorm_the_deep_sigmoid_net_is_still_on_the_chance_plateau(quick):
    _, result = quick
    assert abs(result.numbers["final_train_loss"]["plain"] - np.log(3)) < 0.1


def test_momentum_none_running_statistics_equal_the_lecture_average_with_the_unbiased_factor(quick):
    _, result = quick
    stats = result.numbers["statistics"]
    assert len(stats) == 3 and all(s["batches"] == 450 // 32 for s in stats)
    for s in stats:
        np.testing.assert_allclose(s["running_mean"], s["lecture_mean"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(s["running_var"], s["lecture_var"], rtol=1e-12, atol=1e-14)
    assert result.numbers["momentum_none_vs_lecture"]["var_rel"] < 1e-12


def test_ema_running_statistics_differ_from_the_lecture_average(quick):
    _, result = quick
    assert result.numbers["ema_vs_lecture"]["var_rel"] > 1e-2
    for (_, var), s in zip(result.numbers["ema"], result.numbers["statistics"]):
        assert not np.allclose(var, s["lecture_var"], rtol=1e-3)


def test_lecture_statistics_match_an_independent_numpy_computation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) * [1.0, 3.0, 0.5] + [2.0, -1.0, 0.0]
    net = nn.Sequential(nn.Linear(3, 4, seed=1), nn.BatchNorm1d(4))
    B, seed = 7, 5
    (s,) = batchnorm.lecture_statistics(net, X, batch_size=B, seed=seed)

    z = X @ net[0].weight.data.T + net[0].bias.data
    order = np.random.default_rng(seed).permutation(len(X))  # the DataLoader's first epoch
    batches = [z[order[i * B:(i + 1) * B]] for i in range(len(X) // B)]  # 7 batches; 1 row dropped
    mu_bn = np.mean([zb.mean(axis=0) for zb in batches], axis=0)
    var_bn = B / (B - 1) * np.mean([zb.var(axis=0) for zb in batches], axis=0)
    assert s["batches"] == 7
    for key, expected in (("lecture_mean", mu_bn), ("running_mean", mu_bn), ("lecture_var", var_bn),
                          ("running_var", var_bn)):
        np.testing.assert_allclose(s[key], expected, rtol=1e-12, atol=1e-14, err_msg=key)
    # eval mode now applies the lecture's fixed affine map per neuron
    assert not net.training
    expected_out = (z - mu_bn) / np.sqrt(var_bn + 1e-5) * net[1].weight.data + net[1].bias.data
    np.testing.assert_allclose(net(Tensor(X)).data, expected_out, rtol=1e-12, atol=1e-14)


def test_quick_run_writes_the_loss_curves_and_both_graphs(quick):
    out, result = quick
    names = sorted(Path(f).name for f in result.files)
    assert names == ["batchnorm_graph.svg", "batchnorm_graph_tensor.svg", "batchnorm_loss.png"]
    assert (out / "batchnorm_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("batchnorm_graph.svg", "batchnorm_graph_tensor.svg"):
        svg = (out / name).read_text()
        assert svg.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in svg and "digraph" not in svg
        assert "variance" in svg and "normalize" in svg  # the lecture's stages as clusters


def test_report_has_the_table_and_the_running_statistics_line(quick):
    text = quick[1].report()
    for words in ("no BatchNorm", "momentum=None", "EMA", "B/(B-1)", "test accuracy", "batchnorm_loss.png"):
        assert words in text


def test_training_is_reproducible_with_a_seed():
    splits = batchnorm.load(3)
    a = batchnorm.train(True, splits, seed=3, epochs=1, lr=0.05, batch_size=32)
    b = batchnorm.train(True, splits, seed=3, epochs=1, lr=0.05, batch_size=32)
    assert a["curves"] == b["curves"]


def test_both_nets_start_from_the_same_linear_weights():
    plain, normed = batchnorm.make_net(False, seed=0), batchnorm.make_net(True, seed=0)
    linears = [[m.weight.data for m in net if isinstance(m, nn.Linear)] for net in (plain, normed)]
    assert len(linears[0]) == 4 and all(np.array_equal(a, b) for a, b in zip(*linears))


@pytest.mark.parametrize("args, what", [
    (["--batch-size", "1"], "--batch-size"), (["--batch-size", "451"], "--batch-size"),
    (["--epochs", "0"], "--epochs"), (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr")])
def test_bad_arguments_are_argparse_errors(args, what, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["batchnorm", *args])
    assert exit_info.value.code == 2
    assert what in capsys.readouterr().err


def test_command_line_runs_and_writes_its_files(tmp_path, capsys):
    assert main(["batchnorm", "--quick", "--epochs", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "momentum=None" in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} >= {"batchnorm_loss.png", "batchnorm_graph.svg",
                                                      "batchnorm_graph_tensor.svg"}


def test_example_script_prints_the_report(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--quick", "--epochs", "1", "--no-progress",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no BatchNorm" in done.stdout and (tmp_path / "batchnorm_loss.png").exists()


def test_docstring_examples_hold():
    assert doctest.testmod(batchnorm, optionflags=doctest.ELLIPSIS).failed == 0
