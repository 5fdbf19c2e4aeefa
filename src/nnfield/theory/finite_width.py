"""Exact finite-width correlators of single-hidden-layer networks (docs/physics.md section 1).

f = b1 + N^(-1/2) sum_i xi_i with iid xi_i = sqrt(N) W1_i h_i, so the cumulants of f are exact:
kappa_2 = K (the GP kernel, at every N), kappa_4 = kappa_4(xi)/N, kappa_6 = kappa_6(xi)/N^2,
with (m_k the one-unit moments, E z^4 = 3, E z^6 = 15 for the Gaussian readout weight)
  kappa_4(xi) = sw1^4 (3 m4 - sum_3 m2 m2),
  kappa_6(xi) = sw1^6 (15 m6 - 3 sum_(4|2) m4 m2 + 2 sum_15 m2 m2 m2).
Full moments follow by Wick's theorem for a zero-mean field:
  G4 = kappa_4 + sum_3 K K,  G6 = kappa_6 + sum_(4|2) G4 K - 2 sum_15 K K K.
All arrays are over colex-sorted input tuples (nnfield.tuples).

Shared readout scale (docs/physics.md section 8): W1_i = s g_i with g_i ~ N(0, sw1^2/N) and one
s per network, s^2 ~ Gamma(shape a, scale 1/a) (E s^2 = 1, Var s^2 = 1/a).  Then f = b1 + s g with
g the weight part of a standard network (kernel K_g = K - sb1^2), so the raw moments of s g are
E[s^2k] times those of g, and the cumulants of f are those of s g (b1 is Gaussian):
  G4_conn = Var(s^2) sum_3 K_g K_g + E[s^4] kappa_4(xi)/N,
which tends to Var(s^2) sum_3 K_g K_g, not 0, as N -> infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfield import tuples as tup
from nnfield.theory.unit_moments import UnitMoments


@dataclass(frozen=True)
class SingleLayerTheory:
    """Exact correlators at one width; every array is indexed by colex tuples."""

    K: np.ndarray  # (T2,) GP kernel = exact G2
    G4_gp: np.ndarray  # (T4,) sum_3 K K
    G4_conn: np.ndarray  # (T4,)
    G6_gp: np.ndarray  # (T6,) sum_15 K K K
    G6_conn: np.ndarray  # (T6,)

    @property
    def G4(self) -> np.ndarray:
        return self.G4_gp + self.G4_conn


class SingleLayerExact:
    """Width-independent ingredients (one-unit moments), evaluated once per architecture/inputs."""

    def __init__(
        self,
        arch: str,
        inputs: np.ndarray,
        sw0: float,
        sb0: float,
        sw1: float,
        sb1: float,
        scale_shape: float | None = None,
    ):
        self.units = UnitMoments(arch, inputs, sw0, sb0)
        self.sw1, self.sb1 = sw1, sb1
        self.scale_shape = scale_shape  # None: independent readout weights (s = 1)
        n = self.units.inputs.shape[0]
        self.n_inputs = n
        m2, m4, m6 = (self.units.moments(tup.sorted_tuples(n, k)) for k in (2, 4, 6))
        self.K = sb1**2 + sw1**2 * m2
        self.kappa4_unit = sw1**4 * (3 * m4 - tup.wick4(m2, n))
        self.kappa6_unit = sw1**6 * (15 * m6 - 3 * tup.split42(m4, m2, n) + 2 * tup.wick6(m2, n))
        self._unit_diagonal: dict[int, np.ndarray] = {}
        self.G4_gp = tup.wick4(self.K, n)
        self.G6_gp = tup.wick6(self.K, n)

    def at_width(self, width: float) -> SingleLayerTheory:
        """Exact correlators of width-``width`` networks (``math.inf``: the N -> infinity limit,
        non-Gaussian only with a shared readout scale)."""
        if self.scale_shape is not None:
            return self._shared_scale_at_width(width)
        return SingleLayerTheory(
            K=self.K,
            G4_gp=self.G4_gp,
            G4_conn=self.kappa4_unit / width,
            G6_gp=self.G6_gp,
            G6_conn=self.kappa6_unit / width**2,
        )

    def _shared_scale_at_width(self, width: float) -> SingleLayerTheory:
        """Raw moments of s g from those of the weight part g (kernel K_g = K - sb1^2), scaled by
        E[s^2k]; the connected parts of f are those of s g."""
        n = self.n_inputs
        e = scale_moments(self.scale_shape, 4)  # E[(s^2)^j], j = 0..3; e[1] = 1
        kg = self.K - self.sb1**2
        kappa4 = self.kappa4_unit / width
        g4 = tup.wick4(kg, n) + kappa4
        g6 = self.kappa6_unit / width**2 + tup.split42(kappa4, kg, n) + tup.wick6(kg, n)
        m4, m6 = e[2] * g4, e[3] * g6
        return SingleLayerTheory(
            K=self.K,
            G4_gp=self.G4_gp,
            G4_conn=tup.connected4(m4, kg, n),
            G6_gp=self.G6_gp,
            G6_conn=tup.connected6(m6, m4, kg, n),
        )

    def unit_diagonal_moments(self, half: int) -> np.ndarray:
        """E[h(x_a)^(2r)] for r = 0..half at every input, shape (half + 1, n_inputs).

        Width-independent, so computed once per order and reused at every width.
        """
        if half not in self._unit_diagonal:
            n = self.n_inputs
            mu = np.ones((half + 1, n))
            for r in range(1, half + 1):
                mu[r] = self.units.moments(np.repeat(np.arange(n)[:, None], 2 * r, axis=1))
            self._unit_diagonal[half] = mu
        return self._unit_diagonal[half]


def scale_moments(shape: float | None, count: int) -> np.ndarray:
    """E[(s^2)^j] for j = 0..count - 1 with s^2 ~ Gamma(shape, scale 1/shape):
    prod_(i < j) (shape + i) / shape.  All ones for ``shape`` None (s = 1)."""
    out = np.ones(count)
    if shape is not None:
        for j in range(1, count):
            out[j] = out[j - 1] * (shape + j - 1) / shape
    return out


def _cumulants_from_moments(mu: np.ndarray) -> np.ndarray:
    """Cumulants kappa_1..kappa_R from raw moments mu_0..mu_R (mu_0 = 1), per column."""
    from math import comb

    order = mu.shape[0] - 1
    kappa = np.zeros_like(mu)
    for n in range(1, order + 1):
        kappa[n] = mu[n] - sum(comb(n - 1, m - 1) * kappa[m] * mu[n - m] for m in range(1, n))
    return kappa


def _moments_from_cumulants(kappa: np.ndarray) -> np.ndarray:
    """Raw moments mu_0..mu_R from cumulants kappa_1..kappa_R (index 0 ignored), per column."""
    from math import comb

    order = kappa.shape[0] - 1
    mu = np.zeros_like(kappa)
    mu[0] = 1.0
    for n in range(1, order + 1):
        mu[n] = sum(comb(n - 1, m - 1) * kappa[m] * mu[n - m] for m in range(1, n + 1))
    return mu


def diagonal_output_moments(exact: SingleLayerExact, width: int, max_order: int) -> np.ndarray:
    """E[f(x_a)^(2k)] for k = 0..max_order/2 at every input a, exactly; shape (K + 1, n_inputs).

    Conditional on the hidden layer (and the readout scale s) f(x_a) ~ N(0, S_a) with
    S_a = sb1^2 + s^2 sw1^2 M_a and M_a the mean over N iid units of X = h(x_a)^2, so
    E[f^(2k)] = (2k - 1)!! E[S_a^k].  The moments of M follow from the cumulants of X:
    kappa_r(M) = kappa_r(X) / N^(r - 1); s^2 is independent of M (``scale_moments``).
    """
    from math import comb

    half = max_order // 2
    kappa_m = _cumulants_from_moments(exact.unit_diagonal_moments(half))
    for r in range(1, half + 1):
        kappa_m[r] /= float(width) ** (r - 1)
    mu_m = _moments_from_cumulants(kappa_m) * scale_moments(exact.scale_shape, half + 1)[:, None]
    s, w = exact.sb1**2, exact.sw1**2
    out = np.ones((half + 1, exact.n_inputs))
    for k in range(1, half + 1):
        e_sk = sum(comb(k, j) * s ** (k - j) * w**j * mu_m[j] for j in range(k + 1))
        double_factorial = float(np.prod(np.arange(2 * k - 1, 0, -2)))
        out[k] = double_factorial * e_sk
    return out
