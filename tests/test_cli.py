"""The command line (API.md, "Command line"), run as users run it: in a fresh interpreter."""

import os
import subprocess
import sys

import pytest

from tinygrad_lec.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "tinygrad_lec", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"]], ids=["top", "demo"])
def test_help_exits_zero_and_shows_usage(args):
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_top_level_help_lists_the_demo_subcommand():
    assert "demo" in run_cli("--help").stdout


def test_quick_demo_runs_reports_accuracy_and_writes_its_files(tmp_path):
    done = run_cli("demo", "--quick", "--no-progress", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "loss" in done.stdout
    assert "accuracy" in done.stdout
    assert (tmp_path / "demo_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "</svg>" in (tmp_path / "batchnorm_graph.svg").read_text()


def test_quick_micrograd_demo_runs_and_reports_loss_and_accuracy():
    done = run_cli("micrograd", "--quick", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "loss" in done.stdout
    assert "accuracy" in done.stdout


def test_zero_steps_is_a_usage_error():
    done = run_cli("micrograd", "--steps", "0")
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert "error:" in done.stderr
    assert "--steps" in done.stderr


# -- tinygrad-lec graph ----------------------------------------------------------------------------


def _is_svg(data):
    text = data.decode("utf-8")
    return text.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in text


def _run_without_dot(tmp_path, *args):
    """``python -m tinygrad_lec ARGS`` in tmp_path with a PATH that holds only a link to this
    Python: no Graphviz 'dot' program is reachable."""
    bin_dir = tmp_path / "bin-without-dot"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python")
    return subprocess.run([sys.executable, "-m", "tinygrad_lec", *args], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env=dict(os.environ, PATH=str(bin_dir)))


def test_top_level_help_lists_the_graph_subcommand():
    assert "graph" in run_cli("--help").stdout


def test_graph_help_exits_zero_and_shows_usage(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["graph", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--batch" in out and "--max-nodes" in out


def test_graph_batchnorm_writes_an_svg(tmp_path, capsys):
    out = tmp_path / "bn.svg"
    assert main(["graph", "batchnorm", "--batch", "3", "-o", str(out)]) == 0
    assert _is_svg(out.read_bytes())
    assert str(out) in capsys.readouterr().out


def test_graph_batchnorm_batch_sets_the_minibatch_size(tmp_path):
    out = tmp_path / "bn.dot"
    assert main(["graph", "batchnorm", "--batch", "5", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert "{z5 |" in source and "{z6 |" not in source


def test_graph_batchnorm_level_tensor_draws_tensors(tmp_path):
    out = tmp_path / "bn.dot"
    assert main(["graph", "batchnorm", "--batch", "4", "--level", "tensor", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert "(4, 1) float64" in source
    assert "{z1 |" not in source


def test_graph_batchnorm_level_tensor_writes_an_svg(tmp_path):
    out = tmp_path / "bn.svg"
    assert main(["graph", "batchnorm", "--level", "tensor", "-o", str(out)]) == 0
    assert _is_svg(out.read_bytes())


def test_graph_mlp_writes_an_svg(tmp_path):
    out = tmp_path / "mlp.svg"
    assert main(["graph", "mlp", "-o", str(out)]) == 0
    assert _is_svg(out.read_bytes())


def test_graph_mlp_dot_has_a_cluster_per_layer(tmp_path):
    out = tmp_path / "mlp.dot"
    assert main(["graph", "mlp", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert all(f'"cluster_{name}"' in source for name in ("0:Linear", "1:BatchNorm1d", "2:ReLU", "3:Linear"))


def test_graph_collapse_draws_scopes_as_boxes(tmp_path):
    out = tmp_path / "bn.dot"
    assert main(["graph", "batchnorm", "--collapse", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert "box3d" in source and "cluster_batchnorm" not in source


def test_graph_max_nodes_limits_the_records(tmp_path):
    out = tmp_path / "bn.dot"
    assert main(["graph", "batchnorm", "--max-nodes", "7", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert source.count("shape=record") == 7
    assert "shape=note" in source


def test_graph_svg_with_no_graphviz_on_path(tmp_path):
    done = _run_without_dot(tmp_path, "graph", "batchnorm", "--batch", "3", "-o", "bn.svg")
    assert done.returncode == 0, done.stderr
    assert _is_svg((tmp_path / "bn.svg").read_bytes())


def test_graph_png_with_no_graphviz_on_path_exits_1_with_the_install_message(tmp_path):
    done = _run_without_dot(tmp_path, "graph", "batchnorm", "-o", "bn.png")
    assert done.returncode == 1
    assert "install graphviz" in done.stderr.lower()
    assert ".svg" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bn.png").exists()


@pytest.mark.parametrize("batch", ["1", "0", "two"])
def test_graph_batch_below_two_is_a_usage_error_naming_batch(capsys, batch):
    with pytest.raises(SystemExit) as exited:
        main(["graph", "batchnorm", "--batch", batch])
    assert exited.value.code == 2
    assert "--batch" in capsys.readouterr().err


@pytest.mark.parametrize("max_nodes", ["0", "-2"])
def test_graph_max_nodes_below_one_is_a_usage_error(capsys, max_nodes):
    with pytest.raises(SystemExit) as exited:
        main(["graph", "batchnorm", "--max-nodes", max_nodes])
    assert exited.value.code == 2
    assert "--max-nodes" in capsys.readouterr().err


def test_graph_unknown_output_format_is_an_error_message_not_a_traceback(tmp_path):
    done = run_cli("graph", "batchnorm", "-o", str(tmp_path / "bn.jpg"))
    assert done.returncode != 0
    assert "jpg" in done.stderr
    assert "Traceback" not in done.stderr


def test_graph_output_in_a_missing_directory_is_an_error_naming_the_path(tmp_path):
    target = tmp_path / "no-such-dir" / "bn.dot"
    done = run_cli("graph", "batchnorm", "-o", str(target))
    assert done.returncode != 0
    assert str(target) in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_graph_timeout_that_is_not_a_positive_number_is_a_usage_error(capsys, tmp_path, timeout):
    with pytest.raises(SystemExit) as exited:
        main(["graph", "batchnorm", "--timeout", timeout, "-o", str(tmp_path / "bn.svg")])
    assert exited.value.code == 2
    assert "--timeout" in capsys.readouterr().err


@pytest.mark.parametrize("args, name", [(["batchnorm"], "batchnorm.svg"),
                                        (["batchnorm", "--level", "tensor"], "batchnorm_tensor.svg"),
                                        (["mlp", "--quick"], "mlp.svg")])
def test_graph_without_output_writes_into_out_dir(tmp_path, args, name, capsys):
    assert main(["graph", *args, "--out", str(tmp_path / "pics")]) == 0
    assert "</svg>" in (tmp_path / "pics" / name).read_text()


def test_graph_with_an_unwritable_out_dir_is_an_error_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["graph", "batchnorm", "--out", str(blocker / "sub")]) == 2
    assert "output directory" in capsys.readouterr().err
