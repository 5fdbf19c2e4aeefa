"""Tree-level integrals and coupling fits (nnfield.theory.couplings) against exact results.

Integrals are checked against closed forms (PHYSICS.md section 1: ReLU homogeneity, Gaussian
integrals of the Gauss-net kernel); Monte Carlo integrals and Monte Carlo couplings with z-scores
built from their own error bars.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import make_spec
from scipy import special
from scipy import stats as sps

from nnfield import stats
from nnfield import tuples as tup
from nnfield.config import ConfigError, validate
from nnfield.studies import npoint
from nnfield.studies.npoint_couplings import family_integrals, point_couplings
from nnfield.theory import couplings as cp
from nnfield.theory.finite_width import SingleLayerExact

ALPHA = 1e-3
RELU_X = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])[:, None]
GAUSS_X = 0.01 * np.array([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])[:, None]


def gauss_integral_1d(xs, cutoff, sw0=1.0, sw1=1.0, sb1=1.0):
    """Closed form of integral_{-L}^{L} prod_i K(x_i, y) dy for the d = 1 Gauss-net kernel
    K = sb1^2 + sw1^2 exp(-sw0^2 (x - y)^2 / 2): expand the product over subsets S of the
    factors, each a Gaussian in y integrated with erf."""
    a = sw0**2
    total = 0.0
    n = len(xs)
    for k in range(n + 1):
        for subset in itertools.combinations(range(n), k):
            if k == 0:
                value = 2 * cutoff
            else:
                x = np.array([xs[i] for i in subset])
                m = x.mean()
                c = np.sqrt(a * k / 2)
                value = np.exp(-a / 2 * (np.sum(x**2) - k * m * m)) * np.sqrt(np.pi) / (2 * c)
                value *= special.erf(c * (cutoff - m)) + special.erf(c * (cutoff + m))
            total += sb1 ** (2 * (n - k)) * sw1 ** (2 * k) * value
    return total


def test_relu_integrals_and_lambda_are_homogeneous():
    """sb = 0, d = 1, positive inputs: K(x, y) = x y / 2 for y > 0, so int K^4 = prod x L^5 / 80,
    and with the exact G4_conn = 3.75 prod x / N the coupling is lambda = -300 / (N L^5), i.e.
    the original code's lambda_m = -lambda / 24 = 12.5 / (N L^5) (PHYSICS.md)."""
    prior = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    exact = SingleLayerExact("relu", RELU_X, 1.0, 0.0, 1.0, 0.0)
    t4, t6 = tup.sorted_tuples(6, 4), tup.sorted_tuples(6, 6)
    for cutoff in (2.0, 10.0, 1000.0):
        ti = cp.tree_integrals(prior, RELU_X, cutoff)
        np.testing.assert_allclose(
            ti.quartic[0, :, 0], np.prod(RELU_X[t4, 0], axis=1) * cutoff**5 / 80, rtol=1e-12
        )
        np.testing.assert_allclose(
            ti.sextic[0], np.prod(RELU_X[t6, 0], axis=1) * cutoff**7 / (64 * 7), rtol=1e-12
        )
        # each of the 10 exchange splits: prod x / 128 (L^5 / 5)^2
        np.testing.assert_allclose(
            ti.exchange[0], np.prod(RELU_X[t6, 0], axis=1) * 10 / 128 * cutoff**10 / 25,
            rtol=1e-12,
        )  # fmt: skip
        for width in (2, 20, 1000):
            g4 = exact.at_width(width).G4_conn
            fit = cp.LinearFit.build(-ti.quartic[0, :, :1], np.diag(g4**2), 100, "relu")
            lam = fit.coefficients(g4)[0]
            assert lam == pytest.approx(-300 / (width * cutoff**5), rel=1e-10)
            assert -lam / 24 == pytest.approx(12.5 / (width * cutoff**5), rel=1e-10)


@pytest.mark.parametrize("cutoff", [2.0, 10.0, 300.0])
def test_gauss_integrals_match_closed_form(cutoff):
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 1.0)
    x = 30 * GAUSS_X  # inputs at the 0.3 scale make the tuples distinguishable
    ti = cp.tree_integrals(prior, x, cutoff)
    for order, got in ((4, ti.quartic[0, :, 0]), (6, ti.sextic[0])):
        want = [gauss_integral_1d(x[row, 0], cutoff) for row in tup.sorted_tuples(6, order)]
        np.testing.assert_allclose(got, want, rtol=1e-11)
    assert ti.accuracy < 1e-10


