"""The command line (API.md, "Command line"), run as users run it: in a fresh interpreter."""

import subprocess
import sys

import pytest


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


def test_quick_demo_runs_and_reports_loss_and_accuracy():
    done = run_cli("demo", "--quick", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "loss" in done.stdout
    assert "accuracy" in done.stdout


def test_zero_steps_is_a_usage_error():
    done = run_cli("demo", "--steps", "0")
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert "error:" in done.stderr
    assert "--steps" in done.stderr
