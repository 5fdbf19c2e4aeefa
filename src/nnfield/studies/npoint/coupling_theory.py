"""Tree-level couplings of the effective action of single-layer ensembles, and their flow.

Convention (docs/physics.md section 1; repeated in the NetCDF attrs):

    S[f] = (1/2) f K^-1 f
           + integral_{|y| < Lambda} d^d y [mu(y)/2 f(y)^2 + lambda(y)/4! f(y)^4 + kappa/6! f^6],
    mu(y) = -lambda(y) K(y, y) / 2,

so that at tree level, with K the GP kernel,

    G4_conn(x1..x4) = - integral lambda(y) K(x1, y) K(x2, y) K(x3, y) K(x4, y) d^d y,
    G6_conn(x1..x6) = - kappa integral prod_{i=1..6} K(x_i, y) d^d y
                      + lambda^2 sum_{10 splits (abc|def)} integral integral
                        K(xa, y) K(xb, y) K(xc, y) K(y, z) K(xd, z) K(xe, z) K(xf, z),

the second line being the two-vertex (exchange) diagram of the quartic coupling.  A positive
connected 4-point function (heavier tails than Gaussian) therefore means lambda < 0.  The original
code of Halverson, Maiti and Stoner reports lambda_m = G4_conn / (24 I4) = -lambda / 24 (for ReLU
with sb = 0, d = 1 that is 12.5 / (N Lambda^5), docs/physics.md section 1; our lambda is
-300 / (N Lambda^5) there).

The quadratic counterterm mu keeps G2 = K, which these networks satisfy exactly at every width.
At first order the quartic vertex shifts G2 by its tadpole: 4 * 3 of the contractions of
<f(x1) f(x2) f(y)^4> join both external legs to the vertex and close the remaining pair,
so delta G2 = -(12 / 4!) integral lambda K(x1, y) K(y, y) K(y, x2) d^d y; the mass term gives
-(2 / 2) integral mu K(x1, y) K(y, x2) d^d y, and mu = -lambda K(y, y) / 2 cancels the sum.  So
G2 = K + O(lambda^2, kappa) = K + O(1/N^2).  A two-leg vertex only dresses propagators (and the
dressing cancels at first order), so G4_conn keeps its tree-level form up to O(1/N^2) and G6_conn
(itself O(1/N^2)) up to O(1/N^3).  mu depends on y through K(y, y) (only through |y|: the
preactivation variance is sb0^2 + sw0^2 |y|^2 / d), also for a constant lambda.

The coupling may depend on position: lambda(y) = sum_k c_k phi_k(y), with the radial Legendre basis
phi_k(y) = P_k(2 |y|^2 / Lambda^2 - 1) (phi_0 = 1: a constant coupling).  Radial because the weight
prior is rotation invariant (in d = 1: reflection symmetric), so lambda(y) = lambda(|y|).

Integrals over the ball |y| < Lambda: composite Gauss-Legendre in d = 1 and polar coordinates in
d = 2 (both checked against a refined rule), randomised quasi-Monte Carlo with replicas (an error
bar) for d >= 3.  Fits weigh every tuple by its relative residual; errors come from jackknifing
the whole fit and the goodness of fit from the block covariance (see LinearFit and fit_method,
which writes the method description stored with the results from the constants the fit uses).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre
from scipy import special
from scipy.stats import qmc

from nnfield import tuples as tup
from nnfield.theory.kernels import gp_cross_kernel

LAMBDA_CONVENTION = (
    "S = (1/2) f K^-1 f + integral_{|y|<Lambda} [mu(y)/2 f^2 + lambda(y)/4! f^4 + kappa/6! f^6] "
    "d^d y with the counterterm mu(y) = -lambda(y) K(y,y)/2 that cancels the quartic tadpole, so "
    "that G2 = K + O(lambda^2, kappa) = K + O(1/N^2) (the networks' G2 = K exactly); tree level: "
    "G4_conn = -integral lambda K K K K + O(1/N^2), G6_conn = -kappa integral K^6 + lambda^2 "
    "sum_10 exchange + O(1/N^3); the original HMS code's lambda_m equals -lambda/24"
)

PANEL_NODES = 16
"""Gauss-Legendre nodes per radial panel (the refined check rule uses 24)."""
ANGLES = 128
"""Trapezoid angles for d = 2 (the refined check rule uses 1.5 times as many).  The angle is what
limits d = 2 accuracy: the ReLU kernel is only C^2 in the angle between x and y."""

# Constants of LinearFit; fit_method() writes the stored method description from them.
BLOCKS_PER_MODE = 2
"""chi^2 uses at most (B - 1) // BLOCKS_PER_MODE covariance eigenmodes for B jackknife blocks."""
EIGENVALUE_CUT = 1e-12
"""Covariance eigenmodes below this fraction of the largest eigenvalue are dropped from chi^2."""
INFORMATIVE_CUT = 1e-13
"""Tuples whose leading integral |design[t, 0]| is below this fraction of the largest get
weight 0 (they cannot set a coupling)."""
RANK_CUT = 1e-9
"""Basis functions count as distinguishable when the singular values of the weighted design
exceed this fraction of the largest."""


