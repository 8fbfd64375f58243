"""What every lecture experiment shares: an output directory checked before any work, a progress
bar, PNG plots with matplotlib's Agg backend (imported only when a plot is made), a printed table.

An experiment module (``tinygrad_lec.lecture.<name>``) has ``run(out, seed, quick, progress, ...)``
returning a :class:`Result`, and for the command line ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` (its own options; ``--out``, ``--seed``, ``--quick``, ``--no-progress``
are added by ``cli.py``) and ``options(args)`` (the keyword arguments ``run`` takes from them).
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._io import atomic_write

DEFAULT_OUT = "tinygrad_lec_out"


class OutputDirError(ValueError):
    """The output directory cannot be created or written."""


@dataclass
class Result:
    """What an experiment found: a title, a table (header + rows), the files it wrote and its
    numbers by name (what the tests assert on)."""

    title: str
    header: Sequence[str]
    rows: list[Sequence[Any]]
    files: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        return format_table(self.header, self.rows)

    def report(self) -> str:
        """The text the command line prints."""
        lines = [self.title, "", self.table()]
        if self.notes:
            lines += [""] + self.notes
        if self.files:
            lines += ["", "wrote:"] + [f"  {f}" for f in self.files]
        return "\n".join(lines)


def prepare_out(out: str | os.PathLike) -> pathlib.Path:
    """Create ``out`` if needed and check that a file can be written there, before any work."""
    path = pathlib.Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".tinygrad_lec_write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputDirError(f"cannot write to the output directory {str(path)!r}: "
                             f"{e.strerror or e}") from None
    return path


def progress(iterable: Iterable[Any], total: int | None = None, desc: str = "", enabled: bool = True
             ) -> Iterator[Any]:
    """``iterable`` with a tqdm progress bar on stderr when ``enabled``."""
    if not enabled:
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> str:
    """Write ``fig`` as PNG, atomically, and close it. Returns the path as a string."""
    path = os.fspath(path)
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    finally:
        pyplot().close(fig)
    return path


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table; floats with 4 significant digits."""
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.4g}"
        return str(x)

    text = [[cell(h) for h in header]] + [[cell(x) for x in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- argument types for the experiments' options (argparse turns the errors into usage errors) --


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number, got {text}")
    return x


def int_range(low: int, high: int | None = None, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]`` (no upper bound if ``high`` is None)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if n < low or (high is not None and n > high):
            bounds = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {n}")
        return n

    return parse


# BatchNorm normalizes over the minibatch: a batch of one has no variance (REFERENCE 10.3).
BATCH_SIZE = "a minibatch size (BatchNorm needs two values or more)"
