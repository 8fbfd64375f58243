"""The main job (issue: the lecture, runnable): `tinygrad-lec demo` and lecture.demo.run."""

import subprocess
import sys

import pytest

from tinygrad_lec.lecture import common, demo


def test_default_demo_reaches_95_percent_on_spirals(tmp_path):
    result = demo.run(out=tmp_path, progress=False)
    assert result.numbers["dataset"] == "spirals"
    assert result.numbers["train_accuracy"] >= 0.95
    assert result.numbers["test_accuracy"] >= 0.90


def test_quick_demo_writes_the_curves_and_the_batchnorm_graph(tmp_path):
    result = demo.run(out=tmp_path, quick=True, progress=False)
    assert sorted(p.split("/")[-1] for p in result.files) == ["batchnorm_graph.svg", "demo_curves.png"]
    assert (tmp_path / "demo_curves.png").read_bytes()[:4] == b"\x89PNG"
    svg = (tmp_path / "batchnorm_graph.svg").read_text()
    assert svg.startswith("<?xml") and "</svg>" in svg and "digraph" not in svg  # rendered, not DOT
    assert len(result.numbers["curves"]["train_loss"]) == result.numbers["epochs"] == 5


def test_demo_is_reproducible_with_a_seed(tmp_path):
    a = demo.run(out=tmp_path, quick=True, progress=False, seed=3)
    b = demo.run(out=tmp_path, quick=True, progress=False, seed=3)
    assert a.numbers["curves"] == b.numbers["curves"]


def test_report_has_the_table_and_the_files(tmp_path):
    text = demo.run(out=tmp_path, quick=True, progress=False).report()
    assert "accuracy" in text and "test" in text and "demo_curves.png" in text


def test_digits_demo_trains_when_scikit_learn_is_installed(tmp_path):
    pytest.importorskip("sklearn")
    result = demo.run(out=tmp_path, quick=True, progress=False, dataset="digits")
    assert result.numbers["test_accuracy"] >= 0.85


def test_unwritable_out_is_a_clear_error_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(common.OutputDirError, match="output directory"):
        common.prepare_out(blocker / "sub")
    done = subprocess.run([sys.executable, "-m", "tinygrad_lec", "demo", "--out", str(blocker / "sub")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error:" in done.stderr and "output directory" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args, what", [(["--epochs", "0"], "--epochs"), (["--lr", "-1"], "--lr"),
                                        (["--dataset", "mnist"], "--dataset")])
def test_bad_arguments_are_argparse_errors(args, what):
    done = subprocess.run([sys.executable, "-m", "tinygrad_lec", "demo", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert what in done.stderr


def test_format_table_aligns_columns():
    text = common.format_table(["a", "bb"], [[1.23456, "x"], ["long", 2]])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "bb"] and set(lines[1]) <= {"-", " "} and "1.235" in lines[2]
    assert lines[0].index("bb") == lines[2].index("x") == lines[3].index("2")


def test_example_script_runs_the_same_experiment(tmp_path):
    script = __file__.rsplit("/tests/", 1)[0] + "/examples/demo.py"
    done = subprocess.run([sys.executable, script, "--quick", "--no-progress", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and (tmp_path / "demo_curves.png").is_file()