class CouplingFitError(ValueError):
    """A coupling fit that cannot be done (too few tuples, singular design)."""


@dataclass(frozen=True)
class Prior:
    """The GP kernel's parameters: K(x, y) = sb1^2 + sw1^2 E[phi(u_x) phi(u_y)]."""

    arch: str
    sw0: float
    sb0: float
    sw1: float
    sb1: float

    def kernel(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return gp_cross_kernel(self.arch, x, y, self.sw0, self.sb0, self.sw1, self.sb1)

    def diagonal(self, y: np.ndarray) -> np.ndarray:
        """K(y_q, y_q) for points ``y`` (Q, d), shape (Q,)."""
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        out = np.empty(y.shape[0])
        step = 256  # diagonals of square blocks: bounded memory, few calls
        for i in range(0, y.shape[0], step):
            out[i : i + step] = np.diag(self.kernel(y[i : i + step], y[i : i + step]))
        return out


@dataclass(frozen=True)
class BallRule:
    """Nodes (Q, d) and weights (Q,) integrating over |y| < cutoff in R^d."""

    nodes: np.ndarray
    weights: np.ndarray


# ------------------------------------------------------------------------------ integration rules


def radial_panels(
    cutoff: float, scale: float, nodes: int, dense: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule on [0, cutoff]: uniform panels of width ``scale / 4`` up to
    max(4 scale, dense) (where the kernels vary), then panels doubling in length (integrands are
    smooth power laws far out)."""
    edges = [0.0]
    uniform_end = min(cutoff, max(4 * scale, dense))
    while edges[-1] < uniform_end * (1 - 1e-12):
        edges.append(min(edges[-1] + scale / 4, uniform_end))
    while edges[-1] < cutoff * (1 - 1e-12):
        edges.append(min(2 * edges[-1], cutoff))
    t, w = legendre.leggauss(nodes)
    lo, hi = np.asarray(edges[:-1]), np.asarray(edges[1:])
    r = ((hi - lo)[:, None] * (t[None, :] + 1) / 2 + lo[:, None]).ravel()
    wr = ((hi - lo)[:, None] / 2 * w[None, :]).ravel()
    return r, wr


def ball_volume(dim: int, radius: float) -> float:
    return math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * radius**dim


def quadrature_rule(
    dim: int, cutoff: float, scale: float, dense: float, nodes: int, angles: int
) -> BallRule:
    """Deterministic rule for d = 1 (both half-lines) or d = 2 (polar coordinates)."""
    r, wr = radial_panels(cutoff, scale, nodes, dense)
    if dim == 1:
        return BallRule(np.concatenate([-r, r])[:, None], np.concatenate([wr, wr]))
    if dim == 2:
        phi = 2 * np.pi * (np.arange(angles) + 0.5) / angles
        xy = np.stack([np.outer(r, np.cos(phi)).ravel(), np.outer(r, np.sin(phi)).ravel()], axis=1)
        return BallRule(xy, np.outer(wr * r, np.full(angles, 2 * np.pi / angles)).ravel())
    raise ValueError(f"deterministic quadrature is for d = 1 or 2, not d = {dim}")


def rqmc_rules(dim: int, cutoff: float, points: int, replicas: int, seed: int) -> list[BallRule]:
    """Independent randomised (scrambled Sobol) rules over the ball, equal weights V / Q.

    The cube maps to the ball by r = cutoff u0^(1/d) and a direction from d Gaussian coordinates.
    Each replica is an unbiased estimate; their spread is the integration error.
    """
    rng = np.random.default_rng(seed)
    volume = ball_volume(dim, cutoff)
    rules = []
    for _ in range(replicas):
        u = qmc.Sobol(dim + 1, scramble=True, seed=rng).random(points)
        u = np.clip(u, 1e-15, 1 - 1e-15)
        g = special.ndtri(u[:, 1:])
        direction = g / np.linalg.norm(g, axis=1, keepdims=True)
        nodes = cutoff * u[:, :1] ** (1 / dim) * direction
        rules.append(BallRule(nodes, np.full(points, volume / points)))
    return rules


def radial_basis(nodes: np.ndarray, cutoff: float, size: int) -> np.ndarray:
    """phi_k(y) = P_k(2 |y|^2 / cutoff^2 - 1) for k < size, shape (size, Q)."""
    s = 2 * np.sum(nodes * nodes, axis=1) / cutoff**2 - 1
    return np.stack([legendre.legval(s, np.eye(size)[k]) for k in range(size)])


def radial_nodes(radius: np.ndarray, dim: int) -> np.ndarray:
    """Points at distances ``radius`` (R,) from the origin along the first axis of R^dim, (R, dim).

    Radial functions of these priors (K(y, y), lambda(y), mu(y)) are evaluated there.
    """
    radius = np.asarray(radius, dtype=np.float64)
    return np.concatenate([radius[:, None], np.zeros((radius.size, dim - 1))], axis=1)


# ---------------------------------------------------------------------------------- counterterm


def counterterm(prior: Prior, nodes: np.ndarray, coupling: np.ndarray | float) -> np.ndarray:
    """Quadratic counterterm mu(y) = -lambda(y) K(y, y) / 2 at ``nodes`` (Q, d).

    S contains integral [mu/2 f^2 + lambda/4! f^4]; this mu cancels the first-order tadpole
    -(lambda/2) integral K(x1, y) K(y, y) K(y, x2) of G2, so that G2 = K + O(lambda^2).
    ``coupling`` is lambda at the nodes, broadcastable to (..., Q): a constant (also a stack
    of jackknife replicates, shape (B, 1)) or a profile, e.g. ``profile(c, radius, cutoff)``
    with ``nodes = radial_nodes(radius, d)``.  Returns shape broadcast(coupling, (Q,)).
    """
    return -0.5 * np.asarray(coupling, dtype=np.float64) * prior.diagonal(nodes)


# ----------------------------------------------------------------------------------- integrals


@dataclass(frozen=True)
class TreeIntegrals:
    """Tree-level integrals over colex tuples at one cutoff.

    quartic  (R, T4, B)  integral phi_k(y) prod_4 K(x_i, y)         (basis index k last)
    sextic   (R, T6)     integral prod_6 K(x_i, y)
    exchange (R, T6)     sum over the 10 (3|3) splits of the exchange double integral
    R = 1 for deterministic quadrature, otherwise independent Monte Carlo replicas.
    ``accuracy`` is the largest relative change under a refined rule (NaN for Monte Carlo).
    """

    cutoff: float
    quartic: np.ndarray
    sextic: np.ndarray
    exchange: np.ndarray
    accuracy: float
    method: str

    @property
    def replicas(self) -> int:
        return self.quartic.shape[0]


def _node_products(kxy: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """prod_4 and prod_6 of K(x_i, y_q) over colex tuples at every node q: (T4, Q), (T6, Q)."""
    plan = tup.product_plan(n)
    p2 = kxy[plan["a2"]] * kxy[plan["b2"]]
    p4 = p2[plan["a4"]] * p2[plan["b4"]]
    return p4, p4[plan["a6"]] * p2[plan["b6"]]


def _triple_products(kxy: np.ndarray, n: int) -> np.ndarray:
    """prod_3 of K(x_i, y_q) over colex 3-tuples at every node q: (T3, Q)."""
    t3 = tup.sorted_tuples(n, 3)
    return kxy[t3[:, 0]] * kxy[t3[:, 1]] * kxy[t3[:, 2]]


def _exchange_splits(n: int) -> np.ndarray:
    """(T6, 10, 2) indices into the sorted 3-tuples of the two halves of each (3|3) split."""
    t3 = tup.sorted_tuples(n, 3)
    pos3 = tup.tuple_position(3, t3)
    out = []
    for row in tup.sorted_tuples(n, 6).tolist():
        splits = []
        for first in _three_subsets_containing_zero():
            a = tuple(sorted(row[i] for i in first))
            b = tuple(sorted(row[i] for i in range(6) if i not in first))
            splits.append((pos3[a], pos3[b]))
        out.append(splits)
    return np.asarray(out, dtype=np.int64)


def _three_subsets_containing_zero() -> list[tuple[int, ...]]:
    """The 10 unordered (3|3) splits of 6 positions, named by the half holding position 0."""
    return [(0, *rest) for rest in itertools.combinations(range(1, 6), 2)]


def _single_vertex(prior: Prior, inputs: np.ndarray, rule: BallRule, cutoff: float, basis: int):
    """(quartic (T4, B), sextic (T6,)) single-vertex integrals with one rule."""
    p4, p6 = _node_products(prior.kernel(inputs, rule.nodes), inputs.shape[0])
    phi = radial_basis(rule.nodes, cutoff, basis)
    return p4 @ (rule.weights[None, :] * phi).T, p6 @ rule.weights


def _exchange(prior: Prior, inputs: np.ndarray, y_rule: BallRule, z_rule: BallRule) -> np.ndarray:
    """Sum over the 10 (3|3) splits of the exchange double integral, (T6,)."""
    n = inputs.shape[0]
    a3_y = _triple_products(prior.kernel(inputs, y_rule.nodes), n) * y_rule.weights
    a3_z = _triple_products(prior.kernel(inputs, z_rule.nodes), n) * z_rule.weights
    # B3[s, t] = sum_{q, r} a3_y[s, q] K(y_q, z_r) a3_z[t, r], in row chunks of y (bounded memory)
    b3 = np.zeros((a3_y.shape[0], a3_z.shape[0]))
    step = max(1, 4_000_000 // max(1, z_rule.nodes.shape[0]))
    for start in range(0, y_rule.nodes.shape[0], step):
        kyz = prior.kernel(y_rule.nodes[start : start + step], z_rule.nodes)
        b3 += a3_y[:, start : start + step] @ (kyz @ a3_z.T)
    b3 = 0.5 * (b3 + b3.T)  # both vertices range over the same ball
    splits = _exchange_splits(n)
    return b3[splits[..., 0], splits[..., 1]].sum(axis=1)


def _exchange_gauss_1d(prior: Prior, inputs: np.ndarray, cutoff: float, nodes: int) -> np.ndarray:
    """Exchange integrals for the translation-invariant Gauss-net kernel in d = 1.

    K(y, z) = sb1^2 + sw1^2 exp(-sw0^2 (y - z)^2 / 2) has a ridge of width 1/sw0 along y = z that
    the doubling panels cannot resolve at large cutoffs.  The constant part factorises exactly;
    the ridge is integrated on uniform panels of half its width, keeping only |y - z| < 12 widths.
    """
    n = inputs.shape[0]
    width = 1.0 / prior.sw0 if prior.sw0 > 0 else np.inf
    if not np.isfinite(width):  # sw0 = 0: the kernel is constant
        rule = quadrature_rule(1, cutoff, 1.0, 0.0, nodes, 1)
        return _exchange(prior, inputs, rule, rule)
    panels = max(1, int(np.ceil(2 * cutoff / (width / 2))))
    t, w = legendre.leggauss(nodes)
    edges = np.linspace(-cutoff, cutoff, panels + 1)
    h = np.diff(edges)
    y = (edges[:-1, None] + h[:, None] * (t[None, :] + 1) / 2).ravel()
    wy = (h[:, None] / 2 * w[None, :]).ravel()
    a3 = _triple_products(prior.kernel(inputs, y[:, None]), n) * wy  # (T3, Q)
    total = a3.sum(axis=1)
    b3 = prior.sb1**2 * np.outer(total, total)
    reach = 12 * width
    step = 2048
    for start in range(0, y.size, step):
        yc = y[start : start + step]
        lo, hi = np.searchsorted(y, yc[0] - reach), np.searchsorted(y, yc[-1] + reach)
        ridge = prior.sw1**2 * np.exp(-0.5 * prior.sw0**2 * (yc[:, None] - y[None, lo:hi]) ** 2)
        b3 += a3[:, start : start + step] @ (ridge @ a3[:, lo:hi].T)
    b3 = 0.5 * (b3 + b3.T)
    splits = _exchange_splits(n)
    return b3[splits[..., 0], splits[..., 1]].sum(axis=1)


QUADRATURE_LEVELS = (
    # (radial nodes per panel, angles) for single-vertex and for exchange integrals (d = 2 needs
    # a coarser exchange rule: its K(y, z) has Q^2 entries; radially the integrands are smooth,
    # so it saves radial nodes, not angles; "ridge": nodes per panel of the Gauss-net ridge rule
    # in d = 1); the second level checks the first
    {"single": (PANEL_NODES, ANGLES), "exchange": (4, ANGLES // 2), "ridge": 8},
    {"single": (24, 3 * ANGLES // 2), "exchange": (6, 3 * ANGLES // 4), "ridge": 12},
)


def tree_integrals(
    prior: Prior,
    inputs: np.ndarray,
    cutoff: float,
    basis: int = 1,
    *,
    mc_points: int = 4096,
    mc_replicas: int = 8,
    seed: int = 0,
) -> TreeIntegrals:
    """All tree-level integrals for the colex tuples of ``inputs`` (shape (n, d)) at ``cutoff``."""
    inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    dim = inputs.shape[1]
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    if dim <= 2:
        scale = 1.0 / max(1.0, prior.sw0)  # kernels vary on |y| ~ sqrt(d) / sw0 at the fastest
        dense = 1.5 * float(np.max(np.linalg.norm(inputs, axis=1)))
        results = []
        for level in QUADRATURE_LEVELS:
            single = quadrature_rule(dim, cutoff, scale, dense, *level["single"])
            q, s = _single_vertex(prior, inputs, single, cutoff, basis)
            if dim == 1 and prior.arch == "gauss":
                exchange = _exchange_gauss_1d(prior, inputs, cutoff, level["ridge"])
            else:
                pair = (
                    single
                    if dim == 1
                    else quadrature_rule(dim, cutoff, scale, dense, *level["exchange"])
                )
                exchange = _exchange(prior, inputs, pair, pair)
            results.append((q, s, exchange))
        (q0, s0, e0), (q1, s1, e1) = results
        accuracy = max(_relative_change(a, b) for a, b in ((q0, q1), (s0, s1), (e0, e1)))
        return TreeIntegrals(cutoff, q1[None], s1[None], e1[None], accuracy, "quadrature")
    rules = rqmc_rules(dim, cutoff, mc_points, mc_replicas, seed)
    reps = []
    for r, rule in enumerate(rules):
        q, s = _single_vertex(prior, inputs, rule, cutoff, basis)
        reps.append((q, s, _exchange(prior, inputs, rule, rules[(r + 1) % len(rules)])))
    q, s, e = (np.stack(x) for x in zip(*reps, strict=True))
    return TreeIntegrals(cutoff, q, s, e, float("nan"), "randomised quasi-Monte Carlo")


def _relative_change(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else 0.0


# ----------------------------------------------------------------------------------------- fits


def jackknife_covariance(replicates: np.ndarray) -> np.ndarray:
    """Covariance of an estimate from its delete-one-block jackknife replicates (B, T)."""
    reps = np.asarray(replicates, dtype=np.float64)
    n_blocks = reps.shape[0]
    dev = reps - reps.mean(axis=0)
    return (n_blocks - 1) / n_blocks * dev.T @ dev


def jackknife_modes(replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (decreasing) and eigenvectors (T, k) of ``jackknife_covariance(replicates)``
    from the SVD of the (B, T) deviations: O(B^2 T) time and O(B T) memory, never forming the
    T x T matrix (12376 sextic tuples for 12 inputs would take 1.2 GB and minutes to
    diagonalise)."""
    reps = np.asarray(replicates, dtype=np.float64)
    n_blocks = reps.shape[0]
    _, sv, vt = np.linalg.svd(reps - reps.mean(axis=0), full_matrices=False)
    return (n_blocks - 1) / n_blocks * sv**2, vt.T


@dataclass(frozen=True)
class LinearFit:
    """Least squares of g = design @ c in relative terms, goodness of fit from the block covariance.

    Coefficients minimise sum_t (g_t - (design @ c)_t)^2 / design[t, 0]^2: every tuple counts by
    its relative residual (for one coefficient, c is the plain mean over tuples of
    g_t / design[t, 0], the per-tuple coupling).  The weights depend on the design only, so the
    fitted coupling is a property of the correlators, not of the ensemble size: where the model
    is not exact (chi^2/dof >> 1) statistical weights would make lambda depend on N and on the
    number of networks, and, estimated from the same blocks, bias it by several standard errors
    (both were measured and rejected).  The estimate is linear in g, so applying it to every
    delete-one-block jackknife replicate gives errors that include all tuple correlations.

    chi^2: the minimum over c of the correlated chi^2 in the well-measured eigenmodes of the
    covariance (an "SVD cut": the m = min(T, (B - 1) // BLOCKS_PER_MODE) leading modes, dropping
    modes below EIGENVALUE_CUT of the largest), times the Hartlap factor (B - m - 2) / (B - 1)
    that undoes the bias of an inverted sample covariance; for a correct model chi^2/dof ~ 1 with
    dof = m - k.  fit_method() states all this with the constants' current values.
    """

    design: np.ndarray  # (T, k)
    weights: np.ndarray  # (T,) 1 / design[t, 0]^2 (0 where the integral vanishes)
    solve: np.ndarray  # (T, k): c = g @ solve
    project: np.ndarray  # (m, T): whitening projection onto the kept eigenmodes
    hartlap: float

    @classmethod
    def build(
        cls,
        design: np.ndarray,
        cov: np.ndarray | tuple[np.ndarray, np.ndarray],
        n_blocks: int,
        what: str,
    ) -> LinearFit:
        """Fit of ``design`` (T, k) for data with covariance ``cov`` (T, T) estimated from
        ``n_blocks`` blocks, or given by its eigenpairs (``jackknife_modes``); ``what`` names
        the fit in errors."""
        design = np.atleast_2d(np.asarray(design, dtype=np.float64))
        n_tuples, k = design.shape
        if n_tuples <= k:
            raise CouplingFitError(
                f"{what}: {n_tuples} tuple(s) cannot determine {k} coefficient(s) with a "
                f"goodness of fit; use more inputs (at least {k + 1} tuples are needed)"
            )
        lead = np.abs(design[:, 0])
        informative = lead > lead.max() * INFORMATIVE_CUT
        if informative.sum() <= k:
            raise CouplingFitError(
                f"{what}: only {int(informative.sum())} tuple(s) have a non-zero tree-level "
                f"integral, too few for {k} coefficient(s)"
            )
        if isinstance(cov, tuple):
            evals, evecs = cov
        else:
            evals, evecs = np.linalg.eigh(cov)
            evals, evecs = evals[::-1], evecs[:, ::-1]
        limit = min(n_tuples, max(1, (n_blocks - 1) // BLOCKS_PER_MODE))
        keep = int(np.sum(evals[:limit] > evals[0] * EIGENVALUE_CUT)) if evals[0] > 0 else 0
        if keep == 0:
            raise CouplingFitError(f"{what}: the estimates do not fluctuate (zero covariance)")
        project = evecs[:, :keep].T / np.sqrt(evals[:keep])[:, None]
        hartlap = hartlap_factor(n_blocks, keep)
        # tuples whose tree-level integral vanishes (e.g. ReLU with sb = 0 and inputs of both
        # signs) cannot set a coupling: weight 0, but they still count in chi^2
        weights = np.where(informative, 1.0 / np.where(informative, lead, 1.0) ** 2, 0.0)
        fit = cls(design, weights, np.zeros_like(design), project, hartlap)
        return fit.with_design(design, what)

    def with_design(self, design: np.ndarray, what: str = "fit") -> LinearFit:
        """The same weights for another design (e.g. a Monte Carlo integration replica)."""
        design = np.atleast_2d(np.asarray(design, dtype=np.float64))
        k = design.shape[1]
        scaled = design * np.sqrt(self.weights)[:, None]
        sv = np.linalg.svd(scaled, compute_uv=False)
        rank = int(np.sum(sv > sv[0] * RANK_CUT)) if sv[0] > 0 else 0
        if rank < k:
            raise CouplingFitError(
                f"{what}: the {k} basis functions are not distinguishable with these inputs "
                f"(design rank {rank})"
            )
        weighted = design * self.weights[:, None]
        solve = weighted @ np.linalg.inv(design.T @ weighted)
        return LinearFit(design, self.weights, solve, self.project, self.hartlap)

    def coefficients(self, g: np.ndarray) -> np.ndarray:
        return np.asarray(g) @ self.solve

    def chi2(self, g: np.ndarray) -> np.ndarray:
        """Minimum correlated chi^2 of the model for data ``g`` (..., T), Hartlap-corrected."""
        white = np.asarray(g) @ self.project.T  # (..., m)
        x = self.project @ self.design  # (m, k)
        resid = white - (white @ np.linalg.pinv(x).T) @ x.T
        return self.hartlap * np.sum(resid * resid, axis=-1)

    @property
    def modes(self) -> int:
        return self.project.shape[0]

    @property
    def dof(self) -> int:
        return self.modes - np.linalg.matrix_rank(self.project @ self.design)

    def chi2dof(self, g: np.ndarray) -> float:
        """chi^2 / dof of the fit to ``g`` (NaN when no degree of freedom is left)."""
        dof = self.dof
        return float(self.chi2(g) / dof) if dof > 0 else float("nan")


def hartlap_factor(n_blocks: int, modes: int) -> float:
    """(B - m - 2) / (B - 1) for m modes of a covariance from B blocks (floored at 1 / (B - 1))."""
    return max(n_blocks - modes - 2, 1) / (n_blocks - 1)


def fit_method() -> str:
    """Description of the coupling fits (LinearFit and its use in the npoint study), written
    from the module constants that LinearFit reads, so that the stored text follows the code."""
    return (
        "least squares in relative residuals over all sorted tuples t: minimise "
        "sum_t (g_t - (A c)_t)^2 / A[t,0]^2, A the tree-level integrals (for a constant coupling "
        "the mean over tuples of g_t / A[t,0]); tuples with |A[t,0]| below "
        f"{INFORMATIVE_CUT:g} of the largest get weight 0; basis functions must be "
        f"distinguishable (weighted-design singular values above {RANK_CUT:g} of the largest); "
        "errors: the whole fit applied to every delete-one-block jackknife replicate (B blocks), "
        "plus the spread over Monte Carlo integration replicas in quadrature (d >= 3); "
        "chi^2: correlated, in the leading m = min(tuples, max(1, (B - 1) // "
        f"{BLOCKS_PER_MODE})) eigenmodes of the jackknife covariance with eigenvalues above "
        f"{EIGENVALUE_CUT:g} of the largest, times the Hartlap factor max(B - m - 2, 1) / (B - 1); "
        "dof = m - coefficients; kappa: the same fit to G6_conn - lambda^2 exchange, with lambda "
        "from the same jackknife replicate"
    )


def profile(coefficients: np.ndarray, radius: np.ndarray, cutoff: float) -> np.ndarray:
    """lambda(|y| = radius) from basis coefficients (..., k); returns (..., len(radius))."""
    k = coefficients.shape[-1]
    phi = radial_basis(np.asarray(radius, dtype=np.float64)[:, None], cutoff, k)  # (k, R)
    return coefficients @ phi
