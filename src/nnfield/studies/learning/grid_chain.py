"""Exact density of SGLD on a non-quadratic loss in one or two dimensions, and of heavy-ball
momentum (BAOAB) in one, propagated on a grid.

The chain q' = m(q) + sqrt(2 eta T) xi (nnfield.studies.learning.potential) has the Gaussian
transition kernel
K(q -> q') = N(q'; m(q), 2 eta T I).  On a regular grid of cells of volume dV the density is
held as cell masses P_i = p(q_i) dV and one step is
    P'_j = sum_i K_ij P_i,   K_ij = prod_k G_k[j_k, i],
with G_k the kernel's factor along axis k evaluated at the grid and normalised over its column,
so that the grid chain conserves mass exactly.  For smooth, rapidly decaying densities the
midpoint/trapezoidal sums converge faster than any power of the spacing; ``covering`` chooses
the spacing (``points_per_width`` points per smallest width in the problem) and bounds (tails
below exp(-``tail``)), and the tests check the result against a finer grid.

From the masses, in nats:
    S = -sum P ln(P / dV)  (differential entropy);  <U> = sum P U;  F = <U> - T S;
    <Delta s_medium> of one step = E[|q - m(q')|^2 - |q' - m(q)|^2] / (4 eta T) under the pair
    law P_i K(q_i -> q'), with E[m(q') | q_i] precomputed, so a step costs one propagation;
    Pi = Delta S + <Delta s_medium> >= 0;  KL(P || pi) = sum P ln(P / pi) to the chain's own
    stationary law pi (the Perron vector of K, by Arnoldi iteration), non-increasing in t for
    this Markov chain as for any; at stationarity Pi = <Delta s_medium>_pi, which is > 0 for a
    non-quadratic U (discrete SGLD breaks detailed balance).

PhaseSpaceChain does the same for momentum on the (q, p) plane: one step composes BAOAB's maps
on the density (spectral shears for B and A, the O step's Gaussian kernel along p), and the
mean medium entropy is the O step's heat.  GridDensity holds what both share (entropy, energy,
KL, the stationary law, the spline log-density).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.sparse.linalg import LinearOperator, eigs

from nnfield.studies.learning.potential import NoisyPotential

EDGE_TOLERANCE = 1e-12
"""Largest mass allowed in the grid's edge cells (exact_path and stationary check it)."""
TINY = 1e-300
"""Floor of the cell masses inside logarithms (masses of the far tails underflow to 0)."""


