"""micrograd's demo on tinygrad_lec: a 2-16-16-1 MLP of scalar Values learns two moons.

    python examples/micrograd_demo.py
"""

from tinygrad_lec.lecture import train_scalar_moons

if __name__ == "__main__":
    result = train_scalar_moons(steps=40, seed=1, progress=True)
    print(f"graph nodes per step: {result['nodes']}")
    print(f"loss {result['losses'][0]:.4f} -> {result['losses'][-1]:.4f}, "
          f"training accuracy {result['accuracy']:.0%}")
