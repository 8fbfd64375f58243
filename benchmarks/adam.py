"""One Adam step on our optimizer and its peers, in one run (the Adam-step issue).

Workload: one Adam update (lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay; torch's rule)
of the parameters of the MLP 784-256-256-10 in float32: W (256, 784), b (256,), W (256, 256),
b (256,), W (10, 256), b (10,), 269,322 numbers. The parameters start from
benchmarks/tensor_mlp.py's ``init_params`` (torch.nn.Linear's default init, numpy seed 0); the
gradients are drawn once (numpy seed 1, 1e-3 N(0, 1)) and stay fixed, so every step does the same
work. Optimizer state (exp_avg, exp_avg_sq) is created by the first step, before any timing.

Engines:
  numpy          hand-written Adam in numpy: every operation in place (out= or an augmented
                 assignment) into the state or into two temporaries per parameter allocated once,
                 in torch's order of operations (lerp, mul + addcmul, sqrt / sqrt(bc2) + eps,
                 addcdiv): 13 elementwise passes a parameter, no allocation per step. The floor for a
                 numpy optimizer that keeps torch's foreach=False order of operations.
  numpy-fold     the same, but with torch's bias correction folded into eps and the step size
                 (m / (sqrt(v) / s + eps) = s m / (sqrt(v) + eps s), s = sqrt(1 - beta2^k); torch's
                 capturable branch folds it the same way, through -step_size): 12 passes instead
                 of 13; differs from the others by rounding only (no target; it shows what numpy
                 can reach)
  ours           tinygrad_lec.optim.Adam over Tensors whose .grad is set: opt.step()
  torch-loop     torch.optim.Adam(foreach=False): the single-tensor loop
  torch-default  torch.optim.Adam() at its defaults (foreach=None; the script prints what it
                 resolves to on CPU)
  torch-foreach  torch.optim.Adam(foreach=True): the multi-tensor (_foreach_*) kernels
  torch-fused    torch.optim.Adam(fused=True): one fused kernel per parameter (no target; for
                 reference)
Targets (the issue): ours <= 1.2x numpy; ours faster than torch-loop, torch-default and
torch-foreach (ratio < 1), all at the same thread count (default 1: OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS, MKL_NUM_THREADS of the workers and torch.set_num_threads).

Before any timing, one interpreter runs CHECK_STEPS steps of every engine from the same state and
compares the parameters with the numpy engine's: |a - b| <= 1e-5 |b| + 1e-5 max|b| elementwise
(float32), or the script stops; it also prints how far the updates themselves (parameters minus
their initial values) differ, and checks that no engine changed the gradients. Then every engine
runs in a fresh interpreter, in interleaved rounds (the order rotates each round); each run warms
up, then times single steps for a fixed budget; figures are medians over all timed steps of all
rounds, ratios compare medians of the same run (each ratio is also printed round by round, to
show how consistent it is). Page faults are resource.getrusage minor faults around each timed step.
On this shared 2-core machine, torch-loop and torch-default (the same code on CPU) can differ by
25% in one run: read single ratios near 1 as ties.

    python benchmarks/adam.py                 # full run (about 4 minutes here)
    python benchmarks/adam.py --quick         # a smoke run
    python benchmarks/adam.py --threads 2     # every engine with 2 threads
    python benchmarks/adam.py --profile ours  # cProfile of one engine's step
    python benchmarks/adam.py --temporaries   # numpy arrays that ours and numpy allocate per step
    python benchmarks/adam.py --breakdown     # ours: fixed overhead vs elementwise work
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable

import numpy as np
from _harness import (
    adam_foreach_default,
    add_samples,
    add_threads_argument,
    add_timing_arguments,
    agrees,
    machine_line,
    median_times,
    median_us,
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
from tensor_mlp import BETAS, EPS, LR_ADAM, MLP_SIZES, init_params

ENGINES = ["numpy", "numpy-fold", "ours", "torch-loop", "torch-default", "torch-foreach", "torch-fused"]
TORCH_OPTIONS = {"torch-loop": {"foreach": False}, "torch-default": {}, "torch-foreach": {"foreach": True},
                 "torch-fused": {"fused": True}}
CHECK_STEPS = 5
RTOL = 1e-5  # agreement with the numpy engine: |a - b| <= RTOL |b| + RTOL max|b|
GRAD_SCALE = 1e-3
# ours / peer must be at most this ("faster than": strictly below 1)
TARGETS = {"numpy": 1.2, "torch-loop": 1.0, "torch-default": 1.0, "torch-foreach": 1.0}
STRICT = {"torch-loop", "torch-default", "torch-foreach"}

Arrays = Callable[[], list[np.ndarray]]
Engine = tuple[Callable[[], None], Arrays, Arrays]  # step(), current parameters, gradients


def problem() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(parameters, gradients), float32, the same in every interpreter."""
    params = init_params(MLP_SIZES, np.float32)
    rng = np.random.default_rng(1)
    grads = [(GRAD_SCALE * rng.standard_normal(p.shape)).astype(np.float32) for p in params]
    return params, grads


