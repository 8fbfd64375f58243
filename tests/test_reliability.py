"""Reliability (RELIABILITY.md): a training step leaves nothing of its graph behind once the user's
references are gone (weakrefs, the garbage collector off), many training steps of the demo network
keep traced memory flat, deep chains are freed by reference counting; no_grad, name_scope and
detect_anomaly are per thread and per asyncio task, so two threads training separate models get
exactly the numbers each gets alone; a model file that is truncated, corrupted, of another
architecture or not ours raises a clear error and leaves the model bit-identical.

The long runs reported in RELIABILITY.md use these environment variables:

    RELIABILITY_TRAIN_STEPS   training steps of the memory check (default 300; reported: 1000)
    RELIABILITY_THREAD_STEPS  training steps per thread (default 20; reported: 200)
    RELIABILITY_FLIP_MASKS    byte masks for the corruption check, hex, comma separated
                              (default "ff"; reported: "1,2,4,8,10,20,40,80,ff")

Tests that measure print their figures (run pytest with -s to see them).
"""

import asyncio
import gc
import io
import os
import pickle
import sys
import threading
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_lec as tl
from tinygrad_lec import Tensor, Value, data, nn, optim, pool, scalar
from tinygrad_lec import functional as F
from tinygrad_lec.graph import topological_order
from tinygrad_lec.lecture import demo

TRAIN_STEPS = int(os.environ.get("RELIABILITY_TRAIN_STEPS", "300"))
WARM_UP = 100  # steps before the first measurement: Adam's state, the pool's arrays, numpy's caches
THREAD_STEPS = int(os.environ.get("RELIABILITY_THREAD_STEPS", "20"))
FLIP_MASKS = [int(m, 16) for m in os.environ.get("RELIABILITY_FLIP_MASKS", "ff").split(",")]


class gc_off:
    """The cyclic garbage collector off inside the block (as it was before, after it), so that only
    reference counting frees anything: a reference cycle would keep its objects alive."""

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.collect()  # start from a clean heap: earlier garbage is not ours to report
        gc.disable()

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()


def demo_network(seed=0):
    """The demo's network and optimizer (tinygrad_lec.lecture.demo.run on spirals)."""
    net = nn.MLP([2, 64, 64, 3], batchnorm=True, dropout=0.1, seed=seed)
    return net, optim.Adam(net.parameters(), lr=0.01)


def alive(refs):
    return [r() for r in refs if r() is not None]


# -- memory: the graph of a training step dies with the user's references ---------------------------


