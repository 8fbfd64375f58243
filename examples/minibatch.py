"""Incremental (B = 1), minibatch and full-batch SGD on make_moons, and the variance of the
minibatch gradient against B, which falls like (N-B)/(N-1)/B (REFERENCE 1).

    python examples/minibatch.py [--quick] [--out DIR] [--seed N] [--samples N] [--epochs N]
                                 [--minibatches M]

The same as ``tinygrad-lec minibatch``; the experiment is ``tinygrad_lec.lecture.minibatch.run``.
"""

import argparse

from tinygrad_lec.lecture import minibatch
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=minibatch.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights and minibatches "
                                                            "(default 0)")
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs (a few seconds)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    minibatch.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = minibatch.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                           **minibatch.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
