"""Infinite-width (GP) kernels of single-hidden-layer networks (closed forms where they exist).

Network (docs/physics.md section 1): f(x) = b1 + sum_i W1_i h_i(x), h_i(x) = phi(W0_i . x + b0_i),
W0 ~ N(0, sw0^2/d), b0 ~ N(0, sb0^2), W1 ~ N(0, sw1^2/N), b1 ~ N(0, sb1^2); the cos-net draws
b0 ~ U(-pi, pi) instead (docs/physics.md section 7).  The preactivation
covariance is k(x, y) = sb0^2 + sw0^2 x.y / d.  Inputs are arrays of shape (n_inputs, d).
"""

from __future__ import annotations

import numpy as np

from nnfield.activations import REGISTRY, SINGLE_LAYER

ARCHITECTURES = SINGLE_LAYER  # nnfield.activations


def preactivation_cov(inputs: np.ndarray, sw0: float, sb0: float) -> np.ndarray:
    """k(x_a, x_b) = sb0^2 + sw0^2 x_a . x_b / d for all input pairs, shape (n, n)."""
    x = np.asarray(inputs, dtype=np.float64)
    d = x.shape[1]
    return sb0**2 + sw0**2 * (x @ x.T) / d


def unit_m2(arch: str, inputs: np.ndarray, sw0: float, sb0: float) -> np.ndarray:
    """E[h(x_a) h(x_b)] for one hidden unit, closed form, shape (n, n)."""
    return unit_m2_cross(arch, inputs, inputs, sw0, sb0)


def unit_m2_cross(arch: str, x: np.ndarray, y: np.ndarray, sw0: float, sb0: float) -> np.ndarray:
    """E[h(x_a) h(y_q)] for one hidden unit between two point sets, shape (len(x), len(y))."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = x.shape[1]
    k = sb0**2 + sw0**2 * (x @ y.T) / d
    kx = sb0**2 + sw0**2 * np.sum(x * x, axis=1) / d
    ky = sb0**2 + sw0**2 * np.sum(y * y, axis=1) / d
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    act = REGISTRY[arch]
    if act.uniform_phase:  # cos-net: b0 ~ U(-pi, pi), sb0 drops out of the phase average
        return act.phase_m2(k, kx, ky)
    return act.unit_m2(k, kx, ky)  # closed form (softplus: quadrature), activations


def gp_kernel(
    arch: str, inputs: np.ndarray, sw0: float, sb0: float, sw1: float, sb1: float
) -> np.ndarray:
    """Infinite-width output kernel K(x_a, x_b) = sb1^2 + sw1^2 E[h(x_a) h(x_b)], shape (n, n)."""
    return sb1**2 + sw1**2 * unit_m2(arch, inputs, sw0, sb0)


def gp_cross_kernel(
    arch: str, x: np.ndarray, y: np.ndarray, sw0: float, sb0: float, sw1: float, sb1: float
) -> np.ndarray:
    """K(x_a, y_q) between two point sets (e.g. inputs and integration nodes), (len(x), len(y))."""
    return sb1**2 + sw1**2 * unit_m2_cross(arch, x, y, sw0, sb0)