def test_tensor_training_step_leaves_no_node_vjp_or_array_of_its_graph():
    net, opt = demo_network()
    X, y = data.make_spirals(64, n_classes=3, seed=0)
    with gc_off():
        out = net(Tensor(X[:32]))
        loss = F.cross_entropy(out, y[:32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        interior = [n for n in topological_order(loss) if n.op]
        leaves = {id(a) for p in net.parameters() for a in (p.data, p.grad)}  # theirs to keep
        nodes = [weakref.ref(n) for n in interior]
        # the vjps that close over arrays (module-level ones such as _negative live on)
        vjps = [weakref.ref(f) for n in interior for f in (n._da, n._db) if getattr(f, "__closure__", None)]
        # arrays the pool may take back on purpose (large ones) are not leaks; a (32, 64) float64
        # array is below pool.MIN_BYTES, so every interior array here should die
        arrays = [weakref.ref(a) for n in interior for a in (n.data, n.grad)
                  if isinstance(a, np.ndarray) and id(a) not in leaves and not pool.is_large(a.nbytes)]
        assert len(nodes) > 20 and len(vjps) > 20 and len(arrays) > 20
        assert {"batchnorm", "dropout"} <= {n.scope.split("/")[0] for n in interior}
        del interior, loss, out
        assert alive(nodes) == [], [n.op for n in alive(nodes)]
        assert alive(vjps) == [] and alive(arrays) == []
        assert gc.collect() == 0  # and no unreachable cycle waits for the collector
    assert all(p.grad is not None for p in net.parameters())  # leaves keep their gradients


def test_value_training_step_leaves_no_node_of_its_graph():
    net = scalar.MLP(2, [8, 8, 3], seed=0)
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    X, y = data.make_spirals(6, n_classes=3, seed=0)
    with gc_off():
        outs = [net([float(a), float(b)]) for a, b in X]
        loss = sum(((o - (1.0 if k == label else 0.0)) ** 2 for out, label in zip(outs, y)
                    for k, o in enumerate(out)), Value(0.0)) / len(X)
        opt.zero_grad()
        loss.backward()
        opt.step()
        nodes = [weakref.ref(n) for n in topological_order(loss) if n.op]
        assert len(nodes) > 500
        del outs, loss
        assert alive(nodes) == []
        assert gc.collect() == 0
    assert any(p.grad != 0.0 for p in net.parameters())  # leaves keep their gradients


def test_training_steps_of_the_demo_network_keep_traced_memory_flat():
    """Traced memory after TRAIN_STEPS steps is within 10% of its value after WARM_UP steps. The
    loop is the demo's (spirals, batches of 32, an evaluation pass after every epoch) with the
    collector off. Before each measurement gc.collect() must find nothing (no cycles); it also
    empties the interpreter's free lists, which fill up to a fixed size (RELIABILITY.md). The
    array pool must not grow after warm-up either."""
    X_train, X_test, y_train, y_test = demo.load("spirals", seed=0, quick=False)
    net, opt = demo_network()
    loader = data.DataLoader(X_train, y_train, batch_size=32, seed=0, drop_last=True)
    traced, raw, held = {}, {}, {"warm-up": 0, "after": 0}
    was_tracing = tracemalloc.is_tracing()
    with gc_off():
        tracemalloc.start()
        try:
            step = 0
            while step < TRAIN_STEPS:
                net.train()
                for xb, yb in loader:
                    loss = F.cross_entropy(net(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    del loss
                    step += 1
                    phase = "warm-up" if step <= WARM_UP else "after"
                    held[phase] = max(held[phase], pool.held())
                    if step in (WARM_UP, TRAIN_STEPS):
                        raw[step] = tracemalloc.get_traced_memory()[0]
                        assert gc.collect() == 0, f"step {step}: the collector found cycles"
                        traced[step] = tracemalloc.get_traced_memory()[0]
                    if step == TRAIN_STEPS:
                        break
                net.eval()
                demo.accuracy(net, X_test, y_test)
                demo.accuracy(net, X_train, y_train)
        finally:
            if not was_tracing:
                tracemalloc.stop()
    growth = traced[TRAIN_STEPS] / traced[WARM_UP] - 1
    raw_growth = raw[TRAIN_STEPS] / raw[WARM_UP] - 1
    print(f"\ntraced memory: step {WARM_UP} {traced[WARM_UP]:,} B, step {TRAIN_STEPS} "
          f"{traced[TRAIN_STEPS]:,} B ({growth:+.2%}); before gc.collect() {raw[WARM_UP]:,} B and "
          f"{raw[TRAIN_STEPS]:,} B ({raw_growth:+.2%}); pool held at most {held['warm-up']} arrays "
          f"in warm-up, {held['after']} after")
    assert abs(growth) <= 0.10
    assert held["after"] <= held["warm-up"]


@pytest.mark.parametrize("kind", ["Value", "Tensor"])
def test_a_deep_chain_is_freed_by_reference_counting_alone(kind):
    """The 1,000,000-node chain of RELIABILITY.md, short: every node dies when the last reference
    to the root goes, with the collector off. (Its time is measured by benchmarks/free_chain.py.)"""
    steps = 50_000 if kind == "Value" else 10_000
    with gc_off():
        x0 = Value(1.0) if kind == "Value" else Tensor(1.0, requires_grad=True)
        x = x0
        refs = []
        for i in range(steps):
            x = x * 1.0000001 + 0.0
            if i % 1000 == 0:
                refs.append(weakref.ref(x))
        x.backward()
        expected = x0.grad
        del x
        assert alive(refs) == []
        assert gc.collect() == 0
    assert expected == pytest.approx(1.0000001**steps, rel=1e-12)


# -- threads and tasks: the graph-building mode belongs to one thread or task -------------------------


def train_in_context(kind, steps, sync=lambda: None):
    """A separate model trained ``steps`` steps; returns (losses, final state_dict, problems).

    kind "evaluating": each step trains, then evaluates under no_grad;
    kind "scoped": each step trains inside name_scope("worker") and detect_anomaly().
    ``sync()`` is called twice a step while inside no_grad (resp. the scope), so that two threads
    that share a barrier are both inside their contexts between the two calls. Batches of 256
    make (256, 64) activations, large enough to go through the array pool both threads share.
    """
    seed = {"evaluating": 1, "scoped": 2}[kind]
    net, opt = demo_network(seed)
    X, y = data.make_spirals(768, n_classes=3, seed=seed)
    loader = data.DataLoader(X[:512], y[:512], batch_size=256, seed=seed, drop_last=True)
    X_eval = Tensor(X[512:])
    losses, problems = [], []

    def check(condition, what):
        if not condition:
            problems.append(f"{kind}, step {len(losses)}: {what}")

    def train_step(xb, yb, scope):
        loss = F.cross_entropy(net(xb), yb)
        check(loss.op != "" and tl.is_grad_enabled(), "no graph was built")
        scopes = {n.scope for n in topological_order(loss) if n.op}  # e.g. "worker/batchnorm"
        mine = (lambda s: s == scope or s.startswith(scope + "/")) if scope else \
            (lambda s: not s.startswith("worker"))
        check(all(mine(s) for s in scopes), f"nodes in scopes {scopes}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())

    batches = (b for _ in range(steps) for b in loader)
    for _ in range(steps):
        if kind == "evaluating":
            net.train()
            train_step(*next(batches), scope="")
            net.eval()
            with tl.no_grad():
                sync()
                out = net(X_eval)
                check(out.is_leaf and not out.requires_grad, "no_grad built a graph")
                check(tl.current_scope() == "" and not tl.is_anomaly_enabled(), "the other's mode leaked")
                losses.append(float(out.data.sum()))
                sync()
        else:
            with tl.name_scope("worker"), tl.detect_anomaly():
                sync()
                check(tl.is_anomaly_enabled() and tl.is_grad_enabled(), "the other's no_grad leaked")
                train_step(*next(batches), scope="worker")
                sync()
    return losses, net.state_dict(), problems


@pytest.fixture
def frequent_thread_switches():
    """Switch threads every microsecond (default 5 ms), so the two threads interleave op by op."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_threads(barrier, *targets):
    """Run each target in its own thread; return their results. An error in one thread breaks
    ``barrier`` (so the other does not wait forever) and is raised here."""
    results, errors = [None] * len(targets), []

    def run(i, target):
        try:
            results[i] = target()
        except BaseException as e:  # noqa: BLE001 - raised in the main thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    return results


def test_two_threads_training_concurrently_get_exactly_their_results_alone(frequent_thread_switches):
    alone = {kind: train_in_context(kind, THREAD_STEPS) for kind in ("evaluating", "scoped")}
    barrier = threading.Barrier(2, timeout=120)
    sync = barrier.wait
    results = run_threads(barrier, lambda: train_in_context("evaluating", THREAD_STEPS, sync),
                          lambda: train_in_context("scoped", THREAD_STEPS, sync))
    for kind, (losses, state, problems) in zip(("evaluating", "scoped"), results):
        assert problems == []
        assert alone[kind][2] == []
        assert losses == alone[kind][0], f"{kind}: losses differ from the run alone"
        for key in state:
            assert np.array_equal(state[key], alone[kind][1][key]), f"{kind}: {key} differs"
    assert tl.is_grad_enabled() and tl.current_scope() == "" and not tl.is_anomaly_enabled()


@pytest.mark.parametrize("make", [tl.no_grad, lambda: tl.name_scope("shared"), tl.detect_anomaly],
                         ids=["no_grad", "name_scope", "detect_anomaly"])
def test_one_context_object_entered_by_two_threads_restores_each_threads_mode(make):
    """As with torch, one no_grad() object may be shared (made once at module level and entered as
    ``with NO_GRAD:`` by every worker); each thread must get its own mode back however the two
    threads' enters and exits interleave."""
    shared = make()
    barrier = threading.Barrier(2, timeout=30)
    outside = (tl.is_grad_enabled(), tl.current_scope(), tl.is_anomaly_enabled())

    def first():
        with shared:
            barrier.wait()  # 1: inside
            barrier.wait()  # 2: the second thread entered after us; we leave first
        mode = (tl.is_grad_enabled(), tl.current_scope(), tl.is_anomaly_enabled())
        barrier.wait()  # 3
        return mode

    def second():
        barrier.wait()  # 1
        with shared:
            barrier.wait()  # 2
            barrier.wait()  # 3: the first thread has left
        return tl.is_grad_enabled(), tl.current_scope(), tl.is_anomaly_enabled()

    results = run_threads(barrier, first, second)
    assert results == [outside, outside]


def test_asyncio_tasks_each_keep_their_own_mode_across_awaits():
    async def evaluating():
        with tl.no_grad():
            await asyncio.sleep(0)  # the other task runs here, inside its scope
            return (Value(1.0) * 2.0).is_leaf, tl.current_scope()

    async def scoped():
        with tl.name_scope("task"):
            await asyncio.sleep(0)
            y = Value(1.0) * 2.0
            return y.is_leaf, y.scope

    async def both():
        return await asyncio.gather(evaluating(), scoped())

    assert asyncio.run(both()) == [(True, ""), (False, "task")]


# -- save and load: bad files raise and change nothing (tests/test_nn.py has the basic cases) -------


def small_net(seed):
    """Linear, BatchNorm1d (with non-default running statistics), ReLU, Dropout, Linear."""
    net = nn.MLP([3, 4, 2], batchnorm=True, dropout=0.5, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        net(Tensor(rng.normal(2.0, 3.0, size=(8, 3))))
    return net


def snapshot(module):
    """Every parameter and buffer bit for bit, and which array object holds it."""
    state = {"param " + k: p.data for k, p in module.named_parameters()}
    state.update({"buffer " + k: b for k, b in module.named_buffers()})
    return {k: (id(v), v.dtype, v.shape, v.tobytes()) for k, v in state.items()}


def npz_bytes(save=np.savez, **arrays):
    buffer = io.BytesIO()
    save(buffer, **arrays)
    return buffer.getvalue()


def last_entry_reshaped(state):
    # the archive's last entry is the one a loader that writes as it goes would meet last
    key = list(state)[-1]
    return npz_bytes(**{**state, key: np.zeros(state[key].shape + (2,))})


NOT_OURS = {
    "pickled state_dict": lambda state: pickle.dumps(state),
    "pickled list": lambda state: pickle.dumps(list(state.values())),
    "npz of unrelated arrays": lambda state: npz_bytes(images=np.zeros((2, 8, 8)), labels=np.arange(2)),
    "npz of unnamed arrays": lambda state: npz_bytes(**{f"arr_{i}": v for i, v in enumerate(state.values())}),
    "empty npz": lambda state: npz_bytes(),
    "npz of complex arrays": lambda state: npz_bytes(**{k: v.astype(complex) for k, v in state.items()}),
    "npz of strings": lambda state: npz_bytes(**{k: np.full(v.shape, "0.5") for k, v in state.items()}),
    "last entry of another shape": last_entry_reshaped,
    "compressed, truncated": lambda state: npz_bytes(np.savez_compressed, **state)[:-30],
    "csv text": lambda state: b"0.weight,0.bias\n1.0,2.0\n",
    "zip of text files": lambda state: _zip_of_text(state),
}


def _zip_of_text(state):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key in state:
            archive.writestr(key + ".npy", "not an array")
    return buffer.getvalue()


LOADERS = {"nn.load_into": nn.load_into, "Module.load": lambda module, path: module.load(path)}


@pytest.mark.parametrize("load", LOADERS.values(), ids=LOADERS.keys())
@pytest.mark.parametrize("contents", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_loading_a_file_that_is_not_ours_raises_value_error_and_changes_nothing(tmp_path, contents, load):
    path = tmp_path / "weird-model.npz"
    path.write_bytes(contents(small_net(1).state_dict()))
    net = small_net(0)
    before = snapshot(net)
    with pytest.raises(ValueError) as info:
        load(net, path)
    message = str(info.value)
    assert "weird-model.npz" in message or any(key in message for key in net.state_dict()), message
    assert snapshot(net) == before


def test_module_load_of_a_missing_file_raises_file_not_found_and_changes_nothing(tmp_path):
    net = small_net(0)
    before = snapshot(net)
    with pytest.raises(FileNotFoundError):
        net.load(tmp_path / "missing.npz")
    assert snapshot(net) == before


def load_outcome(net, path, expected):
    """("ValueError", message): it named the path or a key and left the model unchanged;
    ("loaded", ""): the model holds exactly ``expected``; else (what happened, message)."""
    before = snapshot(net)
    try:
        nn.load_into(net, path)
    except ValueError as e:
        named = str(path) in str(e) or any(key in str(e) for key in expected)
        if snapshot(net) != before:
            return "ValueError, model changed", str(e)
        return ("ValueError" if named else "ValueError naming neither path nor key"), str(e)
    except Exception as e:  # noqa: BLE001 - the outcome under test
        return type(e).__module__ + "." + type(e).__name__ + (
            "" if snapshot(net) == before else ", model changed"), str(e)
    state = net.state_dict()
    return ("loaded", "") if all(np.array_equal(state[k], expected[k]) for k in expected) else \
        ("loaded other data", "")


def outcomes_of_corruptions(tmp_path, expected, corruptions):
    """{outcome: [count, first corruption giving it, its message]} over (name, bytes) pairs."""
    path = tmp_path / "corrupt.npz"
    net, outcomes = small_net(0), {}
    for name, contents in corruptions:
        path.write_bytes(contents)
        outcome, message = load_outcome(net, path, expected)
        message = message.replace(str(path), "<path>")
        outcomes.setdefault(outcome, [0, name, message[:100]])[0] += 1
        if outcome == "loaded":
            net = small_net(0)
    return outcomes


def test_a_file_cut_at_any_byte_raises_value_error_and_changes_nothing(tmp_path):
    nn.save(small_net(3), tmp_path / "good.npz")
    good, expected = (tmp_path / "good.npz").read_bytes(), small_net(3).state_dict()
    cuts = ((f"first {n} bytes", good[:n]) for n in range(len(good)))
    outcomes = outcomes_of_corruptions(tmp_path, expected, cuts)
    print(f"\n{len(good)} truncations: " + "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
    assert set(outcomes) == {"ValueError"}, outcomes


WRITERS = {"nn.save": lambda net, path: nn.save(net, path),
           "np.savez_compressed": lambda net, path: np.savez_compressed(path, **net.state_dict())}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_a_corrupted_byte_anywhere_raises_value_error_or_loads_the_saved_state(tmp_path, write):
    """Every byte of a saved file xor each mask in RELIABILITY_FLIP_MASKS. The arrays are
    CRC-checked, so a flip either is caught (ValueError naming the path, model unchanged) or hit a
    byte that does not matter (a timestamp): then the saved state loads exactly. A compressed
    archive (np.savez_compressed, which load_into reads) must behave the same."""
    write(small_net(3), tmp_path / "good.npz")
    good, expected = (tmp_path / "good.npz").read_bytes(), small_net(3).state_dict()

    def flipped():
        for mask in FLIP_MASKS:
            for i in range(len(good)):
                contents = bytearray(good)
                contents[i] ^= mask
                yield f"byte {i} ^ {mask:#x}", bytes(contents)

    outcomes = outcomes_of_corruptions(tmp_path, expected, flipped())
    print(f"\n{len(good) * len(FLIP_MASKS)} corruptions: "
          + "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
    assert set(outcomes) <= {"ValueError", "loaded"}, outcomes


@pytest.mark.parametrize("contents", [
    lambda good: good[: len(good) // 2], lambda good: good[:-1], lambda good: b"PK\x03\x04" + good[4:100],
], ids=["half", "last byte cut", "zip header only"])
def test_a_failed_load_closes_the_file(tmp_path, contents):
    """A file load_into opened is closed when it raises, not left to the garbage collector
    (ResourceWarning; on Windows the open handle would keep the file locked)."""
    nn.save(small_net(3), tmp_path / "good.npz")
    path = tmp_path / "bad.npz"
    path.write_bytes(contents((tmp_path / "good.npz").read_bytes()))
    net = small_net(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            nn.load_into(net, path)
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


@pytest.mark.parametrize("contents", [
    b"this is not a model\n", np.random.default_rng(0).bytes(3000), pickle.dumps({"0.weight": 1.0}),
], ids=["text", "random bytes", "pickle"])
def test_the_error_for_a_file_that_is_not_an_archive_says_so(tmp_path, contents):
    """numpy's message for these ("This file contains pickled (object) data. If you trust the file
    you can load it unsafely using the `allow_pickle=` keyword argument") misdescribes a text
    file and recommends an option load_into does not have (and that runs the file's code)."""
    path = tmp_path / "model.npz"
    path.write_bytes(contents)
    with pytest.raises(ValueError) as info:
        nn.load_into(small_net(0), path)
    message = str(info.value)
    assert "model.npz" in message and "allow_pickle" not in message, message
