"""functional as F: losses, the lecture's divergences and dropout (API.md "functional as F";
REFERENCE 8, 12, 13).

Every loss, for every reduction: forward against its formula in numpy and gradients against central
differences, on hypothesis-drawn operands whose domains stay away from poles (BCE inputs in
[0.05, 0.95], KL targets >= 0.05); and forward and gradients against torch in float64 with a random
upstream gradient. Then REFERENCE 8's test recipe, items 1-7, the target forms and errors of each
loss, and REFERENCE 12's dropout recipe adapted to ``F.dropout(x, p, training, seed, generator)``.

Tolerances (REFERENCE 13): a single forward or backward 1e-12/1e-14; the REFERENCE 8 recipe
1e-13/1e-15; finite differences (h = 1e-6) rtol 1e-6, atol 1e-8; dropout values 1e-15 and rates
within 5 standard errors. Tests that compare with torch take the ``torch`` fixture, which skips them
when torch is not installed; all the others run without it.
"""

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensor_factory import FORWARD_ATOL, FORWARD_RTOL

from tinygrad_lec import Tensor, testing
from tinygrad_lec import functional as F

EXAMPLES = min(10, settings().max_examples)
RECIPE_RTOL, RECIPE_ATOL = 1e-13, 1e-15  # REFERENCE 8, test recipe
B, C = 6, 5  # REFERENCE 8, test recipe
KL_REDUCTIONS = ("batchmean", "mean", "sum", "none")
recipe_seeds = pytest.mark.parametrize("seed", range(3))


@pytest.fixture(scope="module")
def torch():
    """torch, or a skip: torch is a test-only reference (REFERENCE 13)."""
    return pytest.importorskip("torch")


# -- numpy references --------------------------------------------------------------------------------

def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_reduce(pointwise, reduction):
    if reduction == "mean":
        return pointwise.mean()
    if reduction == "sum":
        return pointwise.sum()
    if reduction == "batchmean":
        return pointwise.sum() / (pointwise.shape[0] if pointwise.ndim else 1)
    return pointwise


def np_entropy(p):
    """H(p) = -sum p log p per row, with 0 log 0 = 0."""
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)


def recipe_batch(seed):
    """REFERENCE 8's recipe data: random logits z (B, C), labels and their one-hot rows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=B)
    return rng.normal(size=(B, C)), labels, np.eye(C)[labels]


def assert_recipe_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RECIPE_RTOL, atol=RECIPE_ATOL)


def assert_forward_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)


# -- every elementwise loss and reduction: formula and finite differences ---------------------------------

@dataclass(frozen=True)
class Loss:
    """An elementwise loss: ``call(input, target, reduction)``, its per-element formula in numpy and
    the operands' domains, kept away from poles (log at 0 and 1)."""

    name: str
    call: Callable
    pointwise: Callable
    input_domain: tuple[float, float]
    target_domain: tuple[float, float]
    reductions: tuple[str, ...] = ("mean", "sum", "none")


def _np_kl(x, d):
    return d * (np.log(d) - x)


def _np_bce(y, d):
    return -(d * np.log(y) + (1 - d) * np.log1p(-y))


ELEMENTWISE = [
    Loss("mse_loss", F.mse_loss, lambda x, t: (x - t) ** 2, (-3.0, 3.0), (-3.0, 3.0)),
    Loss("kl_div", F.kl_div, _np_kl, (-5.0, 0.0), (0.05, 1.0), KL_REDUCTIONS),
    Loss("kl_div_log_target", lambda x, t, r: F.kl_div(x, t, r, log_target=True),
         lambda x, t: np.exp(t) * (t - x), (-5.0, 0.0), (-5.0, 0.0), KL_REDUCTIONS),
    Loss("binary_cross_entropy", F.binary_cross_entropy, _np_bce, (0.05, 0.95), (0.0, 1.0)),
]
loss_reductions = pytest.mark.parametrize(
    "loss, reduction", [(loss, r) for loss in ELEMENTWISE for r in loss.reductions],
    ids=[f"{loss.name}-{r}" for loss in ELEMENTWISE for r in loss.reductions])
reductions = pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
SHAPES = testing.shapes(min_dims=0, max_dims=2)


def draw_operands(data, loss):
    shape = data.draw(SHAPES, label="shape")
    return (data.draw(testing.tensors(shape, *loss.input_domain), label="input"),
            data.draw(testing.tensors(shape, *loss.target_domain), label="target"))


@loss_reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_loss_forward_equals_its_formula(loss, reduction, data):
    """REFERENCE 8: mse (x - t)^2, KL d (log d - x) (exp(t) (t - x) for log targets), BCE
    -(d log y + (1 - d) log(1 - y)); 'batchmean' divides the sum by B = shape[0]."""
    x, t = draw_operands(data, loss)
    out = loss.call(x, t, reduction)
    expected = np_reduce(loss.pointwise(x.data, t.data), reduction)
    assert out.shape == np.shape(expected)
    assert_forward_close(out.data, expected)


@loss_reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_loss_gradients_for_input_and_target_match_central_differences(loss, reduction, data):
    x, t = draw_operands(data, loss)
    testing.assert_grads_match(lambda x, t: loss.call(x, t, reduction), x, t)


@st.composite
def l2_operands(draw):
    shape = draw(testing.shapes(min_dims=1, max_dims=2))
    return draw(testing.tensors(shape, -3.0, 3.0)), draw(testing.tensors(shape, -3.0, 3.0))


@settings(max_examples=EXAMPLES)
@given(operands=l2_operands())
def test_l2_divergence_is_half_squared_error_averaged_over_the_batch(operands):
    """REFERENCE 8: Loss = (1/B) sum_t 1/2 ||y_t - d_t||^2."""
    y, d = operands
    assert_forward_close(F.l2_divergence(y, d).data, 0.5 * ((y.data - d.data) ** 2).sum() / y.shape[0])


@settings(max_examples=EXAMPLES)
@given(operands=l2_operands())
def test_l2_divergence_gradients_match_central_differences(operands):
    testing.assert_grads_match(F.l2_divergence, *operands)


# -- cross_entropy: formula and finite differences ----------------------------------------------------------

batched = pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])


