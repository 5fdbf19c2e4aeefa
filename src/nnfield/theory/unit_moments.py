"""Joint moments of ONE hidden unit, m_k(a1..ak) = E[h(x_a1) ... h(x_ak)], to ~1e-12.

The preactivations u(x) = W0 . x + b0 of one unit are jointly Gaussian with covariance
k(x, y) = sb0^2 + sw0^2 x.y/d (rank r <= d + 1), so u = L z with z ~ N(0, I_r).
- gauss: closed form, m_k = exp(1/2 sum_ij k_ij - sum_i k_ii) over the tuple's entries.
- cos (the cos-net, b0 ~ U(-pi, pi)): closed form.  Each cosine is two exponentials, and the
  phase average keeps only the sign vectors e in {+1, -1}^k with sum_i e_i = 0:
  m_k = 2^-k sum_(balanced e) exp(-1/2 e^T k e) (docs/physics.md section 7).  Odd moments
  vanish, sb0 drops out, and m_k depends on differences of inputs only.
- relu: homogeneous of degree 1, so with z = rho (cos t, sin t) the radial part is the exact
  moment E[rho^k] = 2^(k/2) Gamma(1 + k/2) and the angular integrand is a product of clipped
  cosines; Gauss-Legendre on the arcs between its kinks is exact to rounding.  Needs r <= 2
  (d = 1, or inputs spanning at most a plane with sb0 = 0).
- erf: composite Gauss-Legendre in polar coordinates (r <= 2; panels graded towards the zeros
  of each preactivation, so steep saturating erf is resolved), Gauss-Hermite for r = 3; each
  rule reports its own accuracy (difference between two refinements).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import gamma

from nnfield.theory.kernels import ARCHITECTURES, preactivation_cov

log = logging.getLogger(__name__)


class TheoryUnavailable(ValueError):
    """No exact quadrature is implemented for this architecture and input geometry."""


def _factor(k: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """L with L L^T = k and as few columns as the numerical rank of k."""
    vals, vecs = np.linalg.eigh(k)
    keep = vals > tol * max(vals.max(), 1.0)
    return vecs[:, keep] * np.sqrt(vals[keep])


@dataclass(frozen=True)
class UnitQuadrature:
    """Nodes/weights such that m_k(tuple) = radial(k) * sum_j w_j prod_i values[j, tuple_i]."""

    values: np.ndarray  # (n_nodes, n_inputs): the integrand factor of each input at each node
    weights: np.ndarray  # (n_nodes,)
    homogeneous: bool  # True: multiply by the radial moment E[rho^k] (relu)

    def moments(self, tuples: np.ndarray) -> np.ndarray:
        """m_k for each row of ``tuples`` (int array (T, k)), shape (T,)."""
        tuples = np.asarray(tuples)
        order = tuples.shape[1]
        step = max(1, (1 << 22) // max(self.values.shape[0], 1))  # bound memory to ~32 MB
        result = np.empty(tuples.shape[0])
        for start in range(0, tuples.shape[0], step):
            chunk = tuples[start : start + step]
            prod = np.ones((self.values.shape[0], chunk.shape[0]))
            for col in range(order):
                prod *= self.values[:, chunk[:, col]]
            result[start : start + step] = self.weights @ prod
        if self.homogeneous:
            result *= 2 ** (order / 2) * gamma(1 + order / 2)
        return result


def _relu_quadrature(lmat: np.ndarray, nodes_per_arc: int = 40) -> UnitQuadrature:
    if lmat.shape[1] > 2:
        raise TheoryUnavailable(
            "exact ReLU moments need preactivations of rank <= 2 (d = 1, or sb0 = 0 and d = 2); "
            f"these inputs give rank {lmat.shape[1]}"
        )
    lmat = np.pad(lmat, ((0, 0), (0, 2 - lmat.shape[1])))
    theta = np.arctan2(lmat[:, 1], lmat[:, 0])
    kinks = np.concatenate([theta + np.pi / 2, theta - np.pi / 2]) % (2 * np.pi)
    edges = np.unique(np.concatenate([[0.0, 2 * np.pi], kinks]))
    x, w = np.polynomial.legendre.leggauss(nodes_per_arc)
    t_nodes, t_weights = [], []
    for lo, hi in itertools.pairwise(edges):
        if hi - lo < 1e-15:
            continue
        t_nodes.append(0.5 * (hi - lo) * x + 0.5 * (hi + lo))
        t_weights.append(0.5 * (hi - lo) * w)
    t = np.concatenate(t_nodes)
    directions = np.stack([np.cos(t), np.sin(t)], axis=1)
    values = np.maximum(directions @ lmat.T, 0.0)
    return UnitQuadrature(values, np.concatenate(t_weights) / (2 * np.pi), homogeneous=True)


def _hermite_quadrature(lmat: np.ndarray, phi, nodes_per_dim: int) -> UnitQuadrature:
    """Tensor Gauss-Hermite rule over z ~ N(0, I_r), r = rank <= 3."""
    rank = lmat.shape[1]
    if rank > 3:
        raise TheoryUnavailable(f"Gauss-Hermite quadrature is limited to rank <= 3, got {rank}")
    x, w = np.polynomial.hermite_e.hermegauss(nodes_per_dim)
    w = w / np.sqrt(2 * np.pi)
    grids = np.meshgrid(*([x] * rank), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.ones(z.shape[0])
    for g in np.meshgrid(*([w] * rank), indexing="ij"):
        weights *= g.ravel()
    return UnitQuadrature(phi(z @ lmat.T), weights, homogeneous=False)


def _graded_panels(lo: float, hi: float, first: float, ratio: float = 2.0) -> list[float]:
    """Panel edges on [lo, hi], geometrically graded from width ``first`` at both ends."""
    left, right, width = [lo], [hi], first
    while left[-1] + width < right[-1] - width:
        left.append(left[-1] + width)
        right.append(right[-1] - width)
        width *= ratio
    return left + right[::-1]


def _polar_panels(lmat: np.ndarray, phi, nodes: int, rho_max: float = 10.5) -> UnitQuadrature:
    """Rank <= 2: z = rho (cos t, sin t) with composite Gauss-Legendre in t and rho.

    Angular panels are graded towards every zero of L_i . (cos t, sin t), where a steep
    activation switches sign; radial panels are graded towards 0 and stop at rho_max
    (the Gaussian mass beyond is below 1e-23).  Handles steep, saturating activations that
    defeat Gauss-Hermite.
    """
    lmat = np.pad(lmat, ((0, 0), (0, 2 - lmat.shape[1])))
    theta = np.arctan2(lmat[:, 1], lmat[:, 0])
    kinks = np.concatenate([theta + np.pi / 2, theta - np.pi / 2]) % (2 * np.pi)
    breaks = np.unique(np.concatenate([[0.0, 2 * np.pi], kinks]))
    x, w = np.polynomial.legendre.leggauss(nodes)
    steep = float(np.sqrt((lmat**2).sum(1)).max()) * rho_max

    def rule(edges):
        e = np.asarray(edges)
        h = np.diff(e)[:, None]
        return ((x[None] + 1) * h / 2 + e[:-1, None]).ravel(), (w[None] * h / 2).ravel()

    t_edges: list[float] = []
    for lo, hi in itertools.pairwise(breaks):
        if hi - lo > 1e-14:
            t_edges += _graded_panels(lo, hi, min(0.5 / steep, (hi - lo) / 2))[:-1]
    t, wt = rule([*t_edges, 2 * np.pi])
    rho, wr = rule([*_graded_panels(0.0, rho_max, min(0.5 / steep * rho_max, 0.5))[:-1], rho_max])
    radial = rho * np.exp(-(rho**2) / 2) * wr  # density rho e^{-rho^2/2} / (2 pi) with dt
    proj = np.stack([np.cos(t), np.sin(t)], 1) @ lmat.T  # (n_t, n_inputs)
    values = phi((rho[None, :, None] * proj[:, None, :]).reshape(-1, lmat.shape[0]))
    weights = (wt[:, None] * radial[None, :] / (2 * np.pi)).ravel()
    return UnitQuadrature(values, weights, homogeneous=False)


def _smooth_quadrature(lmat: np.ndarray, t6, phi) -> tuple[UnitQuadrature, float]:
    """A rule for a smooth activation (erf, softplus) and its accuracy bound: for rank <= 2 the
    composite polar rule, certified by the change between 16 and 24 nodes per panel on the
    6-fold moments; rank 3 falls back on Gauss-Hermite (96 nodes per dimension), certified by
    comparison with 64 nodes."""
    if lmat.shape[1] <= 2:
        coarse, fine = (_polar_panels(lmat, phi, n) for n in (16, 24))
    else:
        coarse, fine = (_hermite_quadrature(lmat, phi, n) for n in (64, 96))
    accuracy = float(np.max(np.abs(fine.moments(t6) - coarse.moments(t6))))
    return fine, accuracy


def _balanced_signs(order: int) -> np.ndarray:
    """Every e in {+1, -1}^order with sum(e) = 0, as rows."""
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=order))).reshape(-1, order)
    return signs[signs.sum(1) == 0]


def _cos_moments(k: np.ndarray, tuples: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """E[prod_i cos(u_(a_i) + b)] with u ~ N(0, k) and b ~ U(-pi, pi) (the cos-net unit):
    2^-order sum over balanced signs e of exp(-1/2 e^T k_sub e), k_sub the tuple's block of k."""
    order = tuples.shape[1]
    if order % 2:
        return np.zeros(tuples.shape[0])
    signs = _balanced_signs(order)  # (E, order)
    out = np.empty(tuples.shape[0])
    for start in range(0, tuples.shape[0], chunk):
        rows = tuples[start : start + chunk]
        sub = k[rows[:, :, None], rows[:, None, :]]  # (T, order, order)
        quad = np.einsum("ei,tij,ej->te", signs, sub, signs)
        out[start : start + chunk] = np.exp(-0.5 * quad).sum(1) / 2.0**order
    return out


