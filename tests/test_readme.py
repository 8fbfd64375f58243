"""The README's code runs as printed: its tour executes, its property tests pass."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_tour_and_the_property_test_example():
    assert len(python_blocks()) >= 2
    assert len(python_blocks()[0].strip().splitlines()) <= 32  # a short tour


def test_readme_tour_runs_and_trains_the_network(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks()[0], "README tour", "exec"), {})
    assert "</svg>" in (tmp_path / "batchnorm.svg").read_text()
    accuracy = int(capsys.readouterr().out.split("train accuracy ")[1].split("%")[0])
    assert accuracy >= 90


def test_readme_property_tests_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    block = next(b for b in python_blocks()[1:] if "@given" in b)  # the section after the tour
    exec(compile(block, "README property tests", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test()


def test_every_image_the_readme_shows_is_committed():
    images = re.findall(r'<img src="([^"]+)"', README.read_text())
    assert images
    for image in images:
        assert (README.parent / image).is_file(), image


def test_every_test_file_and_example_the_readme_names_exists():
    text = README.read_text()
    paths = set(re.findall(r"`((?:tests|examples|benchmarks)/[\w/]+\.py)", text))
    assert len(paths) >= 10
    for path in paths:
        assert (README.parent / path).is_file(), path


def test_every_command_in_the_readme_is_a_subcommand():
    from tinygrad_lec.cli import build_parser

    commands = set(re.findall(r"`tinygrad-lec (\w+)", README.read_text()))
    choices = build_parser()._subparsers._group_actions[0].choices
    assert commands and commands <= set(choices)