@st.composite
def logits_and_class_indices(draw, batched):
    n_classes = draw(st.integers(1, 4))
    lead = (draw(st.integers(1, 4)),) if batched else ()
    logits = draw(testing.tensors((*lead, n_classes), -5.0, 5.0), label="logits")
    return logits, draw(hnp.arrays(np.int64, lead, elements=st.integers(0, n_classes - 1)), label="labels")


@st.composite
def logits_and_probabilities(draw, batched):
    shape = (*((draw(st.integers(1, 4)),) if batched else ()), draw(st.integers(1, 4)))
    return draw(testing.tensors(shape, -5.0, 5.0), label="logits"), draw(testing.tensors(shape, 0.0, 1.0))


@batched
@reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_cross_entropy_with_class_indices_is_minus_log_softmax_of_the_class(batched, reduction, data):
    """REFERENCE 8: CE = -log softmax(z)_c per instance."""
    logits, labels = data.draw(logits_and_class_indices(batched))
    out = F.cross_entropy(logits, labels, reduction)
    picked = np.take_along_axis(np_log_softmax(logits.data), labels[..., None], axis=-1)[..., 0]
    expected = np_reduce(-picked, reduction)
    assert out.shape == np.shape(expected)
    assert_forward_close(out.data, expected)


@batched
@reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_cross_entropy_gradient_with_class_indices_matches_central_differences(batched, reduction, data):
    logits, labels = data.draw(logits_and_class_indices(batched))
    testing.assert_grads_match(lambda z: F.cross_entropy(z, labels, reduction), logits)


@batched
@reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_cross_entropy_with_probability_targets_is_minus_sum_d_log_softmax(batched, reduction, data):
    """REFERENCE 8: H(d, y) = -sum_i d_i log y_i with y = softmax(z)."""
    logits, probs = data.draw(logits_and_probabilities(batched))
    out = F.cross_entropy(logits, probs, reduction)
    expected = np_reduce(-(probs.data * np_log_softmax(logits.data)).sum(axis=-1), reduction)
    assert out.shape == np.shape(expected)
    assert_forward_close(out.data, expected)


@batched
@reductions
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_cross_entropy_gradients_with_probability_targets_match_central_differences(batched, reduction, data):
    logits, probs = data.draw(logits_and_probabilities(batched))
    testing.assert_grads_match(lambda z, d: F.cross_entropy(z, d, reduction), logits, probs)


# -- every loss and reduction against torch (float64) ---------------------------------------------------

def _torch_kl_div(torch, x, t, reduction, log_target=False):
    # torch 2.13 warns that 'mean' (sum / (B C)) will become 'batchmean'; we compare today's meaning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.functional.kl_div(x, t, reduction=reduction, log_target=log_target)


@dataclass(frozen=True)
class TorchCase:
    """A loss call on (input, target) arrays made by ``make(rng)``, ours and torch's. Integer
    targets are class indices; others become Tensors, requiring grad if ``target_grad``."""

    name: str
    ours: Callable
    theirs: Callable
    make: Callable
    target_grad: bool = True
    reductions: tuple[str, ...] = ("mean", "sum", "none")


def _probabilities(rng, shape):
    return np_softmax(rng.normal(size=shape))


TORCH_CASES = [
    TorchCase("mse_loss", F.mse_loss, lambda torch, x, t, r: torch.nn.functional.mse_loss(x, t, reduction=r),
              lambda rng: (rng.normal(size=(B, C)), rng.normal(size=(B, C)))),
    TorchCase("kl_div", F.kl_div, _torch_kl_div,
              lambda rng: (np_log_softmax(rng.normal(size=(B, C))), _probabilities(rng, (B, C))),
              reductions=KL_REDUCTIONS),
    TorchCase("kl_div_log_target", lambda x, t, r: F.kl_div(x, t, r, log_target=True),
              lambda torch, x, t, r: _torch_kl_div(torch, x, t, r, log_target=True),
              lambda rng: (np_log_softmax(rng.normal(size=(B, C))), np_log_softmax(rng.normal(size=(B, C)))),
              reductions=KL_REDUCTIONS),
    # torch's gradient for a zero target is nan (log 0); ours is finite. Only input gradients compared.
    TorchCase("kl_div_one_hot_target", F.kl_div, _torch_kl_div,
              lambda rng: (np_log_softmax(rng.normal(size=(B, C))), np.eye(C)[rng.integers(0, C, B)]),
              target_grad=False, reductions=KL_REDUCTIONS),
    TorchCase("cross_entropy_class_indices", F.cross_entropy,
              lambda torch, z, t, r: torch.nn.functional.cross_entropy(z, t, reduction=r),
              lambda rng: (rng.normal(size=(B, C)), rng.integers(0, C, size=B))),
    TorchCase("cross_entropy_unbatched_class_index", F.cross_entropy,
              lambda torch, z, t, r: torch.nn.functional.cross_entropy(z, t, reduction=r),
              lambda rng: (rng.normal(size=C), np.array(rng.integers(0, C)))),
    TorchCase("cross_entropy_probabilities", F.cross_entropy,
              lambda torch, z, t, r: torch.nn.functional.cross_entropy(z, t, reduction=r),
              lambda rng: (rng.normal(size=(B, C)), _probabilities(rng, (B, C)))),
    TorchCase("cross_entropy_unbatched_probabilities", F.cross_entropy,
              lambda torch, z, t, r: torch.nn.functional.cross_entropy(z, t, reduction=r),
              lambda rng: (rng.normal(size=C), _probabilities(rng, C))),
    TorchCase("binary_cross_entropy", F.binary_cross_entropy,
              lambda torch, y, d, r: torch.nn.functional.binary_cross_entropy(y, d, reduction=r),
              lambda rng: (rng.uniform(0.05, 0.95, size=(B, C)), rng.uniform(0.0, 1.0, size=(B, C)))),
    TorchCase("binary_cross_entropy_hard_targets", F.binary_cross_entropy,
              lambda torch, y, d, r: torch.nn.functional.binary_cross_entropy(y, d, reduction=r),
              lambda rng: (rng.uniform(0.05, 0.95, size=(B, C)), rng.integers(0, 2, size=(B, C)) * 1.0)),
]
torch_cases = pytest.mark.parametrize(
    "case, reduction", [(case, r) for case in TORCH_CASES for r in case.reductions],
    ids=[f"{case.name}-{r}" for case in TORCH_CASES for r in case.reductions])


