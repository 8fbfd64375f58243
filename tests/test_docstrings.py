"""Every example in a docstring runs and prints what it says."""

import doctest
import importlib

import pytest

MODULES = ["graph", "value", "tensor", "functional", "nn", "optim", "lr_scheduler", "gradcheck", "testing",
           "scalar", "data", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module("tinygrad_lec" if name == "__init__" else f"tinygrad_lec.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_modules_have_examples_at_all():
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for name in MODULES[:-1]
                   for t in finder.find(importlib.import_module(f"tinygrad_lec.{name}")))
    assert examples >= 30