def test_gauss_exchange_matches_dense_double_quadrature():
    """The banded ridge rule for the exchange diagram against a brute dense product rule."""
    prior = cp.Prior("gauss", 1.3, 1.0, 0.8, 0.7)
    x = np.array([-0.5, 0.1, 0.7])[:, None]
    cutoff = 4.0
    ti = cp.tree_integrals(prior, x, cutoff)
    t, w = np.polynomial.legendre.leggauss(40)
    edges = np.linspace(-cutoff, cutoff, 41)
    y = (edges[:-1, None] + np.diff(edges)[:, None] * (t + 1) / 2).ravel()
    wy = (np.diff(edges)[:, None] / 2 * w).ravel()
    kxy = prior.kernel(x, y[:, None])
    kyy = prior.kernel(y[:, None], y[:, None])
    for row, value in zip(tup.sorted_tuples(3, 6), ti.exchange[0], strict=True):
        want = 0.0
        for half in ([0, *rest] for rest in itertools.combinations(range(1, 6), 2)):
            other = [i for i in range(6) if i not in half]
            a = np.prod(kxy[row[half]], axis=0) * wy
            b = np.prod(kxy[row[other]], axis=0) * wy
            want += a @ kyy @ b
        assert value == pytest.approx(want, rel=1e-9)


def test_polar_rule_d2_matches_radial_closed_form():
    """Inputs at the origin: K(0, y) = sb1^2 + exp(-|y|^2 / 4) for d = 2 (sw0 = 1), so
    int_{|y|<L} K^4 = sum_k C(4, k) sb1^(2(4-k)) pi (4 / k) (1 - exp(-k L^2 / 4))."""
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 0.5)
    x = np.zeros((2, 2))
    cutoff = 3.0
    ti = cp.tree_integrals(prior, x, cutoff)
    want = 0.25**4 * np.pi * cutoff**2 + sum(
        special.comb(4, k) * 0.25 ** (4 - k) * np.pi * 4 / k * (1 - np.exp(-k * cutoff**2 / 4))
        for k in range(1, 5)
    )
    np.testing.assert_allclose(ti.quartic[0, :, 0], want, rtol=1e-10)
    relu = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    xr = np.array([[0.3, 0.9], [1.0, -0.2], [0.6, 0.5]])
    ratio = cp.tree_integrals(relu, xr, 6.0).quartic / cp.tree_integrals(relu, xr, 3.0).quartic
    np.testing.assert_allclose(ratio, 2.0 ** (2 + 4), rtol=1e-8)  # lambda ~ L^-(d+4)


def test_monte_carlo_integrals_d3_agree_within_their_errors():
    """d = 3: randomised QMC replicas against the radial closed form, z-test on the replicas."""
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 0.0)  # K(0, y) = exp(-|y|^2 / 6)
    x = np.zeros((1, 3))
    cutoff = 2.5
    ti = cp.tree_integrals(prior, x, cutoff, mc_points=2048, mc_replicas=16, seed=7)
    reps = ti.quartic[:, 0, 0]
    c = 4 / 6  # exp(-c |y|^2) with c = 4 / (2 d)
    r = cutoff
    want = (
        4
        * np.pi
        * (
            np.sqrt(np.pi) / (4 * c**1.5) * special.erf(np.sqrt(c) * r)
            - r * np.exp(-c * r * r) / (2 * c)
        )
    )
    z = (reps.mean() - want) / (reps.std(ddof=1) / np.sqrt(reps.size))
    assert abs(z) < stats.bonferroni_z(ALPHA, 1), f"QMC integral off by {z:.1f} s.e."
    assert reps.std() > 0  # replicas differ: the error bar is real


def test_gauss_lambda_from_exact_g4_matches_analytic_integrals():
    """Acceptance: lambda fitted to the exact finite-N G4_conn of Gauss-net with the quadrature
    integrals equals the fit with the closed-form integrals (to the quadrature accuracy), lies
    within the per-tuple analytic ratios -G4_conn / int K^4, and N lambda is the same at every N."""
    exact = SingleLayerExact("gauss", GAUSS_X, 1.0, 1.0, 1.0, 1.0)
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 1.0)
    t4 = tup.sorted_tuples(6, 4)
    cutoff = 10.0
    quad = cp.tree_integrals(prior, GAUSS_X, cutoff).quartic[0, :, :1]
    closed = np.array([[gauss_integral_1d(GAUSS_X[row, 0], cutoff)] for row in t4])
    scaled = []
    for width in (2, 100, 1000):
        g4 = exact.at_width(width).G4_conn
        cov = np.diag((0.01 * g4) ** 2)
        lam_quad = cp.LinearFit.build(-quad, cov, 100, "quad").coefficients(g4)[0]
        lam_closed = cp.LinearFit.build(-closed, cov, 100, "closed").coefficients(g4)[0]
        assert lam_quad == pytest.approx(lam_closed, rel=1e-10)
        ratios = -g4 / closed[:, 0]
        assert ratios.min() <= lam_closed <= ratios.max()
        scaled.append(width * lam_quad)
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-12)


