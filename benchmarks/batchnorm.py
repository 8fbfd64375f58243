"""BatchNorm forward + backward on our engine and its peers, in one run.

Workload (the BatchNorm issue): BatchNorm over x of shape (256, 512), float32, training mode
(batch statistics, biased variance, eps 1e-5), gamma and beta requiring grad; one step = forward +
backward with a fixed random upstream gradient G, giving out, dz, dgamma and dbeta. The inputs
are drawn once (numpy seed 0): x ~ 0.5 + 2 N(0, 1), G ~ N(0, 1), gamma ~ U(0.5, 1.5), beta ~ N(0, 1).

Engines:
  numpy        forward in numpy and the lecture's closed-form backward (REFERENCE 10.2, matrix
               form: dbeta = colsum(G), dgamma = colsum(G * U),
               dz = gamma / (B s) * (B G - colsum(G) - U colsum(G U))), written by hand with
               in-place updates and one reused temporary: the floor for any numpy engine
  ours         tinygrad_lec.functional.batch_norm(x, None, None, gamma, beta, training=True),
               then out.backward(G); the gradients of x, gamma and beta reset to None each step
  ours-module  nn.BatchNorm1d(512, dtype=np.float32) in training mode: the same plus the update
               of the running statistics (and num_batches_tracked)
  torch        torch.nn.functional.batch_norm (one fused op), float32, then out.backward(G)
  torch-prim   torch composed of primitive ops with autograd, the same sequence as ours: mean,
               sub, mul, mean, add eps, sqrt, div, mul by gamma, add beta
torch runs with torch.set_num_threads(--threads); the workers' OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set to it as well (default 1: the machine has 2 cores
and is shared).

Before any timing, one interpreter runs two steps of every engine (the second must repeat the
first: gradients reset, nothing accumulates) and compares out, dz, dgamma and dbeta with the numpy
engine: |a - b| <= 1e-4 |b| + 1e-4 max|b| elementwise, or the script stops. It also prints each
engine's error against a float64 closed form, and checks ours-module's running statistics
against the formula. Then every engine runs in a fresh interpreter, in interleaved rounds (the
order rotates each round); each run warms up, then times steps for a fixed budget; figures are
medians over all timed steps of all rounds, ratios compare medians of the same run. Page faults
are resource.getrusage minor faults around each timed step.

    python benchmarks/batchnorm.py                 # full run (about 1 minute here)
    python benchmarks/batchnorm.py --quick         # a smoke run (a few seconds per engine)
    python benchmarks/batchnorm.py --threads 2     # every engine with 2 threads
    python benchmarks/batchnorm.py --profile ours  # cProfile of one engine's step
    python benchmarks/batchnorm.py --breakdown     # ours: time of each forward op and each vjp
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from _harness import (
    add_samples,
    add_threads_argument,
    add_timing_arguments,
    agrees,
    machine_line,
    median_times,
    median_us,
    minor_faults,
    print_load_at_end,
    profile_steps,
    quick_timing,
    rel_diff,
    reply,
    rounds,
    run_worker,
    set_torch_threads,
    thread_env,
    time_steps,
    tolerance,
    verdict,
)

ENGINES = ["numpy", "ours", "ours-module", "torch", "torch-prim"]
B, C = 256, 512
EPS, MOMENTUM = 1e-5, 0.1
RTOL = 1e-4  # agreement with the numpy engine: |a - b| <= RTOL |b| + RTOL max|b|
CHECK_STEPS = 2
# the targets: ours / peer must be at most this
TARGETS = {"numpy": 2.0, "torch-prim": 1.0}

Result = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # out, dz, dgamma, dbeta
Step = Callable[[bool], "Result | None"]  # step(keep): keep=True returns copies of the results


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, G, gamma, beta), float32, the same in every interpreter."""
    rng = np.random.default_rng(0)
    x = (0.5 + 2.0 * rng.standard_normal((B, C))).astype(np.float32)
    G = rng.standard_normal((B, C)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    return x, G, gamma, beta


def reference64(x, G, gamma, beta) -> Result:
    """The closed form in float64 (REFERENCE 10.1, 10.2), for the error report."""
    x, G, gamma, beta = (a.astype(np.float64) for a in (x, G, gamma, beta))
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + EPS)
    U = (x - mu) / s
    dbeta, dgamma = G.sum(axis=0), (G * U).sum(axis=0)
    dz = gamma / (B * s) * (B * G - dbeta - U * dgamma)
    return U * gamma + beta, dz, dgamma, dbeta


