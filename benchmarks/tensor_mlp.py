"""Tensor workloads on our engine and its peers, in one run (issue 3).

Workloads (every engine starts from the same initial weights, drawn once by ``init_params``):
  mlp32 / mlp128 / mlp512   MLP 784-256-256-10, ReLU, softmax cross-entropy (mean over the batch),
                            float32, Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8, PyTorch's rule);
                            one step = forward + backward + Adam update on a fixed random batch
                            (x ~ N(0, 1) of shape (B, 784), labels in 0..9), B = 32, 128, 512.
  tiny                      micrograd's demo: MLP 2-16-16-1, ReLU, float64, 100 points of
                            make_moons(noise=0.1, seed=0) with labels -1/+1, loss
                            mean(relu(1 - y*score)) + 1e-4*sum(p*p) over all parameters (as
                            micrograd's demo and benchmarks/scalar_mlp.py), plain SGD lr 0.1.
Engines:
  numpy     hand-written forward, closed-form backward, in-place update: the floor for any
            numpy-backed engine
  ours      tinygrad_lec.Tensor ops and functional.linear (x @ W.T + b as one op, like torch's
            nn.Linear); the update in place on p.data from p.grad (no optimizers yet)
  torch     torch.nn + F.cross_entropy + torch.optim.Adam / SGD at their defaults, with
            torch.set_num_threads set to the thread count of numpy's BLAS
  mygrad    mygrad.Tensor with mygrad.nnet's relu and softmax_crossentropy; update in place
  autograd  HIPS autograd's value_and_grad of a loss written with autograd.numpy; update in place
numpy, ours, mygrad and autograd share one in-place numpy Adam (``adam_update``).

Every (engine, workload) runs in a fresh interpreter, in interleaved rounds. Each run first takes
3 steps from the initial weights (their losses must agree with the numpy engine's: 1e-5 relative
in float32, 1e-10 in float64, or no ratio is printed), warms up, then times steps for a fixed time
budget; figures are medians over all timed steps of all rounds, ratios compare medians of the same
run. Page faults are resource.getrusage minor faults, counted around each timed step. By default
the environment is left as it is (numpy's BLAS threads, OPENBLAS_CORETYPE...) and torch uses as
many threads as numpy's BLAS; on this 2-core machine, while another process holds a core, the
2-thread BLAS and OpenMP steps slow down several-fold, so compare with a --threads 1 run.

    python benchmarks/tensor_mlp.py              # full run (3 to 4 minutes here)
    python benchmarks/tensor_mlp.py --quick      # a smoke run (about 20 s; one interpreter per engine)
    python benchmarks/tensor_mlp.py --threads 1  # every engine single-threaded (less noise when
                                                 # another process holds a core)
    python benchmarks/tensor_mlp.py --profile ours mlp128   # cProfile of one engine's step
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from collections.abc import Callable

import numpy as np
from _harness import (
    THREAD_VARS,
    adam_foreach_default,
    add_samples,
    add_timing_arguments,
    machine_line,
    median_times,
    print_load_at_end,
    profile_steps,
    quick_timing,
    reply,
    rounds,
    run_worker,
    set_torch_threads,
    thread_env,
    time_steps,
)

ENGINES = ["numpy", "ours", "torch", "mygrad", "autograd"]
WORKLOADS = ["mlp32", "mlp128", "mlp512", "tiny"]
MLP_SIZES = [784, 256, 256, 10]
TINY_SIZES = [2, 16, 16, 1]
LR_ADAM, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
LR_SGD, REG = 0.1, 1e-4
CHECK_STEPS = 3
TOLERANCE = {"mlp32": 1e-5, "mlp128": 1e-5, "mlp512": 1e-5, "tiny": 1e-10}
# ours / peer must be at most this (None: no target for this pair)
TARGETS: dict[tuple[str, str], float | None] = {
    ("mlp32", "numpy"): None, ("mlp128", "numpy"): 1.10, ("mlp512", "numpy"): 1.10, ("tiny", "numpy"): 2.0,
}
PEER_TARGET = 1.0  # faster than torch, mygrad and autograd at every size

Step = Callable[[], float]


# -- problems: the same weights and data in every interpreter -------------------------------------


def init_params(sizes: list[int], dtype) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...], W of shape (out, in): torch.nn.Linear's default init (Kaiming-uniform
    with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b), numpy seed 0."""
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype))
        params.append(rng.uniform(-bound, bound, fan_out).astype(dtype))
    return params


