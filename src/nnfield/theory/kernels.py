"""Closed-form infinite-width (GP) kernels of single-hidden-layer networks.

Network (PHYSICS.md section 1): f(x) = b1 + sum_i W1_i h_i(x), h_i(x) = phi(W0_i . x + b0_i),
W0 ~ N(0, sw0^2/d), b0 ~ N(0, sb0^2), W1 ~ N(0, sw1^2/N), b1 ~ N(0, sb1^2).  The preactivation
covariance is k(x, y) = sb0^2 + sw0^2 x.y / d.  Inputs are arrays of shape (n_inputs, d).
"""

from __future__ import annotations

import numpy as np

ARCHITECTURES = ("relu", "erf", "gauss")


def preactivation_cov(inputs: np.ndarray, sw0: float, sb0: float) -> np.ndarray:
    """k(x_a, x_b) = sb0^2 + sw0^2 x_a . x_b / d for all input pairs, shape (n, n)."""
    x = np.asarray(inputs, dtype=np.float64)
    d = x.shape[1]
    return sb0**2 + sw0**2 * (x @ x.T) / d


def unit_m2(arch: str, inputs: np.ndarray, sw0: float, sb0: float) -> np.ndarray:
    """E[h(x_a) h(x_b)] for one hidden unit, closed form, shape (n, n)."""
    k = preactivation_cov(inputs, sw0, sb0)
    diag = np.diag(k)
    if arch == "erf":
        arg = 2 * k / np.sqrt(np.outer(1 + 2 * diag, 1 + 2 * diag))
        return (2 / np.pi) * np.arcsin(np.clip(arg, -1.0, 1.0))
    if arch == "relu":
        norm = np.sqrt(np.outer(diag, diag))
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(norm > 0, k / norm, 1.0)
        theta = np.arccos(np.clip(cos, -1.0, 1.0))
        return norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    if arch == "gauss":
        return np.exp(k - 0.5 * (diag[:, None] + diag[None, :]))
    raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")


def gp_kernel(
    arch: str, inputs: np.ndarray, sw0: float, sb0: float, sw1: float, sb1: float
) -> np.ndarray:
    """Infinite-width output kernel K(x_a, x_b) = sb1^2 + sw1^2 E[h(x_a) h(x_b)], shape (n, n)."""
    return sb1**2 + sw1**2 * unit_m2(arch, inputs, sw0, sb0)
