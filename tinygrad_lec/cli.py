"""The ``tinygrad-lec`` command line: a thin layer over library functions.

Each subcommand parses its arguments here and calls code that lives in the library, so that
everything it does can also be imported and tested.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .lecture.common import BATCH_SIZE, int_range, positive_float
from .lecture.common import positive_int as _positive_int

# The lecture's experiments, one module each in tinygrad_lec.lecture (see lecture/common.py).
EXPERIMENTS = ("demo", "optimizers", "minibatch", "divergence", "batchnorm", "regularization")


def _experiment(module: ModuleType, args: argparse.Namespace) -> int:
    from .lecture.common import OutputDirError, prepare_out

    try:
        out = prepare_out(args.out)
    except OutputDirError as e:  # before any work, like an argparse error
        print(f"tinygrad-lec {args.command}: error: {e}", file=sys.stderr)
        return 2
    result = module.run(out=out, seed=args.seed, quick=args.quick, progress=not args.no_progress,
                        **module.options(args))
    print(result.report())
    return 0


def _micrograd(args: argparse.Namespace) -> int:
    from .lecture import train_scalar_moons

    result = train_scalar_moons(steps=args.steps, seed=args.seed, progress=not args.no_progress)
    print(f"scalar MLP 2-16-16-1 on make_moons(100, noise=0.1), {args.steps} SGD steps")
    print(f"  nodes per step: {result['nodes']}")
    print(f"  loss: {result['losses'][0]:.4f} -> {result['losses'][-1]:.4f}")
    print(f"  accuracy: {result['accuracy']:.1%}")
    return 0


def _graph(args: argparse.Namespace) -> int:
    from . import viz
    from .lecture.common import OutputDirError, prepare_out

    output = args.output
    if output is None:  # no -o: <what>[_tensor].svg in --out, checked before any work
        try:
            out = prepare_out(args.out)
        except OutputDirError as e:
            print(f"tinygrad-lec graph: error: {e}", file=sys.stderr)
            return 2
        suffix = "_tensor" if args.what == "batchnorm" and args.level == "tensor" else ""
        output = str(out / f"{args.what}{suffix}.svg")
    draw = dict(seed=args.seed, collapse=args.collapse, max_nodes=args.max_nodes)
    if args.what == "batchnorm":
        dot = viz.batchnorm_graph(batch=args.batch, level=args.level, **draw)
    else:  # mlp
        dot = viz.mlp_graph(batch=args.batch, **draw)
    try:
        path = viz.render(dot, output, timeout=args.timeout)
    except (viz.RenderError, ValueError, OSError) as e:
        print(f"tinygrad-lec graph: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinygrad-lec",
        description="tinygrad_lec: the lecture 'Training optimizers and regularizers', runnable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in EXPERIMENTS:
        module = importlib.import_module(f".lecture.{name}", __package__)
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        p.add_argument("--out", default="tinygrad_lec_out",
                       help="directory for plots and graphs (default ./tinygrad_lec_out)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--quick", action="store_true", help="small and fast (for smoke tests)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        module.add_arguments(p)
        p.set_defaults(func=functools.partial(_experiment, module))

    micro = sub.add_parser("micrograd", help="micrograd's demo on the scalar Value engine",
                           description="Train micrograd's demo network (a scalar MLP 2-16-16-1 of "
                                       "Values) on two moons with SGD and report loss and accuracy.")
    micro.add_argument("--steps", type=_positive_int, default=30, help="SGD steps (default 30)")
    micro.add_argument("--seed", type=int, default=1, help="initialisation seed (default 1)")
    micro.add_argument("--quick", action="store_const", const=5, dest="steps",
                       help="a few steps only (for smoke tests)")
    micro.add_argument("--no-progress", action="store_true", help="no progress bar")
    micro.set_defaults(func=_micrograd)

    graph = sub.add_parser(
        "graph", help="render a built-in computation graph (.svg, .dot, .png, .pdf)",
        description="Render a built-in computation graph with forward values and gradients. "
                    "'batchnorm' is the lecture's BatchNorm backprop graph: a minibatch of scalar "
                    "pre-activations through mean, variance, normalization, scale and shift, a "
                    "sigmoid and the L2 divergence (--level scalar: element by element with Values; "
                    "--level tensor: one Tensor op per stage). 'mlp' is a small Tensor MLP with "
                    "BatchNorm. .svg and .dot need no system Graphviz; .png and .pdf need 'dot'.")
    graph.add_argument("what", choices=["batchnorm", "mlp"], help="which graph")
    graph.add_argument("-o", "--output", default=None,
                       help="output file; the suffix sets the format (.svg, .dot, .png, .pdf); "
                            "default: OUT/batchnorm.svg, OUT/batchnorm_tensor.svg or OUT/mlp.svg")
    graph.add_argument("--out", default="tinygrad_lec_out",
                       help="directory for the picture when -o is not given (default ./tinygrad_lec_out)")
    graph.add_argument("--quick", action="store_true", help="accepted for uniformity: graphs are quick")
    graph.add_argument("--batch", type=int_range(2, what=BATCH_SIZE), default=3,
                       help="minibatch size B >= 2 (default 3)")
    graph.add_argument("--level", choices=["scalar", "tensor"], default="scalar",
                       help="batchnorm: scalar Values or Tensors (default scalar)")
    graph.add_argument("--seed", type=int, default=0, help="seed of the example's numbers (default 0)")
    graph.add_argument("--collapse", action="store_true", help="draw each name scope as one box")
    graph.add_argument("--max-nodes", type=_positive_int, default=None,
                       help="draw at most this many value nodes, nearest to the output")
    graph.add_argument("--timeout", type=positive_float, default=60.0,
                       help="rendering time limit in seconds (default 60)")
    graph.set_defaults(func=_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
