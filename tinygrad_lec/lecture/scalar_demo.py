"""micrograd's demo, on tinygrad_lec's scalar engine: a 2-16-16-1 MLP of Values on two moons."""

from __future__ import annotations

from ..data import make_moons
from ..graph import topological_order
from ..scalar import MLP
from ..value import Value


def demo_loss(value: type, model, rows: list[list[float]], labels: list[float]):
    """micrograd's demo loss ``mean(relu(1 - y*score)) + 1e-4*sum(p*p)`` for labels -1/+1, with
    any micrograd-like engine (``value`` is its Value class). Returns (loss, scores)."""
    scores = [model(list(map(value, row))) for row in rows]
    hinge = [(1 + -y * s).relu() for y, s in zip(labels, scores)]
    loss = sum(hinge) * (1.0 / len(hinge)) + 1e-4 * sum(p * p for p in model.parameters())
    return loss, scores


def demo_step(value: type, model, rows: list[list[float]], labels: list[float], k: int):
    """One step of micrograd's demo: forward, backward, SGD with lr ``1 - 0.9 k/100``.
    Returns (loss, scores)."""
    loss, scores = demo_loss(value, model, rows, labels)
    model.zero_grad()
    loss.backward()
    lr = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss, scores


def train_scalar_moons(steps: int = 30, seed: int = 1, n_samples: int = 100, progress: bool = False
                       ) -> dict:
    """Train micrograd's demo network with full-batch SGD (:func:`demo_step`). Returns the loss per
    step, the final training accuracy and the number of graph nodes of one step.
    """
    X, labels = make_moons(n_samples, noise=0.1, seed=seed)
    ys = [2.0 * float(t) - 1.0 for t in labels]
    rows = X.tolist()
    model = MLP(2, [16, 16, 1], seed=seed)
    losses, nodes, accuracy = [], 0, 0.0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="training", unit="step", leave=False)
    for k in range(steps):
        loss, scores = demo_step(Value, model, rows, ys, k)
        losses.append(loss.data)
        accuracy = sum((y > 0) == (s.data > 0) for y, s in zip(ys, scores)) / len(ys)
        if k == 0:
            nodes = len(topological_order(loss))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.data:.4f}")
    if bar is not None:
        bar.close()
    return {"losses": losses, "accuracy": accuracy, "nodes": nodes}
