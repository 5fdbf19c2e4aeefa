"""Jackknife, z-tests and heavy-tail diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from nnfield import stats


def test_jackknife_of_a_mean_is_the_batch_means_error():
    rng = np.random.default_rng(0)
    sums = rng.normal(size=(50, 3)) * 10 + 4
    counts = np.full(50, 10)
    est = stats.jackknife({"x": sums}, counts, lambda m: m["x"])
    block_means = sums / 10
    np.testing.assert_allclose(est.value, block_means.mean(0), rtol=1e-12)
    np.testing.assert_allclose(est.stderr, block_means.std(0, ddof=1) / np.sqrt(50), rtol=1e-10)


def test_jackknife_removes_first_order_bias_of_a_square():
    """E[mean^2] = mu^2 + var/M: the jackknife estimate is unbiased for mu^2 (within errors)."""
    rng = np.random.default_rng(1)
    mu, trials, blocks = 0.3, 4000, 20
    x = rng.normal(mu, 1.0, size=(trials, blocks))  # one network per block
    jack = [stats.jackknife({"x": row}, np.ones(blocks), lambda m: m["x"] ** 2).value for row in x]
    naive = (x.mean(1)) ** 2
    se = np.std(jack) / np.sqrt(trials)
    assert abs(np.mean(jack) - mu**2) < 4 * se
    assert np.mean(naive) - mu**2 > 4 * np.std(naive) / np.sqrt(trials)  # the plug-in is biased


def test_max_z_test_detects_a_shift_and_accepts_noise():
    rng = np.random.default_rng(2)
    exact = np.zeros(200)
    se = np.ones(200)
    assert stats.max_z_test(rng.normal(size=200), se, exact).consistent
    shifted = rng.normal(size=200)
    shifted[17] += 8
    assert not stats.max_z_test(shifted, se, exact).consistent


def test_bonferroni_critical_value():
    assert stats.bonferroni_z(0.05, 1) == pytest.approx(1.959964, abs=1e-6)
    assert stats.bonferroni_z(1e-3, 126) > stats.bonferroni_z(1e-3, 21)


@pytest.mark.parametrize(("n_tests", "blocks"), [(1, 10), (21, 20), (126, 100), (462, 100)])
def test_student_t_critical_values_against_scipy(n_tests, blocks):
    """bonferroni_t is scipy's t quantile at alpha / (2 n) with blocks - 1 dof (to rounding).
    Normal quantiles instead would give n independent t-distributed z-scores a family-wise
    rate above alpha (about 3.3e-3 instead of 1e-3 at 100 blocks and 462 tuples)."""
    from scipy.stats import t

    alpha, dof = 1e-3, stats.jackknife_dof(blocks)
    crit = stats.bonferroni_t(alpha, n_tests, dof)
    assert crit == pytest.approx(t.isf(alpha / (2 * n_tests), dof), rel=1e-12)

    def family_wise(c):
        return 1 - (1 - 2 * t.sf(c, dof)) ** n_tests

    assert family_wise(stats.bonferroni_z(alpha, n_tests)) > 1.2 * alpha
    assert stats.bonferroni_t(alpha, n_tests, np.inf) == pytest.approx(
        stats.bonferroni_z(alpha, n_tests), rel=1e-12
    )
    with pytest.raises(ValueError, match="degrees of freedom"):
        stats.bonferroni_t(alpha, n_tests, 0)


def test_max_z_test_uses_the_degrees_of_freedom():
    test = stats.max_z_test([4.0], [1.0], [0.0], 1e-3, dof=9)
    assert test.dof == 9 and test.critical == pytest.approx(stats.bonferroni_t(1e-3, 1, 9))
    assert test.consistent  # |t| = 4 < 4.78 at 9 dof, though > 3.29 for a normal z
    assert not stats.max_z_test([4.0], [1.0], [0.0], 1e-3).consistent


def test_z_test_rejects_bad_errors():
    with pytest.raises(ValueError, match="positive"):
        stats.max_z_test([1.0], [0.0], [1.0])


def test_heavy_tail_diagnostics_separate_chi_square_from_pareto():
    rng = np.random.default_rng(3)
    m, blocks = 100_000, 100
    light = rng.normal(size=m) ** 2
    heavy = rng.pareto(1.2, size=m)  # infinite variance (near alpha = 2 the call is borderline)
    for values, expect_heavy in ((light, False), (heavy, True)):
        block_sums = values.reshape(blocks, -1).sum(1)
        counts = np.full(blocks, m // blocks)
        infl = stats.max_influence(values.max(), block_sums, counts)
        skew = stats.sampling_skewness(block_sums / counts)
        assert (infl > 0.5 or abs(skew) > 0.5) == expect_heavy, (infl, skew)


def test_power_law_fit_recovers_exponent_and_refuses_pure_noise():
    from nnfield.studies.npoint.analyze import fit_power_law

    rng = np.random.default_rng(4)
    widths = np.array([2, 3, 5, 10, 20, 50, 100])
    err = np.full(widths.size, 0.002)
    slopes = []
    for _ in range(200):
        values = 0.5 * widths**-1.0 + rng.normal(0, err)
        s, se, _ = fit_power_law(widths, values, err, -1.0)
        slopes.append((s + 1.0) / se)
    pulls = np.array(slopes)
    assert abs(pulls.mean()) < 4 / np.sqrt(pulls.size) and 0.7 < pulls.std() < 1.3
    noise = rng.normal(0, err)
    assert np.isnan(fit_power_law(widths, noise, err, -2.0)[0])


def test_influence_that_cannot_be_computed_is_nan_not_zero():
    counts = np.full(4, 10.0)
    sums = np.array([1.0, 2.0, 3.0, 4.0])
    assert stats.max_influence(5.0, sums, counts) > 0
    assert np.isnan(stats.max_influence(np.nan, sums, counts))
    assert np.isnan(stats.max_influence(5.0, np.array([1.0, np.nan, 3.0, 4.0]), counts))
    assert stats.max_influence(0.0, np.full(4, 2.0), counts) == 0.0