def problem(workload: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(initial params, inputs, targets). MLP: x float32 (B, 784), y int64 (B,) in 0..9.
    tiny: x float64 (100, 2), y float64 (100,) in {-1, +1}."""
    if workload == "tiny":
        from tinygrad_lec.data import make_moons

        X, y = make_moons(100, noise=0.1, seed=0)
        return init_params(TINY_SIZES, np.float64), X.astype(np.float64), 2.0 * y.astype(np.float64) - 1.0
    B = int(workload.removeprefix("mlp"))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, MLP_SIZES[0]), dtype=np.float32)
    y = rng.integers(0, MLP_SIZES[-1], B).astype(np.int64)
    return init_params(MLP_SIZES, np.float32), x, y


def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int) -> None:
    """PyTorch's Adam step t (1-based), in place on p, m and v; g is left untouched.
    One temporary of p's size; every other operation writes in place."""
    b1, b2 = BETAS
    bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
    m *= b1
    tmp = np.multiply(g, 1.0 - b1)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp /= math.sqrt(bc2)
    tmp += EPS
    np.divide(m, tmp, out=tmp)
    tmp *= LR_ADAM / bc1
    p -= tmp


class Adam:
    """Adam state for a list of numpy parameter arrays (the numpy, ours, mygrad and autograd engines)."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            adam_update(p, g, m, v, self.t)


# -- engines: each returns a step() that trains once and returns the loss as a float -------------


def numpy_mlp(params, x, y) -> Step:
    W1, b1, W2, b2, W3, b3 = params
    opt = Adam(params)
    B = len(y)
    rows = np.arange(B)

    def step() -> float:
        h1 = x @ W1.T
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
        # d loss / d z = (softmax - onehot) / B
        e /= s
        e[rows, y] -= 1.0
        e *= 1.0 / B
        dz = e
        gW3 = dz.T @ h2
        gb3 = dz.sum(axis=0)
        dh2 = dz @ W3
        dh2 *= h2 > 0
        gW2 = dh2.T @ h1
        gb2 = dh2.sum(axis=0)
        dh1 = dh2 @ W2
        dh1 *= h1 > 0
        gW1 = dh1.T @ x
        gb1 = dh1.sum(axis=0)
        opt.step([gW1, gb1, gW2, gb2, gW3, gb3])
        return loss

    return step


def numpy_tiny(params, X, y) -> Step:
    W1, b1, W2, b2, W3, b3 = params
    n = len(y)
    yc = y[:, None]

    def step() -> float:
        h1 = X @ W1.T
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        s = h2 @ W3.T
        s += b3
        margin = yc * s
        np.subtract(1.0, margin, out=margin)
        active = margin > 0
        reg = sum(np.vdot(p, p) for p in params)
        loss = float(np.maximum(margin, 0).mean() + REG * reg)
        ds = yc * active
        ds *= -1.0 / n
        gW3 = ds.T @ h2
        gb3 = ds.sum(axis=0)
        dh2 = ds @ W3
        dh2 *= h2 > 0
        gW2 = dh2.T @ h1
        gb2 = dh2.sum(axis=0)
        dh1 = dh2 @ W2
        dh1 *= h1 > 0
        gW1 = dh1.T @ X
        gb1 = dh1.sum(axis=0)
        for p, g in zip(params, (gW1, gb1, gW2, gb2, gW3, gb3)):
            g += (2 * REG) * p
            g *= LR_SGD
            p -= g
        return loss

    return step


def ours_mlp(params, x, y) -> Step:
    from tinygrad_lec import Tensor
    from tinygrad_lec.functional import linear

    ps = [Tensor(p, requires_grad=True) for p in params]
    W1, b1, W2, b2, W3, b3 = ps
    opt = Adam([p.data for p in ps])
    xt = Tensor(x)
    rows = np.arange(len(y))

    def step() -> float:
        h = linear(xt, W1, b1).relu()  # x @ W1.T + b1 as one op, as torch's nn.Linear
        h = linear(h, W2, b2).relu()
        logits = linear(h, W3, b3)
        loss = -logits.log_softmax(axis=1)[rows, y].mean()
        loss.backward()
        opt.step([p.grad for p in ps])
        for p in ps:
            p.grad = None
        return loss.item()

    return step


def ours_tiny(params, X, y) -> Step:
    from tinygrad_lec import Tensor
    from tinygrad_lec.functional import linear

    ps = [Tensor(p, requires_grad=True) for p in params]
    W1, b1, W2, b2, W3, b3 = ps
    Xt, yt = Tensor(X), Tensor(y[:, None])

    def step() -> float:
        h = linear(Xt, W1, b1).relu()
        h = linear(h, W2, b2).relu()
        score = linear(h, W3, b3)
        loss = (1 - yt * score).relu().mean() + REG * sum((p * p).sum() for p in ps)
        loss.backward()
        for p in ps:
            p.data -= LR_SGD * p.grad
            p.grad = None
        return loss.item()

    return step


def torch_model(params, dtype):
    import torch

    sizes = [params[0].shape[1]] + [W.shape[0] for W in params[0::2]]
    layers = []
    for i in range(len(sizes) - 1):
        layers += [torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dtype), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for t, p in zip(model.parameters(), params):
            t.copy_(torch.from_numpy(p))
    return model


def torch_mlp(params, x, y) -> Step:
    import torch
    import torch.nn.functional as F

    model = torch_model(params, torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=LR_ADAM, betas=BETAS, eps=EPS)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def torch_tiny(params, X, y) -> Step:
    import torch

    model = torch_model(params, torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=LR_SGD)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y[:, None])

    def step() -> float:
        opt.zero_grad()
        score = model(Xt)
        loss = torch.relu(1 - yt * score).mean() + REG * sum((p * p).sum() for p in model.parameters())
        loss.backward()
        opt.step()
        return loss.item()

    return step


def mygrad_mlp(params, x, y) -> Step:
    import mygrad as mg
    from mygrad.nnet.activations import relu
    from mygrad.nnet.losses import softmax_crossentropy

    ps = [mg.Tensor(p) for p in params]
    W1, b1, W2, b2, W3, b3 = ps
    opt = Adam([p.data for p in ps])

    def step() -> float:
        h = relu(x @ W1.T + b1)
        h = relu(h @ W2.T + b2)
        loss = softmax_crossentropy(h @ W3.T + b3, y)
        loss.backward()
        opt.step([p.grad for p in ps])
        for p in ps:
            p.null_grad()
        return loss.item()

    return step


def mygrad_tiny(params, X, y) -> Step:
    import mygrad as mg
    from mygrad.nnet.activations import relu

    ps = [mg.Tensor(p) for p in params]
    W1, b1, W2, b2, W3, b3 = ps
    yc = y[:, None]

    def step() -> float:
        h = relu(X @ W1.T + b1)
        h = relu(h @ W2.T + b2)
        score = h @ W3.T + b3
        loss = mg.mean(relu(1 - yc * score)) + REG * sum(mg.sum(p * p) for p in ps)
        loss.backward()
        for p in ps:
            p.data -= LR_SGD * p.grad
            p.null_grad()
        return loss.item()

    return step


def autograd_mlp(params, x, y) -> Step:
    import autograd.numpy as anp
    from autograd import value_and_grad
    from autograd.scipy.special import logsumexp

    rows = np.arange(len(y))

    def loss_fn(ps, x, y):
        W1, b1, W2, b2, W3, b3 = ps
        h = anp.maximum(anp.dot(x, W1.T) + b1, 0.0)
        h = anp.maximum(anp.dot(h, W2.T) + b2, 0.0)
        logits = anp.dot(h, W3.T) + b3
        logp = logits - logsumexp(logits, axis=1, keepdims=True)
        return -anp.mean(logp[rows, y])

    vg = value_and_grad(loss_fn)
    opt = Adam(params)

    def step() -> float:
        loss, grads = vg(params, x, y)
        opt.step(grads)
        return float(loss)

    return step


def autograd_tiny(params, X, y) -> Step:
    import autograd.numpy as anp
    from autograd import value_and_grad

    yc = y[:, None]

    def loss_fn(ps, X, y):
        W1, b1, W2, b2, W3, b3 = ps
        h = anp.maximum(anp.dot(X, W1.T) + b1, 0.0)
        h = anp.maximum(anp.dot(h, W2.T) + b2, 0.0)
        score = anp.dot(h, W3.T) + b3
        return anp.mean(anp.maximum(1.0 - y * score, 0.0)) + REG * sum(anp.sum(p * p) for p in ps)

    vg = value_and_grad(loss_fn)

    def step() -> float:
        loss, grads = vg(params, X, yc)
        for p, g in zip(params, grads):
            p -= LR_SGD * g
        return float(loss)

    return step


BUILDERS = {
    ("numpy", "mlp"): numpy_mlp, ("numpy", "tiny"): numpy_tiny,
    ("ours", "mlp"): ours_mlp, ("ours", "tiny"): ours_tiny,
    ("torch", "mlp"): torch_mlp, ("torch", "tiny"): torch_tiny,
    ("mygrad", "mlp"): mygrad_mlp, ("mygrad", "tiny"): mygrad_tiny,
    ("autograd", "mlp"): autograd_mlp, ("autograd", "tiny"): autograd_tiny,
}


def make_step(engine: str, workload: str) -> Step:
    kind = "tiny" if workload == "tiny" else "mlp"
    params, x, y = problem(workload)
    return BUILDERS[engine, kind](params, x, y)


# -- BLAS threads ------------------------------------------------------------------------------------


def blas_info() -> dict:
    """numpy's BLAS: threadpoolctl's report if installed, else OpenBLAS asked directly through
    ctypes (the library numpy loaded, found in /proc/self/maps), else np.show_config's summary."""
    try:
        from threadpoolctl import threadpool_info

        for d in threadpool_info():
            if d.get("user_api") == "blas":
                return {"source": "threadpoolctl", "library": f"{d.get('internal_api')} {d.get('version')}",
                        "threads": d.get("num_threads"), "arch": d.get("architecture")}
    except ImportError:
        pass
    build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info = {"source": "np.show_config", "library": f"{build.get('name')} {build.get('version')}",
            "threads": None, "arch": None}
    try:
        import ctypes

        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
        for path in sorted(libs):
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
                try:
                    nthreads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                    corename = getattr(lib, f"{prefix}_get_corename{suffix}")
                except AttributeError:
                    continue
                corename.restype = ctypes.c_char_p
                info.update(source="OpenBLAS via ctypes", threads=int(nthreads()),
                            arch=corename().decode())
                return info
    except OSError:
        pass
    return info


# -- worker and driver ------------------------------------------------------------------------------


def measure(step: Step, warmup: float, budget: float) -> dict:
    losses = [step() for _ in range(CHECK_STEPS)]  # from the initial weights: compared across engines
    return {"losses": losses, **time_steps(step, warmup, budget)}


def worker(engine: str, workloads: list[str], threads: int, warmup: float, budget: float) -> dict:
    info: dict = {"blas": blas_info()}
    if engine == "torch":
        info.update(set_torch_threads(threads), adam_foreach_default=adam_foreach_default())
    return {"info": info, "runs": {w: measure(make_step(engine, w), warmup, budget) for w in workloads}}


def run(engine: str, workloads: list[str], threads: int, warmup: float, budget: float, env: dict) -> dict:
    args = ["--worker", engine, "--workload", ",".join(workloads), "--threads", str(threads),
            "--warmup", str(warmup), "--budget", str(budget)]
    return run_worker(__file__, args, env, name=f"{engine} {workloads}")


def profile(engine: str, workload: str, steps: int = 200) -> None:
    profile_steps(make_step(engine, workload), steps, 20, 25,
                  f"cProfile of {steps} steps of {engine} on {workload} (times are totals over the steps)")


def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"(target <= {target:.2f}: {'ok' if ratio <= target else 'MISSED'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_timing_arguments(ap, rounds=3, budget=1.5,
                         quick_help="1 round, 0.2 s per run, one interpreter per engine")
    ap.add_argument("--threads", type=int, help="BLAS / OpenMP threads for every engine (sets "
                    "OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS for the workers); "
                    "default: the environment as it is, torch matching numpy's BLAS")
    ap.add_argument("--profile", nargs=2, metavar=("ENGINE", "WORKLOAD"), help="cProfile one engine's step")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        reply(worker(args.worker, args.workload.split(","), args.threads or 1, args.warmup, args.budget))
        return
    if args.profile:
        profile(*args.profile)
        return
    quick_timing(args)

    env = thread_env(args.threads or None)
    blas = run("numpy", ["tiny"], 1, 0.0, 0.0, env)["info"]["blas"]  # as the workers see it
    threads = args.threads or blas["threads"] or os.cpu_count() or 1
    print(machine_line("torch", "mygrad", "autograd"))
    print(f"numpy BLAS in the workers ({blas['source']}): {blas['library']}, threads {blas['threads']}, "
          f"core {blas['arch']}; "
          + ", ".join(f"{v}={env.get(v, '(unset)')}" for v in ("OPENBLAS_CORETYPE", *THREAD_VARS)))
    print(f"{args.rounds} rounds x {len(ENGINES) * len(WORKLOADS)} runs; each run: {CHECK_STEPS} "
          f"check steps, {args.warmup} s warm-up, {args.budget} s of timed steps; medians over all timed "
          "steps")

    res: dict[tuple[str, str], dict] = {}
    for order in rounds(args.rounds, ENGINES):
        # --quick runs all workloads of an engine in one interpreter, to spare the imports
        for ws in [WORKLOADS] if args.quick else [[w] for w in WORKLOADS]:
            for e in order:
                out = run(e, ws, threads, args.warmup, args.budget, env)
                for w, o in out["runs"].items():
                    acc = res.setdefault((e, w), {"times": [], "faults": [], "losses": o["losses"],
                                                  "info": out["info"]})
                    add_samples(acc, o)

    torch_info = res["torch", WORKLOADS[0]]["info"]
    why = "as --threads asks" if args.threads else "to match numpy's BLAS threads"
    print(f"torch: set_num_threads({threads}) {why} (torch reports "
          f"{torch_info['torch_threads']}); torch.optim.Adam defaults, foreach resolves to "
          f"{torch_info['adam_foreach_default']} on CPU (the per-parameter loop)")

    # agreement with the numpy engine over the first steps
    bad: dict[str, set[str]] = {w: set() for w in WORKLOADS}
    print(f"\nagreement: max relative |loss - loss numpy| over the first {CHECK_STEPS} steps")
    print(f"  {'':10s}" + "".join(f"{e:>11s}" for e in ENGINES[1:]) + "   tolerance")
    for w in WORKLOADS:
        ref = res["numpy", w]["losses"]
        cells = []
        for e in ENGINES[1:]:
            d = max(abs(a - b) / abs(b) for a, b in zip(res[e, w]["losses"], ref))
            if not d <= TOLERANCE[w]:
                bad[w].add(e)
            cells.append(f"{d:11.1e}")
        print(f"  {w:10s}" + "".join(cells) + f"   {TOLERANCE[w]:.0e}   (losses numpy: "
              + ", ".join(f"{v:.6g}" for v in ref) + ")")

    med = median_times(res, 1e3)
    print("\nms/step (median; timed steps per engine in brackets)")
    print(f"  {'':10s}" + "".join(f"{e:>16s}" for e in ENGINES))
    for w in WORKLOADS:
        print(f"  {w:10s}" + "".join(f"{med[e, w]:9.3f} [{len(res[e, w]['times']):5d}]" for e in ENGINES))

    print("\nminor page faults per step (mean / median)")
    print(f"  {'':10s}" + "".join(f"{e:>16s}" for e in ENGINES))
    for w in WORKLOADS:
        cells = []
        for e in ENGINES:
            f = res[e, w]["faults"]
            cells.append(f"{statistics.fmean(f):9.1f} / {statistics.median(f):4.0f}")
        print(f"  {w:10s}" + "".join(cells))

    print("\nratios ours / peer (same run)")
    for w in WORKLOADS:
        for peer in ["numpy", "torch", "mygrad", "autograd"]:
            target = TARGETS[w, peer] if peer == "numpy" else PEER_TARGET
            if "ours" in bad[w] or peer in bad[w]:
                who = "ours" if "ours" in bad[w] else peer
                print(f"  {w:8s} ours / {peer:9s} = (refused: {who} disagrees with numpy)")
                continue
            ratio = med["ours", w] / med[peer, w]
            print(f"  {w:8s} ours / {peer:9s} = {ratio:6.3f}  {verdict(ratio, target)}".rstrip())
    print_load_at_end()
    if any(bad.values()):
        sys.exit("some engines disagree with the numpy engine: their comparisons are void")


if __name__ == "__main__":
    main()
