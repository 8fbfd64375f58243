"""The README's code runs as printed: its tour executes, its property tests pass."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_tour_and_the_property_test_example():
    assert len(python_blocks()) >= 2


def test_readme_tour_runs():
    exec(compile(python_blocks()[0], "README tour", "exec"), {})


def test_readme_property_tests_pass():
    namespace: dict = {}
    exec(compile(python_blocks()[1], "README property tests", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test()
