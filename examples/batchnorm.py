"""The same deep sigmoid MLP trained with and without BatchNorm; the lecture's test-time statistics
(mean of the minibatch means, B/(B-1) times the mean of the minibatch variances) against
BatchNorm1d's running statistics; the BatchNorm backprop graph (REFERENCE 10).

    python examples/batchnorm.py [--quick] [--out DIR] [--seed N] [--epochs N] [--lr LR] [--batch-size B]

The same as ``tinygrad-lec batchnorm``; the experiment is ``tinygrad_lec.lecture.batchnorm.run``.
"""

import argparse

from tinygrad_lec.lecture import batchnorm
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=batchnorm.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for plots and graphs (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="small and fast")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    batchnorm.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = batchnorm.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                           **batchnorm.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
