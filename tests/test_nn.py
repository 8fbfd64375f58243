"""tinygrad_lec.nn as a specification (API.md, "nn"; REFERENCE 12 and 13): Module bookkeeping
(parameters, names, train/eval, repr), Linear against torch, state_dict and load_state_dict
(torch's keys, copies, strict errors that change nothing), atomic save/load, Dropout's statistics
and seeding, MLP, loss modules and activations. Torch comparisons skip when torch is missing."""

import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lec import Tensor, data, nn
from tinygrad_lec import functional as F

RTOL, ATOL = 1e-12, 1e-14  # REFERENCE 13: a single forward/backward in float64


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def to_torch(torch, array, requires_grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=requires_grad)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def net_like_torch(seed, dropout_seed=0):
    """The architecture of the torch state_dict comparison: Linear, BatchNorm1d, ReLU, Dropout, Linear."""
    return nn.Sequential(nn.Linear(3, 4, seed=seed), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Dropout(0.5, seed=dropout_seed), nn.Linear(4, 2, seed=seed + 100))


def with_running_stats(net, seed=0, batches=3):
    """Run a few training batches so that BatchNorm's buffers are no longer their defaults."""
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(batches):
        net(Tensor(rng.normal(2.0, 3.0, size=(8, 3))))
    return net


def snapshot(module):
    """Every parameter and buffer, bit for bit (dtype, shape and bytes)."""
    state = {"param " + k: p.data for k, p in module.named_parameters()}
    state.update({"buffer " + k: b for k, b in module.named_buffers()})
    return {k: (v.dtype, v.shape, v.tobytes()) for k, v in state.items()}


def batch(n=6, width=3, seed=1):
    return Tensor(np.random.default_rng(seed).normal(size=(n, width)))


# -- Module: parameters, names, registration ---------------------------------------------------------


class Block(nn.Module):
    """Own parameters interleaved with children: torch lists own parameters first, then children."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3))
        self.inner = nn.Linear(3, 3, seed=0)
        self.shift = nn.Parameter(np.zeros(3))
        self.head = nn.Sequential(nn.Linear(3, 2, seed=1), nn.ReLU(), nn.Linear(2, 1, seed=2))

    def forward(self, x):
        return self.head(self.inner(x * self.scale + self.shift))


def test_named_parameters_are_in_registration_order_with_torch_names():
    # the names and order torch.nn gives the same module (checked with torch 2.13)
    assert [name for name, _ in Block().named_parameters()] == [
        "scale", "shift", "inner.weight", "inner.bias", "head.0.weight", "head.0.bias",
        "head.2.weight", "head.2.bias"]


def test_parameters_follow_named_parameters():
    block = Block()
    assert [id(p) for p in block.parameters()] == [id(p) for _, p in block.named_parameters()]


def test_sequential_nested_in_sequential_gets_dotted_prefixes():
    net = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sequential(nn.Tanh(), nn.Linear(3, 1, seed=1)))
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.1.weight", "1.1.bias"]


def test_parameter_is_listed_in_the_order_set_not_alphabetically():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.zeta = nn.Parameter([1.0])
            self.alpha = nn.Parameter([2.0])

    assert [name for name, _ in Two().named_parameters()] == ["zeta", "alpha"]


class Tied(nn.Module):
    """Two layers sharing one weight matrix (tied weights)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2, seed=0)
        self.b = nn.Linear(2, 2, seed=1)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


