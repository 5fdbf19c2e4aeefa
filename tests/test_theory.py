"""Exact single-layer theory: closed forms, quadrature accuracy, reference numbers (docs/physics.md
section 1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nnfield import tuples as tup
from nnfield.theory.finite_width import SingleLayerExact
from nnfield.theory.kernels import gp_kernel, unit_m2
from nnfield.theory.unit_moments import TheoryUnavailable, UnitMoments, _relu_quadrature

PAPER_INPUTS = {
    "relu": np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])[:, None],
    "erf": np.array([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])[:, None],
    "gauss": 0.01 * np.array([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])[:, None],
}
PAPER_SB = {"relu": 0.0, "erf": 1.0, "gauss": 1.0}


def paper(arch: str) -> SingleLayerExact:
    sb = PAPER_SB[arch]
    return SingleLayerExact(arch, PAPER_INPUTS[arch], 1.0, sb, 1.0, sb)


@pytest.mark.parametrize("arch", ["relu", "erf", "gauss"])
@pytest.mark.parametrize("d", [1, 2])
def test_quadrature_m2_matches_closed_form_kernel(arch, d):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, d))
    sb0 = 0.0 if (arch == "relu" and d == 2) else 0.7
    sw0 = 0.6 if (arch == "erf" and d == 2) else 1.3  # rank-3 erf: Gauss-Hermite, moderate
    units = UnitMoments(arch, x, sw0, sb0)
    t2 = tup.sorted_tuples(5, 2)
    closed = unit_m2(arch, x, sw0, sb0)[t2[:, 0], t2[:, 1]]
    if arch == "erf" and d == 2:  # rank-3 erf (Gauss-Hermite): the certificate must be honest
        err = np.max(np.abs(units.moments(t2) - closed))
        assert err <= 10 * units.accuracy + 1e-14 and units.accuracy < 1e-4
    else:
        np.testing.assert_allclose(units.moments(t2), closed, rtol=1e-10, atol=1e-12)


def test_relu_quadrature_is_converged():
    lmat = np.array([[1.0, 0.2], [0.3, -0.8], [-0.5, 0.5]])
    t6 = tup.sorted_tuples(3, 6)
    coarse = _relu_quadrature(lmat, nodes_per_arc=20).moments(t6)
    fine = _relu_quadrature(lmat, nodes_per_arc=80).moments(t6)
    np.testing.assert_allclose(coarse, fine, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_erf_quadrature_is_converged(d):
    x = np.array([[-1.0, 0.2], [0.3, 0.9], [1.0, -0.4]])[:, :d]
    # steep for d = 1 (preactivation variance up to 17); d = 2 is rank 3 (Gauss-Hermite)
    a = UnitMoments("erf", x, 4.0 if d == 1 else 1.0, 1.0)
    t6 = tup.sorted_tuples(3, 6)
    ref = a.moments(t6)
    from scipy.special import erf

    from nnfield.theory.unit_moments import _factor, _polar_panels

    assert a.accuracy < (1e-10 if d == 1 else 1e-6)
    if d == 1:  # an independent, finer rule agrees
        finer = _polar_panels(_factor(a.k), erf, 40).moments(t6)
        np.testing.assert_allclose(ref, finer, rtol=1e-10, atol=1e-13)


def test_relu_rank_three_is_refused():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(TheoryUnavailable, match="rank"):
        UnitMoments("relu", x, 1.0, 1.0)


def test_paper_numbers_relu():
    """ReLU, sb = 0: N m4 = 5 on every tuple and N^2 m6 = 44 (docs/physics.md section 1)."""
    th = paper("relu").at_width(1)
    np.testing.assert_allclose(th.G4_conn / th.G4_gp, 5.0, rtol=1e-12)
    np.testing.assert_allclose(th.G6_conn / th.G6_gp, 44.0, rtol=1e-12)


def test_paper_numbers_gauss_and_erf():
    gauss = paper("gauss").at_width(1)
    assert np.mean(gauss.G4_conn / gauss.G4_gp) == pytest.approx(13.40, abs=0.005)
    erf = paper("erf").at_width(1)
    ratio = erf.G4_conn / erf.G4_gp
    assert ratio.mean() == pytest.approx(0.056, abs=0.0005)
    assert ratio.min() == pytest.approx(0.0, abs=1e-12)
    assert ratio.max() == pytest.approx(0.154, abs=0.0005)


def test_gp_kernel_gauss_is_translation_invariant():
    x = np.array([[0.1], [0.5], [1.5]])
    k = gp_kernel("gauss", x, 1.2, 0.8, 1.0, 0.5)
    expected = 0.25 + np.exp(-(1.2**2) * (x - x.T) ** 2 / 2)
    np.testing.assert_allclose(k, expected, rtol=1e-13)


def _conditional_gaussian_g6(units: UnitMoments, sw1, sb1, width, n):
    """Independent derivation: f | h is Gaussian with covariance S = sb1^2 + sw1^2 M,
    M the sample mean over N units, so G6 = sum over 15 pairings of E[S S S]
    (docs/physics.md section 1)."""
    t6 = tup.sorted_tuples(n, 6)
    s, w = sb1**2, sw1**2

    def m(*idx):
        return float(units.moments(np.array([sorted(idx)]))[0])

    out = []
    for row in t6:
        total = 0.0
        for pairing in tup.pairings(tuple(range(6))):
            pairs = [(row[i], row[j]) for i, j in pairing]
            mu = [m(a, b) for a, b in pairs]

            def cov(p, q):
                return m(*p, *q) - m(*p) * m(*q)

            k3 = (
                m(*pairs[0], *pairs[1], *pairs[2])
                - m(*pairs[0], *pairs[1]) * mu[2]
                - m(*pairs[0], *pairs[2]) * mu[1]
                - m(*pairs[1], *pairs[2]) * mu[0]
                + 2 * mu[0] * mu[1] * mu[2]
            )
            kk = [s + w * x for x in mu]
            total += kk[0] * kk[1] * kk[2]
            total += (w**2 / width) * (
                kk[0] * cov(pairs[1], pairs[2])
                + kk[1] * cov(pairs[0], pairs[2])
                + kk[2] * cov(pairs[0], pairs[1])
            )
            total += w**3 * k3 / width**2
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("arch", ["relu", "erf", "gauss"])
def test_g6_cumulant_formula_matches_conditional_gaussian_derivation(arch):
    x = np.array([[0.3], [-0.7], [1.1]])
    exact = SingleLayerExact(arch, x, 0.9, 0.6, 1.2, 0.4)
    width = 3
    th = exact.at_width(width)
    g6 = th.G6_conn + tup.split42(th.G4, exact.K, 3) - 2 * th.G6_gp
    alt = _conditional_gaussian_g6(exact.units, 1.2, 0.4, width, 3)
    np.testing.assert_allclose(g6, alt, rtol=1e-11)


def test_connected_parts_vanish_for_gaussian_moments():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T
    t2, t4, t6 = (tup.sorted_tuples(4, k) for k in (2, 4, 6))
    g2 = cov[t2[:, 0], t2[:, 1]]

    def isserlis(row):
        return sum(
            np.prod([cov[row[i], row[j]] for i, j in p])
            for p in tup.pairings(tuple(range(len(row))))
        )

    g4 = np.array([isserlis(r) for r in t4])
    g6 = np.array([isserlis(r) for r in t6])
    np.testing.assert_allclose(tup.connected4(g4, g2, 4), 0, atol=1e-10)
    np.testing.assert_allclose(tup.connected6(g6, g4, g2, 4), 0, atol=1e-8)


def test_colex_order_is_a_prefix_across_input_counts():
    for k in (2, 4, 6):
        small, large = tup.sorted_tuples(3, k), tup.sorted_tuples(5, k)
        np.testing.assert_array_equal(large[: len(small)], small)


def test_product_plan_builds_every_monomial():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(7, 3))
    plan = tup.product_plan(3)
    p2 = f[:, plan["a2"]] * f[:, plan["b2"]]
    p4 = p2[:, plan["a4"]] * p2[:, plan["b4"]]
    p6 = p4[:, plan["a6"]] * p2[:, plan["b6"]]
    for k, p in ((2, p2), (4, p4), (6, p6)):
        direct = np.prod(f[:, tup.sorted_tuples(3, k)], axis=2)
        np.testing.assert_allclose(p, direct, rtol=1e-13)


def test_pairing_counts():
    assert len(tup.pairings((0, 1, 2, 3))) == 3
    assert len(tup.pairings(tuple(range(6)))) == 15
    assert len(tup.four_two_splits(tuple(range(6)))) == 15
    assert len(list(itertools.combinations(range(6), 2))) == 15


@pytest.mark.parametrize("arch", ["relu", "erf", "gauss"])
def test_diagonal_output_moments_match_correlators(arch):
    """E[f^4], E[f^6] from the moment machinery equal the diagonal of G4 and G6."""
    from nnfield.theory.finite_width import diagonal_output_moments

    x = np.array([[0.3], [-0.7], [1.1]])
    exact = SingleLayerExact(arch, x, 0.9, 0.6, 1.2, 0.4)
    th = exact.at_width(3)
    mom = diagonal_output_moments(exact, 3, 12)
    t4, t6 = tup.sorted_tuples(3, 4), tup.sorted_tuples(3, 6)
    g6 = th.G6_conn + tup.split42(th.G4, exact.K, 3) - 2 * th.G6_gp
    np.testing.assert_allclose(mom[1], exact.K[[0, 2, 5]], rtol=1e-12)
    np.testing.assert_allclose(mom[2], th.G4[[0, 4, 14]], rtol=1e-12)
    assert np.array_equal(t4[[0, 4, 14]], [[0] * 4, [1] * 4, [2] * 4])
    diag6 = [np.flatnonzero((t6 == a).all(1))[0] for a in range(3)]
    np.testing.assert_allclose(mom[3], g6[diag6], rtol=1e-11)


def test_moments_of_a_two_term_mean_by_direct_expansion():
    """For N = 2, E[M^j] = 2^-j sum_i C(j, i) mu_i mu_(j-i): checks the cumulant recursion."""
    from math import comb

    from nnfield.theory.finite_width import _cumulants_from_moments, _moments_from_cumulants

    mu = np.array([1.0, 0.7, 1.3, 3.1, 9.0, 31.0, 120.0])[:, None]
    kappa = _cumulants_from_moments(mu)
    kappa[1:] /= 2.0 ** np.arange(0, 6)[:, None]
    got = _moments_from_cumulants(kappa)[:, 0]
    direct = [
        sum(comb(j, i) * mu[i, 0] * mu[j - i, 0] for i in range(j + 1)) / 2**j for j in range(7)
    ]
    np.testing.assert_allclose(got, direct, rtol=1e-12)
