"""What the benchmark scripts share: fresh-interpreter workers, interleaved rounds, timed steps with
minor page faults, medians, agreement tests, verdicts, thread settings and the header lines.

Not a benchmark. The scripts import it as ``_harness`` (run as ``python benchmarks/<name>.py``, a
script's own directory is sys.path[0], for the script and for the workers it starts from its own
file). A worker prints one JSON object (``reply``); ``run_worker`` starts one and returns it.
numpy and torch are imported only inside the functions that use them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator

PYTHON = sys.version.split()[0]
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- the driver: workers, rounds, thread settings, header ---------------------------------------------


def run_worker(script: str, args: list[str], env: dict[str, str] | None = None,
               name: str | None = None) -> dict:
    """Run ``python script *args`` in a fresh interpreter and return the JSON object it printed.
    If it fails: with a name, exit with "worker <name> failed:" and its stderr; without one, raise
    subprocess.CalledProcessError (its stderr attached)."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        if name is not None:
            sys.exit(f"worker {name} failed:\n{out.stderr}")
        out.check_returncode()
    return json.loads(out.stdout)


def reply(result: dict) -> None:
    """A worker's answer to run_worker."""
    print(json.dumps(result))


def rounds(n: int, names: list[str], rotate: bool = True) -> Iterator[list[str]]:
    """For each of n rounds, the names in the order to run them: rotated by one each round (so that
    no one always runs first) unless rotate is False. "round r/n done" goes to stderr as each round
    ends."""
    for r in range(n):
        k = r % len(names) if rotate else 0
        yield names[k:] + names[:k]
        print(f"round {r + 1}/{n} done", file=sys.stderr)


def thread_env(threads: int | None) -> dict[str, str]:
    """os.environ for the workers, with THREAD_VARS set to threads (None: the environment as it is)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    return env


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def print_load_at_end() -> None:
    print(f"load average at the end {load_average()}")


def machine_line(*packages: str) -> str:
    """'python 3.11.7; numpy 2.1.3; <package> <version>; ...; 2 CPUs; load average 0.91'."""
    from importlib.metadata import version

    import numpy as np

    return "; ".join([f"python {PYTHON}", f"numpy {np.__version__}", *(f"{p} {version(p)}" for p in packages),
                      f"{os.cpu_count()} CPUs", f"load average {load_average()}"])


def add_timing_arguments(ap: argparse.ArgumentParser, rounds: int, budget: float,
                         quick_help: str = "1 round, 0.2 s per run") -> None:
    """--rounds, --budget, --warmup and --quick (see quick_timing)."""
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--budget", type=float, default=budget, help="seconds of timed steps per run")
    ap.add_argument("--warmup", type=float, default=0.3, help="seconds of warm-up steps per run")
    ap.add_argument("--quick", action="store_true", help=quick_help)


def quick_timing(args: argparse.Namespace) -> None:
    """--quick: 1 round, 0.05 s of warm-up and 0.2 s of timed steps per run."""
    if args.quick:
        args.rounds, args.budget, args.warmup = 1, 0.2, 0.05


def add_threads_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=1, help="threads for every engine (OPENBLAS_NUM_THREADS, "
                    "OMP_NUM_THREADS, MKL_NUM_THREADS, torch.set_num_threads); default 1")


# -- torch's settings (imported only when asked) ----------------------------------------------------


def set_torch_threads(threads: int) -> dict:
    """torch.set_num_threads(threads); torch's version and the thread count it then reports."""
    import torch

    torch.set_num_threads(threads)
    return {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def adam_foreach_default():
    """What torch.optim.Adam(foreach=None) picks for CPU tensors (a private helper: "unknown" if
    it is gone)."""
    import torch
    from torch.optim import optimizer

    p = [torch.zeros(1, requires_grad=True)]
    try:
        return optimizer._default_to_fused_or_foreach(p, False, False)[1]
    except Exception:
        return "unknown"


# -- timing inside a worker -------------------------------------------------------------------------


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_steps(step: Callable[[], object], warmup: float, budget: float) -> dict:
    """step() for warmup seconds, then timed for budget seconds (at least 3, at most 100,000 steps):
    {"times": seconds per step, "faults": minor page faults per step}."""
    t_end = time.perf_counter() + warmup
    while time.perf_counter() < t_end:
        step()
    times, faults = [], []
    t_end = time.perf_counter() + budget
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 100_000):
        f0 = minor_faults()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        faults.append(minor_faults() - f0)
        times.append(t1 - t0)
    return {"times": times, "faults": faults}


def median_us(fn: Callable[[], object], steps: int, warmup: int) -> float:
    """Median microseconds of fn() over steps calls, after warmup calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def profile_steps(step: Callable[[], object], steps: int, warmup: int, top: int, title: str) -> None:
    """cProfile of steps calls of step() after warmup calls: the title, then the top functions by tottime."""
    import cProfile
    import pstats

    for _ in range(warmup):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    print(title)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


# -- the driver's figures ---------------------------------------------------------------------------


def add_samples(acc: dict, out: dict) -> None:
    """Append a worker's timed steps (time_steps' "times" and "faults") to those of earlier rounds."""
    acc["times"] += out["times"]
    acc["faults"] += out["faults"]


def median_times(res: dict, unit: float) -> dict:
    """{key: median of res[key]["times"] * unit} (unit 1e3: milliseconds, 1e6: microseconds)."""
    return {k: statistics.median(v["times"]) * unit for k, v in res.items()}


def field_medians(runs: list[dict], keys: Iterable[str]) -> dict:
    """{key: median over the runs of run[key]}."""
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def agrees(a, b, rtol: float) -> bool:
    """|a - b| <= rtol |b| + rtol max|b| elementwise (see tolerance)."""
    import numpy as np

    return bool(np.all(np.abs(a - b) <= rtol * np.abs(b) + rtol * np.max(np.abs(b))))


def tolerance(rtol: float) -> str:
    return f"|a - b| <= {rtol:g} |b| + {rtol:g} max|b|"


def rel_diff(a, b) -> float:
    """max |a - b| / max |b|."""
    import numpy as np

    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def verdict(ratio: float, target: float, strict: bool = False) -> str:
    """'target <= 2: met' ('target < 1: MISSED' with strict: the ratio must be below the target)."""
    met = ratio < target if strict else ratio <= target
    return f"target {'<' if strict else '<='} {target:g}: {'met' if met else 'MISSED'}"
