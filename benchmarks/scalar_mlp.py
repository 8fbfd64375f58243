"""micrograd's demo workload on our Value engine and on micrograd, in one run.

Workload (issue 2): ``MLP(2, [16, 16, 1])`` on 100 points of ``make_moons(noise=0.1)``, loss
``mean(relu(1 - y*score)) + 1e-4*sum(p*p)``; one step = forward + backward + SGD update, written
once (``train_step``) and run with either engine's ``Value`` and ``MLP``. Both models start from
the same weights, so the losses must agree to rounding, and the script checks that they do.

Every configuration runs in a fresh interpreter (so one engine's garbage never slows another),
in interleaved rounds; the figures are medians over all timed steps, and the ratios compare
medians of the same run. Configurations:
  ours          tinygrad_lec, interpreter defaults (the cyclic GC on)
  micrograd     micrograd from PyPI, interpreter defaults
  micrograd-nogc micrograd with the cyclic GC disabled during the timed steps
  ours-nogc     ours with the cyclic GC disabled (not a target: shows what the GC costs us)
Memory: bytes that tracemalloc sees the graph hold after forward + backward, per graph node.

    python benchmarks/scalar_mlp.py            # full run (about 2 minutes here)
    python benchmarks/scalar_mlp.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

from _harness import PYTHON, reply, rounds, run_worker

from tinygrad_lec.lecture.scalar_demo import demo_loss, demo_step


def load_engine(name: str):
    """(Value, MLP factory) for an engine; both MLPs draw the same initial weights from seed 1."""
    if name.startswith("micrograd"):
        import random

        from micrograd.engine import Value
        from micrograd.nn import MLP

        def make():
            random.seed(1)
            return MLP(2, [16, 16, 1])
    else:
        from tinygrad_lec import Value
        from tinygrad_lec.scalar import MLP

        def make():
            return MLP(2, [16, 16, 1], seed=1)
    return Value, make


def dataset():
    from tinygrad_lec.data import make_moons

    X, y = make_moons(100, noise=0.1, seed=0)
    return X.tolist(), [2.0 * float(t) - 1.0 for t in y]  # labels -1/+1, as micrograd's demo


def forward(Value, model, X, y):
    return demo_loss(Value, model, X, y)[0]


def train_step(Value, model, X, y, k):
    return demo_step(Value, model, X, y, k)[0].data


def count_nodes(root):
    """All nodes of a graph (leaves included), for either engine, without recursion."""
    seen, stack = {id(root)}, [root]
    while stack:
        v = stack.pop()
        parents = v._prev if hasattr(v, "_prev") else v.parents
        for p in parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return len(seen)


def worker(config: str, steps: int) -> dict:
    Value, make = load_engine(config)
    X, y = dataset()
    sys.setrecursionlimit(100_000)  # micrograd's recursive topological sort needs it
    model = make()
    losses = [train_step(Value, model, X, y, 0)]  # warm-up
    times = []
    for k in range(1, steps + 1):
        if config.endswith("-nogc"):
            gc.disable()
        t0 = time.perf_counter()
        losses.append(train_step(Value, model, X, y, k))
        times.append(time.perf_counter() - t0)
        if config.endswith("-nogc"):
            gc.enable()
    return {"times": times, "losses": losses}


def memory_worker(config: str) -> dict:
    import tracemalloc

    Value, make = load_engine(config)
    X, y = dataset()
    sys.setrecursionlimit(100_000)
    model = make()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = forward(Value, model, X, y)
    loss.backward()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"bytes": held, "nodes": count_nodes(loss)}


def gc_worker(config: str, steps: int) -> dict:
    """Collections per step by generation, and the seconds they took (gc.callbacks)."""
    Value, make = load_engine(config)
    X, y = dataset()
    sys.setrecursionlimit(100_000)
    model = make()
    train_step(Value, model, X, y, 0)
    counts, seconds, started = [0, 0, 0], [0.0, 0.0, 0.0], [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            seconds[info["generation"]] += time.perf_counter() - started[0]

    gc.callbacks.append(callback)
    for k in range(1, steps + 1):
        train_step(Value, model, X, y, k)
    gc.callbacks.remove(callback)
    return {"per_step": [c / steps for c in counts], "ms_per_step": [1e3 * t / steps for t in seconds]}


def run(config: str, mode: str, steps: int) -> dict:
    return run_worker(__file__, ["--worker", config, "--mode", mode, "--steps", str(steps)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round and configuration")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 steps")
    ap.add_argument("--gc-stats", action="store_true",
                    help="only count our cyclic-GC collections per step, by generation")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="time", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        fn = {"time": worker, "memory": lambda c, _: memory_worker(c), "gc": gc_worker}[args.mode]
        reply(fn(args.worker, args.steps))
        return
    if args.gc_stats:
        res = run("ours", "gc", args.steps)
        for gen, (n, ms) in enumerate(zip(res["per_step"], res["ms_per_step"])):
            print(f"  generation {gen}: {n:6.1f} collections per step, {ms:6.1f} ms per step inside them")
        return
    if args.quick:
        args.rounds, args.steps = 1, 2
    configs = ["ours", "micrograd", "micrograd-nogc", "ours-nogc"]
    times: dict[str, list[float]] = {c: [] for c in configs}
    losses: dict[str, list[float]] = {}
    for order in rounds(args.rounds, configs, rotate=False):
        for c in order:
            res = run(c, "time", args.steps)
            times[c] += res["times"]
            losses[c] = res["losses"]
    med = {c: statistics.median(t) for c, t in times.items()}
    mem = {c: run(c, "memory", 0) for c in ("ours", "micrograd")}
    drift = max(abs(a - b) for a, b in zip(losses["ours"], losses["micrograd"]))

    print(f"python {PYTHON}; {args.rounds} rounds x {args.steps} steps; medians")
    for c in configs:
        print(f"  {c:15s} {med[c] * 1e3:9.1f} ms/step")
    print(f"  ours / micrograd       = {med['ours'] / med['micrograd']:.4f}"
          f"  (1/{med['micrograd'] / med['ours']:.1f}; target <= 1/20)")
    print(f"  ours / micrograd-nogc  = {med['ours'] / med['micrograd-nogc']:.3f}  (target <= 0.5)")
    print(f"  both without GC: ours-nogc / micrograd-nogc = {med['ours-nogc'] / med['micrograd-nogc']:.3f}; "
          f"the GC takes {1 - med['ours-nogc'] / med['ours']:.0%} of our default step")
    for c, m in mem.items():
        print(f"  memory {c:10s} {m['bytes'] / m['nodes']:6.0f} B/node  "
              f"({m['nodes']} nodes, {m['bytes'] / 1e6:.1f} MB for forward + backward)")
    per_node = {c: m["bytes"] / m["nodes"] for c, m in mem.items()}
    ratio = per_node["ours"] / per_node["micrograd"]
    print(f"  memory per node ours / micrograd = {ratio:.3f}  (target <= 0.5); per step graph "
          f"= {mem['ours']['bytes'] / mem['micrograd']['bytes']:.3f}")
    print(f"  max |loss ours - loss micrograd| over the steps = {drift:.2e}")
    if drift > 1e-9:
        sys.exit("the two engines disagree on the loss: the comparison is void")


if __name__ == "__main__":
    main()
