"""``python -m tinygrad_lec``: the same command line as ``tinygrad-lec``."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
