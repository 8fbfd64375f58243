"""Overfitting 60 noisy points with no regularization, weight decay and dropout; sigmoid steepness
vs weight size, and gradient descent on a separable set with and without an L2 penalty
(REFERENCE 6, 11, 12).

    python examples/regularization.py [--quick] [--out DIR] [--seed N] [--steps N] [--weight-decay L]

The same as ``tinygrad-lec regularization``; the experiment is ``tinygrad_lec.lecture.regularization.run``.
"""

import argparse

from tinygrad_lec.lecture import regularization
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=regularization.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for plots and graphs (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="small and fast")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    regularization.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = regularization.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                                **regularization.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
