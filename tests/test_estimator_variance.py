"""Exact per-network variances of the G4_conn estimators
(nnfield.studies.npoint.estimator_variance).

Checked against (a) Monte Carlo at N = 3 (numpy networks, an independent sampler) with a
Bonferroni z-test whose errors come from the samples themselves, together with the check that the
same data reject plausible wrong variances; (b) exact identities, to rounding: a direct expansion
of every product of f and of S over the terms b1, W1_i h_i at N = 1, 2 (no partitions, no Wick
pairings); sw1 = 0; and the diagonal tuple (a, a, a, a) from the diagonal moments E f^(2k) of
nnfield.theory.finite_width (cumulants of a single input, another route).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import erf

from nnfield import stats
from nnfield import tuples as tup
from nnfield.studies.npoint.estimator_variance import (
    LINEAR,
    PAIRINGS4,
    G4ConnEstimatorVariance,
    _cross_pairings,
    _pair_partitions,
    _set_partitions,
    g4_conn_estimator_variance,
)
from nnfield.theory.finite_width import SingleLayerExact, diagonal_output_moments
from nnfield.theory.kernels import gp_kernel
from nnfield.theory.unit_moments import UnitMoments

INPUTS = {"relu": [0.2, 0.5, 0.8, 1.1], "erf": [-1.0, -0.4, 0.3, 1.0], "gauss": [-0.6, 0.4, 0.9]}
PRIOR = {"sw0": 1.2, "sb0": 0.8, "sw1": 1.1, "sb1": 0.7}
EPS = np.finfo(np.float64).eps
RB_NETWORKS = 5000


def _hidden_samples(arch: str, x: np.ndarray, width: int, networks: int, seed: int):
    """Hidden layers h (networks, width, n_inputs) of single-layer networks, numpy float64."""
    sw0, sb0 = PRIOR["sw0"], PRIOR["sb0"]
    rng = np.random.default_rng(seed)
    pre = rng.standard_normal((networks, width, 1)) * sw0 * x
    pre += rng.standard_normal((networks, width, 1)) * sb0
    return np.maximum(pre, 0) if arch == "relu" else erf(pre)


def _psi(prod2, kern: np.ndarray, t: np.ndarray, wick: bool) -> np.ndarray:
    """psi = P4 - sum_P (K_y P2_x + K_x P2_y) on every 4-tuple, for per-network 2-fold
    products ``prod2(i, j)`` = P2 between tuple positions i and j, shape (..., T4); P4 is the Wick
    sum of P2 P2 (conditional, P2 = S) or P2_01 P2_23 = f_a f_b f_c f_e (brute, P2 = f f)."""
    pairings = PAIRINGS4 if wick else PAIRINGS4[:1]
    p4 = sum(prod2(*x) * prod2(*y) for x, y in pairings)
    return p4 - sum(kern[t[:, c[0]], t[:, c[1]]] * prod2(*p) for p, c in LINEAR)


def _gauss_hermite(dim: int, nodes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Tensor rule for z ~ N(0, I_dim), exact for polynomials of degree <= 2 nodes - 1 in each z."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    grid = np.stack(np.meshgrid(*[z] * dim, indexing="ij"), -1).reshape(-1, dim)
    weights = np.prod(np.stack(np.meshgrid(*[w] * dim, indexing="ij"), -1), -1).ravel()
    return grid, weights / np.sqrt(2 * np.pi) ** dim


def _moments_of_psi(arch: str, width: int, networks: int, seed: int, readout: bool):
    """Per-network samples: psi_cond and, if ``readout``, E[psi_brute^2 | hidden layer] integrated
    exactly over the readout (f | h ~ N(0, S); psi_brute^2 has degree 8, so 5 Gauss-Hermite
    nodes per input are exact).  Shapes (networks, T4)."""
    sw1, sb1 = PRIOR["sw1"], PRIOR["sb1"]
    x = np.asarray(INPUTS[arch])
    n = len(x)
    t = tup.sorted_tuples(n, 4)
    kern = gp_kernel(arch, x[:, None], PRIOR["sw0"], PRIOR["sb0"], sw1, sb1)
    h = _hidden_samples(arch, x, width, networks, seed)
    cov = sb1**2 + sw1**2 / width * np.einsum("mia,mib->mab", h, h)
    psi_cond = _psi(lambda i, j: cov[:, t[:, i], t[:, j]], kern, t, wick=True)
    if not readout:
        return psi_cond, None
    vals, vecs = np.linalg.eigh(cov)
    factor = vecs * np.sqrt(np.maximum(vals, 0))[:, None, :]  # factor @ factor.T = S
    # psi_brute = F2[i01] F2[i23] - F2 @ lin over the 2-fold products F2 of the sorted pairs
    t2 = tup.sorted_tuples(n, 2)
    pos2 = tup.tuple_position(2, t2)
    index = np.array([[pos2[tuple(sorted(r[list(p)]))] for p, _ in LINEAR] for r in t])  # (T4, 6)
    lin = np.zeros((len(t2), len(t)))
    for j, (_, c) in enumerate(LINEAR):
        np.add.at(lin, (index[:, j], np.arange(len(t))), kern[t[:, c[0]], t[:, c[1]]])
    z, w = _gauss_hermite(n)
    brute_sq = np.empty_like(psi_cond)
    chunk = 250
    for lo in range(0, networks, chunk):
        f = np.einsum("qk,mak->mqa", z, factor[lo : lo + chunk])  # (m, nodes, n)
        f2 = f[..., t2[:, 0]] * f[..., t2[:, 1]]
        psi = f2[..., index[:, 0]] * f2[..., index[:, 1]] - f2 @ lin
        brute_sq[lo : lo + chunk] = np.einsum("q,mqt->mt", w, psi * psi)
    return psi_cond, brute_sq


@pytest.fixture(scope="module", params=[("relu", 3), ("erf", 3)], ids=["relu-N3", "erf-N3"])
def monte_carlo(request):
    """Sampled Var(psi) of both estimators with standard errors, and the exact theory.

    conditional: the sample variance of psi_cond over 2e5 networks, error sqrt((m4 - var^2)/M).
    brute: Rao-Blackwellised, mean(E[psi_b^2 | h]) - mean(psi_cond)^2 over 5e3 networks (E[psi_b |
    h] = psi_cond), error from its influence function g - 2 mean(psi_cond) psi_cond.  The naive
    sample variance of psi_brute ~ f^4 is not used: its error needs E f^16, and at 2e5 networks
    its z is too skewed for a 1e-3 Bonferroni test (false alarms in 2 of 25 seeds at erf, N = 3).
    """
    arch, width = request.param
    theory = G4ConnEstimatorVariance(arch, np.asarray(INPUTS[arch])[:, None], **PRIOR)
    psi_cond, _ = _moments_of_psi(arch, width, 200_000, seed=7, readout=False)
    d = psi_cond - psi_cond.mean(axis=0)
    var_c = (d**2).mean(axis=0)
    se_c = np.sqrt(((d**4).mean(axis=0) - var_c**2) / d.shape[0])
    psi_rb, brute_sq = _moments_of_psi(arch, width, RB_NETWORKS, seed=8, readout=True)
    mean = psi_rb.mean(axis=0)
    var_b = brute_sq.mean(axis=0) - mean**2
    se_b = (brute_sq - 2 * mean * psi_rb).std(axis=0, ddof=1) / np.sqrt(psi_rb.shape[0])
    return theory, width, (var_b, se_b), (var_c, se_c)


def _z_test(sampled, exact_brute, exact_cond) -> stats.ZTest:
    (vb, sb), (vc, sc) = sampled
    return stats.max_z_test(
        np.concatenate([vb, vc]),
        np.concatenate([sb, sc]),
        np.concatenate([exact_brute, exact_cond]),
        alpha=1e-3,
        dof=float("inf"),  # errors from 5e3 and 2e5 networks
    )


def test_variance_matches_monte_carlo(monte_carlo):
    theory, width, brute, cond = monte_carlo
    exact = theory.at_width(width)
    result = _z_test((brute, cond), exact.brute, exact.conditional)
    assert result.consistent, str(result)


def test_monte_carlo_rejects_wrong_variances(monte_carlo):
    """The same data must reject (i) the Gaussian-process variance of brute force (N = inf) and
    (ii) the conditional variance kept to leading order N^-2 (higher partition terms dropped)."""
    theory, width, brute, cond = monte_carlo
    exact = theory.at_width(width)
    big = 1e6
    leading = theory.at_width(big).conditional * (big / width) ** 2
    gp = theory.at_width(np.inf).brute
    wrong_brute = _z_test((brute, cond), gp, exact.conditional)
    wrong_cond = _z_test((brute, cond), exact.brute, leading)
    assert not wrong_brute.consistent, str(wrong_brute)
    assert not wrong_cond.consistent, str(wrong_cond)


def _gauss_moment(order: int, var: float) -> float:
    """E[g^order] for g ~ N(0, var)."""
    return 0.0 if order % 2 else var ** (order // 2) * float(np.prod(np.arange(order - 1, 0, -2)))


def _expand(units: UnitMoments, rows: np.ndarray, width: int, first: float, unit: float):
    """E[prod_k Z_k] and the sum of |terms| for Z_k = A_k0 + sum_{i=1..N} A_ki, every factor
    expanded into its N + 1 terms and the units' independence used directly (no set partitions,
    no Wick pairings).  rows (T, m, g): factor k of row r involves the g inputs rows[r, k]; its
    term 0 is the constant-or-Gaussian part with moment ``first(count)`` and unit i's term has
    moment ``unit(count)`` times the one-unit moment of the inputs of all factors sent to i."""
    total, scale = np.zeros(rows.shape[0]), np.zeros(rows.shape[0])
    for pick in itertools.product(range(width + 1), repeat=rows.shape[1]):
        counts = np.bincount(pick, minlength=width + 1)
        coef = first(counts[0]) * np.prod([unit(c) for c in counts[1:]])
        if coef == 0:
            continue
        term = np.full(rows.shape[0], coef)
        for i in range(1, width + 1):
            mine = [k for k, p in enumerate(pick) if p == i]
            if mine:
                term = term * units.moments(rows[:, mine].reshape(rows.shape[0], -1))
        total += term
        scale += np.abs(term)
    return total, scale


def _direct_variances(arch: str, x: np.ndarray, width: int):
    """Var(psi) of both estimators from E[prod f] and E[prod S] by direct expansion (small N):
    f_a = b1 + sum_i W1_i h_i(a) (factors: single inputs) and S_ab = sb1^2 + (sw1^2/N) sum_i
    h_i(a) h_i(b) (factors: input pairs).  Returns {estimator: (variance, rounding scale)}."""
    s, w = PRIOR["sb1"] ** 2, PRIOR["sw1"] ** 2
    units = UnitMoments(arch, x[:, None], PRIOR["sw0"], PRIOR["sb0"])
    t = tup.sorted_tuples(len(x), 4)
    kern = gp_kernel(arch, x[:, None], PRIOR["sw0"], PRIOR["sb0"], PRIOR["sw1"], PRIOR["sb1"])
    coef = [kern[t[:, c[0]], t[:, c[1]]] for _, c in LINEAR]
    out = {}
    for name, p4, p2, first, unit in (
        ("brute", [[(0,), (1,), (2,), (3,)]], [[(p[0],), (p[1],)] for p, _ in LINEAR],
         lambda k: _gauss_moment(k, s), lambda k: _gauss_moment(k, w / width)),
        ("conditional", [list(pr) for pr in PAIRINGS4], [[p] for p, _ in LINEAR],
         lambda k: s**k, lambda k: (w / width) ** k),
    ):  # fmt: skip
        # psi = sum_A A - sum_j c_j P2_j over monomials A of P4; each monomial a list of factors
        terms = [(1.0, a) for a in p4] + [(-c, q) for c, q in zip(coef, p2, strict=True)]
        sq = scale = mean = 0.0
        for ca, a in terms:
            e, _ = _expand(units, t[:, np.array(a)], width, first, unit)
            mean = mean + ca * e
            for cb, b in terms:
                e, sc = _expand(units, t[:, np.array(a + b)], width, first, unit)
                sq, scale = sq + ca * cb * e, scale + np.abs(ca * cb) * sc
        out[name] = (sq - mean**2, scale + mean**2)
    return out


@pytest.mark.parametrize("arch", ["relu", "gauss"])
@pytest.mark.parametrize("width", [1, 2])
def test_small_width_matches_direct_expansion(arch, width):
    """At N = 1, 2 (where (N)_k vanishes for k > N and the N-dependence is far from its 1/N
    expansion) the variances equal those from expanding every product of f (or of S) over the
    terms b1, W1_i h_i directly.  Exact one-unit moments, so the bound is rounding only: 2^12 eps
    times the sum of the magnitudes of all expanded terms (the one-unit moments themselves carry
    up to ~100 eps: gauss moments are exp of a sum of up to 64 covariance entries)."""
    x = np.asarray(INPUTS[arch])
    v = G4ConnEstimatorVariance(arch, x[:, None], **PRIOR).at_width(width)
    for name, (direct, scale) in _direct_variances(arch, x, width).items():
        assert np.all(np.abs(getattr(v, name) - direct) <= 4096 * EPS * scale), name


def test_no_readout_weights_gives_a_single_gaussian():
    """sw1 = 0: f = b1 at every input and S = sb1^2 is constant, so psi_brute = b1^4 - 6 sb1^2 b1^2
    with Var = (105 - 180 + 108 - 9) sb1^8 = 24 sb1^8, and Var_cond = 0."""
    sb1 = 0.7
    for width in (1, 4, 1000):
        v = g4_conn_estimator_variance(
            "relu", np.array([[0.3], [1.0], [1.7]]), width, sw1=0, sb1=sb1
        )
        assert v.brute.shape == (15,)
        np.testing.assert_allclose(v.brute, 24 * sb1**8, rtol=64 * EPS)
        assert np.all(v.conditional == 0)


@pytest.mark.parametrize("arch", ["relu", "gauss"])
@pytest.mark.parametrize("width", [1, 3, 1000])
def test_diagonal_tuple_matches_diagonal_moments(arch, width):
    """(a, a, a, a): psi_brute = f^4 - 6 K f^2 and psi_cond = 3 S^2 - 6 K S, so both variances are
    polynomials in E f^(2k) = (2k - 1)!! E S^k, k <= 4, from finite_width.diagonal_output_moments
    (an independent route: cumulants of one input only).  Moments are exact for relu and gauss,
    so the bound is rounding: 2^8 eps times the sum of the magnitudes of the terms."""
    x = np.asarray(INPUTS[arch])[:, None]
    n = len(x)
    exact = SingleLayerExact(arch, x, **PRIOR)
    _, f2, f4, f6, f8 = diagonal_output_moments(exact, width, 8)
    s2, s3, s4 = f4 / 3, f6 / 15, f8 / 105
    k = exact.K[[list(map(tuple, tup.sorted_tuples(n, 2))).index((a, a)) for a in range(n)]]
    brute_terms = [f8, -12 * k * f6, 36 * k**2 * f4, -((f4 - 6 * k * f2) ** 2)]
    cond_terms = [9 * s4, -36 * k * s3, 36 * k**2 * s2, -((3 * s2 - 6 * k**2) ** 2)]
    diag = [list(map(tuple, tup.sorted_tuples(n, 4))).index((a,) * 4) for a in range(n)]
    v = G4ConnEstimatorVariance(arch, x, **PRIOR).at_width(width)
    for got, terms in ((v.brute[diag], brute_terms), (v.conditional[diag], cond_terms)):
        bound = 256 * EPS * np.sum(np.abs(terms), axis=0)
        assert np.all(np.abs(got - np.sum(terms, axis=0)) <= bound)


def test_conditioning_never_increases_the_variance():
    """Var_brute = Var_cond + E[Var(psi_brute | S)] > Var_cond for sw1 > 0 (Rao-Blackwell), and
    Var_cond = 0 at N = inf."""
    theory = G4ConnEstimatorVariance("relu", np.asarray(INPUTS["relu"])[:, None], **PRIOR)
    for width in (1, 2, 10, 10**4):
        v = theory.at_width(width)
        assert np.all(v.conditional >= 0) and np.all(v.brute > v.conditional)
    assert np.all(theory.at_width(np.inf).conditional == 0)


def test_combinatorics():
    bell = [1, 1, 2, 5, 15, 52]
    assert [sum(1 for _ in _set_partitions(tuple(range(k)))) for k in range(6)] == bell
    assert [len(_pair_partitions(k)) for k in range(5)] == [1, 0, 1, 1, 4]
    assert [len(_cross_pairings(a, b)) for a, b in ((4, 4), (4, 2), (2, 2))] == [96, 12, 2]
