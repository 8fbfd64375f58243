"""L2 vs KL for one sigmoid perceptron (REFERENCE 9): loss surfaces, Hessians, convexity verdicts.

    python examples/divergence.py [--quick] [--out DIR] [--seed N] [--grid-step 0.1] [--pairs 100000]

Also: ``tinygrad-lec divergence``. The experiment is ``tinygrad_lec.lecture.divergence.run``.
"""

import argparse

from tinygrad_lec.lecture import divergence
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=divergence.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pairs (default 0)")
    parser.add_argument("--quick", action="store_true", help="coarse grid, fewer pairs (a few seconds)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    divergence.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = divergence.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                            **divergence.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