def test_too_few_tuples_is_a_clear_error():
    with pytest.raises(cp.CouplingFitError, match=r"1 tuple.*cannot determine 1 coefficient"):
        cp.LinearFit.build(np.ones((1, 1)), np.eye(1), 100, "lambda")
    with pytest.raises(cp.CouplingFitError, match="not distinguishable"):
        design = np.outer(np.arange(1.0, 6.0), [1.0, 2.0])  # two proportional basis functions
        cp.LinearFit.build(design, np.eye(5), 100, "lambda(y)")
    config = {
        "studies": {
            "npoint": {
                "seed": 1, "networks": 10000, "widths": [2],
                "families": [{"name": "one", "arch": "erf", "inputs": [0.5]}],
            }
        }
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"families\[0\]\.inputs.*1 input.*1 sorted 4-tuple"):
        validate(config)
    config["studies"]["npoint"]["families"][0]["inputs"] = [0.5, 3.0]
    with pytest.raises(ConfigError, match=r"couplings\.cutoffs.*does not contain the inputs"):
        validate(config)


def test_chi2_is_calibrated_and_detects_a_wrong_model():
    """Synthetic blocks g_b = A c + correlated noise, T = 35 > (B - 1) / 2: the correct model's
    chi^2 follows chi^2(dof) (two-sided test at ALPHA); a model missing a basis function fails."""
    rng = np.random.default_rng(3)
    n_blocks, n_tuples = 200, 35
    t = np.linspace(-1, 1, n_tuples)
    design = np.stack([np.ones_like(t), t**2], axis=1)
    root = np.exp(-np.abs(t[:, None] - t[None, :]) / 0.3) * 0.05
    blocks = design @ [1.0, 0.4] + rng.standard_normal((n_blocks, n_tuples)) @ root
    counts = np.ones(n_blocks)
    reps = stats.jackknife_replicates({"g": blocks}, counts, lambda m: m["g"])
    cov = cp.jackknife_covariance(reps[1:])
    good = cp.LinearFit.build(design, cov, n_blocks, "good")
    chi2 = float(good.chi2(reps[0]))
    lo, hi = sps.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], good.dof)
    assert lo < chi2 < hi, f"chi2 {chi2:.1f} for {good.dof} dof"
    coef = stats.from_replicates(good.coefficients(reps))
    z = (coef.value - [1.0, 0.4]) / coef.stderr
    assert np.all(np.abs(z) < stats.bonferroni_z(ALPHA, 2)), z
    bad = cp.LinearFit.build(design[:, :1], cov, n_blocks, "bad")
    assert float(bad.chi2(reps[0])) > sps.chi2.ppf(1 - 1e-9, bad.dof)


def test_monte_carlo_couplings_scale_as_one_over_n(point_runner):
    """Acceptance: lambda and kappa from simulated ensembles (conditional estimator) agree with
    the exact couplings at every width (Bonferroni max-|z| over widths and cutoffs), and
    N lambda is constant across widths (chi^2 test against its weighted mean)."""
    inputs = [-1.0, -0.4, 0.3, 1.0]
    options = {"cutoffs": [3.0, 10.0, 30.0], "reference_cutoff": 10.0, "basis": 2,
               "profile_points": 5, "mc_points": 256, "mc_replicas": 2}  # fmt: skip
    widths = (3, 30, 300)
    z_lambda, z_kappa, scaled, scaled_se = [], [], [], []
    for width in widths:
        spec = make_spec("erf", width, 40_000, inputs=inputs, estimator="conditional",
                         sigma_w0=2.0, sigma_b0=0.5)  # fmt: skip
        merged = point_runner(spec)
        exact = npoint._theory(merged.attrs, merged["x"].values)
        fam = family_integrals(merged.attrs, merged["x"].values, options, seed=1, label="erf")
        out = npoint.analyze_point(merged, exact, {}, fam)
        z_lambda.extend((out["lambda"] - out["lambda_exact"]) / out["lambda_se"])
        if width == 3:  # the same data reject a 1/(N+1) law (lambda 25% too small)
            wrong = out["lambda_exact"] * width / (width + 1)
            z_wrong = np.abs((out["lambda"] - wrong) / out["lambda_se"])
            assert float(z_wrong.max()) > stats.bonferroni_z(ALPHA, 18)
        z_kappa.extend((out["kappa"] - out["kappa_exact"]) / out["kappa_se"])
        assert np.all(np.isfinite(out["lambda_chi2dof"])), "fits report chi^2/dof"
        ref = out.sel(cutoff=10.0)
        scaled.append(width * float(ref["lambda"]))
        scaled_se.append(width * float(ref["lambda_se"]))
    crit = stats.bonferroni_z(ALPHA, len(z_lambda) + len(z_kappa))
    assert np.max(np.abs(z_lambda)) < crit, f"lambda vs exact: z = {np.round(z_lambda, 2)}"
    assert np.max(np.abs(z_kappa)) < crit, f"kappa vs exact: z = {np.round(z_kappa, 2)}"
    scaled, scaled_se = np.array(scaled), np.array(scaled_se)
    mean = np.average(scaled, weights=scaled_se**-2)
    chi2 = float(np.sum(((scaled - mean) / scaled_se) ** 2))
    assert chi2 < sps.chi2.ppf(1 - ALPHA, len(widths) - 1), f"N lambda = {scaled} +- {scaled_se}"
    assert np.all(np.abs(scaled) > 5 * scaled_se), "the test must resolve lambda at every width"