class UnitMoments:
    """Joint moments of one hidden unit of a single-layer network at fixed inputs.

    ``inputs`` has shape (n_inputs, d); moments are indexed by input-index tuples.
    """

    def __init__(self, arch: str, inputs: np.ndarray, sw0: float, sb0: float):
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        self.arch = arch
        self.inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
        self.k = preactivation_cov(self.inputs, sw0, sb0)
        self._quad: UnitQuadrature | None = None
        self.accuracy = 0.0  # max abs error bound of the quadrature (0: closed form or exact)
        if arch == "relu":
            self._quad = _relu_quadrature(_factor(self.k))
        elif arch not in ("gauss", "cos"):  # smooth: erf, softplus (nnfield.activations)
            from nnfield.activations import REGISTRY
            from nnfield.tuples import sorted_tuples

            t6 = sorted_tuples(self.inputs.shape[0], 6)
            phi = REGISTRY[arch].numpy
            self._quad, self.accuracy = _smooth_quadrature(_factor(self.k), t6, phi)
            if self.accuracy > 1e-8:
                log.warning("%s moments converged only to %.1e (steep activations)", arch,
                            self.accuracy)  # fmt: skip

    def moments(self, tuples: np.ndarray) -> np.ndarray:
        """m_k(tuple) for each row of the int array ``tuples`` (T, k)."""
        tuples = np.asarray(tuples)
        if self.arch == "cos":
            return _cos_moments(self.k, tuples)
        if self.arch == "gauss":
            sub = self.k[tuples[:, :, None], tuples[:, None, :]]  # (T, k, k)
            diag = np.diagonal(sub, axis1=1, axis2=2)
            return np.exp(0.5 * sub.sum(axis=(1, 2)) - diag.sum(axis=1))
        assert self._quad is not None
        return self._quad.moments(tuples)
