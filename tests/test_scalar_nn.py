"""scalar.Neuron, scalar.Layer, scalar.MLP: micrograd's networks on the Value engine
(API.md, "scalar"), checked against micrograd itself where it is installed."""

import random

import pytest

import tinygrad_lec as tl
from tinygrad_lec import Value, scalar
from tinygrad_lec.data import make_moons

# -- structure and initialisation ----------------------------------------------------------------


def test_mlp_2_16_16_1_has_337_parameters():
    assert len(scalar.MLP(2, [16, 16, 1], seed=0).parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1 == 337


def test_neuron_and_layer_parameter_counts():
    assert len(scalar.Neuron(3, seed=0).parameters()) == 4
    assert len(scalar.Layer(3, 5, seed=0).parameters()) == 20


def test_parameters_are_distinct_leaf_values():
    params = scalar.MLP(3, [4, 2], seed=0).parameters()
    assert all(isinstance(p, Value) and p.is_leaf for p in params)
    assert len({id(p) for p in params}) == len(params)


def test_neuron_init_is_micrograds_uniform_weights_and_zero_bias():
    neuron = scalar.Neuron(200, seed=3)
    assert all(-1.0 <= w.data <= 1.0 for w in neuron.w)
    assert neuron.b.data == 0.0
    assert min(w.data for w in neuron.w) < -0.5 < 0.5 < max(w.data for w in neuron.w)


def weights(net):
    return [p.data for p in net.parameters()]


def test_same_seed_gives_the_same_weights():
    assert weights(scalar.MLP(2, [8, 1], seed=7)) == weights(scalar.MLP(2, [8, 1], seed=7))


def test_different_seeds_give_different_weights():
    assert weights(scalar.MLP(2, [8, 1], seed=7)) != weights(scalar.MLP(2, [8, 1], seed=8))


def test_seeded_init_does_not_touch_the_global_random_state():
    state = random.getstate()
    scalar.MLP(2, [8, 1], seed=7)
    assert random.getstate() == state


# -- forward and backward ------------------------------------------------------------------------


def test_mlp_is_relu_hidden_layers_and_a_linear_output():
    net = scalar.MLP(2, [3, 1], seed=5)
    x = [0.7, -1.3]
    hidden = [max(0.0, n.b.data + n.w[0].data * x[0] + n.w[1].data * x[1]) for n in net.layers[0].neurons]
    last = net.layers[1].neurons[0]
    expected = last.b.data + sum(w.data * h for w, h in zip(last.w, hidden))
    assert net(x).data == pytest.approx(expected, rel=1e-15)


def test_layer_of_one_neuron_returns_a_value_and_wider_layers_a_list():
    x = [1.0, 2.0]
    assert isinstance(scalar.Layer(2, 1, seed=0)(x), Value)
    out = scalar.Layer(2, 3, seed=0)(x)
    assert isinstance(out, list) and len(out) == 3


def test_mlp_parameter_gradients_match_finite_differences():
    net = scalar.MLP(3, [4, 4, 1], activation="tanh", seed=2)
    x = [0.5, -0.25, 1.5]
    assert tl.gradcheck(lambda *params: net(x), net.parameters(), atol=1e-8, rtol=1e-6)


def test_zero_grad_sets_every_parameter_grad_to_zero():
    net = scalar.MLP(2, [4, 1], activation="tanh", seed=0)
    net([0.5, -1.0]).backward()
    assert any(p.grad != 0.0 for p in net.parameters())
    net.zero_grad()
    assert [p.grad for p in net.parameters()] == [0.0] * len(net.parameters())


# -- errors --------------------------------------------------------------------------------------

BAD_SIZES = {
    "neuron_zero_inputs": lambda: scalar.Neuron(0),
    "neuron_negative_inputs": lambda: scalar.Neuron(-1),
    "neuron_fractional_inputs": lambda: scalar.Neuron(2.5),
    "layer_zero_outputs": lambda: scalar.Layer(2, 0),
    "mlp_no_layers": lambda: scalar.MLP(2, []),
    "mlp_zero_inputs": lambda: scalar.MLP(0, [1]),
    "mlp_zero_width_layer": lambda: scalar.MLP(2, [0, 1]),
}


@pytest.mark.parametrize("make", BAD_SIZES.values(), ids=BAD_SIZES.keys())
def test_bad_size_raises_value_error(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("n_inputs", [2, 4])
def test_wrong_input_length_raises_value_error_naming_expected_and_got(n_inputs):
    net = scalar.MLP(3, [4, 1], seed=0)
    with pytest.raises(ValueError, match=rf"expected 3\b.*got {n_inputs}\b"):
        net([1.0] * n_inputs)


# -- against micrograd ---------------------------------------------------------------------------


def micrograd_mlp(seed, nin, nouts):
    """micrograd's MLP, initialised from its global ``random`` seeded with ``seed``."""
    mg_nn = pytest.importorskip("micrograd.nn")
    state = random.getstate()
    try:
        random.seed(seed)
        return mg_nn.MLP(nin, nouts)
    finally:
        random.setstate(state)


def test_weights_equal_micrograds_for_the_same_seed():
    assert weights(scalar.MLP(2, [16, 16, 1], seed=1337)) == weights(micrograd_mlp(1337, 2, [16, 16, 1]))


def train_demo(model, value, rows, labels, steps):
    """micrograd's demo.ipynb training loop (SVM hinge loss, L2 1e-4, decaying lr), for either
    engine: ``value`` is the engine's Value class. Returns the loss of every step."""
    losses = []
    for k in range(steps):
        scores = [model([value(a), value(b)]) for a, b in rows]
        hinge = [(1 + -y * s).relu() for y, s in zip(labels, scores)]
        loss = sum(hinge) * (1.0 / len(hinge)) + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    return losses


def moons(n_samples, seed):
    X, y = make_moons(n_samples, noise=0.1, seed=seed)
    return X.tolist(), [2.0 * t - 1.0 for t in y]


def test_training_matches_micrograd_step_for_step():
    mg_engine = pytest.importorskip("micrograd.engine")
    rows, labels = moons(30, seed=0)
    ours, theirs = scalar.MLP(2, [16, 16, 1], seed=4), micrograd_mlp(4, 2, [16, 16, 1])
    expected = train_demo(theirs, mg_engine.Value, rows, labels, steps=3)
    assert train_demo(ours, Value, rows, labels, steps=3) == pytest.approx(expected, rel=1e-12, abs=0)
    assert weights(ours) == pytest.approx(weights(theirs), rel=1e-12, abs=1e-14)


def test_lecture_demo_matches_micrograds_demo():
    mg_engine = pytest.importorskip("micrograd.engine")
    from tinygrad_lec.lecture import train_scalar_moons

    rows, labels = moons(30, seed=1)
    expected = train_demo(micrograd_mlp(1, 2, [16, 16, 1]), mg_engine.Value, rows, labels, steps=3)
    ours = train_scalar_moons(steps=3, seed=1, n_samples=30)["losses"]
    assert ours == pytest.approx(expected, rel=1e-12, abs=0)