def _copies(*arrays: np.ndarray) -> Result:
    return tuple(np.array(a, dtype=np.float32, copy=True) for a in arrays)  # type: ignore[return-value]


# -- engines: each returns step(keep) -------------------------------------------------------------


def numpy_engine() -> Step:
    x, G, gamma, beta = problem()
    n = x.shape[0]

    def step(keep: bool = False) -> Result | None:
        # forward: 2 column reductions, 5 full-size elementwise passes
        mu = x.mean(axis=0)
        U = x - mu
        t = U * U  # the one full-size temporary, reused below
        var = t.mean(axis=0)
        inv = 1.0 / np.sqrt(var + EPS)
        U *= inv
        out = U * gamma
        out += beta
        # backward (closed form): 2 column reductions, 5 full-size elementwise passes
        dbeta = G.sum(axis=0)
        np.multiply(G, U, out=t)
        dgamma = t.sum(axis=0)
        k = gamma * inv  # dz = k G - U (k dgamma / B) - k dbeta / B
        np.multiply(U, k * dgamma / n, out=t)
        dz = G * k
        dz -= t
        dz -= k * dbeta / n
        return _copies(out, dz, dgamma, dbeta) if keep else None

    return step


def ours_engine() -> Step:
    import tinygrad_lec.functional as F
    from tinygrad_lec import Tensor

    x, G, gamma, beta = problem()
    X, g, b = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))

    def step(keep: bool = False) -> Result | None:
        X.grad = g.grad = b.grad = None
        out = F.batch_norm(X, None, None, g, b, training=True, eps=EPS)
        out.backward(G)
        return _copies(out.data, X.grad, g.grad, b.grad) if keep else None

    return step


def ours_module_engine() -> Step:
    from tinygrad_lec import Tensor, nn

    x, G, gamma, beta = problem()
    X = Tensor(x, requires_grad=True)
    bn = nn.BatchNorm1d(C, eps=EPS, momentum=MOMENTUM, dtype=np.float32)
    bn.train()
    bn.weight.data[...] = gamma
    bn.bias.data[...] = beta

    def step(keep: bool = False) -> Result | None:
        X.grad = bn.weight.grad = bn.bias.grad = None
        out = bn(X)
        out.backward(G)
        return _copies(out.data, X.grad, bn.weight.grad, bn.bias.grad) if keep else None

    step.module = bn  # type: ignore[attr-defined]  # for the running-statistics check
    return step


def _torch_inputs():
    import torch

    x, G, gamma, beta = problem()
    xt, gt, bt = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, gamma, beta))
    return torch, xt, torch.from_numpy(G), gt, bt


def torch_engine() -> Step:
    torch, xt, Gt, gt, bt = _torch_inputs()
    import torch.nn.functional as TF

    def step(keep: bool = False) -> Result | None:
        xt.grad = gt.grad = bt.grad = None
        out = TF.batch_norm(xt, None, None, gt, bt, training=True, eps=EPS)
        out.backward(Gt)
        if keep:
            return _copies(*(t.detach().numpy() for t in (out, xt.grad, gt.grad, bt.grad)))
        return None

    return step