def run_both(torch, case, reduction, seed=0):
    """(ours, theirs): outputs and leaves [input, target] of the same call in both libraries."""
    x, t = case.make(np.random.default_rng(seed))
    class_indices = t.dtype.kind == "i"
    ours_x = Tensor(x, requires_grad=True)
    ours_t = t if class_indices else Tensor(t, requires_grad=case.target_grad)
    theirs_x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    theirs_t = (torch.from_numpy(t) if class_indices
                else torch.tensor(t, dtype=torch.float64, requires_grad=case.target_grad))
    return ((case.ours(ours_x, ours_t, reduction), ours_x, ours_t),
            (case.theirs(torch, theirs_x, theirs_t, reduction), theirs_x, theirs_t))


@torch_cases
def test_loss_forward_matches_torch_float64(torch, case, reduction):
    (ours, _, _), (theirs, _, _) = run_both(torch, case, reduction)
    assert ours.shape == tuple(theirs.shape)
    assert_forward_close(ours.data, theirs.detach().numpy())


@torch_cases
def test_loss_gradients_with_random_upstream_match_torch_float64(torch, case, reduction):
    (ours, ours_x, ours_t), (theirs, theirs_x, theirs_t) = run_both(torch, case, reduction)
    upstream = np.asarray(np.random.default_rng(1).uniform(-2.0, 2.0, size=ours.shape))
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    assert_forward_close(ours_x.grad, theirs_x.grad.numpy())
    if case.target_grad and isinstance(ours_t, Tensor):
        assert_forward_close(ours_t.grad, theirs_t.grad.numpy())


# -- REFERENCE 8 test recipe, items 1-7 ------------------------------------------------------------------

@recipe_seeds
def test_recipe_1_kl_batchmean_with_one_hot_targets_equals_cross_entropy(seed):
    z, labels, onehot = recipe_batch(seed)
    kl = F.kl_div(F.log_softmax(Tensor(z)), Tensor(onehot), reduction="batchmean")
    assert_recipe_close(kl.data, F.cross_entropy(Tensor(z), labels).data)


@recipe_seeds
def test_recipe_1_kl_batchmean_with_one_hot_targets_equals_torch_cross_entropy(torch, seed):
    z, labels, onehot = recipe_batch(seed)
    kl = F.kl_div(F.log_softmax(Tensor(z)), Tensor(onehot), reduction="batchmean")
    theirs = torch.nn.CrossEntropyLoss()(torch.from_numpy(z), torch.from_numpy(labels))
    assert_recipe_close(kl.data, theirs.numpy())


@recipe_seeds
def test_recipe_2_kl_mean_times_classes_equals_cross_entropy(seed):
    """'mean' divides by B*C, so it is CE / C (REFERENCE 8, torch pitfalls)."""
    z, labels, onehot = recipe_batch(seed)
    kl_mean = F.kl_div(F.log_softmax(Tensor(z)), Tensor(onehot), reduction="mean")
    assert_recipe_close(kl_mean.data * C, F.cross_entropy(Tensor(z), labels).data)


@recipe_seeds
def test_recipe_2_kl_mean_times_classes_equals_torch_cross_entropy(torch, seed):
    z, labels, onehot = recipe_batch(seed)
    kl_mean = F.kl_div(F.log_softmax(Tensor(z)), Tensor(onehot), reduction="mean")
    theirs = torch.nn.CrossEntropyLoss()(torch.from_numpy(z), torch.from_numpy(labels))
    assert_recipe_close(kl_mean.data * C, theirs.numpy())


@recipe_seeds
@pytest.mark.parametrize("target_requires_grad", [False, True], ids=["constant_target", "target_with_grad"])
def test_recipe_3_kl_with_0_log_0_convention_equals_cross_entropy_per_instance(seed, target_requires_grad):
    """KL(e_c || y) = -log y_c exactly: the zero entries of a one-hot target contribute 0 log 0 = 0."""
    z, labels, onehot = recipe_batch(seed)
    target = Tensor(onehot, requires_grad=target_requires_grad)
    kl = F.kl_div(F.log_softmax(Tensor(z)), target, reduction="none")
    assert_recipe_close(kl.data.sum(axis=1), F.cross_entropy(Tensor(z), labels, reduction="none").data)


@recipe_seeds
def test_recipe_4_cross_entropy_gradient_is_softmax_minus_one_hot_over_batch(seed):
    z, labels, onehot = recipe_batch(seed)
    logits = Tensor(z, requires_grad=True)
    F.cross_entropy(logits, labels).backward()
    assert_recipe_close(logits.grad, (np_softmax(z) - onehot) / B)


@recipe_seeds
def test_recipe_5_soft_target_kl_is_cross_entropy_minus_mean_target_entropy(seed):
    z, _, _ = recipe_batch(seed)
    p = np_softmax(np.random.default_rng(seed + 100).normal(size=(B, C)))
    kl = F.kl_div(F.log_softmax(Tensor(z)), Tensor(p), reduction="batchmean")
    ce = F.cross_entropy(Tensor(z), Tensor(p))
    assert_recipe_close(kl.data, ce.data - np_entropy(p).mean())


