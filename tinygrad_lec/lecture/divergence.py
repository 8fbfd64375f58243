"""Lecture experiment 'divergence' (being written)."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from .common import Result

HELP = "(being written)"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this experiment beyond --out, --seed, --quick, --no-progress."""


def options(args: argparse.Namespace) -> dict[str, Any]:
    return {}


def run(out: str | pathlib.Path = "tinygrad_lec_out", seed: int = 0, quick: bool = False,
        progress: bool = True) -> Result:
    raise NotImplementedError("divergence: being written")