def torch_prim_engine() -> Step:
    torch, xt, Gt, gt, bt = _torch_inputs()

    def step(keep: bool = False) -> Result | None:
        xt.grad = gt.grad = bt.grad = None
        mu = xt.mean(dim=0, keepdim=True)
        centered = xt - mu
        var = (centered * centered).mean(dim=0, keepdim=True)
        u = centered / (var + EPS).sqrt()
        out = u * gt + bt
        out.backward(Gt)
        if keep:
            return _copies(*(t.detach().numpy() for t in (out, xt.grad, gt.grad, bt.grad)))
        return None

    return step


BUILDERS: dict[str, Callable[[], Step]] = {
    "numpy": numpy_engine, "ours": ours_engine, "ours-module": ours_module_engine,
    "torch": torch_engine, "torch-prim": torch_prim_engine,
}


# -- the agreement check --------------------------------------------------------------------------


def check(threads: int) -> dict:
    """Two steps of every engine in this interpreter; errors against the numpy engine and float64."""
    set_torch_threads(threads)
    ref64 = reference64(*problem())
    results, report = {}, {}
    for e in ENGINES:
        step = BUILDERS[e]()
        first, second = step(True), step(True)
        repeat = max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))
        results[e] = second
        report[e] = {"repeat": repeat, "vs_float64": [rel_diff(a, r) for a, r in zip(second, ref64)]}
        if e == "ours-module":
            bn = step.module  # type: ignore[attr-defined]
            x = problem()[0].astype(np.float64)
            w = 1.0 - (1.0 - MOMENTUM) ** CHECK_STEPS  # r_k = (1 - m)^k r_0 + (1 - (1 - m)^k) stat
            want_mean = w * x.mean(axis=0)
            want_var = (1.0 - w) * 1.0 + w * x.var(axis=0, ddof=1)
            report[e]["running"] = max(rel_diff(bn.running_mean, want_mean),
                                       rel_diff(bn.running_var, want_var))
            report[e]["batches_tracked"] = int(bn.num_batches_tracked)
    base = results["numpy"]
    for e in ENGINES:
        ok = [agrees(a, b, RTOL) for a, b in zip(results[e], base)]
        report[e]["vs_numpy"] = [rel_diff(a, b) for a, b in zip(results[e], base)]
        report[e]["ok"] = all(ok) and report[e]["repeat"] == 0.0 and report[e].get("running", 0.0) <= 1e-5
    return report


# -- worker and driver ----------------------------------------------------------------------------


def worker(engine: str, threads: int, warmup: float, budget: float) -> dict:
    info = set_torch_threads(threads) if engine.startswith("torch") else {}
    return {"info": info, **time_steps(BUILDERS[engine](), warmup, budget)}  # step() is step(False)


def run(args: list[str], env: dict) -> dict:
    return run_worker(__file__, args, env, name=" ".join(args))


def profile(engine: str, steps: int = 500) -> None:
    profile_steps(BUILDERS[engine](), steps, 50, 30,
                  f"cProfile of {steps} steps of {engine} (times are totals over the steps)")