# -- engines --------------------------------------------------------------------------------------


class NumpyAdam:
    """torch's single-tensor Adam step in numpy with no allocation per step: the state (m, v) and
    two temporaries per parameter (u, d) are allocated once."""

    def __init__(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.params, self.grads = params, grads
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.u = [np.empty_like(p) for p in params]
        self.d = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2 = BETAS
        step_size = LR_ADAM / (1.0 - b1**self.t)
        bc2_sqrt = math.sqrt(1.0 - b2**self.t)
        for p, g, m, v, u, d in zip(self.params, self.grads, self.m, self.v, self.u, self.d):
            np.subtract(g, m, out=u)  # m.lerp_(g, 1 - b1), weight < 0.5: m + w (g - m)
            u *= 1.0 - b1
            m += u
            v *= b2  # v.mul_(b2).addcmul_(g, g, value=1 - b2): v + ((1 - b2) g) g
            np.multiply(g, 1.0 - b2, out=u)
            u *= g
            v += u
            np.sqrt(v, out=d)  # denom = v.sqrt() / sqrt(bc2) + eps
            d /= bc2_sqrt
            d += EPS
            np.multiply(m, -step_size, out=u)  # p.addcdiv_(m, denom, value=-step_size)
            u /= d
            p += u


class NumpyAdamFold(NumpyAdam):
    """NumpyAdam with the bias correction of v folded into eps and the step size: one pass fewer."""

    def step(self) -> None:
        self.t += 1
        b1, b2 = BETAS
        step_size = LR_ADAM / (1.0 - b1**self.t)
        bc2_sqrt = math.sqrt(1.0 - b2**self.t)
        for p, g, m, v, u, d in zip(self.params, self.grads, self.m, self.v, self.u, self.d):
            np.subtract(g, m, out=u)
            u *= 1.0 - b1
            m += u
            v *= b2
            np.multiply(g, 1.0 - b2, out=u)
            u *= g
            v += u
            np.sqrt(v, out=d)  # p -= step_size s m / (sqrt(v) + eps s)
            d += EPS * bc2_sqrt
            np.divide(m, d, out=d)
            d *= -step_size * bc2_sqrt
            p += d


def numpy_engine(cls: type[NumpyAdam]) -> Callable[[], Engine]:
    def build() -> Engine:
        params, grads = problem()
        opt = cls(params, grads)
        return opt.step, lambda: params, lambda: grads

    return build


def ours_engine() -> Engine:
    from tinygrad_lec import Tensor, optim

    params, grads = problem()
    ps = [Tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = g
    opt = optim.Adam(ps, lr=LR_ADAM, betas=BETAS, eps=EPS)
    return opt.step, lambda: [p.data for p in ps], lambda: [p.grad for p in ps]


def torch_engine(name: str) -> Callable[[], Engine]:
    def build() -> Engine:
        import torch

        params, grads = problem()
        ps = [torch.from_numpy(p).requires_grad_() for p in params]
        for p, g in zip(ps, grads):
            p.grad = torch.from_numpy(g)
        opt = torch.optim.Adam(ps, lr=LR_ADAM, betas=BETAS, eps=EPS, **TORCH_OPTIONS[name])
        return opt.step, lambda: [p.detach().numpy() for p in ps], lambda: [p.grad.numpy() for p in ps]

    return build


BUILDERS: dict[str, Callable[[], Engine]] = {
    "numpy": numpy_engine(NumpyAdam), "numpy-fold": numpy_engine(NumpyAdamFold), "ours": ours_engine,
    **{e: torch_engine(e) for e in TORCH_OPTIONS},
}


def torch_info(threads: int) -> dict:
    return {**set_torch_threads(threads), "default_foreach": adam_foreach_default()}


# -- the agreement check --------------------------------------------------------------------------


def check(threads: int) -> dict:
    """CHECK_STEPS steps of every engine in this interpreter, compared with the numpy engine; and
    whether each engine left its gradients as they were."""
    info = torch_info(threads)
    initial, grads = problem()
    results, untouched = {}, {}
    for e in ENGINES:
        step, current, current_grads = BUILDERS[e]()
        for _ in range(CHECK_STEPS):
            step()
        results[e] = [np.array(p, copy=True) for p in current()]
        untouched[e] = all(np.array_equal(a, b) for a, b in zip(current_grads(), grads))
    base = results["numpy"]
    report: dict = {"info": info, "engines": {}}
    for e in ENGINES:
        ok = all(agrees(a, b, RTOL) for a, b in zip(results[e], base))
        params = max(rel_diff(a, b) for a, b in zip(results[e], base))
        update = max(rel_diff(a - p0, b - p0) for a, b, p0 in zip(results[e], base, initial))
        report["engines"][e] = {"ok": ok, "params": params, "update": update, "grads_untouched": untouched[e]}
    return report


# -- worker and driver ----------------------------------------------------------------------------


def worker(engine: str, threads: int, warmup: float, budget: float) -> dict:
    info = torch_info(threads) if engine.startswith("torch") else {}
    step = BUILDERS[engine]()[0]
    step()  # creates the optimizer state
    return {"info": info, **time_steps(step, warmup, budget)}


def run(args: list[str], env: dict) -> dict:
    return run_worker(__file__, args, env, name=" ".join(args))


# -- diagnostics ----------------------------------------------------------------------------------


def profile(engine: str, steps: int = 2000) -> None:
    profile_steps(BUILDERS[engine]()[0], steps, 50, 20,
                  f"cProfile of {steps} steps of {engine} (times are totals over the steps; numpy's ufuncs "
                  "called through operators are not listed: their time is in the caller's tottime)")


class Counting(np.ndarray):
    """An ndarray that records every ufunc call that allocates its result (no out=)."""

    log: list[tuple[str, tuple[int, ...]]] = []

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = tuple(np.asarray(x) if isinstance(x, Counting) else x for x in inputs)
        if out is not None:
            getattr(ufunc, method)(*plain, out=tuple(np.asarray(o) for o in out), **kwargs)
            return out[0] if len(out) == 1 else out
        result = getattr(ufunc, method)(*plain, **kwargs)
        Counting.log.append((ufunc.__name__, np.shape(result)))
        return result.view(Counting) if isinstance(result, np.ndarray) else result


class _AnyArrayNumpy:
    """numpy, except that asarray keeps subclasses (so a Counting gradient stays counted)."""

    def __getattr__(self, name):
        return np.asanyarray if name == "asarray" else getattr(np, name)


def temporaries() -> None:
    """The arrays of a parameter's size that one step allocates, per parameter, in ours and in the
    numpy engine (the second step: the first one creates the state)."""
    import tinygrad_lec.optim as optim_module
    from tinygrad_lec import Tensor, optim

    params, grads = problem()
    ps = [Tensor(p.view(Counting), requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = g.view(Counting)
    opt = optim.Adam(ps, lr=LR_ADAM, betas=BETAS, eps=EPS)
    saved = optim_module.np
    optim_module.np = _AnyArrayNumpy()  # only inside this diagnostic
    try:
        opt.step()
        Counting.log.clear()
        opt.step()
    finally:
        optim_module.np = saved
    ours = list(Counting.log)
    params, grads = problem()
    np_opt = NumpyAdam([p.view(Counting) for p in params], [g.view(Counting) for g in grads])
    np_opt.step()
    Counting.log.clear()
    np_opt.step()
    floor = list(Counting.log)
    n = len(params)
    full = [c for c in ours if c[1] != ()]
    print(f"arrays allocated by one step over {n} parameters (ufunc calls without out=)")
    print(f"  ours:  {len(full)} of parameter size ({len(full) / n:g} per parameter), "
          f"{len(ours) - len(full)} scalars")
    shape0 = params[0].shape
    print(f"    for W1 {shape0}: " + (", ".join(name for name, shape in full if shape == shape0) or "none"))
    print(f"  numpy: {len(floor)}")
    size = sum(p.size for p in params)
    mb = len(full) / n * size * 4 / 1e6
    print(f"  bytes allocated and written per step by ours' temporaries: {mb:.1f} MB (the parameters are "
          f"{size * 4 / 1e6:.2f} MB)")


def breakdown(steps: int = 2000) -> None:
    """Ours: median step time on the real parameters and on 1-element parameters (the same six,
    so the same Python work: the fixed overhead), against the numpy engine."""
    from tinygrad_lec import Tensor, optim

    def median(step: Callable[[], None]) -> float:
        return median_us(step, steps, 100)

    def ours_on(params, grads) -> Callable[[], None]:
        ps = [Tensor(p, requires_grad=True) for p in params]
        for p, g in zip(ps, grads):
            p.grad = g
        return optim.Adam(ps, lr=LR_ADAM, betas=BETAS, eps=EPS).step

    params, grads = problem()
    tiny = [np.zeros(1, np.float32) for _ in params], [np.full(1, 1e-3, np.float32) for _ in params]
    rows = {
        "ours, MLP parameters": median(ours_on(params, grads)),
        "ours, six 1-element parameters (fixed overhead)": median(ours_on(*tiny)),
        "numpy engine, MLP parameters": median(NumpyAdam(*problem()).step),
        "numpy-fold engine, MLP parameters": median(NumpyAdamFold(*problem()).step),
        "numpy engine, six 1-element parameters": median(NumpyAdam(*tiny).step),
    }
    big = params[0]
    rows["one full pass on W1: np.multiply(W1, 0.5, out=W1)"] = median(lambda: np.multiply(big, 0.5, out=big))
    rows["one allocating pass on W1: W1 * 0.5"] = median(lambda: big * 0.5)
    print(f"medians of {steps} steps, microseconds")
    for k, v in rows.items():
        print(f"  {k:55s} {v:9.1f}")


# -- main -----------------------------------------------------------------------------------------


def peer_verdict(ratio: float, peer: str) -> str:
    return verdict(ratio, TARGETS[peer], strict=peer in STRICT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_timing_arguments(ap, rounds=5, budget=1.0)
    add_threads_argument(ap)
    ap.add_argument("--profile", metavar="ENGINE", choices=ENGINES, help="cProfile one engine's step")
    ap.add_argument("--temporaries", action="store_true", help="count the arrays a step allocates")
    ap.add_argument("--breakdown", action="store_true", help="ours: fixed overhead vs elementwise work")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "check":
        reply(check(args.threads))
        return
    if args.worker:
        reply(worker(args.worker, args.threads, args.warmup, args.budget))
        return
    if args.profile or args.temporaries or args.breakdown:
        if args.profile and args.profile.startswith("torch"):
            torch_info(args.threads)
        if args.profile:
            profile(args.profile)
        elif args.temporaries:
            temporaries()
        else:
            breakdown()
        return
    quick_timing(args)

    env = thread_env(args.threads)
    n_params = sum(p.size for p in problem()[0])
    print(f"{machine_line()}; threads {args.threads} for every engine")
    print(f"one Adam step over the MLP {'-'.join(map(str, MLP_SIZES))}'s {n_params:,} float32 parameters "
          f"(6 arrays), fixed gradients; {args.rounds} rounds x {len(ENGINES)} engines, each run in a fresh "
          f"interpreter: {args.warmup} s warm-up, {args.budget} s of timed steps; medians over all timed "
          "steps")

    report = run(["--worker", "check", "--threads", str(args.threads)], env)
    info = report["info"]
    print(f"torch {info['torch']}, set_num_threads({args.threads}) (torch reports {info['torch_threads']}); "
          f"Adam(foreach=None) resolves to foreach={info['default_foreach']} on CPU")
    print(f"\nagreement after {CHECK_STEPS} steps with the numpy engine: max |a - b| / max |b| over the "
          "parameters, and over the updates (parameters minus initial values)")
    for e in ENGINES:
        r = report["engines"][e]
        print(f"  {e:14s} parameters {r['params']:8.1e}   updates {r['update']:8.1e}   "
              f"gradients untouched: {'yes' if r['grads_untouched'] else 'NO'}")
    bad = [e for e in ENGINES if not (report["engines"][e]["ok"] and report["engines"][e]["grads_untouched"])]
    if bad:
        sys.exit(f"\nFAILED: {', '.join(bad)} disagree(s) with the numpy engine (tolerance "
                 f"{tolerance(RTOL)}) or changed the gradients: no timing")
    print(f"  all agree ({tolerance(RTOL)} elementwise)", flush=True)

    res: dict[str, dict] = {e: {"times": [], "faults": [], "rounds": []} for e in ENGINES}
    for order in rounds(args.rounds, ENGINES):
        for e in order:
            out = run(["--worker", e, "--threads", str(args.threads), "--warmup", str(args.warmup),
                       "--budget", str(args.budget)], env)
            add_samples(res[e], out)
            res[e]["rounds"].append(statistics.median(out["times"]))

    med = median_times(res, 1e6)
    print(f"\n  {'engine':14s} {'us/step':>9s} {'p25':>8s} {'p75':>8s} {'steps':>7s} {'faults/step':>12s} "
          f"{'ours / engine':>14s}")
    for e in ENGINES:
        q = statistics.quantiles(res[e]["times"], n=4)
        print(f"  {e:14s} {med[e]:9.1f} {q[0] * 1e6:8.1f} {q[2] * 1e6:8.1f} {len(res[e]['times']):7d} "
              f"{statistics.fmean(res[e]['faults']):12.1f} {med['ours'] / med[e]:14.3f}")

    print("\ntargets (the issue); in brackets the same ratio round by round (engines of a round run back "
          "to back), and in how many rounds the target held")
    met = []
    for peer in TARGETS:
        ratio = med["ours"] / med[peer]
        met.append("MISSED" not in peer_verdict(ratio, peer))
        per_round = [a / b for a, b in zip(res["ours"]["rounds"], res[peer]["rounds"])]
        held = sum("MISSED" not in peer_verdict(r, peer) for r in per_round)
        print(f"  ours / {peer:14s} = {ratio:6.3f}  ({peer_verdict(ratio, peer)})  "
              f"[rounds {min(per_round):.3f} to {max(per_round):.3f}, held in {held}/{len(per_round)}]")
    print(f"  ours meets every target: {'yes' if all(met) else 'NO'}")
    print_load_at_end()


if __name__ == "__main__":
    main()
