"""Ours against the numpy floor in ONE interpreter, alternating step by step.

    python benchmarks/interleaved.py [tiny|batchnorm] [--rounds 5] [--steps 3000]

On this shared, noisy machine, drift in load between two separately timed runs moves ratios by
20-30%; alternating ours and the floor one step at a time inside one process exposes both to the
same load, so their ratio is steadier than that of the full benchmarks (which run each engine in
its own interpreter and report page faults too). Workloads and engines are those of
benchmarks/tensor_mlp.py ("tiny": micrograd's 2-16-16-1 net, float64, SGD) and
benchmarks/batchnorm.py ((256, 512) float32, forward + backward; the floor is the closed form).
Prints the median microseconds per step of each engine per round and the median ratio.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import batchnorm  # noqa: E402
import tensor_mlp  # noqa: E402


def engines(workload: str):
    if workload == "tiny":
        return tensor_mlp.make_step("ours", "tiny"), tensor_mlp.make_step("numpy", "tiny")
    return batchnorm.ours_engine(), batchnorm.numpy_engine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["tiny", "batchnorm"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="steps per engine per round "
                        "(default 3000 for tiny, 400 for batchnorm)")
    args = parser.parse_args()
    steps = args.steps or (3000 if args.workload == "tiny" else 400)
    ratios = []
    for r in range(args.rounds):
        ours, floor = engines(args.workload)  # fresh state every round
        times: dict[str, list[float]] = {"ours": [], "numpy": []}
        for _ in range(steps):
            for name, step in (("ours", ours), ("numpy", floor)):
                t = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t)
        med = {k: float(np.median(v)) * 1e6 for k, v in times.items()}
        ratios.append(med["ours"] / med["numpy"])
        print(f"round {r + 1}: ours {med['ours']:.1f} us, numpy {med['numpy']:.1f} us, "
              f"ratio {ratios[-1]:.3f}")
    print(f"{args.workload}: ours / numpy = {np.median(ratios):.3f} (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
