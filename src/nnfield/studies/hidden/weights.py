"""Weight ensembles of the hidden study (docs/hidden.md), sampled in NumPy.

Every kind is scaled by a contraction a, the spectral radius of W (exactly, realisation by
realisation), so the linear dynamics x' = g W x + s xi is stable for g a < 1:
- ``cycle``: a P with P the single n-cycle shift (P x)_i = x_{i-1};
- ``permutation``: a P with P a uniformly random permutation matrix;
- ``symmetric``: a S / rho(S), S = (G + G^T) / sqrt 2 (GOE);
- ``orthogonal``: a O with O Haar-random orthogonal;
- ``ginibre``: a X / rho(X), X = sqrt(1 - k) S + sqrt(k) A with S = (G1 + G1^T)/sqrt 2 and
  A = (G2 - G2^T)/sqrt 2: k is the antisymmetric fraction (0 symmetric, 1/2 Ginibre,
  1 antisymmetric); <X_ij X_ji> = 1 - 2k for i != j;
- ``mixture``: a P or a P^T (P the n-cycle), alternating with the network's index, so the
  ensemble is an exact 50/50 mixture;
- ``lazy_cycle``: a ((1 - e) P + e I), the lazy shift (circulant, normal, spectral radius a);
- ``rings_product``: W = a (I_D + eps C) (x) P, the rings' coupling multiplying the shift
  rather than added to it (every mode of C then moves at speed 1; docs/hidden.md);
- ``rings``: W = I_D (x) a P + eps C (x) I_m, D rings of m = n / D neurons (P the m-cycle) with C
  the open chain of rings, symmetric (C_{mu,mu+1} = C_{mu+1,mu} = 1) or antisymmetric
  (C_{mu,mu+1} = -C_{mu+1,mu} = 1), or any D x D matrix given explicitly (rows); here a and
  eps are given directly.  W is normal exactly when C is (W W^T - W^T W = eps^2 [C, C^T] (x) I).
Neurons are grouped into D contiguous subsystems of n / D neurons (the rings, for ``rings``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WEIGHT_KINDS = ("cycle", "permutation", "symmetric", "orthogonal", "ginibre", "mixture", "rings",
                "lazy_cycle", "rings_product")  # fmt: skip
RING_KINDS = ("rings", "rings_product")
"""Kinds made of D coupled rings of n / D neurons (their subsystems are the rings)."""
COUPLING_MATRICES = ("symmetric", "antisymmetric")
CouplingMatrix = str | Sequence[Sequence[float]]
"""A named chain coupling (COUPLING_MATRICES) or an explicit D x D matrix (its rows)."""


def shift(n: int) -> np.ndarray:
    """The n-cycle permutation matrix, (P x)_i = x_{i-1 mod n}."""
    return np.roll(np.eye(n), 1, axis=0)


def chain_coupling(rings: int, kind: CouplingMatrix) -> np.ndarray:
    """C of ``rings`` rings: the open chain, symmetric or antisymmetric, or an explicit matrix
    (which must be rings x rings)."""
    if not isinstance(kind, str):
        c = np.asarray(kind, dtype=np.float64)
        if c.shape != (rings, rings):
            raise ValueError(f"coupling matrix of shape {c.shape} for {rings} rings; it must be "
                             f"{rings} x {rings}")  # fmt: skip
        return c
    if kind not in COUPLING_MATRICES:
        raise ValueError(f"unknown coupling matrix {kind!r}; known: {COUPLING_MATRICES}")
    c = np.zeros((rings, rings))
    i = np.arange(rings - 1)
    c[i, i + 1] = 1.0
    c[i + 1, i] = 1.0 if kind == "symmetric" else -1.0
    return c


def coupling_label(kind: CouplingMatrix) -> str:
    """The coupling matrix as text: its name, or its rows as compact JSON."""
    return (
        kind
        if isinstance(kind, str)
        else json.dumps([[float(x) for x in row] for row in kind], separators=(",", ":"))
    )


def is_normal(c: np.ndarray) -> bool:
    """Whether C C^T = C^T C up to rounding (then W of the rings kind is normal)."""
    c = np.asarray(c, dtype=np.float64)
    scale = max(float(np.max(np.abs(c))) ** 2, np.finfo(float).tiny)
    return bool(np.max(np.abs(c @ c.T - c.T @ c)) <= 8 * c.shape[0] * np.finfo(float).eps * scale)


def subsystem_matrix(neurons: int, subsystems: int) -> np.ndarray:
    """(D, n) averaging matrix: row mu averages the mu-th contiguous group of n / D neurons."""
    size = neurons // subsystems
    return np.kron(np.eye(subsystems), np.full((1, size), 1.0 / size))


def _spectral_radius(x: np.ndarray) -> np.ndarray:
    return np.max(np.abs(np.linalg.eigvals(x)), axis=-1)


def _symmetric(g: np.ndarray) -> np.ndarray:
    return (g + np.swapaxes(g, -1, -2)) / np.sqrt(2)


def _antisymmetric(g: np.ndarray) -> np.ndarray:
    return (g - np.swapaxes(g, -1, -2)) / np.sqrt(2)


@dataclass(frozen=True)
class WeightEnsemble:
    """One weight ensemble: the kind and its parameters (see the module docstring)."""

    kind: str
    neurons: int
    subsystems: int = 1
    contraction: float = 0.5
    antisymmetric_fraction: float = 0.5
    coupling: float = 0.0
    coupling_matrix: CouplingMatrix = "symmetric"
    laziness: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in WEIGHT_KINDS:
            raise ValueError(f"unknown weight kind {self.kind!r}; known: {WEIGHT_KINDS}")
        if self.neurons % self.subsystems:
            raise ValueError(f"{self.subsystems} subsystems do not divide {self.neurons} neurons")

    @property
    def symmetric_weights(self) -> bool:
        """Whether every W of the ensemble is symmetric by construction (``symmetric``, and
        ``ginibre`` at k = 0): then, for linear f with isotropic noise, the medium entropy of
        every step equals ln p(x') - ln p(x), so the production vanishes sample by sample."""
        return self.kind == "symmetric" or (self.kind == "ginibre"
                                            and self.antisymmetric_fraction == 0)  # fmt: skip

    @property
    def shared_weights(self) -> bool:
        """Whether every network of the ensemble has the same W (``cycle``, ``rings``,
        ``lazy_cycle``, ``rings_product``)."""
        return self.kind in ("cycle", "rings", "lazy_cycle", "rings_product")

    @property
    def ring_size(self) -> int:
        return self.neurons // self.subsystems

    def ring_weights(self) -> np.ndarray:
        """The (deterministic) W of the ``rings`` and ``rings_product`` kinds."""
        d, m = self.subsystems, self.ring_size
        c = chain_coupling(d, self.coupling_matrix)
        if self.kind == "rings_product":
            return self.contraction * np.kron(np.eye(d) + self.coupling * c, shift(m))
        return np.kron(np.eye(d), self.contraction * shift(m)) + self.coupling * np.kron(
            c, np.eye(m)
        )

    def mixture_components(self) -> np.ndarray:
        """(2, n, n): a P and a P^T, the two members of the ``mixture`` kind."""
        p = self.contraction * shift(self.neurons)
        return np.stack([p, p.T])

    def sample(self, rng: np.random.Generator, count: int, first_index: int = 0) -> np.ndarray:
        """(count, n, n) weight matrices of networks first_index, first_index + 1, ...
        (float64; the index matters only for ``mixture``)."""
        n, a = self.neurons, self.contraction
        if self.kind == "cycle":
            return np.broadcast_to(a * shift(n), (count, n, n)).copy()
        if self.kind in RING_KINDS:
            return np.broadcast_to(self.ring_weights(), (count, n, n)).copy()
        if self.kind == "lazy_cycle":
            e = self.laziness
            w = a * ((1 - e) * shift(n) + e * np.eye(n))
            return np.broadcast_to(w, (count, n, n)).copy()
        if self.kind == "mixture":
            comps = self.mixture_components()
            return comps[(first_index + np.arange(count)) % 2]
        if self.kind == "permutation":
            w = np.zeros((count, n, n))
            for j in range(count):
                w[j, rng.permutation(n), np.arange(n)] = a
            return w
        if self.kind == "orthogonal":
            q, r = np.linalg.qr(rng.standard_normal((count, n, n)))
            signs = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
            return a * q * signs[:, None, :]  # Haar: fix the signs of R's diagonal
        g1 = rng.standard_normal((count, n, n))
        g2 = rng.standard_normal((count, n, n))
        return self.ginibre_from(g1, g2)

    def ginibre_from(self, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
        """``symmetric`` / ``ginibre`` weights from standard normal draws (common random
        numbers across k for smooth theory curves)."""
        k = 0.0 if self.kind == "symmetric" else self.antisymmetric_fraction
        x = np.sqrt(1 - k) * _symmetric(g1) + np.sqrt(k) * _antisymmetric(g2)
        return self.contraction * x / _spectral_radius(x)[:, None, None]

    def closed_form_production(self, gain: float = 1.0) -> float | None:
        """Ensemble-mean stationary production per step of the linear dynamics where a closed
        form exists (docs/hidden.md; any noise s), else None."""
        from nnfield.theory import thermo

        n, a = self.neurons, gain * self.contraction
        if self.kind == "symmetric":
            return 0.0
        if self.kind in ("cycle", "mixture"):
            tr2 = float(np.trace(shift(n) @ shift(n)))
            return thermo.orthogonal_entropy_production(a, tr2, n)
        if self.kind == "rings_product":  # eigenvalues a (1 + eps c) omega; normal iff C is
            c = chain_coupling(self.subsystems, self.coupling_matrix)
            if not is_normal(c):
                return None
            omega = np.exp(2j * np.pi * np.arange(self.ring_size) / self.ring_size)
            lam = a * np.outer(1 + self.coupling * np.linalg.eigvals(c), omega).ravel()
            return thermo.normal_entropy_production(lam)
        if self.kind == "lazy_cycle":  # circulant: eigenvalues a ((1 - e) omega + e)
            omega = np.exp(2j * np.pi * np.arange(n) / n)
            return thermo.normal_entropy_production(
                a * ((1 - self.laziness) * omega + self.laziness)
            )
        if self.kind in thermo.ENSEMBLE_TRACE_SQUARE:
            return thermo.orthogonal_entropy_production(
                a, thermo.ENSEMBLE_TRACE_SQUARE[self.kind], n
            )
        if self.kind == "rings":
            c = chain_coupling(self.subsystems, self.coupling_matrix)
            if not is_normal(c):  # the eigenvalue form needs a normal W
                return None
            lam = thermo.ring_eigenvalues(
                self.ring_size, self.subsystems, a, gain * self.coupling, c
            )
            return thermo.normal_entropy_production(lam)
        return None

    def spectral_radius(self) -> float | None:
        """Spectral radius of W where it is fixed by the parameters (all kinds: a, except
        rings, whose radius is max |a omega + eps c|: I_D (x) P and C (x) I_m commute, for any
        C)."""
        if self.kind == "rings_product":
            c = chain_coupling(self.subsystems, self.coupling_matrix)
            return float(self.contraction * np.max(np.abs(1 + self.coupling
                                                          * np.linalg.eigvals(c))))  # fmt: skip
        if self.kind != "rings":
            return self.contraction
        from nnfield.theory.thermo import ring_eigenvalues

        c = chain_coupling(self.subsystems, self.coupling_matrix)
        lam = ring_eigenvalues(self.ring_size, self.subsystems, self.contraction, self.coupling, c)
        return float(np.max(np.abs(lam)))
