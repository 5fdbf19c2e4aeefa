"""Momentum-space propagator and quartic vertex of the cos-net at order 1/N (docs/physics.md
section 7).

Network: f(x) = b1 + sum_{i=1..N} W1_i cos(w_i . x + b0_i), x in R^d, with w_i ~ N(0, s^2 I_d),
s^2 = sw0^2/d, b0_i ~ U(-pi, pi), W1_i ~ N(0, sw1^2/N), b1 ~ N(0, sb1^2).  rho(w) is the density of
one frequency w, rho(w) = (2 pi s^2)^(-d/2) exp(-|w|^2 / (2 s^2)).

Conventions.  Fourier transform in every argument, F~(p_1..p_n) = int prod_k d^dx_k
exp(-i p_k . x_k) F(x_1..x_n), inverse int prod_k d^dp_k/(2 pi)^d exp(+i p_k . x_k).  The action is
that of docs/physics.md section 1.5 with a non-local quartic term,

    S[f] = (1/2) f K^-1 f + (1/4!) int d^dy_1..d^dy_4 lambda(y_1..y_4) f(y_1) f(y_2) f(y_3) f(y_4)
         = ... + (1/4!) int prod_k d^dp_k/(2 pi)^d  lambda~(p_1..p_4) f~(-p_1) ... f~(-p_4),

lambda symmetric; a local lambda(y_1) delta(y_1 - y_2) delta(y_1 - y_3) delta(y_1 - y_4) is the
coupling of section 1.5.  At tree level (the 4! contractions cancel the 1/4!)
G4_conn(x) = - int lambda(y) prod_k K(x_k, y_k), i.e. in momentum space

    G4_conn~(p) = - lambda~(p) prod_k K~(p_k),   lambda~ = - G4_conn~ / prod_k K~(p_k),

so heavier-than-Gaussian tails (G4_conn > 0) mean lambda < 0, as in section 1.5.

Propagator.  K(x, y) = sb1^2 + (sw1^2/2) exp(-s^2 |x - y|^2 / 2); its transform is
(2 pi)^d delta(p + q) K~(p) with

    K~(p) = sb1^2 (2 pi)^d delta(p) + (sw1^2/2) (2 pi)^d rho(p).

The delta term is the zero mode b1: f = b1 + g with b1 Gaussian and independent of the rest, so
b1 decouples from the interaction, and ``propagator`` is the weight part (sw1^2/2) (2 pi)^d rho(p)
used for the amputation.

Four-point function.  G4_conn = (sw1^4/N) (3 m4 - sum_3 m2 m2) with
m4 = 2^-4 sum_(balanced e) E_w exp(i w . sum_k e_k x_k) (6 sign vectors with sum_k e_k = 0) and
m2(x, y) = (1/2) E_w exp(i w . (x - y)), so

    G4_conn~(p) = sum_(balanced e) int d^dw A1(w) prod_k delta^d(p_k - e_k w)         (one mode)
                + sum_(3 pairings ab|cd) A2(p_a, p_c) delta^d(p_a + p_b) delta^d(p_c + p_d) (pairs)
    A1(w)    = (3 sw1^4 / (16 N)) (2 pi)^(4d) rho(w)
    A2(p, q) = -(sw1^4 / (4 N)) (2 pi)^(4d) rho(p) rho(q)

("one mode": all four momenta along one frequency w; "pairs": momentum conserved pair by pair).
Amputated with prod_k K~(p_k), where on the one-mode support prod_k rho(p_k) = rho(w)^4:

    lambda~(p) = sum_(balanced e) int d^dw lambda1(w) prod_k delta^d(p_k - e_k w)
               + sum_(3 pairings ab|cd) lambda2(p_a, p_c) delta^d(p_a + p_b) delta^d(p_c + p_d)
    lambda1(w)    = -3 / (N sw1^4 rho(w)^3)                       (< 0)
    lambda2(p, q) = +4 / (N sw1^4 rho(p) rho(q))                  (> 0)

Both grow like Gaussians in the UV: lambda1 ~ exp(3 |w|^2 / (2 s^2)), lambda2 ~
exp((|p|^2 + |q|^2) / (2 s^2)); only the products with the external propagators (A1, A2) are
integrable.  ``g4_conn_from_momentum`` inverse-transforms this representation (the frequency
integrals by tensor Gauss-Hermite quadrature) back to G4_conn over colex-sorted 4-tuples
(nnfield.tuples), the layout of nnfield.theory.finite_width.SingleLayerExact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from nnfield import tuples as tup

TWO_PI = 2.0 * np.pi
MAX_NODES = 4096  # tensor-rule size M = nodes_per_dim^d allowed for the (M, M) pair term


def _variance(sw0: float, d: int) -> float:
    """s^2 = sw0^2 / d, the variance of each component of a first-layer frequency w."""
    return sw0**2 / d


def frequency_density(w: np.ndarray, sw0: float, d: int) -> np.ndarray:
    """rho(w) = (2 pi s^2)^(-d/2) exp(-|w|^2 / (2 s^2)), s^2 = sw0^2/d; ``w`` has shape (..., d)."""
    w = np.asarray(w, dtype=np.float64)
    s2 = _variance(sw0, d)
    return np.exp(-0.5 * np.sum(w * w, axis=-1) / s2) / (TWO_PI * s2) ** (d / 2)


def propagator(p: np.ndarray, sw0: float, sw1: float, d: int) -> np.ndarray:
    """Weight part of the momentum-space propagator, K~(p) = (sw1^2/2) (2 pi)^d rho(p).

    The full propagator adds sb1^2 (2 pi)^d delta(p), the decoupled zero mode b1; ``p`` has
    shape (..., d)."""
    return 0.5 * sw1**2 * TWO_PI**d * frequency_density(p, sw0, d)


def balanced_signs(order: int) -> np.ndarray:
    """Every e in {+1, -1}^order with sum_k e_k = 0, as rows (6 for order 4, 20 for order 6)."""
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=order))).reshape(-1, order)
    return signs[signs.sum(axis=1) == 0]


def one_mode_vertex(w: np.ndarray, sw0: float, sw1: float, d: int, width: float) -> np.ndarray:
    """lambda1(w) = -3 / (N sw1^4 rho(w)^3): the strength of the one-mode quartic vertex.

    It multiplies prod_k delta^d(p_k - e_k w) for every one of the 6 balanced sign patterns e
    alike (the pattern fixes the support, not the strength).  Grows like exp(3 |w|^2 / (2 s^2));
    overflows beyond |w|^2 / s^2 ~ 470."""
    w = np.asarray(w, dtype=np.float64)
    s2 = _variance(sw0, d)
    inv_rho3 = (TWO_PI * s2) ** (1.5 * d) * np.exp(1.5 * np.sum(w * w, axis=-1) / s2)
    return -3.0 / (width * sw1**4) * inv_rho3


def pair_vertex(
    p1: np.ndarray, p3: np.ndarray, sw0: float, sw1: float, d: int, width: float
) -> np.ndarray:
    """lambda2(p1, p3) = +4 / (N sw1^4 rho(p1) rho(p3)): the strength of the pair vertex, the
    coefficient of delta^d(p1 + p2) delta^d(p3 + p4) (and of the two other pairings alike)."""
    p1, p3 = np.asarray(p1, dtype=np.float64), np.asarray(p3, dtype=np.float64)
    s2 = _variance(sw0, d)
    sq = np.sum(p1 * p1, axis=-1) + np.sum(p3 * p3, axis=-1)
    return 4.0 / (width * sw1**4) * (TWO_PI * s2) ** d * np.exp(0.5 * sq / s2)


def one_mode_amplitude(w: np.ndarray, sw0: float, sw1: float, d: int, width: float) -> np.ndarray:
    """A1(w) = (3 sw1^4 / (16 N)) (2 pi)^(4d) rho(w): G4_conn~ on the one-mode support, per
    balanced sign pattern (from the 3 m4 term: 3 x 2^-4)."""
    return 3.0 * sw1**4 / (16.0 * width) * TWO_PI ** (4 * d) * frequency_density(w, sw0, d)


def pair_amplitude(
    p1: np.ndarray, p3: np.ndarray, sw0: float, sw1: float, d: int, width: float
) -> np.ndarray:
    """A2(p1, p3) = -(sw1^4 / (4 N)) (2 pi)^(4d) rho(p1) rho(p3): G4_conn~ on the pair support
    p1 + p2 = 0, p3 + p4 = 0, per pairing (from - sum_3 m2 m2: each m2 carries 1/2)."""
    rho = frequency_density(p1, sw0, d) * frequency_density(p3, sw0, d)
    return -(sw1**4) / (4.0 * width) * TWO_PI ** (4 * d) * rho


@dataclass(frozen=True)
class FrequencyRule:
    """Tensor Gauss-Hermite rule for the frequency density: sum_j weights_j F(nodes_j)
    approximates int d^dw rho(w) F(w)."""

    nodes: np.ndarray  # (M, d), M = n^d
    weights: np.ndarray  # (M,), positive, summing to 1
    density: np.ndarray  # (M,) rho at the nodes, to turn a density into a rho-weighted integrand


def frequency_rule(sw0: float, d: int, nodes_per_dim: int) -> FrequencyRule:
    """``nodes_per_dim`` probabilists' Gauss-Hermite nodes per dimension, scaled by s."""
    z, wz = np.polynomial.hermite_e.hermegauss(nodes_per_dim)
    wz = wz / np.sqrt(TWO_PI)
    grid = np.stack([g.ravel() for g in np.meshgrid(*([z] * d), indexing="ij")], axis=1)
    weights = np.ones(grid.shape[0])
    for g in np.meshgrid(*([wz] * d), indexing="ij"):
        weights *= g.ravel()
    nodes = np.sqrt(_variance(sw0, d)) * grid
    return FrequencyRule(nodes, weights, frequency_density(nodes, sw0, d))


