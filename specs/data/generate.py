"""Writes the two small synthetic CSV files the example specs use.

Run from this folder: `python3 generate.py`. Python's `random` with a fixed seed
makes the output byte-identical on every run.
"""
import math
import random


def minkowski2(path, rows=500, seed=0):
    # Two vectors a, b of R^2 and their boost-invariant product a0*b0 - a1*b1.
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("a0,a1,b0,b1,y\n")
        for _ in range(rows):
            a0, a1, b0, b1 = (rng.gauss(0.0, 1.0) for _ in range(4))
            f.write(f"{a0:.6f},{a1:.6f},{b0:.6f},{b1:.6f},{a0 * b0 - a1 * b1:.6f}\n")


def rotation_pairs(path, rows=500, seed=1):
    # x ~ N(0, I), x' = R(t) x with t ~ U(-pi, pi): pairs related by a rotation.
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x0,x1,x0_rotated,x1_rotated\n")
        for _ in range(rows):
            x0, x1 = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
            t = rng.uniform(-math.pi, math.pi)
            c, s = math.cos(t), math.sin(t)
            f.write(f"{x0:.6f},{x1:.6f},{c * x0 - s * x1:.6f},{s * x0 + c * x1:.6f}\n")


if __name__ == "__main__":
    minkowski2("minkowski2.csv")
    rotation_pairs("rotation_pairs.csv")
