"""The lecture's experiments as library code; ``cli.py`` and ``examples/`` are thin wrappers."""

from .scalar_demo import train_scalar_moons

__all__ = ["train_scalar_moons"]
