"""Layer-to-layer flow of deep MLP ensembles: kernel, NTK and 4-point vertex recursions.

Conventions (PHYSICS.md section 2; "The Principles of Deep Learning Theory", Roberts, Yaida and
Hanin): layer l = 1 .. L counts weight matrices, so z^(1) = b^(1) + W^(1) x is the first
preactivation and z^(L) the output; there are L - 1 hidden layers of width N.
  W^(1) ~ N(0, C_W / d),  W^(l+1) ~ N(0, C_W / N),  b^(l) ~ N(0, C_b).
Infinite-width kernel:  K^(1)_ab = C_b + C_W x_a.x_b / d,
                        K^(l+1)_ab = C_b + C_W E[phi(u_a) phi(u_b)],  u ~ N(0, K^(l)).
NTK (NTK parameterisation with lambda_b = C_b, lambda_W = C_W):
                        Theta^(1) = K^(1),
                        Theta^(l+1)_ab = K^(l+1)_ab + C_W E[phi'(u_a) phi'(u_b)] Theta^(l)_ab.
4-point vertex, defined by the connected 4-point function of one preactivation,
  E[z_a1 z_a2 z_a3 z_a4]_conn = (V_(a1a2)(a3a4) + V_(a1a3)(a2a4) + V_(a1a4)(a2a3)) / N + O(1/N^2),
with V^(1) = 0 and
  V^(l+1)_(a1a2)(a3a4) = C_W^2 (E[phi_a1 phi_a2 phi_a3 phi_a4] - E[phi_a1 phi_a2] E[phi_a3 phi_a4])
                         + C_W^2 / 4 sum_b D_(a1a2),(b1b2) V^(l)_(b1b2)(b3b4) D_(a3a4),(b3b4),
  D_(a1a2),(b1b2) = E[d^2 (phi_a1 phi_a2) / du_b1 du_b2]
                  = sum_c Kinv_b1c1 Kinv_b2c2 E[phi_a1 phi_a2 (u_c1 u_c2 - K_c1c2)]
(Gaussian integration by parts, so kinks such as ReLU's need no delta functions).  For one input
this is V^(l+1) = chi^2 V^(l) + C_W^2 (E phi^4 - (E phi^2)^2) with chi = dK^(l+1)/dK^(l).
Expectations use a composite polar Gauss-Legendre rule graded toward the kinks (rank <= 2), so
at most two inputs are handled jointly; kernels of more inputs are built pair by pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from nnfield.theory.unit_moments import _factor, _polar_panels

SQRT2 = np.sqrt(2.0)


def _gelu(u):
    return 0.5 * u * (1 + erf(u / SQRT2))


def _gelu_prime(u):
    return 0.5 * (1 + erf(u / SQRT2)) + u * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)


def _gauss_unit(offset):
    """Gauss-net unit phi(u_a) = exp(u_a - K_aa): normalised so that E[phi_a phi_b] =
    exp(K_ab - (K_aa + K_bb)/2), the translation-invariant kernel (PHYSICS.md section 1)."""
    return (lambda u: np.exp(u - offset)), (lambda u: np.exp(u - offset))


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": (lambda u: np.maximum(u, 0.0), lambda u: (u > 0).astype(float)),
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "erf": (erf, lambda u: 2 / np.sqrt(np.pi) * np.exp(-u * u)),
    "gelu": (_gelu, _gelu_prime),
    "linear": (lambda u: u, np.ones_like),
}
"""Activation name -> (phi, phi').  "gauss" is added per layer: its unit depends on K^(l)_aa."""

ALL_ACTIVATIONS = (*ACTIVATIONS, "gauss")


def activation_at(activation: str, kernel_diag: np.ndarray) -> tuple[Callable, Callable]:
    """(phi, phi') acting on u of shape (..., n) at a layer whose kernel diagonal is
    ``kernel_diag`` (n,): the plain activation, or the Gauss-net unit exp(u_a - K_aa)."""
    if activation == "gauss":
        return _gauss_unit(np.asarray(kernel_diag))
    return ACTIVATIONS[activation]


def gaussian_rule(cov: np.ndarray, nodes: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u (Q, n) and weights (Q,) with sum_q w_q F(u_q) ~ E[F(u)], u ~ N(0, cov), n <= 2.

    Polar Gauss-Legendre panels graded toward the zero lines of every u_a (where ReLU kinks
    and steep activations switch), accurate to ~1e-13 for the activations above.
    """
    lmat = _factor(np.atleast_2d(cov), tol=1e-14)
    if lmat.shape[1] == 0:  # zero covariance: a point mass at 0
        return np.zeros((1, cov.shape[0])), np.ones(1)
    if lmat.shape[1] > 2:
        raise ValueError(f"gaussian_rule handles covariance rank <= 2, got {lmat.shape[1]}")
    quad = _polar_panels(lmat, lambda u: u, nodes)
    return quad.values, quad.weights


def critical_point(activation: str) -> tuple[float, float]:
    """(C_b, C_W) at which the kernel of one input is at a fixed point with chi = 1, for the
    activations whose criticality is scale invariant (ReLU: (0, 2); linear: (0, 1)) or set by
    the origin (tanh, erf: C_b = 0 and C_W = 1 / phi'(0)^2); for the Gauss-net unit, whose
    E[phi^2] = 1 at any K, (0, 1) is the fixed point K = 1 of every input."""
    if activation == "relu":
        return 0.0, 2.0
    if activation in ("linear", "tanh", "gauss"):
        return 0.0, 1.0
    if activation == "erf":
        return 0.0, np.pi / 4
    raise ValueError(f"no critical point tabulated for {activation!r}")


def preserving_weight_variance(activation: str, kernel: float, cb: float = 0.0) -> float:
    """C_W that keeps a single-input kernel K fixed for the given C_b: K = C_b + C_W E[phi^2]."""
    phi, _ = activation_at(activation, np.array([kernel]))
    u, w = gaussian_rule(np.array([[kernel]]))
    second = float(w @ phi(u)[:, 0] ** 2)
    if not kernel > cb:
        raise ValueError(f"C_b = {cb} must be below the kernel K = {kernel}")
    return (kernel - cb) / second


@dataclass(frozen=True)
class DeepTheory:
    """Infinite-width kernels and 1/N vertices at layers l = 1 .. L (index l - 1).

    K, Theta:  (L, n, n);  V: (L, n, n, n, n) (only for n <= 2 inputs, else None);
    V_diag: (L, n) the single-input vertex V_(aa)(aa);  chi: (L, n) dK^(l+1)/dK^(l) per input.
    """

    K: np.ndarray
    Theta: np.ndarray
    V: np.ndarray | None
    V_diag: np.ndarray
    chi: np.ndarray

    def excess_kurtosis(self, width: int) -> np.ndarray:
        """Leading-order excess kurtosis 3 V / (N K^2) of each input at each layer, (L, n)."""
        k_diag = np.diagonal(self.K, axis1=1, axis2=2)
        return 3 * self.V_diag / (width * k_diag**2)


def _pair_expectations(phi, dphi, cov2: np.ndarray):
    """E[phi_a phi_b], E[phi'_a phi'_b] for a 2 x 2 covariance."""
    u, w = gaussian_rule(cov2)
    p, dp = phi(u), dphi(u)
    return float(w @ (p[:, 0] * p[:, 1])), float(w @ (dp[:, 0] * dp[:, 1]))


def _vertex_step(phi, cov: np.ndarray, v: np.ndarray, cw: float) -> np.ndarray:
    """One step of the multi-input vertex recursion at kernel ``cov`` (n x n, n <= 2)."""
    u, w = gaussian_rule(cov)
    p = phi(u)  # (Q, n)
    pp = p[:, :, None] * p[:, None, :]  # (Q, n, n)
    m2 = np.einsum("q,qab->ab", w, pp)
    m4 = np.einsum("q,qab,qcd->abcd", w, pp, pp)
    fluct = m4 - np.einsum("ab,cd->abcd", m2, m2)
    uu = u[:, :, None] * u[:, None, :] - cov[None]  # (Q, n, n)
    moment = np.einsum("q,qab,qcd->abcd", w, pp, uu)  # E[phi_a phi_b (u_c u_d - K_cd)]
    kinv = np.linalg.pinv(cov)
    deriv = np.einsum("abcd,ec,fd->abef", moment, kinv, kinv)  # D_(ab),(ef)
    flow = np.einsum("abef,efgh,cdgh->abcd", deriv, v, deriv)
    return cw**2 * fluct + cw**2 / 4 * flow


def deep_theory(
    activation: str, inputs: np.ndarray, depth: int, cw: float, cb: float
) -> DeepTheory:
    """Kernels, NTK and vertices of a depth-``depth`` MLP at ``inputs`` (n, d)."""
    if activation not in ALL_ACTIVATIONS:
        known = ", ".join(ALL_ACTIVATIONS)
        raise ValueError(f"unknown activation {activation!r}; known: {known}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    n = x.shape[0]
    k = cb + cw * (x @ x.T) / x.shape[1]
    kernels, ntks, chis, vdiag = [k], [k.copy()], [], [np.zeros(n)]
    vertex = np.zeros((n, n, n, n)) if n <= 2 else None
    vertices = [vertex] if vertex is not None else None
    for _ in range(depth - 1):
        k_prev, t_prev = kernels[-1], ntks[-1]
        k_next, t_next = np.empty_like(k_prev), np.empty_like(t_prev)
        kdiag = np.diag(k_prev)
        chi = np.empty(n)
        v_next = np.empty(n)
        for a in range(n):
            for b in range(a, n):
                sub = k_prev[np.ix_([a, b], [a, b])]
                phi, dphi = activation_at(activation, kdiag[[a, b]])
                e_pp, e_dd = _pair_expectations(phi, dphi, sub)
                k_next[a, b] = k_next[b, a] = cb + cw * e_pp
                t_next[a, b] = t_next[b, a] = k_next[a, b] + cw * e_dd * t_prev[a, b]
            kaa = k_prev[a, a]
            phi, _ = activation_at(activation, kdiag[[a]])
            u, w = gaussian_rule(np.array([[kaa]]))
            p2 = phi(u)[:, 0] ** 2
            chi[a] = cw * float(w @ (p2 * (u[:, 0] ** 2 - kaa))) / (2 * kaa**2) if kaa > 0 else 0
            fluct = cw**2 * (float(w @ p2**2) - float(w @ p2) ** 2)
            v_next[a] = chi[a] ** 2 * vdiag[-1][a] + fluct
        if vertices is not None:
            phi_all, _ = activation_at(activation, kdiag)
            vertices.append(_vertex_step(phi_all, k_prev, vertices[-1], cw))
        kernels.append(k_next)
        ntks.append(t_next)
        chis.append(chi)
        vdiag.append(v_next)
    chis.append(np.full(n, np.nan))  # the susceptibility of the last layer is not used
    return DeepTheory(
        K=np.stack(kernels),
        Theta=np.stack(ntks),
        V=np.stack(vertices) if vertices is not None else None,
        V_diag=np.stack(vdiag),
        chi=np.stack(chis),
    )
