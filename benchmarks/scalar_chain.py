"""A deep scalar chain, ``x = x*1.0001 + 0.0001`` (2 ops a step): forward, backward, free.

Our engine has no recursion anywhere, so depth is limited only by memory; micrograd's recursive
topological sort raises RecursionError past the interpreter's recursion limit. Every figure is
measured in a fresh interpreter at default settings (GC on, default recursion limit), in
interleaved rounds; medians are printed.

    python benchmarks/scalar_chain.py             # 1,000,000 ops (500,000 steps), 3 rounds
    python benchmarks/scalar_chain.py --quick     # 100,000 ops, 1 round
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _harness import PYTHON, field_medians, reply, run_worker


def chain(Value, n: int):
    x0 = Value(1.0)
    x = x0
    for _ in range(n):
        x = x * 1.0001 + 0.0001
    return x0, x


def time_ours(n: int) -> dict:
    from tinygrad_lec import Value

    t0 = time.perf_counter()
    x0, x = chain(Value, n)
    t1 = time.perf_counter()
    x.backward()
    t2 = time.perf_counter()
    expected = 1.0001**n
    rel_err = abs(x0.grad - expected) / expected
    del x
    t3 = time.perf_counter()
    return {"forward": t1 - t0, "backward": t2 - t1, "free": t3 - t2, "rel_err": rel_err}


def memory_ours(n: int) -> dict:
    import tracemalloc

    from tinygrad_lec import Value

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    x0, x = chain(Value, n)
    x.backward()
    held = tracemalloc.get_traced_memory()[0] - base
    return {"bytes_per_node": held / (2 * n + 1)}


def micrograd_depth() -> dict:
    """The largest chain micrograd's backward survives at the default recursion limit."""
    from micrograd.engine import Value

    ok = 0
    for n in (100, 200, 300, 400, 500, 600, 800, 1000, 2000):
        x0, x = chain(Value, n)
        try:
            x.backward()
        except RecursionError:
            return {"max_ok": ok, "failed_at": n, "recursion_limit": sys.getrecursionlimit()}
        ok = n
    return {"max_ok": ok, "failed_at": None, "recursion_limit": sys.getrecursionlimit()}


def run(what: str, n: int) -> dict:
    return run_worker(__file__, ["--worker", what, "--ops", str(2 * n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=1_000_000, help="chain length in ops (2 per step)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        fn = {"time": time_ours, "memory": memory_ours, "micrograd": lambda n: micrograd_depth()}
        reply(fn[args.worker](args.ops // 2))
        return
    if args.quick:
        args.ops, args.rounds = 100_000, 1
    args.n = args.ops // 2
    runs = [run("time", args.n) for _ in range(args.rounds)]
    med = field_medians(runs, ("forward", "backward", "free"))
    mem = run("memory", min(args.n, 200_000))
    print(f"python {PYTHON}; chain of {2 * args.n:,} ops ({args.n:,} steps); "
          f"medians of {args.rounds} fresh interpreters")
    print(f"  forward {med['forward']:.2f} s, backward {med['backward']:.2f} s, "
          f"forward + backward {med['forward'] + med['backward']:.2f} s (target < 3 s at 1,000,000 ops)")
    print(f"  free (drop the last reference) {med['free']:.2f} s")
    print(f"  dx_N/dx_0 vs 1.0001**N: max relative error {max(r['rel_err'] for r in runs):.1e}")
    print(f"  memory {mem['bytes_per_node']:.0f} B/node after forward + backward")
    try:
        mg = run("micrograd", 0)
        print(f"  micrograd: backward works up to {mg['max_ok']} steps, RecursionError at "
              f"{mg['failed_at']} steps (recursion limit {mg['recursion_limit']})")
    except subprocess.CalledProcessError as e:
        print(f"  micrograd: not measured ({e.stderr.strip().splitlines()[-1]})")


if __name__ == "__main__":
    main()
