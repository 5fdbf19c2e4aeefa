"""Layer-to-layer flow of deep MLP ensembles: kernel, NTK and 4-point vertex recursions.

Conventions (docs/physics.md section 2; "The Principles of Deep Learning Theory", Roberts, Yaida and
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
Next-to-leading-order mean metric ("The Principles of Deep Learning Theory", ch. 4): at finite
width the mean of the stochastic metric is E[G^(l)] = K^(l) + K1^(l) / N + O(1/N^2), with
K1^(1) = K1^(2) = 0 and
  K1^(l+1)_ab = C_W [ 1/2 sum_cd K1^(l)_cd E[d^2 (phi_a phi_b) / du_c du_d]
                      + 1/8 sum_cdef V^(l)_(cd)(ef) E[d^4 (phi_a phi_b) / du_c du_d du_e du_f] ],
expectations at u ~ N(0, K^(l)).  It is the O(1/N) Edgeworth expansion of one neuron's law,
E[O] = <O>_{K + K1/N} + (1/24) kappa_cdef <d^4 O / du_c du_d du_e du_f>_K with the connected
4-point function kappa = (V_(cd)(ef) + V_(ce)(df) + V_(cf)(de)) / N, applied to
E[G^(l+1)_ab] = C_b + C_W E[phi(z_a) phi(z_b)].  The derivatives are again Gaussian integrals
against Hermite polynomials (integration by parts).  For one input this is the book's
K1^(l+1) = chi K1^(l) + (C_W / 8) <phi^2 (u^4 - 6 K u^2 + 3 K^2)> V^(l) / K^4.  A two-input K1
needs only that pair's recursion, so any number of inputs is handled pair by pair.
Expectations use a composite polar Gauss-Legendre rule graded toward the kinks (rank <= 2), so
at most two inputs are handled jointly; kernels of more inputs are built pair by pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnfield.activations import REGISTRY, get
from nnfield.theory.unit_moments import _factor, _polar_panels

ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    name: (entry.numpy, entry.derivative)
    for name, entry in REGISTRY.items()
    if not entry.normalised
}
"""Activation name -> (phi, phi') from nnfield.activations.  "gauss" is added per layer: its unit
depends on K^(l)_aa."""

ALL_ACTIVATIONS = (*ACTIVATIONS, "gauss")


def activation_at(activation: str, kernel_diag: np.ndarray) -> tuple[Callable, Callable]:
    """(phi, phi') acting on u of shape (..., n) at a layer whose kernel diagonal is
    ``kernel_diag`` (n,): the plain activation, or the Gauss-net unit exp(u_a - K_aa), normalised
    so that E[phi_a phi_b] = exp(K_ab - (K_aa + K_bb)/2) (docs/physics.md section 1)."""
    return get(activation, ALL_ACTIVATIONS).numpy_at(np.asarray(kernel_diag))


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


CRITICAL_POINTS: dict[str, tuple[float, float]] = {
    "relu": (0.0, 2.0),
    "linear": (0.0, 1.0),
    "tanh": (0.0, 1.0),
    "gauss": (0.0, 1.0),
    "erf": (0.0, np.pi / 4),
}
"""(C_b, C_W) of :func:`critical_point`, by activation; the others (gelu, softplus) need both
given in the config."""


def critical_point(activation: str) -> tuple[float, float]:
    """(C_b, C_W) at which the kernel of one input is at a fixed point with chi = 1, for the
    activations whose criticality is scale invariant (ReLU: (0, 2); linear: (0, 1)) or set by
    the origin (tanh, erf: C_b = 0 and C_W = 1 / phi'(0)^2).  For the Gauss-net unit, whose
    E[phi^2] = 1 at any K, (0, 1) is only the fixed point K = 1 of every input: there chi = 2,
    not 1, so the vertex grows by about 4 per layer (docs/physics.md section 2.2)."""
    if activation not in CRITICAL_POINTS:
        raise ValueError(f"no critical point tabulated for {activation!r}")
    return CRITICAL_POINTS[activation]


def preserving_weight_variance(activation: str, kernel: float, cb: float = 0.0) -> float:
    """C_W that keeps a single-input kernel K fixed for the given C_b: K = C_b + C_W E[phi^2]."""
    phi, _ = activation_at(activation, np.array([kernel]))
    u, w = gaussian_rule(np.array([[kernel]]))
    second = float(w @ phi(u)[:, 0] ** 2)
    if not kernel > cb:
        raise ValueError(f"C_b = {cb} must be below the kernel K = {kernel}")
    return (kernel - cb) / second


TRUNCATION_FACTOR = 4.0
"""The NNLO remainder of the mean metric is estimated as (NLO correction) x eps / this factor
(``DeepTheory.truncation_estimate``); calibrated on exact layer-3 remainders."""


@dataclass(frozen=True)
class DeepTheory:
    """Infinite-width kernels and 1/N vertices at layers l = 1 .. L (index l - 1).

    K, Theta, K1:  (L, n, n);  V: (L, n, n, n, n) (only for n <= 2 inputs, else None);
    V_diag: (L, n) the single-input vertex V_(aa)(aa);  chi: (L, n) dK^(l+1)/dK^(l) per input.
    K1 is the 1/N correction of the mean metric: E[G^(l)] = K + K1 / N + O(1/N^2).
    """

    K: np.ndarray
    Theta: np.ndarray
    V: np.ndarray | None
    V_diag: np.ndarray
    chi: np.ndarray
    K1: np.ndarray

    def mean_metric(self, width: int) -> np.ndarray:
        """Next-to-leading-order mean metric K + K1 / N at width N, (L, n, n)."""
        return self.K + self.K1 / width

    def truncation_estimate(self, width: int) -> np.ndarray:
        """Estimated size of the O(1/N^2) terms that K + K1/N leaves out, (L, n, n).

        Each order of the 1/N expansion costs one power of its parameter, the normalised vertex
        eps = V_aa / (N K_aa^2) (a third of the leading-order excess kurtosis), so the remainder
        is estimated as the NLO correction times eps / TRUNCATION_FACTOR: sqrt(K_aa K_bb) r eps / 4
        with r the largest |K1_ab| / (N sqrt(K_aa K_bb)) and eps the largest vertex of either
        input, both up to layer l (corrections propagate).  An estimate, not a bound: the
        factor 1/4 is calibrated on remainders measured against exact layer-3 means (ReLU
        off-diagonal and tanh, N = 4 .. 16; see tests/test_depth_nlo.py), which it exceeds by
        1 to 2 times.  The plain square of the first correction, r^2, misses ReLU's off-diagonal
        remainder by a factor of 20.  The estimate is 0 where K1 is 0 at every layer so far
        (the first two layers, linear units, ReLU diagonals with C_b = 0, which are exact).
        """
        diag = np.abs(np.diagonal(self.K, axis1=1, axis2=2))
        root = np.sqrt(diag)
        scale = root[:, :, None] * root[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(scale > 0, np.abs(self.K1) / (width * scale), 0.0)
            vertex = np.where(diag > 0, self.V_diag / (width * diag**2), 0.0)
        eps = np.maximum.accumulate(vertex.max(axis=1), axis=0)[:, None, None]
        return scale * np.maximum.accumulate(rel, axis=0) * eps / TRUNCATION_FACTOR

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


def _hermite4(y: np.ndarray, kinv: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum_cdef V_(cd)(ef) He_cdef at every node: y (Q, n) = K^-1 u, He the fourth multivariate
    Hermite polynomial, so that E[F(u) He_cdef] = E[d^4 F / du_c du_d du_e du_f] for u ~ N(0, K).

    He_cdef = y_c y_d y_e y_f - (6 terms K^-1_cd y_e y_f) + (3 terms K^-1_cd K^-1_ef); with V's
    pair symmetries the 6 terms are 2 with K^-1 inside a pair and 4 across the pairs."""
    vy2 = np.einsum("cdef,qe,qf->qcd", v, y, y)  # V contracted with y y on its second pair
    quartic = np.einsum("qcd,qc,qd->q", vy2, y, y)
    within = np.einsum("cd,qcd->q", kinv, vy2)
    across = np.einsum("ce,cdef,qd,qf->q", kinv, v, y, y)
    constant = np.einsum("cd,cdef,ef->", kinv, v, kinv) + 2 * np.einsum(
        "ce,cdef,df->", kinv, v, kinv
    )
    return quartic - 2 * within - 4 * across + constant


def _nlo_metric_step(phi, cov: np.ndarray, k1: np.ndarray, v: np.ndarray, cw: float):
    """K1^(l+1) from K1^(l) and V^(l) at kernel ``cov`` (n x n, n <= 2): see the module doc."""
    u, w = gaussian_rule(cov)
    p = phi(u)  # (Q, n)
    pp = p[:, :, None] * p[:, None, :]  # (Q, n, n)
    kinv = np.linalg.pinv(cov)
    y = u @ kinv
    second = y[:, :, None] * y[:, None, :] - kinv[None]  # He_cd
    shift = np.einsum("q,qab,qcd,cd->ab", w, pp, second, k1)
    fluct = np.einsum("q,qab,q->ab", w, pp, _hermite4(y, kinv, v))
    return cw * (0.5 * shift + fluct / 8)


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
    corrections = [np.zeros((n, n))] if n <= 2 else None
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
            corrections.append(_nlo_metric_step(phi_all, k_prev, corrections[-1], vertices[-1], cw))
            vertices.append(_vertex_step(phi_all, k_prev, vertices[-1], cw))
        kernels.append(k_next)
        ntks.append(t_next)
        chis.append(chi)
        vdiag.append(v_next)
    chis.append(np.full(n, np.nan))  # the susceptibility of the last layer is not used
    if corrections is not None:
        k1 = np.stack(corrections)
    else:  # K1_ab needs only the pair (a, b): its own two-input recursion
        k1 = np.zeros((depth, n, n))
        for a in range(n):
            for b in range(a, n):
                pair = deep_theory(activation, x[sorted({a, b})], depth, cw, cb).K1
                k1[:, a, b] = k1[:, b, a] = pair[:, 0, -1]
    return DeepTheory(
        K=np.stack(kernels),
        Theta=np.stack(ntks),
        V=np.stack(vertices) if vertices is not None else None,
        V_diag=np.stack(vdiag),
        chi=np.stack(chis),
        K1=k1,
    )


FACTORISING_ACTIVATIONS = ("relu", "linear")
"""Activations whose stochastic metric is a product of independent per-layer factors at C_b = 0."""


def metric_moments(
    activation: str, inputs: np.ndarray, depth: int, width: int, cw: float, cb: float,
    max_power: int = 4,
) -> np.ndarray | None:  # fmt: skip
    """Exact E[(G^(l)_aa)^p] for p = 0 .. max_power at layers l = 1 .. depth, (P + 1, L, n), or
    None where the law of G is not known in closed form.

    For ReLU and linear units with C_b = 0, given layer l - 1 the diagonal metric of layer l + 1
    is G^(l+1)_aa = G^(l)_aa R_l with R_l = (C_W / N) sum_j Y_j and iid Y_j = phi(xi_j)^2,
    xi_j ~ N(0, 1) (phi homogeneous of degree 1), independent of G^(l).  Hence
    E[G^(l)^p] = (K^(1)_aa)^p E[R^p]^(l - 1), with E[Y^k] = (2k - 1)!! (linear) or (2k - 1)!! / 2
    (ReLU) and the moments of the sum from its cumulants.  (This is the per-layer factor behind
    the exact ReLU kurtosis 3 [(1 + 5/N)^(l - 1) - 1].)
    """
    from nnfield.theory.finite_width import _cumulants_from_moments, _moments_from_cumulants

    if activation not in FACTORISING_ACTIVATIONS or cb != 0.0:
        return None
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    k1 = cw * np.sum(x * x, axis=1) / x.shape[1]  # K^(1)_aa
    double_factorial = np.array(
        [np.prod(np.arange(2 * k - 1, 0, -2)) for k in range(max_power + 1)]
    )
    unit = double_factorial * (0.5 if activation == "relu" else 1.0)
    unit[0] = 1.0
    kappa = _cumulants_from_moments(unit[:, None])[:, 0] * width  # cumulants of sum_j Y_j
    sums = _moments_from_cumulants(kappa[:, None])[:, 0]
    factor = sums * (cw / width) ** np.arange(max_power + 1)  # E[R^p]
    layers = np.arange(depth)  # l - 1
    powers = np.arange(max_power + 1)
    return (
        factor[:, None, None] ** layers[None, :, None] * k1[None, None, :] ** powers[:, None, None]
    )