def test_shared_parameter_is_listed_once():
    tied = Tied()
    assert [name for name, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert len(list(tied.parameters())) == 3


def test_shared_parameter_accumulates_both_uses_in_one_grad():
    tied = Tied()
    tied(batch(width=2)).sum().backward()
    assert tied.a.weight.grad is tied.b.weight.grad


def test_state_dict_of_a_model_with_a_shared_parameter_loads_back_strictly():
    # torch's state_dict lists the shared tensor under every name and loads its own state_dict back
    tied = Tied()
    state = tied.state_dict()
    assert list(state) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    tied.load_state_dict(state)


class Custom(nn.Module):
    """A user's module: a Parameter, a plain requires-grad leaf, a child, and attributes that are not
    parameters (a constant, a computed tensor, a string, a list)."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = nn.Parameter(rng.normal(size=(3, 2)))
        self.b = Tensor(np.zeros(2), requires_grad=True)
        self.constant = Tensor(np.ones(2))
        self.doubled = self.w * 2.0  # computed: requires grad but is not a leaf
        self.child = nn.Linear(2, 1, seed=0)
        self.note, self.sizes = "text", [3, 2, 1]

    def forward(self, x):
        return self.child((x @ self.w + self.b).tanh() * self.constant)


def test_user_module_registers_parameters_plain_leaves_and_children():
    m = Custom()
    assert [name for name, _ in m.named_parameters()] == ["w", "b", "child.weight", "child.bias"]
    assert [id(p) for p in m.parameters()] == [id(m.w), id(m.b), id(m.child.weight), id(m.child.bias)]
    assert list(m.state_dict()) == ["w", "b", "child.weight", "child.bias"]


def test_user_module_backward_fills_every_parameter_grad():
    m = Custom()
    m(batch()).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_computed_tensor_attribute_is_not_a_parameter():
    m = Custom()
    assert m.doubled.requires_grad
    assert all(p is not m.doubled and p is not m.constant for p in m.parameters())


def test_frozen_parameter_stays_in_parameters_and_state_dict():
    # torch: requires_grad_(False) freezes a Parameter; it is still saved, loaded and listed
    layer = nn.Linear(2, 2, seed=0)
    layer.weight.requires_grad = False
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_zero_grad_sets_every_grad_to_none():
    m = Custom()
    m(batch()).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_modules_start_in_training_mode():
    net = net_like_torch(0)
    assert all(m.training for m in net.modules())


def test_eval_reaches_every_submodule_and_returns_self():
    net = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(3)), Custom())
    assert net.eval() is net
    assert len(list(net.modules())) == 7
    assert not any(m.training for m in net.modules())


def test_train_reaches_every_submodule_and_returns_self():
    net = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(3))).eval()
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not any(m.training for m in net.modules())


def test_repr_matches_torch(torch):
    ours = nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Sequential(nn.Sigmoid(), nn.Tanh()),
                         nn.Linear(3, 1, bias=False, seed=0))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Sigmoid(), torch.nn.Tanh()),
                                 torch.nn.Linear(3, 1, bias=False))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name, args, kwargs", [
    ("BatchNorm1d", (3,), {"eps": 1e-3, "momentum": None}), ("Dropout", (), {"p": 0.25})])
def test_repr_shows_torchs_fields_for_the_options_we_have(torch, name, args, kwargs):
    # torch 2.13 also prints options tinygrad_lec has not got (BatchNorm1d bias=, Dropout inplace=)
    ours, theirs = repr(getattr(nn, name)(*args, **kwargs)), repr(getattr(torch.nn, name)(*args, **kwargs))
    assert ours.split("(")[0] == theirs.split("(")[0]
    fields = re.findall(r"[\w.=+-]+(?=[,)])", ours)
    assert fields and set(fields) <= set(re.findall(r"[\w.=+-]+(?=[,)])", theirs))


# -- Linear ------------------------------------------------------------------------------------------


def linear_pair(torch, n_in, n_out, bias=True, seed=0):
    ours = nn.Linear(n_in, n_out, bias=bias, seed=seed)
    theirs = torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    return ours, theirs


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 4, 3)], ids=["batch", "one-sample", "leading-axes"])
def test_linear_forward_and_gradients_match_torch(torch, shape, bias):
    ours, theirs = linear_pair(torch, 3, 4, bias=bias)
    rng = np.random.default_rng(0)
    x_np, upstream = rng.normal(size=shape), rng.normal(size=(*shape[:-1], 4))
    x, tx = Tensor(x_np, requires_grad=True), to_torch(torch, x_np, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    close(y.data, ty.detach().numpy())
    y.backward(upstream)
    ty.backward(to_torch(torch, upstream))
    close(x.grad, tx.grad.numpy())
    close(ours.weight.grad, theirs.weight.grad.numpy())
    if bias:
        close(ours.bias.grad, theirs.bias.grad.numpy())


def test_linear_parameter_shapes_are_out_by_in_and_out():
    layer = nn.Linear(3, 5, seed=0)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    assert layer.weight.requires_grad and layer.bias.requires_grad


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(400, 300, seed=0)
    bound = 1 / np.sqrt(400)
    for p in (layer.weight.data, layer.bias.data):
        assert np.all(np.abs(p) <= bound)
        assert p.min() < -0.95 * bound and p.max() > 0.95 * bound  # fills the interval
        assert abs(p.mean()) < 0.1 * bound


def test_linear_same_seed_same_weights():
    a, b = nn.Linear(3, 4, seed=7), nn.Linear(3, 4, seed=7)
    assert np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)


def test_linear_different_seeds_different_weights():
    a, b = nn.Linear(3, 4, seed=7), nn.Linear(3, 4, seed=8)
    assert not np.array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.bias.data, b.bias.data)


def test_linear_seeded_init_leaves_numpys_global_random_state_alone():
    state = np.random.get_state()[1].copy()
    nn.Linear(3, 4, seed=7)
    assert np.array_equal(np.random.get_state()[1], state)


def test_linear_without_bias_has_only_a_weight():
    layer = nn.Linear(3, 2, bias=False, seed=0)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(layer(Tensor(x)).data, x @ layer.weight.data.T)


@pytest.mark.parametrize("in_features, out_features, bad", [
    (0, 2, "in_features"), (-3, 2, "in_features"), (2.5, 2, "in_features"), ("3", 2, "in_features"),
    (3, 0, "out_features"), (3, -1, "out_features"), (3, 1.0, "out_features")])
def test_linear_bad_size_raises_naming_the_argument(in_features, out_features, bad):
    with pytest.raises(ValueError, match=bad):
        nn.Linear(in_features, out_features)


def test_linear_input_of_wrong_width_raises_naming_both_shapes():
    with pytest.raises(ValueError) as info:
        nn.Linear(3, 2, seed=0)(Tensor(np.ones((4, 5))))
    assert "(4, 5)" in str(info.value) and "(2, 3)" in str(info.value)


# -- state_dict and load_state_dict ------------------------------------------------------------------

TORCH_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
              "1.num_batches_tracked", "4.weight", "4.bias"]


def torch_net(torch):
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                               torch.nn.Dropout(0.5), torch.nn.Linear(4, 2)).double()


def test_state_dict_keys_order_and_shapes_match_torch(torch):
    ours, theirs = net_like_torch(0).state_dict(), torch_net(torch).state_dict()
    assert list(ours) == list(theirs) == TORCH_KEYS
    assert [v.shape for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]


def test_torch_state_dict_loads_and_gives_torchs_eval_outputs(torch):
    theirs = torch_net(torch)
    for seed in range(3):  # training batches give torch's BatchNorm non-default running stats
        theirs(to_torch(torch, np.random.default_rng(seed).normal(2.0, 3.0, size=(8, 3))))
    ours = net_like_torch(5)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(9).normal(size=(6, 3))
    close(ours.eval()(Tensor(x)).data, theirs.eval()(to_torch(torch, x)).detach().numpy())


def test_our_state_dict_loads_strictly_into_torch(torch):
    ours = with_running_stats(net_like_torch(0)).eval()
    theirs = torch_net(torch)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
    x = np.random.default_rng(9).normal(size=(6, 3))
    close(ours(Tensor(x)).data, theirs.eval()(to_torch(torch, x)).detach().numpy())


def test_state_dict_values_are_numpy_copies():
    net = with_running_stats(net_like_torch(0))
    before = snapshot(net)
    state = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    for v in state.values():
        v[...] = 7
    assert snapshot(net) == before


def bn_net(seed, momentum=None):
    # momentum=None: the next running-stat update depends on num_batches_tracked as well
    return nn.Sequential(nn.Linear(3, 5, seed=seed), nn.BatchNorm1d(5, momentum=momentum), nn.Tanh(),
                         nn.Linear(5, 2, seed=seed + 1))


def test_round_trip_into_a_different_model_gives_identical_eval_outputs():
    source, target = with_running_stats(bn_net(0)), bn_net(1)
    target.load_state_dict(source.state_dict())
    x = batch(seed=5)
    assert np.array_equal(source.eval()(x).data, target.eval()(x).data)


def test_round_trip_into_a_different_model_gives_identical_train_steps():
    source, target = with_running_stats(bn_net(0)), bn_net(1)
    target.load_state_dict(source.state_dict())
    x = batch(seed=5)
    assert np.array_equal(source.train()(x).data, target.train()(x).data)
    assert snapshot(source) == snapshot(target)  # running stats and num_batches_tracked moved alike


def test_load_copies_the_arrays():
    source = with_running_stats(net_like_torch(0)).state_dict()
    net = net_like_torch(1)
    net.load_state_dict(source)
    loaded = snapshot(net)
    for v in source.values():
        v[...] = 3
    assert snapshot(net) == loaded


@pytest.mark.parametrize("module_dtype, file_dtype", [(np.float64, np.float32), (np.float32, np.float64)])
def test_load_casts_values_to_the_modules_dtype(module_dtype, file_dtype):
    def make(seed):
        return nn.Sequential(nn.Linear(3, 4, seed=seed, dtype=module_dtype),
                             nn.BatchNorm1d(4, dtype=module_dtype))

    source = with_running_stats(make(0)).state_dict()
    source = {k: v.astype(file_dtype) if v.dtype.kind == "f" else v.astype(np.float64)
              for k, v in source.items()}
    net = make(1)
    net.load_state_dict(source)
    for key, value in net.state_dict().items():
        expected_dtype = np.int64 if key.endswith("num_batches_tracked") else module_dtype
        assert value.dtype == expected_dtype, key
        np.testing.assert_array_equal(value, source[key].astype(expected_dtype), err_msg=key)


def last(state, key, value):
    """``state`` with ``key`` set to ``value`` and moved to the end, so that a loader that writes
    as it checks would already have changed every other array before it meets the bad one."""
    state.pop(key, None)
    state[key] = value
    return state


def drop(state, key):
    state.pop(key)
    return state


BAD_STATES = {
    "missing key": (lambda s: drop(s, "4.bias"), ["4.bias"]),
    "missing buffer": (lambda s: drop(s, "1.running_var"), ["1.running_var"]),
    "unexpected key": (lambda s: last(s, "5.weight", np.ones((2, 2))), ["5.weight"]),
    "wrong shape": (lambda s: last(s, "4.bias", np.ones(3)), ["4.bias", "(3,)", "(2,)"]),
    "wrong buffer shape": (lambda s: last(s, "1.running_mean", np.zeros((4, 1))),
                           ["1.running_mean", "(4, 1)"]),
    "strings": (lambda s: last(s, "4.bias", np.array(["a", "b"])), ["4.bias"]),
    "None": (lambda s: last(s, "1.num_batches_tracked", None), ["1.num_batches_tracked"]),
    "object": (lambda s: last(s, "4.weight", object()), ["4.weight"]),
    "nested lists": (lambda s: last(s, "4.bias", [[1.0], [2.0, 3.0]]), ["4.bias"]),
}


@pytest.mark.parametrize("corrupt, named", BAD_STATES.values(), ids=BAD_STATES.keys())
def test_strict_load_error_names_the_problem_and_changes_nothing(corrupt, named):
    net = with_running_stats(net_like_torch(0), seed=0)
    source = corrupt(with_running_stats(net_like_torch(1), seed=1).state_dict())
    before = snapshot(net)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(source)
    for text in named:
        assert text in str(info.value)
    assert snapshot(net) == before


@pytest.mark.parametrize("not_a_dict", [None, [("0.weight", np.zeros((4, 3)))], np.zeros(3)],
                         ids=["None", "list of pairs", "array"])
def test_load_of_something_not_a_dict_raises_and_changes_nothing(not_a_dict):
    net = with_running_stats(net_like_torch(0))
    before = snapshot(net)
    with pytest.raises(TypeError, match="dict"):
        net.load_state_dict(not_a_dict)
    assert snapshot(net) == before


def test_non_strict_load_returns_missing_and_unexpected_keys_and_loads_the_rest():
    net = net_like_torch(0)
    old_bias = net[4].bias.data.copy()
    source = with_running_stats(net_like_torch(1)).state_dict()
    del source["4.bias"]
    source["extra.weight"] = np.ones(2)
    result = net.load_state_dict(source, strict=False)
    assert result.missing_keys == ["4.bias"] and result.unexpected_keys == ["extra.weight"]
    assert tuple(result) == (["4.bias"], ["extra.weight"])
    state = net.state_dict()
    for key in source.keys() - {"extra.weight"}:
        np.testing.assert_array_equal(state[key], source[key], err_msg=key)
    np.testing.assert_array_equal(net[4].bias.data, old_bias)


def test_strict_load_of_a_complete_dict_reports_nothing_missing():
    net = net_like_torch(0)
    result = net.load_state_dict(net_like_torch(1).state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []


# -- save and load files -----------------------------------------------------------------------------


def test_save_then_load_into_gives_identical_outputs(tmp_path):
    source, target = with_running_stats(net_like_torch(0)).eval(), net_like_torch(1).eval()
    nn.save(source, tmp_path / "model.npz")
    assert nn.load_into(target, tmp_path / "model.npz") is target
    assert snapshot(target) == snapshot(source)
    x = batch(seed=3)
    assert np.array_equal(target(x).data, source(x).data)


@pytest.mark.parametrize("name", ["model.weights", "checkpoint", "model.npz"])
def test_save_writes_exactly_the_path_given(tmp_path, name):
    nn.save(net_like_torch(0), str(tmp_path / name))
    assert os.listdir(tmp_path) == [name]


def test_saved_file_is_a_plain_npz_of_the_state_dict(tmp_path):
    net = with_running_stats(net_like_torch(0))
    nn.save(net, tmp_path / "model.bin")
    with np.load(tmp_path / "model.bin") as archive:
        assert archive.files == TORCH_KEYS
        for key, value in net.state_dict().items():
            np.testing.assert_array_equal(archive[key], value)


def test_module_save_and_load_methods(tmp_path):
    source, target = with_running_stats(net_like_torch(0)), net_like_torch(1)
    source.save(tmp_path / "m")
    assert target.load(tmp_path / "m") is target
    assert snapshot(target) == snapshot(source)


def test_saved_file_gets_the_permissions_numpy_would_give_it(tmp_path):
    # a temporary file made by tempfile.mkstemp is private (0600); the renamed result should not be
    nn.save(net_like_torch(0), tmp_path / "model.npz")
    with open(tmp_path / "plain.npz", "wb") as f:
        np.savez(f, x=np.zeros(1))
    mode = os.stat(tmp_path / "model.npz").st_mode & 0o777
    assert mode == os.stat(tmp_path / "plain.npz").st_mode & 0o777, oct(mode)


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_interrupted_save_keeps_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch, error):
    path = tmp_path / "model.npz"
    nn.save(net_like_torch(0), path)
    previous = path.read_bytes()

    def savez_interrupted(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            with open(file, "wb") as f:
                f.write(b"PK\x03\x04" + b"\0" * 500)
        else:
            file.write(b"PK\x03\x04" + b"\0" * 500)
        raise error

    monkeypatch.setattr(np, "savez", savez_interrupted)
    with pytest.raises(type(error)):
        nn.save(with_running_stats(net_like_torch(1)), path)
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["model.npz"]


def _refuses_new_files(directory):
    try:
        fd, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return True
    os.close(fd)
    os.unlink(name)
    return False


@pytest.fixture
def unwritable_dir(tmp_path):
    own = tmp_path / "read-only"
    own.mkdir()
    own.chmod(0o555)
    try:
        if _refuses_new_files(own):
            yield own
        elif Path("/sys").is_dir() and _refuses_new_files("/sys"):  # root ignores permission bits
            yield Path("/sys")
        else:
            pytest.skip("no directory here refuses new files")
    finally:
        own.chmod(0o755)


def test_save_into_an_unwritable_directory_raises_and_leaves_nothing(unwritable_dir):
    before = sorted(os.listdir(unwritable_dir))
    with pytest.raises(OSError):
        nn.save(net_like_torch(0), unwritable_dir / "model.npz")
    assert sorted(os.listdir(unwritable_dir)) == before


def test_save_into_a_missing_directory_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.save(net_like_torch(0), tmp_path / "no-such-dir" / "model.npz")
    assert os.listdir(tmp_path) == []


def _saved_bytes(tmp_path):
    nn.save(with_running_stats(net_like_torch(3)), tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


def _flip_a_byte_in_the_first_array(tmp_path):
    good = bytearray(_saved_bytes(tmp_path))
    with zipfile.ZipFile(io.BytesIO(bytes(good))) as archive:
        entry = archive.infolist()[0]
    name_and_extra = int.from_bytes(good[entry.header_offset + 26:entry.header_offset + 28], "little") \
        + int.from_bytes(good[entry.header_offset + 28:entry.header_offset + 30], "little")
    good[entry.header_offset + 30 + name_and_extra + entry.file_size - 3] ^= 0x10  # in the last number
    return bytes(good)


def _npz_with_objects(tmp_path):
    with open(tmp_path / "objects.npz", "wb") as f:
        np.savez(f, **{key: np.array([{"a": 1}], dtype=object) for key in TORCH_KEYS})
    return (tmp_path / "objects.npz").read_bytes()


def _npy(tmp_path):
    with open(tmp_path / "weights.npy", "wb") as f:
        np.save(f, np.zeros((4, 3)))
    return (tmp_path / "weights.npy").read_bytes()


BAD_FILES = {
    "truncated to half": lambda tmp: _saved_bytes(tmp)[: len(_saved_bytes(tmp)) // 2],
    "truncated end": lambda tmp: _saved_bytes(tmp)[:-10],
    "truncated to the first entry": lambda tmp: _saved_bytes(tmp)[:300],
    "byte flipped": _flip_a_byte_in_the_first_array,
    "random bytes": lambda tmp: np.random.default_rng(0).bytes(3000),
    "text": lambda tmp: b"this is not a model\n",
    "empty": lambda tmp: b"",
    "npy": _npy,
    "pickled objects": _npz_with_objects,
}


@pytest.mark.parametrize("contents", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_loading_a_bad_file_raises_naming_the_path_and_changes_nothing(tmp_path, contents):
    path = tmp_path / "bad-model.npz"
    path.write_bytes(contents(tmp_path))
    net = with_running_stats(net_like_torch(0))
    before = snapshot(net)
    with pytest.raises(ValueError, match="bad-model.npz"):
        nn.load_into(net, path)
    assert snapshot(net) == before


@pytest.mark.parametrize("other, named", [
    (lambda: nn.MLP([3, 4, 2], seed=0), "2.weight"),  # different keys
    (lambda: nn.Sequential(nn.Linear(3, 5, seed=0), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5),
                           nn.Linear(5, 2, seed=1)), "0.weight"),  # same keys, other shapes
], ids=["other-keys", "other-shapes"])
def test_loading_a_file_of_another_architecture_raises_naming_the_keys(tmp_path, other, named):
    nn.save(other(), tmp_path / "other.npz")
    net = with_running_stats(net_like_torch(0))
    before = snapshot(net)
    with pytest.raises(ValueError, match=re.escape(named)):
        nn.load_into(net, tmp_path / "other.npz")
    assert snapshot(net) == before


def test_loading_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load_into(net_like_torch(0), tmp_path / "missing.npz")


# -- Dropout (REFERENCE 12) --------------------------------------------------------------------------

P = 0.3
N_DROP = 200_000


def dropout_input():
    return np.random.default_rng(0).random(N_DROP) + 0.5  # no zeros, so out != 0 is the mask


def test_dropout_keeps_a_fraction_one_minus_p_within_five_standard_errors():
    out = nn.Dropout(P, seed=0)(Tensor(dropout_input())).data
    kept = np.mean(out != 0)
    assert abs(kept - (1 - P)) < 5 * np.sqrt(P * (1 - P) / N_DROP)


def test_dropout_scales_kept_values_by_one_over_one_minus_p():
    x = dropout_input()
    out = nn.Dropout(P, seed=0)(Tensor(x)).data
    mask = out != 0
    np.testing.assert_allclose(out[mask], x[mask] / (1 - P), rtol=1e-15, atol=0)


def test_dropout_gradient_is_the_mask_over_one_minus_p():
    x = Tensor(dropout_input()[:1000], requires_grad=True)
    out = nn.Dropout(P, seed=0)(x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, (out.data != 0) / (1 - P), rtol=1e-15, atol=0)


def masks(dropout, calls=3):
    x = Tensor(np.ones(1000))
    return [dropout(x).data != 0 for _ in range(calls)]


def test_dropout_draws_a_fresh_mask_on_every_call():
    first, second, third = masks(nn.Dropout(0.5, seed=0))
    assert not np.array_equal(first, second) and not np.array_equal(second, third)


def test_dropout_with_the_same_seed_gives_the_same_sequence_of_masks():
    for a, b in zip(masks(nn.Dropout(0.5, seed=11)), masks(nn.Dropout(0.5, seed=11))):
        np.testing.assert_array_equal(a, b)


def test_dropout_with_different_seeds_gives_different_masks():
    assert not np.array_equal(masks(nn.Dropout(0.5, seed=1), 1)[0], masks(nn.Dropout(0.5, seed=2), 1)[0])


def test_seeded_dropout_leaves_numpys_global_random_state_alone():
    state = np.random.get_state()[1].copy()
    masks(nn.Dropout(0.5, seed=1))
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_in_eval_is_bit_identical_to_the_input(dtype):
    x = np.random.default_rng(0).normal(size=(50, 7)).astype(dtype)
    out = nn.Dropout(0.5, seed=0).eval()(Tensor(x)).data
    assert out.dtype == dtype and out.tobytes() == x.tobytes()


def test_dropout_with_p_zero_is_the_identity_in_training():
    x = dropout_input()
    assert np.array_equal(nn.Dropout(0.0, seed=0)(Tensor(x)).data, x)


def test_dropout_with_p_one_gives_zeros_not_nan():
    x = Tensor(np.random.default_rng(0).normal(scale=1e300, size=1000), requires_grad=True)
    out = nn.Dropout(1.0, seed=0)(x)
    assert np.array_equal(out.data, np.zeros(1000))
    out.sum().backward()
    assert np.array_equal(x.grad, np.zeros(1000))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_probability_outside_zero_one_raises(p):
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(p)


# -- MLP ---------------------------------------------------------------------------------------------

MLP_LAYOUTS = {
    "plain": ({}, ["Linear", "ReLU", "Linear", "ReLU", "Linear"]),
    "batchnorm": ({"batchnorm": True},
                  ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]),
    "dropout": ({"dropout": 0.2}, ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]),
    "tanh-batchnorm-dropout": (
        {"activation": "tanh", "batchnorm": True, "dropout": 0.2},
        ["Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]),
    "sigmoid": ({"activation": "sigmoid"}, ["Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]),
}


@pytest.mark.parametrize("options, layout", MLP_LAYOUTS.values(), ids=MLP_LAYOUTS.keys())
def test_mlp_layer_structure(options, layout):
    net = nn.MLP([2, 5, 4, 3], seed=0, **options)
    assert [type(m).__name__ for m in net] == layout
    linear_sizes = [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
    assert linear_sizes == [(2, 5), (5, 4), (4, 3)]
    bn_sizes = [m.num_features for m in net if isinstance(m, nn.BatchNorm1d)]
    assert bn_sizes == ([5, 4] if "BatchNorm1d" in layout else [])
    assert all(m.p == 0.2 for m in net if isinstance(m, nn.Dropout))


def test_mlp_of_two_sizes_is_one_linear_layer():
    assert [type(m).__name__ for m in nn.MLP([3, 1], batchnorm=True, dropout=0.5, seed=0)] == ["Linear"]


def test_mlp_same_seed_same_weights_different_seed_different_weights():
    a, b, c = (nn.MLP([2, 8, 8, 1], batchnorm=True, seed=s).state_dict() for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_mlp_layers_are_not_all_initialized_alike():
    net = nn.MLP([4, 4, 4, 4], seed=0)
    assert not np.array_equal(net[0].weight.data, net[2].weight.data)


def test_mlp_seed_makes_dropout_masks_reproducible():
    a, b = (nn.MLP([3, 64, 2], dropout=0.5, seed=1) for _ in range(2))
    x = batch(n=16, seed=2)
    for _ in range(2):
        assert np.array_equal(a(x).data, b(x).data)


@pytest.mark.parametrize("activation", ["gelu", "ReLU", "", None])
def test_mlp_unknown_activation_raises_naming_it(activation):
    with pytest.raises(ValueError, match=re.escape(repr(activation))):
        nn.MLP([2, 3, 1], activation=activation)


@pytest.mark.parametrize("sizes", [[], [3]])
def test_mlp_needs_at_least_two_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        nn.MLP(sizes)


@pytest.mark.parametrize("options", [{}, {"batchnorm": True, "dropout": 0.3}], ids=["plain", "bn-dropout"])
def test_mlp_forward_shape_is_batch_by_last_size(options):
    net = nn.MLP([4, 8, 8, 3], seed=0, **options)
    assert net(batch(n=5, width=4)).shape == (5, 3)
    assert net.eval()(batch(n=1, width=4)).shape == (1, 3)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
def test_mlp_trained_with_sgd_on_moons_reduces_cross_entropy(batchnorm):
    X, y = data.make_moons(200, noise=0.1, seed=0)
    net, x = nn.MLP([2, 16, 16, 2], batchnorm=batchnorm, seed=0), Tensor(X)
    losses = []
    for _ in range(300):
        loss = F.cross_entropy(net(x), y)
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.2 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert np.mean(net.eval()(x).data.argmax(axis=1) == y) > 0.95


# -- loss modules and activations --------------------------------------------------------------------


def _regression():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 3))


def _classification():
    rng = np.random.default_rng(1)
    return rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)


def _log_probabilities():
    rng = np.random.default_rng(2)
    log_p = rng.normal(size=(6, 4))
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    target = rng.random((6, 4))
    return log_p, target / target.sum(axis=1, keepdims=True)


def _probabilities():
    rng = np.random.default_rng(3)
    return rng.uniform(0.05, 0.95, size=(6, 3)), rng.integers(0, 2, size=(6, 3)).astype(float)


LOSSES = {
    "MSELoss": (nn.MSELoss, F.mse_loss, _regression, ["mean", "sum", "none"]),
    "CrossEntropyLoss": (nn.CrossEntropyLoss, F.cross_entropy, _classification, ["mean", "sum", "none"]),
    "KLDivLoss": (nn.KLDivLoss, F.kl_div, _log_probabilities, ["batchmean", "mean", "sum", "none"]),
    "BCELoss": (nn.BCELoss, F.binary_cross_entropy, _probabilities, ["mean", "sum", "none"]),
}
LOSS_CASES = [pytest.param(module, function, make, reduction, id=f"{name}-{reduction}")
              for name, (module, function, make, reductions) in LOSSES.items()
              for reduction in [None, *reductions]]


@pytest.mark.parametrize("module, function, make, reduction", LOSS_CASES)
def test_loss_module_equals_its_functional_form(module, function, make, reduction):
    input_np, target = make()
    kwargs = {} if reduction is None else {"reduction": reduction}
    a, b = Tensor(input_np, requires_grad=True), Tensor(input_np, requires_grad=True)
    out, expected = module(**kwargs)(a, target), function(b, target, **kwargs)
    assert np.array_equal(out.data, expected.data)
    upstream = np.random.default_rng(4).normal(size=out.shape)
    out.backward(upstream)
    expected.backward(upstream)
    assert np.array_equal(a.grad, b.grad)


def test_loss_modules_have_no_parameters():
    for cls in (nn.MSELoss, nn.CrossEntropyLoss, nn.KLDivLoss, nn.BCELoss):
        assert list(cls().parameters()) == [] and cls().state_dict() == {}, cls.__name__


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh"])
def test_activation_forward_and_gradient_match_torch(torch, name):
    rng = np.random.default_rng(0)
    x_np = np.concatenate([rng.normal(scale=3.0, size=40), [0.0, -0.0, 1e-300, -40.0, 40.0, -800.0, 800.0]])
    upstream = rng.normal(size=x_np.shape)
    x, tx = Tensor(x_np, requires_grad=True), to_torch(torch, x_np, requires_grad=True)
    y, ty = getattr(nn, name)()(x), getattr(torch.nn, name)()(tx)
    close(y.data, ty.detach().numpy())
    y.backward(upstream)
    ty.backward(to_torch(torch, upstream))
    close(x.grad, tx.grad.numpy())


def test_identity_returns_its_input():
    x = batch()
    assert nn.Identity()(x) is x


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "Identity"])
def test_activation_modules_have_no_parameters_or_state(name):
    module = getattr(nn, name)()
    assert list(module.parameters()) == [] and module.state_dict() == {}


def test_mlp_weights_for_a_seed_do_not_depend_on_dropout_or_batchnorm():
    """Dropout masks draw from their own seed stream, so switching dropout on keeps the weights."""
    plain = nn.MLP([2, 4, 4, 2], seed=0)
    for other in (nn.MLP([2, 4, 4, 2], dropout=0.5, seed=0), nn.MLP([2, 4, 4, 2], batchnorm=True, seed=0)):
        linears = [m for m in other if isinstance(m, nn.Linear)]
        for a, b in zip([m for m in plain if isinstance(m, nn.Linear)], linears):
            np.testing.assert_array_equal(a.weight.data, b.weight.data)
            np.testing.assert_array_equal(a.bias.data, b.bias.data)


# -- bad input: errors that name the function, and nothing changed (issue 8, "Hardening") ------------

BAD_CONSTRUCTIONS = {
    "BatchNorm1d-eps-str": (lambda: nn.BatchNorm1d(3, eps="a"), TypeError, "BatchNorm1d: eps"),
    "BatchNorm1d-momentum-complex": (lambda: nn.BatchNorm1d(3, momentum=1j), TypeError,
                                     "BatchNorm1d: momentum"),
    "BatchNorm1d-dtype-foo": (lambda: nn.BatchNorm1d(3, dtype="foo"), TypeError, "BatchNorm1d: dtype"),
    "Linear-seed-negative": (lambda: nn.Linear(2, 3, seed=-1), ValueError, "Linear: seed"),
    "Linear-seed-dict": (lambda: nn.Linear(2, 3, seed={}), TypeError, "Linear: seed"),
    "Linear-dtype-int": (lambda: nn.Linear(2, 3, dtype=np.int64), TypeError, "Linear: dtype"),
    "Dropout-p-str": (lambda: nn.Dropout("0.5"), TypeError, "Dropout: p"),
    "Dropout-p-array": (lambda: nn.Dropout(np.array([0.1, 0.2])), TypeError, "Dropout: p"),
    "Dropout-seed-float": (lambda: nn.Dropout(0.5, seed=1.5), TypeError, "Dropout: seed"),
    "MLP-sizes-float": (lambda: nn.MLP(3.0), TypeError, "MLP: sizes"),
    "MLP-sizes-0d-array": (lambda: nn.MLP(np.array(2.0)), TypeError, "MLP: sizes"),
    "MLP-activation-array": (lambda: nn.MLP([2, 3], activation=np.array(["relu"])), ValueError,
                             "MLP: activation"),
    "MLP-batchnorm-str": (lambda: nn.MLP([2, 3], batchnorm="yes"), TypeError, "MLP: batchnorm"),
    "MLP-dropout-None": (lambda: nn.MLP([2, 3], dropout=None), TypeError, "MLP: dropout"),
    "MLP-seed-negative": (lambda: nn.MLP([2, 3], seed=-1), ValueError, "MLP: seed"),
    "MSELoss-reduction": (lambda: nn.MSELoss(reduction="avg"), ValueError, "MSELoss: reduction"),
    "KLDivLoss-log_target": (lambda: nn.KLDivLoss(log_target="yes"), TypeError, "KLDivLoss: log_target"),
}


@pytest.mark.parametrize("make, error, text", BAD_CONSTRUCTIONS.values(), ids=BAD_CONSTRUCTIONS.keys())
def test_bad_constructor_arguments_raise_naming_the_class_and_argument(make, error, text):
    with pytest.raises(error) as info:
        make()
    assert text in str(info.value)


@pytest.mark.parametrize("module", [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.BatchNorm1d(2)],
                         ids=["ReLU", "Sigmoid", "Tanh", "BatchNorm1d"])
@pytest.mark.parametrize("x", [np.array([[1j, 2j]]), np.array([["a", "b"]]), [[1.0, 2.0], [3.0]]],
                         ids=["complex", "strings", "ragged"])
def test_forward_of_non_numeric_input_names_the_module(module, x):
    with pytest.raises(TypeError, match=f"^{type(module).__name__}: "):
        module(x)


@pytest.mark.parametrize("bad", [np.array([True, False]), "yes", None], ids=["array", "str", "None"])
def test_load_state_dict_strict_of_the_wrong_type_raises_and_changes_nothing(bad):
    net = with_running_stats(net_like_torch(0))
    source = with_running_stats(net_like_torch(1), seed=1).state_dict()
    before = snapshot(net)
    with pytest.raises(TypeError, match="load_state_dict: strict"):
        net.load_state_dict(source, strict=bad)
    assert snapshot(net) == before


@pytest.mark.parametrize("path, error, text", [
    (None, TypeError, "path must be a str"), (1.5, TypeError, "path must be a str"),
    ({}, TypeError, "path must be a str"), ("", ValueError, "path is empty"),
    ("model\0.npz", ValueError, "NUL"),
], ids=["None", "float", "dict", "empty", "nul"])
@pytest.mark.parametrize("op", ["save", "load_into"])
def test_save_and_load_into_with_a_bad_path_raise_naming_the_function(tmp_path, monkeypatch, op, path, error,
                                                                     text):
    monkeypatch.chdir(tmp_path)
    net = net_like_torch(0)
    before = snapshot(net)
    with pytest.raises(error, match=f"^{op}: .*{text}"):
        getattr(nn, op)(net, path)
    assert snapshot(net) == before and os.listdir(tmp_path) == []
    assert os.listdir(tmp_path.parent).count(tmp_path.name) == 1  # nothing written beside it either


def test_save_over_a_directory_raises_naming_save_and_writes_nothing(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="^save: "):
        nn.save(net_like_torch(0), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"] and os.listdir(tmp_path / "model.npz") == []


def test_load_into_a_missing_file_names_load_into_and_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^load_into: .*missing\.npz"):
        nn.load_into(net_like_torch(0), tmp_path / "missing.npz")


@pytest.mark.parametrize("op", ["save", "load_into"])
def test_save_and_load_into_of_something_not_a_module_raise_type_error(tmp_path, op):
    with pytest.raises(TypeError, match=f"^{op}: module must be an nn.Module"):
        getattr(nn, op)({"weight": np.zeros(3)}, tmp_path / "model.npz")


@pytest.mark.parametrize("bad", [np.nan, 1.5, 1e300], ids=["nan", "fraction", "huge"])
def test_load_of_a_count_that_is_not_a_whole_number_raises_and_changes_nothing(bad):
    """num_batches_tracked is int64: nan or 1e300 cast to it would be garbage, not an error."""
    net = with_running_stats(net_like_torch(0))
    source = with_running_stats(net_like_torch(1), seed=1).state_dict()
    source["1.num_batches_tracked"] = np.array(bad)
    before = snapshot(net)
    with pytest.raises(ValueError, match=r"load_state_dict: '1\.num_batches_tracked'"):
        net.load_state_dict(source)
    assert snapshot(net) == before


@pytest.mark.parametrize("index, error", [(5, IndexError), (-6, IndexError), ("0", TypeError),
                                          (1.0, TypeError)])
def test_sequential_bad_index_names_sequential(index, error):
    with pytest.raises(error, match="^Sequential: index"):
        net_like_torch(0)[index]


def test_train_mode_of_the_wrong_type_raises_and_changes_nothing():
    net = net_like_torch(0).eval()
    with pytest.raises(TypeError, match="^train: mode"):
        net.train(np.array([True, False]))
    assert not any(m.training for m in net.modules())
