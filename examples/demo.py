"""The main job: an MLP with BatchNorm and dropout trained with Adam on minibatches (spirals or digits).

    python examples/demo.py [--quick] [--out DIR] [--seed N] [--dataset spirals|digits] [--epochs N]

Also: ``tinygrad-lec demo``. The experiment is ``tinygrad_lec.lecture.demo.run``.
"""

import argparse

from tinygrad_lec.lecture import demo
from tinygrad_lec.lecture.common import DEFAULT_OUT, OutputDirError, prepare_out


def main() -> None:
    parser = argparse.ArgumentParser(description=demo.DESCRIPTION)
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory for the plots (default ./{DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="a few epochs only (a smoke run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_arguments(parser)
    args = parser.parse_args()
    try:
        out = prepare_out(args.out)
    except OutputDirError as e:
        parser.error(str(e))
    result = demo.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                            **demo.options(args))
    print(result.report())


if __name__ == "__main__":
    main()
