"""SGD, momentum, Nesterov, RMSprop and Adam on an ill-conditioned bowl and on Rosenbrock
(REFERENCE 2-5): trajectories over the contours, loss against the step, steps to a tolerance.

    python examples/optimizers.py [--quick] [--out DIR] [--seed N] [--tolerance 1e-6]
                                  [--bowl-steps N] [--rosenbrock-steps N]

The same as ``tinygrad-lec optimizers``; the experiment is ``tinygrad_lec.lecture.optimizers.run``.
"""

import argparse

from tinygrad_lec.lecture import optimizers
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=optimizers.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0,
                        help="moves the starting points by a small random offset (default 0)")
    parser.add_argument("--quick", action="store_true", help="a shorter Rosenbrock budget (a few seconds)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    optimizers.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = optimizers.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                            **optimizers.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
