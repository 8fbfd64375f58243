"""Freeing a deep chain, ``x = x * 1.0000001 + 0.0`` (2 nodes a step), after backward: is it linear?

Dropping the last reference to the root frees the whole chain by reference counting (no node
points at its children, so there is no cycle for the garbage collector). This script measures the
time of that one ``del`` for two chain lengths, for Value and for Tensor (0-d) chains, each in a
fresh interpreter at default settings (GC on), in interleaved rounds; it prints medians and the
ratio of the two times (4.0 for 4x the nodes means linear). It also checks that the first
interior node is gone after the ``del``. tests/test_reliability.py checks the freeing itself
(weakrefs, GC off) without timing it.

    python benchmarks/free_chain.py                     # 250,000 and 1,000,000 nodes, 5 rounds
    python benchmarks/free_chain.py --quick             # 25,000 and 100,000 nodes, 1 round
    python benchmarks/free_chain.py --nodes 250000 4000000 --kinds Value
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import weakref

from _harness import PYTHON, field_medians, reply, run_worker


def measure(kind: str, nodes: int) -> dict:
    from tinygrad_lec import Tensor, Value

    x0 = Value(1.0) if kind == "Value" else Tensor(1.0, requires_grad=True)
    steps = nodes // 2
    t0 = time.perf_counter()
    x = x0
    for _ in range(steps):
        x = x * 1.0000001 + 0.0
    t1 = time.perf_counter()
    x.backward()
    t2 = time.perf_counter()
    first = x
    while first.parents and first.parents[0] is not x0:  # walk down to the first interior node
        first = first.parents[0]
    first = weakref.ref(first)
    t3 = time.perf_counter()
    del x
    t4 = time.perf_counter()
    return {"build": t1 - t0, "backward": t2 - t1, "free": t4 - t3, "freed": first() is None,
            "nodes": 2 * steps + 1, "grad_ok": abs(float(x0.grad) / 1.0000001**steps - 1) < 1e-9}


def np_version() -> str:
    import numpy

    return numpy.__version__


def run(kind: str, nodes: int) -> dict:
    return run_worker(__file__, ["--worker", kind, str(nodes)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs=2, default=[250_000, 1_000_000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--kinds", nargs="+", default=["Value", "Tensor"], choices=["Value", "Tensor"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        reply(measure(args.worker[0], int(args.worker[1])))
        return
    if args.quick:
        args.nodes, args.rounds = [25_000, 100_000], 1
    runs: dict[tuple[str, int], list[dict]] = {(k, n): [] for k in args.kinds for n in args.nodes}
    for _ in range(args.rounds):  # interleaved, so that a slow moment of the machine hits every case
        for key in runs:
            runs[key].append(run(*key))
    print(f"python {PYTHON}, numpy {np_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; medians of {args.rounds} fresh interpreters, GC on")
    print(f"{'kind':7} {'nodes':>10} {'build s':>8} {'backward s':>10} {'free s':>7} {'free ns/node':>12}"
          "  freed")
    for kind in args.kinds:
        free = {}
        for n in args.nodes:
            r = runs[(kind, n)]
            med = field_medians(r, ("build", "backward", "free"))
            free[n] = med["free"]
            freed = all(x["freed"] and x["grad_ok"] for x in r)
            print(f"{kind:7} {r[0]['nodes']:>10,} {med['build']:8.3f} {med['backward']:10.3f} "
                  f"{med['free']:7.3f} {1e9 * med['free'] / r[0]['nodes']:12.0f}  {'yes' if freed else 'NO'}")
        small, large = args.nodes
        print(f"{kind:7} free time ratio {large:,}/{small:,} nodes: {free[large] / free[small]:.2f} "
              f"(linear: {large / small:.2f})")


if __name__ == "__main__":
    main()
