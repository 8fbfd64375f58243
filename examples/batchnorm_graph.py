"""The lecture's BatchNorm backprop graph, scalar and tensor level, as SVG (no system Graphviz).

    python examples/batchnorm_graph.py [--batch 3] [--out DIR]

Also: ``tinygrad-lec graph batchnorm --batch 3 -o bn.svg`` (``--level tensor``).
"""

import argparse
import pathlib

from tinygrad_lec import viz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for level in ("scalar", "tensor"):
        example = viz.batchnorm_example(batch=args.batch, level=level)
        z = example["z"]
        grads = [round(v.grad, 5) for v in z] if level == "scalar" else z.grad.ravel().round(5).tolist()
        print(f"{level}: loss {float(example['loss'].data):.5f}, dL/dz = {grads} (sum ~ 0: BatchNorm "
              f"is blind to a shift of z)")
        print("  wrote", viz.render(viz.batchnorm_graph(batch=args.batch, level=level),
                                    out / f"batchnorm_{level}.svg"))


if __name__ == "__main__":
    main()