def binary_batch(seed):
    """Logits a (B, C) and hard binary targets d (REFERENCE 8, binary case)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, C)), rng.integers(0, 2, size=(B, C)) * 1.0


@recipe_seeds
def test_recipe_6_bce_of_sigmoid_equals_manual_binary_kl(seed):
    a, d = binary_batch(seed)
    y = np_sigmoid(a)
    manual = (-d * np.log(y) - (1 - d) * np.log(1 - y)).mean()
    assert_recipe_close(F.binary_cross_entropy(Tensor(a).sigmoid(), Tensor(d)).data, manual)


@recipe_seeds
def test_recipe_6_bce_of_sigmoid_equals_torch_bce_with_logits(torch, seed):
    a, d = binary_batch(seed)
    theirs = torch.nn.BCEWithLogitsLoss()(torch.from_numpy(a), torch.from_numpy(d))
    assert_recipe_close(F.binary_cross_entropy(Tensor(a).sigmoid(), Tensor(d)).data, theirs.numpy())


@recipe_seeds
def test_recipe_7_lecture_l2_divergence_is_mse_sum_over_2b(seed):
    rng = np.random.default_rng(seed)
    y, d = Tensor(rng.normal(size=(B, C))), Tensor(rng.normal(size=(B, C)))
    assert_recipe_close(F.l2_divergence(y, d).data, F.mse_loss(y, d, reduction="sum").data / (2 * B))


@recipe_seeds
def test_recipe_7_lecture_l2_divergence_is_mse_mean_times_c_over_2(seed):
    rng = np.random.default_rng(seed)
    y, d = Tensor(rng.normal(size=(B, C))), Tensor(rng.normal(size=(B, C)))
    assert_recipe_close(F.l2_divergence(y, d).data, F.mse_loss(y, d).data * C / 2)


@recipe_seeds
def test_recipe_7_lecture_l2_divergence_is_torch_mse_sum_over_2b(torch, seed):
    rng = np.random.default_rng(seed)
    y, d = rng.normal(size=(B, C)), rng.normal(size=(B, C))
    theirs = torch.nn.MSELoss(reduction="sum")(torch.from_numpy(y), torch.from_numpy(d)) / (2 * B)
    assert_recipe_close(F.l2_divergence(Tensor(y), Tensor(d)).data, theirs.numpy())


# -- REFERENCE 8: the gradients that drive the L2-vs-KL contrast ----------------------------------------

def sigmoid_unit(seed):
    """z (B, C) needing grad, y = sigmoid(z) as numpy, hard targets d."""
    a, d = binary_batch(seed)
    return Tensor(a * 3.0, requires_grad=True), np_sigmoid(a * 3.0), d


@recipe_seeds
def test_l2_divergence_gradient_is_y_minus_d_over_batch(seed):
    rng = np.random.default_rng(seed)
    y, d = Tensor(rng.normal(size=(B, C)), requires_grad=True), rng.normal(size=(B, C))
    F.l2_divergence(y, Tensor(d)).backward()
    assert_forward_close(y.grad, (y.data - d) / B)


@recipe_seeds
def test_l2_through_sigmoid_gradient_is_y_minus_d_times_y_1_minus_y(seed):
    z, y, d = sigmoid_unit(seed)
    F.l2_divergence(z.sigmoid(), Tensor(d)).backward()
    assert_forward_close(z.grad, (y - d) * y * (1 - y) / B)


@recipe_seeds
def test_bce_through_sigmoid_gradient_is_y_minus_d(seed):
    z, y, d = sigmoid_unit(seed)
    (F.binary_cross_entropy(z.sigmoid(), Tensor(d), reduction="sum") / B).backward()
    assert_forward_close(z.grad, (y - d) / B)


@recipe_seeds
def test_kl_through_softmax_gradient_is_y_minus_d_for_soft_targets(seed):
    z, _, _ = recipe_batch(seed)
    d = np_softmax(np.random.default_rng(seed + 100).normal(size=(B, C)))
    logits = Tensor(z, requires_grad=True)
    F.kl_div(F.log_softmax(logits), Tensor(d), reduction="batchmean").backward()
    assert_forward_close(logits.grad, (np_softmax(z) - d) / B)


def test_l2_gradient_vanishes_for_a_unit_saturated_on_the_wrong_side_while_bce_keeps_y_minus_d():
    """The plateau of REFERENCE 8/9: z = -10 with d = 1 gives y - d ~ -1, but (y - d) y (1 - y) ~ -5e-5."""
    z_l2, z_bce = Tensor([[-10.0]], requires_grad=True), Tensor([[-10.0]], requires_grad=True)
    d = Tensor([[1.0]])
    F.l2_divergence(z_l2.sigmoid(), d).backward()
    F.binary_cross_entropy(z_bce.sigmoid(), d).backward()
    assert abs(z_l2.grad.item()) < 1e-4
    assert z_bce.grad.item() == pytest.approx(np_sigmoid(-10.0) - 1.0, rel=1e-12)


def test_soft_target_bce_minus_binary_entropy_is_the_bernoulli_kl():
    """REFERENCE 8: for soft d, KL(Bern(d) || Bern(y)) = BCE - H_b(d)."""
    rng = np.random.default_rng(0)
    y, d = rng.uniform(0.05, 0.95, size=(B, C)), rng.uniform(0.05, 0.95, size=(B, C))
    bernoulli_kl = d * np.log(d / y) + (1 - d) * np.log((1 - d) / (1 - y))
    binary_entropy = -(d * np.log(d) + (1 - d) * np.log(1 - d))
    bce = F.binary_cross_entropy(Tensor(y), Tensor(d), reduction="none")
    assert_forward_close(bce.data - binary_entropy, bernoulli_kl)


# -- cross_entropy: target forms -------------------------------------------------------------------------

LABELS = np.array([2, 0, 1, 2])
LOGITS = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [0.0, 3.0, -2.0], [-1.0, -1.0, 1.0]])
LABEL_FORMS = {
    "list": lambda: LABELS.tolist(),
    "int64_array": lambda: LABELS.astype(np.int64),
    "int32_array": lambda: LABELS.astype(np.int32),
    "uint8_array": lambda: LABELS.astype(np.uint8),
    "float_array_of_whole_numbers": lambda: LABELS.astype(np.float64),
    "float_tensor_of_whole_numbers": lambda: Tensor(LABELS.astype(np.float64)),  # what DataLoader yields
    "float32_tensor_of_whole_numbers": lambda: Tensor(LABELS.astype(np.float32)),
}


@pytest.mark.parametrize("form", LABEL_FORMS)
def test_cross_entropy_class_indices_in_any_form_give_the_integer_array_loss_and_gradient(form):
    ours, reference = Tensor(LOGITS, requires_grad=True), Tensor(LOGITS, requires_grad=True)
    loss = F.cross_entropy(ours, LABEL_FORMS[form](), reduction="none")
    expected = F.cross_entropy(reference, LABELS, reduction="none")
    upstream = np.array([0.5, -1.0, 2.0, 0.25])
    loss.backward(upstream)
    expected.backward(upstream)
    np.testing.assert_array_equal(loss.data, expected.data)
    np.testing.assert_array_equal(ours.grad, reference.grad)


@pytest.mark.parametrize("wrap", [Tensor, np.asarray], ids=["tensor", "array"])
def test_cross_entropy_with_one_hot_probability_targets_equals_class_indices(wrap):
    loss = F.cross_entropy(Tensor(LOGITS), wrap(np.eye(3)[LABELS]), reduction="none")
    assert_recipe_close(loss.data, F.cross_entropy(Tensor(LOGITS), LABELS, reduction="none").data)


@pytest.mark.parametrize("label", [0, 2, np.int64(1), Tensor(2.0)], ids=["0", "2", "numpy_int", "tensor"])
def test_cross_entropy_of_unbatched_logits_equals_a_batch_of_one(label):
    z = np.array([0.5, -1.0, 2.0])
    index = int(label.item() if isinstance(label, Tensor) else label)
    ours, batch = Tensor(z, requires_grad=True), Tensor(z[None], requires_grad=True)
    loss = F.cross_entropy(ours, label)
    F.cross_entropy(batch, [index]).backward()
    loss.backward()
    assert loss.shape == ()
    assert_forward_close(loss.data, -np_log_softmax(z)[index])
    assert_forward_close(ours.grad, batch.grad[0])


def test_cross_entropy_of_unbatched_logits_with_reduction_none_is_a_scalar():
    assert F.cross_entropy(Tensor([0.5, -1.0, 2.0]), 1, reduction="none").shape == ()


def test_cross_entropy_at_logits_plus_minus_1000_is_finite_and_exact():
    """log-sum-exp, never exp(1000): CE = logsumexp(z) - z_c and dCE/dz = (softmax - onehot)/B."""
    logits = Tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], requires_grad=True)
    loss = F.cross_entropy(logits, [1, 0], reduction="none")
    loss.backward(np.ones(2))
    assert np.all(np.isfinite(loss.data)) and np.all(np.isfinite(logits.grad))
    assert_forward_close(loss.data, [2000.0, 2000.0 + math.log(2.0)])
    assert_forward_close(logits.grad, [[1.0, -1.0, 0.0], [-1.0, 0.5, 0.5]])


# -- cross_entropy: errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [3, 7, -1])
def test_cross_entropy_class_index_out_of_range_is_an_index_error_naming_it(bad):
    # the index itself, not the class count in "... for 3 classes"
    with pytest.raises(IndexError, match=rf"(?<![\d-]){bad}(?!\d)(?! classes)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), [0, bad])


@pytest.mark.parametrize("bad", [0.5, -1.5, np.nan, np.inf], ids=["half", "negative", "nan", "inf"])
@pytest.mark.parametrize("wrap", [Tensor, np.asarray], ids=["tensor", "array"])
def test_cross_entropy_class_values_that_are_not_integers_are_a_value_error_naming_them(bad, wrap):
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        F.cross_entropy(Tensor(np.zeros((2, 3))), wrap(np.array([1.0, bad])))


@pytest.mark.parametrize("target", [
    np.array([0, 1, 2]), np.zeros((2, 1), dtype=np.int64), Tensor(np.zeros((3, 2))), np.int64(0),
], ids=["too_long", "column", "probabilities_transposed", "scalar"])
def test_cross_entropy_target_of_wrong_shape_is_a_value_error_naming_both_shapes(target):
    shape = np.shape(target.data if isinstance(target, Tensor) else target)
    with pytest.raises(ValueError, match="cross_entropy") as error:
        F.cross_entropy(Tensor(np.zeros((2, 3))), target)
    assert str(shape) in str(error.value) and str((2, 3)) in str(error.value)


# -- every loss: errors and no corruption ---------------------------------------------------------------

def _probs(shape=(2, 3), requires_grad=True):
    return Tensor(np.linspace(0.1, 0.9, math.prod(shape)).reshape(shape), requires_grad=requires_grad)


LOSS_CALLS = {
    "mse_loss": lambda reduction: F.mse_loss(_probs(), _probs(), reduction),
    "kl_div": lambda reduction: F.kl_div(_probs().log(), _probs(), reduction),
    "cross_entropy": lambda reduction: F.cross_entropy(_probs(), [0, 2], reduction),
    "binary_cross_entropy": lambda reduction: F.binary_cross_entropy(_probs(), _probs(), reduction),
}


UNKNOWN_REDUCTIONS = [(name, r) for name in LOSS_CALLS for r in ("average", "MEAN", "batchmean")
                      if (name, r) != ("kl_div", "batchmean")]  # batchmean is kl_div's own


@pytest.mark.parametrize("name, reduction", UNKNOWN_REDUCTIONS, ids=["-".join(c) for c in UNKNOWN_REDUCTIONS])
def test_unknown_reduction_is_a_value_error_naming_it(name, reduction):
    with pytest.raises(ValueError, match=re.escape(repr(reduction))):
        LOSS_CALLS[name](reduction)


SHAPE_CHECKED = {
    "mse_loss": F.mse_loss, "l2_divergence": F.l2_divergence, "kl_div": F.kl_div,
    "binary_cross_entropy": F.binary_cross_entropy,
}


@pytest.mark.parametrize("name", SHAPE_CHECKED)
@pytest.mark.parametrize("shapes", [((2, 3), (3, 2)), ((4,), (4, 1)), ((4, 1), (4,))],
                         ids=["transposed", "vector_vs_column", "column_vs_vector"])
def test_mismatched_shapes_are_a_value_error_naming_the_op_and_both_shapes(name, shapes):
    """No broadcasting: a (B, 1) vs (B,) mix-up would silently give a (B, B) loss."""
    first, second = shapes
    with pytest.raises(ValueError, match=name) as error:
        SHAPE_CHECKED[name](_probs(first), _probs(second))
    assert str(first) in str(error.value) and str(second) in str(error.value)


def test_kl_div_log_target_mismatched_shapes_is_a_value_error():
    with pytest.raises(ValueError, match=r"kl_div.*\(2, 3\).*\(3, 2\)"):
        F.kl_div(_probs((2, 3)), _probs((3, 2)), log_target=True)


FAILING_CALLS = {
    "mse_loss_shapes": (F.mse_loss, lambda: (_probs(), _probs((3, 2))), {}),
    "kl_div_reduction": (F.kl_div, lambda: (_probs(), _probs()), {"reduction": "average"}),
    "kl_div_shapes_target_with_grad": (F.kl_div, lambda: (_probs(), _probs((3, 2))), {}),
    "cross_entropy_index": (F.cross_entropy, lambda: (_probs(), np.array([0, 3])), {}),
    "cross_entropy_non_integral": (F.cross_entropy, lambda: (_probs(), Tensor([0.5, 1.0])), {}),
    "cross_entropy_reduction": (F.cross_entropy, lambda: (_probs(), _probs()), {"reduction": "x"}),
    "binary_cross_entropy_range": (F.binary_cross_entropy,
                                   lambda: (Tensor([[0.5, 1.5]], requires_grad=True), _probs((1, 2))), {}),
    "binary_cross_entropy_reduction": (F.binary_cross_entropy, lambda: (_probs(), _probs()),
                                       {"reduction": "x"}),
    "dropout_p": (F.dropout, lambda: (_probs(),), {"p": 1.5}),
}


@pytest.mark.parametrize("name", FAILING_CALLS)
def test_a_failing_call_leaves_its_inputs_data_and_grads_unchanged(name):
    fn, make_args, kwargs = FAILING_CALLS[name]
    args = make_args()
    arrays = [a.data if isinstance(a, Tensor) else a for a in args]
    before = [np.array(a, copy=True) for a in arrays]
    with pytest.raises((ValueError, IndexError)):
        fn(*args, **kwargs)
    for i, (a, b) in enumerate(zip(arrays, before)):
        np.testing.assert_array_equal(a, b, err_msg=f"argument {i} changed")
        assert not isinstance(args[i], Tensor) or args[i].grad is None, f"argument {i} got a gradient"


# -- kl_div ----------------------------------------------------------------------------------------------

ZERO_TARGET = np.array([[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])
ZERO_TARGET_INPUT = np_log_softmax(np.array([[0.1, 0.5, -0.3], [2.0, -1.0, 0.5]]))


@pytest.mark.parametrize("target_requires_grad", [False, True], ids=["constant_target", "target_with_grad"])
def test_kl_div_targets_with_zeros_give_finite_values_and_gradients(target_requires_grad):
    """0 log 0 := 0 (REFERENCE 8): value sum_{d>0} d (log d - x) / B; input gradient -d / B."""
    x = Tensor(ZERO_TARGET_INPUT, requires_grad=True)
    d = Tensor(ZERO_TARGET, requires_grad=target_requires_grad)
    loss = F.kl_div(x, d)
    loss.backward()
    positive = ZERO_TARGET > 0
    d_pos, x_pos = ZERO_TARGET[positive], ZERO_TARGET_INPUT[positive]
    expected = (d_pos * (np.log(d_pos) - x_pos)).sum() / 2
    assert_forward_close(loss.data, expected)
    assert_forward_close(x.grad, -ZERO_TARGET / 2)
    if target_requires_grad:
        assert np.all(np.isfinite(d.grad))
        assert_forward_close(d.grad[positive], (np.log(d_pos) + 1 - x_pos) / 2)


@pytest.mark.parametrize("target_requires_grad", [False, True], ids=["constant_target", "target_with_grad"])
def test_kl_div_input_where_the_target_is_zero_does_not_change_the_loss(target_requires_grad):
    moved = np.where(ZERO_TARGET == 0, -1e6, ZERO_TARGET_INPUT)
    target = Tensor(ZERO_TARGET, requires_grad=target_requires_grad)
    assert F.kl_div(Tensor(moved), target).item() == F.kl_div(Tensor(ZERO_TARGET_INPUT), target).item()


def test_kl_div_with_log_target_equals_kl_div_of_the_probabilities():
    rng = np.random.default_rng(0)
    x, p = np_log_softmax(rng.normal(size=(B, C))), np_softmax(rng.normal(size=(B, C)))
    a, b = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    with_log_target = F.kl_div(a, Tensor(np.log(p)), reduction="none", log_target=True)
    with_probabilities = F.kl_div(b, Tensor(p), reduction="none")
    upstream = rng.uniform(-2.0, 2.0, size=(B, C))
    with_log_target.backward(upstream)
    with_probabilities.backward(upstream)
    assert_forward_close(with_log_target.data, with_probabilities.data)
    assert_forward_close(a.grad, b.grad)


def test_kl_div_target_gradient_is_log_d_plus_1_minus_input_over_batch():
    """d/dd [d (log d - x)] = log d + 1 - x; 'batchmean' divides by B."""
    rng = np.random.default_rng(0)
    x, p = np_log_softmax(rng.normal(size=(B, C))), np_softmax(rng.normal(size=(B, C)))
    d = Tensor(p, requires_grad=True)
    F.kl_div(Tensor(x), d).backward()
    assert_forward_close(d.grad, (np.log(p) + 1 - x) / B)


def test_kl_div_default_reduction_is_batchmean():
    x, d = Tensor(ZERO_TARGET_INPUT), Tensor(ZERO_TARGET)
    assert F.kl_div(x, d).item() == F.kl_div(x, d, reduction="batchmean").item()
    assert F.kl_div(x, d).item() != pytest.approx(F.kl_div(x, d, reduction="mean").item())


# -- binary_cross_entropy ----------------------------------------------------------------------------------

EDGE_INPUT = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
EDGE_TARGET = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 0.75])
EDGE_LOSS = np.array([100.0, 100.0, 0.0, 0.0, 25.0, 25.0])  # each log clamped at -100


def test_bce_at_probabilities_0_and_1_is_100_per_clamped_log():
    loss = F.binary_cross_entropy(Tensor(EDGE_INPUT), Tensor(EDGE_TARGET), reduction="none")
    assert_forward_close(loss.data, EDGE_LOSS)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_at_probabilities_0_and_1_matches_torch_loss(torch, reduction):
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.from_numpy(EDGE_INPUT), torch.from_numpy(EDGE_TARGET), reduction=reduction)
    ours = F.binary_cross_entropy(Tensor(EDGE_INPUT), Tensor(EDGE_TARGET), reduction=reduction)
    assert_forward_close(ours.data, theirs.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_at_probabilities_0_and_1_has_finite_gradients(dtype):
    y = Tensor(EDGE_INPUT.astype(dtype), requires_grad=True)
    d = Tensor(EDGE_TARGET.astype(dtype), requires_grad=True)
    loss = F.binary_cross_entropy(y, d, reduction="none")
    loss.backward(np.ones(EDGE_INPUT.shape, dtype=dtype))
    assert np.all(np.isfinite(loss.data))
    assert np.all(np.isfinite(y.grad)), y.grad
    assert np.all(np.isfinite(d.grad)), d.grad


@pytest.mark.parametrize("bad", [-0.25, 1.5, np.nan], ids=str)
def test_bce_input_outside_0_1_is_a_value_error_naming_the_value(bad):
    with pytest.raises(ValueError, match=rf"binary_cross_entropy.*{re.escape(str(bad))}"):
        F.binary_cross_entropy(Tensor([0.5, bad]), Tensor([1.0, 0.0]))


# -- dropout (REFERENCE 12) ---------------------------------------------------------------------------------

N_DROPOUT = 200_000
dropout_ps = pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])


def dropout_input(n=N_DROPOUT, dtype=np.float64):
    """x = rand + 0.5: no zeros, so ``out != 0`` is exactly the kept mask (REFERENCE 12, recipe 1)."""
    return (np.random.default_rng(12).random(n) + 0.5).astype(dtype)


@dropout_ps
def test_dropout_kept_values_are_x_over_1_minus_p(p):
    x = dropout_input()
    out = F.dropout(Tensor(x), p, seed=0).data
    kept = out != 0
    assert kept.any()
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15, atol=0)


@dropout_ps
def test_dropout_kept_fraction_is_1_minus_p_within_5_standard_errors(p):
    kept = F.dropout(Tensor(dropout_input()), p, seed=1).data != 0
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / N_DROPOUT)


def test_dropout_in_eval_is_bit_identical_to_the_input():
    x = Tensor(dropout_input(1000))
    out = F.dropout(x, 0.3, training=False)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert out.data.tobytes() == x.data.tobytes()


@dropout_ps
def test_dropout_gradient_is_upstream_times_mask_over_1_minus_p(p):
    x = Tensor(dropout_input(1000), requires_grad=True)
    out = F.dropout(x, p, seed=2)
    upstream = np.random.default_rng(3).uniform(-2.0, 2.0, size=1000)
    out.backward(upstream)
    np.testing.assert_allclose(x.grad, upstream * (out.data != 0) / (1 - p), rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_expected_training_output_equals_eval_output_within_5_standard_errors(p):
    """E_m[m x / (1 - p)] = x: 1e5 masks (one per row); Var[y] = x^2 p / (1 - p) per element."""
    x = np.linspace(0.5, 1.5, 8)
    n = 100_000
    train = F.dropout(Tensor(np.tile(x, (n, 1))), p, seed=4).data
    test = F.dropout(Tensor(x), p, training=False).data
    standard_error = x * math.sqrt(p / (1 - p) / n)
    assert np.all(np.abs(train.mean(axis=0) - test) < 5 * standard_error)


def test_dropout_p_0_is_the_identity_in_training():
    x = Tensor(dropout_input(1000), requires_grad=True)
    out = F.dropout(x, 0.0, seed=5)
    upstream = np.linspace(-1.0, 1.0, 1000)
    out.backward(upstream)
    np.testing.assert_array_equal(out.data, x.data)
    np.testing.assert_array_equal(x.grad, upstream)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_p_1_gives_zeros_and_zero_gradients_with_no_nan(dtype):
    x = Tensor(dropout_input(1000, dtype), requires_grad=True)
    out = F.dropout(x, 1.0, seed=6)
    out.backward(np.ones(1000, dtype=dtype))
    np.testing.assert_array_equal(out.data, np.zeros(1000))
    np.testing.assert_array_equal(x.grad, np.zeros(1000))


def test_dropout_same_seed_gives_the_same_mask():
    x = Tensor(dropout_input(1000))
    np.testing.assert_array_equal(F.dropout(x, 0.5, seed=7).data, F.dropout(x, 0.5, seed=7).data)


def test_dropout_different_seeds_give_different_masks():
    x = Tensor(dropout_input(1000))
    assert not np.array_equal(F.dropout(x, 0.5, seed=7).data != 0, F.dropout(x, 0.5, seed=8).data != 0)


def test_dropout_generator_gives_a_fresh_mask_on_each_call():
    x, generator = Tensor(dropout_input(1000)), np.random.default_rng(9)
    masks = [F.dropout(x, 0.5, generator=generator).data != 0 for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])


def test_dropout_generator_sequence_is_reproducible_from_its_seed():
    x = Tensor(dropout_input(1000))
    first, second = np.random.default_rng(10), np.random.default_rng(10)
    for _ in range(3):
        np.testing.assert_array_equal(F.dropout(x, 0.5, generator=first).data,
                                      F.dropout(x, 0.5, generator=second).data)


def test_dropout_without_seed_or_generator_gives_a_fresh_mask_on_each_call():
    x = Tensor(dropout_input(1000))
    assert not np.array_equal(F.dropout(x, 0.5).data != 0, F.dropout(x, 0.5).data != 0)


@pytest.mark.parametrize("p", [-0.1, 1.5, np.nan, -np.inf], ids=str)
def test_dropout_invalid_p_is_a_value_error_naming_p(p):
    with pytest.raises(ValueError, match=rf"\bp\b.*{re.escape(str(p))}"):
        F.dropout(Tensor([1.0, 2.0]), p)


@pytest.mark.parametrize("p, training", [(0.3, True), (0.3, False), (0.0, True), (1.0, True)],
                         ids=["train", "eval", "p_0", "p_1"])
def test_dropout_keeps_float32_in_output_and_gradient(p, training):
    x = Tensor(dropout_input(100, np.float32), requires_grad=True)
    out = F.dropout(x, p, training=training, seed=11)
    out.backward(np.ones(100, dtype=np.float32))
    assert out.dtype == np.float32
    assert x.grad.dtype == np.float32


def test_dropout_float32_kept_values_are_x_over_1_minus_p_in_float32():
    x = dropout_input(10_000, np.float32)
    out = F.dropout(Tensor(x), 0.3, seed=12).data
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / np.float32(0.7), rtol=3e-7, atol=0)


# -- binary_cross_entropy_with_logits and softplus --------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch_for_any_logit_size(torch, reduction):
    """torch's BCEWithLogitsLoss: value and gradient sigmoid(a) - d, finite at logits of +-1000."""
    a = np.array([-1000.0, -40.0, -3.0, 0.0, 2.0, 35.0, 1000.0])
    d = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.3])
    g = np.linspace(-1, 1, a.size) if reduction == "none" else None
    ours = Tensor(a, requires_grad=True)
    out = F.binary_cross_entropy_with_logits(ours, Tensor(d), reduction=reduction)
    out.backward(g)
    theirs = torch.tensor(a, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(theirs, torch.tensor(d), reduction=reduction)
    ref.backward(None if g is None else torch.tensor(g))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_bce_with_logits_equals_bce_of_the_sigmoid_and_has_gradient_y_minus_d():
    """REFERENCE 8 item 6 without torch: BCE(sigmoid(a), d) == BCEWithLogits(a, d); d/da = (y - d)/B."""
    a = np.array([-2.0, -0.5, 0.0, 1.5, 3.0])
    d = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    logits = Tensor(a, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, Tensor(d))
    loss.backward()
    y = 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(loss.item(), F.binary_cross_entropy(Tensor(y), Tensor(d)).item(), rtol=1e-13)
    np.testing.assert_allclose(logits.grad, (y - d) / a.size, rtol=1e-13, atol=1e-15)


def test_softplus_is_smooth_at_zero_with_derivative_one_half():
    """Unlike relu(a) + log(1 + e^-|a|), whose kinks give 0 at a = 0, softplus'(0) = sigmoid(0)."""
    z = Tensor([0.0], requires_grad=True)
    F.softplus(z).backward(np.ones(1))
    assert z.grad.tolist() == [0.5]


def test_bce_with_logits_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        F.binary_cross_entropy_with_logits(Tensor(np.zeros(3)), Tensor(np.zeros(2)))


# -- bad input: errors that name the function (issue 8, "Hardening") ----------------------------------

BAD_FUNCTIONAL_CALLS = {
    "cross_entropy-no-classes": (lambda: F.cross_entropy(Tensor(np.zeros((2, 0))), [0, 0]), ValueError,
                                 "cross_entropy: logits of shape (2, 0)"),
    "cross_entropy-bool-target": (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([True, False])),
                                  TypeError, "cross_entropy: target"),
    "cross_entropy-ragged-target": (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), [[1.0, 2.0], [3.0]]),
                                    TypeError, "cross_entropy: target"),
    "cross_entropy-huge-index": (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1e300])),
                                 IndexError, "1e+300"),
    "cross_entropy-mean-of-empty": (lambda: F.cross_entropy(Tensor(np.zeros((0, 3))), np.zeros(0, np.int64)),
                                    ValueError, "cross_entropy: reduction 'mean' of an empty batch"),
    "mse_loss-mean-of-empty": (lambda: F.mse_loss(Tensor(np.zeros(0)), Tensor(np.zeros(0))), ValueError,
                               "mse_loss: reduction 'mean'"),
    "mse_loss-reduction-None": (lambda: F.mse_loss(Tensor([1.0]), Tensor([1.0]), reduction=None), TypeError,
                                "mse_loss: reduction"),
    "kl_div-reduction-list": (lambda: F.kl_div(Tensor([0.0]), Tensor([1.0]), reduction=["mean"]), TypeError,
                              "kl_div: reduction"),
    "dropout-p-dict": (lambda: F.dropout(Tensor([1.0]), p={}), TypeError, "dropout: p"),
    "dropout-p-array": (lambda: F.dropout(Tensor([1.0]), p=np.array([0.1, 0.2])), TypeError, "dropout: p"),
    "dropout-training-array": (lambda: F.dropout(Tensor([1.0]), training=np.array([True, False])), TypeError,
                               "dropout: training"),
    "dropout-seed-str": (lambda: F.dropout(Tensor([1.0]), seed="a"), TypeError, "dropout: seed"),
    "dropout-seed-negative": (lambda: F.dropout(Tensor([1.0]), seed=-1), ValueError, "dropout: seed"),
}