@dataclass
class GridDensity:
    """A density held as cell masses on a regular grid (axes: one 1-D array per dimension, C
    order) under a Markov chain ``dyn``; subclasses supply ``propagate`` (one step of the
    masses) and ``step`` (masses, mean medium entropy of the step)."""

    dyn: Any
    axes: tuple[np.ndarray, ...]
    _cache: dict = field(default_factory=dict, repr=False)

    edge_tolerance = EDGE_TOLERANCE
    """Largest mass allowed in the edge cells (exact_path and ``stationary`` check it)."""
    negative_tolerance = 0.0
    """Largest total negative mass allowed (0 for kernels that keep masses non-negative)."""

    def propagate(self, masses: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step(self, masses: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def cell_volume(self) -> float:
        return float(np.prod([a[1] - a[0] for a in self.axes]))

    @cached_property
    def points(self) -> np.ndarray:
        """Grid points (N, d), C order (the last axis fastest)."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)

    def edge_mass(self, masses: np.ndarray) -> float:
        """Mass in the outermost cells: the grid must hold the density (the normalised kernel
        would otherwise pile escaping mass up at the edges)."""
        cells = masses.reshape(self.shape)
        edge = np.zeros(self.shape, bool)
        for k in range(len(self.shape)):
            index = [slice(None)] * len(self.shape)
            index[k] = [0, -1]
            edge[tuple(index)] = True
        return float(cells[edge].sum())

    def gaussian(self, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """Cell masses of N(mean, diag(variance)), normalised on the grid."""
        log_p = -0.5 * np.sum((self.points - mean) ** 2 / variance, axis=1)
        p = np.exp(log_p - log_p.max())
        return p / p.sum()

    def entropy(self, masses: np.ndarray) -> float:
        """Differential entropy -int p ln p (nats), over the cells of positive mass (spectral
        ringing leaves tiny negative ones, which p ln p -> 0 would count as zero)."""
        p = masses[masses > 0]
        return float(-np.sum(p * np.log(p / self.cell_volume)))

    def mean_energy(self, masses: np.ndarray) -> float:
        return float(masses @ self.dyn.energy(self.points))

    def mean_square_gradient(self, masses: np.ndarray) -> float:
        g = self.dyn.gradient(self.points)
        return float(masses @ np.sum(g * g, axis=1))

    def mean_laplacian(self, masses: np.ndarray) -> float:
        return float(masses @ self.dyn.laplacian(self.points))

    @staticmethod
    def kl(masses: np.ndarray, reference: np.ndarray) -> float:
        """KL(P || reference) (nats), over the cells where P > 0."""
        keep = masses > 0
        p = masses[keep]
        return float(np.sum(p * (np.log(p) - np.log(np.maximum(reference[keep], TINY)))))

    @cached_property
    def stationary(self) -> np.ndarray:
        """Cell masses of the chain's stationary law (the eigenvector of eigenvalue 1)."""
        n = self.points.shape[0]
        op = LinearOperator((n, n), matvec=self.propagate, dtype=np.float64)
        start = self.gaussian(np.zeros(self.dyn.dim), np.full(self.dyn.dim, self.dyn.temperature))
        _, vec = eigs(op, k=1, which="LM", v0=start, tol=1e-14, maxiter=20000)
        pi = np.real(vec[:, 0])
        pi /= pi.sum()  # the sign of an eigenvector is arbitrary
        for _ in range(20):  # polish with exact steps
            pi = self.propagate(pi)
        residual = np.abs(self.propagate(pi) - pi).sum()
        if residual > 1e-10:
            raise RuntimeError(f"stationary law not converged: |K pi - pi|_1 = {residual:.2e}")
        edge = self.edge_mass(pi)
        if edge > self.edge_tolerance:
            raise RuntimeError(
                f"the grid does not hold the stationary law: {edge:.1e} of its mass at the edges"
            )
        self.stationary_residual = float(residual)
        return pi

    def stationary_entropy_production(self) -> float:
        """Pi of the stationary state: the mean medium entropy of one step from pi (nats)."""
        return self.step(self.stationary)[1]

    def log_density(self, masses: np.ndarray):
        """A function q (M, d) -> ln p(q): cubic-spline interpolation of ln(P / dV) on the grid
        (exact for a Gaussian's quadratic ln p up to the spline's end conditions)."""
        log_p = np.log(np.maximum(masses, TINY) / self.cell_volume).reshape(self.shape)
        coefficients = ndimage.spline_filter(log_p, order=3, mode="nearest")
        lower = np.array([a[0] for a in self.axes])
        spacing = np.array([a[1] - a[0] for a in self.axes])

        def at(q):
            index = ((np.asarray(q, dtype=np.float64) - lower) / spacing).T
            return ndimage.map_coordinates(coefficients, index, order=3, mode="nearest",
                                           prefilter=False)  # fmt: skip

        return at


@dataclass
class GridChain(GridDensity):
    """The SGLD chain ``dyn`` (a NoisyPotential) on the grid with axes ``axes``."""

    @classmethod
    def covering(
        cls,
        dyn: NoisyPotential,
        means: list[np.ndarray],
        variances: list[np.ndarray],
        points_per_width: float = 2.0,
        tail: float = 30.0,
    ) -> GridChain:
        """A grid holding the initial Gaussians N(means[i], diag(variances[i])) and the
        stationary law to exp(-tail).  Its spacing is the smallest width in the problem over
        ``points_per_width``: the kernel width sqrt(2 eta T) over the drift's largest stretch
        1 + eta max|U''|, the initial widths, the barrier width and the stationary width
        sqrt(T / max curvature)."""
        pot, temp = dyn.potential, dyn.temperature
        # the kernel's width seen from the source point: the drift stretches by up to
        # |1 - eta U''| <= 1 + eta (max eig A + h / w^2)
        top = float(np.linalg.eigvalsh(pot.hessian)[-1]) + pot.barrier / pot.barrier_width**2
        kernel = np.sqrt(2 * dyn.learning_rate * temp)
        widths = [kernel / (1 + dyn.learning_rate * top), pot.barrier_width]
        widths.append(np.sqrt(temp / pot.max_curvature()))  # the narrowest stationary feature
        widths += [float(np.sqrt(np.min(v))) for v in variances]
        spacing = min(widths) / points_per_width
        # discrete SGLD's stationary variance along an eigenvalue lam of A is
        # T / (lam (1 - eta lam / 2)), wider than exp(-U/T); the barrier lifts the density by at
        # most e^{h/T}
        lam = np.linalg.eigvalsh(pot.hessian)
        variance = float(np.max(temp / (lam * (1 - dyn.learning_rate * lam / 2))))
        reach = np.sqrt(2 * (tail + pot.barrier / temp) * variance)
        starts = list(zip(means, variances, strict=True))
        axes = []
        for k in range(pot.dim):
            lo = min([-reach] + [m[k] - np.sqrt(2 * tail * v[k]) for m, v in starts])
            hi = max([reach] + [m[k] + np.sqrt(2 * tail * v[k]) for m, v in starts])
            n = int(np.ceil((hi - lo) / spacing)) + 1
            axes.append(np.linspace(lo, hi, n))
        return cls(dyn, tuple(axes))

    @cached_property
    def _drift(self) -> np.ndarray:
        return self.dyn.drift(self.points)

    @cached_property
    def _factors(self) -> list[np.ndarray]:
        """G_k (n_k, N): the kernel's factor along axis k, each column normalised to 1."""
        var = 2 * self.dyn.learning_rate * self.dyn.temperature
        return [_gaussian_kernel(axis, self._drift[:, k], var) for k, axis in enumerate(self.axes)]

    def propagate(self, masses: np.ndarray) -> np.ndarray:
        """Cell masses after one step."""
        g = self._factors
        if len(g) == 1:
            return g[0] @ masses
        return ((g[0] * masses) @ g[1].T).ravel()

    @cached_property
    def _medium_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per source cell i: |q_i|^2 - 2 q_i . E[m(q') | q_i] - E|q' - m(q_i)|^2, and per
        target cell |m(q')|^2; the mean medium entropy is their P- and P'-weighted sums over
        4 eta T."""
        g, pts, m = self._factors, self.points, self._drift
        spread = np.zeros(pts.shape[0])
        cond_drift = np.zeros_like(pts)
        for k, axis in enumerate(self.axes):
            spread += np.sum(g[k] * (axis[:, None] - m[None, :, k]) ** 2, axis=0)
        if len(g) == 1:
            cond_drift[:, 0] = g[0].T @ m[:, 0]
        else:
            for k in range(2):
                mk = m[:, k].reshape(self.shape)
                cond_drift[:, k] = np.sum(g[0] * (mk @ g[1]), axis=0)
        source = np.sum(pts * pts, axis=1) - 2 * np.sum(pts * cond_drift, axis=1) - spread
        return source, np.sum(m * m, axis=1)

    def step(self, masses: np.ndarray) -> tuple[np.ndarray, float]:
        """(masses after one step, mean medium entropy of the step in nats)."""
        source, target = self._medium_terms
        new = self.propagate(masses)
        scale = 4 * self.dyn.learning_rate * self.dyn.temperature
        return new, float(masses @ source + new @ target) / scale


@dataclass
class PhaseSpaceChain(GridDensity):
    """Momentum training (BAOAB, nnfield.studies.learning.potential.HeavyBallPotential) on a (q, p)
    grid.

    One step is the composition of its five maps acting on the density: the shears B (p moves
    by -(h/2) U'(q) on each q line) and A (q moves by (h/2) p on each p line) are translations
    along one axis, done spectrally (the density's Fourier modes times a phase: exact for a
    band-limited density, mass-conserving, and as accurate as the grid resolves p_t; the grid
    is periodic, which is harmless while the edges hold no mass); O is the Gaussian kernel
    N(p'; beta p, (1 - beta^2) T) along p, normalised over each column like GridChain's.  The
    mean medium entropy of a step is (<p^2> before O - <p^2> after O) / (2T)."""

    edge_tolerance = 1e-10
    """The spectral shears leave ringing of either sign in every cell: in the edge cells its
    absolute mass reaches 1e-10, its signed sum (what ``edge_mass`` checks) 1e-15 to 1e-12,
    because it cancels; mass escaping over the edges is positive and does not cancel.  The
    ringing moves S by < 1e-7 (refinement test); ``negative_tolerance`` bounds it."""

    negative_tolerance = 1e-6
    """Largest total negative mass allowed (exact_path checks it): aliasing of an unresolved
    density shows as negative cells, and a negative mass eps moves any mean of an observable
    of range R by at most about eps R, three orders below the Monte Carlo errors here."""

    @classmethod
    def covering(
        cls,
        dyn,
        means: list[np.ndarray],
        variances: list[np.ndarray],
        points_per_width: float = 6.0,
        tail: float = 30.0,
        reach_factor: float = 1.5,
        saddle_points: float = 10.0,
    ) -> PhaseSpaceChain:
        """A (q, p) grid holding the initial Gaussians N(means[i], diag(variances[i])) and the
        stationary law to exp(-tail). Spacing along q: the smallest of the barrier width and
        the initial q widths over ``points_per_width``, and of the stationary width sqrt(T /
        max curvature) over ``saddle_points``; along p: the smallest of the O kernel's
        width, sqrt(T) and the initial p widths, over ``points_per_width``. Reach: harmonic
        BAOAB's stationary q variance is T / A exactly and its p variance T (1 - h^2 A / 4)
        <= T at the end of a step; the p reach uses the more generous T / (1 - h^2 max U'' /
        4); the barrier lifts the density by at most e^{h/T}. The splitting's energy error
        heats the q tails of the barrier chain beyond exp(-H/T) (exponential, not Gaussian,
        at eta = 0.2), so the q reach is widened by ``reach_factor``; the edge checks of
        exact_path and ``stationary`` refuse a grid that still loses mass. The flow
        compresses the density near the barrier's saddle to features finer than the
        stationary width, hence ``saddle_points``: with 6 the broad start rings at 1e-8 of
        the peak, with 10 the exact values agree with 13 to 1e-7 (the tests compare a finer
        grid)."""
        pot, temp = dyn.potential, dyn.temperature
        curv = pot.max_curvature()
        lam = float(pot.hessian[0, 0])
        lift = tail + pot.barrier / temp
        q_widths = [pot.barrier_width] + [float(np.sqrt(v[0])) for v in variances]
        p_widths = [dyn.kick_std, np.sqrt(temp)] + [float(np.sqrt(v[1])) for v in variances]
        q_spacing = min(min(q_widths) / points_per_width, np.sqrt(temp / curv) / saddle_points)
        p_spacing = min(p_widths) / points_per_width
        h2 = dyn.step_size**2
        q_reach = reach_factor * np.sqrt(2 * lift * temp / lam)
        p_reach = np.sqrt(2 * lift * temp / (1 - h2 * curv / 4))
        axes = []
        for k, (reach, spacing) in enumerate(((q_reach, q_spacing), (p_reach, p_spacing))):
            lo = min([-reach] + [m[k] - np.sqrt(2 * tail * v[k])
                                 for m, v in zip(means, variances, strict=True)])  # fmt: skip
            hi = max([reach] + [m[k] + np.sqrt(2 * tail * v[k])
                                for m, v in zip(means, variances, strict=True)])  # fmt: skip
            n = _odd_fast_length(int(np.ceil((hi - lo) / spacing)) + 1)
            axes.append(np.linspace(lo, hi, n))
        return cls(dyn, tuple(axes))

    def _phases(self, axis: int, shifts: np.ndarray) -> np.ndarray:
        """exp(-i k s): the Fourier factor translating each line along ``axis`` by its shift
        (shifts indexed by the other axis)."""
        grid = self.axes[axis]
        k = 2 * np.pi * np.fft.rfftfreq(grid.size, grid[1] - grid[0])
        phase = np.exp(-1j * np.outer(shifts, k))  # (other, modes)
        return phase if axis == 1 else phase.T

    @cached_property
    def _maps(self) -> dict[str, np.ndarray]:
        dyn = self.dyn
        q, p = self.axes
        h = dyn.step_size
        force = dyn.potential.gradient(q[:, None])[:, 0]
        return {
            "B": self._phases(1, -0.5 * h * force),  # p -> p - (h/2) U'(q) on each q line
            "A": self._phases(0, 0.5 * h * p),  # q -> q + (h/2) p on each p line
            "O": _gaussian_kernel(p, dyn.momentum * p, dyn.kick_std**2),  # [p', p]
        }

    def _shear(self, cells: np.ndarray, name: str) -> np.ndarray:
        axis = 1 if name == "B" else 0
        n = cells.shape[axis]
        modes = scipy.fft.rfft(cells, axis=axis) * self._maps[name]
        return scipy.fft.irfft(modes, n=n, axis=axis)

    def step(self, masses: np.ndarray) -> tuple[np.ndarray, float]:
        """(masses after one step, mean medium entropy of the step in nats)."""
        cells = self._shear(self._shear(masses.reshape(self.shape), "B"), "A")
        p2 = self.axes[1] ** 2
        before = float(np.sum(cells.sum(axis=0) * p2))
        cells = cells @ self._maps["O"].T
        after = float(np.sum(cells.sum(axis=0) * p2))
        cells = self._shear(self._shear(cells, "A"), "B")
        return cells.ravel(), (before - after) / (2 * self.dyn.temperature)

    def propagate(self, masses: np.ndarray) -> np.ndarray:
        """Cell masses after one step."""
        return self.step(masses)[0]


def _gaussian_kernel(targets: np.ndarray, means: np.ndarray, variance: float) -> np.ndarray:
    """K[j, i] = N(targets_j; means_i, variance) on the grid ``targets``, each column i
    normalised to 1, so that the grid kernel conserves mass exactly."""
    g = np.exp(-((targets[:, None] - means[None, :]) ** 2) / (2 * variance))
    return g / g.sum(axis=0, keepdims=True)


def _odd_fast_length(n: int) -> int:
    """The smallest odd n' >= n with prime factors 3, 5, 7 only: odd so that there is no
    Nyquist mode (a shifted real density stays real), smooth so that the FFTs are fast."""
    n += 1 - n % 2
    while True:
        m = n
        for f in (3, 5, 7):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 2


def exact_path(
    chain: GridDensity, initial: np.ndarray, steps: np.ndarray, with_kl: bool = True
) -> dict[str, np.ndarray]:
    """Exact observables at the record ``steps`` (increasing, from 0) from initial masses:
    loss <U>, entropy S, accumulated medium entropy, <|grad U|^2>, <lap U>, KL to the
    stationary law (NaN with ``with_kl`` False: no stationary law is computed); and
    ``masses`` (R, N) at the records."""
    names = ("loss", "entropy", "medium", "grad2", "lap", "kl_to_stationary", "masses")
    out: dict[str, list] = {k: [] for k in names}
    masses, medium = initial, 0.0
    recorded = set(np.asarray(steps).tolist())
    pi = chain.stationary if with_kl else None
    for n in range(int(steps[-1]) + 1):
        if n in recorded:
            out["loss"].append(chain.mean_energy(masses))
            out["entropy"].append(chain.entropy(masses))
            out["medium"].append(medium)
            out["grad2"].append(chain.mean_square_gradient(masses))
            out["lap"].append(chain.mean_laplacian(masses))
            out["kl_to_stationary"].append(chain.kl(masses, pi) if with_kl else np.nan)
            out["masses"].append(masses)
        if n < steps[-1]:
            masses, produced = chain.step(masses)
            medium += produced
            edge = chain.edge_mass(masses)
            if edge > chain.edge_tolerance:
                raise RuntimeError(f"step {n + 1}: the grid does not hold the density ({edge:.1e} "
                                   "in the edge cells)")  # fmt: skip
            negative = -float(masses[masses < 0].sum())
            if negative > chain.negative_tolerance:
                raise RuntimeError(f"step {n + 1}: the grid does not resolve the density "
                                   f"({negative:.1e} negative mass)")  # fmt: skip
    return {k: np.asarray(v) for k, v in out.items()}