def kernel_from_momentum(
    inputs: np.ndarray, sw0: float, sw1: float, nodes_per_dim: int = 32
) -> np.ndarray:
    """Weight part of the kernel, K(x_a, x_b) - sb1^2 = int d^dp/(2 pi)^d exp(i p.(x_a - x_b))
    K~(p), by quadrature, over colex-sorted 2-tuples (shape (T2,))."""
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    d = x.shape[1]
    rule = frequency_rule(sw0, d, nodes_per_dim)
    t2 = tup.sorted_tuples(x.shape[0], 2)
    integrand = propagator(rule.nodes, sw0, sw1, d) / (TWO_PI**d * rule.density)  # (M,)
    phase = rule.nodes @ (x[t2[:, 0]] - x[t2[:, 1]]).T  # (M, T2)
    return (rule.weights * integrand) @ np.cos(phase)


def g4_conn_parts_from_momentum(
    inputs: np.ndarray,
    sw0: float,
    sw1: float,
    width: float,
    nodes_per_dim: int = 32,
    amputated: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The one-mode and pair parts of G4_conn over colex-sorted 4-tuples, each shape (T4,), by
    the inverse Fourier transform of their momentum-space representation:

        one mode: (2 pi)^(-4d) sum_(balanced e) int d^dw A1(w) exp(i w . sum_k e_k x_k)
        pairs:    (2 pi)^(-4d) sum_(3 pairings ab|cd) int d^dp d^dq A2(p, q)
                      exp(i p . (x_a - x_b) + i q . (x_c - x_d)).

    The frequency integrals use ``frequency_rule`` in each variable (the pair term a product
    rule in (p, q), without assuming that A2 factorises).  ``amputated``: use the tree-level
    form of the action, -lambda~ prod_k K~(p_k), from ``one_mode_vertex``, ``pair_vertex`` and
    ``propagator``, instead of the amplitudes A1, A2; the two agree to rounding.  The pair term
    holds an (M, M) matrix, M = nodes_per_dim^d, so M is limited to 4096.
    """
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    n, d = x.shape
    if nodes_per_dim**d > MAX_NODES:
        raise ValueError(
            f"{nodes_per_dim}^{d} quadrature nodes exceed {MAX_NODES} (the pair term needs an "
            "M x M matrix); use fewer nodes per dimension"
        )
    rule = frequency_rule(sw0, d, nodes_per_dim)
    w, scale = rule.nodes, TWO_PI ** (4 * d)
    t4 = tup.sorted_tuples(n, 4)

    if amputated:
        legs = propagator(w, sw0, sw1, d)  # K~(e_k w) = K~(w): rho is even
        a1 = -one_mode_vertex(w, sw0, sw1, d, width) * legs**4
    else:
        a1 = one_mode_amplitude(w, sw0, sw1, d, width)
    f1 = rule.weights * a1 / (scale * rule.density)  # (M,)
    signs = balanced_signs(4)  # (6, 4)
    total = np.einsum("ek,tkd->ted", signs, x[t4])  # (T4, 6, d): sum_k e_k x_k
    one_mode = (np.cos(total @ w.T) @ f1).sum(axis=1)  # (T4, 6) summed over patterns

    # pairs: B[(a, b), (c, e)] = sum_jl W_j W_l F(p_j, q_l) cos(p_j.(x_a - x_b))
    #                                                      x cos(q_l.(x_c - x_e));
    # the sine parts cancel on the symmetric rule
    p, q = w[:, None, :], w[None, :, :]
    if amputated:
        legs2 = propagator(w, sw0, sw1, d) ** 2  # K~(p) K~(-p)
        a2 = -pair_vertex(p, q, sw0, sw1, d, width) * legs2[:, None] * legs2[None, :]
    else:
        a2 = pair_amplitude(p, q, sw0, sw1, d, width)
    wr = rule.weights / rule.density
    f2 = wr[:, None] * a2 * wr[None, :] / scale  # (M, M)
    diff = (x[:, None, :] - x[None, :, :]).reshape(n * n, d)
    c = np.cos(w @ diff.T)  # (M, n^2)
    b = c.T @ f2 @ c  # (n^2, n^2), row (a, b) = a * n + b
    pair = np.zeros(t4.shape[0])
    for (i, j), (k, m) in (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))):
        pair += b[t4[:, i] * n + t4[:, j], t4[:, k] * n + t4[:, m]]
    return one_mode, pair


def g4_conn_from_momentum(
    inputs: np.ndarray,
    sw0: float,
    sw1: float,
    width: float,
    nodes_per_dim: int = 32,
    amputated: bool = False,
) -> np.ndarray:
    """Position-space G4_conn of the width-``width`` cos-net over colex-sorted 4-tuples (the
    layout of SingleLayerExact(...).at_width(width).G4_conn), from the momentum-space one-mode
    and pair terms (``g4_conn_parts_from_momentum``).  Independent of sb1 (the zero mode)."""
    one_mode, pair = g4_conn_parts_from_momentum(inputs, sw0, sw1, width, nodes_per_dim, amputated)
    return one_mode + pair