@pytest.mark.parametrize("call, error, text", BAD_FUNCTIONAL_CALLS.values(), ids=BAD_FUNCTIONAL_CALLS.keys())
def test_bad_arguments_raise_a_documented_error_naming_the_function(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


@pytest.mark.parametrize("loss, dtype", [
    (F.binary_cross_entropy, np.bool_), (F.binary_cross_entropy, np.uint8), (F.mse_loss, np.bool_),
], ids=["bce-bool", "bce-uint8", "mse-bool"])
def test_losses_of_integer_and_bool_tensors_are_computed_as_floats(loss, dtype):
    x = Tensor(np.array([[0, 1]]), dtype=dtype)
    np.testing.assert_allclose(loss(x, x).data, loss(Tensor([[0.0, 1.0]]), Tensor([[0.0, 1.0]])).data)


@pytest.mark.parametrize("x_shape, w_shape", [((2, 0), (3, 0)), ((0,), (3, 0)), ((2, 3), (0, 3))])
def test_linear_with_a_zero_size_weight_has_a_backward(x_shape, w_shape):
    x = Tensor(np.zeros(x_shape), requires_grad=True)
    w = Tensor(np.zeros(w_shape), requires_grad=True)
    b = Tensor(np.ones(w_shape[0]), requires_grad=True)
    out = F.linear(x, w, b)
    out.backward(np.ones(out.shape))
    assert x.grad.shape == x_shape and w.grad.shape == w_shape
    np.testing.assert_array_equal(out.data, np.ones(out.shape))