def test_point_couplings_without_theory_has_no_exact_columns():
    rng = np.random.default_rng(0)
    prior_attrs = {"arch": "erf", "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0,
                   "sigma_b1": 1.0}  # fmt: skip
    x = np.array([-1.0, -0.2, 0.5, 1.0])[:, None]
    options = {"cutoffs": [2.0, 5.0], "reference_cutoff": 2.0, "basis": 1, "profile_points": 3,
               "mc_points": 64, "mc_replicas": 2}  # fmt: skip
    fam = family_integrals(prior_attrs, x, options, seed=0)
    reps4 = 1e-3 + 1e-4 * rng.standard_normal((21, 35))
    reps6 = 1e-4 + 1e-5 * rng.standard_normal((21, 84))
    out = point_couplings(reps4, reps6, None, None, fam)
    assert np.isnan(out["lambda_exact"]).all() and np.isfinite(out["lambda"]).all()


def test_relu_d2_exchange_and_sextic_are_homogeneous():
    """sb = 0: K is homogeneous of degree 1 in y, so in d = 2 int K^6 ~ L^(6+2) and the exchange
    double integral ~ L^(2 (4 + 2)); the coarser exchange rule must keep that to 1e-6."""
    relu = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    x = np.array([[0.3, 0.9], [1.0, -0.2], [0.6, 0.5]])
    small, large = cp.tree_integrals(relu, x, 3.0), cp.tree_integrals(relu, x, 6.0)
    np.testing.assert_allclose(large.sextic / small.sextic, 2.0**8, rtol=1e-8)
    np.testing.assert_allclose(large.exchange / small.exchange, 2.0**12, rtol=1e-6)
    assert small.accuracy < 1e-6


def test_monte_carlo_integration_error_reaches_the_couplings():
    """d = 3 families: the spread over integration replicas is part of lambda's error bar."""
    rng = np.random.default_rng(1)
    attrs = {"arch": "erf", "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0, "sigma_b1": 1.0}
    x = np.array([[0.5, 0.1, -0.3], [-0.2, 0.4, 0.6], [0.3, -0.5, 0.2]])
    options = {"cutoffs": [2.0], "reference_cutoff": 2.0, "basis": 1, "profile_points": 3,
               "mc_points": 256, "mc_replicas": 4}  # fmt: skip
    fam = family_integrals(attrs, x, options, seed=3)
    assert fam.integrals[0].replicas == 4 and np.isnan(fam.accuracy)
    reps4 = 1e-3 * (1 + 0.01 * rng.standard_normal((41, 15)))
    reps6 = 1e-4 * (1 + 0.01 * rng.standard_normal((41, 28)))
    out = point_couplings(reps4, reps6, None, None, fam)
    assert float(out["lambda_integration_se"][0]) > 0
    assert float(out["lambda_se"][0]) >= float(out["lambda_integration_se"][0])


def test_tuples_with_vanishing_integrals_do_not_set_the_coupling():
    """ReLU with sb = 0 and inputs of both signs: K(x, y) = 0 when x y < 0, so mixed-sign tuples
    have int K^4 = 0.  They get no weight; the same-sign tuples still give -300 / (N L^5)."""
    x = np.array([-1.0, -0.5, 0.5, 1.0])[:, None]
    exact = SingleLayerExact("relu", x, 1.0, 0.0, 1.0, 0.0).at_width(10)
    ti = cp.tree_integrals(cp.Prior("relu", 1.0, 0.0, 1.0, 0.0), x, 5.0)
    assert np.sum(ti.quartic[0, :, 0] < 1e-12 * ti.quartic.max()) > 0  # zero up to rounding
    fit = cp.LinearFit.build(-ti.quartic[0, :, :1], np.diag(exact.G4_conn**2 + 1e-6), 100, "relu")
    assert fit.coefficients(exact.G4_conn)[0] == pytest.approx(-300 / (10 * 5.0**5), rel=1e-10)
    with pytest.raises(cp.CouplingFitError, match="non-zero tree-level integral"):
        cp.LinearFit.build(np.zeros((5, 1)), np.eye(5), 100, "lambda")