def breakdown(steps: int = 300) -> None:
    """Ours: each forward op of functional.batch_norm's sequence (rebuilt here op by op, checked
    to give the same graph and output), and each vjp of the backward (timed by wrapping the
    nodes' vjps), against the cost of one full-size numpy pass."""
    import tinygrad_lec.functional as F
    from tinygrad_lec import Tensor
    from tinygrad_lec.graph import topological_order

    x, G, gamma, beta = problem()
    X, g, b = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    fwd_names = ["mean(x)", "x - mu", "c * c", "mean(c*c)", "var + eps", "sqrt", "c / s", "u * gamma",
                 "+ beta"]

    def forward(times: list[float] | None):
        stamps = [time.perf_counter()]

        def lap(t):
            stamps.append(time.perf_counter())
            return t
        mu = lap(X.mean(axis=0, keepdims=True))
        c = lap(X - mu)
        sq = lap(c * c)
        var = lap(sq.mean(axis=0, keepdims=True))
        ve = lap(var + EPS)
        s = lap(ve.sqrt())
        u = lap(c / s)
        ug = lap(u * g)
        out = lap(ug + b)
        if times is not None:
            times.extend(t1 - t0 for t0, t1 in zip(stamps, stamps[1:]))
        return out

    ref = F.batch_norm(X, None, None, g, b, training=True, eps=EPS)
    mine = forward(None)
    same_ops = [v.op for v in topological_order(ref)] == [v.op for v in topological_order(mine)]
    if not (same_ops and np.array_equal(ref.data, mine.data)):
        print("note: functional.batch_norm no longer builds this op sequence; the forward rows below "
              "time the sequence written here")
    del ref, mine

    fwd: dict[str, list[float]] = {k: [] for k in fwd_names}
    vjp: dict[str, list[float]] = {}
    vjp_faults: dict[str, list[int]] = {}
    totals: dict[str, list[float]] = {"forward": [], "backward": [], "reset": []}
    faults: dict[str, list[int]] = {"forward": [], "backward": []}

    def timed(fn, key):
        def wrapper(grad):
            f0 = minor_faults()
            t0 = time.perf_counter()
            r = fn(grad)
            vjp.setdefault(key, []).append(time.perf_counter() - t0)
            vjp_faults.setdefault(key, []).append(minor_faults() - f0)
            return r
        return wrapper

    for i in range(steps + 30):
        t0 = time.perf_counter()
        X.grad = g.grad = b.grad = None
        t1 = time.perf_counter()
        laps: list[float] = []
        f1 = minor_faults()
        out = forward(laps)
        t2 = time.perf_counter()
        f2 = minor_faults()
        for k, node in enumerate(reversed(topological_order(out))):
            if node._a is None:
                continue
            if node._da is not None:
                node._da = timed(node._da, f"{k:2d} {node.op:5s} d/d first operand")
            if node._db is not None:
                node._db = timed(node._db, f"{k:2d} {node.op:5s} d/d second operand")
        f3 = minor_faults()
        t3 = time.perf_counter()
        out.backward(G)
        t4 = time.perf_counter()
        del out
        f4 = minor_faults()
        if i >= 30:
            faults["forward"].append(f2 - f1)
            faults["backward"].append(f4 - f3)
            totals["reset"].append(t1 - t0)
            totals["forward"].append(t2 - t1)
            totals["backward"].append(t4 - t3)
            for k, t in zip(fwd_names, laps):
                fwd[k].append(t)
        else:
            vjp.clear()
            vjp_faults.clear()

    full = median_us(lambda: x * G, steps, 30)  # the cost of one full-size numpy pass
    red = median_us(lambda: x.sum(axis=0), steps, 30)
    us = {k: statistics.median(v) * 1e6 for k, v in {**totals, **fwd, **vjp}.items()}
    nf = {k: statistics.fmean(v) for k, v in {**faults, **vjp_faults}.items()}
    print(f"ours, {steps} steps: median microseconds and mean minor page faults; one full-size numpy "
          f"pass here: x * G {full:.0f} us, x.sum(axis=0) {red:.0f} us")
    print(f"  forward total {us['forward']:8.1f} us {nf['forward']:7.1f} faults")
    for k in fwd_names:
        print(f"    {k:32s} {us[k]:8.1f}")
    print(f"  backward total {us['backward']:7.1f} us {nf['backward']:7.1f} faults (vjps below; the rest is "
          "the seed's copy and finiteness check, ordering, accumulation)")
    for k in sorted(vjp, key=lambda k: int(k[:2])):
        print(f"    {k:32s} {us[k]:8.1f} us {nf[k]:7.1f} faults")
    rest = us["backward"] - sum(us[k] for k in vjp)
    rest_faults = nf["backward"] - sum(nf[k] for k in vjp)
    print(f"    {'(outside the vjps)':32s} {rest:8.1f} us {rest_faults:7.1f} faults")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_timing_arguments(ap, rounds=5, budget=1.0)
    add_threads_argument(ap)
    ap.add_argument("--profile", metavar="ENGINE", choices=ENGINES, help="cProfile one engine's step")
    ap.add_argument("--breakdown", action="store_true", help="ours: time of each forward op and vjp")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "check":
        reply(check(args.threads))
        return
    if args.worker:
        reply(worker(args.worker, args.threads, args.warmup, args.budget))
        return
    if args.profile or args.breakdown:
        # in this interpreter (numpy's elementwise ops and reductions use no BLAS threads)
        if args.profile and args.profile.startswith("torch"):
            set_torch_threads(args.threads)
        if args.profile:
            profile(args.profile)
        else:
            breakdown()
        return
    quick_timing(args)

    env = thread_env(args.threads)
    print(f"{machine_line()}; threads {args.threads} for every engine")
    print(f"BatchNorm of ({B}, {C}) float32, training, forward + backward with a fixed upstream "
          f"gradient; {args.rounds} rounds x {len(ENGINES)} engines, each run in a fresh interpreter: "
          f"{args.warmup} s warm-up, {args.budget} s of timed steps; medians over all timed steps")

    report = run(["--worker", "check", "--threads", str(args.threads)], env)
    print(f"\nagreement after {CHECK_STEPS} steps: max |a - b| / max |b| per output "
          "(out, dz, dgamma, dbeta)")
    print(f"  {'':12s} {'vs numpy engine':>40s}   {'vs float64 closed form':>40s}")
    for e in ENGINES:
        r = report[e]
        extra = ""
        if "running" in r:
            extra = f"  running stats {r['running']:.1e} after {r['batches_tracked']} batches"
        print(f"  {e:12s} " + "".join(f"{v:10.1e}" for v in r["vs_numpy"]) + "   "
              + "".join(f"{v:10.1e}" for v in r["vs_float64"]) + extra)
    bad = [e for e in ENGINES if not report[e]["ok"]]
    if bad:
        sys.exit(f"\nFAILED: {', '.join(bad)} disagree(s) with the numpy engine (tolerance "
                 f"{tolerance(RTOL)}), or a second step differs from the first, or the running statistics "
                 "are wrong: no timing")
    print(f"  all agree ({tolerance(RTOL)}; the second step repeats the first)", flush=True)

    res: dict[str, dict] = {e: {"times": [], "faults": [], "info": {}} for e in ENGINES}
    for order in rounds(args.rounds, ENGINES):
        for e in order:
            out = run(["--worker", e, "--threads", str(args.threads), "--warmup", str(args.warmup),
                       "--budget", str(args.budget)], env)
            add_samples(res[e], out)
            res[e]["info"] = out["info"]
    info = res["torch"]["info"]
    print(f"torch {info['torch']}, set_num_threads({args.threads}) (torch reports {info['torch_threads']})")

    med = median_times(res, 1e3)
    print(f"\n  {'engine':12s} {'ms/step':>9s} {'steps':>7s} {'faults/step':>12s} {'ours / engine':>14s}"
          f" {'ours-module / engine':>21s}")
    for e in ENGINES:
        faults = statistics.fmean(res[e]["faults"])
        print(f"  {e:12s} {med[e]:9.3f} {len(res[e]['times']):7d} {faults:12.1f} "
              f"{med['ours'] / med[e]:14.3f} {med['ours-module'] / med[e]:21.3f}")

    print("\ntargets (the issue)")
    met = all(med["ours"] / med[peer] <= target for peer, target in TARGETS.items())
    for peer, target in TARGETS.items():
        for who in ("ours", "ours-module"):
            ratio = med[who] / med[peer]
            print(f"  {who:11s} / {peer:10s} = {ratio:6.3f}  ({verdict(ratio, target)})")
    print(f"  ours meets both targets: {'yes' if met else 'NO'}")
    print_load_at_end()


if __name__ == "__main__":
    main()
